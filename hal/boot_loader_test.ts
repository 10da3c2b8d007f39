import { assert, assertEquals, assertThrows, Xorshift32 } from "../testing/mod.ts";
import type { PhysAddr } from "./address.ts";
import {
  BootLoaderError,
  type BootLoaderErrorCode,
  buildRsdpV1,
  findMultiboot2Header,
  loadMultiboot2,
  loadRawMbi,
  memoryMapFromRawMbi,
  moduleRangesFromRawMbi,
  ramRangesForRawMbi,
  RAW_MBI_FALLBACK_RAM_BYTES,
} from "./boot_loader.ts";
import {
  KERNEL_LOAD_ADDRESS,
  PCI_HOLE_START,
  pcMemoryMap,
  ramRangesFor,
  RAW_MBI_DEFAULT_ADDRESS,
} from "./memory_layout.ts";
import { MbiWriter, type MemoryMapEntry } from "./multiboot2.ts";
import { PhysicalMemory } from "./physical_memory.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const VERSION = "1.2.3";

/** A header tag: u16 type, u16 flags, u32 size, u32 payload values, padded to 8 bytes. */
function headerTag(type: number, flags: number, values: readonly number[] = []): Uint8Array {
  const size = 8 + 4 * values.length;
  const bytes = new Uint8Array(Math.ceil(size / 8) * 8);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, type, true);
  view.setUint16(2, flags, true);
  view.setUint32(4, size, true);
  values.forEach((value, i) => view.setUint32(8 + 4 * i, value, true));
  return bytes;
}

const END_TAG = headerTag(0, 0);

interface ImageOptions {
  readonly sizeBytes?: number;
  readonly offset?: number;
  readonly architecture?: number;
  readonly headerLength?: number;
  readonly checksumDelta?: number;
  readonly tags?: readonly Uint8Array[];
}

/** A kernel image with a Multiboot2 header, filled with a recognisable pattern. */
function kernelImage(options: ImageOptions = {}): Uint8Array {
  const image = new Uint8Array(options.sizeBytes ?? 64 * 1024);
  for (let i = 0; i < image.length; i++) image[i] = (i * 7 + 1) & 0xff;
  const offset = options.offset ?? 0;
  const tags = options.tags ?? [END_TAG];
  const tagBytes = tags.reduce((sum, tag) => sum + tag.length, 0);
  const architecture = options.architecture ?? 0;
  const headerLength = options.headerLength ?? 16 + tagBytes;
  const checksum = (-(0xe85250d6 + architecture + headerLength) + (options.checksumDelta ?? 0)) >>>
    0;
  const view = new DataView(image.buffer);
  [0xe85250d6, architecture, headerLength, checksum].forEach((value, i) =>
    view.setUint32(offset + 4 * i, value, true)
  );
  let at = offset + 16;
  for (const tag of tags) {
    image.set(tag, at);
    at += tag.length;
  }
  return image;
}

function pcMachine(ramBytes: number): { memory: PhysicalMemory; memoryMap: MemoryMapEntry[] } {
  const memoryMap = pcMemoryMap(ramBytes);
  return { memory: new PhysicalMemory(ramRangesFor(memoryMap)), memoryMap };
}

function assertBootError(fn: () => unknown, code: BootLoaderErrorCode, fragment: string): void {
  const error = assertThrows(fn, BootLoaderError, fragment);
  assertEquals(error.code, code);
}

interface TagView {
  readonly type: number;
  readonly payload: Uint8Array;
}

/** Reads the MBI at `address` back from RAM as a list of tags (after the 8-byte header). */
function readMbi(memory: PhysicalMemory, address: number): TagView[] {
  const totalSize = memory.read32(address as PhysAddr);
  const bytes = memory.readBytes(address as PhysAddr, totalSize);
  const view = new DataView(bytes.buffer);
  const tags: TagView[] = [];
  for (let at = 8; at < totalSize; at = Math.ceil((at + view.getUint32(at + 4, true)) / 8) * 8) {
    const size = view.getUint32(at + 4, true);
    tags.push({ type: view.getUint32(at, true), payload: bytes.slice(at + 8, at + size) });
  }
  return tags;
}

