/**
 * A virtual address space: x86-64 4-level page tables in RAM, changed the way
 * the rust-osdev `x86_64` crate's `Mapper` changes them (map, unmap, translate,
 * update flags), plus range operations that walk the tables once for a whole
 * range, ownership of mapped frames, freeing of page tables that become empty,
 * and TLB invalidation.
 *
 * ## What lives where
 *
 * Every paging structure is a 4 KiB frame in RAM in the exact format the MMU
 * walks, obtained as a {@linkcode Page} from the frame allocator (count 1) and
 * stored in its parent entry as a raw address. The JavaScript object is a
 * handle: it holds the PML4's page handle and the machine it edits; all other
 * state is in the entries. The kernel edits tables by physical address through
 * `memory`, which stands for its accesses through the direct map (a
 * direct-map address is a fixed offset from the physical one).
 *
 * ## Concurrency
 *
 * Changes to one address space do not race each other (an SMP kernel takes
 * the address space's lock, as every kernel does), but the MMUs of other CPUs
 * (Workers over the same RAM) may walk the tables at any time, and a walk
 * writes too: it sets A and D in the low half of the entries it uses, with a
 * compare-exchange against the value it read (`hal/mmu.ts`). Atomic
 * operations are used exactly where such a concurrent writer can exist:
 *
 * - Making a not-present entry present has no concurrent writer (walkers
 *   never write a not-present entry): two plain stores, the high half first
 *   and the low half (P) last, so a walker that sees P sees the new address.
 * - Changing a present leaf races with walkers setting A/D: the low half is
 *   replaced with `Atomics.compareExchange` (keeping A/D set meanwhile) or
 *   `Atomics.exchange` (which returns the final A/D), so neither side's
 *   write is lost.
 * - Clearing a present leaf (unmap) races with them too, but the A/D bits of
 *   a mapping being removed are read by nothing: a plain store of 0 to the
 *   low half, which a walker's compare-exchange against the old value can no
 *   longer undo (the argument is at `#clearLeaf`).
 * - Setting U/S in a present table link (a user page goes below it) races
 *   with walkers setting A in it: `Atomics.or`, which loses neither.
 * - Clearing a table link also races with walkers setting A in it, but that
 *   bit means nothing once the link is gone: a plain store, which a walker's
 *   compare-exchange against the old value can no longer undo.
 * - The high half of a table link holds the live-entry count (below); no
 *   walker writes a high half, so plain read-modify-writes are enough.
 *
 * The processor ignores some entry bits (Intel SDM vol. 3A, tables 4-15 to
 * 4-20); the kernel keeps its own facts there:
 *
 * | bits | in | meaning |
 * |---|---|---|
 * | 9 | leaf | OWNED: the entry holds one reference to its frame (a `Page` given to {@linkcode AddressSpace.mapPage}); unmap and dispose drop it |
 * | 10 | leaf | COW: copy-on-write; R/W is clear and a write fault gives the writer a copy (see `page_fault_handler.ts`) |
 * | 9 | non-leaf | FOREIGN: the table is not this address space's (the recursive PML4 entry); never walked into by map or unmap, never freed |
 * | 61:52 | non-leaf | the number of present entries (0 to 512) in the table the entry points to |
 *
 * The live-entry count sits in the parent entry because a paging structure
 * has no spare room (all 512 entries are architectural), a side array would
 * be one more allocation per table, and scanning 512 entries at every unmap
 * costs more than the whole map + unmap budget. Bits 62:52 of a non-leaf entry
 * are ignored by the processor; ten of them hold 0 to 512. The PML4 has no
 * parent and is freed only with the address space, so it has no count. (Bits
 * 62:59 of a leaf are the protection key when CR4.PKE is set; through the
 * recursive mapping a table entry reads as a leaf, so a kernel that turns on
 * protection keys must move the count to bits 58:52 plus 11:10.)
 *
 * ## Ownership
 *
 * A mapping made with {@linkcode AddressSpace.mapPage} takes the page
 * handle's reference: the entry is marked OWNED and the reference is dropped
 * (freeing the frame if it was the last) when the page is unmapped or the
 * address space is disposed. Mappings of raw physical addresses
 * ({@linkcode AddressSpace.map}, {@linkcode AddressSpace.mapRange}: the direct
 * map, MMIO, the kernel image) own nothing. Page-table frames always belong
 * to the address space.
 *
 * ## TLB
 *
 * A change to a present leaf (unmap, protect, remap) invalidates its page
 * with INVLPG when the address space is active (its PML4 is in CR3) or the
 * leaf was global (a global translation survives CR3 switches). A new mapping
 * over a not-present entry needs no invalidation: the processor never caches
 * a not-present entry. Range operations over more than
 * {@linkcode FLUSH_CEILING_PAGES} pages flush the whole TLB once instead (a
 * CR3 reload, and a CR4.PGE toggle when a global leaf changed), as Linux's
 * `tlb_single_page_flush_ceiling`.
 *
 * On a machine of several CPUs, other CPUs may cache the space's
 * translations too: an address space created with a
 * {@linkcode TlbShootdownHook} hands every invalidation to it instead (the
 * kernel's TLB shootdown: this CPU and every other that may cache the page),
 * page by page and before the frame or table is freed, and tells it when a
 * table is unlinked, so that no CPU can still be walking into the table when
 * it is freed.
 *
 * @module
 */

import * as hal from "../../hal/mod.ts";
import {
  type CpuContext,
  formatVirtAddr,
  hex,
  type PageSizeBytes,
  type PhysAddr,
  type VirtAddr,
} from "../../hal/mod.ts";
import { KernelError, type KernelErrorCode } from "../errors.ts";
import type { FrameProvider } from "./frame_provider.ts";
import { Page } from "./page.ts";
import type { AddressSpaceLike } from "./page_mapper.ts";
import * as walk from "./_page_table_walk.ts";
import {
  activeDisposeError,
  flushAllTranslations,
  useAfterDisposeError,
} from "./_address_space_lifecycle.ts";

// V8 compiles a module's own constants into the code it optimizes but reads
// an imported binding from its module cell, with a check, at every use; the
// map and unmap paths run often enough for local copies to matter. The entry
// arithmetic and the read-only walks are shared with MapperAddressSpace
// (`_page_table_walk.ts`) and copied here the same way.
const {
  CR0_PG,
  CR0_WP,
  CR4_PAE,
  CR4_PGE,
  EFER_LME,
  EFER_NXE,
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
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
} = hal;
const {
  countTables,
  frameOf,
  indexAt,
  leafAt,
  LEAF_LOW_FLAGS,
  leavesIn,
  NO_EXECUTE,
  pageBase,
  SPAN_BYTES,
  SW_OWNED,
  tableOf,
} = walk;

// PTE_SW_OWNED, PTE_SW_FOREIGN and PAGE_NO_EXECUTE below are exported; the
// code here uses these module-private copies, which V8 folds (see above).
const SW_FOREIGN = 1 << 9;
/** Leaf bit 9 (ignored by the processor): the entry holds one reference to its frame. */
export const PTE_SW_OWNED: number = SW_OWNED;
/** Leaf bit 10 (ignored by the processor): copy-on-write; R/W is withheld until a write fault. */
export const PTE_SW_COW: number = walk.SW_COW;
/** Non-leaf bit 9 (ignored by the processor): the table belongs to no address space (recursive entry). */
export const PTE_SW_FOREIGN: number = SW_FOREIGN;
/** First bit of the live-entry count in a non-leaf entry's high half (bit 52 of the entry). */
const COUNT_SHIFT = 20;
/** The count field in the high half: entry bits 61:52. */
const COUNT_MASK = 0x3ff << COUNT_SHIFT;
/** Non-leaf entry bits 61:52 (ignored by the processor) as a mask of the high half: the live-entry count. */
export const PTE_HIGH_SW_COUNT_MASK: number = COUNT_MASK;
/** Where the live-entry count starts in a non-leaf entry's high half (entry bit 52). */
export const PTE_HIGH_SW_COUNT_SHIFT: number = COUNT_SHIFT;

/**
 * Page permissions and attributes as bits: {@linkcode PAGE_WRITABLE},
 * {@linkcode PAGE_USER}, {@linkcode PAGE_WRITE_THROUGH},
 * {@linkcode PAGE_CACHE_DISABLED}, {@linkcode PAGE_GLOBAL},
 * {@linkcode PAGE_COPY_ON_WRITE} and {@linkcode PAGE_NO_EXECUTE}. Build them
 * with {@linkcode pageFlags} from {@linkcode MappingOptions}; the raw form is
 * for tests and hot loops that convert once.
 */
export type PageFlags = number;
/** Writes allowed (R/W, bit 1). */
export const PAGE_WRITABLE: PageFlags = PTE_RW;
/** User-mode accesses allowed (U/S, bit 2). */
export const PAGE_USER: PageFlags = PTE_US;
/** Write-through caching (PWT, bit 3). */
export const PAGE_WRITE_THROUGH: PageFlags = PTE_PWT;
/** Caching disabled (PCD, bit 4), for MMIO. */
export const PAGE_CACHE_DISABLED: PageFlags = PTE_PCD;
/** Global translation (G, bit 8): kept across CR3 writes while CR4.PGE is set. */
export const PAGE_GLOBAL: PageFlags = PTE_G;
/** Copy-on-write marker (software bit 10); the page should be mapped without {@linkcode PAGE_WRITABLE}. */
export const PAGE_COPY_ON_WRITE: PageFlags = PTE_SW_COW;
/**
 * No instruction fetch: sets XD (bit 63). XD is a reserved bit unless
 * EFER.NXE is set, so enable NXE before paging uses such a mapping.
 */
export const PAGE_NO_EXECUTE: PageFlags = NO_EXECUTE;
/** Every bit a PageFlags value may have. */
const ALL_PAGE_FLAGS = LEAF_LOW_FLAGS | NO_EXECUTE;
/**
 * Flags of every non-leaf entry: writable, so the leaf alone decides R/W. U/S
 * is added only on the path to a user page (and stays), as Linux keeps it off
 * the kernel's tables: a supervisor-only entry high up documents, and
 * enforces, that nothing below it is for user mode.
 */
