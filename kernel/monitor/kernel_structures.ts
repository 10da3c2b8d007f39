/**
 * What the kernel keeps where: the physical ranges of its own structures
 * (page tables, the kernel image, the frame allocator's state and metadata,
 * the heap's descriptors and slabs, the page-fault handler's state, the
 * monitor's console frame, the boot information) and the virtual ranges of
 * its mappings (the direct map, the kernel image). The monitor asks before
 * `unmap` or `poke` changes one of them, and warns when `map` maps one.
 *
 * Everything is read from the kernel's state when asked (page tables are
 * walked in RAM), so the answer is never stale.
 *
 * @module
 */

import {
  entryTableAddr,
  formatVirtAddr,
  hex,
  PAGE_SIZE_4K,
  type PagingLevel,
  PTE_P,
  PTE_PS,
  type VirtAddr,
} from "../../hal/mod.ts";
import { type AddressSpaceLike, PTE_SW_FOREIGN } from "../mm/mod.ts";
import type { CommandContext } from "./command.ts";

/** A physical range holding one kernel structure. */
export interface KernelStructure {
  /** First byte. */
  readonly first: number;
  /** Last byte (inclusive). */
  readonly last: number;
  /** What it is, e.g. `a PD (page directory) of address space 0`. */
  readonly what: string;
}

/** A virtual range the kernel maps for itself. */
export interface KernelMapping {
  /** First virtual address. */
  readonly first: number;
  /** Last virtual address (inclusive). */
  readonly last: number;
  /** What it is, e.g. `the direct map of RAM 0x100000-0x7fdffff`. */
  readonly what: string;
}

const TABLE_NAMES: Readonly<Record<PagingLevel, string>> = {
  4: "PML4",
  3: "PDPT (page-directory-pointer table)",
  2: "PD (page directory)",
  1: "PT (page table)",
};

/**
 * Every physical range a kernel structure occupies, lowest first.
 *
 * @param context The monitor's context (the kernel and the monitor's own frames).
 * @returns The structures; ranges may touch but the list names each once.
 */
export function kernelStructures(context: CommandContext): KernelStructure[] {
  const { kernel } = context;
  const structures: KernelStructure[] = [];
  const add = (first: number, length: number, what: string) => {
    if (length > 0) structures.push({ first, last: first + length - 1, what });
  };
  for (const { index, space } of context.spaces.slots()) {
    for (const table of pageTableFrames(context, space)) {
      add(table.physAddr, PAGE_SIZE_4K, `a ${TABLE_NAMES[table.level]} of address space ${index}`);
    }
  }
  const image = kernel.kernelSpace.regions.find((region) => region.name === "kernel image");
  if (image !== undefined) add(image.physStart, image.sizeBytes, "the kernel image");
  for (const range of kernel.frames.metadataRanges()) add(range.base, range.length, range.what);
  for (const range of kernel.heap.frameRanges?.() ?? []) {
    const first = range.firstFrame * PAGE_SIZE_4K;
    const length = range.frameCount * PAGE_SIZE_4K;
    if (range.kind === "root") add(first, length, "the kmem heap's root descriptor");
    else if (range.kind === "owner-table") add(first, length, "the kmem heap's owner table");
    else if (range.kind === "slab") {
      add(
        first,
        length,
        `a kmem heap slab of ${range.objectSizeBytes}-byte objects (header, free list, objects)`,
      );
    } else add(first, length, "a kmem heap arena (boundary tags, free-block index, blocks)");
  }
  const faultState = kernel.pageFaults.stateAddr;
  if (faultState !== undefined) {
    add(faultState, PAGE_SIZE_4K, "the page-fault handler's state (lazy regions, counters)");
  }
  for (const frame of context.monitorFrames()) add(frame.base, frame.length, frame.what);
  const mbi = kernel.bootInfo.mbi;
  add(mbi.address, mbi.totalSize, "the multiboot2 boot information");
  kernel.bootInfo.modules.forEach((module, i) => {
    add(module.start, module.end - module.start, `boot module ${i}`);
  });
  return structures.sort((a, b) => a.first - b.first);
}

