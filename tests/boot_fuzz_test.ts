/**
 * Seeded fuzzing of boot information through the whole boot: random and
 * mutated MBIs go through the raw-MBI loader into a fresh PC and
 * `Kernel.boot`, exactly as `--mbi FILE --mbi-addr ADDR` does. Every outcome
 * must be a clean boot that keeps what it reserved, a boot loader refusal
 * (a typed `BootLoaderError`), or a kernel panic caused by a typed, named
 * `KernelError`: never a RangeError, TypeError, bus error or any other
 * JavaScript error reaching the user.
 */

import { assert, assertEquals, assertThrows, Xorshift32 } from "../testing/mod.ts";
import { createPc } from "../devices/mod.ts";
import {
  BootLoaderError,
  loadRawMbi,
  MbiWriter,
  type MemoryMapEntry,
  PhysicalMemory,
  ramRangesForRawMbi,
  VirtualClock,
} from "../hal/mod.ts";
import { FrameAllocator, Kernel, KernelError, KernelPanic } from "../kernel/mod.ts";

const MiB = 2 ** 20;
const FRAME = 4096;
const FIXTURES = new URL("./fixtures/grub/", import.meta.url);
const ROUNDS = 240;

interface Capture {
  readonly bytes: Uint8Array;
  readonly address: number;
}

function loadCaptures(): Capture[] {
  const index = JSON.parse(Deno.readTextFileSync(new URL("index.json", FIXTURES)));
  return index.captures.map((c: { file: string; mbiAddress: string }) => ({
    bytes: Deno.readFileSync(new URL(c.file, FIXTURES)),
    address: Number(c.mbiAddress),
  }));
}

/** A string with some control characters and escape sequences in it. */
function nastyString(random: Xorshift32): string {
  const parts = [
    "console=ttyS0",
    "\x1b[2J",
    "\x1b]0;title\x07",
    "\t",
    "\r\n",
    "\u009b31m",
    "é",
    "\\",
  ];
  let text = "";
  for (let i = random.below(5); i >= 0; i--) text += parts[random.below(parts.length)];
  return text;
}

function randomMemoryMap(random: Xorshift32): MemoryMapEntry[] {
  const types = [1, 1, 1, 2, 3, 4, 5, 20];
  const entries: MemoryMapEntry[] = [];
  if (random.below(4) !== 0) {
    // Usually a plausible PC map underneath, so some boots get far.
    const top = (16 + random.below(240)) * MiB;
    entries.push({ base: 0, length: 0x9fc00, type: 1 }, {
      base: 0x100000,
      length: top - 0x100000,
      type: 1,
    });
  }
  for (let i = random.below(7); i > 0; i--) {
    const scale = [0x1000, 0x10000, 0x100000, 0x4000000][random.below(4)];
    const base = random.below(10) === 0
      ? random.below(2 ** 20) * 2 ** 30 // far beyond RAM, maybe beyond the address width
      : random.below(0x400) * scale + (random.below(3) === 0 ? random.below(0x1000) : 0);
    entries.push({
      base,
      length: random.below(0x400) * scale,
      type: types[random.below(types.length)],
    });
  }
  return entries;
}

function randomElfSections(random: Xorshift32) {
  const is64 = random.below(2) === 0;
  const entrySizeBytes = random.below(8) === 0 ? 48 : is64 ? 64 : 40;
  const sectionCount = 1 + random.below(6);
  const headers = new Uint8Array(sectionCount * entrySizeBytes);
  const view = new DataView(headers.buffer);
  for (let i = 0; i < sectionCount; i++) {
    const at = i * entrySizeBytes;
    view.setUint32(at + 4, random.below(9), true); // sh_type
    view.setUint32(at + 8, random.below(8), true); // sh_flags (bit 1: SHF_ALLOC)
    const addr = random.below(3) === 0 ? random.next() : 0x100000 + random.below(0x100) * 0x1000;
    const size = random.below(4) === 0 ? random.next() : random.below(0x20000);
    if (entrySizeBytes === 64) {
      view.setUint32(at + 16, addr, true);
      view.setUint32(at + 20, random.below(5) === 0 ? 0xffffffff : 0, true);
      view.setUint32(at + 32, size, true);
    } else if (entrySizeBytes === 40) {
      view.setUint32(at + 12, addr, true);
      view.setUint32(at + 20, size, true);
    }
  }
  return { sectionCount, entrySizeBytes, stringTableIndex: random.below(sectionCount), headers };
}

/** A structurally valid MBI with random, often nonsensical, contents. */
function randomMbi(random: Xorshift32): Uint8Array {
  const writer = new MbiWriter();
  if (random.below(2) === 0) writer.loadBaseAddr(random.below(3) === 0 ? random.next() : 0x100000);
  if (random.below(2) === 0) writer.cmdline(nastyString(random));
  if (random.below(2) === 0) writer.bootLoaderName(nastyString(random));
  for (let i = random.below(4); i > 0; i--) {
    const start = random.below(4) === 0 ? random.next() : 0x100000 + random.below(0x2000) * 0x100;
    const end = Math.min(2 ** 32 - 1, start + random.below(0x40000));
    writer.module({ start, end, string: nastyString(random) });
  }
  if (random.below(3) !== 0) writer.memoryMap(randomMemoryMap(random));
  if (random.below(3) === 0) {
    writer.basicMemInfo({ memLowerKiB: random.below(641), memUpperKiB: random.below(512 * 1024) });
  }
  if (random.below(3) === 0) writer.elfSections(randomElfSections(random));
  if (random.below(12) === 0) writer.efiBootServicesNotTerminated();
  if (random.below(6) === 0) {
    writer.rawTag(22 + random.below(100), new Uint8Array(random.below(40)));
  }
  return writer.finish();
}

