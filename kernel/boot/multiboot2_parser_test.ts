import { assert, assertEquals, assertThrows, Xorshift32 } from "../../testing/mod.ts";
import {
  findMultiboot2Header,
  loadMultiboot2,
  loadRawMbi,
  type MbiApm,
  type MbiElfSections,
  type MbiFramebuffer,
  type MbiVbe,
  MbiWriter,
  type MemoryMapEntry,
  pcMemoryMap,
  type PhysAddr,
  PhysicalMemory,
  ramRangesFor,
  ramRangesForRawMbi,
} from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";
import { buildKernelImage, KERNEL_IMAGE_SIZE_BYTES } from "./image.ts";
import { usableBytes } from "./memory_map_sanitizer.ts";
import { checkBootMagic, parseMultiboot2 } from "./multiboot2_parser.ts";

const MiB = 2 ** 20;
const MBI_AT = 0x10000 as PhysAddr;

/** Deterministic bytes for blob fields. */
function pattern(lengthBytes: number, seed: number): Uint8Array {
  const random = new Xorshift32(seed);
  return Uint8Array.from({ length: lengthBytes }, () => random.below(256));
}

/** A fresh 16 MiB machine with `mbi` written at `address`. */
function machineWith(mbi: Uint8Array, address: number = MBI_AT): PhysicalMemory {
  const memory = PhysicalMemory.contiguous(16 * MiB);
  memory.writeBytes(address as PhysAddr, mbi);
  return memory;
}

function parseBytes(mbi: Uint8Array) {
  return parseMultiboot2(machineWith(mbi), MBI_AT);
}

/** Asserts parsing `mbi` fails with InvalidBootInfo and a message containing `fragment`. */
function assertRejected(mbi: Uint8Array, fragment: string): void {
  assertInvalid(() => parseBytes(mbi), fragment);
}

function assertInvalid(fn: () => unknown, fragment: string): void {
  const error = assertThrows(fn, KernelError, fragment);
  assertEquals(error.code, "InvalidBootInfo");
  assert(!error.message.endsWith("."), "no full stop");
  assert(!error.message.includes("\n"), "one line");
}

const setU32 = (bytes: Uint8Array, offset: number, value: number) =>
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(offset, value, true);

const MEMORY_MAP: MemoryMapEntry[] = [
  { base: 0, length: 0x9fc00, type: 1 },
  { base: 0x9fc00, length: 0x400, type: 2 },
  { base: 0x100000, length: 0x7ee0000, type: 1 },
  { base: 0x7fe0000, length: 0x20000, type: 3 },
  { base: 0xfffc0000, length: 0x40000, type: 2 },
  { base: 0x1_0000_0000, length: 0x1_2000_0000, type: 1 },
  { base: 0x1f_ffff_f000, length: 0x1000, type: 4 },
  { base: 0x20_0000_0000, length: 0x1000, type: 5 },
];
const VBE: MbiVbe = {
  mode: 0x4118,
  interfaceSegment: 0xc000,
  interfaceOffset: 0x1234,
  interfaceLength: 0x56,
  controlInfo: pattern(512, 1),
  modeInfo: pattern(256, 2),
};
const FRAMEBUFFER_RGB: MbiFramebuffer = {
  address: 0xfd_0000_0000,
  pitchBytes: 5120,
  width: 1280,
  height: 1024,
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
};
const ELF_SECTIONS: MbiElfSections = {
  sectionCount: 3,
  entrySizeBytes: 64,
  stringTableIndex: 2,
  headers: pattern(3 * 64, 3),
};
const APM: MbiApm = {
  version: 0x0102,
  codeSegment: 0xf000,
  offset: 0xabcd1234,
  codeSegment16: 0xf001,
  dataSegment: 0x0040,
  flags: 0x0003,
  codeSegmentLength: 0xfff0,
  codeSegment16Length: 0xffe0,
  dataSegmentLength: 0x0100,
};
const SMBIOS = { major: 3, minor: 4, tables: pattern(31, 4) };
const RSDP_V1 = pattern(20, 5);
const RSDP_V2 = pattern(36, 6);
const DHCP_ACK = pattern(300, 7);
const EFI_MEMORY_MAP = {
  descriptorSizeBytes: 48,
  descriptorVersion: 1,
  descriptors: pattern(96, 8),
};

