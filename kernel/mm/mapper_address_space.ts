/**
 * A user's {@linkcode PageMapper} as the kernel's {@linkcode AddressSpaceLike}:
 * the four operations come from the mapper; everything else is built on
 * them and on reading the page tables back from RAM in the architectural
 * format (Intel SDM vol. 3A, section 4.5), which every mapper
 * must write because the MMU walks it.
 *
 * - Ownership: `mapPage` maps with software bit 9 ({@linkcode PTE_SW_OWNED})
 *   set, so the entry itself records that it holds one reference to its
 *   frame; `unmap`, `remapPage` and dispose read the bit back and drop the
 *   reference after the mapper has removed the entry (and flushed the TLB).
 * - Ranges: `mapRange` maps page by page and undoes its own work on failure;
 *   `unmapRange` and `protectRange` read the leaves in the range first and
 *   refuse a huge page that sticks out of it, so on error nothing changes.
 * - Reading: `mapping`, `mappings` and `stats` walk the tables from the PML4
 *   with the stock space's walks (`_page_table_walk.ts`), through
 *   `PhysicalMemory.read32`. A non-leaf entry that points outside RAM is
 *   reported as the mapper's fault (`InvalidPart`).
 *
 * @module
 */

import {
  type CpuContext,
  formatVirtAddr,
  hex,
  PAGE_SIZE_4K,
  type PageSizeBytes,
  type PhysAddr,
  type PhysicalMemory,
  PTE_G,
  VIRT_ADDR_LIMIT,
  type VirtAddr,
} from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";
import {
  type AddressSpaceOptions,
  type AddressSpaceStats,
  type Mapping,
  MappingError,
  type MappingOptions,
  type PageFlags,
  PTE_SW_OWNED,
  toPageFlags,
  turnOnPaging,
} from "./address_space.ts";
import {
  activeDisposeError,
  flushAllTranslations,
  useAfterDisposeError,
} from "./_address_space_lifecycle.ts";
import {
  countTables,
  leafAt,
  leavesIn,
  type PageTableReader,
  tableOf,
} from "./_page_table_walk.ts";
import type { FrameProvider } from "./frame_provider.ts";
import { Page } from "./page.ts";
import type {
  AddressSpaceFactory,
  AddressSpaceLike,
  PageMapper,
  PageMapperFactory,
} from "./page_mapper.ts";

/**
 * Wraps a mapper factory as the kernel's address-space factory.
 *
 * @param factory A `--pagetable` module's default export.
 * @returns A factory of {@linkcode MapperAddressSpace}s. The recursive PML4
 *   entry is not supported (a mapper would walk into it): `recursiveIndex`
 *   is refused.
 */
export function mapperAddressSpaceFactory(factory: PageMapperFactory): AddressSpaceFactory {
  return (frames: FrameProvider, cpu: CpuContext, options: AddressSpaceOptions = {}) => {
    if (options.recursiveIndex !== undefined) {
      throw new RangeError("A user's page-table mapper cannot have a recursive PML4 entry");
    }
    return new MapperAddressSpace(factory({ memory: frames.memory, frames, cpu }), frames, cpu);
  };
}

/** An address space whose page tables a {@linkcode PageMapper} edits. */
export class MapperAddressSpace implements AddressSpaceLike {
  /** Physical address of the PML4 (read from the mapper once, at creation). */
  readonly pml4Addr: PhysAddr;
  readonly #mapper: PageMapper;
  readonly #frames: FrameProvider;
  readonly #cpu: CpuContext;
  /** How mapping, mappings and stats read the mapper's tables. */
  readonly #tables: UserTables;
  #isDisposed = false;

  /**
   * Wraps `mapper`.
   *
   * @param mapper The mapper, holding an empty address space.
   * @param frames The frame provider owned pages go back to.
   * @param cpu The CPU (CR3, TLB).
   * @throws {KernelError} `InvalidPart` if the mapper's PML4 is not a frame in RAM.
   */
  constructor(mapper: PageMapper, frames: FrameProvider, cpu: CpuContext) {
    const pml4 = mapper.pml4Addr;
    if (
      !Number.isSafeInteger(pml4) || pml4 % PAGE_SIZE_4K !== 0 ||
      !frames.memory.isRam(pml4, PAGE_SIZE_4K)
    ) {
      throw new KernelError(
        "InvalidPart",
        `Page mapper's pml4Addr ${String(pml4)} is not a 4 KiB frame in RAM`,
      );
    }
    this.pml4Addr = pml4;
    this.#mapper = mapper;
    this.#frames = frames;
    this.#cpu = cpu;
    this.#tables = new UserTables(frames.memory);
  }

  /** Whether CR3 points at this space's PML4. */
  get isActive(): boolean {
    const cr3 = this.#cpu.cr3;
    return cr3 - (cr3 % PAGE_SIZE_4K) === this.pml4Addr;
  }

  /** Whether the space has been disposed. */
  get isDisposed(): boolean {
    return this.#isDisposed;
  }