const TABLE_FLAGS = PTE_P | PTE_RW;

/**
 * Range operations over more pages than this flush the whole TLB once rather
 * than one INVLPG per page (Linux's default `tlb_single_page_flush_ceiling`).
 */
export const FLUSH_CEILING_PAGES = 33;

/** Page permissions and attributes in words; every field defaults to false. */
export interface MappingOptions {
  /** Writes allowed. */
  readonly writable?: boolean;
  /** User-mode (CPL 3) accesses allowed; otherwise supervisor only. */
  readonly user?: boolean;
  /** Instruction fetches allowed; otherwise XD is set (which needs EFER.NXE). */
  readonly executable?: boolean;
  /** Global: the translation survives CR3 writes while CR4.PGE is set. */
  readonly global?: boolean;
  /** Caching disabled (PCD), for MMIO. */
  readonly cacheDisabled?: boolean;
  /** Write-through caching (PWT). */
  readonly writeThrough?: boolean;
  /** Copy-on-write marker; combine with `writable: false`. */
  readonly copyOnWrite?: boolean;
}

/**
 * Converts permissions in words to {@linkcode PageFlags}.
 *
 * @param options The permissions; absent fields are false.
 * @returns The flag bits.
 *
 * @example
 * ```ts
 * import { PAGE_NO_EXECUTE, PAGE_WRITABLE, pageFlags } from "./address_space.ts";
 * pageFlags({ writable: true }) === (PAGE_WRITABLE | PAGE_NO_EXECUTE); // true
 * ```
 */
export function pageFlags(options: MappingOptions): PageFlags {
  let flags = 0;
  if (options.writable) flags |= PAGE_WRITABLE;
  if (options.user) flags |= PAGE_USER;
  if (!options.executable) flags |= NO_EXECUTE;
  if (options.global) flags |= PAGE_GLOBAL;
  if (options.cacheDisabled) flags |= PAGE_CACHE_DISABLED;
  if (options.writeThrough) flags |= PAGE_WRITE_THROUGH;
  if (options.copyOnWrite) flags |= PAGE_COPY_ON_WRITE;
  return flags;
}

/**
 * Describes flags in words, e.g. `RW NX G` or `RO X COW`.
 *
 * @param flags The flag bits.
 * @returns `RW` or `RO`, then `US`, `NX` or `X`, `G`, `PCD`, `PWT`, `COW` as set.
 */
export function formatPageFlags(flags: PageFlags): string {
  const words = [flags & PAGE_WRITABLE ? "RW" : "RO"];
  if (flags & PAGE_USER) words.push("US");
  words.push(flags & NO_EXECUTE ? "NX" : "X");
  if (flags & PAGE_GLOBAL) words.push("G");
  if (flags & PAGE_CACHE_DISABLED) words.push("PCD");
  if (flags & PAGE_WRITE_THROUGH) words.push("PWT");
  if (flags & PAGE_COPY_ON_WRITE) words.push("COW");
  return words.join(" ");
}

/**
 * A paging failure, with the virtual address it concerns and, for
 * `PageAlreadyMapped`, what is mapped there. Codes as the `x86_64` crate's
 * `MapToError` / `UnmapError` / `FlagUpdateError`: `FrameAllocationFailed`,
 * `ParentEntryHugePage`, `PageAlreadyMapped`, `PageNotMapped`, plus
 * `InvalidAddress` for misaligned or out-of-range arguments.
 */
export class MappingError extends KernelError {
  /** The virtual address of the page the operation failed on. */
  readonly address: VirtAddr;
  /**
   * For `PageAlreadyMapped`: the frame already mapped there (or the page
   * table, when smaller pages are mapped where a huge page was asked for).
   */
  readonly frame: PhysAddr | undefined;

  /**
   * Creates a paging error.
   *
   * @param code The kind of failure.
   * @param address The page's virtual address.
   * @param message Sentence case, no full stop, addresses in hex.
   * @param options `frame` for PageAlreadyMapped; `cause` for a wrapped error.
   */
  constructor(
    code: KernelErrorCode,
    address: VirtAddr,
    message: string,
    options: { readonly frame?: PhysAddr; readonly cause?: unknown } = {},
  ) {
    super(code, message);
    this.address = address;
    this.frame = options.frame;
    if (options.cause !== undefined) this.cause = options.cause;
  }
}

/** One leaf mapping, as {@linkcode AddressSpace.mapping} reports it. */
export interface Mapping {
  /** First virtual address of the page. */
  readonly virtAddr: VirtAddr;
  /** First physical address of the frame. */
  readonly physAddr: PhysAddr;
  /** Size of the page. */
  readonly pageSizeBytes: PageSizeBytes;
  /** Permissions and attributes. */
  readonly flags: PageFlags;
  /** Whether the entry holds a reference to the frame (mapped with `mapPage`). */
  readonly isOwned: boolean;
  /** The processor's accessed bit. */
  readonly isAccessed: boolean;
  /** The processor's dirty bit. */
  readonly isDirty: boolean;
}

/** Counts read from the page tables by {@linkcode AddressSpace.stats}. */
export interface AddressSpaceStats {
  /** Paging structures this address space owns, the PML4 included. */
  readonly pageTableFrames: number;
  /** 4 KiB leaves. */
  readonly pages4K: number;
  /** 2 MiB leaves. */
  readonly pages2M: number;
  /** 1 GiB leaves. */
  readonly pages1G: number;
  /** Leaves that hold a reference to their frame. */
  readonly ownedPages: number;
}

/**
 * The kernel's TLB shootdown, for an address space that several CPUs may
 * use: called where the space would invalidate this CPU's TLB.
 */
export interface TlbShootdownHook {
  /**
   * The leaf mapping the page at `va` was changed or removed: invalidate it
   * on this CPU and on every other that may cache it, and return only when
   * all have (the caller frees the frame next).
   *
   * @param va The page's first virtual address.
   * @param isGlobal Whether the leaf was global (cached whatever CR3 holds).
   */
  invalidatePage(va: VirtAddr, isGlobal: boolean): void;
  /**
   * A page table was unlinked from its parent entry: return only when no CPU
   * can still be in a walk through it (the caller frees it next).
   */
  tableUnlinked(): void;
}

/** Options of {@linkcode AddressSpace.create}. */
export interface AddressSpaceOptions {
  /**
   * A PML4 index (0 to 511) to point back at the PML4 itself, so that every
   * paging structure appears in that 512 GiB slot (xomb uses 510). Default:
   * none.
   */
  readonly recursiveIndex?: number;
  /**
   * An address space whose kernel half (PML4 entries 256 to 511, except its
   * recursive entry) the new one shares, as every process shares the
   * kernel's mappings. The shared entries are marked FOREIGN: this space never
   * changes or frees those tables. Default: none.
   */
  readonly kernelHalfOf?: AddressSpace;
  /**
   * The TLB shootdown of a machine of several CPUs; every invalidation goes
   * to it. Default: none (invalidate this CPU's TLB only).
   */
  readonly shootdown?: TlbShootdownHook;
}

const TWO_POW_32 = 2 ** 32;
/** #edit4K's operations. */
const EDIT_MAP = 0;
const EDIT_UNMAP = 1;
/** #edit4K's result when it leaves the case to the general path. */
const DECLINED = -1;
/** Word indices below this are int32s, which the fast path (#edit4K) keeps to. */
const FAST_WORD_LIMIT = 2 ** 31;
/** A table index: 9 bits of the virtual address. */
const INDEX_MASK = 511;
/** Where each level's index starts: in bits 47:32 (PML4, PDPT) and bits 31:0 (PDPT, PD, PT). */
const PML4_SHIFT_HIGH = 7;
const PDPT_SHIFT_HIGH = 2;
const PDPT_SHIFT = 30;
const PD_SHIFT = 21;
const PT_SHIFT = 12;
/** Address bits 51:32 of an entry, in its high half. */
const HIGH_ADDRESS_BITS = 0xfffff;
/** Address bits 31:12 of an entry, in its low half (as an int32). */
const LOW_ADDRESS_BITS = 0xfffff000 | 0;
/** Address bits 51:33 of an entry, in its high half: a table at 8 GiB or above. */
const HIGH_BEYOND_8G = 0xffffe;
/** Address bits 31:12 of an entry's low half as word-index bits 29:10 (after `>>> 2`). */
const TABLE_WORD_BITS = 0x3fff_fc00;
const INVERSE_TWO_POW_32 = 2 ** -32;
// Pending whole-TLB flushes of a range operation.
const FLUSH_NONE = 0;
const FLUSH_LOCAL = 1;
const FLUSH_GLOBAL = 2;

/**
 * One address space: a PML4 and the tables below it.
 *
 * @example
 * ```ts
 * import { DeviceBus, InterruptController, CpuContext, PhysicalMemory } from "../../hal/mod.ts";
 * import type { PhysAddr, VirtAddr } from "../../hal/mod.ts";
 * import { FrameAllocator } from "./frame_allocator.ts";
 * import { AddressSpace } from "./address_space.ts";
 *
 * const memory = PhysicalMemory.contiguous(16 * 2 ** 20);
 * const cpu = new CpuContext(new DeviceBus(memory), new InterruptController());
 * const frames = FrameAllocator.create(memory, {
 *   usableRegions: [{ base: 0, length: 16 * 2 ** 20 }],
 *   exclusions: [{ base: 0, length: 2 ** 20 }],
 * });
 * using space = AddressSpace.create(frames, cpu);
 * space.map(0x40_0000 as VirtAddr, 0x20_0000 as PhysAddr, { writable: true });
 * space.translate(0x40_0123 as VirtAddr); // 0x200123
 * space.unmap(0x40_0000 as VirtAddr); // 0x200000; the three tables below the PML4 are freed
 * ```
 */