const u32At = (bytes: Uint8Array, offset: number) =>
  new DataView(bytes.buffer, bytes.byteOffset).getUint32(offset, true);
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const byteSum = (bytes: Uint8Array) => bytes.reduce((sum, b) => (sum + b) & 0xff, 0);

Deno.test("findMultiboot2Header() finds a valid header and its information requests", () => {
  const image = kernelImage({
    offset: 0x1000,
    tags: [headerTag(1, 0, [1, 6, 14]), headerTag(6, 1), END_TAG],
  });
  assertEquals(findMultiboot2Header(image), {
    offsetBytes: 0x1000,
    headerLengthBytes: 16 + 24 + 8 + 8,
    requestedTagTypes: [1, 6, 14],
  });
});

Deno.test("findMultiboot2Header() skips a magic with a bad checksum for a later valid header", () => {
  const image = kernelImage({ offset: 0x100 });
  new DataView(image.buffer).setUint32(0x10, 0xe85250d6, true); // a stray constant in code
  assertEquals(findMultiboot2Header(image).offsetBytes, 0x100);
});

Deno.test("findMultiboot2Header() rejects a bad checksum", () => {
  assertBootError(
    () => findMultiboot2Header(kernelImage({ checksumDelta: 1 })),
    "InvalidKernelImage",
    "the four fields sum to 0x1, not 0",
  );
});

Deno.test("findMultiboot2Header() rejects a magic beyond the first 32 KiB", () => {
  assertBootError(
    () => findMultiboot2Header(kernelImage({ offset: 0x8000 })),
    "InvalidKernelImage",
    "found at offset 0x8000, beyond it",
  );
});

Deno.test("findMultiboot2Header() rejects a header that is not 8-byte aligned", () => {
  assertBootError(
    () => findMultiboot2Header(kernelImage({ offset: 0x104 })),
    "InvalidKernelImage",
    "offset 0x104, which is not 8-byte aligned",
  );
});

Deno.test("findMultiboot2Header() rejects an image without a header", () => {
  assertBootError(
    () => findMultiboot2Header(new Uint8Array(4096)),
    "InvalidKernelImage",
    "no multiboot2 header (magic 0xe85250d6) in the first 32 KiB",
  );
  assertBootError(
    () => findMultiboot2Header(new Uint8Array(0)),
    "InvalidKernelImage",
    "no multiboot2 header",
  );
});

Deno.test("findMultiboot2Header() rejects a header crossing the 32 KiB limit or the image end", () => {
  assertBootError(
    () => findMultiboot2Header(kernelImage({ offset: 0x7ff8 })),
    "InvalidKernelImage",
    "runs past the image or its first 32 KiB",
  );
  assertBootError(
    () => findMultiboot2Header(kernelImage({ offset: 0x7ff0 })),
    "InvalidKernelImage",
    "header_length 24, running past the image or its first 32 KiB (16 bytes fit)",
  );
});

Deno.test("findMultiboot2Header() rejects a wrong architecture or header_length", () => {
  assertBootError(
    () => findMultiboot2Header(kernelImage({ architecture: 4 })),
    "InvalidKernelImage",
    "architecture 4, expected 0 (i386)",
  );
  assertBootError(
    () => findMultiboot2Header(kernelImage({ headerLength: 16 })),
    "InvalidKernelImage",
    "header_length 16, below the 24 bytes",
  );
  assertBootError(
    () => findMultiboot2Header(kernelImage({ headerLength: 0x10000 })),
    "InvalidKernelImage",
    "header_length 65536",
  );
});

Deno.test("findMultiboot2Header() rejects malformed header tags", () => {
  assertBootError(
    () => findMultiboot2Header(kernelImage({ tags: [headerTag(4, 1, [0]), headerTag(5, 1)] })),
    "InvalidKernelImage",
    "no end tag within its header_length",
  );
  const tooBig = headerTag(4, 1, [0]);
  new DataView(tooBig.buffer).setUint32(4, 64, true);
  assertBootError(
    () => findMultiboot2Header(kernelImage({ tags: [tooBig, END_TAG] })),
    "InvalidKernelImage",
    "header tag type 4 at offset 0x10 has size 64, outside the header",
  );
});

