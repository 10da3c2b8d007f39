/**
 * The monitor's table of address spaces, as a kernel keeps a process table:
 * slot 0 is the kernel's own address space, the others are made with `as
 * new` and `as fork`. Every one shares the kernel half (PML4 entries 256 to
 * 511) with slot 0, as every process shares the kernel's mappings, and has
 * its own lower half. The slot table (the PML4 of each slot) lives in the
 * monitor's console frame; the objects hold handles.
 *
 * ```
 * word 2i     slot i's PML4 physical address, low 32 bits (0: empty)
 * word 2i+1   high 32 bits
 * ```
 *
 * `fork` makes the child's lower half a copy-on-write copy of the parent's:
 * each owned 4 KiB page becomes read-only and shared (reference count + 1),
 * so the first write on either side takes a copy-on-write fault; raw
 * mappings (no reference) are mapped again as they are; lazy regions are
 * declared again, so untouched pages stay demand-zero in both.
 *
 * @module
 */

import {
  hex,
  HIGHER_HALF_START,
  PAGE_SIZE_4K,
  type PhysAddr,
  PTE_P,
  type VirtAddr,
} from "../../hal/mod.ts";
import type { Kernel } from "../kernel.ts";
import {
  AddressSpace,
  type AddressSpaceLike,
  PTE_SW_FOREIGN,
  RECURSIVE_PML4_INDEX,
} from "../mm/mod.ts";
import { SmpAddressSpace } from "../smp/mod.ts";
import { CommandError } from "./command.ts";

/** How many address spaces the monitor's table holds, the kernel's included. */
export const MAX_ADDRESS_SPACES = 16;
/** Words of the slot table: a 64-bit PML4 address per slot. */
export const ADDRESS_SPACE_TABLE_WORDS = 2 * MAX_ADDRESS_SPACES;
/** The first PML4 index of the kernel half. */
export const KERNEL_HALF_FIRST_PML4_INDEX = 256;

const TWO_POW_32 = 2 ** 32;
/** Address bits 51:32 of an entry, in its high half. */
const ADDRESS_HIGH_MASK = 0xfffff;

/** One slot of the table. */
export interface AddressSpaceSlot {
  /** The slot number users type (`as switch 1`). */
  readonly index: number;
  /** The address space. */
  readonly space: AddressSpaceLike;
}

/** What `fork` did. */
export interface ForkResult {
  /** The child's slot. */
  readonly child: AddressSpaceSlot;
  /** Owned 4 KiB pages now shared copy-on-write. */
  readonly sharedPages: number;
  /** Raw mappings mapped again in the child. */
  readonly rawMappings: number;
  /** Lazy regions declared again in the child. */
  readonly lazyRegions: number;
}

/** The address spaces the monitor knows. */
export class AddressSpaceTable implements Disposable {
  readonly #kernel: Kernel;
  readonly #words: Uint32Array;
  readonly #spaces = new Array<AddressSpaceLike | undefined>(MAX_ADDRESS_SPACES).fill(undefined);

  /**
   * Creates the table over `words` ({@linkcode ADDRESS_SPACE_TABLE_WORDS}
   * words of a kernel frame) with the kernel's address space in slot 0.
   *
   * @throws {RangeError} If `words` is too short.
   */
  constructor(kernel: Kernel, words: Uint32Array) {
    if (words.length < ADDRESS_SPACE_TABLE_WORDS) {
      throw new RangeError(`Invalid address space table: ${words.length} words`);
    }
    this.#kernel = kernel;
    this.#words = words;
    words.fill(0, 0, ADDRESS_SPACE_TABLE_WORDS);
    this.#set(0, kernel.kernelSpace.addressSpace);
  }

  /** The kernel's address space (slot 0). */
  get kernelSpace(): AddressSpaceLike {
    return this.#spaces[0] as AddressSpaceLike;
  }

