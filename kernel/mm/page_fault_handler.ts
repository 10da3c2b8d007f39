/**
 * The kernel's page-fault handler (#PF, vector 14): demand-zero pages for
 * regions declared lazy, and copy-on-write sharing between address spaces.
 * Any other fault is an {@linkcode UnhandledPageFault}, which the kernel turns
 * into a panic naming the address, the error code in words and the access.
 *
 * ## What lives where
 *
 * - Copy-on-write is marked in the page tables, as real kernels do: a shared
 *   page is an OWNED leaf with R/W clear and software bit 10
 *   ({@linkcode PAGE_COPY_ON_WRITE}) set, in every address space that shares
 *   it; the sharing count is the frame's reference count in the frame
 *   metadata array (one reference per mapping).
 * - Lazy regions and the handler's counters are in one frame the handler
 *   owns (a `Page`), in 32-bit little-endian words:
 *
 * ```
 * word 0   magic 0x544c4650 ("PFLT")
 * word 1   number of lazy regions (at most MAX_LAZY_REGIONS = 127)
 * word 2   demand-zero faults handled
 * word 3   copy-on-write faults that copied the frame
 * word 4   copy-on-write faults that reused it (last reference: made writable)
 * word 5   unhandled faults
 * word 6-7 zero
 * region i at word 8 + 8 * i:
 *   [0] PML4 physical address, low 32 bits   [1] high 32 bits
 *   [2] first virtual address, low 32 bits   [3] high 16 bits
 *   [4] end virtual address (exclusive), low [5] high
 *   [6] PageFlags of the pages to map         [7] zero
 * ```
 *
 * A region belongs to the address space whose PML4 is at that physical
 * address; the handler finds the faulting space from CR3. The JavaScript
 * object keeps one handle per known address space (like a process table of
 * pointers), so it can call the space's methods; the facts stay in RAM.
 *
 * @module
 */

import {
  type CpuContext,
  describePageFaultCode,
  formatVirtAddr,
  frameContaining,
  hex,
  type Mmu,
  PAGE_SIZE_4K,
  type PageFault,
  type PageFaultResolution,
  PF_FETCH,
  PF_PRESENT,
  PF_RESERVED,
  PF_WRITE,
  type PhysAddr,
  VIRT_ADDR_LIMIT,
  type VirtAddr,
} from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";
import {
  MappingError,
  type MappingOptions,
  PAGE_COPY_ON_WRITE,
  PAGE_WRITABLE,
  type PageFlags,
  toPageFlags,
} from "./address_space.ts";
import type { FrameProvider } from "./frame_provider.ts";
import { Page } from "./page.ts";
import type { PageFaultPolicy } from "./page_fault_policy.ts";
import type { AddressSpaceLike } from "./page_mapper.ts";

/** The first word of the handler's state frame: "PFLT" as a little-endian u32. */
export const PAGE_FAULT_STATE_MAGIC = 0x544c_4650;
/** How many lazy regions the state frame holds. */
export const MAX_LAZY_REGIONS = 127;

const W_MAGIC = 0;
const W_REGION_COUNT = 1;
const W_DEMAND_ZERO = 2;
const W_COW_COPIES = 3;
const W_COW_REUSES = 4;
const W_UNHANDLED = 5;
const HEADER_WORDS = 8;
const REGION_WORDS = 8;
const R_PML4_LO = 0;
const R_PML4_HI = 1;
const R_START_LO = 2;
const R_START_HI = 3;
const R_END_LO = 4;
const R_END_HI = 5;
const R_FLAGS = 6;
const TWO_POW_32 = 2 ** 32;

/** Faults the handler has seen, by outcome (read from its state frame). */
export interface PageFaultCounts {
  /** Not-present faults in a lazy region, fixed with a zeroed frame. */
  readonly demandZero: number;
  /** Write faults on a shared copy-on-write page, fixed with a private copy. */
  readonly copyOnWriteCopies: number;
  /** Write faults on a copy-on-write page whose last reference this was, made writable. */
  readonly copyOnWriteReuses: number;
  /** Faults it could not fix (each became an {@linkcode UnhandledPageFault}). */
  readonly unhandled: number;
}

