/**
 * The kernel's MMIO window: where it maps device registers into its address
 * space (Linux's `ioremap` and fixmap), so drivers reach them only through
 * virtual addresses, the MMU and the bus, as on hardware.
 *
 * ```
 * 0xffffffffff000000 .. 0xffffffffff7fffff   device register pages, 4 KiB each,
 *                                             RW NX G PCD PWT (uncached, PAT entry 3)
 * ```
 *
 * Every page is mapped with caching disabled (PCD and PWT: the UC memory
 * type with the reset PAT), which device registers need: a cached register
 * read would return a stale value. The MMU reports any MMIO page mapped
 * otherwise (docs/apic.md, "MMIO and caching").
 *
 * @module
 */

import {
  alignDown,
  alignUp,
  formatVirtAddr,
  hex,
  type Mmu,
  PAGE_SIZE_4K,
  type PhysAddr,
  type VirtAddr,
} from "../../hal/mod.ts";
import { type AddressSpaceLike, type PageFlags, pageFlags } from "../mm/mod.ts";

/** First virtual address of the window: the top 16 MiB of the address space. */
export const MMIO_WINDOW_BASE = (2 ** 48 - 2 ** 24) as VirtAddr;
/** Bytes of virtual space the window offers. */
export const MMIO_WINDOW_BYTES = 8 * 2 ** 20;
/** How device registers are mapped: writable, never executable, global, uncached. */
export const MMIO_PAGE_FLAGS: PageFlags = pageFlags({
  writable: true,
  global: true,
  cacheDisabled: true,
  writeThrough: true,
});

/** A mapped register block: 32-bit accesses at offsets from its start, through the MMU. */
export class MmioRegion {
  /** What the registers belong to, e.g. `local APIC`. */
  readonly name: string;
  /** Physical address of the first register. */
  readonly physAddr: PhysAddr;
  /** Virtual address of the first register. */
  readonly virtAddr: VirtAddr;
  /** Bytes of register space. */
  readonly sizeBytes: number;
  readonly #mmu: Mmu;

  /** Wraps registers already mapped at `virtAddr`. */
  constructor(mmu: Mmu, name: string, physAddr: PhysAddr, virtAddr: VirtAddr, sizeBytes: number) {
    this.#mmu = mmu;
    this.name = name;
    this.physAddr = physAddr;
    this.virtAddr = virtAddr;
    this.sizeBytes = sizeBytes;
  }

  /** Reads the 32-bit register at `offsetBytes` (a load through the MMU). */
  read32(offsetBytes: number): number {
    return this.#mmu.readVirt32((this.virtAddr + offsetBytes) as VirtAddr);
  }

  /** Writes the 32-bit register at `offsetBytes` (a store through the MMU). */
  write32(offsetBytes: number, value: number): void {
    this.#mmu.writeVirt32((this.virtAddr + offsetBytes) as VirtAddr, value);
  }
}

/** Maps device registers into the kernel's MMIO window. */
export class MmioWindow {
  readonly #space: AddressSpaceLike;
  readonly #mmu: Mmu;
  readonly #regions: MmioRegion[] = [];
  #nextVa = MMIO_WINDOW_BASE as number;

  /** A window in `space`, accessed through `mmu`. */
  constructor(space: AddressSpaceLike, mmu: Mmu) {
    this.#space = space;
    this.#mmu = mmu;
  }

  /** The regions mapped so far. */
  get regions(): readonly MmioRegion[] {
    return this.#regions;
  }

  /**
   * Maps the pages holding [physAddr, physAddr + sizeBytes) uncached at the
   * next free addresses of the window.
   *
   * @returns The region; its virtual address keeps `physAddr`'s page offset.
   * @throws {RangeError} When the window is full.
   * @throws {MappingError} If the page tables cannot be extended.
   */
  map(name: string, physAddr: PhysAddr, sizeBytes: number): MmioRegion {
    const firstPage = alignDown(physAddr, PAGE_SIZE_4K);
    const spanBytes = alignUp(physAddr + sizeBytes, PAGE_SIZE_4K) - firstPage;
    if (this.#nextVa + spanBytes > MMIO_WINDOW_BASE + MMIO_WINDOW_BYTES) {
      throw new RangeError(
        `Cannot map ${name} at ${hex(physAddr)}: the MMIO window at ` +
          `${formatVirtAddr(MMIO_WINDOW_BASE)} is full`,
      );
    }
    const va = this.#nextVa as VirtAddr;
    this.#space.mapRange(va, firstPage as PhysAddr, spanBytes, MMIO_PAGE_FLAGS);
    this.#nextVa += spanBytes;
    const region = new MmioRegion(
      this.#mmu,
      name,
      physAddr,
      (va + (physAddr - firstPage)) as VirtAddr,
      sizeBytes,
    );
    this.#regions.push(region);
    return region;
  }
}
