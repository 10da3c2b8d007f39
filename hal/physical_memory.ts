/**
 * Physical RAM of the simulated machine: one SharedArrayBuffer, with holes.
 *
 * The buffer is created growable and grown in 1 GiB steps: the host kernel
 * then commits untouched pages lazily and never sees one huge allocation it
 * would refuse, so a 64 GiB machine boots on a 24 GiB host. Addresses in a
 * hole between RAM ranges (or past the end) are not RAM; the accessors raise
 * a {@linkcode BusError} for them. Hot paths use the shared typed views
 * (`u8`, `u32`, `i32`) directly after checking their range once.
 *
 * @module
 */

import { hex, type PhysAddr } from "./address.ts";
import { BusError } from "./faults.ts";

/** A range of physical addresses backed by RAM. */
export interface RamRange {
  /** First byte of the range. */
  readonly base: PhysAddr;
  /** Length of the range in bytes. */
  readonly sizeBytes: number;
}

/** Smallest RAM a machine may have: 16 MiB. */
export const MIN_RAM_BYTES = 16 * 2 ** 20;
/** Largest physical address span the simulator backs: 68 GiB (64 GiB + PCI hole). */
export const MAX_BACKED_BYTES = 68 * 2 ** 30;
const GROW_STEP_BYTES = 2 ** 30;

/** Physical RAM on one SharedArrayBuffer, little-endian like x86. */
export class PhysicalMemory {
  /** The shared buffer behind every view; index = physical address. */
  readonly buffer: SharedArrayBuffer;
  /** Byte view of all of physical memory. */
  readonly u8: Uint8Array;
  /** 32-bit view (index = address / 4), for page tables and bitmaps. */
  readonly u32: Uint32Array;
  /** Signed 32-bit view (index = address / 4), for `Atomics`. */
  readonly i32: Int32Array;
  /** The RAM ranges, sorted by base, not overlapping. */
  readonly ranges: readonly RamRange[];
  /** One past the highest RAM byte. */
  readonly endBytes: number;
  /** Total bytes of RAM (the sum of the ranges). */
  readonly sizeBytes: number;
  readonly #view: DataView;
  readonly #isContiguousFromZero: boolean;

  /**
   * Creates RAM covering `ranges`. Throws RangeError if they overlap, are not
   * 4 KiB aligned, or end beyond {@linkcode MAX_BACKED_BYTES}.
   *
   * @param ranges The RAM ranges.
   * @param buffer The RAM of a machine that already exists, for another
   *   thread's view of it (a CPU on a Worker): the same bytes, not a copy.
   *   Default: a new zeroed buffer. Throws RangeError if it is shorter than
   *   the ranges' end.
   */
  constructor(ranges: readonly RamRange[], buffer?: SharedArrayBuffer) {
    const sorted = [...ranges].sort((a, b) => a.base - b.base);
    let end = 0;
    for (const r of sorted) {
      if (r.base % 4096 !== 0 || r.sizeBytes % 4096 !== 0 || r.sizeBytes <= 0) {
        throw new RangeError(
          `RAM range ${hex(r.base)}+${hex(r.sizeBytes)} is not whole 4 KiB frames`,
        );
      }
      if (r.base < end) throw new RangeError(`RAM range ${hex(r.base)} overlaps another`);
      end = r.base + r.sizeBytes;
    }
    if (sorted.length === 0) throw new RangeError("RAM needs at least one range");
    if (end > MAX_BACKED_BYTES) {
      throw new RangeError(`RAM ends at ${hex(end)}, beyond the ${hex(MAX_BACKED_BYTES)} limit`);
    }
    this.ranges = sorted;
    this.endBytes = end;
    this.sizeBytes = sorted.reduce((sum, r) => sum + r.sizeBytes, 0);
    this.#isContiguousFromZero = sorted.length === 1 && sorted[0].base === 0;
    if (buffer !== undefined && buffer.byteLength < end) {
      throw new RangeError(
        `RAM buffer of ${hex(buffer.byteLength)} bytes is shorter than the ranges' end ${hex(end)}`,
      );
    }
    this.buffer = buffer ?? allocateShared(end);
    this.u8 = new Uint8Array(this.buffer, 0, end);
    this.u32 = new Uint32Array(this.buffer, 0, end / 4);
    this.i32 = new Int32Array(this.buffer, 0, end / 4);
    this.#view = new DataView(this.buffer, 0, end);
  }

