/**
 * Frame allocator benchmarks: workloads W1, W2 and W3 (docs/benchmarks.md) on
 * 1 GiB and 16 GiB of simulated RAM, and the boot-time initialisation of a
 * 64 GiB machine's frame allocator.
 *
 * N is the number of usable frames of one region starting at frame 0. Each
 * machine has N frames of RAM plus N / 512 frames above them; the memory map
 * lists the two as separate usable regions, so pool 0 covers exactly frames
 * 0..N-1. The early allocator hands out top-down, so the allocator's state and
 * frame metadata land in the upper region, whose remaining frames are then
 * reserved: every free frame is in pool 0, as the workloads require.
 *
 * Setup is not timed (b.start() / b.end()); each run restarts from the seed
 * and throws if the checksum differs from the published one.
 *
 * Run: `deno bench --allow-read bench/frames_bench.ts` (or `deno task bench`
 * for the summary table).
 *
 * @module
 */

import { type FrameNumber, PAGE_SIZE_4K, type PhysAddr, PhysicalMemory } from "../hal/mod.ts";
import { FrameAllocator, KernelError } from "../kernel/mod.ts";
import { CHECKSUM_SEED, foldChecksum, Xorshift32 } from "../testing/mod.ts";
import { CHECKSUM_SEED_INT32, foldInt32 } from "./_checksum.ts";
import { FIGURES, FRAMES_16G, FRAMES_1G, W1_OPS } from "./_figures.ts";
import { addFloorBench } from "./_floor.ts";

const GIB = 2 ** 30;
const MIB = 2 ** 20;
const W1_SEED = 0x9E3779B9;
const W3_SEED = 0x2545F491;

/** One machine per size, reused across iterations: booting rewrites all allocator state. */
const machines = new Map<number, PhysicalMemory>();

/** Boots a frame allocator whose pool 0 is exactly frames 0..frameCount-1. */
function bootFrames(frameCount: number): FrameAllocator {
  const poolBytes = frameCount * PAGE_SIZE_4K;
  const extraBytes = (frameCount / 512) * PAGE_SIZE_4K;
  let memory = machines.get(frameCount);
  if (memory === undefined) {
    memory = PhysicalMemory.contiguous(poolBytes + extraBytes);
    machines.set(frameCount, memory);
  }
  const frames = FrameAllocator.create(memory, {
    usableRegions: [{ base: 0, length: poolBytes }, { base: poolBytes, length: extraBytes }],
  });
  frames.reserveRange(poolBytes, extraBytes);
  return frames;
}

function expectChecksum(name: string, actual: number, expected: number): void {
  if (actual !== expected) {
    throw new Error(
      `${name}: checksum 0x${actual.toString(16)}, expected 0x${expected.toString(16)}`,
    );
  }
}

addFloorBench();

const sizes = [
  {
    label: "1 GiB",
    frameCount: FRAMES_1G,
    w1: 0x21b0f5e9,
    w2: 0x58e89dc5,
    w1Name: FIGURES.w1Small.name,
    w2Name: FIGURES.w2Small.name,
  },
  {
    label: "16 GiB",
    frameCount: FRAMES_16G,
    w1: 0x0375e810,
    w2: 0x7a5c9dc5,
    w1Name: FIGURES.w1Large.name,
    w2Name: FIGURES.w2Large.name,
  },
];

for (const { label, frameCount, w1, w1Name } of sizes) {
  Deno.bench({
    name: w1Name,
    group: "W1 churn",
    n: 20,
    warmup: 3,
    fn(b) {
      const frames = bootFrames(frameCount);
      const live = new Uint32Array(frameCount / 2);
      for (let i = 0; i < live.length; i++) live[i] = frames.allocate();
      let liveCount = live.length;
      // xorshift32 with its state in an int32 (see bench/_floor.ts).
      let x = W1_SEED | 0;
      let checksum = CHECKSUM_SEED_INT32;
      const ops = W1_OPS;
      b.start();
      for (let op = 0; op < ops; op++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        const index = (x >>> 0) % liveCount;
        const victim = live[index];
        live[index] = live[--liveCount];
        frames.free(victim as FrameNumber);
        const frame = frames.allocate();
        checksum = foldInt32(checksum, frame);
        live[liveCount++] = frame;
      }
      b.end();
      expectChecksum(`W1 ${label}`, checksum >>> 0, w1);
    },
  });
}

