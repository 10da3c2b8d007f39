/**
 * The page-fault policy as a replaceable part: what the kernel does on a
 * #PF (demand-zero pages in lazy regions, copy-on-write sharing between
 * address spaces), as the {@linkcode PageFaultPolicy} interface, and the
 * factory a `--faults` module's default export must be. The stock
 * {@linkcode KernelPageFaultHandler} is one provider.
 *
 * The kernel installs the policy as the MMU's #PF handler
 * (`mmu.setPageFaultHandler((fault) => policy.handle(fault))`). A policy
 * keeps its lazy regions and counters in RAM and marks copy-on-write in the
 * page tables (`PAGE_COPY_ON_WRITE`, R/W clear, the frame's reference count
 * = the number of mappings). The contract is in `docs/sdk.md`.
 *
 * @module
 */

import type {
  CpuContext,
  Mmu,
  PageFault,
  PageFaultResolution,
  PhysAddr,
  PhysicalMemory,
  VirtAddr,
} from "../../hal/mod.ts";
import type { MappingOptions, PageFlags } from "./address_space.ts";
import type { FrameProvider } from "./frame_provider.ts";
import type { AddressSpaceLike } from "./page_mapper.ts";
import {
  KernelPageFaultHandler,
  type LazyRegion,
  type PageFaultCounts,
  type PageFaultObserver,
} from "./page_fault_handler.ts";

/** What the kernel does on a page fault. */
export interface PageFaultPolicy extends Disposable {
  /** Counts of faults by outcome, read from RAM. */
  readonly counts: PageFaultCounts;
  /**
   * Handles one fault (the MMU calls it, with CR2 and the error code; CR3
   * names the faulting address space).
   *
   * @returns `"retry"` when the cause is fixed (the access is retried).
   * @throws {UnhandledPageFault} For a fault it cannot fix: the kernel panics
   *   (or the monitor prints it).
   * @throws {KernelError} `OutOfMemory` / {@linkcode MappingError}
   *   `FrameAllocationFailed` if no frame is free; nothing stays allocated.
   */
  handle(fault: PageFault): PageFaultResolution;
  /** Lets the policy resolve faults in `space` (identified by its PML4 address). */
  attach(space: AddressSpaceLike): void;
  /** Forgets `space` and its lazy regions (called before the space is disposed). */
  detach(space: AddressSpaceLike): void;
  /**
   * Declares `[va, va + sizeBytes)` of `space` lazy: a not-present fault in it
   * maps a zeroed 4 KiB frame owned by the space, with `flags`.
   *
   * @throws {MappingError} `InvalidAddress` if the range is not whole pages
   *   below 2^48 or overlaps another lazy region of the space.
   * @throws {KernelError} `OutOfMemory` if the policy's region table is full.
   */
  declareLazy(
    space: AddressSpaceLike,
    va: VirtAddr,
    sizeBytes: number,
    flags: PageFlags | MappingOptions,
  ): void;
  /**
   * Shares every page of `src` in a range with `dst` at the same addresses,
   * copy-on-write (as `fork`): writable pages become read-only and
   * `PAGE_COPY_ON_WRITE` in both, each frame gains one reference. A write
   * fault then gives the writer a copy, or, for the last reference, makes
   * the page writable again.
   *
   * @returns How many pages were shared.
   * @throws {MappingError} `InvalidAddress` for a misaligned range or a page
   *   that is huge or not owned; `PageAlreadyMapped` if `dst` maps something
   *   in the range (both checked before anything changes).
   */
  shareCopyOnWrite(
    src: AddressSpaceLike,
    dst: AddressSpaceLike,
    va: VirtAddr,
    sizeBytes: number,
  ): number;
  /** The lazy regions (read from RAM), of `space` or of every space, in table order. */
  lazyRegions(space?: AddressSpaceLike): LazyRegion[];
  /** Optional: physical address of the policy's state frame, for reports. */
  readonly stateAddr?: PhysAddr;
  /**
   * Optional: receives one event per fault handled (the monitor narrates
   * them), or with `undefined` stops.
   */
  setObserver?(observer: PageFaultObserver | undefined): void;
}

/** What a {@linkcode PageFaultPolicyFactory} is given at boot. */
export interface PageFaultPolicyEnv {
  /** The machine's RAM. */
  readonly memory: PhysicalMemory;
  /** Where demand-zero pages, copies and the policy's own state come from. */
  readonly frames: FrameProvider;
  /** The MMU whose faults it handles (the kernel installs the handler). */
  readonly mmu: Mmu;
  /** The CPU whose CR3 names the faulting address space. */
  readonly cpu: CpuContext;
}

/** The default export of a `--faults` module: builds the policy once, at boot. */
export type PageFaultPolicyFactory = (env: PageFaultPolicyEnv) => PageFaultPolicy;

/** The stock policy: {@linkcode KernelPageFaultHandler}. */
export const createStockPageFaultPolicy: PageFaultPolicyFactory = (env): KernelPageFaultHandler =>
  KernelPageFaultHandler.install(env.mmu, env.cpu, env.frames);
