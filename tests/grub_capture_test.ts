/**
 * Real GRUB captures (tests/fixtures/grub/, made by scripts/capture_grub_mbi.sh)
 * boot with `--mbi FILE --mbi-addr ADDR` at the address GRUB put them, and
 * the kernel's `--report json` says what an independent decoder reads from
 * the same bytes. The decoder below is deliberately written from the
 * multiboot2 layout alone and shares no code with kernel/boot or
 * hal/multiboot2.
 */

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../testing/mod.ts";
import { hasStackTrace, runMain } from "./_cli.ts";
import { createPc } from "../devices/mod.ts";
import { loadRawMbi, PhysicalMemory, ramRangesForRawMbi, VirtualClock } from "../hal/mod.ts";
import { countFrameStates, Kernel } from "../kernel/mod.ts";

const FIXTURES = new URL("./fixtures/grub/", import.meta.url);

interface CaptureEntry {
  file: string;
  firmware: "bios" | "uefi";
  memory: string;
  kernel: string;
  magic: string;
  mbiAddress: string;
  totalSize: number;
}

interface Decoded {
  cmdline?: string;
  loaderName?: string;
  modules: { start: number; end: number; string: string }[];
  memoryMap: { base: number; length: number; type: number }[];
  /** From tag 21 and the allocated sections of tag 9. */
  image?: { start: number; end: number };
  tagTypes: number[];
  hasEfiBootServicesTag: boolean;
}

/** An independent multiboot2 reader: walks the tags of `bytes` and pulls out what the report shows. */
function decode(bytes: Uint8Array): Decoded {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (at: number) => view.getUint32(at, true);
  const u64 = (at: number) => u32(at) + u32(at + 4) * 2 ** 32;
  const text = (from: number, to: number) => {
    const raw = bytes.subarray(from, to);
    const nul = raw.indexOf(0);
    return new TextDecoder().decode(nul < 0 ? raw : raw.subarray(0, nul));
  };
  const out: Decoded = { modules: [], memoryMap: [], tagTypes: [], hasEfiBootServicesTag: false };
  let loadBase: number | undefined;
  let elfLow = Infinity;
  let elfHigh = 0;
  const total = u32(0);
  let at = 8;
  while (at < total) {
    const type = u32(at);
    const size = u32(at + 4);
    if (type === 0) break;
    out.tagTypes.push(type);
    if (type === 1) out.cmdline = text(at + 8, at + size);
    if (type === 2) out.loaderName = text(at + 8, at + size);
    if (type === 3) {
      out.modules.push({ start: u32(at + 8), end: u32(at + 12), string: text(at + 16, at + size) });
    }
    if (type === 6) {
      const entrySize = u32(at + 8);
      for (let e = at + 16; e + entrySize <= at + size; e += entrySize) {
        out.memoryMap.push({ base: u64(e), length: u64(e + 8), type: u32(e + 16) });
      }
    }
    if (type === 9) {
      const count = u32(at + 8);
      const entsize = u32(at + 12);
      for (let i = 0; i < count; i++) {
        const sh = at + 20 + i * entsize;
        const flags = u32(sh + 8);
        const addr = entsize === 64 ? u64(sh + 16) : u32(sh + 12);
        const sectionSize = entsize === 64 ? u64(sh + 32) : u32(sh + 20);
        if ((flags & 2) !== 0 && sectionSize > 0) {
          elfLow = Math.min(elfLow, addr);
          elfHigh = Math.max(elfHigh, addr + sectionSize);
        }
      }
    }
    if (type === 18) out.hasEfiBootServicesTag = true;
    if (type === 21) loadBase = u32(at + 8);
    at += (size + 7) & ~7;
  }
  if (loadBase !== undefined && elfHigh > 0) {
    out.image = { start: Math.min(loadBase, elfLow), end: elfHigh };
  }
  return out;
}

interface Report {
  bootloaderName: string;
  cmdline: string;
  mbi: { address: number; totalSize: number; tagTypes: number[] };
  memoryMap: { base: number; length: number; type: number }[];
  modules: { start: number; end: number; string: string; loaded: boolean }[];
  kernelImage: { start: number; end: number; baseSource: string; endSource: string };
}

const index: { captures: CaptureEntry[] } = JSON.parse(
  Deno.readTextFileSync(new URL("index.json", FIXTURES)),
);

