/**
 * Brings up the physical frame allocator at boot: one pool per available
 * region of the sanitized memory map, with every boot reservation (the first
 * 1 MiB, the kernel image and its ELF section copies, the MBI, the loaded
 * modules; see `kernel/boot/boot_memory.ts`) excluded so it is never handed
 * out.
 *
 * @module
 */

import type { PhysicalMemory } from "../../hal/mod.ts";
import type { BootInfoMemoryRegion, BootReservation } from "../boot/mod.ts";
import { FrameAllocator } from "./frame_allocator.ts";

/** The multiboot2 memory type of available RAM. */
const MEMORY_AVAILABLE = 1;

/**
 * Creates the frame allocator over the available regions of `memoryMap`,
 * excluding `reservations`.
 *
 * @param memory The machine's RAM.
 * @param memoryMap The sanitized memory map: sorted, disjoint, backed by RAM.
 * @param reservations Ranges never to hand out.
 * @param debug Poison frames and record allocation sites.
 * @returns The running frame allocator.
 * @throws {KernelError} `OutOfMemory` if its own state does not fit.
 */
export function createBootFrameAllocator(
  memory: PhysicalMemory,
  memoryMap: readonly BootInfoMemoryRegion[],
  reservations: readonly BootReservation[],
  debug: boolean,
): FrameAllocator {
  const usableRegions = memoryMap
    .filter((region) => region.type === MEMORY_AVAILABLE)
    .map(({ base, length }) => ({ base, length }));
  return FrameAllocator.create(memory, {
    usableRegions,
    exclusions: reservations.map(({ base, length }) => ({ base, length })),
    debug: debug ? { poison: true, trackAllocationSites: true } : undefined,
  });
}