export class AddressSpace implements AddressSpaceLike {
  readonly #frames: FrameProvider;
  readonly #cpu: CpuContext;
  /** The PML4's handle; undefined for a handle attached to a space another CPU owns. */
  readonly #pml4Page: Page | undefined;
  readonly #pml4: number;
  /** The PML4's first word index in `memory.u32` (its address / 4). */
  readonly #pml4Word: number;
  readonly #u32: Uint32Array;
  readonly #i32: Int32Array;
  /** Entry word indexes followed by the last single-page walk, by level (scratch). */
  readonly #path = new Float64Array(5);
  /**
   * The PML4's word index when it is an int32 (the PML4 is below 8 GiB), for
   * #edit4K; else -1, which sends every map and unmap the general way. Also
   * -1 once disposed: the general way then reports the use after dispose.
   */
  #pml4FastWord: number;
  // The tables #edit4K last walked through, for the 2 MiB region whose
  // address bits 47:32 are #lastRegionHigh and bits 31:21 #lastRegion: word
  // indices of the PDPT, PD and PT (-1: none yet), and the address each link
  // to them holds, as its low half (bits 31:12) and high half (bits 51:32)
  // have it. Predictions only: each use checks every link against RAM.
  #lastRegionHigh = -1;
  #lastRegion = -1;
  #lastPdpt = -1;
  #lastPd = -1;
  #lastPt = -1;
  #lastPdptLow = 0;
  #lastPdptHigh = 0;
  #lastPdLow = 0;
  #lastPdHigh = 0;
  #lastPtLow = 0;
  #lastPtHigh = 0;
  /**
   * Address bits 51:32 of the frame #edit4K unmapped (it returns bits 31:12):
   * a double returned from a call V8 does not inline would be boxed in a new
   * heap object.
   */
  #unmappedHigh = 0;
  /**
   * The page #edit4K unmaps, as unmap() received it: the invalidation takes
   * the address from this number field rather than rebuilding a double from
   * its halves (a multiplication and conversions on every unmap).
   */
  #editVa = 0;
  /** Whether the current range operation defers invalidation to one flush. */
  #isBatching = false;
  /** FLUSH_* bits the current range operation still owes. */
  #pendingFlush = FLUSH_NONE;
  /** Whether the current operation's address space is in CR3 (set per operation). */
  #isActiveNow = false;
  #isDisposed = false;
  /** The TLB shootdown on a machine of several CPUs; undefined with one. */
  readonly #shootdown: TlbShootdownHook | undefined;
  /** How mapping, mappings and stats read this space's tables. */
  readonly #tables: OwnTables;

  private constructor(
    frames: FrameProvider,
    cpu: CpuContext,
    pml4Page: Page | undefined,
    pml4Addr: PhysAddr,
    shootdown: TlbShootdownHook | undefined,
  ) {
    this.#frames = frames;
    this.#cpu = cpu;
    this.#pml4Page = pml4Page;
    this.#shootdown = shootdown;
    this.#pml4 = pml4Addr;
    this.#pml4Word = this.#pml4 / 4;
    this.#pml4FastWord = this.#pml4Word < FAST_WORD_LIMIT ? this.#pml4Word : -1;
    this.#u32 = frames.memory.u32;
    this.#i32 = frames.memory.i32;
    this.#tables = new OwnTables(this.#u32);
  }

  /**
   * Creates an empty address space: a zeroed PML4 from the frame allocator.
   *
   * @param frames The frame allocator every page table comes from.
   * @param cpu The CPU whose CR3 tells whether this space is active and whose TLB it invalidates.
   * @param options An optional recursive PML4 entry.
   * @returns The address space; dispose it to free every page table.
   * @throws {MappingError} `FrameAllocationFailed` if no frame is free.
   * @throws {RangeError} If `recursiveIndex` is not an integer from 0 to 511.
   */
  static create(
    frames: FrameProvider,
    cpu: CpuContext,
    options: AddressSpaceOptions = {},
  ): AddressSpace {
    const recursiveIndex = options.recursiveIndex;
    if (
      recursiveIndex !== undefined &&
      !(Number.isInteger(recursiveIndex) && recursiveIndex >= 0 && recursiveIndex < 512)
    ) {
      throw new RangeError(`Invalid recursive PML4 index ${recursiveIndex}: expected 0 to 511`);
    }
    let pml4Page: Page;
    try {
      pml4Page = Page.alloc(frames);
    } catch (error) {
      throw new MappingError(
        "FrameAllocationFailed",
        0 as VirtAddr,
        "Cannot create an address space: no free frame for the PML4",
        { cause: error },
      );
    }
    const space = new AddressSpace(
      frames,
      cpu,
      pml4Page,
      pml4Page.physAddr,
      options.shootdown,
    );
    if (recursiveIndex !== undefined) {
      // The PML4 maps itself: read-only would stop the kernel editing tables
      // through it, so RW; XD, since tables are data; not user.
      const pml4 = space.#pml4;
      space.#publishEntry(
        pml4 / 4 + 2 * recursiveIndex,
        lowAddressBits(pml4) | PTE_P | PTE_RW | SW_FOREIGN,
        highAddressBits(pml4) | PTE_HIGH_NX,
      );
    }
    const shared = options.kernelHalfOf;
    if (shared !== undefined) {
      const u32 = space.#u32;
      for (let index = 256; index < 512; index++) {
        const e = shared.#pml4Word + 2 * index;
        const low = u32[e];
        const high = u32[e + 1];
        if ((low & PTE_P) === 0 || index === recursiveIndex) continue;
        if (tableOf(low, high) === shared.#pml4) continue; // its recursive entry
        space.#publishEntry(space.#pml4Word + 2 * index, low | SW_FOREIGN, high);
      }
    }
    return space;
  }

  /**
   * A handle to an address space another CPU created (a Worker over the same
   * RAM): every fact is in the tables, so both handles see one space.
   * Changes through several handles must be serialised (the kernel's SMP
   * layer takes the space's lock). Disposing this handle only detaches it;
   * the creator's handle frees the tables.
   *
   * @param frames This CPU's frame provider (tables the handle creates come from it).
   * @param cpu This CPU.
   * @param pml4Addr The space's PML4 (its CR3 value).
   * @param options The TLB shootdown hook; other options are for creation and ignored.
   * @returns The handle.
   * @throws {MappingError} `InvalidAddress` if `pml4Addr` is not a frame of RAM.
   */
  static attach(
    frames: FrameProvider,
    cpu: CpuContext,
    pml4Addr: PhysAddr,
    options: AddressSpaceOptions = {},
  ): AddressSpace {
    if (pml4Addr % PAGE_SIZE_4K !== 0 || !frames.memory.isRam(pml4Addr, PAGE_SIZE_4K)) {
      throw new MappingError(
        "InvalidAddress",
        0 as VirtAddr,
        `Cannot attach to an address space at PML4 ${hex(pml4Addr)}: not a frame of RAM`,
      );
    }
    return new AddressSpace(frames, cpu, undefined, pml4Addr, options.shootdown);
  }

  /** Physical address of the PML4: the value to load into CR3. */
  get pml4Addr(): PhysAddr {
    return this.#pml4 as PhysAddr;
  }

  /** Whether CR3 points at this address space's PML4. */
  get isActive(): boolean {
    const cr3 = this.#cpu.cr3;
    // `&` takes the low 32 bits of CR3 (below 2^52), which hold its flag bits 11:0.
    return cr3 - (cr3 & (PAGE_SIZE_4K - 1)) === this.#pml4;
  }

  /** Whether {@linkcode AddressSpace[Symbol.dispose]} has run. */
  get isDisposed(): boolean {
    return this.#isDisposed;
  }

  /**
   * Switches the CPU to this address space: MOV to CR3, which flushes every
   * non-global TLB entry.
   *
   * @throws {KernelError} `UseAfterDispose` if the address space is disposed.
   */
  activate(): void {
    this.#live("activate");
    this.#cpu.writeCr3(this.#pml4);
  }

  /**
   * Turns 4-level paging on with this address space: EFER.LME and NXE (long
   * mode, execute-disable), CR4.PAE and PGE (4-level paging, global pages),
   * CR3, then CR0.PG and WP (paging; read-only pages bind the kernel too).
   * From here every virtual access goes through these tables.
   *
   * @throws {KernelError} `UseAfterDispose` if the address space is disposed.
   */
  enablePaging(): void {
    this.#live("enable paging");
    turnOnPaging(this.#cpu, this.#pml4 as PhysAddr);
  }

  /**
   * Maps one page of `pageSizeBytes` at `va` to the frame at `pa`, creating
   * the page tables it needs. The mapping owns nothing. Does not allocate
   * JavaScript objects unless it needs a new page table or fails.
   *
   * @param va The page's first virtual address, aligned to the page size.
   * @param pa The frame's first physical address, aligned to the page size.
   * @param flags Permissions: {@linkcode MappingOptions} or {@linkcode PageFlags}.
   * @param pageSizeBytes 4 KiB (default), 2 MiB or 1 GiB.
   * @throws {MappingError} `PageAlreadyMapped` (naming the frame) if something
   *   is mapped there; `ParentEntryHugePage` if a larger page covers `va`;
   *   `FrameAllocationFailed` if a page table cannot be allocated (tables
   *   created by the call are freed again); `InvalidAddress` for a misaligned
   *   or out-of-range address or a page inside the recursive mapping.
   * @throws {RangeError} For an unsupported page size or unknown flag bits.
   */
  map(
    va: VirtAddr,
    pa: PhysAddr,
    flags: PageFlags | MappingOptions,
    pageSizeBytes: PageSizeBytes = PAGE_SIZE_4K,
  ): void {
    const bits = toPageFlags(flags);
    if (
      pageSizeBytes !== PAGE_SIZE_4K || !isAligned(va, PAGE_SIZE_4K) ||
      !isFrameAligned(pa, PAGE_SIZE_4K) ||
      this.#edit4K(EDIT_MAP, highHalf(va), va | 0, highAddressBits(pa), pa | 0, bits, 0) < 0
    ) {
      this.#mapOne(va, pa, bits, pageSizeBytes, 0);
    }
  }

  /**
   * Maps the 4 KiB page at `va` to `page`'s frame and takes the handle's
   * reference: the handle is consumed on success, and the reference is
   * dropped when the page is unmapped or the address space disposed. On
   * failure the caller keeps the handle.
   *
   * @param va The page's first virtual address, 4 KiB aligned.
   * @param page The frame; consumed on success.
   * @param flags Permissions.
   * @throws {MappingError} As {@linkcode AddressSpace.map}.
   * @throws {KernelError} `UseAfterDispose` if `page` is disposed.
   */
  mapPage(va: VirtAddr, page: Page, flags: PageFlags | MappingOptions): void {
    const bits = toPageFlags(flags);
    const pa = page.physAddr;
    if (
      !isAligned(va, PAGE_SIZE_4K) ||
      this.#edit4K(
          EDIT_MAP,
          highHalf(va),
          va | 0,
          highAddressBits(pa),
          pa | 0,
          bits,
          SW_OWNED,
        ) < 0
    ) {
      this.#mapOne(va, pa, bits, PAGE_SIZE_4K, SW_OWNED);
    }
    page.intoRaw();
  }