/** An MBI with one of every tag type 1..21 (two modules) and an unknown type 99. */
function everyTagMbi(): Uint8Array {
  return new MbiWriter()
    .cmdline("root=/dev/sda1 console=ttyS0,115200 ünïcode")
    .bootLoaderName("GRUB 2.12")
    .module({ start: 0x200000, end: 0x2f0000, string: "/boot/initrd.img" })
    .module({ start: 0x2f0000, end: 0x2f0000, string: "" })
    .basicMemInfo({ memLowerKiB: 639, memUpperKiB: 129920 })
    .bootDevice({ biosDevice: 0x80, partition: 1, subPartition: 0xffffffff })
    .memoryMap(MEMORY_MAP)
    .vbe(VBE)
    .framebuffer(FRAMEBUFFER_RGB)
    .elfSections(ELF_SECTIONS)
    .apm(APM)
    .efi32SystemTable(0x7fe8_1000)
    .efi64SystemTable(0x1_7fe8_1000)
    .smbios(SMBIOS)
    .acpiOldRsdp(RSDP_V1)
    .acpiNewRsdp(RSDP_V2)
    .network(DHCP_ACK)
    .efiMemoryMap(EFI_MEMORY_MAP)
    .efiBootServicesNotTerminated()
    .efi32ImageHandle(0x7f00_0000)
    .efi64ImageHandle(0x1_7f00_0000)
    .rawTag(99, pattern(5, 9))
    .loadBaseAddr(0x200000)
    .finish();
}

Deno.test("parseMultiboot2() reads back every tag type 1..21 field by field", () => {
  const mbi = everyTagMbi();
  const info = parseBytes(mbi);
  assertEquals(info.mbi, {
    address: MBI_AT,
    totalSize: mbi.length,
    tagTypes: [1, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 99, 21],
  });
  assertEquals(info.cmdline, "root=/dev/sda1 console=ttyS0,115200 ünïcode");
  assertEquals(info.bootloaderName, "GRUB 2.12");
  assertEquals(info.modules, [
    { start: 0x200000, end: 0x2f0000, string: "/boot/initrd.img" },
    { start: 0x2f0000, end: 0x2f0000, string: "" },
  ]);
  assertEquals(info.basicMemInfo, { memLowerKiB: 639, memUpperKiB: 129920 });
  assertEquals(info.bootDevice, { biosDevice: 0x80, partition: 1, subPartition: 0xffffffff });
  assertEquals(info.memoryMap, MEMORY_MAP);
  assertEquals(info.vbe, VBE);
  assertEquals(info.framebuffer, FRAMEBUFFER_RGB);
  assertEquals(info.elfSections, ELF_SECTIONS);
  assertEquals(info.apm, APM);
  assertEquals(info.efi32, 0x7fe8_1000);
  assertEquals(info.efi64, 0x1_7fe8_1000);
  assertEquals(info.smbios, SMBIOS);
  assertEquals(info.rsdpV1, RSDP_V1);
  assertEquals(info.rsdpV2, RSDP_V2);
  assertEquals(info.network, { dhcpAck: DHCP_ACK });
  assertEquals(info.efiMemoryMap, EFI_MEMORY_MAP);
  assertEquals(info.efiBootServicesNotTerminated, true);
  assertEquals(info.efi32ImageHandle, 0x7f00_0000);
  assertEquals(info.efi64ImageHandle, 0x1_7f00_0000);
  assertEquals(info.loadBaseAddr, 0x200000);
  assertEquals(info.warnings, ["Skipped unknown tag (type 99) at 0x10830 (13 bytes)"]);
});

Deno.test("parseMultiboot2() reads indexed and EGA text framebuffers", () => {
  const indexed: MbiFramebuffer = {
    address: 0xa0000,
    pitchBytes: 320,
    width: 320,
    height: 200,
    bitsPerPixel: 8,
    colorInfo: {
      kind: "indexed",
      palette: [{ red: 0, green: 0, blue: 0 }, { red: 255, green: 128, blue: 1 }],
    },
  };
  assertEquals(parseBytes(new MbiWriter().framebuffer(indexed).finish()).framebuffer, indexed);
  const ega: MbiFramebuffer = {
    address: 0xb8000,
    pitchBytes: 160,
    width: 80,
    height: 25,
    bitsPerPixel: 16,
    colorInfo: { kind: "egaText" },
  };
  assertEquals(parseBytes(new MbiWriter().framebuffer(ega).finish()).framebuffer, ega);
});