for (const { label, frameCount, w2, w2Name } of sizes) {
  Deno.bench({
    name: w2Name,
    group: "W2 fragmented refill",
    n: 20,
    warmup: 3,
    fn(b) {
      const frames = bootFrames(frameCount);
      for (let i = 0; i < frameCount; i++) frames.allocate();
      for (let frame = 0; frame < frameCount; frame += 2) frames.free(frame as FrameNumber);
      let checksum = CHECKSUM_SEED_INT32;
      const allocations = frameCount / 2;
      b.start();
      for (let op = 0; op < allocations; op++) {
        checksum = foldInt32(checksum, frames.allocate());
      }
      b.end();
      expectChecksum(`W2 ${label}`, checksum >>> 0, w2);
    },
  });
}

/** W3 at N frames; returns the checksum and the number of runs found. */
function contiguousWorkload(frameCount: number, b: Deno.BenchContext): [number, number] {
  const frames = bootFrames(frameCount);
  const rng = new Xorshift32(W3_SEED);
  for (let frame = 0; frame < frameCount; frame++) {
    if (rng.next() >>> 31 === 1) frames.allocateSpecific(frame as FrameNumber);
  }
  let checksum = CHECKSUM_SEED;
  let runs = 0;
  b.start();
  try {
    for (;;) {
      checksum = foldChecksum(checksum, frames.allocateContiguous(8, 8));
      runs++;
    }
  } catch (error) {
    if (!(error instanceof KernelError && error.code === "OutOfMemory")) throw error;
  }
  b.end();
  return [checksum, runs];
}

Deno.bench({
  name: FIGURES.w3.name,
  group: "W3 contiguous",
  n: 50,
  warmup: 5,
  fn(b) {
    const [checksum, runs] = contiguousWorkload(FRAMES_1G, b);
    expectChecksum("W3 1 GiB", checksum, 0xa9e83bcf);
    if (runs !== 127) throw new Error(`W3 1 GiB: ${runs} runs, expected 127`);
  },
});

/**
 * A 64 GiB PC: 3 GiB below the PCI hole, 61 GiB from 4 GiB, the BIOS area in
 * the first MiB, and the kernel image, boot information and a module above 1 MiB.
 */
const bigMemory = new PhysicalMemory([
  { base: 0 as PhysAddr, sizeBytes: 3 * GIB },
  { base: (4 * GIB) as PhysAddr, sizeBytes: 61 * GIB },
]);

Deno.bench({
  name: FIGURES.init64G.name,
  group: "init",
  n: 10,
  warmup: 2,
  fn(b) {
    b.start();
    const frames = FrameAllocator.create(bigMemory, {
      usableRegions: [
        { base: 0, length: 0x9fc00 },
        { base: MIB, length: 3 * GIB - MIB },
        { base: 4 * GIB, length: 61 * GIB },
      ],
      exclusions: [
        { base: 0, length: MIB }, // real-mode IVT, BDA, EBDA, BIOS
        { base: MIB, length: 2 * MIB }, // kernel image
        { base: 3 * MIB, length: 0x2345 }, // multiboot2 information
        { base: 4 * MIB, length: 5 * MIB + 123 }, // a module
      ],
    });
    b.end();
    if (frames.stats().totalFrames < 16 * 2 ** 18 - 2 ** 18) {
      throw new Error("init: pools too small");
    }
  },
});
