import { assertEquals } from "../../testing/mod.ts";
import { MbiWriter, type PhysAddr, PhysicalMemory } from "../../hal/mod.ts";
import { kernelImageExtent } from "./kernel_image_extent.ts";
import { type BootInfo, parseMultiboot2 } from "./multiboot2_parser.ts";

const OWN_SIZE = 512 * 1024;
const SHF_WRITE_ALLOC = 0x3;
const SHF_ALLOC_EXEC = 0x6;

interface Section {
  type: number;
  flags: number;
  addr: number;
  size: number;
  /** High half of a 64-bit address (ELF64 only). */
  addrHigh?: number;
}

/** Section headers in ELF32 (40-byte) or ELF64 (64-byte) form. */
function sectionHeaders(sections: readonly Section[], entrySizeBytes: 40 | 64): Uint8Array {
  const bytes = new Uint8Array(sections.length * entrySizeBytes);
  const view = new DataView(bytes.buffer);
  sections.forEach((s, i) => {
    const at = i * entrySizeBytes;
    view.setUint32(at + 4, s.type, true);
    view.setUint32(at + 8, s.flags, true);
    if (entrySizeBytes === 40) {
      view.setUint32(at + 12, s.addr, true);
      view.setUint32(at + 20, s.size, true);
    } else {
      view.setUint32(at + 16, s.addr, true);
      view.setUint32(at + 20, s.addrHigh ?? 0, true);
      view.setUint32(at + 32, s.size, true);
    }
  });
  return bytes;
}

/** The sections of the GRUB capture's kernel: null, header, text, rodata, bss, symtab, strtab x2. */
const CAPTURED_SECTIONS: Section[] = [
  { type: 0, flags: 0, addr: 0, size: 0 },
  { type: 1, flags: 0x2, addr: 0x100000, size: 0x30 },
  { type: 1, flags: SHF_ALLOC_EXEC, addr: 0x100030, size: 0x14c },
  { type: 1, flags: 0x2, addr: 0x10017c, size: 0x29 },
  { type: 8, flags: SHF_WRITE_ALLOC, addr: 0x1001b0, size: 0x4008 },
  { type: 2, flags: 0, addr: 0x1041b8, size: 0x2f0 },
  { type: 3, flags: 0, addr: 0x1044a8, size: 0x239 },
  { type: 3, flags: 0, addr: 0x1046e1, size: 0x3a },
];

function parse(writer: MbiWriter, at = 0x104720): BootInfo {
  const memory = PhysicalMemory.contiguous(16 * 2 ** 20);
  memory.writeBytes(at as PhysAddr, writer.finish());
  return parseMultiboot2(memory, at as PhysAddr);
}

function withSections(writer: MbiWriter, sections: Section[], entrySizeBytes: 40 | 64): MbiWriter {
  return writer.elfSections({
    sectionCount: sections.length,
    entrySizeBytes,
    stringTableIndex: sections.length - 1,
    headers: sectionHeaders(sections, entrySizeBytes),
  });
}

Deno.test("kernelImageExtent() takes the base from tag 21 and the end from the allocated ELF sections", () => {
  const info = parse(withSections(new MbiWriter().loadBaseAddr(0x100000), CAPTURED_SECTIONS, 40));
  assertEquals(kernelImageExtent(info, OWN_SIZE), {
    base: 0x100000,
    end: 0x1041b8, // .bss (the stack) included
    baseSource: "the load base address tag (21)",
    endSource: "the ELF sections tag (9)",
    sectionCopies: [
      { base: 0x1041b8, length: 0x2f0, what: "ELF section 5 copy (symbol table)" },
      { base: 0x1044a8, length: 0x239, what: "ELF section 6 copy (string table)" },
      { base: 0x1046e1, length: 0x3a, what: "ELF section 7 copy (string table)" },
    ],
    warnings: [],
  });
});

Deno.test("kernelImageExtent() reads ELF64 headers, higher-half addresses as the -2 GiB window", () => {
  const sections: Section[] = [
    { type: 0, flags: 0, addr: 0, size: 0 },
    { type: 1, flags: SHF_ALLOC_EXEC, addr: 0x80200000, addrHigh: 0xffffffff, size: 0x3000 },
    { type: 8, flags: SHF_WRITE_ALLOC, addr: 0x80203000, addrHigh: 0xffffffff, size: 0x5000 },
    { type: 1, flags: 0x2, addr: 0x1000, addrHigh: 0xffff8000, size: 0x100 },
    { type: 2, flags: 0, addr: 0x300000, size: 0x800 },
  ];
  const extent = kernelImageExtent(parse(withSections(new MbiWriter(), sections, 64)), OWN_SIZE);
  assertEquals([extent.base, extent.end], [0x200000, 0x208000]);
  assertEquals(extent.baseSource, "the ELF sections tag (9)");
  assertEquals(extent.sectionCopies, [
    { base: 0x300000, length: 0x800, what: "ELF section 4 copy (symbol table)" },
  ]);
  assertEquals(extent.warnings, [
    "ELF section 3 at 0xffff800000001000 is not at a physical address the kernel can use: not used",
  ]);
});

Deno.test("kernelImageExtent() without ELF sections ends at the lowest MBI or module address above the base", () => {
  const module = { start: 0x105000, end: 0x1050ef, string: "initrd" };
  const info = parse(new MbiWriter().loadBaseAddr(0x100000).module(module), 0x104720);
  assertEquals(kernelImageExtent(info, OWN_SIZE), {
    base: 0x100000,
    end: 0x104720,
    baseSource: "the load base address tag (21)",
    endSource: "the lowest MBI or module address (the MBI at 0x104720)",
    sectionCopies: [],
    warnings: [],
  });
  // kernelsim's own loader: the first module right after its 512 KiB image.
  const own = parse(
    new MbiWriter().loadBaseAddr(0x100000).module({ start: 0x180000, end: 0x181000, string: "m" }),
    0x182000,
  );
  assertEquals(kernelImageExtent(own, OWN_SIZE).end, 0x180000);
  assertEquals(
    kernelImageExtent(own, OWN_SIZE).endSource,
    "the lowest MBI or module address (module 0 at 0x180000)",
  );
});

Deno.test("kernelImageExtent() falls back to the link address and the kernel's own size", () => {
  const info = parse(new MbiWriter().cmdline("no hints"), 0x10000);
  assertEquals(kernelImageExtent(info, OWN_SIZE), {
    base: 0x100000,
    end: 0x100000 + OWN_SIZE,
    baseSource: "the kernel's link address 0x100000",
    endSource: "the kernel's own size (524288 bytes)",
    sectionCopies: [],
    warnings: [],
  });
  // An MBI far above is no bound: the image cannot be larger than the kernel.
  const far = parse(new MbiWriter().loadBaseAddr(0x100000), 0x800000);
  assertEquals(kernelImageExtent(far, OWN_SIZE).end, 0x100000 + OWN_SIZE);
});

Deno.test("kernelImageExtent() ignores section headers of an unknown size, with a warning", () => {
  const info = parse(
    new MbiWriter().loadBaseAddr(0x100000).elfSections({
      sectionCount: 2,
      entrySizeBytes: 48,
      stringTableIndex: 1,
      headers: new Uint8Array(96).fill(0xff),
    }),
  );
  const extent = kernelImageExtent(info, OWN_SIZE);
  assertEquals(extent.endSource, "the lowest MBI or module address (the MBI at 0x104720)");
  assertEquals(extent.warnings, [
    "ELF sections tag has entsize 48, neither ELF32's 40 nor ELF64's 64: its sections are not used",
  ]);
});