Deno.test("parseMultiboot2() accepts the minimal MBI and leaves optional fields out", () => {
  const info = parseBytes(new MbiWriter().finish());
  assertEquals(info, {
    mbi: { address: MBI_AT, totalSize: 16, tagTypes: [] },
    warnings: [],
    modules: [],
    memoryMap: [],
    efiBootServicesNotTerminated: false,
  });
});

Deno.test("parseMultiboot2() warns about a non-zero reserved field and a newer entry_version", () => {
  const mbi = new MbiWriter().memoryMap(MEMORY_MAP.slice(0, 1), { entryVersion: 1 }).finish();
  setU32(mbi, 4, 0xdead);
  const info = parseBytes(mbi);
  assertEquals(info.warnings, [
    "MBI at 0x10000 has reserved field 0xdead, not 0",
    "Memory map tag (type 6) at 0x10008 has entry_version 1; read as version 0",
  ]);
  assertEquals(info.memoryMap, MEMORY_MAP.slice(0, 1));
});

Deno.test("parseMultiboot2() reads memory maps with entries larger than 24 bytes", () => {
  const mbi = new MbiWriter().memoryMap(MEMORY_MAP, { entrySizeBytes: 40 }).finish();
  assertEquals(parseBytes(mbi).memoryMap, MEMORY_MAP);
});

Deno.test("parseMultiboot2() reads what loadMultiboot2() wrote for the kernel image", () => {
  const memoryMap = pcMemoryMap(128 * MiB);
  const memory = new PhysicalMemory(ramRangesFor(memoryMap));
  const loaded = loadMultiboot2(memory, buildKernelImage(), {
    memoryMap,
    loaderVersion: "0.1.0",
    cmdline: "loglevel=debug",
    modules: [{ name: "initrd", bytes: pattern(10_000, 10), string: "initrd" }],
  });
  const info = parseMultiboot2(memory, loaded.mbiAddress);
  assertEquals(info.bootloaderName, "kernelsim 0.1.0");
  assertEquals(info.cmdline, "loglevel=debug");
  assertEquals(info.modules, loaded.modules);
  assertEquals(info.memoryMap, memoryMap);
  assertEquals(info.basicMemInfo, { memLowerKiB: 639, memUpperKiB: (0x7fe0000 - 0x100000) / 1024 });
  assertEquals(info.loadBaseAddr, 0x100000);
  assertEquals(info.mbi.totalSize, loaded.mbiSizeBytes);
  assertEquals(info.rsdpV1?.reduce((sum, b) => (sum + b) & 0xff, 0), 0, "RSDP checksum");
  assertEquals(usableBytes(info.memoryMap), 0x9fc00 + 0x7fe0000 - 0x100000);
  assertEquals(info.warnings, []);
});

Deno.test("parseMultiboot2() reads a GRUB-like raw MBI placed by loadRawMbi()", () => {
  const grubMap: MemoryMapEntry[] = [
    { base: 0, length: 0x9fc00, type: 1 },
    { base: 0x9fc00, length: 0x400, type: 2 },
    { base: 0xf0000, length: 0x10000, type: 2 },
    { base: 0x100000, length: 0x3fee0000, type: 1 },
    { base: 0x3ffe0000, length: 0x20000, type: 2 },
    { base: 0xfeffc000, length: 0x4000, type: 2 },
    { base: 0xfffc0000, length: 0x40000, type: 2 },
  ];
  const raw = new MbiWriter()
    .loadBaseAddr(0x100000)
    .cmdline("/boot/kernel.elf console=ttyS0")
    .bootLoaderName("GRUB 2.12")
    .module({ start: 0x13c000, end: 0x14a000, string: "/boot/initrd" })
    .memoryMap(grubMap)
    .basicMemInfo({ memLowerKiB: 639, memUpperKiB: 1047424 })
    .bootDevice({ biosDevice: 0x80, partition: 0, subPartition: 0xffffffff })
    .framebuffer({
      address: 0xb8000,
      pitchBytes: 160,
      width: 80,
      height: 25,
      bitsPerPixel: 16,
      colorInfo: { kind: "egaText" },
    })
    .acpiOldRsdp(pattern(20, 11))
    .finish();
  const memory = new PhysicalMemory(ramRangesForRawMbi(raw, { mbiAddress: 0x3000_0000 }));
  const loaded = loadRawMbi(memory, raw, { mbiAddress: 0x3000_0000 });
  const info = parseMultiboot2(memory, loaded.mbiAddress);
  assertEquals(info.memoryMap, grubMap);
  assertEquals(info.cmdline, "/boot/kernel.elf console=ttyS0");
  assertEquals(info.modules, [{ start: 0x13c000, end: 0x14a000, string: "/boot/initrd" }]);
  assertEquals(info.mbi.tagTypes, [21, 1, 2, 3, 6, 4, 5, 8, 14]);
  assertEquals(usableBytes(info.memoryMap), 0x9fc00 + 0x3fee0000);
});

