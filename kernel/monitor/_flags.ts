/**
 * The one way every monitor command prints page permissions: the same
 * columns in the same order, a dash for a clear bit, so `pt`, `map`,
 * `translate`, `vmmap` and `tlb` line up and read alike.
 *
 * ```
 * RW US NX G A D      writable, user, no-execute, global, accessed, dirty
 * RW -- NX G - -      a kernel data page not yet touched
 * -- -- -- G A -      read-only, executable (no NX), global, accessed
 * ```
 *
 * Bits the processor ignores and the kernel defines are never in these
 * columns: they print after `sw:` (see `docs/monitor.md`).
 *
 * @module
 */

import { PTE_A, PTE_D, PTE_G, PTE_HIGH_NX, PTE_RW, PTE_US } from "../../hal/mod.ts";
import {
  PAGE_GLOBAL,
  PAGE_NO_EXECUTE,
  PAGE_USER,
  PAGE_WRITABLE,
  type PageFlags,
} from "../mm/mod.ts";

/** The legend `help` prints. */
export const FLAG_LEGEND =
  "flags: RW writable, US user, NX no-execute, G global, A accessed, D dirty; " +
  "a dash is a clear bit; sw: bits the kernel defines (the MMU ignores them)";

/** Page permission bits as the monitor prints them. */
export interface FlagBits {
  /** R/W: writes allowed. */
  readonly writable: boolean;
  /** U/S: user-mode accesses allowed. */
  readonly user: boolean;
  /** XD: instruction fetches forbidden. */
  readonly noExecute: boolean;
  /** G: the translation survives CR3 writes. */
  readonly global: boolean;
  /** A: accessed (undefined: not shown, e.g. in `vmmap`). */
  readonly accessed?: boolean;
  /** D: dirty (undefined: not shown). */
  readonly dirty?: boolean;
}

/**
 * The flag columns: `RW US NX G`, then ` A D` when the accessed and dirty
 * bits are given.
 *
 * @example
 * ```ts
 * import { formatFlags } from "./_flags.ts";
 * formatFlags({ writable: true, user: false, noExecute: true, global: true }); // "RW -- NX G"
 * ```
 */
export function formatFlags(bits: FlagBits): string {
  let text = `${bits.writable ? "RW" : "--"} ${bits.user ? "US" : "--"} ` +
    `${bits.noExecute ? "NX" : "--"} ${bits.global ? "G" : "-"}`;
  if (bits.accessed !== undefined) text += bits.accessed ? " A" : " -";
  if (bits.dirty !== undefined) text += bits.dirty ? " D" : " -";
  return text;
}

/** The flag bits of a paging-structure entry (G and D count only in a leaf). */
export function entryFlagBits(low32: number, high32: number, isLeaf: boolean): FlagBits {
  return {
    writable: (low32 & PTE_RW) !== 0,
    user: (low32 & PTE_US) !== 0,
    noExecute: (high32 & PTE_HIGH_NX) !== 0,
    global: isLeaf && (low32 & PTE_G) !== 0,
    accessed: (low32 & PTE_A) !== 0,
    dirty: isLeaf && (low32 & PTE_D) !== 0,
  };
}

/** The flag bits of {@linkcode PageFlags}, with the accessed and dirty bits if known. */
export function pageFlagBits(
  flags: PageFlags,
  accessDirty?: { readonly accessed: boolean; readonly dirty: boolean },
): FlagBits {
  return {
    writable: (flags & PAGE_WRITABLE) !== 0,
    user: (flags & PAGE_USER) !== 0,
    noExecute: (flags & PAGE_NO_EXECUTE) !== 0,
    global: (flags & PAGE_GLOBAL) !== 0,
    accessed: accessDirty?.accessed,
    dirty: accessDirty?.dirty,
  };
}
