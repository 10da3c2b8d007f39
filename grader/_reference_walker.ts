/**
 * The page-table lab's reference: an x86-64 4-level page walk written in
 * the grader, independent of the simulator's MMU, and the exact 64-bit leaf
 * entry the contract asks a mapper to write for given flags. The lab checks
 * a student's tables with both this walker and the hardware MMU.
 *
 * Facts used (docs/x86_64_paging.md): the index at level L is VA bits
 * 12 + 9(L-1) to 20 + 9(L-1); a present entry's bits 51:12 address the next
 * table; PS (bit 7) makes a PDPTE a 1 GiB leaf and a PDE a 2 MiB leaf; a
 * PTE is always a leaf; XD is bit 63, i.e. bit 31 of the high half.
 *
 * @module
 */

import {
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  type PageSizeBytes,
  type PhysAddr,
  type PhysicalMemory,
} from "../hal/mod.ts";
import { PAGE_NO_EXECUTE, type PageFlags } from "../sdk/mod.ts";

/** Present (bit 0). */
export const ENTRY_P = 1 << 0;
/** Read/write (bit 1). */
export const ENTRY_RW = 1 << 1;
/** User/supervisor (bit 2). */
export const ENTRY_US = 1 << 2;
/** Page-level write-through (bit 3). */
export const ENTRY_PWT = 1 << 3;
/** Page-level cache disable (bit 4). */
export const ENTRY_PCD = 1 << 4;
/** Accessed (bit 5), set by the processor. */
export const ENTRY_A = 1 << 5;
/** Dirty (bit 6, leaves), set by the processor. */
export const ENTRY_D = 1 << 6;
/** Page size (bit 7): a PDPTE or PDE that maps a page. */
export const ENTRY_PS = 1 << 7;
/** Global (bit 8, leaves). */
export const ENTRY_G = 1 << 8;
/** Execute-disable: bit 63, bit 31 of the high half. */
export const ENTRY_HIGH_XD = 2 ** 31;
/** Software bit 9 (ignored by the processor; the kernel's "owned"). */
const SOFTWARE_BIT_9 = 1 << 9;
/** Software bit 10 (ignored by the processor): the kernel's copy-on-write mark. */
const SOFTWARE_COW = 1 << 10;
/** Software bit 11 (ignored by the processor). */
const SOFTWARE_BIT_11 = 1 << 11;
/** The low-half bits a `PageFlags` value copies into a leaf: RW, US, PWT, PCD, G, 9-11. */
export const LEAF_FLAG_BITS = ENTRY_RW | ENTRY_US | ENTRY_PWT | ENTRY_PCD | ENTRY_G |
  SOFTWARE_BIT_9 | SOFTWARE_COW | SOFTWARE_BIT_11;
/** Address bits 51:32 in the high half. */
const HIGH_ADDRESS_BITS = 0xfffff;
const TWO_POW_32 = 2 ** 32;
const ENTRIES = 512;
/** Bytes one entry maps at each level (index = level). */
const SPAN_BYTES = [0, PAGE_SIZE_4K, PAGE_SIZE_2M, PAGE_SIZE_1G, PAGE_SIZE_1G * ENTRIES];

/** One entry the walk read. */
export interface WalkEntry {
  /** 4 = PML4 ... 1 = PT. */
  readonly level: number;
  /** The entry's physical address. */
  readonly entryAddr: number;
  /** Low 32 bits. */
  readonly low: number;
  /** High 32 bits. */
  readonly high: number;
}

/** What the reference walk found. */
export interface ReferenceWalk {
  /** Every entry read, PML4E first; the last is the leaf or the first not-present entry. */
  readonly path: readonly WalkEntry[];
  /** The leaf, when the address is mapped. */
  readonly leaf?: WalkEntry & {
    /** Size of the page it maps. */
    readonly pageSizeBytes: PageSizeBytes;
    /** First physical address of the page. */
    readonly frameBase: number;
    /** The physical address `va` translates to. */
    readonly physAddr: number;
  };
  /** Why the walk stopped early: a table outside RAM. */
  readonly problem?: string;
}