/**
 * The kernel structures that `[first, last]` overlaps.
 *
 * @param structures From {@linkcode kernelStructures}.
 * @param first First physical address.
 * @param last Last physical address (inclusive).
 */
export function structuresIn(
  structures: readonly KernelStructure[],
  first: number,
  last: number,
): KernelStructure[] {
  return structures.filter((structure) => structure.first <= last && first <= structure.last);
}

/**
 * The kernel's own mappings in its address space: the direct map (one range
 * per RAM range), the kernel image, and device registers in the MMIO window.
 */
export function kernelMappings(context: CommandContext): KernelMapping[] {
  const mmio = (context.kernel.interrupts.mmio?.regions ?? []).map((region) => {
    const first = region.virtAddr - (region.virtAddr % PAGE_SIZE_4K);
    const pages = Math.ceil((region.virtAddr + region.sizeBytes - first) / PAGE_SIZE_4K);
    return {
      first,
      last: first + pages * PAGE_SIZE_4K - 1,
      what: `the ${region.name}'s registers (physical ${hex(region.physAddr)}, uncached MMIO)`,
    };
  });
  return [
    ...context.kernel.kernelSpace.regions.map((region) => {
      const physLast = region.physStart + region.sizeBytes - 1;
      return {
        first: region.virtStart,
        last: region.virtStart + region.sizeBytes - 1,
        what: region.name === "direct map"
          ? `the direct map of RAM ${hex(region.physStart)}-${hex(physLast)}`
          : `the ${region.name} (physical ${hex(region.physStart)}-${hex(physLast)})`,
      };
    }),
    ...mmio,
  ];
}

/** The kernel mapping containing `va`, or undefined. */
export function kernelMappingAt(context: CommandContext, va: VirtAddr): KernelMapping | undefined {
  return kernelMappings(context).find((mapping) => va >= mapping.first && va <= mapping.last);
}

/** One paging structure found by {@linkcode pageTableFrames}. */
export interface PageTableFrame {
  /** Its physical address. */
  readonly physAddr: number;
  /** Its level: 4 PML4 ... 1 PT. */
  readonly level: PagingLevel;
}

/**
 * Every paging structure `space` owns, found by walking its tables in RAM:
 * the PML4, then each table a present non-leaf entry points at, skipping
 * FOREIGN entries (the recursive one, the shared kernel half).
 */
export function pageTableFrames(
  context: CommandContext,
  space: AddressSpaceLike,
): PageTableFrame[] {
  const u32 = context.kernel.machine.memory.u32;
  const tables: PageTableFrame[] = [];
  const walk = (table: number, level: PagingLevel) => {
    tables.push({ physAddr: table, level });
    if (level === 1) return;
    for (let index = 0; index < 512; index++) {
      const low = u32[table / 4 + 2 * index];
      const high = u32[table / 4 + 2 * index + 1];
      if ((low & PTE_P) === 0 || (low & PTE_SW_FOREIGN) !== 0 || (low & PTE_PS) !== 0) continue;
      walk(entryTableAddr(low, high), (level - 1) as PagingLevel);
    }
  };
  walk(space.pml4Addr, 4);
  return tables;
}

/** `a PT (page table) of address space 0 at 0x18f000-0x18ffff`, for messages. */
export function describeStructure(structure: KernelStructure): string {
  return `${structure.what} at ${hex(structure.first)}-${hex(structure.last)}`;
}

/** `the direct map of RAM 0x0-0x9efff at 0xffff800000000000-0xffff80000009efff`. */
export function describeMapping(mapping: KernelMapping): string {
  return `${mapping.what} at ${formatVirtAddr(mapping.first as VirtAddr)}-` +
    formatVirtAddr(mapping.last as VirtAddr);
}
