import { assert, assertEquals, assertThrows } from "../testing/mod.ts";
import {
  MBI_TAG_ACPI_NEW,
  MBI_TAG_ACPI_OLD,
  MBI_TAG_APM,
  MBI_TAG_BASIC_MEMINFO,
  MBI_TAG_BOOT_LOADER_NAME,
  MBI_TAG_BOOTDEV,
  MBI_TAG_CMDLINE,
  MBI_TAG_EFI32,
  MBI_TAG_EFI32_IH,
  MBI_TAG_EFI64,
  MBI_TAG_EFI64_IH,
  MBI_TAG_EFI_BS,
  MBI_TAG_EFI_MMAP,
  MBI_TAG_ELF_SECTIONS,
  MBI_TAG_END,
  MBI_TAG_FRAMEBUFFER,
  MBI_TAG_LOAD_BASE_ADDR,
  MBI_TAG_MMAP,
  MBI_TAG_MODULE,
  MBI_TAG_NAMES,
  MBI_TAG_NETWORK,
  MBI_TAG_SMBIOS,
  MBI_TAG_VBE,
  MbiWriter,
  MULTIBOOT2_BOOTLOADER_MAGIC,
  MULTIBOOT2_HEADER_MAGIC,
} from "./multiboot2.ts";

interface RawTag {
  readonly offset: number;
  readonly type: number;
  readonly size: number;
}

/** Walks a finished MBI the plain way, checking the framing rules as it goes. */
function walk(mbi: Uint8Array): RawTag[] {
  const view = new DataView(mbi.buffer, mbi.byteOffset, mbi.byteLength);
  assertEquals(view.getUint32(0, true), mbi.length, "total_size");
  assertEquals(view.getUint32(4, true), 0, "reserved");
  const tags: RawTag[] = [];
  for (let offset = 8; offset < mbi.length;) {
    assertEquals(offset % 8, 0, `tag at ${offset} is 8-byte aligned`);
    const type = view.getUint32(offset, true);
    const size = view.getUint32(offset + 4, true);
    tags.push({ offset, type, size });
    const next = Math.ceil((offset + size) / 8) * 8;
    for (let pad = offset + size; pad < next; pad++) assertEquals(mbi[pad], 0, "padding is zero");
    offset = next;
  }
  const end = tags.at(-1);
  assertEquals(end, { offset: mbi.length - 8, type: MBI_TAG_END, size: 8 });
  return tags;
}

const u32 = (mbi: Uint8Array, offset: number) =>
  new DataView(mbi.buffer, mbi.byteOffset).getUint32(offset, true);

Deno.test("Multiboot2 magic numbers match the spec", () => {
  assertEquals(MULTIBOOT2_BOOTLOADER_MAGIC, 0x36d76289);
  assertEquals(MULTIBOOT2_HEADER_MAGIC, 0xe85250d6);
  assertEquals(MBI_TAG_NAMES.length, 22);
  assertEquals(MBI_TAG_NAMES[MBI_TAG_MMAP], "memory map");
  assertEquals(MBI_TAG_LOAD_BASE_ADDR, 21);
});

Deno.test("MbiWriter.finish() of no tags gives the 16-byte minimum MBI", () => {
  const mbi = new MbiWriter().finish();
  assertEquals([...mbi], [16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0]);
});

Deno.test("MbiWriter string tags count the NUL but not the padding in size", () => {
  const mbi = new MbiWriter().cmdline("abc").bootLoaderName("kernelsim 0.1.0").finish();
  const tags = walk(mbi);
  assertEquals(tags.slice(0, 2), [
    { offset: 8, type: MBI_TAG_CMDLINE, size: 12 },
    { offset: 24, type: MBI_TAG_BOOT_LOADER_NAME, size: 8 + 16 },
  ]);
  assertEquals(new TextDecoder().decode(mbi.subarray(16, 20)), "abc\0");
});

Deno.test("MbiWriter.memoryMap() writes 24-byte entries with 64-bit halves", () => {
  const mbi = new MbiWriter()
    .memoryMap([{ base: 0x1_2345_6000, length: 0x20_0000_1000, type: 3 }])
    .finish();
  const [tag] = walk(mbi);
  assertEquals(tag, { offset: 8, type: MBI_TAG_MMAP, size: 16 + 24 });
  assertEquals(u32(mbi, 16), 24, "entry_size");
  assertEquals(u32(mbi, 20), 0, "entry_version");
  assertEquals([u32(mbi, 24), u32(mbi, 28)], [0x2345_6000, 0x1], "base_addr low, high");
  assertEquals([u32(mbi, 32), u32(mbi, 36)], [0x1000, 0x20], "length low, high");
  assertEquals([u32(mbi, 40), u32(mbi, 44)], [3, 0], "type, reserved");
});

