/**
 * The kernel's own address space, built at boot, and the switch to paging.
 *
 * ```
 * Virtual (canonical)                       Maps                            Pages
 * ----------------------------------------  ------------------------------  -------------------
 * 0x0000000000000000 .. 0x00007fffffffffff  nothing: a null dereference,    -
 *                                           or any lower-half access, faults
 * 0xffff800000000000 + pa                   the direct map: every RAM range  1 GiB where aligned,
 *                                           of the memory map (holes stay    else 2 MiB, else
 *                                           unmapped); RW, NX, global        4 KiB
 * (same)                                    the kmem heap: its addresses are -
 *                                           direct-map addresses
 * 0xffffff0000000000 .. 0xffffff7fffffffff  PML4[510]: the recursive entry;  -
 *                                           every page table appears here
 * 0xffffffff80000000 + pa                   the kernel image (1 MiB ..),     4 KiB
 *                                           read-only, executable, global
 * ```
 *
 * The direct map starts at 2^47, the first higher-half address, so it can
 * cover the 68 GiB the simulator backs and far more. The kernel image is
 * mapped at -2 GiB plus its physical address, as Linux's `__START_KERNEL_map`
 * (so code can use the `-mcmodel=kernel` 32-bit sign-extended addresses).
 * The recursive entry is at 510, as xomb does, not 511 where the image is.
 *
 * There is no identity map, not even for the switch: a real kernel needs the
 * instructions after `mov cr0` mapped at their physical address, but this
 * kernel's code runs as TypeScript and fetches nothing through the MMU, so
 * nothing is mapped in the lower half and virtual 0 faults from the first
 * instruction on. Physical structures (boot information, page tables, frame
 * metadata) are reached at direct-map addresses once paging is on.
 *
 * @module
 */

import {
  alignDown,
  alignUp,
  type CpuContext,
  formatVirtAddr,
  hex,
  HIGHER_HALF_START,
  type Mmu,
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  type PageSizeBytes,
  type PhysAddr,
  type VirtAddr,
} from "../../hal/mod.ts";
import {
  AddressSpace,
  formatPageFlags,
  PAGE_GLOBAL,
  PAGE_NO_EXECUTE,
  PAGE_WRITABLE,
  type PageFlags,
} from "./address_space.ts";
import type { PhysRange } from "./early_allocator.ts";
import type { FrameProvider } from "./frame_provider.ts";
import type { AddressSpaceFactory, AddressSpaceLike } from "./page_mapper.ts";

/** Where the direct map of physical memory starts: 0xffff800000000000 (2^47 as 48 bits). */
export const DIRECT_MAP_BASE = HIGHER_HALF_START as VirtAddr;
/** Where physical address 0 would be in the kernel-image mapping: 0xffffffff80000000. */
export const KERNEL_IMAGE_MAP_BASE = (2 ** 48 - 2 ** 31) as VirtAddr;
/** The PML4 slot of the recursive entry (xomb's choice; 511 holds the kernel image). */
export const RECURSIVE_PML4_INDEX = 510;
/** First virtual address of the recursive mapping: 0xffffff0000000000. */
export const RECURSIVE_MAP_BASE = (RECURSIVE_PML4_INDEX * 2 ** 39) as VirtAddr;
/** The direct map's permissions: read-write data, never executable, global. */
export const DIRECT_MAP_FLAGS: PageFlags = PAGE_WRITABLE | PAGE_NO_EXECUTE | PAGE_GLOBAL;
/** The kernel image's permissions: read-only, executable, global. */
export const KERNEL_IMAGE_FLAGS: PageFlags = PAGE_GLOBAL;

/** Memory-map types backed by RAM: available (1), ACPI reclaimable (3), ACPI NVS (4). */
const RAM_TYPES: readonly number[] = [1, 3, 4];

/** One memory-map region, as the multiboot2 parser reports it. */
export interface MemoryMapRegion {
  /** First byte. */
  readonly base: number;
  /** Length in bytes. */
  readonly length: number;
  /** 1 available, 3 ACPI reclaimable, 4 NVS, 5 bad RAM, anything else reserved. */
  readonly type: number;
}

/** How to build the kernel's address space. */
export interface KernelAddressSpaceOptions {
  /** The firmware memory map: its RAM regions (types 1, 3, 4) get the direct map. */
  readonly memoryMap: readonly MemoryMapRegion[];
  /** Where the boot loader put the kernel image. */
  readonly kernelImage: PhysRange;
  /** Install the recursive entry at PML4[510] (default true). */
  readonly recursiveMapping?: boolean;
  /** Creates the address space (default {@linkcode AddressSpace.create}); a user's mapper plugs in here. */
  readonly createAddressSpace?: AddressSpaceFactory;
}

/** One mapped region of the kernel's address space, for the boot log. */
export interface KernelRegion {
  /** `direct map` or `kernel image`. */
  readonly name: string;
  /** First virtual address. */
  readonly virtStart: VirtAddr;
  /** First physical address. */
  readonly physStart: PhysAddr;
  /** Length in bytes. */
  readonly sizeBytes: number;
  /** Permissions. */
  readonly flags: PageFlags;
  /** 1 GiB pages used. */
  readonly pages1G: number;
  /** 2 MiB pages used. */
  readonly pages2M: number;
  /** 4 KiB pages used. */
  readonly pages4K: number;
}