Deno.test("buildKernelImage() ships a header the boot loader accepts", () => {
  const image = buildKernelImage();
  assertEquals(image.length, KERNEL_IMAGE_SIZE_BYTES);
  assertEquals(findMultiboot2Header(image), {
    offsetBytes: 0,
    headerLengthBytes: 48,
    requestedTagTypes: [1, 4, 6, 14],
  });
  assertEquals(buildKernelImage(4096).length, 4096);
  assertThrows(() => buildKernelImage(16), RangeError, "at least");
  assertThrows(() => buildKernelImage(4096.5), RangeError, "integer");
});

Deno.test("checkBootMagic() accepts 0x36d76289 and rejects anything else", () => {
  checkBootMagic(0x36d76289);
  const error = assertThrows(() => checkBootMagic(0x2badb002), KernelError, "multiboot1");
  assertEquals(error.code, "InvalidBootMagic");
  assertEquals(
    error.message,
    "Invalid boot magic 0x2badb002: expected multiboot2 0x36d76289 " +
      "(0x2badb002 is the multiboot1 magic)",
  );
  assertThrows(() => checkBootMagic(0), KernelError, "Invalid boot magic 0x0");
});

Deno.test("usableBytes() sums only available regions, counting overlaps once", () => {
  const info = parseBytes(new MbiWriter().memoryMap(MEMORY_MAP).finish());
  assertEquals(usableBytes(info.memoryMap), 0x9fc00 + 0x7ee0000 + 0x1_2000_0000);
  const overlapping = [
    { base: 0x100000, length: 0x300000, type: 1 },
    { base: 0x200000, length: 0x300000, type: 1 },
    { base: 0x300000, length: 0x100000, type: 2 },
  ];
  assertEquals(usableBytes(overlapping), 0x400000);
});

// --- Rejections -------------------------------------------------------------

Deno.test("parseMultiboot2() rejects a misaligned MBI address", () => {
  const memory = machineWith(new MbiWriter().finish(), 0x10004);
  assertInvalid(
    () => parseMultiboot2(memory, 0x10004 as PhysAddr),
    "MBI address 0x10004 is not 8-byte aligned",
  );
});

Deno.test("parseMultiboot2() rejects an MBI address outside RAM", () => {
  const memory = new PhysicalMemory(ramRangesFor(pcMemoryMap(16 * MiB)));
  assertInvalid(() => parseMultiboot2(memory, 0xa0000 as PhysAddr), "0xa0000 is not in RAM");
  assertInvalid(() => parseMultiboot2(memory, (32 * MiB) as PhysAddr), "0x2000000 is not in RAM");
  assertInvalid(() => parseMultiboot2(memory, -8 as PhysAddr), "not a physical address");
});

Deno.test("parseMultiboot2() rejects a total_size below 16", () => {
  const mbi = new MbiWriter().finish();
  setU32(mbi, 0, 8);
  assertRejected(mbi, "MBI at 0x10000 has total_size 8, below the minimum 16");
});

Deno.test("parseMultiboot2() rejects a total_size that is not a multiple of 8", () => {
  const mbi = new MbiWriter().cmdline("x").finish();
  setU32(mbi, 0, mbi.length - 4);
  assertRejected(mbi, `total_size ${mbi.length - 4}, not a multiple of 8`);
});

