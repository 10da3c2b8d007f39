import { type FrameNumber, hex, type PhysAddr, PhysicalMemory } from "../../hal/mod.ts";
import { KernelError, type KernelErrorCode } from "../errors.ts";
import { KernelPanic } from "../panic.ts";
import { assert, assertEquals, assertThrows, Xorshift32 } from "../../testing/mod.ts";
import { EarlyFrameAllocator } from "./early_allocator.ts";
import {
  ALLOC_POISON_BYTE,
  FRAME_ALLOCATOR_MAGIC,
  FrameAllocator,
  type FrameAllocatorOptions,
  FREE_POISON_BYTE,
} from "./frame_allocator.ts";
import { FRAME_UNUSABLE, FRAME_UNUSED, FRAMES_PER_METADATA_PAGE } from "./frame_metadata.ts";
import { ContigPages, Page } from "./page.ts";

const MIB = 2 ** 20;
const GIB = 2 ** 30;

/** A 4 MiB machine: one pool of 1024 frames, the first MiB excluded. */
function smallMachine(options: Partial<FrameAllocatorOptions> = {}): FrameAllocator {
  const memory = PhysicalMemory.contiguous(4 * MIB);
  return FrameAllocator.create(memory, {
    usableRegions: [{ base: 0, length: 4 * MIB }],
    exclusions: [{ base: 0, length: MIB }],
    ...options,
  });
}

function f(frame: number): FrameNumber {
  return frame as FrameNumber;
}

function code(fn: () => unknown): KernelErrorCode {
  return assertThrows(fn, KernelError).code;
}

Deno.test("FrameAllocator.create() reserves the exclusions and its own state", () => {
  const frames = smallMachine();
  // Top-down early allocation: the state block at 0x3ff, the metadata at 0x3fe.
  assertEquals(frames.stateAddr, 0x3ff000);
  assertEquals(frames.metadata.base, 0x3fe000);
  const stats = frames.stats();
  assertEquals(stats.totalFrames, 1024);
  assertEquals(stats.reservedFrames, 256 + 2);
  assertEquals(stats.freeFrames, 1024 - 258);
  assertEquals(stats.allocatedFrames, 0);
  assertEquals(stats.pools, [{
    base: 0,
    frameCount: 1024,
    freeFrames: 766,
    reservedFrames: 258,
    allocatedFrames: 0,
  }]);
  assertEquals(frames.stateOf(f(0)), "reserved");
  assertEquals(frames.stateOf(f(0xff)), "reserved");
  assertEquals(frames.stateOf(f(0x100)), "free");
  assertEquals(frames.stateOf(f(0x3fe)), "reserved");
  assertEquals(frames.stateOf(f(0x400)), "outside");
  assertEquals(frames.metadata.refcount(f(0)), FRAME_UNUSABLE);
  assertEquals(frames.metadata.refcount(f(0x100)), FRAME_UNUSED);
  frames.checkInvariants();
});

Deno.test("FrameAllocator.isStock() knows its own allocators from proxies, derived objects and look-alikes", () => {
  const frames = smallMachine();
  assertEquals(FrameAllocator.isStock(frames), true);
  assertEquals(FrameAllocator.isStock(new Proxy(frames, {})), false);
  assertEquals(FrameAllocator.isStock(Object.create(frames)), false);
  assertEquals(FrameAllocator.isStock({ ...frames, stateOf: frames.stateOf }), false);
  assertEquals(FrameAllocator.isStock(undefined), false);
});

Deno.test("FrameAllocator keeps its state in RAM, not in JavaScript", () => {
  const frames = smallMachine();
  const memory = frames.memory;
  assertEquals(memory.read32(frames.stateAddr), FRAME_ALLOCATOR_MAGIC);
  // Pool 0's free counter is word 2 of the descriptor after the 8-word header.
  const freeCounter = (frames.stateAddr + (8 + 2) * 4) as PhysAddr;
  assertEquals(memory.read32(freeCounter), 766);
  frames.allocate();
  assertEquals(memory.read32(freeCounter), 765);
  memory.write32(freeCounter, 5);
  assertEquals(frames.stats().freeFrames, 5);
  assertThrows(() => frames.checkInvariants(), Error, "free counter says 5, bitmap has 765");
});

Deno.test("FrameAllocator.allocate() returns the lowest free frame", () => {
  const frames = smallMachine();
  assertEquals(frames.allocate(), 0x100);
  assertEquals(frames.allocate(), 0x101);
  frames.free(f(0x100));
  assertEquals(frames.allocate(), 0x100);
  assertEquals(frames.allocate(), 0x102);
  assertEquals(frames.stats().allocatedFrames, 3);
  frames.checkInvariants();
});

