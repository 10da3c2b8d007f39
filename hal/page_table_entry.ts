/**
 * The x86-64 paging-structure entry format (Intel SDM vol. 3A, 4.5, tables
 * 4-15 to 4-20): bit constants, reading and writing an entry in RAM as two
 * 32-bit halves, extracting the address it holds, and describing it in words.
 *
 * A 64-bit entry is never a `BigInt`: it is a low half (flags and address bits
 * 31:12) and a high half (address bits 51:32, ignored bits 62:52, and XD, bit
 * 63, as bit 31 of the high half). Both halves are unsigned 32-bit numbers.
 *
 * | bit | PML4E | PDPTE | PDE | PTE |
 * |---|---|---|---|---|
 * | 0 to 5 | P, RW, US, PWT, PCD, A | same | same | same |
 * | 6 | ignored | D if 1 GiB leaf | D if 2 MiB leaf | D |
 * | 7 | PS: reserved | PS: 1 GiB page | PS: 2 MiB page | PAT |
 * | 8 | ignored | G if leaf | G if leaf | G |
 * | 12 | address | PAT if leaf | PAT if leaf | address |
 * | 63 | XD | XD | XD | XD |
 *
 * @module
 */

import {
  hex,
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  type PageSizeBytes,
  type PhysAddr,
  type VirtAddr,
} from "./address.ts";
import type { PhysicalMemory } from "./physical_memory.ts";

/** Bit 0, P: the entry is present (maps a page or references a table). */
export const PTE_P = 1 << 0;
/** Bit 1, R/W: writes allowed (combined with every level and CR0.WP). */
export const PTE_RW = 1 << 1;
/** Bit 2, U/S: user-mode (CPL 3) accesses allowed (combined with every level). */
export const PTE_US = 1 << 2;
/** Bit 3, PWT: page-level write-through. */
export const PTE_PWT = 1 << 3;
/** Bit 4, PCD: page-level cache disable. */
export const PTE_PCD = 1 << 4;
/** Bit 5, A: accessed; the walker sets it in every entry it uses. */
export const PTE_A = 1 << 5;
/** Bit 6, D: dirty; the walker sets it in the leaf on a write (ignored in non-leaf entries). */
export const PTE_D = 1 << 6;
/** Bit 7, PS: in a PDPTE a 1 GiB page, in a PDE a 2 MiB page; reserved in a PML4E. */
export const PTE_PS = 1 << 7;
/** Bit 7 of a PTE (4 KiB leaf), PAT: page attribute table index bit. */
export const PTE_PAT = 1 << 7;
/** Bit 8, G: global translation (survives CR3 writes when CR4.PGE is set); leaves only. */
export const PTE_G = 1 << 8;
/** Bit 12 of a 2 MiB or 1 GiB leaf, PAT: page attribute table index bit. */
export const PTE_PAT_HUGE = 1 << 12;
/**
 * Bit 63, XD (execute-disable, "NX"), as bit 31 of the HIGH half. It is
 * `2 ** 31`, a positive number, so `high & PTE_HIGH_NX` is negative when set:
 * test it with `!== 0`.
 */
export const PTE_HIGH_NX = 2 ** 31;

/** Bytes in one paging-structure entry. */
export const ENTRY_SIZE_BYTES = 8;
/** Entries in one paging structure (a 4 KiB table). */
export const ENTRIES_PER_TABLE = 512;

/** A paging level: 4 = PML4, 3 = PDPT, 2 = PD, 1 = PT. */
export type PagingLevel = 4 | 3 | 2 | 1;

/** The name of each level's table, for messages and the monitor. */
export const PAGING_LEVEL_NAMES: Readonly<Record<PagingLevel, string>> = {
  4: "PML4",
  3: "PDPT",
  2: "PD",
  1: "PT",
};

/** Bytes of address space one entry at `level` covers: 512 GiB, 1 GiB, 2 MiB, 4 KiB. */
export function levelSpanBytes(level: PagingLevel): number {
  return PAGE_SIZE_4K * ENTRIES_PER_TABLE ** (level - 1);
}

/**
 * The index into the table at `level` for `va`: VA[47:39], [38:30], [29:21]
 * or [20:12].
 *
 * @example
 * ```ts
 * import type { VirtAddr } from "./address.ts";
 * import { entryIndex } from "./page_table_entry.ts";
 * entryIndex(0x40201000 as VirtAddr, 2); // 1 (VA[29:21])
 * ```
 */
export function entryIndex(va: VirtAddr, level: PagingLevel): number {
  // `&` reduces modulo 2^32 first, which keeps the low 9 bits of any safe integer.
  return Math.floor(va / levelSpanBytes(level)) & (ENTRIES_PER_TABLE - 1);
}