Deno.test("parseMultiboot2() rejects a total_size running past RAM", () => {
  const mbi = new MbiWriter().cmdline("near the end").finish();
  const address = 16 * MiB - 16;
  const memory = PhysicalMemory.contiguous(16 * MiB);
  memory.writeBytes(address as PhysAddr, mbi.subarray(0, 16));
  assertInvalid(
    () => parseMultiboot2(memory, address as PhysAddr),
    `MBI at 0xfffff0 has total_size ${mbi.length}, running past RAM`,
  );
  setU32(mbi, 0, 0xfffffff8);
  assertRejected(mbi, "total_size 4294967288, running past RAM to 0x10000fff8");
});

Deno.test("parseMultiboot2() rejects a truncated MBI that loses its end tag", () => {
  const mbi = new MbiWriter().cmdline("truncated").memoryMap(MEMORY_MAP).finish();
  setU32(mbi, 0, mbi.length - 8);
  assertRejected(mbi, `MBI at 0x10000 has no end tag within its total_size ${mbi.length - 8}`);
});

Deno.test("parseMultiboot2() rejects an MBI with no end tag at all", () => {
  const mbi = new MbiWriter().cmdline("abc").finish();
  setU32(mbi, mbi.length - 8, 2); // the end tag becomes an 8-byte boot loader name tag
  assertRejected(mbi, "boot loader name tag (type 2) at 0x10018 has a string not NUL-terminated");
  setU32(mbi, mbi.length - 8, 77); // an unknown tag instead
  assertRejected(mbi, "no end tag within its total_size");
});

Deno.test("parseMultiboot2() rejects an end tag that is not last", () => {
  const mbi = new MbiWriter().cmdline("abc").finish();
  setU32(mbi, 8, 0); // the cmdline tag becomes an end tag of size 12
  assertRejected(mbi, "end tag (type 0) at 0x10008 has size 12, expected 8");
  setU32(mbi, 12, 8);
  assertRejected(mbi, "end tag (type 0) at 0x10008 is not last: total_size 32 leaves 16 bytes");
});

Deno.test("parseMultiboot2() rejects a tag smaller than its 8-byte header", () => {
  const mbi = new MbiWriter().cmdline("abc").finish();
  setU32(mbi, 12, 4);
  assertRejected(mbi, "command line tag (type 1) at 0x10008 has size 4, below the minimum 8");
});

Deno.test("parseMultiboot2() rejects a tag running past total_size", () => {
  const mbi = new MbiWriter().cmdline("abc").finish();
  setU32(mbi, 12, 200);
  assertRejected(
    mbi,
    "command line tag (type 1) at 0x10008 has size 200, running past the MBI end",
  );
});

Deno.test("parseMultiboot2() rejects a misaligned tag (one written without padding)", () => {
  // A 13-byte cmdline tag followed directly by the end tag at offset 21.
  const mbi = new Uint8Array(32);
  setU32(mbi, 0, 29 + 3);
  setU32(mbi, 8, 1);
  setU32(mbi, 12, 13);
  mbi.set(new TextEncoder().encode("hell\0"), 16);
  setU32(mbi, 21, 0);
  setU32(mbi, 25, 8);
  // The parser looks for the next tag at the aligned offset 24, in the middle of the end tag.
  assertRejected(mbi, "unknown tag (type 2048) at 0x10018 has size 0, below the minimum 8");
});

Deno.test("parseMultiboot2() rejects bad memory map entry sizes", () => {
  for (const entrySize of [0, 16, 20, 28, 36]) {
    const mbi = new MbiWriter().memoryMap(MEMORY_MAP.slice(0, 2)).finish();
    setU32(mbi, 16, entrySize);
    assertRejected(
      mbi,
      `memory map tag (type 6) at 0x10008 has entry_size ${entrySize}: it must be at least 24 and a multiple of 8`,
    );
  }
});

Deno.test("parseMultiboot2() rejects a memory map that is not a whole number of entries", () => {
  const payload = new Uint8Array(8 + 24 + 8);
  setU32(payload, 0, 24);
  assertRejected(
    new MbiWriter().rawTag(6, payload).finish(),
    "has 32 bytes of entries, not a whole number of 24-byte entries",
  );
  assertRejected(new MbiWriter().rawTag(6, new Uint8Array(4)).finish(), "below the minimum 16");
});