  /**
   * Maps `sizeBytes` of virtual memory at `va` to the physical range at `pa`
   * with pages of one size, walking the tables once. All or nothing: on
   * failure every page it mapped and every table it created is removed again.
   *
   * @param va First virtual address, aligned to the page size.
   * @param pa First physical address, aligned to the page size.
   * @param sizeBytes A positive multiple of the page size.
   * @param flags Permissions.
   * @param pageSizeBytes 4 KiB (default), 2 MiB or 1 GiB.
   * @throws {MappingError} As {@linkcode AddressSpace.map}, for the first page that fails.
   * @throws {RangeError} For an unsupported page size or unknown flag bits.
   */
  mapRange(
    va: VirtAddr,
    pa: PhysAddr,
    sizeBytes: number,
    flags: PageFlags | MappingOptions,
    pageSizeBytes: PageSizeBytes = PAGE_SIZE_4K,
  ): void {
    this.#live("map");
    const bits = toPageFlags(flags);
    const leafLevel = leafLevelOf(pageSizeBytes);
    checkPageAddress("map", va, pageSizeBytes);
    checkFrameAddress("map", va, pa, pageSizeBytes);
    checkRangeSize("map", va, sizeBytes, pageSizeBytes);
    if (pa + sizeBytes > 2 ** 52) {
      throw new MappingError(
        "InvalidAddress",
        va,
        `Cannot map range at ${formatVirtAddr(va)}: frames end beyond 2^52`,
      );
    }
    this.#checkNoForeign("map", va, sizeBytes);
    const low = leafLow(bits, leafLevel, 0);
    const high = leafHigh(bits);
    try {
      this.#mapIn(this.#pml4, 4, -1, va, va + sizeBytes, pa, leafLevel, low, high);
    } catch (error) {
      if (error instanceof MappingError) {
        // Everything below the failing page was mapped by this call.
        const mappedBytes = error.address - va;
        if (mappedBytes > 0) this.unmapRange(va, mappedBytes);
        this.#prune(error.address);
      }
      throw error;
    }
  }

  /**
   * Removes the mapping of the page of `pageSizeBytes` at `va`, drops its
   * reference if it owned one, invalidates the TLB, and frees every page
   * table the removal leaves empty.
   *
   * @param va The page's first virtual address.
   * @param pageSizeBytes The size it was mapped with: 4 KiB (default), 2 MiB or 1 GiB.
   * @returns The physical address of the frame it mapped (freed if the entry
   *   held its last reference).
   * @throws {MappingError} `PageNotMapped` if no page of that size is mapped
   *   there; `ParentEntryHugePage` if a larger page covers `va`;
   *   `InvalidAddress` for a misaligned address or the recursive mapping.
   */
  unmap(va: VirtAddr, pageSizeBytes: PageSizeBytes = PAGE_SIZE_4K): PhysAddr {
    if (pageSizeBytes === PAGE_SIZE_4K && isAligned(va, PAGE_SIZE_4K)) {
      this.#editVa = va;
      const frameLow = this.#edit4K(EDIT_UNMAP, highHalf(va), va | 0, 0, 0, 0, 0);
      if (frameLow >= 0) {
        return (this.#unmappedHigh * TWO_POW_32 + frameLow * PAGE_SIZE_4K) as PhysAddr;
      }
    }
    return this.#unmapGeneral(va, pageSizeBytes);
  }

  /** unmap() the general way: any page size, every check, every error. */
  #unmapGeneral(va: VirtAddr, pageSizeBytes: PageSizeBytes): PhysAddr {
    const e = this.#findLeaf("unmap", va, pageSizeBytes);
    const leafLevel = leafLevelOf(pageSizeBytes);
    const u32 = this.#u32;
    const pa = frameOf(u32[e], u32[e + 1], leafLevel);
    const low = this.#clearLeaf(e);
    this.#isActiveNow = this.isActive;
    this.#invalidate(va, low);
    if ((low & SW_OWNED) !== 0) this.#release(pa);
    // Drop the count of each table on the path; free those that empty.
    const path = this.#path;
    for (let level = leafLevel + 1; level <= 4; level++) {
      const parent = path[level];
      if (this.#addCount(parent, -1) !== 0) break;
      const table = tableOf(u32[parent], u32[parent + 1]);
      this.#clearLink(parent);
      this.#release(table);
    }
    return pa as PhysAddr;
  }

  /**
   * Removes every mapping in `[va, va + sizeBytes)`, whatever its page size,
   * walking the tables once; holes are skipped. Owned frames are released and
   * emptied tables freed. Checks first that no huge page sticks out of the
   * range, so on error nothing has changed.
   *
   * @param va First virtual address, 4 KiB aligned.
   * @param sizeBytes A positive multiple of 4 KiB.
   * @returns How many pages (leaves of any size) were unmapped.
   * @throws {MappingError} `ParentEntryHugePage` if a huge page straddles an
   *   end of the range; `InvalidAddress` for a misaligned range or one that
   *   includes the recursive mapping.
   */
  unmapRange(va: VirtAddr, sizeBytes: number): number {
    this.#live("unmap");
    this.#checkRange("unmap", va, sizeBytes);
    this.#beginBatch(sizeBytes);
    const count = this.#unmapIn(this.#pml4, 4, -1, va, va + sizeBytes);
    this.#endBatch();
    return count;
  }

  /**
   * Changes the permissions of the page of `pageSizeBytes` at `va`, keeping
   * its frame, its accessed and dirty bits and its ownership, and invalidates
   * the TLB.
   *
   * @param va The page's first virtual address.
   * @param flags The new permissions (they replace the old ones).
   * @param pageSizeBytes The size it was mapped with (default 4 KiB).
   * @throws {MappingError} As {@linkcode AddressSpace.unmap}.
   * @throws {RangeError} For unknown flag bits.
   */
  protect(
    va: VirtAddr,
    flags: PageFlags | MappingOptions,
    pageSizeBytes: PageSizeBytes = PAGE_SIZE_4K,
  ): void {
    const bits = toPageFlags(flags);
    const e = this.#findLeaf("protect", va, pageSizeBytes);
    if ((bits & PAGE_USER) !== 0) {
      for (let level = leafLevelOf(pageSizeBytes) + 1; level <= 4; level++) {
        this.#grantUser(this.#path[level]);
      }
    }
    this.#isActiveNow = this.isActive;
    this.#reflag(e, va, leafLevelOf(pageSizeBytes), bits);
  }

  /**
   * Changes the permissions of every page in `[va, va + sizeBytes)`, walking
   * the tables once; holes are skipped. Checks first that no huge page sticks
   * out of the range, so on error nothing has changed.
   *
   * @param va First virtual address, 4 KiB aligned.
   * @param sizeBytes A positive multiple of 4 KiB.
   * @param flags The new permissions.
   * @returns How many pages were changed.
   * @throws {MappingError} As {@linkcode AddressSpace.unmapRange}.
   * @throws {RangeError} For unknown flag bits.
   */
  protectRange(va: VirtAddr, sizeBytes: number, flags: PageFlags | MappingOptions): number {
    this.#live("protect");
    const bits = toPageFlags(flags);
    this.#checkRange("protect", va, sizeBytes);
    this.#beginBatch(sizeBytes);
    const count = this.#protectIn(this.#pml4, 4, va, va + sizeBytes, bits);
    this.#endBatch();
    return count;
  }

  /**
   * Points the mapped 4 KiB page at `va` to `page`'s frame (taking its
   * reference, as {@linkcode AddressSpace.mapPage}) with new permissions,
   * drops the reference the old entry held, and invalidates the TLB. The
   * copy-on-write fault path uses it to install a private copy.
   *
   * @param va The page's first virtual address.
   * @param page The new frame; consumed on success.
   * @param flags The new permissions.
   * @returns The physical address of the frame the page mapped before.
   * @throws {MappingError} As {@linkcode AddressSpace.unmap}.
   */
  remapPage(va: VirtAddr, page: Page, flags: PageFlags | MappingOptions): PhysAddr {
    const bits = toPageFlags(flags);
    const newPa = page.physAddr;
    const e = this.#findLeaf("remap", va, PAGE_SIZE_4K);
    const u32 = this.#u32;
    const oldPa = frameOf(u32[e], u32[e + 1], 1);
    const low = this.#replaceLeaf(
      e,
      leafLow(bits, 1, SW_OWNED) | lowAddressBits(newPa),
      leafHigh(bits) | highAddressBits(newPa),
    );
    page.intoRaw();
    this.#isActiveNow = this.isActive;
    this.#invalidate(va, low);
    if ((low & SW_OWNED) !== 0) this.#release(oldPa);
    return oldPa as PhysAddr;
  }

