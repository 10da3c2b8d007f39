/**
 * A translation lookaside buffer: the per-CPU cache of linear-to-physical
 * translations (Intel SDM vol. 3A, 4.10.2).
 *
 * Three 4-way set-associative arrays, one per page size (4 KiB, 2 MiB, 1 GiB),
 * indexed by the low bits of the page number, all in typed arrays. An entry
 * holds the page's first virtual address (its tag, in a `Float64Array`
 * because addresses reach 2^48), the translation as an offset to add to the
 * virtual address, the permissions combined over every level of the walk (R/W
 * and U/S ANDed, XD ORed), the global bit, whether the leaf's D bit was known
 * to be set, and those permissions packed as a rights index (see
 * `hal/access_rights.ts`) for the hit path.
 *
 * A hit ({@linkcode Tlb.hit4K}) is a page base, a set index, up to four
 * tag compares and one test of the rights index against the mask the CPU
 * installed for the access ({@linkcode Tlb.setHitMasks}): integer operations
 * on two typed arrays, small enough for V8 to inline into the MMU's translate
 * and its callers. A 4 KiB entry also keeps the RAM word of its frame when
 * the MMU may read and write the frame directly, so that a 32-bit access on
 * a hit is one more load ({@linkcode Tlb.ramWordAt}).
 *
 * The TLB is a cache and nothing more: it does not read page tables and is
 * never told when they change. An entry stays until INVLPG, a CR3 or CR4
 * write, a page fault on its page or eviction removes it, so a mapping
 * changed without invalidation is still seen through the stale entry, exactly
 * the bug a missing INVLPG causes on hardware.
 *
 * @module
 */

import * as address from "./address.ts";
import {
  formatVirtAddr,
  hex,
  type PageSizeBytes,
  type PhysAddr,
  type VirtAddr,
} from "./address.ts";
import {
  RIGHTS_DIRTY,
  RIGHTS_INDEX_COUNT,
  RIGHTS_NO_EXECUTE,
  RIGHTS_USER,
  RIGHTS_WRITABLE,
} from "./access_rights.ts";
import type { MemoryAccess } from "./mmu.ts";
import type { Tracer } from "./trace.ts";

// Local copies: V8 folds a module's own constants into optimized code but reads
// imported bindings from their module cells at every use.
const { PAGE_SIZE_1G, PAGE_SIZE_2M, PAGE_SIZE_4K } = address;

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

// The hit path returns these module-private copies: V8 folds a module's own
// non-exported constants into optimized code, but reads an exported binding
// from its module cell (a tagged value) at every use.
const NO_4K_ENTRY = -1;
const DENIED_4K = -2;
/** {@linkcode Tlb.hit4K} result: no 4 KiB entry holds the page. */
export const TLB_NO_4K_ENTRY: number = NO_4K_ENTRY;
/** {@linkcode Tlb.hit4K} result: a 4 KiB entry holds the page but cannot serve the access. */
export const TLB_4K_DENIED: number = DENIED_4K;

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