/** A lazy region, as {@linkcode KernelPageFaultHandler.lazyRegions} lists it. */
export interface LazyRegion {
  /** The PML4 of the address space it belongs to. */
  readonly pml4Addr: PhysAddr;
  /** First virtual address. */
  readonly start: VirtAddr;
  /** One past the last virtual address. */
  readonly end: VirtAddr;
  /** Permissions of the pages mapped on demand. */
  readonly flags: PageFlags;
}

/**
 * What the handler did about one fault, for a {@linkcode PageFaultObserver}.
 * Every event names the faulting address (CR2) and the error code.
 */
export type PageFaultEvent =
  & {
    /** The faulting virtual address (CR2). */
    readonly address: VirtAddr;
    /** The processor's error code (PF_* bits). */
    readonly errorCode: number;
  }
  & (
    | {
      /** A not-present fault in a lazy region: a zeroed frame was mapped. */
      readonly kind: "demand-zero";
      /** The frame now mapped at the page. */
      readonly frame: PhysAddr;
    }
    | {
      /** A write to a shared copy-on-write page: the writer got a private copy. */
      readonly kind: "copy-on-write-copy";
      /** The shared frame. */
      readonly from: PhysAddr;
      /** The writer's new frame. */
      readonly to: PhysAddr;
      /** References to `from` before the copy. */
      readonly refcountBefore: number;
      /** References to `from` after it (this mapping's was dropped). */
      readonly refcountAfter: number;
    }
    | {
      /** A write to a copy-on-write page with one reference left: made writable in place. */
      readonly kind: "copy-on-write-reuse";
      /** The frame, now private and writable. */
      readonly frame: PhysAddr;
    }
    | {
      /** A fault the handler could not fix (an UnhandledPageFault follows). */
      readonly kind: "unhandled";
    }
  );

/** Receives one {@linkcode PageFaultEvent} per fault the handler sees, after it acted. */
export type PageFaultObserver = (event: PageFaultEvent) => void;

/**
 * A page fault the kernel cannot resolve. Its message is the panic reason:
 * `Unhandled page fault at 0x0: not-present supervisor read (error code 0x0)`.
 */
export class UnhandledPageFault extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "UnhandledPageFault";
  /** The faulting virtual address (CR2). */
  readonly address: VirtAddr;
  /** The processor's error code (PF_* bits). */
  readonly errorCode: number;

  /**
   * Wraps the processor's fault.
   *
   * @param fault The page fault the handler could not fix.
   */
  constructor(fault: PageFault) {
    super(
      `Unhandled page fault at ${formatVirtAddr(fault.address)}: ` +
        `${describePageFaultCode(fault.errorCode)} (error code ${hex(fault.errorCode)})`,
      { cause: fault },
    );
    this.address = fault.address;
    this.errorCode = fault.errorCode;
  }
}

/**
 * The kernel's #PF handler, installed on the MMU.
 *
 * @example
 * ```ts ignore
 * const faults = KernelPageFaultHandler.install(machine.mmu, machine.cpu, frames);
 * faults.declareLazy(space, 0x4000_0000 as VirtAddr, 16 * 4096, { writable: true });
 * machine.mmu.readVirt32(0x4000_0000 as VirtAddr); // 0: a zeroed frame was mapped
 * ```
 */
export class KernelPageFaultHandler implements PageFaultPolicy {
  /** Physical address of the state frame (header, counters, lazy regions). */
  readonly stateAddr: PhysAddr;
  readonly #mmu: Mmu;
  readonly #cpu: CpuContext;
  readonly #frames: FrameProvider;
  readonly #statePage: Page;
  /** A view of the state frame's words. */
  readonly #words: Uint32Array;
  /** Handles of the address spaces it serves, by PML4 address. */
  readonly #spaces = new Map<number, AddressSpaceLike>();
  #observer: PageFaultObserver | undefined;
  #isDisposed = false;

  private constructor(mmu: Mmu, cpu: CpuContext, frames: FrameProvider, statePage: Page) {
    this.#mmu = mmu;
    this.#cpu = cpu;
    this.#frames = frames;
    this.#statePage = statePage;
    this.stateAddr = statePage.physAddr;
    this.#words = new Uint32Array(frames.memory.buffer, this.stateAddr, PAGE_SIZE_4K / 4);
    this.#words[W_MAGIC] = PAGE_FAULT_STATE_MAGIC;
  }