Deno.test("MbiWriter.memoryMap() pads larger entry sizes with zeros", () => {
  const mbi = new MbiWriter()
    .memoryMap([{ base: 0, length: 0x1000, type: 1 }, { base: 0x1000, length: 1, type: 2 }], {
      entrySizeBytes: 32,
      entryVersion: 1,
    })
    .finish();
  assertEquals(walk(mbi)[0].size, 16 + 64);
  assertEquals([u32(mbi, 16), u32(mbi, 20)], [32, 1]);
  assertEquals(u32(mbi, 24 + 32), 0x1000, "second entry starts 32 bytes on");
});

Deno.test("MbiWriter.framebuffer() follows multiboot2.h: u16 reserved, then colour info", () => {
  const rgb = new MbiWriter().framebuffer({
    address: 0x1_fd00_0000,
    pitchBytes: 4096,
    width: 1024,
    height: 768,
    bitsPerPixel: 32,
    colorInfo: {
      kind: "rgb",
      redPosition: 16,
      redMaskSize: 8,
      greenPosition: 8,
      greenMaskSize: 8,
      bluePosition: 0,
      blueMaskSize: 8,
    },
  }).finish();
  assertEquals(walk(rgb)[0], { offset: 8, type: MBI_TAG_FRAMEBUFFER, size: 38 });
  assertEquals([u32(rgb, 16), u32(rgb, 20)], [0xfd00_0000, 1]);
  assertEquals([u32(rgb, 24), u32(rgb, 28), u32(rgb, 32)], [4096, 1024, 768]);
  assertEquals([...rgb.subarray(36, 46)], [32, 1, 0, 0, 16, 8, 8, 8, 0, 8]);

  const indexed = new MbiWriter().framebuffer({
    address: 0xa0000,
    pitchBytes: 320,
    width: 320,
    height: 200,
    bitsPerPixel: 8,
    colorInfo: { kind: "indexed", palette: [{ red: 1, green: 2, blue: 3 }] },
  }).finish();
  assertEquals(walk(indexed)[0].size, 34 + 3);
  assertEquals([...indexed.subarray(36, 45)], [8, 0, 0, 0, 1, 0, 1, 2, 3]);

  const ega = new MbiWriter().framebuffer({
    address: 0xb8000,
    pitchBytes: 160,
    width: 80,
    height: 25,
    bitsPerPixel: 16,
    colorInfo: { kind: "egaText" },
  }).finish();
  assertEquals(walk(ega)[0].size, 32);
  assertEquals(ega[37], 2, "framebuffer_type EGA text");
});

Deno.test("MbiWriter.elfSections() uses u32 num, entsize and shndx", () => {
  const headers = new Uint8Array(2 * 64).fill(0xab);
  const mbi = new MbiWriter()
    .elfSections({ sectionCount: 2, entrySizeBytes: 64, stringTableIndex: 1, headers })
    .finish();
  assertEquals(walk(mbi)[0], { offset: 8, type: MBI_TAG_ELF_SECTIONS, size: 20 + 128 });
  assertEquals([u32(mbi, 16), u32(mbi, 20), u32(mbi, 24)], [2, 64, 1]);
  assertEquals(mbi[28], 0xab);
});

