/**
 * Branded address and frame-number types, page sizes, and hex formatting.
 *
 * Physical addresses are plain numbers below 2^52; virtual addresses hold the
 * low 48 bits of a canonical x86-64 address (sign extension is applied only
 * when printing and checked when parsing). The brands keep the three apart at
 * compile time at no run-time cost.
 *
 * @module
 */

/** A physical address in bytes. */
export type PhysAddr = number & { readonly __brand: "PhysAddr" };
/** A virtual address: the low 48 bits of a canonical x86-64 address. */
export type VirtAddr = number & { readonly __brand: "VirtAddr" };
/** A physical frame number: physical address / 4096. */
export type FrameNumber = number & { readonly __brand: "FrameNumber" };

/** Size of a 4 KiB page or frame, in bytes. */
export const PAGE_SIZE_4K = 4096;
/** Size of a 2 MiB page: 512 4 KiB pages. */
export const PAGE_SIZE_2M = PAGE_SIZE_4K * 512;
/** Size of a 1 GiB page: 512 2 MiB pages. */
export const PAGE_SIZE_1G = PAGE_SIZE_2M * 512;
/** The page sizes x86-64 4-level paging supports, in bytes. */
export type PageSizeBytes = typeof PAGE_SIZE_4K | typeof PAGE_SIZE_2M | typeof PAGE_SIZE_1G;

/** One past the highest virtual address representable in 48 bits. */
export const VIRT_ADDR_LIMIT = 2 ** 48;
/** The first canonical higher-half address, as its low 48 bits. */
export const HIGHER_HALF_START = 2 ** 47;
/** The largest physical address width x86-64 allows, in bits. */
export const MAX_PHYS_ADDR_BITS = 52;

/** Brands a number as a physical address; throws RangeError if it cannot be one. */
export function physAddr(value: number): PhysAddr {
  if (!Number.isSafeInteger(value) || value < 0 || value >= 2 ** MAX_PHYS_ADDR_BITS) {
    throw new RangeError(`Invalid physical address ${String(value)}`);
  }
  return value as PhysAddr;
}

/**
 * Brands the low 48 bits of a virtual address. Accepts values below 2^48 only;
 * use {@linkcode parseVirtAddr} for user input in canonical 64-bit form.
 */
export function virtAddr(value: number): VirtAddr {
  if (!Number.isSafeInteger(value) || value < 0 || value >= VIRT_ADDR_LIMIT) {
    throw new RangeError(`Invalid virtual address ${String(value)}: must be below 2^48`);
  }
  return value as VirtAddr;
}

/** The frame containing a physical address (rounds down). */
export function frameContaining(pa: PhysAddr): FrameNumber {
  return Math.floor(pa / PAGE_SIZE_4K) as FrameNumber;
}

/** The frame starting at a physical address; throws RangeError if misaligned. */
export function frameFromStart(pa: PhysAddr): FrameNumber {
  if (pa % PAGE_SIZE_4K !== 0) {
    throw new RangeError(`Physical address ${hex(pa)} is not 4 KiB aligned`);
  }
  return (pa / PAGE_SIZE_4K) as FrameNumber;
}

/** The physical address where a frame starts. */
export function frameStart(frame: FrameNumber): PhysAddr {
  return (frame * PAGE_SIZE_4K) as PhysAddr;
}

/** Whether `value` is a multiple of `alignBytes` (any positive integer). */
export function isAligned(value: number, alignBytes: number): boolean {
  return value % alignBytes === 0;
}

/** Rounds `value` up to a multiple of `alignBytes`. */
export function alignUp(value: number, alignBytes: number): number {
  return Math.ceil(value / alignBytes) * alignBytes;
}

/** Rounds `value` down to a multiple of `alignBytes`. */
export function alignDown(value: number, alignBytes: number): number {
  return Math.floor(value / alignBytes) * alignBytes;
}

/** Formats a non-negative integer as `0x`-prefixed lower-case hex. */
export function hex(value: number, minDigits = 1): string {
  return "0x" + value.toString(16).padStart(minDigits, "0");
}

/**
 * Formats a 48-bit virtual address in canonical 64-bit form, e.g.
 * `0xffff800000000000` for the start of the higher half.
 */
export function formatVirtAddr(va: VirtAddr): string {
  if (va >= HIGHER_HALF_START) {
    // Sign-extend: the upper 16 bits become ffff.
    return "0xffff" + va.toString(16).padStart(12, "0");
  }
  return hex(va);
}

/**
 * Parses a virtual address written by a user (`0x` hex or decimal, `_`
 * separators allowed) in canonical 64-bit form. Throws RangeError, naming the
 * input, if it is not a number or not canonical.
 */
export function parseVirtAddr(text: string): VirtAddr {
  const clean = text.trim().replaceAll("_", "").toLowerCase();
  let value: number;
  if (/^0x[0-9a-f]{1,16}$/.test(clean)) {
    const digits = clean.slice(2).padStart(16, "0");
    const high16 = parseInt(digits.slice(0, 4), 16);
    const low48 = parseInt(digits.slice(4), 16);
    const bit47 = low48 >= HIGHER_HALF_START;
    if ((bit47 && high16 !== 0xffff) || (!bit47 && high16 !== 0)) {
      throw new RangeError(`Non-canonical virtual address "${text}"`);
    }
    value = low48;
  } else if (/^[0-9]+$/.test(clean)) {
    value = Number(clean);
    if (value >= HIGHER_HALF_START) {
      throw new RangeError(`Non-canonical virtual address "${text}"`);
    }
  } else {
    throw new RangeError(`Invalid virtual address "${text}": expected hex (0x...) or decimal`);
  }
  return value as VirtAddr;
}

/**
 * Parses a physical address or other non-negative integer written by a user
 * (`0x` hex or decimal, `_` separators allowed). Throws RangeError naming the
 * input when it is not one.
 */
export function parseUnsigned(text: string, what = "number"): number {
  const clean = text.trim().replaceAll("_", "").toLowerCase();
  const value = /^0x[0-9a-f]+$/.test(clean)
    ? parseInt(clean.slice(2), 16)
    : /^[0-9]+$/.test(clean)
    ? Number(clean)
    : NaN;
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`Invalid ${what} "${text}": expected hex (0x...) or decimal`);
  }
  return value;
}