  /**
   * Translates `va` through the page tables in RAM (not the TLB), as the
   * processor's walk would, ignoring permissions. Allocates nothing.
   *
   * @param va Any 48-bit virtual address.
   * @returns The physical address, or undefined if nothing maps `va`.
   * @throws {MappingError} `InvalidAddress` if `va` is not a 48-bit virtual
   *   address (a wider one would alias a low address in the table indexes).
   */
  translate(va: VirtAddr): PhysAddr | undefined {
    checkVirtAddr("translate", va);
    const u32 = this.#u32;
    let word = this.#pml4Word;
    for (let level = 4; level >= 1; level--) {
      const e = word + 2 * indexAt(va, level);
      const low = u32[e];
      if ((low & PTE_P) === 0) return undefined;
      const high = u32[e + 1];
      if (level === 1 || (level < 4 && (low & PTE_PS) !== 0)) {
        return (frameOf(low, high, level) + (va - pageBase(va, level))) as PhysAddr;
      }
      word = tableWordOf(low, high);
    }
    return undefined;
  }

  /**
   * The leaf that maps `va`, in words: page start, frame, size, permissions,
   * ownership, accessed and dirty bits.
   *
   * @param va Any 48-bit virtual address.
   * @returns The mapping, or undefined if nothing maps `va`.
   * @throws {MappingError} `InvalidAddress` if `va` is not a 48-bit virtual address.
   */
  mapping(va: VirtAddr): Mapping | undefined {
    checkVirtAddr("look up", va);
    return leafAt(this.#tables, this.#pml4Word, va);
  }

  /**
   * Every leaf that maps part of `[va, va + sizeBytes)`, lowest first
   * (skipping the recursive mapping).
   *
   * @param va First virtual address.
   * @param sizeBytes Length of the range in bytes.
   * @returns The mappings, each described as by {@linkcode AddressSpace.mapping}.
   * @throws {MappingError} `InvalidAddress` if `va` is not a 48-bit virtual address.
   */
  mappings(va: VirtAddr, sizeBytes: number): Mapping[] {
    checkVirtAddr("look up", va);
    return leavesIn(this.#tables, this.#pml4Word, va, sizeBytes);
  }

  /**
   * Counts the page tables and leaves by reading every table (meant for
   * reports and tests, not hot paths).
   *
   * @returns The counts.
   */
  stats(): AddressSpaceStats {
    return countTables(this.#tables, this.#pml4Word);
  }

  /**
   * Frees every page table and drops every reference owned mappings hold;
   * frames mapped raw are left alone. Global translations are flushed from
   * the TLB. Disposing twice is a no-op; disposing a handle made with
   * {@linkcode AddressSpace.attach} only detaches it.
   *
   * @throws {KernelError} `FrameInUse` if the address space is active (in CR3).
   */
  [Symbol.dispose](): void {
    if (this.#isDisposed) return;
    if (this.isActive) throw activeDisposeError(this.#pml4);
    this.#isDisposed = true;
    this.#pml4FastWord = -1;
    const pml4Page = this.#pml4Page;
    if (pml4Page === undefined) return; // an attached handle: the creator frees the tables
    const sawGlobal = this.#freeTables(this.#pml4, 4);
    pml4Page[Symbol.dispose]();
    if (sawGlobal) flushAllTranslations(this.#cpu);
  }

  // -------------------------------------------------------------------------
  // Single pages

  #mapOne(
    va: VirtAddr,
    pa: PhysAddr,
    flags: number,
    pageSizeBytes: PageSizeBytes,
    extraLow: number,
  ): void {
    this.#live("map");
    const leafLevel = leafLevelOf(pageSizeBytes);
    checkPageAddress("map", va, pageSizeBytes);
    checkFrameAddress("map", va, pa, pageSizeBytes);
    const u32 = this.#u32;
    let word = this.#pml4Word;
    let parent = -1;
    for (let level = 4; level > leafLevel; level--) {
      const e = word + 2 * indexAt(va, level);
      const low = u32[e];
      if ((low & PTE_P) === 0) {
        word = this.#newTable(e, parent, va, pageSizeBytes, flags & PAGE_USER) / 4;
      } else {
        if ((low & (PTE_PS | SW_FOREIGN)) !== 0) {
          throw this.#blockedBy("map", va, pageSizeBytes, low, u32[e + 1], level);
        }
        if ((flags & PAGE_USER & ~low) !== 0) this.#grantUser(e);
        word = tableWordOf(low, u32[e + 1]);
      }
      parent = e;
    }
    const e = word + 2 * indexAt(va, leafLevel);
    const low = u32[e];
    if ((low & PTE_P) !== 0) throw alreadyMapped(va, pageSizeBytes, low, u32[e + 1], leafLevel);
    this.#publishEntry(
      e,
      leafLow(flags, leafLevel, extraLow) | lowAddressBits(pa),
      leafHigh(flags) | highAddressBits(pa),
    );
    this.#addCount(parent, 1);
  }

  /**
   * Walks to the leaf entry of the page of `pageSizeBytes` at `va`, recording
   * the entries followed in #path. Returns the leaf's word index.
   */
  #findLeaf(action: string, va: VirtAddr, pageSizeBytes: PageSizeBytes): number {
    this.#live(action);
    const leafLevel = leafLevelOf(pageSizeBytes);
    checkPageAddress(action, va, pageSizeBytes);
    const u32 = this.#u32;
    const path = this.#path;
    let word = this.#pml4Word;
    for (let level = 4; level > leafLevel; level--) {
      const e = word + 2 * indexAt(va, level);
      const low = u32[e];
      if ((low & PTE_P) === 0) throw notMapped(action, va, pageSizeBytes);
      if ((low & (PTE_PS | SW_FOREIGN)) !== 0) {
        throw this.#blockedBy(action, va, pageSizeBytes, low, u32[e + 1], level);
      }
      path[level] = e;
      word = tableWordOf(low, u32[e + 1]);
    }
    const e = word + 2 * indexAt(va, leafLevel);
    const low = u32[e];
    if ((low & PTE_P) === 0) throw notMapped(action, va, pageSizeBytes);
    if (leafLevel > 1 && (low & PTE_PS) === 0) {
      throw new MappingError(
        "PageNotMapped",
        va,
        `Cannot ${action} ${pageLabel(va, pageSizeBytes)}: mapped with smaller pages`,
      );
    }
    return e;
  }

  /**
   * The fast path of map and unmap (`op`, EDIT_MAP or EDIT_UNMAP): a 4 KiB
   * page below three present, ordinary tables (no PS, not FOREIGN, U/S where
   * a user page needs it) below 8 GiB, which is nearly every call. The public
   * methods check the addresses and flags; this checks the rest. When it
   * mapped the page it returns 0; when it unmapped it, the frame's address
   * bits 31:12 (bits 51:32 are left in #unmappedHigh). Else it returns
   * DECLINED and changes nothing: every other case, errors included, goes
   * the general way (#mapOne, #unmapGeneral), which repeats the checks and
   * reports.
   *
   * The page is at `vaHigh:vaLow` (address bits 47:32 and 31:0), and for an
   * unmap also in #editVa; the frame at `paHigh:paLow`; `flags` are
   * PageFlags and `extraLow` more leaf bits (OWNED). Every index is an int32,
   * and no double crosses a call as an argument or result: V8 would box it in
   * a new heap object when it does not inline the callee. It is
   * one method, far above V8's inlining limit for one function (460 bytes of
   * bytecode), so that map() and unmap() stay small enough for their callers
   * to inline whatever else those inline, and call it with integers only.
   */
  #edit4K(
    op: number,
    vaHigh: number,
    vaLow: number,
    paHigh: number,
    paLow: number,
    flags: number,
    extraLow: number,
  ): number {
    const u32 = this.#u32;
    // The three links must be present, not PS, not FOREIGN, with U/S for a
    // user page, and point below 8 GiB. A table's word index: address bit 32
    // (high bit 0) is index bit 30, address bits 31:12 are index bits 29:10.
    const must = PTE_P | (op === EDIT_MAP ? flags & PTE_US : 0);
    const test = must | PTE_PS | SW_FOREIGN;
    const pml4 = this.#pml4FastWord;
    if (pml4 < 0) return DECLINED; // disposed, or the PML4 beyond 8 GiB
    const pml4e = pml4 + 2 * ((vaHigh >>> PML4_SHIFT_HIGH) & INDEX_MASK);
    const pdptIndex = ((vaHigh << PDPT_SHIFT_HIGH) | (vaLow >>> PDPT_SHIFT)) & INDEX_MASK;
    const pdIndex = (vaLow >>> PD_SHIFT) & INDEX_MASK;
    const region = vaLow >>> PD_SHIFT;
    let pde: number;
    let pt: number;
    if (this.#lastRegionHigh === vaHigh && this.#lastRegion === region) {
      // The tables of the last walk's 2 MiB region, as predictions: each link
      // is read and checked as a walk would, but from addresses known in
      // advance, so the three loads do not wait for each other. A link that
      // matches is the current one (the PML4 is fixed, and each table is
      // read through the link above it), whatever happened in between. One
      // compare per low half checks its flags (as `test` and `must` above)
      // and address bits 31:12 at once; the high halves' address bits 51:32
      // are checked together.
      const pdpte = this.#lastPdpt + 2 * pdptIndex;
      pde = this.#lastPd + 2 * pdIndex;
      pt = this.#lastPt;
      const mask = test | LOW_ADDRESS_BITS;
      if (
        (u32[pml4e] & mask) !== (this.#lastPdptLow | must) ||
        (u32[pdpte] & mask) !== (this.#lastPdLow | must) ||
        (u32[pde] & mask) !== (this.#lastPtLow | must) ||
        (((u32[pml4e + 1] ^ this.#lastPdptHigh) | (u32[pdpte + 1] ^ this.#lastPdHigh) |
            (u32[pde + 1] ^ this.#lastPtHigh)) & HIGH_ADDRESS_BITS) !== 0
      ) {
        return DECLINED;
      }
    } else {
      // Down the three links, one after the other.
      if ((u32[pml4e] & test) !== must) return DECLINED;
      const pdpt = tableWord(u32[pml4e], u32[pml4e + 1]);
      const pdpte = pdpt + 2 * pdptIndex;
      if (pdpt < 0 || (u32[pdpte] & test) !== must) return DECLINED;
      const pd = tableWord(u32[pdpte], u32[pdpte + 1]);
      pde = pd + 2 * pdIndex;
      if (pd < 0 || (u32[pde] & test) !== must) return DECLINED;
      pt = tableWord(u32[pde], u32[pde + 1]);
      if (pt < 0) return DECLINED;
      this.#lastRegionHigh = vaHigh;
      this.#lastRegion = region;
      this.#lastPdpt = pdpt;
      this.#lastPd = pd;
      this.#lastPt = pt;
      this.#lastPdptLow = linkLow(pdpt);
      this.#lastPdptHigh = linkHigh(pdpt);
      this.#lastPdLow = linkLow(pd);
      this.#lastPdHigh = linkHigh(pd);
      this.#lastPtLow = linkLow(pt);
      this.#lastPtHigh = linkHigh(pt);
    }
    const pte = pt + 2 * ((vaLow >>> PT_SHIFT) & INDEX_MASK);
    const low = u32[pte];
    if (op === EDIT_MAP) {
      if ((low & PTE_P) !== 0) return DECLINED; // mapped: the general path reports what
      // Not present: no concurrent writer; high half first (see Concurrency).
      u32[pte + 1] = leafHigh(flags) | paHigh;
      u32[pte] = leafLow(flags, 1, extraLow) | paLow;
      this.#addCount(pde, 1);
      return 0;
    }
    if ((low & PTE_P) === 0) return DECLINED; // not mapped: the general path reports it
    const high = u32[pte + 1];
    this.#clearLeaf(pte);
    const va = this.#editVa;
    // As #invalidate, before anything is freed: the shootdown hook with
    // several CPUs, else INVLPG if the space is active or the leaf was
    // global (a single page: no batching).
    const isGlobal = (low & PTE_G) !== 0;
    const shootdown = this.#shootdown;
    if (shootdown !== undefined) shootdown.invalidatePage(va as VirtAddr, isGlobal);
    else if (isGlobal || this.isActive) this.#cpu.invlpg(va as VirtAddr);
    if ((low & SW_OWNED) !== 0) this.#release(frameOf(low, high, 1));
    // The PT's count is in the PDE; when it empties, free it and what empties above.
    if (this.#addCount(pde, -1) === 0) this.#prune(va);
    this.#unmappedHigh = high & HIGH_ADDRESS_BITS;
    return low >>> PT_SHIFT;
  }

  /**
   * Rewrites a present leaf's permissions in place and invalidates it. The
   * high half (XD) goes first, then the low half by compare-exchange, retried
   * if a walker set A or D in the meantime, so those bits are kept. A walker
   * between the two stores combines old and new permissions; it can gain no
   * right that neither had, and the invalidation that follows ends it.
   */
  #reflag(e: number, va: number, level: number, flags: number): void {
    const u32 = this.#u32;
    const high = u32[e + 1];
    const newHigh = ((high & 0x7fffffff) | leafHigh(flags)) >>> 0;
    let low = u32[e] | 0;
    for (;;) {
      const keepLow = (low & (PTE_A | PTE_D | SW_OWNED)) |
        (level === 1 ? low & 0xfffff000 : low & 0xffffe000);
      const newLow = keepLow | leafLow(flags, level, 0);
      if (newLow === low && newHigh === high) return;
      if (newHigh !== high) u32[e + 1] = newHigh;
      const seen = Atomics.compareExchange(this.#i32, e, low, newLow);
      if (seen === low) break;
      low = seen;
    }
    this.#invalidate(va, low);
  }

  // -------------------------------------------------------------------------
  // Ranges (recursive over levels; each call handles the part of the range
  // inside one table, `[start, end)`)

  #mapIn(
    table: number,
    level: number,
    parent: number,
    start: number,
    end: number,
    pa: number,
    leafLevel: number,
    low: number,
    high: number,
  ): void {
    const u32 = this.#u32;
    const span = SPAN_BYTES[level];
    const base = table / 4;
    let index = indexAt(start as VirtAddr, level);
    if (level === leafLevel) {
      // The frame address as two 32-bit halves, advanced by the page size
      // with a carry: no division or remainder per entry.
      let paLow = lowAddressBits(pa);
      let paHigh = highAddressBits(pa);
      const count = (end - start) / span;
      for (let i = 0; i < count; i++, index++) {
        const e = base + 2 * index;
        const old = u32[e];
        if ((old & PTE_P) !== 0) {
          this.#addCount(parent, i);
          throw alreadyMapped(
            (start + i * span) as VirtAddr,
            span as PageSizeBytes,
            old,
            u32[e + 1],
            level,
          );
        }
        // Not present before: no concurrent writer; high half first (see Concurrency).
        u32[e + 1] = high | paHigh;
        u32[e] = low | paLow;
        paLow += span;
        if (paLow >= TWO_POW_32) {
          paLow -= TWO_POW_32;
          paHigh++;
        }
      }
      this.#addCount(parent, count);
      return;
    }
    for (let va = start; va < end; index++) {
      const e = base + 2 * index;
      const childEnd = Math.min(end, va - (va % span) + span);
      const entryLow = u32[e];
      let child: number;
      if ((entryLow & PTE_P) === 0) {
        child = this.#newTable(
          e,
          parent,
          va as VirtAddr,
          SPAN_BYTES[leafLevel] as PageSizeBytes,
          low & PTE_US,
        );
      } else if ((entryLow & (PTE_PS | SW_FOREIGN)) !== 0) {
        throw this.#blockedBy(
          "map",
          va as VirtAddr,
          SPAN_BYTES[leafLevel] as PageSizeBytes,
          entryLow,
          u32[e + 1],
          level,
        );
      } else {
        if ((low & PTE_US & ~entryLow) !== 0) this.#grantUser(e);
        child = tableOf(entryLow, u32[e + 1]);
      }
      this.#mapIn(child, level - 1, e, va, childEnd, pa, leafLevel, low, high);
      pa += childEnd - va;
      va = childEnd;
    }
  }

  /** Unmaps every leaf in [start, end) below `table`; returns how many. */
  #unmapIn(table: number, level: number, parent: number, start: number, end: number): number {
    const u32 = this.#u32;
    const span = SPAN_BYTES[level];
    const base = table / 4;
    let index = indexAt(start as VirtAddr, level);
    let leaves = 0;
    let removed = 0;
    for (let va = start; va < end; index++) {
      const entryStart = va - (va % span);
      const childEnd = Math.min(end, entryStart + span);
      const e = base + 2 * index;
      const low = u32[e];
      if ((low & PTE_P) !== 0) {
        const high = u32[e + 1];
        if (level === 1 || (low & PTE_PS) !== 0) {
          // #checkRange guarantees the leaf lies wholly inside the range.
          const lastLow = this.#clearLeaf(e);
          this.#invalidate(entryStart, lastLow);
          if ((lastLow & SW_OWNED) !== 0) this.#release(frameOf(low, high, level));
          leaves++;
          removed++;
        } else {
          const child = tableOf(low, high);
          leaves += this.#unmapIn(child, level - 1, e, va, childEnd);
          if (countOf(u32[e + 1]) === 0) {
            this.#clearLink(e);
            this.#release(child);
            removed++;
          }
        }
      }
      va = childEnd;
    }
    if (removed > 0) this.#addCount(parent, -removed);
    return leaves;
  }

  /** Applies `flags` to every leaf in [start, end) below `table`; returns how many. */
  #protectIn(table: number, level: number, start: number, end: number, flags: number): number {
    const u32 = this.#u32;
    const span = SPAN_BYTES[level];
    const base = table / 4;
    let index = indexAt(start as VirtAddr, level);
    let leaves = 0;
    for (let va = start; va < end; index++) {
      const entryStart = va - (va % span);
      const childEnd = Math.min(end, entryStart + span);
      const e = base + 2 * index;
      const low = u32[e];
      if ((low & PTE_P) !== 0) {
        if (level === 1 || (low & PTE_PS) !== 0) {
          this.#reflag(e, entryStart, level, flags);
          leaves++;
        } else {
          if ((flags & PAGE_USER) !== 0) this.#grantUser(e);
          leaves += this.#protectIn(tableOf(low, u32[e + 1]), level - 1, va, childEnd, flags);
        }
      }
      va = childEnd;
    }
    return leaves;
  }

  // -------------------------------------------------------------------------
  // Whole tables

  /**
   * Releases owned leaves and frees every table below `table` (not `table`
   * itself). Returns whether a global leaf was seen.
   */
  #freeTables(table: number, level: number): boolean {
    const u32 = this.#u32;
    const base = table / 4;
    let sawGlobal = false;
    for (let index = 0; index < 512; index++) {
      const low = u32[base + 2 * index];
      if ((low & PTE_P) === 0) continue;
      const high = u32[base + 2 * index + 1];
      if (level === 1 || (level < 4 && (low & PTE_PS) !== 0)) {
        if ((low & PTE_G) !== 0) sawGlobal = true;
        if ((low & SW_OWNED) !== 0) this.#release(frameOf(low, high, level));
      } else if ((low & SW_FOREIGN) === 0) {
        const child = tableOf(low, high);
        if (this.#freeTables(child, level - 1)) sawGlobal = true;
        this.#release(child);
      }
    }
    return sawGlobal;
  }

  // -------------------------------------------------------------------------
  // Helpers

  /**
   * Allocates a zeroed table and links it at entry `e` (whose table's count
   * lives at `parent`), with U/S if `userBit` (PTE_US or 0) says a user page
   * goes below it.
   */
  #newTable(
    e: number,
    parent: number,
    va: VirtAddr,
    pageSizeBytes: PageSizeBytes,
    userBit: number,
  ): number {
    let table: number;
    try {
      table = Page.alloc(this.#frames).intoRaw();
    } catch (error) {
      if (!(error instanceof KernelError && error.code === "OutOfMemory")) throw error;
      // Tables this operation created on the way down are empty: free them.
      this.#prune(va);
      throw new MappingError(
        "FrameAllocationFailed",
        va,
        `Cannot map ${pageLabel(va, pageSizeBytes)}: no free frame for a page table`,
        { cause: error },
      );
    }
    this.#publishEntry(e, lowAddressBits(table) | TABLE_FLAGS | userBit, highAddressBits(table));
    this.#addCount(parent, 1);
    return table;
  }

  /**
   * Sets U/S in the non-leaf entry at word `e`, because a user page is mapped
   * below it. Widening permissions needs no TLB invalidation (a stale entry
   * only causes a spurious fault, SDM 4.10.4.3).
   */
  #grantUser(e: number): void {
    // Walkers may be setting A in this present entry: an atomic OR keeps both.
    Atomics.or(this.#i32, e, PTE_US);
  }

  /** Frees the empty tables on the path to `va`, deepest first. */
  #prune(va: number): void {
    const u32 = this.#u32;
    const path = this.#path;
    let table = this.#pml4;
    let deepest = 5;
    for (let level = 4; level > 1; level--) {
      const e = table / 4 + 2 * indexAt(va as VirtAddr, level);
      const low = u32[e];
      if ((low & PTE_P) === 0 || (low & (PTE_PS | SW_FOREIGN)) !== 0) break;
      path[level] = e;
      deepest = level;
      table = tableOf(low, u32[e + 1]);
    }
    for (let level = deepest; level <= 4; level++) {
      const e = path[level];
      if (countOf(u32[e + 1]) !== 0) break;
      const child = tableOf(u32[e], u32[e + 1]);
      this.#clearLink(e);
      this.#release(child);
      if (level < 4) this.#addCount(path[level + 1], -1);
    }
  }

  /**
   * Adds `delta` to the live-entry count kept in the entry at word `e`
   * (nothing for the PML4, e = -1). Returns the new count.
   */
  #addCount(e: number, delta: number): number {
    if (e < 0) return 1;
    const high = this.#u32[e + 1];
    const count = ((high & COUNT_MASK) >>> COUNT_SHIFT) + delta;
    // A high half has no concurrent writer (walkers write low halves only).
    this.#u32[e + 1] = (high & ~COUNT_MASK) | (count << COUNT_SHIFT);
    return count;
  }

  /**
   * Makes the not-present entry at word `e` present. No walker writes a
   * not-present entry, so there is no concurrent writer: plain stores, the
   * high half first and the low half (P) last.
   */
  #publishEntry(e: number, low: number, high: number): void {
    const u32 = this.#u32;
    u32[e + 1] = high;
    u32[e] = low;
  }

  /**
   * Replaces the present leaf at word `e` and returns its last low half,
   * A and D as walkers left them. If the high half (address bits 51:32, XD)
   * changes, the entry is first made not present, so that no walker ever
   * combines an old half with a new one.
   */
  #replaceLeaf(e: number, low: number, high: number): number {
    const u32 = this.#u32;
    if (u32[e + 1] === high >>> 0) return Atomics.exchange(this.#i32, e, low);
    const last = Atomics.exchange(this.#i32, e, 0);
    u32[e + 1] = high;
    u32[e] = low;
    return last;
  }

  /**
   * Clears the present leaf at word `e` (an unmap) and returns the low half
   * it had. Walkers on other CPUs may be setting A or D in it right now, and
   * a plain store of 0 to the low half is still enough: the caller uses only
   * the bits the kernel itself writes under the address space's lock (the
   * frame, G, OWNED), which that read returns final; the A and D bits of a
   * mapping being removed are read by nothing (unmap and unmapRange report
   * neither), so one a walker sets just before the store is not missed; and
   * a walker's compare-exchange against the value it read fails once the low
   * half is 0, so it cannot bring the entry back. (A kernel that reads D at
   * unmap, to write a page back, would swap the low half out with
   * `Atomics.exchange`, whose result is final.) The high half is left as it
   * is: the processor ignores it in a not-present entry, and a walker that
   * read the present low half just before the store pairs it with the high
   * half it was written with (address bits, XD), not a zeroed one, until
   * the invalidation reaches it.
   */
  #clearLeaf(e: number): number {
    const u32 = this.#u32;
    const last = u32[e];
    u32[e] = 0;
    return last;
  }

  /**
   * Clears the table link at word `e`. A walker may set A in it meanwhile;
   * that bit means nothing once the link is gone, and its compare-exchange
   * against the old value cannot undo the clear, so plain stores do.
   */
  #clearLink(e: number): void {
    const u32 = this.#u32;
    u32[e] = 0;
    u32[e + 1] = 0;
    // Several CPUs: the table is freed next; no CPU may still be walking through it.
    this.#shootdown?.tableUnlinked();
  }

  /** Drops one reference to the frame at `pa` (a table or an owned page); the last frees it. */
  #release(pa: number): void {
    Page.fromRaw(this.#frames, pa as PhysAddr)[Symbol.dispose]();
  }

  /**
   * Invalidates a changed or removed present leaf of the page at `va` whose
   * old low half was `low`: INVLPG if the space is active or the leaf was
   * global, or a deferred whole flush in a large range operation; with a
   * shootdown hook (several CPUs), the hook's invalidation on every CPU.
   */
  #invalidate(va: number, low: number): void {
    const isGlobal = (low & PTE_G) !== 0;
    const shootdown = this.#shootdown;
    if (shootdown !== undefined) {
      // Several CPUs: this one and every other that may cache the page, now,
      // before the caller frees anything (no deferred range flush).
      shootdown.invalidatePage(va as VirtAddr, isGlobal);
      return;
    }
    if (!isGlobal && !this.#isActiveNow) return;
    if (this.#isBatching) {
      this.#pendingFlush |= isGlobal ? FLUSH_GLOBAL : FLUSH_LOCAL;
    } else {
      this.#cpu.invlpg(va as VirtAddr);
    }
  }

  #beginBatch(sizeBytes: number): void {
    this.#isActiveNow = this.isActive;
    this.#isBatching = sizeBytes / PAGE_SIZE_4K > FLUSH_CEILING_PAGES;
    this.#pendingFlush = FLUSH_NONE;
  }

