/**
 * Address spaces on several CPUs (docs/smp.md, "Address spaces"): one CPU's
 * handle to a space, with the space's spinlock held around every operation
 * and its invalidations turned into TLB shootdowns. Each space has a slot in
 * the SMP area's registry: its PML4, its spinlock, and the mask of the CPUs
 * that have it loaded (set when a CPU loads it into CR3, cleared when it
 * switches away), which is whom a shootdown for one of its pages goes to.
 *
 * ```
 * registry slot (64 bytes): [0] PML4 low  [1] PML4 high (0 and 0: free)
 *                           [2] CPU mask  [8..15] the space's spinlock
 * ```
 *
 * @module
 */

import {
  hex,
  PAGE_SIZE_4K,
  type PageSizeBytes,
  type PhysAddr,
  type VirtAddr,
} from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";
import {
  AddressSpace,
  type AddressSpaceFactory,
  type AddressSpaceLike,
  type AddressSpaceOptions,
  type AddressSpaceStats,
  type FrameProvider,
  type Mapping,
  type MappingOptions,
  type Page,
  type PageFlags,
  type TlbShootdownHook,
} from "../mm/mod.ts";
import { R_CPU_MASK, R_LOCK, R_PML4_HI, R_PML4_LO, REGISTRY_SLOTS } from "./smp_area.ts";
import type { SmpCpu } from "./smp_cpu.ts";
import type { SpinLock } from "./spinlock.ts";
import type { TlbShootdown } from "./tlb_shootdown.ts";

/** One CPU's handle to an address space; see the module documentation. */
export class SmpAddressSpace implements AddressSpaceLike {
  readonly #space: AddressSpace;
  readonly #smp: SmpCpu;
  readonly #slotWord: number;
  readonly #lock: SpinLock;

  private constructor(space: AddressSpace, smp: SmpCpu, slotWord: number) {
    this.#space = space;
    this.#smp = smp;
    this.#slotWord = slotWord;
    this.#lock = smp.spinLock(slotWord + R_LOCK, `address space ${hex(space.pml4Addr)}`);
  }

  /**
   * Creates an address space ({@linkcode AddressSpace.create}) and registers
   * it, so every CPU can use it.
   *
   * @throws {KernelError} `OutOfMemory` if the registry is full.
   * @throws {MappingError} As {@linkcode AddressSpace.create}.
   */
  static create(
    smp: SmpCpu,
    shootdown: TlbShootdown,
    frames: FrameProvider,
    options: AddressSpaceOptions = {},
  ): SmpAddressSpace {
    const hook = new ShootdownHook(smp, shootdown);
    const space = AddressSpace.create(frames, smp.cpu, { ...options, shootdown: hook });
    let slotWord: number;
    try {
      slotWord = registerSpace(smp, space.pml4Addr);
    } catch (error) {
      space[Symbol.dispose]();
      throw error;
    }
    hook.slotWord = slotWord;
    return new SmpAddressSpace(space, smp, slotWord);
  }

  /**
   * This CPU's handle to an address space another CPU created.
   *
   * @throws {KernelError} `InvalidAddress` if no registered space has that PML4.
   */
  static attach(
    smp: SmpCpu,
    shootdown: TlbShootdown,
    frames: FrameProvider,
    pml4Addr: PhysAddr,
  ): SmpAddressSpace {
    const slotWord = findSpace(smp, pml4Addr);
    if (slotWord < 0) {
      throw new KernelError(
        "InvalidAddress",
        `No registered address space has PML4 ${hex(pml4Addr)}`,
      );
    }
    const hook = new ShootdownHook(smp, shootdown);
    hook.slotWord = slotWord;
    const space = AddressSpace.attach(frames, smp.cpu, pml4Addr, { shootdown: hook });
    return new SmpAddressSpace(space, smp, slotWord);
  }

  /** This CPU's stock handle underneath (for `kernelHalfOf`: a new space sharing the kernel's half). */
  get inner(): AddressSpace {
    return this.#space;
  }