Deno.test("FrameAllocator.allocate() fails with OutOfMemory when every frame is used", () => {
  const frames = smallMachine();
  for (let i = 0; i < 766; i++) frames.allocate();
  const error = assertThrows(() => frames.allocate(), KernelError, "out of memory");
  assertEquals(error.code, "OutOfMemory");
  assertEquals(frames.stats().freeFrames, 0);
  frames.checkInvariants();
  frames.free(f(0x2a7));
  assertEquals(frames.allocate(), 0x2a7);
});

Deno.test("FrameAllocator.allocateSpecific() takes a given frame or reports why it cannot", () => {
  const frames = smallMachine();
  assertEquals(frames.allocateSpecific(f(0x200)), 0x200);
  assertEquals(frames.stateOf(f(0x200)), "allocated");
  assertThrows(
    () => frames.allocateSpecific(f(0x200)),
    KernelError,
    "Cannot allocate frame 0x200: already in use",
  );
  assertEquals(code(() => frames.allocateSpecific(f(0x200))), "FrameInUse");
  assertThrows(
    () => frames.allocateSpecific(f(0x10)),
    KernelError,
    "Cannot allocate frame 0x10: reserved",
  );
  assertEquals(code(() => frames.allocateSpecific(f(0x10))), "InvalidFrame");
  assertThrows(() => frames.allocateSpecific(f(0x400)), KernelError, "outside every pool");
  assertEquals(code(() => frames.allocateSpecific(f(0x400))), "InvalidFrame");
  assertEquals(code(() => frames.allocateSpecific(f(256.5))), "InvalidFrame");
  frames.checkInvariants();
});

Deno.test("FrameAllocator.free() reports DoubleFree and InvalidFrame", () => {
  const frames = smallMachine();
  const frame = frames.allocate();
  frames.free(frame);
  const error = assertThrows(
    () => frames.free(frame),
    KernelError,
    "Cannot free frame 0x100: already free",
  );
  assertEquals(error.code, "DoubleFree");
  assertThrows(() => frames.free(f(0x20)), KernelError, "Cannot free frame 0x20: reserved");
  assertEquals(code(() => frames.free(f(0x20))), "InvalidFrame");
  assertThrows(
    () => frames.free(f(0x12345)),
    KernelError,
    "Cannot free frame 0x12345: outside every pool",
  );
  assertEquals(code(() => frames.free(f(-1))), "InvalidFrame");
  assertEquals(frames.stats().freeFrames, 766);
  frames.checkInvariants();
});

Deno.test("FrameAllocator.free() refuses a frame a Page still references, changing nothing", () => {
  const frames = smallMachine();
  const page = Page.alloc(frames);
  const copy = page.clone();
  const freeBefore = frames.stats().freeFrames;
  const error = assertThrows(
    () => frames.free(page.frame),
    KernelError,
    `Cannot free frame ${hex(page.frame)}: 2 page handles reference it`,
  );
  assertEquals(error.code, "FrameInUse");
  using run = ContigPages.alloc(frames, 4);
  assertThrows(
    () => frames.freeContiguous(run.frame, 4),
    KernelError,
    `Cannot free frame ${hex(run.frame)}: 1 page handle references it`,
  );
  assertEquals(frames.stats().freeFrames, freeBefore - 4);
  assertEquals(frames.stateOf(page.frame), "allocated");
  assertEquals(page.refcount, 2);
  const frame = page.frame;
  page[Symbol.dispose]();
  copy[Symbol.dispose]();
  assertEquals(frames.stateOf(frame), "free", "the last handle frees it");
  frames.checkInvariants();
});

