/**
 * The page-table mapper as a replaceable part.
 *
 * - {@linkcode PageMapper} is the part a user writes for `--pagetable`: the
 *   four operations on one tree of x86-64 4-level page tables in RAM (map,
 *   unmap, protect, translate, for 4 KiB, 2 MiB and 1 GiB pages), its root
 *   and its disposal. {@linkcode PageMapperFactory} is the module's default
 *   export: it creates one empty address space each time it is called.
 * - {@linkcode AddressSpaceLike} is what the kernel uses (the kernel's own
 *   space, the page-fault policy, the self-tests, the monitor): the mapper's
 *   operations plus range operations, ownership of `Page` frames, and
 *   reading entries back. The stock {@linkcode AddressSpace} is both; a
 *   user's mapper is wrapped in a `MapperAddressSpace`, which reads the
 *   entries back from RAM in the architectural format, so everything the
 *   kernel needs beyond the four operations comes for free.
 *
 * The contract, with each method's errors and TLB obligations, is in
 * `docs/sdk.md`.
 *
 * @module
 */

import type {
  CpuContext,
  PageSizeBytes,
  PhysAddr,
  PhysicalMemory,
  VirtAddr,
} from "../../hal/mod.ts";
import {
  AddressSpace,
  type AddressSpaceOptions,
  type AddressSpaceStats,
  type Mapping,
  type MappingOptions,
  type PageFlags,
} from "./address_space.ts";
import type { FrameProvider } from "./frame_provider.ts";
import type { Page } from "./page.ts";

/**
 * One tree of page tables: a PML4 and the tables below it, in frames from
 * the frame provider, in the exact format the MMU walks.
 *
 * `flags` are the leaf's permission bits as a {@linkcode PageFlags} value:
 * bits 1 to 4 (RW, US, PWT, PCD), bit 8 (G) and the software bits 9 to 11
 * go into the entry's low word unchanged (the kernel keeps facts such as
 * "this entry owns its frame" in bits 9 and 10); `PAGE_NO_EXECUTE` (bit 12
 * of `flags`) is the entry's bit 63. The mapper sets P, and PS for 2 MiB and
 * 1 GiB pages; A and D start clear.
 */
export interface PageMapper extends Disposable {
  /** Physical address of the PML4: the value CR3 holds while this space is active. */
  readonly pml4Addr: PhysAddr;
  /**
   * Maps the page of `pageSizeBytes` at `va` to the frame at `pa`, creating
   * the tables on the way (zeroed frames from the provider). A new mapping
   * over a not-present entry needs no TLB invalidation.
   *
   * @throws {MappingError} `PageAlreadyMapped` if a page is mapped there;
   *   `ParentEntryHugePage` if a larger page covers `va`;
   *   `FrameAllocationFailed` if a table cannot be allocated (tables the
   *   call created are freed again); `InvalidAddress` for a misaligned `va`
   *   or `pa`, or `va` at or above 2^48.
   */
  map(va: VirtAddr, pa: PhysAddr, flags: PageFlags, pageSizeBytes: PageSizeBytes): void;
  /**
   * Removes the mapping of the page of `pageSizeBytes` at `va`, invalidates
   * it in the TLB (INVLPG) when this space is active or the page was global,
   * and frees the tables the removal leaves empty.
   *
   * @returns The physical address of the frame it mapped.
   * @throws {MappingError} `PageNotMapped` if no page of that size is mapped
   *   there; `ParentEntryHugePage` if a larger page covers `va`;
   *   `InvalidAddress` for a misaligned `va`.
   */
  unmap(va: VirtAddr, pageSizeBytes: PageSizeBytes): PhysAddr;
  /**
   * Replaces the permission bits of the page of `pageSizeBytes` at `va` with
   * `flags`, keeping the frame, PS, A and D, and invalidates it in the TLB
   * when this space is active or the page was or becomes global.
   *
   * @throws {MappingError} As `unmap`.
   */
  protect(va: VirtAddr, flags: PageFlags, pageSizeBytes: PageSizeBytes): void;
  /**
   * Translates `va` by walking the tables in RAM (not the TLB), ignoring
   * permissions.
   *
   * @returns The physical address `va` maps to, or undefined.
   */
  translate(va: VirtAddr): PhysAddr | undefined;
  /**
   * Frees every page table, the PML4 last. The frames that leaves map are
   * not the mapper's to free. The kernel never disposes an active space.
   */
  [Symbol.dispose](): void;
}

