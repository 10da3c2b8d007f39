/**
 * A translation lookaside buffer: the per-CPU cache of linear-to-physical
 * translations (Intel SDM vol. 3A, 4.10.2).
 *
 * Three 4-way set-associative arrays, one per page size (4 KiB, 2 MiB, 1 GiB),
 * indexed by the low bits of the page number, all in typed arrays. An entry
 * holds the page number (its tag; a `Float64Array` because 4 KiB page numbers
 * reach 2^36), the translation as an offset to add to the virtual address, the
 * permissions combined over every level of the walk (R/W and U/S ANDed, XD
 * ORed), the global bit and whether the leaf's D bit was known to be set.
 *
 * The TLB is a cache and nothing more: it does not read page tables and is
 * never told when they change. An entry stays until INVLPG, a CR3 or CR4
 * write, a page fault on its page or eviction removes it, so a mapping
 * changed without invalidation is still seen through the stale entry, exactly
 * the bug a missing INVLPG causes on hardware.
 *
 * @module
 */

import {
  formatVirtAddr,
  hex,
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  type PageSizeBytes,
  type PhysAddr,
  type VirtAddr,
} from "./address.ts";
import type { Tracer } from "./trace.ts";

/** Entry flag: R/W was 1 at every level of the walk. Same bit as the entry's R/W. */
export const TLB_WRITABLE = 1 << 1;
/** Entry flag: U/S was 1 at every level (a user-mode page). Same bit as the entry's U/S. */
export const TLB_USER = 1 << 2;
/** Entry flag: the leaf's D bit was set, so a write needs no walk to set it. Same bit as D. */
export const TLB_DIRTY = 1 << 6;
/** Entry flag: the leaf had G set while CR4.PGE was 1; a CR3 write keeps the entry. */
export const TLB_GLOBAL = 1 << 8;
/** Entry flag: XD was set at some level while EFER.NXE was 1; fetches are forbidden. */
export const TLB_NO_EXECUTE = 1 << 9;

/** Ways per set in every size class. */
export const TLB_WAYS = 4;

/** Geometry of a {@linkcode Tlb}: sets per page size, each a power of two. */
export interface TlbOptions {
  /** Sets for 4 KiB translations (default 64, so 256 entries). */
  readonly sets4K?: number;
  /** Sets for 2 MiB translations (default 8, so 32 entries). */
  readonly sets2M?: number;
  /** Sets for 1 GiB translations (default 1, so 4 entries). */
  readonly sets1G?: number;
}

/** Options for {@linkcode Tlb.flushAll}. */
export interface TlbFlushOptions {
  /** Keep entries marked global (a CR3 write with CR4.PGE set). Default false. */
  readonly keepGlobal?: boolean;
}

/** One cached translation, as {@linkcode Tlb.entries} reports it. */
export interface TlbEntry {
  /** The entry's position in the TLB (stable until it is replaced). */
  readonly slot: number;
  /** First virtual address of the page. */
  readonly virtAddr: VirtAddr;
  /** First physical address of the frame. */
  readonly physAddr: PhysAddr;
  /** Size of the page. */
  readonly pageSizeBytes: PageSizeBytes;
  /** R/W was 1 at every level. */
  readonly writable: boolean;
  /** U/S was 1 at every level. */
  readonly user: boolean;
  /** No level had XD set (with EFER.NXE). */
  readonly executable: boolean;
  /** Survives a CR3 write. */
  readonly global: boolean;
  /** The leaf's D bit was known to be set. */
  readonly dirty: boolean;
}

/** Hit, miss and flush counters of a {@linkcode Tlb}. */
export interface TlbStats {
  /** Lookups that found an entry. */
  readonly hits: number;
  /** Lookups that found none. */
  readonly misses: number;
  /** Flush operations (`flushPage` and `flushAll` calls). */
  readonly flushes: number;
}