Deno.test("FrameAllocator makes one pool per usable region, trimmed to whole frames, across holes", () => {
  // RAM below 1 MiB and from 2 MiB to 6 MiB: a hole in between.
  const memory = new PhysicalMemory([
    { base: 0 as PhysAddr, sizeBytes: MIB },
    { base: (2 * MIB) as PhysAddr, sizeBytes: 4 * MIB },
  ]);
  const frames = FrameAllocator.create(memory, {
    usableRegions: [
      { base: 0x20_0010, length: 4 * MIB - 0x10 }, // unaligned: frames 0x201..0x5ff
      { base: 0xa_0000, length: 0x800 }, // smaller than a frame: skipped
      { base: 0x1800, length: 0x9_e400 }, // unaligned: frames 0x2..0x9e
    ],
  });
  const stats = frames.stats();
  assertEquals(stats.pools.map((p) => [p.base, p.frameCount]), [[0x2000, 157], [0x20_1000, 1023]]);
  assertEquals(stats.totalFrames, 1180);
  assertEquals(stats.reservedFrames, 3); // the state block and 2 frames of metadata
  assertEquals(frames.stateOf(f(1)), "outside");
  assertEquals(frames.stateOf(f(0x9f)), "outside");
  assertEquals(frames.stateOf(f(0x150)), "outside"); // in the hole
  assertEquals(frames.stateOf(f(0x200)), "outside"); // trimmed
  assertEquals(frames.allocate(), 2);
  for (let i = 0; i < 156; i++) frames.allocate();
  assertEquals(frames.allocate(), 0x201); // pool 0 is full; on to pool 1
  assertEquals(code(() => frames.free(f(0x150))), "InvalidFrame");
  frames.checkInvariants();
});

Deno.test("FrameAllocator.create() rejects usable regions that overlap or are not RAM", () => {
  const memory = PhysicalMemory.contiguous(4 * MIB);
  assertThrows(
    () => FrameAllocator.create(memory, { usableRegions: [{ base: 0, length: 8 * MIB }] }),
    RangeError,
    "is not RAM",
  );
  assertThrows(
    () =>
      FrameAllocator.create(memory, {
        usableRegions: [{ base: 0, length: 2 * MIB }, { base: MIB, length: 2 * MIB }],
      }),
    RangeError,
    "overlaps",
  );
  const error = assertThrows(
    () =>
      FrameAllocator.create(memory, {
        usableRegions: [{ base: 0, length: MIB }],
        exclusions: [{ base: 0, length: MIB }],
      }),
    KernelError,
  );
  assertEquals(error.code, "OutOfMemory");
});

Deno.test("FrameAllocator.fromEarlyAllocator() keeps every earlier early allocation reserved", () => {
  const memory = PhysicalMemory.contiguous(4 * MIB);
  const early = new EarlyFrameAllocator([{ base: 0, length: 4 * MIB }], [{ base: 0, length: MIB }]);
  const pageTables = early.allocate(3); // say, early page tables
  const frames = FrameAllocator.fromEarlyAllocator(memory, early);
  assert(early.isRetired);
  assertEquals(pageTables, 0x3fd);
  for (const frame of [0x3fd, 0x3fe, 0x3ff, 0x3fc, 0x3fb]) {
    assertEquals(frames.stateOf(f(frame)), "reserved");
  }
  assertEquals(frames.stats().reservedFrames, 256 + 5);
  frames.checkInvariants();
});

Deno.test("FrameAllocator.allocateContiguous() aligns absolute frame numbers in an unaligned pool", () => {
  const memory = PhysicalMemory.contiguous(4 * MIB);
  const frames = FrameAllocator.create(memory, {
    usableRegions: [{ base: 0x3000, length: 4 * MIB - 0x3000 }], // pool starts at frame 3
  });
  assertEquals(frames.allocateContiguous(4, 4), 4);
  assertEquals(frames.allocateContiguous(2, 1), 8); // frame 3 alone is too short
  assertEquals(frames.allocateContiguous(1, 1), 3);
  assertEquals(frames.allocateContiguous(3, 32), 32);
  assertEquals(frames.allocateContiguous(5, 2), 10);
  frames.checkInvariants();
});

Deno.test("FrameAllocator.allocateContiguous() finds runs across bitmap words and long runs", () => {
  const frames = smallMachine({ exclusions: [] });
  // Allocate 0..0x3fd, then free 28..35 (crossing the first word boundary) and 100..299.
  for (let i = 0; i < 0x3fe; i++) frames.allocate();
  frames.freeContiguous(f(28), 8);
  frames.freeContiguous(f(100), 200);
  assertEquals(frames.allocateContiguous(8, 4), 28);
  assertEquals(frames.allocateContiguous(150, 1), 100);
  assertEquals(code(() => frames.allocateContiguous(51, 1)), "OutOfMemory");
  assertEquals(frames.allocateContiguous(50, 1), 250);
  frames.freeContiguous(f(128), 100);
  assertEquals(frames.allocateContiguous(64, 64), 128);
  assertEquals(code(() => frames.allocateContiguous(64, 64)), "OutOfMemory");
  assertEquals(frames.allocateContiguous(36, 1), 192);
  frames.checkInvariants();
});

