/**
 * What a device access costs an application processor (docs/smp.md,
 * "Measuring"): the CPU reads COM1's scratch register (a read without side
 * effects) a number of times and times it. Every read goes through its
 * mailbox to the board and back, so the time per read is the mailbox's round
 * trip, with the board serving at the boot CPU's instruction boundaries.
 *
 * ```
 * block (one frame), words: [0] magic "DEVR"  [1] reads  [2] done  [3] elapsed ns, low  [4] high
 * ```
 *
 * @module
 */

import { type CpuContext, hex, type PhysAddr } from "../../hal/mod.ts";
import { SERIAL_COM1_PORT } from "../drivers/mod.ts";
import { KernelError } from "../errors.ts";

/** The block's first word: "DEVR" as a little-endian u32. */
export const DEVICE_ROUND_TRIP_MAGIC = 0x5256_4544;
/** The 16550's scratch register, from its base (docs/uart16550.md): a read changes nothing. */
const UART_SCRATCH_OFFSET = 7;
/** COM1's scratch register. */
export const COM1_SCRATCH_PORT: number = SERIAL_COM1_PORT + UART_SCRATCH_OFFSET;

const W_MAGIC = 0;
const W_READS = 1;
const W_DONE = 2;
const W_ELAPSED_LO = 3;
const W_ELAPSED_HI = 4;

/** Writes a block at `block` (a frame the caller owns) asking for `reads` reads. */
export function prepareDeviceRoundTrip(words: Int32Array, block: PhysAddr, reads: number): void {
  const base = block / 4;
  words.fill(0, base, base + W_ELAPSED_HI + 1);
  words[base + W_READS] = reads;
  Atomics.store(words, base + W_MAGIC, DEVICE_ROUND_TRIP_MAGIC);
}

/**
 * The measuring CPU's part: the reads, timed; then done.
 *
 * @throws {KernelError} `InvalidAddress` if there is no block at `block`.
 */
export function runDeviceRoundTrip(words: Int32Array, block: PhysAddr, cpu: CpuContext): void {
  const base = block / 4;
  if (Atomics.load(words, base + W_MAGIC) !== DEVICE_ROUND_TRIP_MAGIC) {
    throw new KernelError("InvalidAddress", `No device round-trip block at ${hex(block)}`);
  }
  const reads = words[base + W_READS];
  const startMs = performance.now();
  for (let i = 0; i < reads; i++) cpu.inb(COM1_SCRATCH_PORT);
  const elapsedNs = Math.round((performance.now() - startMs) * 1e6);
  words[base + W_ELAPSED_LO] = elapsedNs % 2 ** 32;
  words[base + W_ELAPSED_HI] = Math.floor(elapsedNs / 2 ** 32);
  Atomics.store(words, base + W_DONE, 1);
  Atomics.notify(words, base + W_DONE);
}

/**
 * The requester's part: waits (at `pause`, so the board serves the reads)
 * until the measuring CPU is done.
 *
 * @returns The time per read, in ns.
 * @throws {KernelError} `CpuNotResponding` if it is not done within `timeoutMs`.
 */
export function awaitDeviceRoundTrip(
  words: Int32Array,
  block: PhysAddr,
  pause: () => void,
  timeoutMs: number,
): number {
  const base = block / 4;
  const startMs = performance.now();
  while (Atomics.load(words, base + W_DONE) === 0) {
    if (performance.now() - startMs > timeoutMs) {
      throw new KernelError("CpuNotResponding", "The CPU measuring device reads did not finish");
    }
    pause();
  }
  const elapsedNs = (words[base + W_ELAPSED_LO] >>> 0) +
    (words[base + W_ELAPSED_HI] >>> 0) * 2 ** 32;
  return elapsedNs / words[base + W_READS];
}