/** The `paging` section of `--report json`. */
export interface PagingReport {
  /** The direct map's base in canonical hex: `0xffff800000000000`. */
  readonly directMapBase: string;
  /** Paging structures of the kernel's address space, the PML4 included. */
  readonly pageTableFrames: number;
  /** The CPU's TLB counters. */
  readonly tlb: { readonly hits: number; readonly misses: number; readonly flushes: number };
  /** Page faults the MMU raised, handled or not. */
  readonly pageFaults: number;
}

/**
 * The direct-map address of a physical address.
 *
 * @param pa A physical address.
 * @returns 0xffff800000000000 + pa, in 48-bit form.
 *
 * @example
 * ```ts
 * import type { PhysAddr } from "../../hal/mod.ts";
 * import { directMapAddr } from "./kernel_address_space.ts";
 * directMapAddr(0x1000 as PhysAddr); // 0x800000001000, printed 0xffff800000001000
 * ```
 */
export function directMapAddr(pa: PhysAddr): VirtAddr {
  return (DIRECT_MAP_BASE + pa) as VirtAddr;
}

/**
 * The RAM ranges the direct map covers: the memory map's RAM regions
 * (available, ACPI reclaimable, NVS) rounded inward to whole 4 KiB frames,
 * sorted, with overlapping and adjacent ones merged.
 *
 * @param memoryMap The firmware memory map, in any order.
 * @returns Disjoint, non-adjacent ranges, lowest first.
 */
export function directMapRanges(memoryMap: readonly MemoryMapRegion[]): PhysRange[] {
  const ranges = memoryMap
    .filter((region) => RAM_TYPES.includes(region.type))
    .map((region) => ({
      start: alignUp(region.base, PAGE_SIZE_4K),
      end: alignDown(region.base + region.length, PAGE_SIZE_4K),
    }))
    .filter((range) => range.end > range.start)
    .sort((a, b) => a.start - b.start);
  const merged: { start: number; end: number }[] = [];
  for (const range of ranges) {
    const last = merged.at(-1);
    if (last !== undefined && range.start <= last.end) last.end = Math.max(last.end, range.end);
    else merged.push({ ...range });
  }
  return merged.map(({ start, end }) => ({ base: start, length: end - start }));
}

/** The kernel's address space and what it maps. */
export class KernelAddressSpace {
  /** The page tables. */
  readonly addressSpace: AddressSpaceLike;
  /** The mapped regions: the direct map (one per RAM range), then the kernel image. */
  readonly regions: readonly KernelRegion[];
  /** Whether PML4[510] points at the PML4. */
  readonly hasRecursiveMapping: boolean;

  private constructor(
    addressSpace: AddressSpaceLike,
    regions: readonly KernelRegion[],
    hasRecursiveMapping: boolean,
  ) {
    this.addressSpace = addressSpace;
    this.regions = regions;
    this.hasRecursiveMapping = hasRecursiveMapping;
  }

  /**
   * Builds the kernel's page tables in frames from the frame allocator: the
   * direct map of every RAM range with the largest pages alignment allows,
   * the kernel image at -2 GiB + its physical address with 4 KiB pages, and
   * the recursive entry. Paging stays off until {@linkcode enablePaging}.
   *
   * @param frames The frame allocator.
   * @param cpu The CPU that will run on it.
   * @param options The memory map, the kernel image's range, the recursive entry.
   * @returns The kernel's address space.
   * @throws {MappingError} `FrameAllocationFailed` if the tables do not fit.
   */
  static build(
    frames: FrameProvider,
    cpu: CpuContext,
    options: KernelAddressSpaceOptions,
  ): KernelAddressSpace {
    const hasRecursiveMapping = options.recursiveMapping ?? true;
    const space = (options.createAddressSpace ?? AddressSpace.create)(
      frames,
      cpu,
      hasRecursiveMapping ? { recursiveIndex: RECURSIVE_PML4_INDEX } : {},
    );
    const regions: KernelRegion[] = [];
    for (const range of directMapRanges(options.memoryMap)) {
      regions.push(mapLargest(space, "direct map", range.base, range.length, DIRECT_MAP_FLAGS));
    }
    const imageStart = alignDown(options.kernelImage.base, PAGE_SIZE_4K);
    const imageEnd = alignUp(options.kernelImage.base + options.kernelImage.length, PAGE_SIZE_4K);
    if (imageEnd > imageStart) {
      space.mapRange(
        (KERNEL_IMAGE_MAP_BASE + imageStart) as VirtAddr,
        imageStart as PhysAddr,
        imageEnd - imageStart,
        KERNEL_IMAGE_FLAGS,
      );
      regions.push({
        name: "kernel image",
        virtStart: (KERNEL_IMAGE_MAP_BASE + imageStart) as VirtAddr,
        physStart: imageStart as PhysAddr,
        sizeBytes: imageEnd - imageStart,
        flags: KERNEL_IMAGE_FLAGS,
        pages1G: 0,
        pages2M: 0,
        pages4K: (imageEnd - imageStart) / PAGE_SIZE_4K,
      });
    }
    return new KernelAddressSpace(space, regions, hasRecursiveMapping);
  }

