/**
 * Raw physical memory as a byte stream, for `dump PA LEN FILE` and
 * `--dump-ram FILE`: byte `i` of the stream is physical address `base + i`,
 * so an offset in the file is a physical address. Holes between RAM ranges
 * read as zeros (as an unbacked range reads on many PCs), so the layout
 * stays linear.
 *
 * @module
 */

import type { PhysicalMemory } from "../../hal/mod.ts";

/** Bytes per chunk: views of RAM are handed out at most this large. */
export const RAM_DUMP_CHUNK_BYTES = 2 ** 20;

/**
 * The bytes of `[base, base + lengthBytes)` in order, as views of RAM and
 * zero-filled chunks for holes (no copy of RAM is made).
 *
 * @param memory The machine's RAM.
 * @param base First physical address.
 * @param lengthBytes Bytes to produce; `base + lengthBytes` may not pass `memory.endBytes`.
 * @throws {RangeError} If the range is not within `[0, memory.endBytes)`.
 *
 * @example
 * ```ts
 * import { PhysicalMemory } from "../../hal/mod.ts";
 * import { ramDumpChunks } from "./ram_dump.ts";
 * const memory = PhysicalMemory.contiguous(16 * 2 ** 20);
 * let total = 0;
 * for (const chunk of ramDumpChunks(memory, 0, 4096)) total += chunk.length;
 * console.assert(total === 4096);
 * ```
 */
export function* ramDumpChunks(
  memory: PhysicalMemory,
  base: number,
  lengthBytes: number,
): Generator<Uint8Array> {
  checkRange(memory, base, lengthBytes);
  const end = base + lengthBytes;
  let zeros: Uint8Array | undefined;
  for (let at = base; at < end;) {
    const range = memory.ranges.find((r) => at >= r.base && at < r.base + r.sizeBytes);
    if (range !== undefined) {
      const stop = Math.min(end, range.base + range.sizeBytes, at + RAM_DUMP_CHUNK_BYTES);
      yield memory.u8.subarray(at, stop);
      at = stop;
    } else {
      const nextRam = memory.ranges.find((r) => r.base > at)?.base ?? end;
      const stop = Math.min(end, nextRam, at + RAM_DUMP_CHUNK_BYTES);
      zeros ??= new Uint8Array(RAM_DUMP_CHUNK_BYTES);
      yield zeros.subarray(0, stop - at);
      at = stop;
    }
  }
}

/**
 * How many bytes of `[base, base + lengthBytes)` are not RAM (holes).
 *
 * @throws {RangeError} As {@linkcode ramDumpChunks}.
 */
export function ramDumpHoleBytes(
  memory: PhysicalMemory,
  base: number,
  lengthBytes: number,
): number {
  checkRange(memory, base, lengthBytes);
  let ramBytes = 0;
  for (const range of memory.ranges) {
    const from = Math.max(base, range.base);
    const to = Math.min(base + lengthBytes, range.base + range.sizeBytes);
    if (to > from) ramBytes += to - from;
  }
  return lengthBytes - ramBytes;
}

function checkRange(memory: PhysicalMemory, base: number, lengthBytes: number): void {
  if (
    !Number.isSafeInteger(base) || !Number.isSafeInteger(lengthBytes) || base < 0 ||
    lengthBytes < 0 || base + lengthBytes > memory.endBytes
  ) {
    throw new RangeError(
      `Physical range ${String(base)}+${String(lengthBytes)} is not within physical memory ` +
        `(0x0-0x${(memory.endBytes - 1).toString(16)})`,
    );
  }
}