Deno.test("findMultiboot2Header() refuses required unknown tags but ignores optional ones", () => {
  assertBootError(
    () => findMultiboot2Header(kernelImage({ tags: [headerTag(42, 0), END_TAG] })),
    "InvalidKernelImage",
    "type 42 at offset 0x10 is required but unknown",
  );
  assertBootError(
    () => findMultiboot2Header(kernelImage({ tags: [headerTag(1, 0, [6, 99]), END_TAG] })),
    "InvalidKernelImage",
    "requires MBI tag type 99",
  );
  const image = kernelImage({ tags: [headerTag(42, 1), headerTag(1, 1, [99]), END_TAG] });
  assertEquals(findMultiboot2Header(image).requestedTagTypes, [99]);
});

Deno.test("loadMultiboot2() copies the image to 1 MiB and modules page-aligned after it", () => {
  const { memory, memoryMap } = pcMachine(128 * MiB);
  const image = kernelImage({ sizeBytes: 300_000 });
  const modules = [
    { name: "initrd", bytes: new Uint8Array(5000).fill(0x11), string: "initrd root=/" },
    { name: "empty", bytes: new Uint8Array(0), string: "" },
    { name: "font", bytes: new Uint8Array(4096).fill(0x22), string: "font" },
  ];
  const loaded = loadMultiboot2(memory, image, { memoryMap, loaderVersion: VERSION, modules });

  assertEquals(loaded.kernelImage, { start: 0x100000, end: 0x100000 + 300_000 });
  assertEquals(memory.readBytes(KERNEL_LOAD_ADDRESS, image.length), image);
  const firstModule = Math.ceil((0x100000 + 300_000) / 4096) * 4096;
  assertEquals(loaded.modules, [
    { start: firstModule, end: firstModule + 5000, string: "initrd root=/" },
    { start: firstModule + 8192, end: firstModule + 8192, string: "" },
    { start: firstModule + 8192, end: firstModule + 8192 + 4096, string: "font" },
  ]);
  loaded.modules.forEach((module, i) => {
    assertEquals(module.start % 4096, 0);
    assertEquals(memory.readBytes(module.start, module.end - module.start), modules[i].bytes);
  });
});

Deno.test("loadMultiboot2() writes the MBI after the modules with the right total_size", () => {
  const { memory, memoryMap } = pcMachine(128 * MiB);
  const loaded = loadMultiboot2(memory, kernelImage(), {
    memoryMap,
    loaderVersion: VERSION,
    cmdline: "console=ttyS0 loglevel=7",
    modules: [{ name: "m", bytes: new Uint8Array(10), string: "mod" }],
  });
  assertEquals(loaded.magic, 0x36d76289);
  assertEquals(loaded.mbiAddress, loaded.modules[0].start + 4096);
  assertEquals(loaded.mbiAddress % 8, 0);
  assertEquals(memory.read32(loaded.mbiAddress), loaded.mbiSizeBytes);
  assertEquals(memory.read32((loaded.mbiAddress + 4) as PhysAddr), 0);

  const tags = readMbi(memory, loaded.mbiAddress);
  assertEquals(tags.map((tag) => tag.type), [1, 2, 3, 4, 6, 21, 14, 0]);
  assertEquals(text(tags[0].payload), "console=ttyS0 loglevel=7\0");
  assertEquals(text(tags[1].payload), `kernelsim ${VERSION}\0`);
  assertEquals(u32At(tags[2].payload, 0), loaded.modules[0].start);
  assertEquals(u32At(tags[2].payload, 4), loaded.modules[0].end);
  assertEquals(text(tags[2].payload.subarray(8)), "mod\0");
  assertEquals([u32At(tags[3].payload, 0), u32At(tags[3].payload, 4)], [
    639,
    (0x7fe0000 - 0x100000) / 1024,
  ]);
  assertEquals(tags[4].payload.length, 8 + 24 * memoryMap.length);
  assertEquals(u32At(tags[5].payload, 0), 0x100000);
  assertEquals(tags[7].payload.length, 0, "end tag");
});