/**
 * The low 32 bits of the entry at physical address `entryPa` (8-byte aligned).
 * Throws BusError if the entry is not in RAM.
 */
export function readEntryLow(memory: PhysicalMemory, entryPa: PhysAddr): number {
  memory.check(entryPa, ENTRY_SIZE_BYTES);
  return memory.u32[entryPa / 4];
}

/**
 * The high 32 bits of the entry at physical address `entryPa` (8-byte
 * aligned). Throws BusError if the entry is not in RAM.
 */
export function readEntryHigh(memory: PhysicalMemory, entryPa: PhysAddr): number {
  memory.check(entryPa, ENTRY_SIZE_BYTES);
  return memory.u32[entryPa / 4 + 1];
}

/**
 * Writes the entry at `entryPa` (8-byte aligned) from its two halves, in the
 * order that keeps a concurrent walker (another simulated CPU) from using a
 * half-written entry: when the new entry is present the high half goes first
 * and the low half, holding P, last; when it is not present the low half goes
 * first. Plain stores: typed-array stores keep their program order in V8 and
 * x86-64 keeps stores in order. Overwriting an entry a walker may be updating
 * (setting A/D) discards those bits; code that must keep them uses an atomic
 * exchange or compare-exchange (see `kernel/mm/address_space.ts`). Throws
 * BusError outside RAM.
 *
 * @example
 * ```ts
 * import type { PhysAddr } from "./address.ts";
 * import { PhysicalMemory } from "./physical_memory.ts";
 * import { encodeEntryHigh, encodeEntryLow, PTE_P, PTE_RW, writeEntry } from "./page_table_entry.ts";
 *
 * const memory = PhysicalMemory.contiguous(16 * 2 ** 20);
 * const frame = 0x5000 as PhysAddr;
 * writeEntry(memory, 0x1000 as PhysAddr, encodeEntryLow(frame, PTE_P | PTE_RW), encodeEntryHigh(frame));
 * ```
 */
export function writeEntry(
  memory: PhysicalMemory,
  entryPa: PhysAddr,
  low32: number,
  high32: number,
): void {
  memory.check(entryPa, ENTRY_SIZE_BYTES);
  if (entryPa % ENTRY_SIZE_BYTES !== 0) {
    throw new RangeError(`Paging entry address ${hex(entryPa)} is not 8-byte aligned`);
  }
  const u32 = memory.u32;
  const index = entryPa / 4;
  if ((low32 & PTE_P) !== 0) {
    u32[index + 1] = high32;
    u32[index] = low32;
  } else {
    u32[index] = low32;
    u32[index + 1] = high32;
  }
}

/**
 * The low half of an entry pointing at `pa` with `lowFlags` (PTE_* bits of
 * the low half). `pa` must be aligned to what the entry maps (4 KiB for a
 * table or a 4 KiB page, 2 MiB or 1 GiB for a huge page); throws RangeError if
 * it is not 4 KiB aligned or not below 2^52.
 */
export function encodeEntryLow(pa: PhysAddr, lowFlags: number): number {
  checkEntryAddress(pa);
  // `>>> 0` keeps the low 32 bits of a safe integer without a floating-point remainder.
  return ((pa >>> 0) | (lowFlags & 0xfff)) >>> 0;
}

/**
 * The high half of an entry pointing at `pa`: address bits 51:32, plus
 * `highFlags` (0 or {@linkcode PTE_HIGH_NX}). Throws RangeError like
 * {@linkcode encodeEntryLow}.
 */
export function encodeEntryHigh(pa: PhysAddr, highFlags = 0): number {
  checkEntryAddress(pa);
  // The exact product is below 2^20, and `|` truncates it.
  return ((pa * 2 ** -32) | highFlags) >>> 0;
}

function checkEntryAddress(pa: number): void {
  if (!Number.isSafeInteger(pa) || pa < 0 || pa >= 2 ** 52 || pa % PAGE_SIZE_4K !== 0) {
    throw new RangeError(
      `Invalid paging entry address ${hex(pa)}: must be 4 KiB aligned below 2^52`,
    );
  }
}

/** Whether the entry's P bit is set. */
export function isPresent(low32: number): boolean {
  return (low32 & PTE_P) !== 0;
}

/** Whether a present entry at `level` maps a page (a leaf) rather than a table. */
export function isLeaf(low32: number, level: PagingLevel): boolean {
  return level === 1 || ((level === 2 || level === 3) && (low32 & PTE_PS) !== 0);
}

