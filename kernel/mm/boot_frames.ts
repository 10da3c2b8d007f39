/**
 * Brings up the physical frame allocator from the boot information: one pool
 * per available memory-map region, with everything the boot loader put in
 * RAM (the first 1 MiB, the kernel image, the MBI, the modules) excluded so
 * it is never handed out.
 *
 * @module
 */

import { KERNEL_LOAD_ADDRESS } from "../../hal/mod.ts";
import type { PhysicalMemory } from "../../hal/mod.ts";
import type { BootInfo } from "../boot/mod.ts";
import type { PhysRange } from "./early_allocator.ts";
import { FrameAllocator } from "./frame_allocator.ts";

/** A named range the allocator must never hand out. */
export interface BootReservation extends PhysRange {
  /** What lives there, for the boot log. */
  readonly what: string;
}

/** The multiboot2 memory type of available RAM. */
const MEMORY_AVAILABLE = 1;
const FIRST_MIB_BYTES = 0x100000;

/** The ranges the boot loader filled and the kernel must keep. */
export function bootReservations(
  bootInfo: BootInfo,
  kernelImageSizeBytes: number,
): BootReservation[] {
  const kernelBase = bootInfo.loadBaseAddr ?? KERNEL_LOAD_ADDRESS;
  return [
    { base: 0, length: FIRST_MIB_BYTES, what: "first 1 MiB (BIOS, real-mode area)" },
    { base: kernelBase, length: kernelImageSizeBytes, what: "kernel image" },
    { base: bootInfo.mbi.address, length: bootInfo.mbi.totalSize, what: "multiboot2 info" },
    ...bootInfo.modules.map((module, index) => ({
      base: module.start,
      length: module.end - module.start,
      what: `module ${index} "${module.string}"`,
    })),
  ];
}

/**
 * Creates the frame allocator over the available regions of the memory map
 * that are RAM, excluding `reservations`.
 */
export function createBootFrameAllocator(
  memory: PhysicalMemory,
  bootInfo: BootInfo,
  reservations: readonly BootReservation[],
  debug: boolean,
): FrameAllocator {
  const usableRegions = bootInfo.memoryMap
    .filter((region) => region.type === MEMORY_AVAILABLE)
    .map(({ base, length }) => ({ base, length }));
  return FrameAllocator.create(memory, {
    usableRegions,
    exclusions: reservations,
    debug: debug ? { poison: true, trackAllocationSites: true } : undefined,
  });
}