Deno.test("loadMultiboot2() passes a valid RSDP v1 pointing at an empty RSDT in the ACPI area", () => {
  const { memory, memoryMap } = pcMachine(128 * MiB);
  const loaded = loadMultiboot2(memory, kernelImage(), { memoryMap, loaderVersion: VERSION });
  const rsdp = readMbi(memory, loaded.mbiAddress).find((tag) => tag.type === 14)!.payload;
  assertEquals(rsdp.length, 20);
  assertEquals(text(rsdp.subarray(0, 8)), "RSD PTR ");
  assertEquals(byteSum(rsdp), 0, "checksum");
  assertEquals(text(rsdp.subarray(9, 15)), "KSIM  ");
  assertEquals(rsdp[15], 0, "revision");
  const rsdtAddress = u32At(rsdp, 16);
  assertEquals(rsdtAddress, 0x7fe0000);
  const rsdt = memory.readBytes(rsdtAddress as PhysAddr, 36);
  assertEquals(text(rsdt.subarray(0, 4)), "RSDT");
  assertEquals(u32At(rsdt, 4), 36);
  assertEquals(byteSum(rsdt), 0, "RSDT checksum");
});

Deno.test("loadMultiboot2() copies a given RSDP verbatim", () => {
  const { memory, memoryMap } = pcMachine(16 * MiB);
  const rsdp = buildRsdpV1(0xe0000);
  const loaded = loadMultiboot2(memory, kernelImage(), {
    memoryMap,
    loaderVersion: VERSION,
    rsdp,
  });
  assertEquals(readMbi(memory, loaded.mbiAddress).find((tag) => tag.type === 14)!.payload, rsdp);
  assertEquals(memory.read32((16 * MiB - 0x20000) as PhysAddr), 0, "no RSDT written");
});

Deno.test("loadMultiboot2() reports upper memory up to the PCI hole on a 4 GiB machine", () => {
  const { memory, memoryMap } = pcMachine(4 * GiB);
  const loaded = loadMultiboot2(memory, kernelImage(), { memoryMap, loaderVersion: VERSION });
  const meminfo = readMbi(memory, loaded.mbiAddress).find((tag) => tag.type === 4)!.payload;
  assertEquals(u32At(meminfo, 4), (PCI_HOLE_START - 0x20000 - 0x100000) / 1024);
});

Deno.test("loadMultiboot2() rejects a kernel image without a valid header", () => {
  const { memory, memoryMap } = pcMachine(16 * MiB);
  assertBootError(
    () =>
      loadMultiboot2(memory, kernelImage({ checksumDelta: 5 }), {
        memoryMap,
        loaderVersion: VERSION,
      }),
    "InvalidKernelImage",
    "checksum",
  );
});

Deno.test("loadMultiboot2() fails with DoesNotFit when the image or a module exceeds RAM", () => {
  const { memory, memoryMap } = pcMachine(16 * MiB);
  assertBootError(
    () =>
      loadMultiboot2(memory, kernelImage({ sizeBytes: 16 * MiB }), {
        memoryMap,
        loaderVersion: VERSION,
      }),
    "DoesNotFit",
    "The kernel image (16777216 bytes at 0x100000..0x1100000)",
  );
  assertBootError(
    () =>
      loadMultiboot2(memory, kernelImage(), {
        memoryMap,
        loaderVersion: VERSION,
        modules: [{ name: "huge", bytes: new Uint8Array(15 * MiB), string: "" }],
      }),
    "DoesNotFit",
    'module "huge"',
  );
});

Deno.test("loadMultiboot2() places nothing where the memory map has no available RAM", () => {
  const memory = PhysicalMemory.contiguous(16 * MiB);
  const memoryMap = [{ base: 0, length: 0x9fc00, type: 1 }];
  assertBootError(
    () => loadMultiboot2(memory, kernelImage(), { memoryMap, loaderVersion: VERSION }),
    "DoesNotFit",
    "kernel image",
  );
});

Deno.test("buildRsdpV1() builds a checksummed ACPI 1.0 RSDP", () => {
  const rsdp = buildRsdpV1(0x7fe0000);
  assertEquals(byteSum(rsdp), 0);
  assertEquals(u32At(rsdp, 16), 0x7fe0000);
  assertThrows(() => buildRsdpV1(2 ** 32), RangeError, "32 bits");
});