Deno.test("FrameAllocator.allocateContiguous() fails with OutOfMemory on fragmented memory", () => {
  const frames = smallMachine();
  for (let i = 0; i < 766; i++) frames.allocate();
  for (let frame = 0x100; frame < 0x3fe; frame += 2) frames.free(f(frame));
  const error = assertThrows(
    () => frames.allocateContiguous(2, 1),
    KernelError,
    "Cannot allocate 2 contiguous frames aligned to 1: out of memory",
  );
  assertEquals(error.code, "OutOfMemory");
  assertEquals(frames.stats().freeFrames, 383);
  frames.checkInvariants();
});

Deno.test("FrameAllocator.allocateContiguous() searches below its hint again after a free", () => {
  const frames = smallMachine();
  const runs: number[] = [];
  for (;;) {
    try {
      runs.push(frames.allocateContiguous(8, 8));
    } catch {
      break;
    }
  }
  assertEquals(runs.length, 95); // 0x100..0x3f7; 0x3f8..0x3ff holds the state
  frames.checkInvariants();
  frames.free(f(0x183));
  assertEquals(code(() => frames.allocateContiguous(8, 8)), "OutOfMemory");
  frames.freeContiguous(f(0x140), 8);
  frames.checkInvariants();
  assertEquals(frames.allocateContiguous(8, 8), 0x140);
  assertEquals(frames.allocateContiguous(1, 1), 0x183);
});

Deno.test("FrameAllocator.allocateContiguous() rejects invalid counts and alignments", () => {
  const frames = smallMachine();
  assertThrows(() => frames.allocateContiguous(0, 1), RangeError);
  assertThrows(() => frames.allocateContiguous(2.5, 1), RangeError);
  assertThrows(() => frames.allocateContiguous(2, 3), RangeError, "power of two");
  assertThrows(() => frames.allocateContiguous(2, 0), RangeError);
  assertEquals(code(() => frames.allocateContiguous(2000, 1)), "OutOfMemory");
});

Deno.test("FrameAllocator.freeContiguous() checks every frame before freeing any", () => {
  const frames = smallMachine();
  const run = frames.allocateContiguous(16, 16);
  frames.free(f(run + 9));
  const before = frames.stats();
  const error = assertThrows(
    () => frames.freeContiguous(run, 16),
    KernelError,
    `frame 0x${(run + 9).toString(16)}`,
  );
  assertEquals(error.code, "DoubleFree");
  assertEquals(frames.stats(), before);
  assertEquals(code(() => frames.freeContiguous(f(0xf8), 16)), "InvalidFrame"); // reserved frames
  assertEquals(code(() => frames.freeContiguous(f(0x3f0), 32)), "InvalidFrame"); // leaves the pool
  assertThrows(() => frames.freeContiguous(run, 0), RangeError);
  frames.freeContiguous(run, 9);
  frames.freeContiguous(f(run + 10), 6);
  assertEquals(frames.stats().freeFrames, 766);
  frames.checkInvariants();
});

Deno.test("FrameAllocator.reserveRange() reserves touched frames and skips the rest", () => {
  const memory = new PhysicalMemory([
    { base: 0 as PhysAddr, sizeBytes: MIB },
    { base: (2 * MIB) as PhysAddr, sizeBytes: MIB },
  ]);
  const frames = FrameAllocator.create(memory, {
    usableRegions: [{ base: 0, length: MIB }, { base: 2 * MIB, length: MIB }],
  });
  const reservedBefore = frames.stats().reservedFrames;
  // 0x10fff..0x12001 touches frames 0x10, 0x11, 0x12.
  assertEquals(frames.reserveRange(0x1_0fff, 0x1002), 3);
  assertEquals(frames.reserveRange(0x1_0000, 0x1000), 0); // already reserved
  // Across the hole: frames 0xfe, 0xff, then 0x200 and 0x201.
  assertEquals(frames.reserveRange(0xf_e000, MIB + 0x4000), 4);
  assertEquals(frames.reserveRange(0x1234, 0), 0);
  assertEquals(frames.stats().reservedFrames, reservedBefore + 7);
  assertEquals(frames.stateOf(f(0x12)), "reserved");
  assertEquals(frames.stateOf(f(0x13)), "free");
  assertEquals(frames.metadata.refcount(f(0x11)), FRAME_UNUSABLE);
  frames.allocateSpecific(f(0x30));
  const before = frames.stats();
  const error = assertThrows(
    () => frames.reserveRange(0x2_0000, 0x2_0000),
    KernelError,
    "Cannot reserve frame 0x30: in use",
  );
  assertEquals(error.code, "FrameInUse");
  assertEquals(frames.stats(), before);
  assertThrows(() => frames.reserveRange(-1, 5), RangeError);
  frames.checkInvariants();
});

