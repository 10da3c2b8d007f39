/**
 * Test fixture for memory-management tests: a fresh machine with a frame
 * allocator over all of RAM but the first MiB, and paging switched off again
 * so every address space can be disposed.
 *
 * @module
 */

import { CR0_PG, Machine, PhysicalMemory, VirtualClock } from "../../hal/mod.ts";
import { FrameAllocator } from "./frame_allocator.ts";

const MIB = 2 ** 20;

/** A fresh machine of `ramBytes` (default 64 MiB) and its frame allocator. */
export function bootTestMachine(ramBytes = 64 * MIB) {
  const memory = PhysicalMemory.contiguous(ramBytes);
  const machine = new Machine(memory, new VirtualClock());
  const frames = FrameAllocator.create(memory, {
    usableRegions: [{ base: 0, length: ramBytes }],
    exclusions: [{ base: 0, length: MIB }],
  });
  return { memory, machine, cpu: machine.cpu, mmu: machine.mmu, frames };
}

/** Turns paging off and clears CR3, so every address space can be disposed. */
export function disablePaging(machine: Machine): void {
  machine.cpu.writeCr0(machine.cpu.cr0 & ~CR0_PG);
  machine.cpu.writeCr3(0);
}
