/**
 * Memory types of a translation (Intel SDM vol. 3A, 11.12: the page
 * attribute table), for the MMU's uncached-MMIO check (docs/apic.md, "MMIO
 * and caching").
 *
 * A leaf's PAT, PCD and PWT bits form a 3-bit index (PAT × 4 + PCD × 2 +
 * PWT) into the IA32_PAT MSR, whose eight bytes each name a memory type.
 * Device registers must be mapped uncacheable (UC, or UC- which the MTRRs
 * cannot make cacheable): a cached read returns a stale register, and a
 * write-back store may reach the device late or never. The simulator does
 * not model caches, so such a mapping works here; the MMU reports it as the
 * mistake it would be on hardware.
 *
 * @module
 */

import { hex } from "./address.ts";

/** Memory type 0: uncacheable (UC). */
export const MEMORY_TYPE_UC = 0x00;
/** Memory type 1: write-combining (WC). */
export const MEMORY_TYPE_WC = 0x01;
/** Memory type 4: write-through (WT). */
export const MEMORY_TYPE_WT = 0x04;
/** Memory type 5: write-protected (WP). */
export const MEMORY_TYPE_WP = 0x05;
/** Memory type 6: write-back (WB). */
export const MEMORY_TYPE_WB = 0x06;
/** Memory type 7: uncached, overridable by the MTRRs to WC (UC-). */
export const MEMORY_TYPE_UC_MINUS = 0x07;

/**
 * IA32_PAT after reset (SDM 11.12.4): PA0 WB, PA1 WT, PA2 UC-, PA3 UC,
 * repeated for PA4 to PA7, as bytes from PA0 up. The simulated CPU keeps it
 * (WRMSR to IA32_PAT is not modelled), so PCD alone decides: entries 2, 3, 6
 * and 7 are uncached.
 */
export const RESET_PAT_ENTRIES: readonly number[] = [
  MEMORY_TYPE_WB,
  MEMORY_TYPE_WT,
  MEMORY_TYPE_UC_MINUS,
  MEMORY_TYPE_UC,
  MEMORY_TYPE_WB,
  MEMORY_TYPE_WT,
  MEMORY_TYPE_UC_MINUS,
  MEMORY_TYPE_UC,
];

const TYPE_NAMES: Readonly<Record<number, string>> = {
  [MEMORY_TYPE_UC]: "UC",
  [MEMORY_TYPE_WC]: "WC",
  [MEMORY_TYPE_WT]: "WT",
  [MEMORY_TYPE_WP]: "WP",
  [MEMORY_TYPE_WB]: "WB",
  [MEMORY_TYPE_UC_MINUS]: "UC-",
};

/**
 * The memory type a leaf selects with its PAT, PCD and PWT bits.
 *
 * @param isPat The leaf's PAT bit (bit 7 of a PTE, bit 12 of a 2 MiB or 1 GiB leaf).
 * @param isCacheDisabled The leaf's PCD bit.
 * @param isWriteThrough The leaf's PWT bit.
 * @param patEntries The IA32_PAT entries (default: the reset value).
 * @returns A MEMORY_TYPE_* value.
 * @example
 * ```ts
 * import { MEMORY_TYPE_UC, memoryTypeOf } from "./memory_type.ts";
 * console.assert(memoryTypeOf(false, true, true) === MEMORY_TYPE_UC); // PCD|PWT: PAT entry 3
 * ```
 */
export function memoryTypeOf(
  isPat: boolean,
  isCacheDisabled: boolean,
  isWriteThrough: boolean,
  patEntries: readonly number[] = RESET_PAT_ENTRIES,
): number {
  return patEntries[(isPat ? 4 : 0) + (isCacheDisabled ? 2 : 0) + (isWriteThrough ? 1 : 0)];
}

/** Whether a memory type keeps device registers out of the caches: UC or UC-. */
export function isUncacheable(memoryType: number): boolean {
  return memoryType === MEMORY_TYPE_UC || memoryType === MEMORY_TYPE_UC_MINUS;
}

/** A memory type's short name: `UC`, `UC-`, `WC`, `WT`, `WP`, `WB`, or hex when reserved. */
export function patMemoryTypeName(memoryType: number): string {
  return TYPE_NAMES[memoryType] ?? `reserved ${hex(memoryType, 2)}`;
}