Deno.test("parseMultiboot2() rejects 64-bit values of 2^53 or more", () => {
  const mbi = new MbiWriter().memoryMap([{ base: 0, length: 0x1000, type: 1 }]).finish();
  setU32(mbi, 24 + 4, 0x0020_0000);
  assertRejected(mbi, "has base_addr 0x20000000000000, not below 2^53");
  const ends = new MbiWriter().memoryMap([{ base: 2 ** 52, length: 2 ** 52 + 4096, type: 1 }])
    .finish();
  assertRejected(ends, "ending beyond 2^53");
  const efi = new MbiWriter().efi64SystemTable(0).finish();
  setU32(efi, 20, 0xffffffff);
  assertRejected(
    efi,
    "EFI 64-bit system table tag (type 12) at 0x10008 has pointer 0xffffffff00000000",
  );
});

Deno.test("parseMultiboot2() rejects strings not NUL-terminated inside their tag", () => {
  const noNul = new TextEncoder().encode("no terminator");
  assertRejected(
    new MbiWriter().rawTag(1, noNul).finish(),
    "command line tag (type 1) at 0x10008 has a string not NUL-terminated within its 21 bytes",
  );
  assertRejected(new MbiWriter().rawTag(2, noNul).finish(), "boot loader name tag (type 2)");
  const module = new Uint8Array(8 + noNul.length);
  module.set(noNul, 8);
  assertRejected(
    new MbiWriter().rawTag(3, module).finish(),
    "module tag (type 3) at 0x10008 has a string",
  );
  assertRejected(new MbiWriter().rawTag(1, new Uint8Array(0)).finish(), "not NUL-terminated");
});

Deno.test("parseMultiboot2() rejects fixed-size tags of the wrong size", () => {
  const cases: [number, number, string][] = [
    [4, 12, "basic memory information tag (type 4) at 0x10008 has size 20, expected 16"],
    [5, 8, "boot device tag (type 5) at 0x10008 has size 16, expected 20"],
    [7, 8, "VBE tag (type 7) at 0x10008 has size 16, expected 784"],
    [10, 24, "APM tag (type 10) at 0x10008 has size 32, expected 28"],
    [11, 8, "EFI 32-bit system table tag (type 11) at 0x10008 has size 16, expected 12"],
    [12, 4, "EFI 64-bit system table tag (type 12) at 0x10008 has size 12, expected 16"],
    [18, 4, "EFI boot services tag (type 18) at 0x10008 has size 12, expected 8"],
    [19, 8, "EFI 32-bit image handle tag (type 19) at 0x10008 has size 16, expected 12"],
    [20, 4, "EFI 64-bit image handle tag (type 20) at 0x10008 has size 12, expected 16"],
    [21, 8, "load base address tag (type 21) at 0x10008 has size 16, expected 12"],
  ];
  for (const [type, payloadBytes, message] of cases) {
    assertRejected(new MbiWriter().rawTag(type, new Uint8Array(payloadBytes)).finish(), message);
  }
});

Deno.test("parseMultiboot2() rejects variable-size tags below their minimum", () => {
  const cases: [number, number, string][] = [
    [3, 8, "module tag (type 3) at 0x10008 has size 16, below the minimum 17"],
    [8, 16, "framebuffer tag (type 8) at 0x10008 has size 24, below the minimum 32"],
    [9, 8, "ELF sections tag (type 9) at 0x10008 has size 16, below the minimum 20"],
    [13, 4, "SMBIOS tag (type 13) at 0x10008 has size 12, below the minimum 16"],
    [14, 16, "ACPI old RSDP tag (type 14) at 0x10008 has size 24, below the minimum 28"],
    [15, 20, "ACPI new RSDP tag (type 15) at 0x10008 has size 28, below the minimum 44"],
    [17, 4, "EFI memory map tag (type 17) at 0x10008 has size 12, below the minimum 16"],
  ];
  for (const [type, payloadBytes, message] of cases) {
    assertRejected(new MbiWriter().rawTag(type, new Uint8Array(payloadBytes)).finish(), message);
  }
});