/**
 * Walks the tables at `pml4Addr` for `va` by reading RAM.
 *
 * @param memory The RAM holding the tables.
 * @param pml4Addr Physical address of the PML4.
 * @param va A virtual address below 2^48.
 * @returns The entries read and the leaf, if any.
 */
export function referenceWalk(memory: PhysicalMemory, pml4Addr: number, va: number): ReferenceWalk {
  const path: WalkEntry[] = [];
  let table = pml4Addr;
  for (let level = 4; level >= 1; level--) {
    const index = Math.floor(va / SPAN_BYTES[level]) % ENTRIES;
    const entryAddr = table + index * 8;
    if (!memory.isRam(entryAddr, 8)) {
      return { path, problem: `the level-${level} table at ${hexOf(table)} is not in RAM` };
    }
    const low = memory.read32(entryAddr as PhysAddr);
    const high = memory.read32((entryAddr + 4) as PhysAddr);
    const entry = { level, entryAddr, low, high };
    path.push(entry);
    if ((low & ENTRY_P) === 0) return { path };
    const isLeaf = level === 1 || ((level === 2 || level === 3) && (low & ENTRY_PS) !== 0);
    if (isLeaf) {
      const span = SPAN_BYTES[level];
      const frameBase = (high & HIGH_ADDRESS_BITS) * TWO_POW_32 +
        (((low >>> 0) - ((low >>> 0) % span)) % TWO_POW_32);
      const pageSizeBytes = span as PageSizeBytes;
      return {
        path,
        leaf: { ...entry, pageSizeBytes, frameBase, physAddr: frameBase + (va % span) },
      };
    }
    table = (high & HIGH_ADDRESS_BITS) * TWO_POW_32 + ((low >>> 0) - ((low >>> 0) % PAGE_SIZE_4K));
  }
  return { path };
}

/**
 * The leaf entry the contract asks for: P, the flag bits as given, PS for a
 * huge page, A and D clear, the frame's address, XD for `PAGE_NO_EXECUTE`.
 *
 * @param pa The frame's physical address (aligned to the page size).
 * @param flags The `PageFlags` passed to `map`.
 * @param pageSizeBytes The page size.
 * @returns The entry's two halves.
 */
export function expectedLeaf(
  pa: number,
  flags: PageFlags,
  pageSizeBytes: PageSizeBytes,
): { low: number; high: number } {
  const low = (ENTRY_P | (flags & LEAF_FLAG_BITS) |
    (pageSizeBytes === PAGE_SIZE_4K ? 0 : ENTRY_PS) | (pa % TWO_POW_32)) >>> 0;
  const high =
    (Math.floor(pa / TWO_POW_32) | ((flags & PAGE_NO_EXECUTE) !== 0 ? ENTRY_HIGH_XD : 0)) >>> 0;
  return { low, high };
}

/**
 * An entry as 16 hex digits.
 *
 * @param low Low 32 bits.
 * @param high High 32 bits.
 * @returns E.g. `0x8000000000005063`.
 */
export function entryHex(low: number, high: number): string {
  return `0x${(high >>> 0).toString(16).padStart(8, "0")}${
    (low >>> 0).toString(16).padStart(8, "0")
  }`;
}

/**
 * The bits of an entry in words, leaf or table: `P RW US NX` ...
 *
 * @param low Low 32 bits.
 * @param high High 32 bits.
 * @returns The set bits' names.
 */
export function entryBits(low: number, high: number): string {
  const names: [number, string][] = [
    [ENTRY_P, "P"],
    [ENTRY_RW, "RW"],
    [ENTRY_US, "US"],
    [ENTRY_PWT, "PWT"],
    [ENTRY_PCD, "PCD"],
    [ENTRY_A, "A"],
    [ENTRY_D, "D"],
    [ENTRY_PS, "PS"],
    [ENTRY_G, "G"],
    [SOFTWARE_BIT_9, "bit9"],
    [SOFTWARE_COW, "COW"],
    [SOFTWARE_BIT_11, "bit11"],
  ];
  const words = names.filter(([bit]) => (low & bit) !== 0).map(([, name]) => name);
  if ((high & ENTRY_HIGH_XD) !== 0) words.push("NX");
  return words.length === 0 ? "none" : words.join(" ");
}

function hexOf(value: number): string {
  return `0x${value.toString(16)}`;
}