  /**
   * Allocates the handler's state frame and installs it as the MMU's #PF
   * handler.
   *
   * @param mmu The MMU whose faults it handles.
   * @param cpu The CPU whose CR3 names the faulting address space.
   * @param frames The frame allocator for demand-zero pages and copies.
   * @returns The installed handler; dispose it to uninstall it.
   * @throws {KernelError} `OutOfMemory` if no frame is free.
   */
  static install(mmu: Mmu, cpu: CpuContext, frames: FrameProvider): KernelPageFaultHandler {
    const handler = new KernelPageFaultHandler(mmu, cpu, frames, Page.alloc(frames));
    mmu.setPageFaultHandler((fault) => handler.handle(fault));
    return handler;
  }

  /**
   * Sets (or with `undefined` removes) the observer told what the handler did
   * about each fault, after it acted (the monitor narrates faults with it).
   * Events are built only while an observer is set.
   *
   * @param observer The observer.
   */
  setObserver(observer: PageFaultObserver | undefined): void {
    this.#observer = observer;
  }

  /** Counts of faults by outcome, read from RAM. */
  get counts(): PageFaultCounts {
    const words = this.#words;
    return {
      demandZero: words[W_DEMAND_ZERO],
      copyOnWriteCopies: words[W_COW_COPIES],
      copyOnWriteReuses: words[W_COW_REUSES],
      unhandled: words[W_UNHANDLED],
    };
  }

  /**
   * Lets the handler resolve faults in `space` (done implicitly by
   * {@linkcode declareLazy} and {@linkcode shareCopyOnWrite}). Lazy regions
   * left behind by a disposed space whose PML4 frame `space` now reuses are
   * dropped.
   *
   * @param space The address space.
   * @throws {KernelError} `UseAfterDispose` if `space` is disposed.
   */
  attach(space: AddressSpaceLike): void {
    this.#live();
    if (space.isDisposed) {
      throw new KernelError("UseAfterDispose", "Cannot attach a disposed address space");
    }
    const pml4 = space.pml4Addr;
    const known = this.#spaces.get(pml4);
    if (known === space) return;
    if (known !== undefined) this.#removeRegions(pml4);
    this.#spaces.set(pml4, space);
  }

