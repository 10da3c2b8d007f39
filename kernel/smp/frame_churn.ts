/**
 * Frame allocate-and-free throughput on several CPUs at once (docs/smp.md,
 * "Measuring"): every CPU of a mask frees one of the frames it holds and
 * allocates another, as fast as it can, for the same number of pairs,
 * starting together; the boot CPU times the whole. With the per-CPU caches
 * on, each CPU churns its own cache and the pairs add up; with them off,
 * every pair takes the allocator's lock and the CPUs queue for it.
 *
 * ```
 * churn block (one frame), words:
 *   [0] magic "CHRN"  [1] pairs per CPU  [2] ready mask  [3] go  [4] done mask
 *   per CPU n at 8 + 4n: [0] elapsed ns, low  [1] high  [2] sum of the frames it allocated
 * ```
 *
 * @module
 */

import { type FrameNumber, hex, PAGE_SIZE_4K, type PhysAddr } from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";
import type { FrameProvider } from "../mm/mod.ts";

/** The churn block's first word: "CHRN" as a little-endian u32. */
export const CHURN_MAGIC = 0x4e52_4843;
/** Frames each CPU holds while it churns (it frees the oldest and allocates a new one). */
export const CHURN_HELD_FRAMES = 16;
/** How long a CPU waits for the others to be ready or done, in ms. */
const CHURN_WAIT_MS = 60_000;

const W_MAGIC = 0;
const W_PAIRS = 1;
const W_READY = 2;
const W_GO = 3;
const W_DONE = 4;
const PER_CPU_WORD = 8;
const PER_CPU_WORDS = 4;

/** What one churn run measured. */
export interface ChurnResult {
  /** Pairs each CPU did. */
  readonly pairsPerCpu: number;
  /** CPUs that took part. */
  readonly cpuCount: number;
  /** Wall time from the start to the last CPU done, in ns. */
  readonly elapsedNs: number;
  /** Wall time per pair over every CPU: the reciprocal of the throughput, in ns. */
  readonly nsPerPair: number;
}

/**
 * Writes a churn block at `block` (a frame the caller owns) for `pairs` pairs per CPU.
 *
 * @param words The RAM as words (`memory.i32`).
 */
export function prepareChurn(words: Int32Array, block: PhysAddr, pairs: number): void {
  const base = block / 4;
  words.fill(0, base, base + PAGE_SIZE_4K / 4);
  words[base + W_PAIRS] = pairs;
  Atomics.store(words, base + W_MAGIC, CHURN_MAGIC);
}

/**
 * One CPU's part: marks itself ready, waits for go (at instruction
 * boundaries via `pause`), churns, records its time and marks itself done.
 *
 * @throws {KernelError} `InvalidAddress` if there is no churn block at `block`.
 */
export function runChurnCpu(
  words: Int32Array,
  block: PhysAddr,
  cpu: number,
  frames: FrameProvider,
  pause: () => void,
): void {
  const base = block / 4;
  if (Atomics.load(words, base + W_MAGIC) !== CHURN_MAGIC) {
    throw new KernelError("InvalidAddress", `No churn block at ${hex(block)}`);
  }
  const bit = 1 << cpu;
  Atomics.or(words, base + W_READY, bit);
  waitWord(words, base + W_GO, (go) => go !== 0, pause);
  const pairs = words[base + W_PAIRS];
  const held = new Int32Array(CHURN_HELD_FRAMES);
  for (let i = 0; i < held.length; i++) held[i] = frames.allocate();
  const startMs = performance.now();
  let sum = 0;
  for (let i = 0, next = 0; i < pairs; i++) {
    frames.free(held[next] as FrameNumber);
    const frame = frames.allocate();
    held[next] = frame;
    sum = (sum + frame) | 0;
    next = next + 1 === CHURN_HELD_FRAMES ? 0 : next + 1;
  }
  const elapsedNs = Math.round((performance.now() - startMs) * 1e6);
  for (let i = 0; i < held.length; i++) frames.free(held[i] as FrameNumber);
  const slot = base + PER_CPU_WORD + cpu * PER_CPU_WORDS;
  words[slot] = elapsedNs % 2 ** 32;
  words[slot + 1] = Math.floor(elapsedNs / 2 ** 32);
  words[slot + 2] = sum;
  Atomics.or(words, base + W_DONE, bit);
  Atomics.notify(words, base + W_DONE);
}

/**
 * The boot CPU's part: waits for the other CPUs of `cpuMask` to be ready,
 * starts everyone, churns itself, waits for all and times the whole.
 *
 * @returns The measurement.
 * @throws {KernelError} `CpuNotResponding` if a CPU is not ready or done in time.
 */
export function leadChurn(
  words: Int32Array,
  block: PhysAddr,
  cpu: number,
  cpuMask: number,
  frames: FrameProvider,
  pause: () => void,
): ChurnResult {
  const base = block / 4;
  const others = cpuMask & ~(1 << cpu);
  if (!waitWord(words, base + W_READY, (ready) => (ready & others) === others, pause)) {
    throw new KernelError("CpuNotResponding", "A CPU did not get ready for the frame churn");
  }
  const startMs = performance.now();
  Atomics.store(words, base + W_GO, 1);
  Atomics.notify(words, base + W_GO);
  runChurnCpu(words, block, cpu, frames, pause);
  if (!waitWord(words, base + W_DONE, (done) => (done & cpuMask) === cpuMask, pause)) {
    throw new KernelError("CpuNotResponding", "A CPU did not finish the frame churn");
  }
  const elapsedNs = (performance.now() - startMs) * 1e6;
  const pairsPerCpu = words[base + W_PAIRS];
  let cpuCount = 0;
  for (let mask = cpuMask; mask !== 0; mask &= mask - 1) cpuCount++;
  return {
    pairsPerCpu,
    cpuCount,
    elapsedNs,
    nsPerPair: elapsedNs / (pairsPerCpu * cpuCount),
  };
}

/** Waits until the word satisfies `isDone`, sleeping a millisecond at a time; false after the bound. */
function waitWord(
  words: Int32Array,
  index: number,
  isDone: (value: number) => boolean,
  pause: () => void,
): boolean {
  const startMs = performance.now();
  for (;;) {
    const value = Atomics.load(words, index);
    if (isDone(value)) return true;
    if (performance.now() - startMs > CHURN_WAIT_MS) return false;
    Atomics.wait(words, index, value, 1);
    pause();
  }
}