/** The size of the page a leaf at `level` maps: 4 KiB (PT), 2 MiB (PD) or 1 GiB (PDPT). */
export function leafPageSize(level: 1 | 2 | 3): PageSizeBytes {
  return level === 1 ? PAGE_SIZE_4K : level === 2 ? PAGE_SIZE_2M : PAGE_SIZE_1G;
}

/** Whether the entry's XD bit (bit 63) is set. */
export function isNoExecute(high32: number): boolean {
  return (high32 & PTE_HIGH_NX) !== 0;
}

/**
 * The physical address bits 51:12 of an entry: the next table for a non-leaf
 * entry, the frame for a 4 KiB leaf.
 */
export function entryTableAddr(low32: number, high32: number): PhysAddr {
  return ((high32 & 0xfffff) * 2 ** 32 + ((low32 & 0xfffff000) >>> 0)) as PhysAddr;
}

/**
 * The page base a leaf maps: bits 51:12 for 4 KiB, 51:21 for 2 MiB, 51:30
 * for 1 GiB (bit 12 of a huge leaf is PAT, not address).
 */
export function entryFrameAddr(
  low32: number,
  high32: number,
  pageSizeBytes: PageSizeBytes,
): PhysAddr {
  const lowMask = pageSizeBytes === PAGE_SIZE_4K
    ? 0xfffff000
    : pageSizeBytes === PAGE_SIZE_2M
    ? 0xffe00000
    : 0xc0000000;
  return ((high32 & 0xfffff) * 2 ** 32 + ((low32 & lowMask) >>> 0)) as PhysAddr;
}

/**
 * The mask of high-half bits that are reserved (must be 0) in every present
 * entry for a CPU with `maxPhysAddrBits` physical address bits: bits
 * 51:MAXPHYADDR. XD is not included (it is reserved only while EFER.NXE is
 * clear). Throws RangeError unless 32 <= maxPhysAddrBits <= 52.
 */
export function reservedHighMask(maxPhysAddrBits: number): number {
  if (!Number.isInteger(maxPhysAddrBits) || maxPhysAddrBits < 32 || maxPhysAddrBits > 52) {
    throw new RangeError(`Invalid MAXPHYADDR ${maxPhysAddrBits}: expected 32 to 52 bits`);
  }
  return (((1 << (52 - maxPhysAddrBits)) - 1) << (maxPhysAddrBits - 32)) >>> 0;
}

/**
 * The low-half bits that are reserved in a present huge leaf: bits 29:13 of
 * a 1 GiB PDPTE, bits 20:13 of a 2 MiB PDE (the address below the page's
 * alignment; bit 12 is PAT). 0 for other entries.
 */
export function reservedLowMask(low32: number, level: PagingLevel): number {
  if ((low32 & PTE_PS) === 0) return 0;
  if (level === 3) return 0x3fffe000;
  if (level === 2) return 0x001fe000;
  return 0;
}

/**
 * The entry's flags in words, in bit order, naming only what `level` defines:
 * `P RW US PWT PCD A D PS G PAT NX`. A PS bit in a PML4E (reserved) is shown
 * as `PS!`. A not-present entry reads `not present`.
 *
 * @example
 * ```ts
 * import { describeEntry, PTE_A, PTE_D, PTE_HIGH_NX, PTE_P, PTE_RW, PTE_US } from "./page_table_entry.ts";
 *
 * describeEntry(PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D, PTE_HIGH_NX, 1); // "P RW US A D NX"
 * ```
 */
export function describeEntry(low32: number, high32: number, level: PagingLevel): string {
  if (!isPresent(low32)) return "not present";
  const leaf = isLeaf(low32, level);
  const words = ["P"];
  if (low32 & PTE_RW) words.push("RW");
  if (low32 & PTE_US) words.push("US");
  if (low32 & PTE_PWT) words.push("PWT");
  if (low32 & PTE_PCD) words.push("PCD");
  if (low32 & PTE_A) words.push("A");
  if (leaf && low32 & PTE_D) words.push("D");
  if (level === 4 && low32 & PTE_PS) words.push("PS!");
  if ((level === 2 || level === 3) && low32 & PTE_PS) words.push("PS");
  if (leaf && low32 & PTE_G) words.push("G");
  if ((level === 1 && low32 & PTE_PAT) || (level !== 1 && leaf && low32 & PTE_PAT_HUGE)) {
    words.push("PAT");
  }
  if (isNoExecute(high32)) words.push("NX");
  return words.join(" ");
}

/** The entry as 16 hex digits, e.g. `0x8000000000005067`. */
export function formatEntry(low32: number, high32: number): string {
  return "0x" + (high32 >>> 0).toString(16).padStart(8, "0") +
    (low32 >>> 0).toString(16).padStart(8, "0");
}