Deno.test("parseMultiboot2() rejects a module whose start is after its end", () => {
  const mbi = new MbiWriter().module({ start: 0x200000, end: 0x300000, string: "m" }).finish();
  setU32(mbi, 20, 0x1ff000);
  assertRejected(
    mbi,
    "module tag (type 3) at 0x10008 has mod_start 0x200000 after mod_end 0x1ff000",
  );
});

Deno.test("parseMultiboot2() rejects framebuffers with unknown types or short palettes", () => {
  const fb = new MbiWriter().framebuffer(FRAMEBUFFER_RGB).finish();
  fb[8 + 29] = 7;
  assertRejected(fb, "framebuffer tag (type 8) at 0x10008 has unknown framebuffer_type 7");
  fb[8 + 29] = 0;
  setU32(fb, 8 + 32, 200); // 200 palette colours in a 38-byte tag
  assertRejected(fb, "too small for its 200-colour palette (needs 634)");
  const ega = new MbiWriter().framebuffer({ ...FRAMEBUFFER_RGB, colorInfo: { kind: "egaText" } })
    .finish();
  ega[8 + 29] = 1;
  assertRejected(ega, "framebuffer tag (type 8) at 0x10008 has size 32, below the minimum 38");
});

Deno.test("parseMultiboot2() rejects ELF section and EFI memory map counts that do not fit", () => {
  const elf = new MbiWriter().elfSections(ELF_SECTIONS).finish();
  setU32(elf, 16, 4);
  assertRejected(elf, "too small for 4 section headers of 64 bytes");
  setU32(elf, 16, 3);
  setU32(elf, 24, 3);
  assertRejected(elf, "has shndx 3, not below its 3 sections");
  const efi = new MbiWriter().efiMemoryMap(EFI_MEMORY_MAP).finish();
  setU32(efi, 16, 36);
  assertRejected(efi, "has descr_size 36, below the 40 of an EFI descriptor");
  setU32(efi, 16, 40);
  assertRejected(efi, "has 96 bytes of descriptors, not a whole number of 40-byte descriptors");
});

Deno.test("parseMultiboot2() rejects a repeated tag other than a module", () => {
  const mbi = new MbiWriter().memoryMap(MEMORY_MAP).cmdline("a").memoryMap(MEMORY_MAP).finish();
  assertRejected(mbi, "memory map tag (type 6) at 0x100e8 repeats the one at 0x10008");
});

Deno.test("parseMultiboot2() throws only InvalidBootInfo for 2000 corrupted MBIs", () => {
  const random = new Xorshift32(0xb007);
  const valid = everyTagMbi();
  const memory = PhysicalMemory.contiguous(16 * MiB);
  const tagOffsets: number[] = [];
  for (let at = 8; at < valid.length;) {
    tagOffsets.push(at);
    at = Math.ceil((at + new DataView(valid.buffer).getUint32(at + 4, true)) / 8) * 8;
  }
  let accepted = 0;
  for (let i = 0; i < 2000; i++) {
    const mbi = valid.slice();
    switch (i % 4) {
      case 0: // flip random bytes
        for (let n = 1 + random.below(4); n > 0; n--) {
          mbi[random.below(mbi.length)] ^= 1 << random.below(8);
        }
        break;
      case 1: // change a tag's size
        setU32(mbi, tagOffsets[random.below(tagOffsets.length)] + 4, random.below(1200));
        break;
      case 2: // truncate total_size
        setU32(mbi, 0, random.below(mbi.length + 64));
        break;
      case 3: // overwrite a random aligned u32 anywhere
        setU32(mbi, 4 * random.below(mbi.length / 4), random.next());
        break;
    }
    // Near the end of RAM, some total_sizes run past it; elsewhere, into zeros.
    const address = random.below(8) === 0 ? 16 * MiB - mbi.length : MBI_AT;
    memory.fill(MBI_AT, 64 * 1024, 0);
    memory.fill((16 * MiB - 64 * 1024) as PhysAddr, 64 * 1024, 0);
    memory.writeBytes(address as PhysAddr, mbi);
    try {
      parseMultiboot2(memory, address as PhysAddr);
      accepted++;
    } catch (error) {
      assert(error instanceof KernelError, `iteration ${i}: ${String(error)}`);
      assertEquals(error.code, "InvalidBootInfo");
    }
  }
  assert(accepted > 0 && accepted < 2000, `${accepted} accepted`);
});