Deno.test("The GRUB fixtures cover BIOS and UEFI, several memory sizes, a module and a framebuffer", () => {
  const bootable = index.captures.filter((c) => !decode(read(c)).hasEfiBootServicesTag);
  assertEquals(new Set(bootable.map((c) => c.firmware)), new Set(["bios", "uefi"]));
  assert(new Set(bootable.map((c) => c.memory)).size >= 4);
  for (const capture of index.captures) {
    const decoded = decode(read(capture));
    assertEquals(decoded.modules.length, 1, capture.file);
    assert(decoded.tagTypes.includes(8), `${capture.file} has a framebuffer tag`);
    assertEquals(read(capture).length, capture.totalSize);
    assertEquals(capture.magic, "0x36d76289");
  }
});

function read(capture: CaptureEntry): Uint8Array {
  return Deno.readFileSync(new URL(capture.file, FIXTURES));
}

for (const capture of index.captures) {
  const path = new URL(capture.file, FIXTURES).pathname;
  const decoded = decode(read(capture));
  if (decoded.hasEfiBootServicesTag) {
    Deno.test(`main.ts --mbi ${capture.file} (EFI boot services kept) is a kernel panic saying so`, async () => {
      const run = await runMain([
        "--clock",
        "virtual",
        "--mbi",
        path,
        "--mbi-addr",
        capture.mbiAddress,
      ]);
      assertEquals(run.code, 1);
      assertMatch(
        run.stdout,
        /^KERNEL PANIC: EfiBootServicesActive: EFI boot services were not terminated \(multiboot2 tag 18: the kernel's header asked the boot loader to keep them\), so the boot information has no memory map/m,
      );
      assertEquals(decoded.memoryMap, [], "GRUB passed no memory map");
      assert(!hasStackTrace(run.stdout + run.stderr));
    });
    continue;
  }
  Deno.test(`main.ts --mbi ${capture.file} --mbi-addr ${capture.mbiAddress} boots and reports what the bytes say`, async () => {
    const run = await runMain([
      "--clock",
      "virtual",
      "--report",
      "json",
      "--mbi",
      path,
      "--mbi-addr",
      capture.mbiAddress,
    ]);
    assertEquals(run.code, 0, run.stderr);
    assertStringIncludes(run.stderr, "boot: kernel up");
    const report: Report = JSON.parse(run.stdout);
    assertEquals(report.mbi.address, Number(capture.mbiAddress));
    assertEquals(report.mbi.totalSize, capture.totalSize);
    assertEquals(report.mbi.tagTypes, decoded.tagTypes);
    assertEquals(report.memoryMap, decoded.memoryMap);
    assertEquals(report.cmdline, decoded.cmdline);
    assertEquals(report.bootloaderName, decoded.loaderName);
    assertEquals(
      report.modules.map(({ start, end, string }) => ({ start, end, string })),
      decoded.modules,
    );
    // A capture carries the module tag, not the module's bytes.
    assertEquals(report.modules.map((m) => m.loaded), [false]);
    assertStringIncludes(run.stderr, "not loaded: ");
    // The kernel image is where tags 21 and 9 say, not a 512 KiB stand-in.
    assertEquals(
      { start: report.kernelImage.start, end: report.kernelImage.end },
      decoded.image,
    );
    assertEquals(report.kernelImage.endSource, "the ELF sections tag (9)");
    assertMatch(
      run.stderr,
      /reserved 0x[0-9a-f]+\.\.0x[0-9a-f]+ ELF section 5 copy \(symbol table\): from the ELF sections tag \(9\)/,
    );
  });
}

Deno.test("Kernel.boot() maps and reserves the kernel image GRUB described, not a 512 KiB stand-in", () => {
  const capture = index.captures.find((c) => c.file === "bios-128m.mbi")!;
  const bytes = read(capture);
  const mbiAddress = Number(capture.mbiAddress);
  const memory = new PhysicalMemory(ramRangesForRawMbi(bytes, { mbiAddress }));
  const pc = createPc(memory, new VirtualClock(), { serialSink: () => {} });
  const loaded = loadRawMbi(memory, bytes, { mbiAddress });
  const kernel = Kernel.boot(pc.machine, loaded.magic, loaded.mbiAddress, { version: "test" });
  const image = decode(bytes).image!;
  const mapped = kernel.kernelSpace.regions.find((r) => r.name === "kernel image")!;
  assertEquals(mapped.physStart, image.start);
  assertEquals(mapped.sizeBytes, Math.ceil(image.end / 4096) * 4096 - image.start);
  // Every frame from the image to the MBI's end is reserved; what a 512 KiB stand-in covered is not.
  const first = image.start / 4096;
  const mbiEndFrame = Math.ceil((mbiAddress + bytes.length) / 4096);
  assertEquals(
    countFrameStates(kernel.frames, first, mbiEndFrame - first).reserved,
    mbiEndFrame - first,
  );
  const standIn = countFrameStates(kernel.frames, 0x106, 0x180 - 0x106);
  assert(standIn.free > 0x40, JSON.stringify(standIn));
});
