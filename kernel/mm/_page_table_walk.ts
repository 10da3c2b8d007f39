/**
 * Reading x86-64 4-level page tables back from RAM, for both address spaces
 * the kernel knows: the stock `AddressSpace` and the `MapperAddressSpace`
 * around a user's mapper. The tables are in the architectural format (Intel
 * SDM vol. 3A, section 4.5; `docs/x86_64_paging.md`) plus the kernel's software
 * bits (the table in `address_space.ts`'s module documentation). Here are
 * the entry arithmetic, a leaf in words ({@linkcode describeLeaf}), and the
 * three read-only walks: the leaf that maps one address
 * ({@linkcode leafAt}), the leaves in a range ({@linkcode leavesIn}) and the
 * counts of tables and leaves ({@linkcode countTables}).
 *
 * The two spaces trust their tables differently, and each says how through
 * a {@linkcode PageTableReader}:
 *
 * - `AddressSpace` wrote every entry of its own tables: it reads them through
 *   the word view of RAM, follows links unchecked, and leaves FOREIGN links
 *   (the recursive PML4 entry, a shared kernel half) out of the range walk
 *   and the counts, since those tables are not its own.
 * - `MapperAddressSpace` reads tables a user's mapper wrote through
 *   `PhysicalMemory.read32` and checks that every link it follows points
 *   into RAM (`KernelError` `InvalidPart`: the mapper's fault).
 *
 * @module
 */

import {
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  type PageSizeBytes,
  type PhysAddr,
  PTE_A,
  PTE_D,
  PTE_G,
  PTE_HIGH_NX,
  PTE_P,
  PTE_PCD,
  PTE_PS,
  PTE_PWT,
  PTE_RW,
  PTE_US,
  VIRT_ADDR_LIMIT,
  type VirtAddr,
} from "../../hal/mod.ts";
import type { AddressSpaceStats, Mapping } from "./address_space.ts";

/**
 * Leaf bit 9 (ignored by the processor): the entry holds one reference to its
 * frame. `address_space.ts` exports it as `PTE_SW_OWNED`.
 */
export const SW_OWNED = 1 << 9;
/**
 * Leaf bit 10 (ignored by the processor): copy-on-write. `address_space.ts`
 * exports it as `PTE_SW_COW`.
 */
export const SW_COW = 1 << 10;
/**
 * The PageFlags bit (12) that stands for XD, entry bit 63 (bit 31 of the high
 * half). `address_space.ts` exports it as `PAGE_NO_EXECUTE`.
 */
export const NO_EXECUTE = 1 << 12;
/** The leaf bits that are PageFlags bits as they are, in an entry's low half. */
export const LEAF_LOW_FLAGS = PTE_RW | PTE_US | PTE_PWT | PTE_PCD | PTE_G | SW_COW;

/** Bytes one entry covers at each level: index 1 = PT (4 KiB) ... 4 = PML4 (512 GiB). */
export const SPAN_BYTES: readonly number[] = [0, PAGE_SIZE_4K, PAGE_SIZE_2M, PAGE_SIZE_1G, 2 ** 39];
/** 1 / SPAN_BYTES: a multiplication is several times cheaper than a division. */
const INVERSE_SPAN = [0, 2 ** -12, 2 ** -21, 2 ** -30, 2 ** -39];
/** Entries in every paging structure (SDM vol. 3A, section 4.5). */
const ENTRIES_PER_TABLE = 512;
/** 32-bit words of one entry: its low half, then its high half. */
const ENTRY_WORDS = 2;
const TWO_POW_32 = 2 ** 32;

// ---------------------------------------------------------------------------
// Entry arithmetic. Addresses are numbers below 2^52; `%` and `Math.floor` by
// 2^32 split them, never `>>` (which would truncate to 32 bits).

/** The index into the table at `level` for `va`. */
export function indexAt(va: number, level: number): number {
  // Multiplying by a power of two is exact; `&` truncates (a floor, for
  // non-negative values) and reduces modulo 2^32, which keeps the low 9 bits.
  return (va * INVERSE_SPAN[level]) & 511;
}

/** The first address of the page at `level` (1 = 4 KiB ... 3 = 1 GiB) containing `va`. */
export function pageBase(va: number, level: number): number {
  return Math.floor(va * INVERSE_SPAN[level]) * SPAN_BYTES[level];
}

/** Address bits 51:12 of an entry: the next table. */
export function tableOf(low: number, high: number): number {
  return (high & 0xfffff) * TWO_POW_32 + ((low & 0xfffff000) >>> 0);
}

/** The frame a leaf at `level` maps (bit 12 of a huge leaf is PAT, not address). */
export function frameOf(low: number, high: number, level: number): number {
  const mask = level === 1 ? 0xfffff000 : level === 2 ? 0xffe00000 : 0xc0000000;
  return (high & 0xfffff) * TWO_POW_32 + ((low & mask) >>> 0);
}

/** Whether a present entry at `level` is a leaf: every PT entry, and PS in a PD or PDPT entry. */
function isLeaf(low: number, level: number): boolean {
  return level === 1 || (level < 4 && (low & PTE_PS) !== 0);
}

/** The leaf at `level` with halves `low` and `high` that maps the page at `pageVa`, in words. */
export function describeLeaf(pageVa: number, low: number, high: number, level: number): Mapping {
  return {
    virtAddr: pageVa as VirtAddr,
    physAddr: frameOf(low, high, level) as PhysAddr,
    pageSizeBytes: SPAN_BYTES[level] as PageSizeBytes,
    flags: (low & LEAF_LOW_FLAGS) | ((high & PTE_HIGH_NX) !== 0 ? NO_EXECUTE : 0),
    isOwned: (low & SW_OWNED) !== 0,
    isAccessed: (low & PTE_A) !== 0,
    isDirty: (low & PTE_D) !== 0,
  };
}