/** The tag of an empty slot: NaN equals nothing, not even a page number computed from NaN. */
const INVALID_TAG = NaN;

/** A per-CPU TLB with separate 4 KiB, 2 MiB and 1 GiB arrays. */
export class Tlb {
  /** Total entries over all page sizes. */
  readonly capacity: number;
  /** Page number (VA / page size) per slot; NaN marks an empty slot. */
  readonly #tag: Float64Array;
  /** Physical minus virtual page base per slot: PA = VA + offset. */
  readonly #offset: Float64Array;
  /** TLB_* flags per slot. */
  readonly #flags: Uint16Array;
  /** Next way to replace, per set (round robin). */
  readonly #victim: Uint8Array;
  readonly #setMask4K: number;
  readonly #setMask2M: number;
  readonly #setMask1G: number;
  /** First slot of the 2 MiB array. */
  readonly #base2M: number;
  /** First slot of the 1 GiB array. */
  readonly #base1G: number;
  #hits = 0;
  #misses = 0;
  #flushes = 0;
  /** Event tracing (`--trace mmu`); undefined when off. */
  #tracer: Tracer | undefined;

  /**
   * Creates an empty TLB. Throws RangeError if a set count is not a power of
   * two between 1 and 65536.
   */
  constructor(options: TlbOptions = {}) {
    const sets4K = checkSets(options.sets4K ?? 64, "sets4K");
    const sets2M = checkSets(options.sets2M ?? 8, "sets2M");
    const sets1G = checkSets(options.sets1G ?? 1, "sets1G");
    this.#setMask4K = sets4K - 1;
    this.#setMask2M = sets2M - 1;
    this.#setMask1G = sets1G - 1;
    this.#base2M = sets4K * TLB_WAYS;
    this.#base1G = this.#base2M + sets2M * TLB_WAYS;
    this.capacity = this.#base1G + sets1G * TLB_WAYS;
    this.#tag = new Float64Array(this.capacity).fill(INVALID_TAG);
    this.#offset = new Float64Array(this.capacity);
    this.#flags = new Uint16Array(this.capacity);
    this.#victim = new Uint8Array(sets4K + sets2M + sets1G);
  }