Deno.test("FrameAllocator poisons allocated and freed frames in debug mode", () => {
  const frames = smallMachine({ debug: { poison: true } });
  const frame = frames.allocate();
  const bytes = frames.memory.u8.subarray(frame * 4096, frame * 4096 + 4096);
  assert(bytes.every((b) => b === ALLOC_POISON_BYTE));
  frames.free(frame);
  assert(bytes.every((b) => b === FREE_POISON_BYTE));
  const run = frames.allocateContiguous(3, 1);
  assert(
    frames.memory.u8.subarray(run * 4096, run * 4096 + 3 * 4096).every((b) =>
      b === ALLOC_POISON_BYTE
    ),
  );
  frames.freeContiguous(run, 3);
  assert(
    frames.memory.u8.subarray(run * 4096, run * 4096 + 3 * 4096).every((b) =>
      b === FREE_POISON_BYTE
    ),
  );
  assert(!smallMachine().isPoisoning);
});

Deno.test("FrameAllocator works above 8 GiB and across the PCI hole of a 12 GiB machine", () => {
  const memory = new PhysicalMemory([
    { base: 0 as PhysAddr, sizeBytes: 3 * GIB },
    { base: (4 * GIB) as PhysAddr, sizeBytes: 9 * GIB },
  ]);
  const frames = FrameAllocator.create(memory, {
    usableRegions: [{ base: MIB, length: 3 * GIB - MIB }, { base: 4 * GIB, length: 9 * GIB }],
    exclusions: [{ base: MIB, length: 2 * MIB }],
  });
  const stats = frames.stats();
  assertEquals(stats.totalFrames, (12 * GIB - MIB) / 4096);
  // The state and the metadata (13 MiB for frames 0..13 GiB) sit at the top of RAM.
  assert(frames.stateAddr > 12 * GIB && frames.metadata.base > 12 * GIB);
  const high = f(13 * GIB / 4096 - 100_000);
  frames.allocateSpecific(high);
  assertEquals(frames.stateOf(high), "allocated");
  frames.free(high);
  assertEquals(code(() => frames.free(high)), "DoubleFree");
  assertEquals(frames.allocate(), 0x300);
  assertEquals(frames.stateOf(f(3 * GIB / 4096 + 5)), "outside");
  assertEquals(frames.stats().freeFrames, stats.freeFrames - 1);
});

// ---------------------------------------------------------------------------
// Randomized test against a shadow model.

const OUTSIDE = 0;
const FREE = 1;
const ALLOCATED = 2;
const RESERVED = 3;

/** A test-side model of every frame's state, with a list of allocated frames. */
class Shadow {
  readonly state: Uint8Array;
  readonly pools: { first: number; end: number }[];
  readonly allocated: number[] = [];
  readonly #position: Int32Array;
  freeCount = 0;

  constructor(frames: FrameAllocator, frameLimit: number) {
    this.state = new Uint8Array(frameLimit);
    this.#position = new Int32Array(frameLimit).fill(-1);
    this.pools = frames.stats().pools.map((p) => ({
      first: p.base / 4096,
      end: p.base / 4096 + p.frameCount,
    }));
    const names = { outside: OUTSIDE, free: FREE, allocated: ALLOCATED, reserved: RESERVED };
    for (let frame = 0; frame < frameLimit; frame++) {
      this.state[frame] = names[frames.stateOf(f(frame))];
      if (this.state[frame] === FREE) this.freeCount++;
    }
  }

  set(frame: number, state: number): void {
    const old = this.state[frame];
    if (old === FREE) this.freeCount--;
    if (state === FREE) this.freeCount++;
    if (old === ALLOCATED) {
      const position = this.#position[frame];
      const last = this.allocated.pop()!;
      if (last !== frame) {
        this.allocated[position] = last;
        this.#position[last] = position;
      }
      this.#position[frame] = -1;
    }
    if (state === ALLOCATED) {
      this.#position[frame] = this.allocated.length;
      this.allocated.push(frame);
    }
    this.state[frame] = state;
  }

  poolOf(frame: number): { first: number; end: number } | undefined {
    return this.pools.find((p) => frame >= p.first && frame < p.end);
  }