/** A GRUB capture with a few bytes changed or cut off. */
function mutatedCapture(random: Xorshift32, captures: readonly Capture[]): Capture {
  const capture = captures[random.below(captures.length)];
  const bytes = capture.bytes.slice(
    0,
    random.below(4) === 0 ? random.below(capture.bytes.length + 1) : capture.bytes.length,
  );
  for (let i = random.below(6); i > 0 && bytes.length > 0; i--) {
    bytes[random.below(bytes.length)] = random.below(256);
  }
  return { bytes, address: capture.address };
}

/** Boots one MBI; the outcome is `booted`, `refused by the loader` or `kernel panic CODE`. */
function bootOnce(capture: Capture): { outcome: string; detail: string } {
  let memory: PhysicalMemory;
  try {
    memory = new PhysicalMemory(ramRangesForRawMbi(capture.bytes, { mbiAddress: capture.address }));
  } catch (error) {
    if (error instanceof BootLoaderError) return { outcome: "refused by the loader", detail: "" };
    throw error;
  }
  const serial: number[] = [];
  const pc = createPc(memory, new VirtualClock(), { serialSink: (byte) => serial.push(byte) });
  let loaded;
  try {
    loaded = loadRawMbi(memory, capture.bytes, { mbiAddress: capture.address });
  } catch (error) {
    if (error instanceof BootLoaderError) return { outcome: "refused by the loader", detail: "" };
    throw error;
  }
  const output = () => new TextDecoder().decode(new Uint8Array(serial));
  try {
    const kernel = Kernel.boot(pc.machine, loaded.magic, loaded.mbiAddress, { version: "fuzz" });
    const frames = kernel.frames;
    assert(frames instanceof FrameAllocator, "the stock kernel's frames are the stock allocator");
    // What it reserved stays reserved: no frame touching a reservation is free.
    for (const reservation of kernel.bootMemory.reservations) {
      const first = Math.floor(reservation.base / FRAME);
      const end = Math.ceil((reservation.base + reservation.length) / FRAME);
      const counts = frames.countStates(first, end - first);
      assertEquals(counts.free, 0, `${reservation.what} has free frames`);
    }
    frames.checkInvariants();
    // The MBI the kernel was handed is intact after the whole boot.
    assertEquals(memory.readBytes(loaded.mbiAddress, capture.bytes.length), capture.bytes);
    return { outcome: "booted", detail: output() };
  } catch (error) {
    return { outcome: `kernel panic ${panicCode(error)}`, detail: output() };
  }
}

/**
 * The code of a kernel panic caused by a typed kernel error; anything else
 * (a JavaScript error thrown past the kernel, or a panic caused by one) fails.
 */
function panicCode(error: unknown): string {
  if (!(error instanceof KernelPanic)) throw error;
  const cause = error.cause;
  assert(
    cause instanceof KernelError,
    `panic caused by ${cause instanceof Error ? cause.name : typeof cause}: ${error.reason}`,
  );
  assertEquals(error.reason.startsWith(`${cause.code}: `), true, error.reason);
  return cause.code;
}

Deno.test("Boot information fuzzed through the loader and Kernel.boot gives clean boots or typed panics", () => {
  const random = new Xorshift32(0xb007);
  const captures = loadCaptures();
  const outcomes = new Map<string, number>();
  for (let round = 0; round < ROUNDS; round++) {
    const capture = round % 2 === 0 ? mutatedCapture(random, captures) : {
      bytes: randomMbi(random),
      address: random.below(4) === 0
        ? random.below(2 ** 29) * 8 // anywhere below 4 GiB, maybe outside RAM
        : 0x10000 + random.below(0x1000) * 8,
    };
    let result;
    try {
      result = bootOnce(capture);
    } catch (error) {
      // Round N of seed 0xb007 replays it; the first bytes help to recognise it.
      const head = Array.from(
        capture.bytes.subarray(0, 64),
        (b) => b.toString(16).padStart(2, "0"),
      );
      throw new Error(
        `Round ${round}: a ${capture.bytes.length}-byte MBI at 0x${capture.address.toString(16)} ` +
          `starting ${head.join("")}`,
        {
          cause: error,
        },
      );
    }
    outcomes.set(result.outcome, (outcomes.get(result.outcome) ?? 0) + 1);
    // Whatever the strings held, the console shows no escape or other control byte.
    // deno-lint-ignore no-control-regex -- looking for control characters is the point
    assert(!/[\x00-\x09\x0b\x0c\x0e-\x1f\x7f\u0080-\u009f]/.test(result.detail), result.detail);
  }
  // The fuzzer reaches every kind of outcome, so it is not testing only one path.
  assert((outcomes.get("booted") ?? 0) > ROUNDS / 10, JSON.stringify([...outcomes]));
  assert((outcomes.get("kernel panic InvalidBootInfo") ?? 0) > 0, JSON.stringify([...outcomes]));
  assert(
    (outcomes.get("kernel panic EfiBootServicesActive") ?? 0) > 0,
    JSON.stringify([...outcomes]),
  );
});

Deno.test("The boot fuzzer's panic check rejects a JavaScript error escaping the kernel", () => {
  const typed = new KernelError("NoMemoryMap", "The boot information has no map");
  assertEquals(
    panicCode(new KernelPanic(`NoMemoryMap: ${typed.message}`, { cause: typed })),
    "NoMemoryMap",
  );
  for (const bug of [new RangeError("Invalid array length"), new TypeError("x is undefined")]) {
    const panic = new KernelPanic(`${bug.name}: ${bug.message}`, { cause: bug });
    assertThrows(() => panicCode(panic), Error, `panic caused by ${bug.name}`);
    assertThrows(() => panicCode(bug), Error, bug.message);
  }
});