  /** The CPUs that have the space loaded (bit n: CPU n). */
  get cpuMask(): number {
    return Atomics.load(this.#smp.area.words, this.#slotWord + R_CPU_MASK);
  }

  /** The PML4 (CR3 value). */
  get pml4Addr(): PhysAddr {
    return this.#space.pml4Addr;
  }

  /** Whether this CPU's CR3 points at the space. */
  get isActive(): boolean {
    return this.#space.isActive;
  }

  /** Whether this handle was disposed. */
  get isDisposed(): boolean {
    return this.#space.isDisposed;
  }

  /** Loads the space into this CPU's CR3, moving this CPU's bit from the old space's mask. */
  activate(): void {
    this.#switchMask();
    this.#space.activate();
  }

  /** Turns paging on with the space on this CPU, and marks it loaded here. */
  enablePaging(): void {
    this.#switchMask();
    this.#space.enablePaging();
  }

  /** {@linkcode AddressSpace.map} under the lock. */
  map(
    va: VirtAddr,
    pa: PhysAddr,
    flags: PageFlags | MappingOptions,
    pageSizeBytes?: PageSizeBytes,
  ): void {
    this.#lock.hold(() => this.#space.map(va, pa, flags, pageSizeBytes));
  }

  /** {@linkcode AddressSpace.mapPage} under the lock. */
  mapPage(va: VirtAddr, page: Page, flags: PageFlags | MappingOptions): void {
    this.#lock.hold(() => this.#space.mapPage(va, page, flags));
  }

  /** {@linkcode AddressSpace.mapRange} under the lock. */
  mapRange(
    va: VirtAddr,
    pa: PhysAddr,
    sizeBytes: number,
    flags: PageFlags | MappingOptions,
    pageSizeBytes?: PageSizeBytes,
  ): void {
    this.#lock.hold(() => this.#space.mapRange(va, pa, sizeBytes, flags, pageSizeBytes));
  }

  /** {@linkcode AddressSpace.unmap} under the lock, with shootdown before the frame is freed. */
  unmap(va: VirtAddr, pageSizeBytes?: PageSizeBytes): PhysAddr {
    return this.#lock.hold(() => this.#space.unmap(va, pageSizeBytes));
  }

  /** {@linkcode AddressSpace.unmapRange} under the lock, with shootdown page by page. */
  unmapRange(va: VirtAddr, sizeBytes: number): number {
    return this.#lock.hold(() => this.#space.unmapRange(va, sizeBytes));
  }

  /** {@linkcode AddressSpace.protect} under the lock, with shootdown. */
  protect(
    va: VirtAddr,
    flags: PageFlags | MappingOptions,
    pageSizeBytes?: PageSizeBytes,
  ): void {
    this.#lock.hold(() => this.#space.protect(va, flags, pageSizeBytes));
  }

  /** {@linkcode AddressSpace.protectRange} under the lock, with shootdown. */
  protectRange(va: VirtAddr, sizeBytes: number, flags: PageFlags | MappingOptions): number {
    return this.#lock.hold(() => this.#space.protectRange(va, sizeBytes, flags));
  }

  /** {@linkcode AddressSpace.remapPage} under the lock, with shootdown. */
  remapPage(va: VirtAddr, page: Page, flags: PageFlags | MappingOptions): PhysAddr {
    return this.#lock.hold(() => this.#space.remapPage(va, page, flags));
  }

  /** {@linkcode AddressSpace.translate} under the lock (no table is freed meanwhile). */
  translate(va: VirtAddr): PhysAddr | undefined {
    return this.#lock.hold(() => this.#space.translate(va));
  }

  /** {@linkcode AddressSpace.mapping} under the lock. */
  mapping(va: VirtAddr): Mapping | undefined {
    return this.#lock.hold(() => this.#space.mapping(va));
  }

  /** {@linkcode AddressSpace.mappings} under the lock. */
  mappings(va: VirtAddr, sizeBytes: number): Mapping[] {
    return this.#lock.hold(() => this.#space.mappings(va, sizeBytes));
  }

  /** {@linkcode AddressSpace.stats} under the lock. */
  stats(): AddressSpaceStats {
    return this.#lock.hold(() => this.#space.stats());
  }

  /**
   * Frees the space ({@linkcode AddressSpace[Symbol.dispose]}) and its
   * registry slot; a handle attached from another CPU only detaches.
   *
   * @throws {KernelError} `FrameInUse` if a CPU has it loaded.
   */
  [Symbol.dispose](): void {
    if (this.#space.isDisposed) return;
    const mask = this.cpuMask;
    if (mask !== 0) {
      throw new KernelError(
        "FrameInUse",
        `Cannot dispose the address space at PML4 ${hex(this.pml4Addr)}: ` +
          `CPU ${31 - Math.clz32(mask & -mask)} has it loaded`,
      );
    }
    this.#lock.hold(() => this.#space[Symbol.dispose]());
    unregisterSpace(this.#smp, this.#slotWord, this.#space);
  }

  /** Moves this CPU's bit from the space now in CR3 to this one. */
  #switchMask(): void {
    const smp = this.#smp;
    const words = smp.area.words;
    const bit = 1 << smp.index;
    const cr3 = smp.cpu.cr3;
    const old = findSpace(smp, (cr3 - (cr3 % PAGE_SIZE_4K)) as PhysAddr);
    if (old >= 0) Atomics.and(words, old + R_CPU_MASK, ~bit);
    Atomics.or(words, this.#slotWord + R_CPU_MASK, bit);
  }
}

/**
 * The factory of address spaces the kernel uses on several CPUs: stock
 * spaces, registered, locked, with shootdown.
 */
export function smpAddressSpaceFactory(smp: SmpCpu, shootdown: TlbShootdown): AddressSpaceFactory {
  return (frames, _cpu, options) => SmpAddressSpace.create(smp, shootdown, frames, options);
}

/** What the stock address space calls where it would invalidate this CPU's TLB. */
class ShootdownHook implements TlbShootdownHook {
  /** The space's registry slot (set once the space is registered). */
  slotWord = -1;
  readonly #smp: SmpCpu;
  readonly #shootdown: TlbShootdown;

  constructor(smp: SmpCpu, shootdown: TlbShootdown) {
    this.#smp = smp;
    this.#shootdown = shootdown;
  }

  invalidatePage(va: VirtAddr, isGlobal: boolean): void {
    const words = this.#smp.area.words;
    const mask = this.slotWord < 0 ? 0 : Atomics.load(words, this.slotWord + R_CPU_MASK);
    this.#shootdown.invalidatePage(va, isGlobal, this.#isInCr3(), mask);
  }

  tableUnlinked(): void {
    if (this.slotWord < 0) return;
    this.#shootdown.synchronize(Atomics.load(this.#smp.area.words, this.slotWord + R_CPU_MASK));
  }

  /** Whether this CPU has the space in CR3 (its non-global entries are in this TLB). */
  #isInCr3(): boolean {
    if (this.slotWord < 0) return false;
    const words = this.#smp.area.words;
    const cr3 = this.#smp.cpu.cr3;
    const pml4 = cr3 - (cr3 % PAGE_SIZE_4K);
    return (words[this.slotWord + R_PML4_LO] >>> 0) +
        (words[this.slotWord + R_PML4_HI] >>> 0) * 2 ** 32 ===
      pml4;
  }
}

/** Claims a free registry slot for `pml4Addr`; returns its first word. */
function registerSpace(smp: SmpCpu, pml4Addr: PhysAddr): number {
  const area = smp.area;
  const words = area.words;
  return smp.locks.registry.hold(() => {
    for (let slot = 0; slot < REGISTRY_SLOTS; slot++) {
      const word = area.registryWord(slot);
      if (words[word + R_PML4_LO] !== 0 || words[word + R_PML4_HI] !== 0) continue;
      words.fill(0, word, word + R_LOCK + 8);
      words[word + R_PML4_HI] = Math.floor(pml4Addr / 2 ** 32);
      Atomics.store(words, word + R_PML4_LO, pml4Addr % 2 ** 32);
      return word;
    }
    throw new KernelError(
      "OutOfMemory",
      `Cannot create an address space: the SMP registry's ${REGISTRY_SLOTS} slots are taken`,
    );
  });
}

/** Frees a registry slot. */
function unregisterSpace(smp: SmpCpu, slotWord: number, space: AddressSpace): void {
  const words = smp.area.words;
  smp.locks.registry.hold(() => {
    if ((words[slotWord + R_PML4_LO] >>> 0) !== space.pml4Addr % 2 ** 32) return;
    words[slotWord + R_PML4_HI] = 0;
    Atomics.store(words, slotWord + R_PML4_LO, 0);
  });
}

/** The registry slot (first word) of the space with PML4 `pml4Addr`, or -1. */
export function findSpace(smp: SmpCpu, pml4Addr: PhysAddr): number {
  const area = smp.area;
  const words = area.words;
  const low = pml4Addr % 2 ** 32;
  const high = Math.floor(pml4Addr / 2 ** 32);
  if (low === 0 && high === 0) return -1;
  for (let slot = 0; slot < REGISTRY_SLOTS; slot++) {
    const word = area.registryWord(slot);
    if (
      (Atomics.load(words, word + R_PML4_LO) >>> 0) === low &&
      (words[word + R_PML4_HI] >>> 0) === high
    ) {
      return word;
    }
  }
  return -1;
}
