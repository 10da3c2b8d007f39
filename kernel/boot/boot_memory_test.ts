import { assertEquals, assertThrows } from "../../testing/mod.ts";
import {
  MbiWriter,
  type MemoryMapEntry,
  type PhysAddr,
  PhysicalMemory,
  type RamRange,
} from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";
import { planBootMemory } from "./boot_memory.ts";
import { parseMultiboot2 } from "./multiboot2_parser.ts";

const MiB = 2 ** 20;
const MAP: MemoryMapEntry[] = [
  { base: 0, length: 0x9fc00, type: 1 },
  { base: 0x9fc00, length: 0x60400, type: 2 },
  { base: 0x100000, length: 0x7f00000, type: 1 },
];

/** RAM like MAP's, optionally with holes. */
function ram(holes: readonly { start: number; end: number }[] = []): RamRange[] {
  let pieces = [{ start: 0, end: 0x9f000 }, { start: 0x100000, end: 0x8000000 }];
  for (const hole of holes) {
    pieces = pieces.flatMap((p) =>
      [{ start: p.start, end: Math.min(p.end, hole.start) }, {
        start: Math.max(p.start, hole.end),
        end: p.end,
      }].filter((q) => q.end > q.start)
    );
  }
  return pieces.map((p) => ({ base: p.start as PhysAddr, sizeBytes: p.end - p.start }));
}

/** An ELF sections tag with one allocated ELF32 section (the whole image). */
function imageSection(addr: number, size: number) {
  const headers = new Uint8Array(40);
  const view = new DataView(headers.buffer);
  view.setUint32(4, 1, true); // SHT_PROGBITS
  view.setUint32(8, 0x2, true); // SHF_ALLOC
  view.setUint32(12, addr, true);
  view.setUint32(20, size, true);
  return { sectionCount: 1, entrySizeBytes: 40, stringTableIndex: 0, headers };
}

function plan(
  writer: MbiWriter,
  options: { at?: number; holes?: { start: number; end: number }[] } = {},
) {
  const at = (options.at ?? 0x10000) as PhysAddr;
  const memory = new PhysicalMemory(ram(options.holes));
  memory.writeBytes(at, writer.finish());
  const bootInfo = parseMultiboot2(memory, at);
  return planBootMemory(bootInfo, { memory, physAddrBits: 46 });
}

Deno.test("planBootMemory() panics with EfiBootServicesActive when EFI boot services were kept (tag 18)", () => {
  const writer = new MbiWriter().cmdline("x").efiBootServicesNotTerminated().efi64ImageHandle(
    0x1000,
  );
  const error = assertThrows(() => plan(writer), KernelError);
  assertEquals(error.code, "EfiBootServicesActive");
  assertEquals(
    error.message,
    "EFI boot services were not terminated (multiboot2 tag 18: the kernel's header asked the " +
      "boot loader to keep them), so the boot information has no memory map: this kernel " +
      "cannot call EFI boot services, so it cannot run under them",
  );
});

Deno.test("planBootMemory() falls back to the basic memory information without a memory map", () => {
  const memory = plan(new MbiWriter().basicMemInfo({ memLowerKiB: 639, memUpperKiB: 64 * 1024 }));
  assertEquals(memory.memoryMapSource, "basic memory information tag (4)");
  assertEquals(memory.memoryMap, [
    { base: 0, length: 639 * 1024, type: 1 },
    { base: 0x100000, length: 64 * MiB, type: 1 },
  ]);
  assertEquals(memory.memoryMapWarnings, [
    "no memory map tag (6): using basic memory information (tag 4): 639 KiB from 0x0, " +
    "65536 KiB from 0x100000",
  ]);
});

Deno.test("planBootMemory() panics with NoMemoryMap when the MBI says nothing about RAM", () => {
  const error = assertThrows(() => plan(new MbiWriter().cmdline("no memory")), KernelError);
  assertEquals(error.code, "NoMemoryMap");
});

Deno.test("planBootMemory() reserves the first MiB, the image, section copies, the MBI and loaded modules", () => {
  const memory = plan(
    new MbiWriter()
      .loadBaseAddr(0x100000)
      .module({ start: 0x180000, end: 0x181800, string: "initrd\x1b[31m" })
      .memoryMap(MAP),
    { at: 0x182000 },
  );
  assertEquals(memory.reservations, [
    {
      base: 0,
      length: 0x100000,
      what: "first 1 MiB (BIOS, real-mode area)",
      source: "from the PC's memory layout",
    },
    {
      base: 0x100000,
      length: 0x80000,
      what: "kernel image",
      source: "base from the load base address tag (21), end from the lowest MBI or module " +
        "address (module 0 at 0x180000)",
    },
    {
      base: 0x182000,
      length: memory.reservations[2].length,
      what: "multiboot2 info",
      source: "from EBX at entry and the MBI's total_size",
    },
    {
      base: 0x180000,
      length: 0x1800,
      what: 'module 0 "initrd\\x1b[31m"',
      source: "from the module tag (3)",
    },
  ]);
  assertEquals(memory.modules[0].isLoaded, true);
});

Deno.test("planBootMemory() reports modules whose bytes cannot be there as not loaded, and reserves none of them", () => {
  const memory = plan(
    new MbiWriter()
      .loadBaseAddr(0x100000)
      .elfSections(imageSection(0x100000, 0x80000))
      .module({ start: 0x300000, end: 0x301000, string: "no RAM behind it" })
      .module({ start: 0x10000, end: 0x10100, string: "on the MBI" })
      .module({ start: 0x120000, end: 0x121000, string: "in the image" })
      .module({ start: 0x200000, end: 0x202000, string: "fine" })
      .module({ start: 0x201000, end: 0x203000, string: "on module 3" })
      .memoryMap(MAP),
    { holes: [{ start: 0x300000, end: 0x301000 }] },
  );
  const mbi = memory.reservations.find((r) => r.what === "multiboot2 info")!;
  const mbiEnd = (mbi.base + mbi.length).toString(16);
  assertEquals(memory.modules.map((m) => [m.isLoaded, m.notLoadedReason]), [
    [false, "0x300000..0x301000 is not RAM, so no bytes of it were loaded"],
    [false, `0x10000..0x10100 overlaps the MBI at 0x10000..0x${mbiEnd}`],
    [false, "0x120000..0x121000 overlaps the kernel image at 0x100000..0x180000"],
    [true, undefined],
    [false, "0x201000..0x203000 overlaps module 3"],
  ]);
  assertEquals(
    memory.reservations.filter((r) => r.what.startsWith("module")).map((r) => r.what),
    ['module 3 "fine"'],
  );
});

Deno.test("planBootMemory() panics when the kernel image the boot information describes cannot be", () => {
  const beyondWindow = assertThrows(
    () => plan(new MbiWriter().loadBaseAddr(0x8000_0000).memoryMap(MAP)),
    KernelError,
  );
  assertEquals(beyondWindow.code, "InvalidBootInfo");
  assertEquals(
    beyondWindow.message,
    "Kernel image 0x80000000..0x80080000 (base from the load base address tag (21), end from " +
      "the kernel's own size (524288 bytes)) does not end by 0x80000000, the top of the " +
      "kernel's -2 GiB mapping window",
  );
  const notRam = assertThrows(
    () => plan(new MbiWriter().loadBaseAddr(0xa0000).memoryMap(MAP)),
    KernelError,
  );
  assertEquals(notRam.message.endsWith("is not in RAM"), true);
  assertEquals(notRam.message.startsWith("Kernel image 0xa0000..0x"), true);
});