// ---------------------------------------------------------------------------
// Walks

/**
 * How the walks read one address space's tables, and which links they
 * follow. Tables and entries are named by word index: physical address / 4,
 * the index into the word view of RAM (`PhysicalMemory.u32`).
 */
export interface PageTableReader {
  /** Bits 31:0 of the entry at word `entryWord`. */
  readLow(entryWord: number): number;
  /** Bits 63:32 of the entry at word `entryWord`. */
  readHigh(entryWord: number): number;
  /**
   * The word index of the table the present non-leaf entry at word
   * `entryWord`, with halves `low` and `high`, links to; throws if the space
   * cannot trust the link.
   */
  followLink(low: number, high: number, entryWord: number): number;
  /**
   * Non-leaf entry bits that keep {@linkcode leavesIn} and
   * {@linkcode countTables} out of the table the entry links to: its table
   * is not the space's own. {@linkcode leafAt} follows every link, as the
   * MMU does.
   */
  readonly skippedLinkBits: number;
}

/**
 * The leaf that maps `va`, walked from the PML4 at word `pml4Word`.
 *
 * @param reader How the space reads its tables.
 * @param pml4Word The PML4's word index (its physical address / 4).
 * @param va A 48-bit virtual address (the caller checks it).
 * @returns The leaf in words, or undefined if an entry on the way is not present.
 */
export function leafAt(reader: PageTableReader, pml4Word: number, va: number): Mapping | undefined {
  let table = pml4Word;
  for (let level = 4; level >= 1; level--) {
    const e = table + ENTRY_WORDS * indexAt(va, level);
    const low = reader.readLow(e);
    if ((low & PTE_P) === 0) return undefined;
    const high = reader.readHigh(e);
    if (isLeaf(low, level)) return describeLeaf(pageBase(va, level), low, high, level);
    table = reader.followLink(low, high, e);
  }
  return undefined;
}

/**
 * Every leaf that maps part of `[va, va + sizeBytes)` (cut at 2^48), lowest
 * first, leaving out the tables behind skipped links.
 *
 * @param reader How the space reads its tables.
 * @param pml4Word The PML4's word index (its physical address / 4).
 * @param va First virtual address; below 0, the range starts at 0.
 * @param sizeBytes Length of the range; nothing unless positive.
 * @returns The leaves in words.
 */
export function leavesIn(
  reader: PageTableReader,
  pml4Word: number,
  va: number,
  sizeBytes: number,
): Mapping[] {
  const out: Mapping[] = [];
  if (sizeBytes > 0) {
    collect(reader, pml4Word, 4, 0, va, Math.min(va + sizeBytes, VIRT_ADDR_LIMIT), out);
  }
  return out;
}

/**
 * Appends the leaves under the table at word `table` (at `level`, its first
 * entry mapping from `base`) that meet [start, end).
 */
function collect(
  reader: PageTableReader,
  table: number,
  level: number,
  base: number,
  start: number,
  end: number,
  out: Mapping[],
): void {
  const span = SPAN_BYTES[level];
  const inverse = INVERSE_SPAN[level];
  // From the entry holding `start` to the last that starts below `end`; the
  // range may begin before this table and end after it.
  const first = Math.max(0, Math.floor((start - base) * inverse));
  const last = Math.min(ENTRIES_PER_TABLE - 1, Math.ceil((end - base) * inverse) - 1);
  for (let index = first; index <= last; index++) {
    const e = table + ENTRY_WORDS * index;
    const low = reader.readLow(e);
    if ((low & PTE_P) === 0) continue;
    const high = reader.readHigh(e);
    const entryVa = base + index * span;
    if (isLeaf(low, level)) {
      out.push(describeLeaf(entryVa, low, high, level));
    } else if ((low & reader.skippedLinkBits) === 0) {
      collect(reader, reader.followLink(low, high, e), level - 1, entryVa, start, end, out);
    }
  }
}

/** {@linkcode AddressSpaceStats} while it is being counted. */
type Counts = { -readonly [K in keyof AddressSpaceStats]: AddressSpaceStats[K] };

/**
 * Counts the tables (the PML4 included) and the leaves by reading every table
 * from the PML4 at word `pml4Word`, leaving out the tables behind skipped
 * links.
 *
 * @param reader How the space reads its tables.
 * @param pml4Word The PML4's word index (its physical address / 4).
 * @returns The counts.
 */
export function countTables(reader: PageTableReader, pml4Word: number): AddressSpaceStats {
  const counts: Counts = { pageTableFrames: 0, pages4K: 0, pages2M: 0, pages1G: 0, ownedPages: 0 };
  count(reader, pml4Word, 4, counts);
  return counts;
}

function count(reader: PageTableReader, table: number, level: number, counts: Counts): void {
  counts.pageTableFrames++;
  for (let index = 0; index < ENTRIES_PER_TABLE; index++) {
    const e = table + ENTRY_WORDS * index;
    const low = reader.readLow(e);
    if ((low & PTE_P) === 0) continue;
    if (isLeaf(low, level)) {
      if (level === 1) counts.pages4K++;
      else if (level === 2) counts.pages2M++;
      else counts.pages1G++;
      if ((low & SW_OWNED) !== 0) counts.ownedPages++;
    } else if ((low & reader.skippedLinkBits) === 0) {
      count(reader, reader.followLink(low, reader.readHigh(e), e), level - 1, counts);
    }
  }
}