  /** Turns paging on with the kernel's address space ({@linkcode AddressSpace.enablePaging}). */
  enablePaging(): void {
    this.addressSpace.enablePaging();
  }

  /**
   * The layout for the boot log, one line per region, e.g.
   * `direct map   0xffff800000000000..0xffff800100000000 -> 0x0..0x100000000 (4 x 1 GiB, 0 x 2 MiB, 0 x 4 KiB) RW NX G`.
   *
   * @returns The lines in virtual address order: the empty lower half, the
   *   direct map and the heap in it, the recursive mapping, the kernel image.
   */
  layoutLines(): string[] {
    const lines = ["null page    0x0..0x7fffffffffff unmapped (no identity map)"];
    const directMap = this.regions.filter((region) => region.name === "direct map");
    const others = this.regions.filter((region) => region.name !== "direct map");
    for (const region of directMap) lines.push(formatRegion(region));
    lines.push(
      `heap         ${formatVirtAddr(DIRECT_MAP_BASE)} + physical address ` +
        `(kmem heap addresses are direct-map addresses)`,
    );
    if (this.hasRecursiveMapping) {
      const end = (RECURSIVE_MAP_BASE + 2 ** 39) as VirtAddr;
      lines.push(
        `page tables  ${formatVirtAddr(RECURSIVE_MAP_BASE)}..${formatVirtAddr(end)} -> ` +
          `PML4 ${hex(this.addressSpace.pml4Addr)} (recursive entry PML4[${RECURSIVE_PML4_INDEX}])`,
      );
    }
    for (const region of others) lines.push(formatRegion(region));
    return lines;
  }

  /**
   * The `paging` section of `--report json`, read from the page tables, the
   * TLB and the MMU.
   *
   * @param mmu The MMU (for its fault count and TLB).
   * @returns The report section.
   */
  pagingReport(mmu: Mmu): PagingReport {
    const { hits, misses, flushes } = mmu.tlb.stats;
    return {
      directMapBase: formatVirtAddr(DIRECT_MAP_BASE),
      pageTableFrames: this.addressSpace.stats().pageTableFrames,
      tlb: { hits, misses, flushes },
      pageFaults: mmu.pageFaults,
    };
  }
}

/** One layout line: name, virtual and physical ranges, page counts, permissions. */
function formatRegion(region: KernelRegion): string {
  const virtEnd = (region.virtStart + region.sizeBytes) as VirtAddr;
  return `${region.name.padEnd(12)} ${formatVirtAddr(region.virtStart)}..${
    formatVirtAddr(virtEnd)
  } -> ${hex(region.physStart)}..${hex(region.physStart + region.sizeBytes)} ` +
    `(${region.pages1G} x 1 GiB, ${region.pages2M} x 2 MiB, ${region.pages4K} x 4 KiB) ` +
    formatPageFlags(region.flags);
}

/**
 * Maps [base, base + length) at DIRECT_MAP_BASE + base with the largest page
 * each position's alignment and the remaining length allow, one range
 * operation per run of equal pages.
 */
function mapLargest(
  space: AddressSpaceLike,
  name: string,
  base: number,
  length: number,
  flags: PageFlags,
): KernelRegion {
  const counts = { [PAGE_SIZE_4K]: 0, [PAGE_SIZE_2M]: 0, [PAGE_SIZE_1G]: 0 };
  const end = base + length;
  for (let pa = base; pa < end;) {
    const size: PageSizeBytes = pa % PAGE_SIZE_1G === 0 && pa + PAGE_SIZE_1G <= end
      ? PAGE_SIZE_1G
      : pa % PAGE_SIZE_2M === 0 && pa + PAGE_SIZE_2M <= end
      ? PAGE_SIZE_2M
      : PAGE_SIZE_4K;
    // A run of one size ends where the next larger size could start, or at the end.
    const runEnd = size === PAGE_SIZE_1G
      ? alignDown(end, PAGE_SIZE_1G)
      : size === PAGE_SIZE_2M
      ? Math.min(alignDown(end, PAGE_SIZE_2M), alignDown(pa, PAGE_SIZE_1G) + PAGE_SIZE_1G)
      : Math.min(end, alignDown(pa, PAGE_SIZE_2M) + PAGE_SIZE_2M);
    space.mapRange(directMapAddr(pa as PhysAddr), pa as PhysAddr, runEnd - pa, flags, size);
    counts[size] += (runEnd - pa) / size;
    pa = runEnd;
  }
  return {
    name,
    virtStart: directMapAddr(base as PhysAddr),
    physStart: base as PhysAddr,
    sizeBytes: length,
    flags,
    pages1G: counts[PAGE_SIZE_1G],
    pages2M: counts[PAGE_SIZE_2M],
    pages4K: counts[PAGE_SIZE_4K],
  };
}
