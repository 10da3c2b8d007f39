/**
 * Reads a 4-level page-table tree in RAM, as a debugger reading the
 * machine would: which frames hold page tables, how many tables each level
 * has, and how much the leaves map in 4 KiB, 2 MiB and 1 GiB pages. It needs
 * no kernel API, only the root table's physical address (CR3), so it keeps
 * working whatever shape the kernel's address-space code takes.
 *
 * @module
 */

import {
  ENTRIES_PER_TABLE,
  type PagingLevel,
  type PhysAddr,
  type PhysicalMemory,
  PTE_P,
  PTE_PS,
} from "../hal/mod.ts";

/** What {@linkcode scanPageTables} found. */
export interface PageTableScan {
  /** Physical address of the root (PML4) table. */
  readonly rootAddress: PhysAddr;
  /** Frame numbers of every table reached (PML4, PDPTs, PDs, PTs), ascending, each once. */
  readonly tableFrames: readonly number[];
  /** Tables per level: `[PML4, PDPT, PD, PT]`. */
  readonly tablesPerLevel: readonly [number, number, number, number];
  /** Present leaf entries mapping 4 KiB pages. */
  readonly pages4K: number;
  /** Present leaf entries mapping 2 MiB pages. */
  readonly pages2M: number;
  /** Present leaf entries mapping 1 GiB pages. */
  readonly pages1G: number;
  /** Bytes of virtual address space the leaves map. */
  readonly mappedBytes: number;
  /** Entries pointing outside RAM, which the scan skipped. */
  readonly badEntries: number;
}

const FRAME_BYTES = 4096;
const ENTRY_WORDS = 2;

/**
 * Walks every present entry of the tree rooted at `rootAddress` (the low 12
 * bits, CR3's flags, are ignored). A table reached twice (shared between
 * parents) is counted once. Costs one read per present entry: a direct map
 * of 64 GiB in 2 MiB pages is 32,768 entries.
 *
 * @param memory The RAM holding the tables.
 * @param rootAddress The PML4's physical address (CR3).
 * @returns The tables and the leaf counts; an empty scan if the root is not RAM.
 */
export function scanPageTables(memory: PhysicalMemory, rootAddress: number): PageTableScan {
  const root = rootAddress - (rootAddress % FRAME_BYTES);
  const seen = new Set<number>();
  const tablesPerLevel: [number, number, number, number] = [0, 0, 0, 0];
  let pages4K = 0;
  let pages2M = 0;
  let pages1G = 0;
  let badEntries = 0;
  const u32 = memory.u32;
  // An explicit stack of [table address, level], depth first.
  const stack: [number, PagingLevel][] = [];
  if (memory.isRam(root, FRAME_BYTES)) stack.push([root, 4]);
  while (stack.length > 0) {
    const [table, level] = stack.pop()!;
    const frame = table / FRAME_BYTES;
    if (seen.has(frame)) continue;
    seen.add(frame);
    tablesPerLevel[4 - level]++;
    const firstWord = table / 4;
    for (let i = 0; i < ENTRIES_PER_TABLE; i++) {
      const low = u32[firstWord + i * ENTRY_WORDS];
      if ((low & PTE_P) === 0) continue;
      const high = u32[firstWord + i * ENTRY_WORDS + 1];
      const isLeaf = level === 1 || (level !== 4 && (low & PTE_PS) !== 0);
      if (isLeaf) {
        if (level === 1) pages4K++;
        else if (level === 2) pages2M++;
        else pages1G++;
        continue;
      }
      const child = (high & 0xfffff) * 2 ** 32 + ((low & 0xfffff000) >>> 0);
      if (!memory.isRam(child, FRAME_BYTES)) {
        badEntries++;
        continue;
      }
      stack.push([child, (level - 1) as PagingLevel]);
    }
  }
  return {
    rootAddress: root as PhysAddr,
    tableFrames: [...seen].sort((a, b) => a - b),
    tablesPerLevel,
    pages4K,
    pages2M,
    pages1G,
    mappedBytes: pages4K * FRAME_BYTES + pages2M * 2 ** 21 + pages1G * 2 ** 30,
    badEntries,
  };
}
