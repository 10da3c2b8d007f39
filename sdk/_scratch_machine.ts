/**
 * A small scratch machine on which the loader calls a part's factory once,
 * so that a factory that throws or returns the wrong shape is refused at
 * load time rather than in the middle of a boot. The other parts are the
 * stock ones; everything is thrown away afterwards.
 *
 * @module
 */

import { Machine, PhysicalMemory, VirtualClock } from "../hal/mod.ts";
import type { BootReservation } from "../kernel/boot/mod.ts";
import {
  EarlyFrameAllocator,
  FrameAllocator,
  type FrameProviderFactory,
  type KernelHeapFactory,
  type PageFaultPolicyFactory,
  type PageMapperFactory,
} from "../kernel/mm/mod.ts";

/** RAM of the scratch machine: 32 MiB. */
const SCRATCH_RAM_BYTES = 32 * 2 ** 20;
/** The first MiB, reserved as on a PC. */
const FIRST_MIB_BYTES = 2 ** 20;

/**
 * Calls `create` once on a fresh scratch machine and disposes what it made
 * when it can be disposed.
 *
 * @param kind Which part the factory makes.
 * @param create The (guarded) factory.
 * @throws What the factory or the disposal throws.
 */
export function tryOnScratchMachine(
  kind: "frames" | "pagetable" | "heap" | "faults",
  create: FrameProviderFactory | PageMapperFactory | KernelHeapFactory | PageFaultPolicyFactory,
): void {
  const memory = PhysicalMemory.contiguous(SCRATCH_RAM_BYTES);
  const usableRegions = [{ base: FIRST_MIB_BYTES, length: SCRATCH_RAM_BYTES - FIRST_MIB_BYTES }];
  if (kind === "frames") {
    const reservations: BootReservation[] = [
      {
        base: 0,
        length: FIRST_MIB_BYTES,
        what: "first 1 MiB (BIOS, real-mode area)",
        source: "the scratch machine's layout",
      },
    ];
    const early = new EarlyFrameAllocator(usableRegions, reservations);
    (create as FrameProviderFactory)({ memory, usableRegions, reservations, early, debug: false });
    return;
  }
  const machine = new Machine(memory, new VirtualClock());
  const frames = FrameAllocator.create(memory, { usableRegions });
  if (kind === "pagetable") {
    (create as PageMapperFactory)({ memory, frames, cpu: machine.cpu })[Symbol.dispose]();
  } else if (kind === "heap") {
    (create as KernelHeapFactory)({ memory, frames, directMapOffset: 0, debug: false });
  } else {
    (create as PageFaultPolicyFactory)({
      memory,
      frames,
      mmu: machine.mmu,
      cpu: machine.cpu,
    })[Symbol.dispose]();
  }
}