  /**
   * Forgets `space` and its lazy regions (call before disposing it; a
   * disposed space is also forgotten on its next fault or reuse).
   *
   * @param space The address space.
   */
  detach(space: AddressSpaceLike): void {
    const pml4 = space.pml4Addr;
    if (this.#spaces.get(pml4) !== space) return;
    this.#removeRegions(pml4);
    this.#spaces.delete(pml4);
  }

  /**
   * Declares `[va, va + sizeBytes)` of `space` lazy: a not-present fault in it
   * maps a zeroed 4 KiB frame (owned by the space) with `flags`.
   *
   * @param space The address space.
   * @param va First virtual address, 4 KiB aligned.
   * @param sizeBytes A positive multiple of 4 KiB.
   * @param flags Permissions of the pages.
   * @throws {MappingError} `InvalidAddress` if the range is misaligned or
   *   overlaps another lazy region of the space.
   * @throws {KernelError} `OutOfMemory` if the region table is full.
   */
  declareLazy(
    space: AddressSpaceLike,
    va: VirtAddr,
    sizeBytes: number,
    flags: PageFlags | MappingOptions,
  ): void {
    this.#live();
    checkRange("declare lazy region", va, sizeBytes);
    const bits = toPageFlags(flags);
    this.attach(space);
    const pml4 = space.pml4Addr;
    const end = va + sizeBytes;
    for (const region of this.lazyRegions(space)) {
      if (va < region.end && region.start < end) {
        throw new MappingError(
          "InvalidAddress",
          va,
          `Cannot declare lazy region ${formatVirtAddr(va)}..${formatVirtAddr(end as VirtAddr)}: ` +
            `overlaps lazy region ${formatVirtAddr(region.start)}..${formatVirtAddr(region.end)}`,
        );
      }
    }
    const words = this.#words;
    const count = words[W_REGION_COUNT];
    if (count === MAX_LAZY_REGIONS) {
      throw new KernelError(
        "OutOfMemory",
        `Cannot declare lazy region at ${formatVirtAddr(va)}: ` +
          `region table full (${MAX_LAZY_REGIONS} regions)`,
      );
    }
    const r = HEADER_WORDS + REGION_WORDS * count;
    words[r + R_PML4_LO] = pml4 % TWO_POW_32;
    words[r + R_PML4_HI] = Math.floor(pml4 / TWO_POW_32);
    words[r + R_START_LO] = va % TWO_POW_32;
    words[r + R_START_HI] = Math.floor(va / TWO_POW_32);
    words[r + R_END_LO] = end % TWO_POW_32;
    words[r + R_END_HI] = Math.floor(end / TWO_POW_32);
    words[r + R_FLAGS] = bits;
    words[r + 7] = 0;
    words[W_REGION_COUNT] = count + 1;
  }

  /**
   * The lazy regions in the state frame, of `space` or of every space.
   *
   * @param space Only this address space's regions (default: all).
   * @returns The regions in table order.
   */
  lazyRegions(space?: AddressSpaceLike): LazyRegion[] {
    const words = this.#words;
    const regions: LazyRegion[] = [];
    for (let i = 0; i < words[W_REGION_COUNT]; i++) {
      const r = HEADER_WORDS + REGION_WORDS * i;
      const pml4Addr = (words[r + R_PML4_HI] * TWO_POW_32 + words[r + R_PML4_LO]) as PhysAddr;
      if (space !== undefined && pml4Addr !== space.pml4Addr) continue;
      regions.push({
        pml4Addr,
        start: (words[r + R_START_HI] * TWO_POW_32 + words[r + R_START_LO]) as VirtAddr,
        end: (words[r + R_END_HI] * TWO_POW_32 + words[r + R_END_LO]) as VirtAddr,
        flags: words[r + R_FLAGS],
      });
    }
    return regions;
  }

  /**
   * Shares every page of `src` in `[va, va + sizeBytes)` with `dst` at the
   * same addresses, copy-on-write, as `fork` does: each writable page becomes
   * read-only and marked {@linkcode PAGE_COPY_ON_WRITE} in both spaces, a
   * read-only page is simply shared, and each frame gains one reference (so
   * a page shared once has a count of 2). Holes in `src` stay holes.
   *
   * @param src The address space whose pages are shared; every page in the
   *   range must be an owned 4 KiB page (from `mapPage` or a lazy region).
   * @param dst The address space that receives them; nothing may be mapped
   *   there in the range.
   * @param va First virtual address, 4 KiB aligned.
   * @param sizeBytes A positive multiple of 4 KiB.
   * @returns How many pages were shared.
   * @throws {MappingError} `InvalidAddress` for a misaligned range or a page
   *   that is huge or not owned; `PageAlreadyMapped` if `dst` maps something
   *   in the range (both checked before anything changes);
   *   `FrameAllocationFailed` if `dst` needs a page table and none is free
   *   (the pages shared so far stay shared).
   */
  shareCopyOnWrite(
    src: AddressSpaceLike,
    dst: AddressSpaceLike,
    va: VirtAddr,
    sizeBytes: number,
  ): number {
    this.#live();
    checkRange("share", va, sizeBytes);
    const leaves = src.mappings(va, sizeBytes);
    for (const leaf of leaves) {
      if (leaf.pageSizeBytes !== PAGE_SIZE_4K || !leaf.isOwned) {
        throw new MappingError(
          "InvalidAddress",
          leaf.virtAddr,
          `Cannot share page ${formatVirtAddr(leaf.virtAddr)} copy-on-write: ` +
            `not a 4 KiB page the address space owns`,
        );
      }
    }
    const taken = dst.mappings(va, sizeBytes)[0];
    if (taken !== undefined) {
      throw new MappingError(
        "PageAlreadyMapped",
        taken.virtAddr,
        `Cannot share page ${formatVirtAddr(taken.virtAddr)} copy-on-write: ` +
          `already mapped to frame ${hex(taken.physAddr)} in the destination`,
        { frame: taken.physAddr },
      );
    }
    this.attach(src);
    this.attach(dst);
    const metadata = this.#frames.metadata;
    for (const leaf of leaves) {
      let shared = leaf.flags;
      if ((shared & PAGE_WRITABLE) !== 0) {
        shared = (shared & ~PAGE_WRITABLE) | PAGE_COPY_ON_WRITE;
        src.protect(leaf.virtAddr, shared);
      }
      // The new reference is dst's; the handle carries it into the entry.
      metadata.retain(frameContaining(leaf.physAddr));
      const page = Page.fromRaw(this.#frames, leaf.physAddr);
      try {
        dst.mapPage(leaf.virtAddr, page, shared);
      } catch (error) {
        page[Symbol.dispose]();
        throw error;
      }
    }
    return leaves.length;
  }

  /**
   * Handles one page fault (the MMU calls this): maps a zeroed frame for a
   * not-present fault in a lazy region; for a write to a copy-on-write page,
   * copies the frame if other mappings share it, else makes the page
   * writable. Anything else is thrown.
   *
   * @param fault The fault; CR2 and the error code.
   * @returns `"retry"` when the cause is fixed.
   * @throws {UnhandledPageFault} For every other fault.
   * @throws {KernelError} `OutOfMemory` if no frame is free for a page or a
   *   copy; {@linkcode MappingError} `FrameAllocationFailed` if none is free
   *   for a page table (nothing is left allocated).
   */
  handle(fault: PageFault): PageFaultResolution {
    const errorCode = fault.errorCode;
    const va = fault.address;
    const cr3 = this.#cpu.cr3;
    const pml4 = cr3 - (cr3 % PAGE_SIZE_4K);
    const space = this.#spaces.get(pml4);
    if (space !== undefined && space.isDisposed) {
      this.#removeRegions(pml4);
      this.#spaces.delete(pml4);
    } else if (space !== undefined && !this.#isDisposed && (errorCode & PF_RESERVED) === 0) {
      if ((errorCode & PF_PRESENT) === 0) {
        const flags = this.#lazyFlags(pml4, va);
        if (flags >= 0) {
          const page = Page.alloc(this.#frames);
          const frame = page.physAddr;
          try {
            space.mapPage(pageStart(va), page, flags);
          } catch (error) {
            page[Symbol.dispose](); // no page table for it: give the frame back
            throw error;
          }
          this.#words[W_DEMAND_ZERO]++;
          this.#observer?.({ kind: "demand-zero", address: va, errorCode, frame });
          return "retry";
        }
      } else if ((errorCode & (PF_WRITE | PF_FETCH)) === PF_WRITE) {
        if (this.#breakCopyOnWrite(space, fault)) return "retry";
      }
    }
    this.#words[W_UNHANDLED]++;
    this.#observer?.({ kind: "unhandled", address: va, errorCode });
    throw new UnhandledPageFault(fault);
  }

  /**
   * Uninstalls the handler from the MMU and frees its state frame. Disposing
   * twice is a no-op.
   */
  [Symbol.dispose](): void {
    if (this.#isDisposed) return;
    this.#isDisposed = true;
    this.#mmu.setPageFaultHandler(undefined);
    this.#spaces.clear();
    this.#statePage[Symbol.dispose]();
  }

  /** Gives the writer its own copy of a copy-on-write page; false if `va` is not one. */
  #breakCopyOnWrite(space: AddressSpaceLike, fault: PageFault): boolean {
    const leaf = space.mapping(fault.address);
    if (
      leaf === undefined || (leaf.flags & PAGE_COPY_ON_WRITE) === 0 || !leaf.isOwned ||
      leaf.pageSizeBytes !== PAGE_SIZE_4K
    ) {
      return false;
    }
    const writable = (leaf.flags | PAGE_WRITABLE) & ~PAGE_COPY_ON_WRITE;
    const refcount = this.#frames.metadata.refcount(frameContaining(leaf.physAddr));
    if (refcount > 1) {
      // Others still map the frame: copy it, and drop this mapping's reference.
      const copy = Page.alloc(this.#frames, { zeroed: false });
      const copyAddr = copy.physAddr;
      this.#frames.memory.copy(copyAddr, leaf.physAddr, PAGE_SIZE_4K);
      try {
        space.remapPage(leaf.virtAddr, copy, writable);
      } catch (error) {
        copy[Symbol.dispose]();
        throw error;
      }
      this.#words[W_COW_COPIES]++;
      this.#observer?.({
        kind: "copy-on-write-copy",
        address: fault.address,
        errorCode: fault.errorCode,
        from: leaf.physAddr,
        to: copyAddr,
        refcountBefore: refcount,
        refcountAfter: this.#frames.metadata.refcount(frameContaining(leaf.physAddr)),
      });
    } else {
      // The last reference: the page is private now.
      space.protect(leaf.virtAddr, writable);
      this.#words[W_COW_REUSES]++;
      this.#observer?.({
        kind: "copy-on-write-reuse",
        address: fault.address,
        errorCode: fault.errorCode,
        frame: leaf.physAddr,
      });
    }
    return true;
  }

  /** The flags of the lazy region of the space at `pml4` containing `va`, or -1. */
  #lazyFlags(pml4: number, va: number): number {
    const words = this.#words;
    const pml4Lo = pml4 % TWO_POW_32;
    const pml4Hi = Math.floor(pml4 / TWO_POW_32);
    for (let i = 0; i < words[W_REGION_COUNT]; i++) {
      const r = HEADER_WORDS + REGION_WORDS * i;
      if (words[r + R_PML4_LO] !== pml4Lo || words[r + R_PML4_HI] !== pml4Hi) continue;
      const start = words[r + R_START_HI] * TWO_POW_32 + words[r + R_START_LO];
      const end = words[r + R_END_HI] * TWO_POW_32 + words[r + R_END_LO];
      if (va >= start && va < end) return words[r + R_FLAGS];
    }
    return -1;
  }