  /** The slot whose PML4 CR3 points at, or undefined if none does. */
  get current(): AddressSpaceSlot | undefined {
    const index = this.indexOfPml4(this.#kernel.machine.cpu.cr3);
    return index < 0 ? undefined : { index, space: this.#spaces[index] as AddressSpaceLike };
  }

  /** Every used slot, lowest first. */
  slots(): AddressSpaceSlot[] {
    const slots: AddressSpaceSlot[] = [];
    this.#spaces.forEach((space, index) => {
      if (space !== undefined) slots.push({ index, space });
    });
    return slots;
  }

  /**
   * The slot numbered `index`.
   *
   * @throws {CommandError} If there is no such address space.
   */
  get(index: number): AddressSpaceSlot {
    const space = this.#spaces[index];
    if (space === undefined) {
      throw new CommandError(`no address space ${index} (see as list)`);
    }
    return { index, space };
  }

  /** The slot whose PML4 is at `cr3` (flag bits ignored), or -1. */
  indexOfPml4(cr3: number): number {
    const pml4 = cr3 - (cr3 % PAGE_SIZE_4K);
    return this.#spaces.findIndex((space) => space !== undefined && space.pml4Addr === pml4);
  }

  /**
   * Creates an empty address space sharing the kernel half.
   *
   * @throws {CommandError} If the table is full.
   * @throws {MappingError} `FrameAllocationFailed` if no frame is free for its PML4.
   */
  create(): AddressSpaceSlot {
    const index = this.#freeSlot();
    const frames = this.#kernel.frames;
    const stock = stockSpaceOf(this.kernelSpace);
    if (stock === undefined) {
      // Sharing the kernel half marks foreign tables, a convention of the stock mapper only.
      throw new CommandError(
        `a new address space shares the kernel half, which needs the stock page-table mapper ` +
          `(this kernel's is ${this.#kernel.parts.pageMapper})`,
      );
    }
    // The kernel's factory: with several CPUs, a locked space with TLB shootdown.
    const space = this.#kernel.createAddressSpace(frames, this.#kernel.machine.cpu, {
      recursiveIndex: RECURSIVE_PML4_INDEX,
      kernelHalfOf: stock,
    });
    this.#kernel.pageFaults.attach(space);
    this.#set(index, space);
    return { index, space };
  }

  /**
   * Creates a copy-on-write copy of the lower half of address space
   * `parentIndex` (see the module comment).
   *
   * @throws {CommandError} If there is no such space or the table is full.
   * @throws {MappingError} If a frame for a page table cannot be had (the
   *   child is dropped again; pages already shared stay read-only in the
   *   parent and take a copy-on-write fault on their next write).
   */
  fork(parentIndex: number): ForkResult {
    const parent = this.get(parentIndex).space;
    const child = this.create();
    const faults = this.#kernel.pageFaults;
    try {
      let lazyRegions = 0;
      for (const region of faults.lazyRegions(parent)) {
        faults.declareLazy(child.space, region.start, region.end - region.start, region.flags);
        lazyRegions++;
      }
      let sharedPages = 0;
      let rawMappings = 0;
      for (const leaf of parent.mappings(0 as VirtAddr, HIGHER_HALF_START)) {
        if (leaf.isOwned && leaf.pageSizeBytes === PAGE_SIZE_4K) {
          sharedPages += faults.shareCopyOnWrite(parent, child.space, leaf.virtAddr, PAGE_SIZE_4K);
        } else {
          child.space.map(leaf.virtAddr, leaf.physAddr, leaf.flags, leaf.pageSizeBytes);
          rawMappings++;
        }
      }
      return { child, sharedPages, rawMappings, lazyRegions };
    } catch (error) {
      this.drop(child.index);
      throw error;
    }
  }

  /**
   * Loads CR3 with address space `index` (a MOV to CR3: non-global TLB
   * entries are flushed).
   *
   * @throws {CommandError} If there is no such address space.
   */
  switchTo(index: number): AddressSpaceSlot {
    const slot = this.get(index);
    slot.space.activate();
    return slot;
  }

  /**
   * Frees address space `index`: its page tables, and one reference to each
   * frame it owned.
   *
   * @throws {CommandError} For slot 0, the current space or an empty slot.
   */
  drop(index: number): void {
    const { space } = this.get(index);
    if (index === 0) {
      throw new CommandError("address space 0 is the kernel's: it cannot be dropped");
    }
    if (space.isActive) {
      throw new CommandError(`address space ${index} is in CR3: switch to another one first`);
    }
    this.#kernel.pageFaults.detach(space);
    space[Symbol.dispose]();
    this.#spaces[index] = undefined;
    this.#words[2 * index] = 0;
    this.#words[2 * index + 1] = 0;
  }

  /**
   * Checks the table against the kernel's state: each slot's PML4 in RAM
   * equals its handle's, CR3 points at a known space, and every shared
   * kernel-half entry still points where the kernel's own entry does.
   *
   * @returns The first broken invariant in words, or undefined if none is.
   */
  check(): string | undefined {
    const words = this.#words;
    for (let index = 0; index < MAX_ADDRESS_SPACES; index++) {
      const inRam = words[2 * index + 1] * TWO_POW_32 + words[2 * index];
      const handle = this.#spaces[index]?.pml4Addr ?? 0;
      if (inRam !== handle) {
        return `slot ${index} says PML4 ${hex(inRam)}, the monitor's handle is ${hex(handle)}`;
      }
    }
    const cr3 = this.#kernel.machine.cpu.cr3;
    if (this.indexOfPml4(cr3) < 0) return `CR3 ${hex(cr3)} is no known address space`;
    const u32 = this.#kernel.machine.memory.u32;
    const kernelPml4 = this.kernelSpace.pml4Addr;
    for (const { index, space } of this.slots()) {
      if (index === 0) continue;
      for (let entry = KERNEL_HALF_FIRST_PML4_INDEX; entry < 512; entry++) {
        if (entry === RECURSIVE_PML4_INDEX) continue;
        const mine = space.pml4Addr / 4 + 2 * entry;
        const kernels = kernelPml4 / 4 + 2 * entry;
        if ((u32[mine] & (PTE_P | PTE_SW_FOREIGN)) !== (PTE_P | PTE_SW_FOREIGN)) continue;
        const isSameTable = (u32[kernels] & PTE_P) !== 0 &&
          u32[mine] >>> 12 === u32[kernels] >>> 12 &&
          (u32[mine + 1] & ADDRESS_HIGH_MASK) === (u32[kernels + 1] & ADDRESS_HIGH_MASK);
        if (!isSameTable) {
          return `address space ${index}: PML4[${entry}] shares a table the kernel's PML4 no ` +
            `longer points at`;
        }
      }
    }
    return undefined;
  }

  /**
   * Switches back to the kernel's address space and frees every other one.
   * Disposing twice is a no-op.
   */
  [Symbol.dispose](): void {
    if (this.#spaces[0] === undefined) return;
    const current = this.current;
    if (current !== undefined && current.index !== 0) this.kernelSpace.activate();
    for (const { index } of this.slots()) if (index !== 0) this.drop(index);
    this.#spaces[0] = undefined;
    this.#words.fill(0, 0, ADDRESS_SPACE_TABLE_WORDS);
  }

  #set(index: number, space: AddressSpaceLike): void {
    const pml4: PhysAddr = space.pml4Addr;
    this.#spaces[index] = space;
    this.#words[2 * index] = pml4 % TWO_POW_32;
    this.#words[2 * index + 1] = Math.floor(pml4 / TWO_POW_32);
  }

  #freeSlot(): number {
    const index = this.#spaces.findIndex((space) => space === undefined);
    if (index < 0) {
      throw new CommandError(
        `the table holds ${MAX_ADDRESS_SPACES} address spaces: drop one first (as drop N)`,
      );
    }
    return index;
  }
}

/**
 * The stock address space behind `space`: itself, or the one an SMP handle
 * wraps; undefined for a user's mapper.
 */
export function stockSpaceOf(space: AddressSpaceLike): AddressSpace | undefined {
  if (space instanceof AddressSpace) return space;
  if (space instanceof SmpAddressSpace) return space.inner;
  return undefined;
}