/** A GRUB-like MBI: the memory map of a 512 MiB QEMU machine with SeaBIOS, and more. */
function grubLikeMbi(): Uint8Array {
  return new MbiWriter()
    .bootLoaderName("GRUB 2.12")
    .cmdline("/boot/kernel console=ttyS0")
    .module({ start: 0x13c000, end: 0x14a000, string: "/boot/initrd" })
    .basicMemInfo({ memLowerKiB: 639, memUpperKiB: 523136 })
    .bootDevice({ biosDevice: 0x80, partition: 0, subPartition: 0xffffffff })
    .memoryMap([
      { base: 0, length: 0x9fc00, type: 1 },
      { base: 0x9fc00, length: 0x400, type: 2 },
      { base: 0xf0000, length: 0x10000, type: 2 },
      { base: 0x100000, length: 0x1fee0000, type: 1 },
      { base: 0x1ffe0000, length: 0x20000, type: 2 },
      { base: 0xfeffc000, length: 0x4000, type: 2 },
      { base: 0xfffc0000, length: 0x40000, type: 2 },
    ])
    .loadBaseAddr(0x100000)
    .finish();
}

Deno.test("memoryMapFromRawMbi() reads a GRUB-like MBI's memory map", () => {
  const map = memoryMapFromRawMbi(grubLikeMbi())!;
  assertEquals(map.length, 7);
  assertEquals(map[3], { base: 0x100000, length: 0x1fee0000, type: 1 });
});

Deno.test("memoryMapFromRawMbi() returns undefined without a usable memory map", () => {
  assertEquals(memoryMapFromRawMbi(new MbiWriter().cmdline("x").finish()), undefined);
  assertEquals(memoryMapFromRawMbi(new Uint8Array(3)), undefined);
  const reservedOnly = new MbiWriter().memoryMap([{ base: 0, length: 4096, type: 2 }]).finish();
  assertEquals(memoryMapFromRawMbi(reservedOnly), undefined);
});

Deno.test("memoryMapFromRawMbi() skips entries beyond 2^53 and clips those past what RAM can back", () => {
  const mbi = new MbiWriter()
    .memoryMap([{ base: 0, length: 0, type: 1 }, { base: 0x1000, length: 2 ** 40, type: 1 }])
    .finish();
  new DataView(mbi.buffer).setUint32(24 + 4, 0xffffffff, true); // first base: 2^64 - ...
  assertEquals(memoryMapFromRawMbi(mbi), [{ base: 0x1000, length: 68 * GiB - 0x1000, type: 1 }]);
});

Deno.test("memoryMapFromRawMbi() and ramRangesForRawMbi() never throw on random garbage", () => {
  const random = new Xorshift32(0x5eed);
  const base = grubLikeMbi();
  for (let i = 0; i < 2000; i++) {
    const bytes = i % 2 === 0 ? base.slice(0, random.below(base.length + 1)) : base.slice();
    const flips = 1 + random.below(8);
    for (let f = 0; f < flips && bytes.length > 0; f++) {
      bytes[random.below(bytes.length)] = random.below(256);
    }
    if (i % 5 === 0) bytes.fill(0xff, 0, Math.min(bytes.length, random.below(64)));
    memoryMapFromRawMbi(bytes);
    const ranges = ramRangesForRawMbi(bytes);
    assert(ranges.length > 0);
    assert(ranges.every((r) => r.base % 4096 === 0 && r.sizeBytes % 4096 === 0 && r.sizeBytes > 0));
  }
});

Deno.test("ramRangesForRawMbi() gives the MBI's RAM and its own frames, without its modules' frames", () => {
  const mbi = grubLikeMbi(); // module 0x13c000..0x14a000
  assertEquals(ramRangesForRawMbi(mbi), [
    { base: 0, sizeBytes: 0x9f000 },
    { base: 0x100000, sizeBytes: 0x3c000 },
    { base: 0x14a000, sizeBytes: 0x1fe96000 },
  ]);
  const high = ramRangesForRawMbi(mbi, { mbiAddress: 0x30000008 });
  assertEquals(high.at(-1), { base: 0x30000000, sizeBytes: 0x1000 });
});