  /** The lowest run the allocator must return, or -1. */
  lowestRun(count: number, align: number): number {
    for (const pool of this.pools) {
      let start = Math.ceil(pool.first / align) * align;
      while (start + count <= pool.end) {
        let blocker = -1;
        for (let frame = start + count - 1; frame >= start; frame--) {
          if (this.state[frame] !== FREE) {
            blocker = frame;
            break;
          }
        }
        if (blocker < 0) return start;
        start = Math.ceil((blocker + 1) / align) * align;
      }
    }
    return -1;
  }

  /** The error code freeContiguous must raise, or undefined for success. */
  freeRunError(frame: number, count: number): KernelErrorCode | undefined {
    const pool = this.poolOf(frame);
    if (pool === undefined || frame + count > pool.end) return "InvalidFrame";
    for (let i = frame; i < frame + count; i++) if (this.state[i] === FREE) return "DoubleFree";
    for (let i = frame; i < frame + count; i++) {
      if (this.state[i] === RESERVED) return "InvalidFrame";
    }
    return undefined;
  }
}

function expectCode(fn: () => unknown, expected: KernelErrorCode | undefined): boolean {
  if (expected === undefined) {
    fn();
    return true;
  }
  assertEquals(code(fn), expected);
  return false;
}

/**
 * Runs `steps` seeded random operations on `frames`, checking every result
 * against the shadow model, the counters after every step, and every
 * invariant and frame state every `fullCheckEvery` steps.
 */
function fuzz(
  frames: FrameAllocator,
  seed: number,
  steps: number,
  fullCheckEvery: number,
  maxReserveBytes: number,
): void {
  const frameLimit = frames.metadata.frameCount + 16;
  const shadow = new Shadow(frames, frameLimit);
  const total = frames.stats().totalFrames;
  const rng = new Xorshift32(seed);
  for (let step = 0; step < steps; step++) {
    const choice = rng.below(100);
    if (choice < 30) {
      const expected = shadow.state.indexOf(FREE);
      if (expected < 0) {
        assertEquals(code(() => frames.allocate()), "OutOfMemory");
      } else {
        assertEquals(frames.allocate(), expected);
        shadow.set(expected, ALLOCATED);
      }
    } else if (choice < 38) {
      const frame = rng.below(frameLimit);
      const state = shadow.state[frame];
      const expected = state === FREE
        ? undefined
        : state === ALLOCATED
        ? "FrameInUse"
        : "InvalidFrame";
      if (expectCode(() => frames.allocateSpecific(f(frame)), expected)) {
        shadow.set(frame, ALLOCATED);
      }
    } else if (choice < 53) {
      const count = 1 + (rng.below(4) === 0 ? rng.below(70) : rng.below(9));
      const align = 1 << rng.below(rng.below(4) === 0 ? 8 : 4);
      const expected = shadow.lowestRun(count, align);
      if (expected < 0) {
        assertEquals(code(() => frames.allocateContiguous(count, align)), "OutOfMemory");
      } else {
        assertEquals(
          frames.allocateContiguous(count, align),
          expected,
          `run of ${count} aligned ${align}`,
        );
        for (let i = 0; i < count; i++) shadow.set(expected + i, ALLOCATED);
      }
    } else if (choice < 83) {
      if (shadow.allocated.length === 0) continue;
      const frame = shadow.allocated[rng.below(shadow.allocated.length)];
      frames.free(f(frame));
      shadow.set(frame, FREE);
    } else if (choice < 93) {
      if (shadow.allocated.length === 0) continue;
      const frame = shadow.allocated[rng.below(shadow.allocated.length)] - rng.below(3);
      const count = 1 + rng.below(12);
      if (
        expectCode(() => frames.freeContiguous(f(frame), count), shadow.freeRunError(frame, count))
      ) {
        for (let i = 0; i < count; i++) shadow.set(frame + i, FREE);
      }
    } else if (choice < 98) {
      const frame = rng.below(frameLimit);
      const state = shadow.state[frame];
      const expected = state === ALLOCATED
        ? undefined
        : state === FREE
        ? "DoubleFree"
        : "InvalidFrame";
      if (expectCode(() => frames.free(f(frame)), expected)) shadow.set(frame, FREE);
    } else if (choice < 99) {
      if (rng.below(10) !== 0) continue; // reservations are rare and permanent
      const pa = rng.below(frameLimit * 4096);
      const sizeBytes = rng.below(maxReserveBytes);
      const first = Math.floor(pa / 4096);
      const end = Math.min(frameLimit, Math.ceil((pa + sizeBytes) / 4096));
      const touched = Array.from({ length: Math.max(0, end - first) }, (_, i) => first + i);
      if (touched.some((frame) => shadow.state[frame] === ALLOCATED)) {
        assertEquals(code(() => frames.reserveRange(pa, sizeBytes)), "FrameInUse");
      } else {
        const newly = touched.filter((frame) => shadow.state[frame] === FREE);
        assertEquals(frames.reserveRange(pa, sizeBytes), newly.length);
        for (const frame of newly) shadow.set(frame, RESERVED);
      }
    } else {
      // Occasionally free everything so that the pools refill.
      for (const frame of [...shadow.allocated]) {
        frames.free(f(frame));
        shadow.set(frame, FREE);
      }
    }
    const stats = frames.stats();
    assertEquals(stats.freeFrames, shadow.freeCount);
    assertEquals(stats.freeFrames + stats.allocatedFrames + stats.reservedFrames, total);
    assertEquals(stats.allocatedFrames, shadow.allocated.length);
    if (step % fullCheckEvery === 0) {
      frames.checkInvariants();
      for (let frame = 0; frame < frameLimit; frame++) {
        const state = ["outside", "free", "allocated", "reserved"][shadow.state[frame]];
        assertEquals(frames.stateOf(f(frame)), state, `frame ${frame}`);
      }
    }
  }
  frames.checkInvariants();
}