/** The tag of an empty slot: NaN equals nothing, not even itself. */
const INVALID_TAG = NaN;
const PAGE_OFFSET_4K = PAGE_SIZE_4K - 1;
const PAGE_OFFSET_2M = PAGE_SIZE_2M - 1;
const PAGE_OFFSET_1G = PAGE_SIZE_1G - 1;
/** log2 of 4 KiB: `va >>> PAGE_SHIFT_4K` numbers 4 KiB pages modulo 2^20. */
const PAGE_SHIFT_4K = 12;
/** log2 of TLB_WAYS: a set's first slot is its number shifted left by this. */
const WAYS_SHIFT = 2;
/** The largest set count of any size class (4 KiB set bits come from va bits 12 to 27). */
const MAX_SETS = 2 ** 16;
const INVERSE_2M = 1 / PAGE_SIZE_2M;
const INVERSE_1G = 1 / PAGE_SIZE_1G;
// From TLB_* bits to rights-index bits (hal/access_rights.ts), as literals
// so that V8 folds them (it reads imported bindings at every use): TLB_WRITABLE
// (bit 1) and TLB_USER (bit 2) to RIGHTS_WRITABLE (bit 0) and RIGHTS_USER (bit
// 1), TLB_NO_EXECUTE (bit 9) to RIGHTS_NO_EXECUTE (bit 2), TLB_DIRTY (bit 6) to
// RIGHTS_DIRTY (bit 3). tlb_test.ts checks them against the named constants.
const WRITABLE_USER_SHIFT = 1;
const WRITABLE_USER_RIGHTS = 3;
const NO_EXECUTE_SHIFT = 7;
const NO_EXECUTE_RIGHT = 4;
const DIRTY_SHIFT = 3;
const DIRTY_RIGHT = 8;
/** The bits of an entry's packed flags that hold its rights index. */
const RIGHTS_MASK = RIGHTS_INDEX_COUNT - 1;
/** The bit of an entry's packed flags, above the rights index, that marks a global entry. */
const PACKED_GLOBAL = RIGHTS_INDEX_COUNT;
/**
 * The hit, miss and flush counters are the last three numbers of a TLB's
 * #entries, at these distances from its end.
 */
const COUNT_HITS = 3;
const COUNT_MISSES = 2;
const COUNT_FLUSHES = 1;
const COUNT_SLOTS = 3;

/**
 * The rights index ({@linkcode RIGHTS_WRITABLE} and friends) of a
 * translation with TLB_* `flags`.
 */
export function tlbRightsIndex(flags: number): number {
  // Three shifts, no branches: the walk and every TLB fill compute it.
  return ((flags >>> WRITABLE_USER_SHIFT) & WRITABLE_USER_RIGHTS) |
    ((flags >>> NO_EXECUTE_SHIFT) & NO_EXECUTE_RIGHT) | ((flags >>> DIRTY_SHIFT) & DIRTY_RIGHT);
}