Deno.test("ramRangesForRawMbi() rounds module holes out to frames but keeps every frame of the MBI", () => {
  // Like GRUB's layout: the MBI right after the image, a module on the next page.
  const mbi = new MbiWriter()
    .module({ start: 0x105000, end: 0x1050ef, string: "initrd" })
    .module({ start: 0x104f00, end: 0x107010, string: "shares the MBI's frame" })
    .memoryMap([{ base: 0x100000, length: 0x1000000, type: 1 }])
    .finish();
  assertEquals(moduleRangesFromRawMbi(mbi), [
    { start: 0x105000, end: 0x1050ef },
    { start: 0x104f00, end: 0x107010 },
  ]);
  assertEquals(ramRangesForRawMbi(mbi, { mbiAddress: 0x104720 }), [
    { base: 0x100000, sizeBytes: 0x5000 }, // 0x104000 holds the MBI: kept
    { base: 0x108000, sizeBytes: 0xff8000 },
  ]);
});

Deno.test("ramRangesForRawMbi() falls back to a 128 MiB PC without a usable memory map", () => {
  const mbi = new MbiWriter().cmdline("no map").finish();
  const ranges = ramRangesForRawMbi(mbi);
  assertEquals(ranges, ramRangesFor(pcMemoryMap(RAW_MBI_FALLBACK_RAM_BYTES)));
});

Deno.test("ramRangesForRawMbi() accepts an MBI where GRUB puts it, right after a small kernel", () => {
  const mbi = grubLikeMbi();
  const ranges = ramRangesForRawMbi(mbi, { mbiAddress: 0x104768 });
  assert(ranges.some((r) => r.base <= 0x104000 && r.base + r.sizeBytes >= 0x105000));
});

Deno.test("ramRangesForRawMbi() rejects a misaligned or unreachable MBI address", () => {
  const mbi = grubLikeMbi();
  assertBootError(
    () => ramRangesForRawMbi(mbi, { mbiAddress: 0x10004 }),
    "InvalidArgument",
    "8-byte aligned",
  );
  assertBootError(
    () => ramRangesForRawMbi(mbi, { mbiAddress: 2 ** 32 }),
    "InvalidArgument",
    "below 4 GiB",
  );
});

Deno.test("loadRawMbi() places the bytes unchanged at 0x10000 by default, and nothing else", () => {
  const mbi = grubLikeMbi();
  const memory = new PhysicalMemory(ramRangesForRawMbi(mbi));
  const loaded = loadRawMbi(memory, mbi);
  assertEquals(loaded, {
    magic: 0x36d76289,
    mbiAddress: RAW_MBI_DEFAULT_ADDRESS,
    mbiSizeBytes: mbi.length,
    kernelImage: { start: 0x100000, end: 0x100000 },
    modules: [],
  });
  assertEquals(memory.readBytes(RAW_MBI_DEFAULT_ADDRESS, mbi.length), mbi);
  assertEquals(memory.readBytes(KERNEL_LOAD_ADDRESS, 4096), new Uint8Array(4096));
  assert(!memory.isRam(0x13c000, 1), "the module's frames are not RAM");
});

Deno.test("loadRawMbi() honours --mbi-addr and rejects addresses it cannot use", () => {
  const mbi = grubLikeMbi();
  const memory = new PhysicalMemory(ramRangesForRawMbi(mbi, { mbiAddress: 0x2000_0000 }));
  assertEquals(loadRawMbi(memory, mbi, { mbiAddress: 0x2000_0000 }).mbiAddress, 0x2000_0000);
  assertEquals(memory.read32(0x2000_0000 as PhysAddr), mbi.length);
  assertBootError(
    () => loadRawMbi(memory, mbi, { mbiAddress: 0x10001 }),
    "InvalidArgument",
    "8-byte aligned",
  );
  assertBootError(
    () => loadRawMbi(memory, mbi, { mbiAddress: 0x1ffff000 }),
    "DoesNotFit",
    "raw MBI",
  );
});