Deno.test("FrameAllocator matches a shadow model over 60,000 seeded random operations", () => {
  const frames = FrameAllocator.create(PhysicalMemory.contiguous(8 * MIB), {
    usableRegions: [
      { base: 0x1800, length: 0x9_e400 }, // frames 0x2..0x9e
      { base: MIB + 0x800, length: 3 * MIB }, // frames 0x101..0x3ff
      { base: 4 * MIB + 0x5_000, length: 4 * MIB - 0x5_000 }, // frames 0x405..0x7ff
    ],
    exclusions: [{ base: MIB, length: 0x4_0000 }, { base: 0x5_0000, length: 0x1001 }],
  });
  fuzz(frames, 0x5eed_f00d, 60_000, 500, 8 * 4096);
});

Deno.test("FrameAllocator matches a shadow model on tiny, nearly full pools over 40,000 operations", () => {
  // Pools of 1, 31, 33 and 70 frames (the last holds the state and metadata).
  const frames = FrameAllocator.create(PhysicalMemory.contiguous(MIB), {
    usableRegions: [
      { base: 0x1000, length: 0x1fff },
      { base: 0x4_0000, length: 31 * 4096 },
      { base: 0x6_1000, length: 33 * 4096 + 100 },
      { base: 0xb_a000, length: 70 * 4096 },
    ],
  });
  fuzz(frames, 0xbad_5eed, 40_000, 50, 4096);
});

Deno.test("FrameAllocator boots correctly over RAM full of stale bytes", () => {
  const memory = PhysicalMemory.contiguous(16 * MIB);
  memory.fill(0 as PhysAddr, 16 * MIB, 0xa5); // as if a previous kernel had run
  const frames = FrameAllocator.create(memory, {
    usableRegions: [{ base: 0, length: 16 * MIB }],
    exclusions: [{ base: 0, length: MIB }],
  });
  frames.checkInvariants();
  assertEquals(frames.stateOf(f(0x80)), "reserved");
  assertEquals(frames.stateOf(f(0x100)), "free");
  assertEquals(frames.countStates(0, 0x200), {
    free: 0x100,
    allocated: 0,
    reserved: 0x100,
    outside: 0,
  });
  assertEquals(frames.metadata.refcount(f(0x100)), FRAME_UNUSED);
  assertEquals(frames.metadata.refcount(f(0x80)), FRAME_UNUSABLE);
  assertEquals(frames.metadata.heldFrames(), []);
  const page = Page.alloc(frames);
  assertEquals(frames.metadata.refcount(page.frame), 1);
  page[Symbol.dispose]();
  assertEquals(frames.metadata.refcount(f(0x100)), FRAME_UNUSED);
  frames.checkInvariants();
});