/** A per-CPU TLB with separate 4 KiB, 2 MiB and 1 GiB arrays. */
export class Tlb {
  /** Total entries over all page sizes. */
  readonly capacity: number;
  /**
   * Two numbers per slot, side by side so a hit reads one cache line: the
   * tag, the page's first virtual address (NaN marks an empty slot; an
   * address that is not a 48-bit integer never matches a tag, which is a
   * multiple of the page size), and the translation, the physical minus the
   * virtual page base. Then the hit, miss and flush counters (COUNT_*):
   * counting a hit in the array the hit path has at hand is one addition,
   * where a number field would need an overflow check and retagging.
   */
  readonly #entries: Float64Array;
  /**
   * Two int32s per slot, at the same index as the slot's pair in #entries:
   * the entry's flags packed as its rights index (hal/access_rights.ts) plus
   * a global bit, which the hit path tests against the access's mask; and
   * the RAM word (physical address / 4) of a 4 KiB frame the MMU reads and
   * writes directly, or -1 (see {@linkcode Tlb.insert}).
   */
  readonly #words: Int32Array;
  /** Next way to replace, per set (round robin). */
  readonly #victim: Uint8Array;
  readonly #setMask4K: number;
  readonly #setMask2M: number;
  readonly #setMask1G: number;
  /** First slot of the 2 MiB array. */
  readonly #base2M: number;
  /** First slot of the 1 GiB array. */
  readonly #base1G: number;
  // The rights indices that may hit for each access kind (AccessRights.hit),
  // installed by the CPU whenever its protection mode changes.
  #readMask = 0;
  #writeMask = 0;
  #fetchMask = 0;
  /** Valid 2 MiB and 1 GiB entries: a lookup skips a size class that has none. */
  #count2M = 0;
  #count1G = 0;
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
    this.#entries = new Float64Array(this.capacity * 2 + COUNT_SLOTS);
    for (let slot = 0; slot < this.capacity; slot++) this.#entries[2 * slot] = INVALID_TAG;
    this.#words = new Int32Array(this.capacity * 2);
    this.#victim = new Uint8Array(sets4K + sets2M + sets1G);
  }

  /** Hit, miss and flush counts since creation or {@linkcode resetStats}. */
  get stats(): TlbStats {
    const entries = this.#entries;
    const end = entries.length;
    return {
      hits: entries[end - COUNT_HITS],
      misses: entries[end - COUNT_MISSES],
      flushes: entries[end - COUNT_FLUSHES],
    };
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
    this.#entries.fill(0, this.capacity * 2);
  }

  /**
   * Installs the rights indices that may hit for each kind of access: the
   * CPU's `AccessRights.hit` masks, which it passes in whenever CR0, CR4,
   * EFER, the CPL or EFLAGS.AC changes. A TLB starts with none (every
   * {@linkcode hit4K} misses).
   */
  setHitMasks(readMask: number, writeMask: number, fetchMask: number): void {
    this.#readMask = readMask;
    this.#writeMask = writeMask;
    this.#fetchMask = fetchMask;
  }

  /**
   * The hit path of a translation: the slot of the 4 KiB entry for `va` if
   * its rights allow `access` in the current protection mode (and, for a
   * write, its D bit is known set), counting a hit; the caller adds the
   * translation with {@linkcode physAddrAt}. Otherwise it counts nothing and
   * returns {@linkcode TLB_NO_4K_ENTRY} (the caller then looks further with
   * {@linkcode lookupLarge}) or {@linkcode TLB_4K_DENIED} (with
   * {@linkcode lookup}). A page base, a set index, up to four tag compares and
   * one mask test; it does not allocate. It returns a slot rather than an
   * address so that its results are all small integers: V8 then keeps the
   * caller's address arithmetic unboxed.
   */
  hit4K(va: VirtAddr, access: MemoryAccess): number {
    const entries = this.#entries;
    // Loaded on every path: V8 then has it at hand for the caller's ramWordAt().
    const words = this.#words;
    // `&` and `>>>` reduce a safe integer modulo 2^32 first, which keeps the bits used here.
    const pageBase = va - (va & PAGE_OFFSET_4K);
    let index = ((va >>> PAGE_SHIFT_4K) & this.#setMask4K) << (WAYS_SHIFT + 1);
    if (
      entries[index] !== pageBase && entries[index += 2] !== pageBase &&
      entries[index += 2] !== pageBase && entries[index += 2] !== pageBase
    ) {
      return NO_4K_ENTRY;
    }
    const rights = words[index] & RIGHTS_MASK;
    const mask = access === "read"
      ? this.#readMask
      : access === "write"
      ? this.#writeMask
      : this.#fetchMask;
    if (((mask >>> rights) & 1) === 0) return DENIED_4K;
    entries[entries.length - COUNT_HITS]++;
    return index >>> 1;
  }

  /**
   * Looks up the translation for `va`, trying 4 KiB, then 2 MiB, then 1 GiB
   * entries. Returns the slot (for {@linkcode flagsAt} and
   * {@linkcode physAddrAt}) or -1 on a miss. Counts a hit or a miss. Does not
   * allocate.
   */
  lookup(va: VirtAddr): number {
    const base4K = va - (va & PAGE_OFFSET_4K);
    const slot = this.#find(base4K, ((va >>> PAGE_SHIFT_4K) & this.#setMask4K) << WAYS_SHIFT);
    return this.#counted(slot >= 0 ? slot : this.#findLarge(va));
  }

  /**
   * The rights index (hal/access_rights.ts) of the entry in `slot` (a slot
   * {@linkcode lookup} returned).
   */
  rightsAt(slot: number): number {
    return this.#words[2 * slot] & RIGHTS_MASK;
  }

  /**
   * Looks up `va` in the 2 MiB and 1 GiB arrays only, for a translation whose
   * {@linkcode hit4K} found no 4 KiB entry. Returns the slot or -1, and
   * counts a hit or a miss, like {@linkcode lookup}.
   */
  lookupLarge(va: VirtAddr): number {
    return this.#counted(this.#findLarge(va));
  }

  /** The slot of the 2 MiB or 1 GiB entry holding `va`, or -1; skips a class with no entry. */
  #findLarge(va: VirtAddr): number {
    let slot = -1;
    if (this.#count2M !== 0) {
      const base = va - (va & PAGE_OFFSET_2M);
      slot = this.#find(base, this.#firstSlot2M(base));
    }
    if (slot < 0 && this.#count1G !== 0) {
      const base = va - (va & PAGE_OFFSET_1G);
      slot = this.#find(base, this.#firstSlot1G(base));
    }
    return slot;
  }

  /** Counts a lookup that found `slot` (-1: a miss). Returns `slot`. */
  #counted(slot: number): number {
    this.#count(slot < 0 ? COUNT_MISSES : COUNT_HITS);
    return slot;
  }

  /**
   * The RAM word the entry in `slot` was inserted with (see
   * {@linkcode insert}): the index of its 4 KiB frame's first 32-bit word in
   * the MMU's view of RAM, or -1.
   */
  ramWordAt(slot: number): number {
    return this.#words[2 * slot + 1];
  }

  /** The TLB_* flags of the entry in `slot` (a slot {@linkcode lookup} returned). */
  flagsAt(slot: number): number {
    return unpackFlags(this.#words[2 * slot]);
  }

  /** The physical address `va` translates to through the entry in `slot`. */
  physAddrAt(slot: number, va: VirtAddr): PhysAddr {
    return (va + this.#entries[2 * slot + 1]) as PhysAddr;
  }

  /**
   * Caches the translation of the page of `pageSizeBytes` containing `va` to
   * the frame at `frameBase`, with TLB_* `flags`. Replaces an entry for the
   * same page if there is one, else an empty way, else the set's next victim.
   * Returns the slot. Does not allocate.
   *
   * `ramWord` is for the MMU's direct RAM path: the index of the frame's
   * first 32-bit word in the MMU's view of RAM when the MMU may read and
   * write the whole 4 KiB frame there directly, else -1 (the default; kept
   * only for 4 KiB pages). {@linkcode ramWordAt} returns it.
   */
  insert(
    va: VirtAddr,
    pageSizeBytes: PageSizeBytes,
    frameBase: PhysAddr,
    flags: number,
    ramWord = -1,
  ): number {
    const pageBase = va - (va & (pageSizeBytes - 1));
    const first = this.#firstSlot(pageBase, pageSizeBytes);
    const entries = this.#entries;
    // The way holding this page, else a free one (straight-line code: V8
    // would keep a loop's counters tagged and check for interrupts in it).
    const i = first << 1;
    const slot = entries[i] === pageBase
      ? first
      : entries[i + 2] === pageBase
      ? first + 1
      : entries[i + 4] === pageBase
      ? first + 2
      : entries[i + 6] === pageBase
      ? first + 3
      : this.#freeWay(first);
    entries[2 * slot] = pageBase;
    entries[2 * slot + 1] = frameBase - pageBase;
    const words = this.#words;
    words[2 * slot] = tlbRightsIndex(flags) | ((flags & TLB_GLOBAL) !== 0 ? PACKED_GLOBAL : 0);
    words[2 * slot + 1] = pageSizeBytes === PAGE_SIZE_4K ? ramWord : -1;
    if (this.#tracer !== undefined) this.#traceFill(slot, pageSizeBytes);
    return slot;
  }

  /** Emits the trace line of an INVLPG (kept out of flushPage() so that V8 inlines flushPage()). */
  #traceFlushPage(va: VirtAddr, removed: number): void {
    const tracer = this.#tracer;
    if (tracer !== undefined && tracer.mmu) {
      tracer.emit("mmu", `tlb flush page ${formatVirtAddr(va)} (${removed} removed)`);
    }
  }

  /** Emits the trace line of a fill (kept out of insert() so that V8 inlines insert()). */
  #traceFill(slot: number, pageSizeBytes: PageSizeBytes): void {
    const tracer = this.#tracer;
    if (tracer === undefined || !tracer.mmu) return;
    const pageBase = this.#entries[2 * slot];
    tracer.emit(
      "mmu",
      `tlb fill ${formatVirtAddr(pageBase as VirtAddr)} -> ${
        hex(this.physAddrAt(slot, pageBase as VirtAddr))
      } (${describeTlbEntry(pageSizeBytes, this.flagsAt(slot))})`,
    );
  }

  /**
   * INVLPG: removes every entry (of any page size, global or not) whose page
   * contains `va`. Returns how many were removed.
   */
  flushPage(va: VirtAddr): number {
    const entries = this.#entries;
    entries[entries.length - COUNT_FLUSHES]++;
    const base4K = va - (va & PAGE_OFFSET_4K);
    let removed = this.#remove(base4K, ((va >>> PAGE_SHIFT_4K) & this.#setMask4K) << WAYS_SHIFT);
    // Size classes with no entry have nothing to remove.
    if ((this.#count2M | this.#count1G) !== 0) removed += this.#removeLarge(va);
    if (this.#tracer !== undefined) this.#traceFlushPage(va, removed);
    return removed;
  }

  /** flushPage() for the 2 MiB and 1 GiB entries: removes those holding `va`; returns how many. */
  #removeLarge(va: VirtAddr): number {
    let removed = 0;
    if (this.#count2M !== 0) {
      const base2M = va - (va & PAGE_OFFSET_2M);
      removed += this.#remove(base2M, this.#firstSlot2M(base2M));
    }
    if (this.#count1G !== 0) {
      const base1G = va - (va & PAGE_OFFSET_1G);
      removed += this.#remove(base1G, this.#firstSlot1G(base1G));
    }
    return removed;
  }

  /**
   * Removes every entry, or with `keepGlobal` every entry not marked global
   * (a CR3 write with CR4.PGE set). Returns how many were removed.
   */
  flushAll(options: TlbFlushOptions = {}): number {
    this.#count(COUNT_FLUSHES);
    const keepGlobal = options.keepGlobal ?? false;
    const entries = this.#entries;
    let removed = 0;
    for (let slot = 0; slot < this.capacity; slot++) {
      if (Number.isNaN(entries[2 * slot])) continue;
      if (keepGlobal && (this.#words[2 * slot] & PACKED_GLOBAL) !== 0) continue;
      entries[2 * slot] = INVALID_TAG;
      this.#countFilled(slot, -1);
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
      if (!Number.isNaN(this.#entries[2 * slot])) count++;
    }
    return count;
  }

  /** Every valid entry, sorted by virtual address then page size (for inspection). */
  entries(): TlbEntry[] {
    const result: TlbEntry[] = [];
    for (let slot = 0; slot < this.capacity; slot++) {
      const virtAddr = this.#entries[2 * slot];
      if (Number.isNaN(virtAddr)) continue;
      const pageSizeBytes: PageSizeBytes = slot < this.#base2M
        ? PAGE_SIZE_4K
        : slot < this.#base1G
        ? PAGE_SIZE_2M
        : PAGE_SIZE_1G;
      const flags = this.flagsAt(slot);
      result.push({
        slot,
        virtAddr: virtAddr as VirtAddr,
        physAddr: this.physAddrAt(slot, virtAddr as VirtAddr),
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

  /**
   * The slot a new entry takes in the set starting at `first`: its first
   * empty way (a NaN tag; counted in its size class), else the set's next
   * victim (round robin).
   */
  #freeWay(first: number): number {
    const entries = this.#entries;
    const i = first << 1;
    const empty = entries[i] !== entries[i]
      ? first
      : entries[i + 2] !== entries[i + 2]
      ? first + 1
      : entries[i + 4] !== entries[i + 4]
      ? first + 2
      : entries[i + 6] !== entries[i + 6]
      ? first + 3
      : -1;
    if (empty >= 0) {
      this.#countFilled(empty, 1);
      return empty;
    }
    // Sets of all three classes are consecutive, so first / TLB_WAYS numbers the set.
    const set = first >>> WAYS_SHIFT;
    const way = this.#victim[set];
    this.#victim[set] = (way + 1) & (TLB_WAYS - 1);
    return first + way;
  }

  /** Adds one to the counter `which` (COUNT_*). */
  #count(which: number): void {
    const entries = this.#entries;
    entries[entries.length - which]++;
  }

  /** Adds `delta` to the valid-entry count of the size class `slot` belongs to. */
  #countFilled(slot: number, delta: number): void {
    if (slot >= this.#base1G) this.#count1G += delta;
    else if (slot >= this.#base2M) this.#count2M += delta;
  }

  /** The first slot of the set that holds the page of `pageSizeBytes` starting at `pageBase`. */
  #firstSlot(pageBase: number, pageSizeBytes: PageSizeBytes): number {
    // `&` reduces modulo 2^32 first, which keeps the low bits of any safe integer.
    if (pageSizeBytes === PAGE_SIZE_4K) {
      return ((pageBase >>> PAGE_SHIFT_4K) & this.#setMask4K) << WAYS_SHIFT;
    }
    return pageSizeBytes === PAGE_SIZE_2M
      ? this.#firstSlot2M(pageBase)
      : this.#firstSlot1G(pageBase);
  }

  /** #firstSlot for a 2 MiB page. */
  #firstSlot2M(pageBase: number): number {
    return this.#base2M + (((pageBase * INVERSE_2M) & this.#setMask2M) << WAYS_SHIFT);
  }

  /** #firstSlot for a 1 GiB page. */
  #firstSlot1G(pageBase: number): number {
    return this.#base1G + (((pageBase * INVERSE_1G) & this.#setMask1G) << WAYS_SHIFT);
  }

  /** The slot in the set starting at `first` whose tag is `pageBase`, or -1. */
  #find(pageBase: number, first: number): number {
    const entries = this.#entries;
    for (let slot = first; slot < first + TLB_WAYS; slot++) {
      if (entries[2 * slot] === pageBase) return slot;
    }
    return -1;
  }

  /** Empties the way of the set starting at `first` tagged `pageBase`; returns how many (0 or 1). */
  #remove(pageBase: number, first: number): number {
    const entries = this.#entries;
    // insert() keeps at most one way per page. Straight-line code, as in insert().
    const i = first << 1;
    const slot = entries[i] === pageBase
      ? first
      : entries[i + 2] === pageBase
      ? first + 1
      : entries[i + 4] === pageBase
      ? first + 2
      : entries[i + 6] === pageBase
      ? first + 3
      : -1;
    if (slot < 0) return 0;
    entries[2 * slot] = INVALID_TAG;
    this.#countFilled(slot, -1);
    return 1;
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

/** The TLB_* flags of an entry's packed flags (its rights index and global bit). */
function unpackFlags(packed: number): number {
  const rights = packed & RIGHTS_MASK;
  return ((rights & RIGHTS_WRITABLE) !== 0 ? TLB_WRITABLE : 0) |
    ((rights & RIGHTS_USER) !== 0 ? TLB_USER : 0) |
    ((rights & RIGHTS_NO_EXECUTE) !== 0 ? TLB_NO_EXECUTE : 0) |
    ((rights & RIGHTS_DIRTY) !== 0 ? TLB_DIRTY : 0) |
    ((packed & PACKED_GLOBAL) !== 0 ? TLB_GLOBAL : 0);
}

function checkSets(sets: number, name: string): number {
  if (!Number.isInteger(sets) || sets < 1 || sets > MAX_SETS || (sets & (sets - 1)) !== 0) {
    throw new RangeError(`Invalid TLB ${name} ${sets}: expected a power of two from 1 to 65536`);
  }
  return sets;
}