  /** Hit, miss and flush counts since creation or {@linkcode resetStats}. */
  get stats(): TlbStats {
    return { hits: this.#hits, misses: this.#misses, flushes: this.#flushes };
  }

  /**
   * Sets (or with `undefined` removes) the tracer that receives `mmu`
   * events: one line per fill and per flush.
   *
   * @param tracer The tracer.
   */
  setTracer(tracer: Tracer | undefined): void {
    this.#tracer = tracer;
  }

  /** Sets every counter to zero. */
  resetStats(): void {
    this.#hits = 0;
    this.#misses = 0;
    this.#flushes = 0;
  }

  /**
   * Looks up the translation for `va`, trying 4 KiB, then 2 MiB, then 1 GiB
   * entries. Returns the slot (for {@linkcode flagsAt} and
   * {@linkcode physAddrAt}) or -1 on a miss. Counts a hit or a miss. Does not
   * allocate.
   */
  lookup(va: VirtAddr): number {
    const page4K = Math.floor(va / PAGE_SIZE_4K);
    let slot = this.#find(page4K, this.#firstSlot(page4K, PAGE_SIZE_4K));
    if (slot < 0) {
      const page2M = Math.floor(va / PAGE_SIZE_2M);
      slot = this.#find(page2M, this.#firstSlot(page2M, PAGE_SIZE_2M));
      if (slot < 0) {
        const page1G = Math.floor(va / PAGE_SIZE_1G);
        slot = this.#find(page1G, this.#firstSlot(page1G, PAGE_SIZE_1G));
        if (slot < 0) {
          this.#misses++;
          return -1;
        }
      }
    }
    this.#hits++;
    return slot;
  }

  /** The TLB_* flags of the entry in `slot` (a slot {@linkcode lookup} returned). */
  flagsAt(slot: number): number {
    return this.#flags[slot];
  }

  /** The physical address `va` translates to through the entry in `slot`. */
  physAddrAt(slot: number, va: VirtAddr): PhysAddr {
    return (va + this.#offset[slot]) as PhysAddr;
  }

  /**
   * Caches the translation of the page of `pageSizeBytes` containing `va` to
   * the frame at `frameBase`, with TLB_* `flags`. Replaces an entry for the
   * same page if there is one, else an empty way, else the set's next victim.
   * Returns the slot. Does not allocate.
   */
  insert(va: VirtAddr, pageSizeBytes: PageSizeBytes, frameBase: PhysAddr, flags: number): number {
    const page = Math.floor(va / pageSizeBytes);
    const first = this.#firstSlot(page, pageSizeBytes);
    const tag = this.#tag;
    let slot = this.#find(page, first);
    if (slot < 0) {
      for (let way = first; way < first + TLB_WAYS; way++) {
        if (Number.isNaN(tag[way])) {
          slot = way;
          break;
        }
      }
    }
    if (slot < 0) {
      // Sets of all three classes are consecutive, so first / TLB_WAYS numbers the set.
      const set = first / TLB_WAYS;
      const way = this.#victim[set];
      this.#victim[set] = (way + 1) % TLB_WAYS;
      slot = first + way;
    }
    tag[slot] = page;
    this.#offset[slot] = frameBase - page * pageSizeBytes;
    this.#flags[slot] = flags;
    const tracer = this.#tracer;
    if (tracer !== undefined && tracer.mmu) {
      tracer.emit(
        "mmu",
        `tlb fill ${formatVirtAddr((page * pageSizeBytes) as VirtAddr)} -> ${hex(frameBase)} (${
          describeTlbEntry(pageSizeBytes, flags)
        })`,
      );
    }
    return slot;
  }

  /**
   * INVLPG: removes every entry (of any page size, global or not) whose page
   * contains `va`. Returns how many were removed.
   */
  flushPage(va: VirtAddr): number {
    this.#flushes++;
    const page4K = Math.floor(va / PAGE_SIZE_4K);
    const page2M = Math.floor(va / PAGE_SIZE_2M);
    const page1G = Math.floor(va / PAGE_SIZE_1G);
    const removed = this.#remove(page4K, this.#firstSlot(page4K, PAGE_SIZE_4K)) +
      this.#remove(page2M, this.#firstSlot(page2M, PAGE_SIZE_2M)) +
      this.#remove(page1G, this.#firstSlot(page1G, PAGE_SIZE_1G));
    const tracer = this.#tracer;
    if (tracer !== undefined && tracer.mmu) {
      tracer.emit("mmu", `tlb flush page ${formatVirtAddr(va)} (${removed} removed)`);
    }
    return removed;
  }

  /**
   * Removes every entry, or with `keepGlobal` every entry not marked global
   * (a CR3 write with CR4.PGE set). Returns how many were removed.
   */
  flushAll(options: TlbFlushOptions = {}): number {
    this.#flushes++;
    const keepGlobal = options.keepGlobal ?? false;
    const tag = this.#tag;
    let removed = 0;
    for (let slot = 0; slot < this.capacity; slot++) {
      if (Number.isNaN(tag[slot])) continue;
      if (keepGlobal && (this.#flags[slot] & TLB_GLOBAL) !== 0) continue;
      tag[slot] = INVALID_TAG;
      removed++;
    }
    const tracer = this.#tracer;
    if (tracer !== undefined && tracer.mmu) {
      tracer.emit(
        "mmu",
        `tlb flush ${keepGlobal ? "non-global" : "all"} (${removed} removed)`,
      );
    }
    return removed;
  }

  /** Number of valid entries. */
  get size(): number {
    let count = 0;
    for (let slot = 0; slot < this.capacity; slot++) {
      if (!Number.isNaN(this.#tag[slot])) count++;
    }
    return count;
  }

  /** Every valid entry, sorted by virtual address then page size (for inspection). */
  entries(): TlbEntry[] {
    const result: TlbEntry[] = [];
    for (let slot = 0; slot < this.capacity; slot++) {
      const page = this.#tag[slot];
      if (Number.isNaN(page)) continue;
      const pageSizeBytes: PageSizeBytes = slot < this.#base2M
        ? PAGE_SIZE_4K
        : slot < this.#base1G
        ? PAGE_SIZE_2M
        : PAGE_SIZE_1G;
      const virtAddr = page * pageSizeBytes;
      const flags = this.#flags[slot];
      result.push({
        slot,
        virtAddr: virtAddr as VirtAddr,
        physAddr: (virtAddr + this.#offset[slot]) as PhysAddr,
        pageSizeBytes,
        writable: (flags & TLB_WRITABLE) !== 0,
        user: (flags & TLB_USER) !== 0,
        executable: (flags & TLB_NO_EXECUTE) === 0,
        global: (flags & TLB_GLOBAL) !== 0,
        dirty: (flags & TLB_DIRTY) !== 0,
      });
    }
    return result.sort((a, b) => a.virtAddr - b.virtAddr || a.pageSizeBytes - b.pageSizeBytes);
  }

  /** The first slot of the set that holds `page` of `pageSizeBytes`. */
  #firstSlot(page: number, pageSizeBytes: PageSizeBytes): number {
    // `&` reduces modulo 2^32 first, which keeps the low bits of any safe integer.
    if (pageSizeBytes === PAGE_SIZE_4K) return (page & this.#setMask4K) * TLB_WAYS;
    if (pageSizeBytes === PAGE_SIZE_2M) return this.#base2M + (page & this.#setMask2M) * TLB_WAYS;
    return this.#base1G + (page & this.#setMask1G) * TLB_WAYS;
  }

  /** The slot in the set starting at `first` whose tag is `page`, or -1. */
  #find(page: number, first: number): number {
    const tag = this.#tag;
    for (let slot = first; slot < first + TLB_WAYS; slot++) {
      if (tag[slot] === page) return slot;
    }
    return -1;
  }

  /** Empties the ways of the set starting at `first` tagged `page`; returns how many. */
  #remove(page: number, first: number): number {
    const tag = this.#tag;
    let removed = 0;
    for (let slot = first; slot < first + TLB_WAYS; slot++) {
      if (tag[slot] === page) {
        tag[slot] = INVALID_TAG;
        removed++;
      }
    }
    return removed;
  }
}

/**
 * A TLB entry's page size and TLB_* flags in words for trace lines, e.g.
 * `1 GiB, W G NX`: W writable (else RO), U user, G global, NX no-execute,
 * D dirty known.
 */
export function describeTlbEntry(pageSizeBytes: PageSizeBytes, flags: number): string {
  const size = pageSizeBytes === PAGE_SIZE_4K
    ? "4 KiB"
    : pageSizeBytes === PAGE_SIZE_2M
    ? "2 MiB"
    : "1 GiB";
  let words = (flags & TLB_WRITABLE) !== 0 ? "W" : "RO";
  if ((flags & TLB_USER) !== 0) words += " U";
  if ((flags & TLB_GLOBAL) !== 0) words += " G";
  if ((flags & TLB_NO_EXECUTE) !== 0) words += " NX";
  if ((flags & TLB_DIRTY) !== 0) words += " D";
  return `${size}, ${words}`;
}

function checkSets(sets: number, name: string): number {
  if (!Number.isInteger(sets) || sets < 1 || sets > 65536 || (sets & (sets - 1)) !== 0) {
    throw new RangeError(`Invalid TLB ${name} ${sets}: expected a power of two from 1 to 65536`);
  }
  return sets;
}