  /** Creates RAM of `sizeBytes` from physical address 0 with no holes. */
  static contiguous(sizeBytes: number): PhysicalMemory {
    return new PhysicalMemory([{ base: 0 as PhysAddr, sizeBytes }]);
  }

  /** Whether every byte of [pa, pa + lengthBytes) is RAM. */
  isRam(pa: number, lengthBytes: number): boolean {
    if (pa < 0 || lengthBytes < 0 || pa + lengthBytes > this.endBytes) return false;
    if (this.#isContiguousFromZero) return true;
    for (const r of this.ranges) {
      if (pa >= r.base && pa + lengthBytes <= r.base + r.sizeBytes) return true;
    }
    return false;
  }

  /** Throws a BusError unless [pa, pa + lengthBytes) is all RAM. */
  check(pa: number, lengthBytes: number): void {
    if (!this.isRam(pa, lengthBytes)) {
      throw new BusError(pa as PhysAddr, lengthBytes, "not RAM");
    }
  }

  /** Reads a byte. */
  read8(pa: PhysAddr): number {
    this.check(pa, 1);
    return this.u8[pa];
  }

  /** Reads a little-endian 16-bit value. */
  read16(pa: PhysAddr): number {
    this.check(pa, 2);
    return this.#view.getUint16(pa, true);
  }

  /** Reads a little-endian 32-bit value (unsigned). */
  read32(pa: PhysAddr): number {
    this.check(pa, 4);
    return this.#view.getUint32(pa, true);
  }

  /**
   * Reads a little-endian 64-bit value as a number: exact below 2^53, rounded
   * above (callers that need every bit read two 32-bit halves).
   */
  read64(pa: PhysAddr): number {
    this.check(pa, 8);
    return this.#view.getUint32(pa, true) + this.#view.getUint32(pa + 4, true) * 2 ** 32;
  }

  /** Writes a byte (the low 8 bits of `value`). */
  write8(pa: PhysAddr, value: number): void {
    this.check(pa, 1);
    this.u8[pa] = value;
  }

  /** Writes a little-endian 16-bit value. */
  write16(pa: PhysAddr, value: number): void {
    this.check(pa, 2);
    this.#view.setUint16(pa, value, true);
  }

  /** Writes a little-endian 32-bit value. */
  write32(pa: PhysAddr, value: number): void {
    this.check(pa, 4);
    this.#view.setUint32(pa, value >>> 0, true);
  }

  /** Writes a little-endian 64-bit value given as a non-negative safe integer. */
  write64(pa: PhysAddr, value: number): void {
    this.check(pa, 8);
    this.#view.setUint32(pa, value % 2 ** 32, true);
    this.#view.setUint32(pa + 4, Math.floor(value / 2 ** 32), true);
  }

  /** Copies `lengthBytes` bytes out of RAM into a new array. */
  readBytes(pa: PhysAddr, lengthBytes: number): Uint8Array {
    this.check(pa, lengthBytes);
    return this.u8.slice(pa, pa + lengthBytes);
  }

  /** Copies `bytes` into RAM at `pa`. */
  writeBytes(pa: PhysAddr, bytes: Uint8Array): void {
    this.check(pa, bytes.length);
    this.u8.set(bytes, pa);
  }

  /** Fills [pa, pa + lengthBytes) with `byte`. */
  fill(pa: PhysAddr, lengthBytes: number, byte: number): void {
    this.check(pa, lengthBytes);
    this.u8.fill(byte, pa, pa + lengthBytes);
  }

  /** Copies `lengthBytes` from `src` to `dst`; the ranges may overlap. */
  copy(dst: PhysAddr, src: PhysAddr, lengthBytes: number): void {
    this.check(src, lengthBytes);
    this.check(dst, lengthBytes);
    this.u8.copyWithin(dst, src, src + lengthBytes);
  }
}

/** Allocates a zeroed SharedArrayBuffer of `sizeBytes`, growing in 1 GiB steps. */
function allocateShared(sizeBytes: number): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(Math.min(sizeBytes, GROW_STEP_BYTES), {
    maxByteLength: sizeBytes,
  });
  while (buffer.byteLength < sizeBytes) {
    buffer.grow(Math.min(sizeBytes, buffer.byteLength + GROW_STEP_BYTES));
  }
  return buffer;
}