Deno.test("MbiWriter gives every fixed-size tag its spec size", () => {
  const mbi = new MbiWriter()
    .module({ start: 0x200000, end: 0x201000, string: "" })
    .basicMemInfo({ memLowerKiB: 639, memUpperKiB: 129920 })
    .bootDevice({ biosDevice: 0x80, partition: 0, subPartition: 0xffffffff })
    .vbe({
      mode: 0x118,
      interfaceSegment: 0,
      interfaceOffset: 0,
      interfaceLength: 0,
      controlInfo: new Uint8Array(512),
      modeInfo: new Uint8Array(256),
    })
    .apm({
      version: 0x102,
      codeSegment: 0xf000,
      offset: 0x1234,
      codeSegment16: 0xf000,
      dataSegment: 0x40,
      flags: 3,
      codeSegmentLength: 0xffff,
      codeSegment16Length: 0xffff,
      dataSegmentLength: 0x100,
    })
    .efi32SystemTable(0x7fe0_0000)
    .efi64SystemTable(0x7fe0_0000)
    .smbios({ major: 3, minor: 0, tables: new Uint8Array(3) })
    .acpiOldRsdp(new Uint8Array(20))
    .acpiNewRsdp(new Uint8Array(36))
    .network(new Uint8Array(5))
    .efiMemoryMap({
      descriptorSizeBytes: 48,
      descriptorVersion: 1,
      descriptors: new Uint8Array(96),
    })
    .efiBootServicesNotTerminated()
    .efi32ImageHandle(0x1000)
    .efi64ImageHandle(0x1000)
    .loadBaseAddr(0x100000)
    .finish();
  const sizes = walk(mbi).map((tag) => [tag.type, tag.size]);
  assertEquals(sizes, [
    [MBI_TAG_MODULE, 17],
    [MBI_TAG_BASIC_MEMINFO, 16],
    [MBI_TAG_BOOTDEV, 20],
    [MBI_TAG_VBE, 784],
    [MBI_TAG_APM, 28],
    [MBI_TAG_EFI32, 12],
    [MBI_TAG_EFI64, 16],
    [MBI_TAG_SMBIOS, 16 + 3],
    [MBI_TAG_ACPI_OLD, 28],
    [MBI_TAG_ACPI_NEW, 44],
    [MBI_TAG_NETWORK, 13],
    [MBI_TAG_EFI_MMAP, 16 + 96],
    [MBI_TAG_EFI_BS, 8],
    [MBI_TAG_EFI32_IH, 12],
    [MBI_TAG_EFI64_IH, 16],
    [MBI_TAG_LOAD_BASE_ADDR, 12],
    [MBI_TAG_END, 8],
  ]);
});

Deno.test("MbiWriter.rawTag() writes any type and payload unchecked", () => {
  const mbi = new MbiWriter().rawTag(0xdead, new Uint8Array([1, 2, 3])).finish();
  assertEquals(walk(mbi)[0], { offset: 8, type: 0xdead, size: 11 });
  assertEquals([...mbi.subarray(16, 19)], [1, 2, 3]);
});

Deno.test("MbiWriter grows past its initial buffer without losing bytes", () => {
  const writer = new MbiWriter();
  for (let i = 0; i < 100; i++) writer.cmdline(`argument number ${i}`);
  const tags = walk(writer.finish());
  assertEquals(tags.length, 101);
});

Deno.test("MbiWriter rejects values its fields cannot hold", () => {
  assertThrows(() => new MbiWriter().cmdline("a\0b"), RangeError, "contains NUL");
  assertThrows(
    () => new MbiWriter().module({ start: 2, end: 1, string: "" }),
    RangeError,
    "after its end",
  );
  assertThrows(
    () => new MbiWriter().module({ start: 0, end: 2 ** 32, string: "" }),
    RangeError,
    "mod_end",
  );
  assertThrows(
    () => new MbiWriter().memoryMap([{ base: 2 ** 53, length: 1, type: 1 }]),
    RangeError,
    "base_addr",
  );
  assertThrows(() => new MbiWriter().memoryMap([], { entrySizeBytes: 20 }), RangeError, "20");
  assertThrows(() => new MbiWriter().memoryMap([], { entrySizeBytes: 28 }), RangeError, "28");
  assertThrows(
    () =>
      new MbiWriter().elfSections({
        sectionCount: 2,
        entrySizeBytes: 64,
        stringTableIndex: 0,
        headers: new Uint8Array(64),
      }),
    RangeError,
    "128 bytes",
  );
  assertThrows(
    () =>
      new MbiWriter().vbe({
        mode: 0,
        interfaceSegment: 0,
        interfaceOffset: 0,
        interfaceLength: 0,
        controlInfo: new Uint8Array(511),
        modeInfo: new Uint8Array(256),
      }),
    RangeError,
    "512",
  );
  assertThrows(() => new MbiWriter().loadBaseAddr(-1), RangeError, "load_base_addr");
});

Deno.test("MbiWriter cannot be used after finish()", () => {
  const writer = new MbiWriter();
  writer.finish();
  const error = assertThrows(() => writer.cmdline("late"), TypeError, "finished");
  assert(error instanceof TypeError);
});