  /** Loads CR3 with this space. */
  activate(): void {
    this.#live("activate");
    this.#cpu.writeCr3(this.pml4Addr);
  }

  /** Turns 4-level paging on with this space. */
  enablePaging(): void {
    this.#live("enable paging");
    turnOnPaging(this.#cpu, this.pml4Addr);
  }

  /** Maps one page through the mapper; the mapping owns nothing. */
  map(
    va: VirtAddr,
    pa: PhysAddr,
    flags: PageFlags | MappingOptions,
    pageSizeBytes: PageSizeBytes = PAGE_SIZE_4K,
  ): void {
    this.#live("map");
    this.#mapper.map(va, pa, toPageFlags(flags), pageSizeBytes);
  }

  /** Maps a 4 KiB page to `page`'s frame; the entry takes the handle's reference. */
  mapPage(va: VirtAddr, page: Page, flags: PageFlags | MappingOptions): void {
    this.#live("map");
    this.#mapper.map(va, page.physAddr, toPageFlags(flags) | PTE_SW_OWNED, PAGE_SIZE_4K);
    page.intoRaw();
  }

  /** Maps a range page by page; on failure unmaps what it mapped and rethrows. */
  mapRange(
    va: VirtAddr,
    pa: PhysAddr,
    sizeBytes: number,
    flags: PageFlags | MappingOptions,
    pageSizeBytes: PageSizeBytes = PAGE_SIZE_4K,
  ): void {
    this.#live("map");
    const bits = toPageFlags(flags);
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % pageSizeBytes !== 0) {
      throw new MappingError(
        "InvalidAddress",
        va,
        `Cannot map range at ${formatVirtAddr(va)}: size ${String(sizeBytes)} is not a ` +
          `positive multiple of ${hex(pageSizeBytes)}`,
      );
    }
    let mappedBytes = 0;
    try {
      for (; mappedBytes < sizeBytes; mappedBytes += pageSizeBytes) {
        this.#mapper.map(
          (va + mappedBytes) as VirtAddr,
          (pa + mappedBytes) as PhysAddr,
          bits,
          pageSizeBytes,
        );
      }
    } catch (error) {
      for (let done = 0; done < mappedBytes; done += pageSizeBytes) {
        this.#mapper.unmap((va + done) as VirtAddr, pageSizeBytes);
      }
      throw error;
    }
  }

  /** Unmaps one page and drops the reference the entry held, if it owned its frame. */
  unmap(va: VirtAddr, pageSizeBytes: PageSizeBytes = PAGE_SIZE_4K): PhysAddr {
    this.#live("unmap");
    const leaf = this.mapping(va);
    const isOwned = leaf !== undefined && leaf.isOwned && leaf.virtAddr === va &&
      leaf.pageSizeBytes === pageSizeBytes;
    const pa = this.#mapper.unmap(va, pageSizeBytes);
    if (isOwned) this.#release(leaf.physAddr);
    return pa;
  }

  /** Unmaps every page in a range, whatever its size; returns how many. */
  unmapRange(va: VirtAddr, sizeBytes: number): number {
    this.#live("unmap");
    const leaves = this.#leavesWithin("unmap", va, sizeBytes);
    for (const leaf of leaves) this.unmap(leaf.virtAddr, leaf.pageSizeBytes);
    return leaves.length;
  }

  /** Changes one page's permissions, keeping its ownership. */
  protect(
    va: VirtAddr,
    flags: PageFlags | MappingOptions,
    pageSizeBytes: PageSizeBytes = PAGE_SIZE_4K,
  ): void {
    this.#live("protect");
    const bits = toPageFlags(flags);
    const leaf = this.mapping(va);
    const owned = leaf !== undefined && leaf.isOwned ? PTE_SW_OWNED : 0;
    this.#mapper.protect(va, bits | owned, pageSizeBytes);
  }

  /** Changes the permissions of every page in a range; returns how many. */
  protectRange(va: VirtAddr, sizeBytes: number, flags: PageFlags | MappingOptions): number {
    this.#live("protect");
    const bits = toPageFlags(flags);
    const leaves = this.#leavesWithin("protect", va, sizeBytes);
    for (const leaf of leaves) {
      this.#mapper.protect(
        leaf.virtAddr,
        bits | (leaf.isOwned ? PTE_SW_OWNED : 0),
        leaf.pageSizeBytes,
      );
    }
    return leaves.length;
  }

  /** Points the mapped 4 KiB page at `va` to `page`'s frame; returns the old frame's address. */
  remapPage(va: VirtAddr, page: Page, flags: PageFlags | MappingOptions): PhysAddr {
    this.#live("remap");
    const bits = toPageFlags(flags);
    const newPa = page.physAddr;
    const old = this.mapping(va);
    if (old === undefined || old.pageSizeBytes !== PAGE_SIZE_4K) {
      throw new MappingError(
        old === undefined ? "PageNotMapped" : "ParentEntryHugePage",
        va,
        `Cannot remap page ${formatVirtAddr(va)}: no 4 KiB page is mapped there`,
      );
    }
    this.#mapper.unmap(old.virtAddr, PAGE_SIZE_4K);
    try {
      this.#mapper.map(old.virtAddr, newPa, bits | PTE_SW_OWNED, PAGE_SIZE_4K);
    } catch (error) {
      // Put the old entry back so the failure changes nothing.
      this.#mapper.map(
        old.virtAddr,
        old.physAddr,
        old.flags | (old.isOwned ? PTE_SW_OWNED : 0),
        PAGE_SIZE_4K,
      );
      throw error;
    }
    page.intoRaw();
    if (old.isOwned) this.#release(old.physAddr);
    return old.physAddr;
  }

  /** Translates `va` through the mapper. */
  translate(va: VirtAddr): PhysAddr | undefined {
    return this.#mapper.translate(va);
  }

  /** The leaf that maps `va`, read from RAM. */
  mapping(va: VirtAddr): Mapping | undefined {
    if (!Number.isSafeInteger(va) || va < 0 || va >= VIRT_ADDR_LIMIT) return undefined;
    return leafAt(this.#tables, this.pml4Addr / 4, va);
  }

  /** Every leaf mapping part of `[va, va + sizeBytes)`, lowest first. */
  mappings(va: VirtAddr, sizeBytes: number): Mapping[] {
    return leavesIn(this.#tables, this.pml4Addr / 4, va, sizeBytes);
  }

  /** Counts the tables and leaves by reading every table. */
  stats(): AddressSpaceStats {
    return countTables(this.#tables, this.pml4Addr / 4);
  }

  /**
   * Drops the reference every owned leaf holds, has the mapper free its
   * tables, and flushes global translations. Disposing twice is a no-op.
   *
   * @throws {KernelError} `FrameInUse` if the space is active (in CR3).
   */
  [Symbol.dispose](): void {
    if (this.#isDisposed) return;
    if (this.isActive) throw activeDisposeError(this.pml4Addr);
    const leaves = this.mappings(0 as VirtAddr, VIRT_ADDR_LIMIT);
    this.#isDisposed = true;
    this.#mapper[Symbol.dispose]();
    let sawGlobal = false;
    for (const leaf of leaves) {
      if (leaf.isOwned) this.#release(leaf.physAddr);
      if ((leaf.flags & PTE_G) !== 0) sawGlobal = true;
    }
    if (sawGlobal) flushAllTranslations(this.#cpu);
  }

  /** The leaves in a range, refusing one that sticks out of it. */
  #leavesWithin(action: string, va: VirtAddr, sizeBytes: number): Mapping[] {
    if (
      !Number.isSafeInteger(va) || va < 0 || va % PAGE_SIZE_4K !== 0 ||
      !Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % PAGE_SIZE_4K !== 0 ||
      va + sizeBytes > VIRT_ADDR_LIMIT
    ) {
      throw new MappingError(
        "InvalidAddress",
        va,
        `Cannot ${action} range ${String(va)}+${String(sizeBytes)}: not whole 4 KiB pages ` +
          `within the 48-bit space`,
      );
    }
    const leaves = this.mappings(va, sizeBytes);
    for (const leaf of leaves) {
      if (leaf.virtAddr < va || leaf.virtAddr + leaf.pageSizeBytes > va + sizeBytes) {
        throw new MappingError(
          "ParentEntryHugePage",
          leaf.virtAddr,
          `Cannot ${action} range ${formatVirtAddr(va)}..${
            formatVirtAddr((va + sizeBytes) as VirtAddr)
          }: the ${hex(leaf.pageSizeBytes)}-byte page at ${
            formatVirtAddr(leaf.virtAddr)
          } sticks out of it`,
        );
      }
    }
    return leaves;
  }

  #release(pa: PhysAddr): void {
    Page.fromRaw(this.#frames, pa)[Symbol.dispose]();
  }

  #live(action: string): void {
    if (this.#isDisposed) throw useAfterDisposeError(action, this.pml4Addr);
  }
}

/**
 * How the wrapper reads a user's tables: the mapper wrote them, so every
 * entry is read through `PhysicalMemory.read32` and every link is checked to
 * point into RAM before it is followed. No link is skipped: the wrapper
 * refuses a recursive entry, and every table is the mapper's own.
 */
class UserTables implements PageTableReader {
  readonly skippedLinkBits = 0;
  readonly #memory: PhysicalMemory;

  constructor(memory: PhysicalMemory) {
    this.#memory = memory;
  }

  readLow(entryWord: number): number {
    return this.#memory.read32((entryWord * 4) as PhysAddr);
  }

  readHigh(entryWord: number): number {
    return this.#memory.read32((entryWord * 4 + 4) as PhysAddr);
  }

  /** @throws {KernelError} `InvalidPart` if the table is not in RAM. */
  followLink(low: number, high: number, entryWord: number): number {
    const table = tableOf(low, high);
    if (!this.#memory.isRam(table, PAGE_SIZE_4K)) {
      throw new KernelError(
        "InvalidPart",
        `Page table entry at ${hex(entryWord * 4)} points to ${hex(table)}, outside RAM`,
      );
    }
    return table / 4;
  }
}