  #endBatch(): void {
    const pending = this.#pendingFlush;
    this.#isBatching = false;
    this.#pendingFlush = FLUSH_NONE;
    if ((pending & FLUSH_GLOBAL) !== 0) flushAllTranslations(this.#cpu);
    else if ((pending & FLUSH_LOCAL) !== 0) this.#cpu.writeCr3(this.#cpu.cr3);
  }

  /** Validates a range for unmapRange / protectRange, so that on error nothing changes. */
  #checkRange(action: string, va: VirtAddr, sizeBytes: number): void {
    checkPageAddress(action, va, PAGE_SIZE_4K);
    checkRangeSize(action, va, sizeBytes, PAGE_SIZE_4K);
    this.#checkNoForeign(action, va, sizeBytes);
    // Only a leaf containing an end of the range can stick out of it.
    const end = va + sizeBytes;
    for (const edge of [va, end - 1]) {
      const leaf = this.mapping(edge as VirtAddr);
      if (
        leaf !== undefined &&
        (leaf.virtAddr < va || leaf.virtAddr + leaf.pageSizeBytes > end)
      ) {
        throw new MappingError(
          "ParentEntryHugePage",
          edge as VirtAddr,
          `Cannot ${action} range ${formatVirtAddr(va)}..${formatVirtAddr(end as VirtAddr)}: ` +
            `${pageLabel(leaf.virtAddr, leaf.pageSizeBytes)} extends beyond it`,
        );
      }
    }
  }

  /** Throws if [va, va + sizeBytes) overlaps a foreign (recursive) PML4 slot. */
  #checkNoForeign(action: string, va: VirtAddr, sizeBytes: number): void {
    const u32 = this.#u32;
    const base = this.#pml4 / 4;
    const last = indexAt((va + sizeBytes - 1) as VirtAddr, 4);
    for (let index = indexAt(va, 4); index <= last; index++) {
      if ((u32[base + 2 * index] & (PTE_P | SW_FOREIGN)) === (PTE_P | SW_FOREIGN)) {
        throw new MappingError(
          "InvalidAddress",
          va,
          `Cannot ${action} range at ${formatVirtAddr(va)}: it includes the recursive mapping ` +
            `(PML4 entry ${index})`,
        );
      }
    }
  }

  /** The error for a walk stopped by a huge leaf or the recursive entry at `level`. */
  #blockedBy(
    action: string,
    va: VirtAddr,
    pageSizeBytes: PageSizeBytes,
    low: number,
    high: number,
    level: number,
  ): MappingError {
    if (level === 4 || (low & PTE_PS) === 0) {
      return new MappingError(
        "InvalidAddress",
        va,
        `Cannot ${action} ${pageLabel(va, pageSizeBytes)}: inside the recursive mapping`,
      );
    }
    const span = SPAN_BYTES[level] as PageSizeBytes;
    return new MappingError(
      "ParentEntryHugePage",
      va,
      `Cannot ${action} ${pageLabel(va, pageSizeBytes)}: ` +
        `parent entry maps ${pageLabel((va - (va % span)) as VirtAddr, span)} ` +
        `to frame ${hex(frameOf(low, high, level))}`,
    );
  }

  #live(action: string): void {
    if (this.#isDisposed) throw useAfterDisposeError(action, this.#pml4);
  }
}