  /** Removes the lazy regions of the space at `pml4`, compacting the table. */
  #removeRegions(pml4: number): void {
    const words = this.#words;
    const pml4Lo = pml4 % TWO_POW_32;
    const pml4Hi = Math.floor(pml4 / TWO_POW_32);
    let kept = 0;
    for (let i = 0; i < words[W_REGION_COUNT]; i++) {
      const r = HEADER_WORDS + REGION_WORDS * i;
      if (words[r + R_PML4_LO] === pml4Lo && words[r + R_PML4_HI] === pml4Hi) continue;
      const to = HEADER_WORDS + REGION_WORDS * kept;
      if (to !== r) words.copyWithin(to, r, r + REGION_WORDS);
      kept++;
    }
    words.fill(
      0,
      HEADER_WORDS + REGION_WORDS * kept,
      HEADER_WORDS + REGION_WORDS * words[W_REGION_COUNT],
    );
    words[W_REGION_COUNT] = kept;
  }

  #live(): void {
    if (this.#isDisposed) {
      throw new KernelError(
        "UseAfterDispose",
        `Cannot use the page-fault handler at ${hex(this.stateAddr)}: already disposed`,
      );
    }
  }
}

function pageStart(va: VirtAddr): VirtAddr {
  return (va - (va % PAGE_SIZE_4K)) as VirtAddr;
}

function checkRange(action: string, va: VirtAddr, sizeBytes: number): void {
  if (
    Number.isSafeInteger(va) && va >= 0 && va % PAGE_SIZE_4K === 0 &&
    Number.isSafeInteger(sizeBytes) && sizeBytes > 0 && sizeBytes % PAGE_SIZE_4K === 0 &&
    va + sizeBytes <= VIRT_ADDR_LIMIT
  ) {
    return;
  }
  const shown = Number.isSafeInteger(va) && va >= 0 && va < VIRT_ADDR_LIMIT
    ? formatVirtAddr(va)
    : String(va);
  const size = Number.isSafeInteger(sizeBytes) && sizeBytes >= 0
    ? hex(sizeBytes)
    : String(sizeBytes);
  throw new MappingError(
    "InvalidAddress",
    va,
    `Cannot ${action} ${shown}+${size}: not whole 4 KiB pages within the 48-bit space`,
  );
}
