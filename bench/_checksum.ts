/**
 * The workloads' checksum (lib/xorshift32.ts `foldChecksum`: FNV-1a
 * style, `h = Math.imul(h ^ v, 16777619) >>> 0`) with the hash kept as an
 * int32 between steps: the same 32 bits, and `>>> 0` once after the loop gives
 * the published value. A hash held as an unsigned number above 2^31 is a
 * double to V8, which would convert it twice per step and time that instead
 * of the allocator.
 *
 * @module
 */

import { CHECKSUM_SEED } from "../testing/mod.ts";

/** The checksum's starting value as an int32. */
export const CHECKSUM_SEED_INT32 = CHECKSUM_SEED | 0;
/** The FNV-1a 32-bit prime the fold multiplies by. */
const FNV_PRIME = 16777619;

/**
 * Folds `value` into `hash` (both int32 bit patterns).
 *
 * @param hash The hash so far.
 * @param value The value to fold in.
 * @returns The new hash as an int32; `>>> 0` reads it as the checksum.
 */
export function foldInt32(hash: number, value: number): number {
  return Math.imul(hash ^ value, FNV_PRIME);
}