/**
 * Turns 4-level paging on with the PML4 at `pml4Addr`: EFER.LME and NXE,
 * CR4.PAE and PGE, CR3, then CR0.PG and WP. Every address space's
 * `enablePaging` comes here.
 *
 * @param cpu The CPU.
 * @param pml4Addr The PML4's physical address.
 */
export function turnOnPaging(cpu: CpuContext, pml4Addr: PhysAddr): void {
  cpu.writeEfer(cpu.efer | EFER_LME | EFER_NXE);
  cpu.writeCr4(cpu.cr4 | CR4_PAE | CR4_PGE);
  cpu.writeCr3(pml4Addr);
  cpu.writeCr0(cpu.cr0 | CR0_PG | CR0_WP);
}

// ---------------------------------------------------------------------------
// Entry arithmetic. Addresses are numbers below 2^52; `%` and `Math.floor` by
// 2^32 split them, never `>>` (which would truncate to 32 bits).

/** Bits 31:0 of a physical address below 2^52, for an entry's low half. */
function lowAddressBits(pa: number): number {
  // `>>> 0` reduces a safe integer modulo 2^32 without a floating-point remainder.
  return pa >>> 0;
}

/**
 * The word index of the table a link with halves `low` and `high` points to,
 * if it is below 8 GiB (an int32), else -1. Address bit 32 (high bit 0) is
 * index bit 30, address bits 31:12 are index bits 29:10.
 */