/** What a {@linkcode PageMapperFactory} is given for each new address space. */
export interface PageMapperEnv {
  /** The RAM the tables live in. */
  readonly memory: PhysicalMemory;
  /** Where every table frame comes from and goes back to. */
  readonly frames: FrameProvider;
  /** The CPU: CR3 tells whether the space is active, `invlpg` invalidates. */
  readonly cpu: CpuContext;
}

/**
 * The default export of a `--pagetable` module: creates one empty address
 * space (a zeroed PML4). Called for the kernel's space at boot and for every
 * other space (self-tests, monitor, processes).
 *
 * @throws {MappingError} `FrameAllocationFailed` if no frame is free for the PML4.
 */
export type PageMapperFactory = (env: PageMapperEnv) => PageMapper;

/**
 * An address space as the kernel uses it: the mapper's operations (taking
 * flags as {@linkcode MappingOptions} too) plus the operations built on them.
 * The method documentation is on {@linkcode AddressSpace}.
 */
export interface AddressSpaceLike extends PageMapper {
  /** Whether CR3 points at this space's PML4. */
  readonly isActive: boolean;
  /** Whether the space has been disposed. */
  readonly isDisposed: boolean;
  /** Loads CR3 with this space. */
  activate(): void;
  /** Turns 4-level paging on with this space (EFER, CR4, CR3, CR0). */
  enablePaging(): void;
  /** Maps one page (see {@linkcode PageMapper.map}). */
  map(
    va: VirtAddr,
    pa: PhysAddr,
    flags: PageFlags | MappingOptions,
    pageSizeBytes?: PageSizeBytes,
  ): void;
  /** Unmaps one page, dropping the reference an owned page holds. */
  unmap(va: VirtAddr, pageSizeBytes?: PageSizeBytes): PhysAddr;
  /** Changes one page's permissions. */
  protect(va: VirtAddr, flags: PageFlags | MappingOptions, pageSizeBytes?: PageSizeBytes): void;
  /** Maps a 4 KiB page to `page`'s frame, taking the handle's reference. */
  mapPage(va: VirtAddr, page: Page, flags: PageFlags | MappingOptions): void;
  /** Maps a range with pages of one size; all or nothing. */
  mapRange(
    va: VirtAddr,
    pa: PhysAddr,
    sizeBytes: number,
    flags: PageFlags | MappingOptions,
    pageSizeBytes?: PageSizeBytes,
  ): void;
  /** Unmaps every page in a range; returns how many. */
  unmapRange(va: VirtAddr, sizeBytes: number): number;
  /** Changes the permissions of every page in a range; returns how many. */
  protectRange(va: VirtAddr, sizeBytes: number, flags: PageFlags | MappingOptions): number;
  /** Points a mapped 4 KiB page at `page`'s frame; returns the old frame's address. */
  remapPage(va: VirtAddr, page: Page, flags: PageFlags | MappingOptions): PhysAddr;
  /** The leaf that maps `va`, read from RAM. */
  mapping(va: VirtAddr): Mapping | undefined;
  /** Every leaf mapping part of a range, lowest first. */
  mappings(va: VirtAddr, sizeBytes: number): Mapping[];
  /** Counts tables and leaves by reading every table. */
  stats(): AddressSpaceStats;
}

/**
 * Creates an empty address space as the kernel uses it;
 * {@linkcode AddressSpace.create} is the stock one.
 */
export type AddressSpaceFactory = (
  frames: FrameProvider,
  cpu: CpuContext,
  options?: AddressSpaceOptions,
) => AddressSpaceLike;

/** The stock mapper: {@linkcode AddressSpace}. */
export const createStockPageMapper: PageMapperFactory = (env): AddressSpace =>
  AddressSpace.create(env.frames, env.cpu);

/** The stock address-space factory: {@linkcode AddressSpace.create}. */
export const createStockAddressSpace: AddressSpaceFactory = (
  frames,
  cpu,
  options,
): AddressSpace => AddressSpace.create(frames, cpu, options);