Deno.test("FrameAllocator on a 64 GiB PC writes the metadata of reserved and hole frames only", () => {
  const memory = new PhysicalMemory([
    { base: 0 as PhysAddr, sizeBytes: 3 * GIB },
    { base: (4 * GIB) as PhysAddr, sizeBytes: 61 * GIB },
  ]);
  const frames = FrameAllocator.create(memory, {
    usableRegions: [{ base: MIB, length: 3 * GIB - MIB }, { base: 4 * GIB, length: 61 * GIB }],
    exclusions: [{ base: MIB, length: 2 * MIB }],
  });
  const metadata = frames.metadata;
  const pages = Math.ceil(metadata.frameCount / FRAMES_PER_METADATA_PAGE);
  // Page 0 (the first MiB and the kernel image) and the page where the pool
  // of the first 3 GiB ends; the 256 pages of the 1 GiB PCI hole and the
  // reserved pages of the allocator's state and metadata read as unusable
  // through their page state alone: a few pages of the 16,640 written.
  assertEquals(metadata.touchedPageCount <= 4, true, `${metadata.touchedPageCount} pages`);
  assertEquals(pages, 16640);
  const touched = metadata.touchedPageCount;
  const hole = f(0xc0000 + 5);
  assertEquals(metadata.refcount(hole), FRAME_UNUSABLE, "a hole frame reads unusable unwritten");
  assertThrows(() => metadata.acquireUnused(hole), KernelError, "reserved or outside every pool");
  assertEquals(metadata.touchedPageCount, touched, "refusing a hole frame writes nothing");
  const frame = frames.allocate();
  assertEquals(frame, 0x300);
  assertEquals(metadata.refcount(frame), FRAME_UNUSED, "an unused frame reads 0 without a write");
  assertEquals(metadata.touchedPageCount, touched);
  using page = Page.alloc(frames);
  assertEquals(metadata.refcount(page.frame), 1);
  assertEquals(metadata.touchedPageCount, touched, "page 0 was already touched");
});

Deno.test("FrameAllocator.checkInvariants() catches a first-free-word hint above a free frame", () => {
  const frames = smallMachine();
  frames.allocate();
  frames.checkInvariants();
  // Pool 0's hint is word 10 of its descriptor, after the 8-word header.
  const hint = (frames.stateAddr + (8 + 10) * 4) as PhysAddr;
  frames.memory.write32(hint, 20);
  assertThrows(() => frames.checkInvariants(), Error, "below the first-free-word hint");
});

Deno.test("FrameAllocator.allocate() keeps returning the lowest free frame as frees move its hint", () => {
  const frames = smallMachine();
  const rng = new Xorshift32(0x1234_5678);
  const held = new Set<number>();
  for (let op = 0; op < 4000; op++) {
    if (held.size === 700 || (held.size > 0 && rng.below(3) === 0)) {
      const victim = [...held][rng.below(held.size)];
      held.delete(victim);
      frames.free(f(victim));
    } else {
      let lowest = 0x100;
      while (held.has(lowest)) lowest++;
      const frame = frames.allocate();
      assertEquals(frame, lowest, `operation ${op}`);
      held.add(frame);
    }
  }
  frames.checkInvariants();
});

Deno.test("FrameAllocator.allocate() panics rather than return a frame outside its pool when its state is corrupted", () => {
  for (const corruption of ["summary", "hint"] as const) {
    const memory = PhysicalMemory.contiguous(64 * MIB);
    const frames = FrameAllocator.create(memory, {
      usableRegions: [{ base: 0, length: 64 * MIB }],
      exclusions: [{ base: 0, length: MIB }],
    });
    // Pool 0's descriptor: [7] level count, [8] bitmap address, [10] the
    // first-free-word hint; 16384 frames make 512 level-0 words, 16 level-1
    // words and one top word.
    const desc = frames.stateAddr / 4 + 8;
    assertEquals(memory.u32[desc + 7], 3);
    const level0 = memory.u32[desc + 8] / 4;
    if (corruption === "summary") {
      // A stray write, as the monitor's poke! can make: level-1 word 0 now
      // claims that level-0 word 5 (reserved frames 160..191) has a free frame.
      memory.u32[level0 + 512] |= 1 << 5;
    } else {
      memory.u32[desc + 10] = 600; // the first-free-word hint, past the pool's 512 level-0 words
    }
    const before = memory.u8.slice(frames.stateAddr, frames.stateAddr + 8192);
    const panic = assertThrows(() => frames.allocate(), KernelPanic);
    assert(
      /^frame allocator: pool 0x0-0x3ffffff: its free-frame summary leads to .*, outside the pool/
        .test(panic.reason),
      `${corruption}: ${panic.reason}`,
    );
    assertEquals(memory.u8.slice(frames.stateAddr, frames.stateAddr + 8192), before);
  }
});