function tableWord(low: number, high: number): number {
  return (high & HIGH_BEYOND_8G) !== 0 ? -1 : ((high & 1) << 30) | ((low >>> 2) & TABLE_WORD_BITS);
}

/** The low half's address bits of a link to the table at word index `word` (an int32). */
function linkLow(word: number): number {
  // Index bits 29:10 are address bits 31:12 (tableWord's inverse).
  return (word << 2) & LOW_ADDRESS_BITS;
}

/** The high half's address bits of a link to the table at word index `word` (an int32). */
function linkHigh(word: number): number {
  // Index bit 30 is address bit 32, high-half bit 0.
  return word >>> 30;
}

/** Bits 47:32 of a 48-bit virtual address, as an int32. */
function highHalf(va: number): number {
  // The exact product is below 2^16, and `|` truncates it.
  return (va * INVERSE_TWO_POW_32) | 0;
}

/** Bits 51:32 of a physical address below 2^52, for an entry's high half. */
function highAddressBits(pa: number): number {
  // The exact product is below 2^20, and `|` truncates it.
  return (pa * INVERSE_TWO_POW_32) | 0;
}

/**
 * The word index (address / 4) of the table an entry points to. For tables
 * below 8 GiB it stays a small integer, which keeps typed-array indexing on
 * V8's fast path.
 */
function tableWordOf(low: number, high: number): number {
  return (high & 0xfffff) * 2 ** 30 + ((low >>> 2) & 0x3fff_fc00);
}

/** The live-entry count in a non-leaf entry's high half. */
function countOf(high: number): number {
  return (high & COUNT_MASK) >>> COUNT_SHIFT;
}

/** The low-half flag bits of a leaf at `level` (address bits not included). */
function leafLow(flags: number, level: number, extra: number): number {
  return PTE_P | (flags & LEAF_LOW_FLAGS) | (level > 1 ? PTE_PS : 0) | extra;
}

/** The high-half flag bits of a leaf (address bits not included). */
function leafHigh(flags: number): number {
  return (flags & NO_EXECUTE) !== 0 ? PTE_HIGH_NX : 0;
}

/**
 * Converts either form of flags to {@linkcode PageFlags}, checking raw bits.
 *
 * @param flags Permissions in words or as bits.
 * @returns The flag bits.
 * @throws {RangeError} If a raw value has bits that are not page flags.
 */
export function toPageFlags(flags: PageFlags | MappingOptions): PageFlags {
  if (typeof flags !== "number") return pageFlags(flags);
  if ((flags & ~ALL_PAGE_FLAGS) !== 0 || !Number.isInteger(flags)) {
    throw new RangeError(`Invalid page flags ${hex(flags >>> 0)}: unknown bits set`);
  }
  return flags;
}

/** The leaf level for a page size: 1 (4 KiB), 2 (2 MiB) or 3 (1 GiB). */
function leafLevelOf(pageSizeBytes: number): number {
  if (pageSizeBytes === PAGE_SIZE_4K) return 1;
  if (pageSizeBytes === PAGE_SIZE_2M) return 2;
  if (pageSizeBytes === PAGE_SIZE_1G) return 3;
  throw new RangeError(`Invalid page size ${pageSizeBytes}: expected 4 KiB, 2 MiB or 1 GiB`);
}

/** "page 0x…", "2 MiB page 0x…" or "1 GiB page 0x…". */
function pageLabel(va: number, pageSizeBytes: number): string {
  const size = pageSizeBytes === PAGE_SIZE_2M
    ? "2 MiB "
    : pageSizeBytes === PAGE_SIZE_1G
    ? "1 GiB "
    : "";
  return `${size}page ${formatVirtAddr(va as VirtAddr)}`;
}

/** Whether `va` is a 48-bit virtual address aligned to `pageSizeBytes` (the test of checkPageAddress). */
function isAligned(va: number, pageSizeBytes: number): boolean {
  // `&` keeps the low 32 bits of an integer, enough for masks below 2^30;
  // `%` on numbers above 2^31 is a slow floating-point remainder. With the
  // range excluding infinities, `Math.floor(va) === va` is Number.isInteger,
  // in fewer instructions (map and unmap inline this test).
  return (va & (pageSizeBytes - 1)) === 0 && va >= 0 && va < VIRT_ADDR_LIMIT &&
    Math.floor(va) === va;
}

/** Whether `pa` is a frame address below 2^52 aligned to `pageSizeBytes` (checkFrameAddress's test). */
function isFrameAligned(pa: number, pageSizeBytes: number): boolean {
  // As isAligned.
  return (pa & (pageSizeBytes - 1)) === 0 && pa >= 0 && pa < 2 ** 52 && Math.floor(pa) === pa;
}

function checkPageAddress(action: string, va: number, pageSizeBytes: number): void {
  if (isAligned(va, pageSizeBytes)) return;
  const isVirtAddr = Number.isSafeInteger(va) && va >= 0 && va < VIRT_ADDR_LIMIT;
  throw new MappingError(
    "InvalidAddress",
    va as VirtAddr,
    isVirtAddr
      ? `Cannot ${action} ${pageLabel(va, pageSizeBytes)}: not ${sizeName(pageSizeBytes)} aligned`
      : `Cannot ${action} page ${formatAnyNumber(va)}: not a 48-bit virtual address`,
  );
}

/** Throws unless `va` is an integer in [0, 2^48): the only addresses the tables can index. */
function checkVirtAddr(action: string, va: number): void {
  if (Number.isInteger(va) && va >= 0 && va < VIRT_ADDR_LIMIT) return;
  throw new MappingError(
    "InvalidAddress",
    va as VirtAddr,
    `Cannot ${action} ${formatAnyNumber(va)}: not a 48-bit virtual address`,
  );
}

/** `value` in hex when it is a non-negative safe integer, else as JavaScript prints it. */
function formatAnyNumber(value: number): string {
  return Number.isSafeInteger(value) && value >= 0 ? hex(value) : String(value);
}

function checkFrameAddress(action: string, va: number, pa: number, pageSizeBytes: number): void {
  if (isFrameAligned(pa, pageSizeBytes)) return;
  throw new MappingError(
    "InvalidAddress",
    va as VirtAddr,
    `Cannot ${action} ${pageLabel(va, pageSizeBytes)}: frame ${
      Number.isSafeInteger(pa) && pa >= 0 ? hex(pa) : String(pa)
    } is not ${sizeName(pageSizeBytes)} aligned below 2^52`,
  );
}

function checkRangeSize(
  action: string,
  va: number,
  sizeBytes: number,
  pageSizeBytes: number,
): void {
  if (
    Number.isSafeInteger(sizeBytes) && sizeBytes > 0 && sizeBytes % pageSizeBytes === 0 &&
    va + sizeBytes <= VIRT_ADDR_LIMIT
  ) {
    return;
  }
  throw new MappingError(
    "InvalidAddress",
    va as VirtAddr,
    `Cannot ${action} range at ${formatVirtAddr(va as VirtAddr)}: size ${
      String(sizeBytes)
    } is not a positive multiple of ${sizeName(pageSizeBytes)} within the 48-bit space`,
  );
}

function sizeName(pageSizeBytes: number): string {
  return pageSizeBytes === PAGE_SIZE_2M
    ? "2 MiB"
    : pageSizeBytes === PAGE_SIZE_1G
    ? "1 GiB"
    : "4 KiB";
}

function alreadyMapped(
  va: VirtAddr,
  pageSizeBytes: PageSizeBytes,
  low: number,
  high: number,
  level: number,
): MappingError {
  if (level > 1 && (low & PTE_PS) === 0) {
    const table = tableOf(low, high) as PhysAddr;
    return new MappingError(
      "PageAlreadyMapped",
      va,
      `Cannot map ${pageLabel(va, pageSizeBytes)}: smaller pages are mapped there ` +
        `(page table ${hex(table)})`,
      { frame: table },
    );
  }
  const frame = frameOf(low, high, level) as PhysAddr;
  return new MappingError(
    "PageAlreadyMapped",
    va,
    `Cannot map ${pageLabel(va, pageSizeBytes)}: already mapped to frame ${hex(frame)}`,
    { frame },
  );
}

function notMapped(action: string, va: VirtAddr, pageSizeBytes: PageSizeBytes): MappingError {
  return new MappingError(
    "PageNotMapped",
    va,
    `Cannot ${action} ${pageLabel(va, pageSizeBytes)}: not mapped`,
  );
}

/**
 * How mapping, mappings and stats read an AddressSpace's tables: the space
 * wrote every entry itself, so they are read through the word view of RAM
 * and links are followed unchecked. FOREIGN links (the recursive entry, a
 * shared kernel half) lead to tables that are not this space's: the range
 * walk and the counts leave them out.
 */
class OwnTables implements walk.PageTableReader {
  readonly skippedLinkBits: number = SW_FOREIGN;
  readonly #u32: Uint32Array;

  constructor(u32: Uint32Array) {
    this.#u32 = u32;
  }

  readLow(entryWord: number): number {
    return this.#u32[entryWord];
  }

  readHigh(entryWord: number): number {
    return this.#u32[entryWord + 1];
  }

  followLink(low: number, high: number): number {
    return tableWordOf(low, high);
  }
}
