/**
 * Paging benchmarks: map + unmap of one 4 KiB page, and mapping 1 GiB as
 * 262,144 4 KiB pages with one range operation.
 *
 * - map+unmap: the address space is active (its PML4 in CR3), so every unmap
 *   also executes INVLPG. A neighbouring page stays mapped so the page
 *   tables survive; the "cold" variant has no neighbour, so each map
 *   allocates (and zeroes) a PDPT, a PD and a PT and each unmap frees them.
 * - range map: mapRange of 1 GiB of 4 KiB pages, which writes 262,144 PTEs
 *   and allocates 512 page tables plus a PD and a PDPT. The unmapRange that
 *   puts the tables back is not timed; it is its own bench.
 *
 * Targets: map+unmap < 300 ns, range map of 1 GiB < 100 ms. Machines are
 * built once, outside the timing.
 *
 * Run: `deno bench --allow-read bench/paging_bench.ts`
 *
 * @module
 */

import {
  Machine,
  PAGE_SIZE_4K,
  type PhysAddr,
  PhysicalMemory,
  type VirtAddr,
  VirtualClock,
} from "../hal/mod.ts";
import { AddressSpace, PAGE_NO_EXECUTE, PAGE_WRITABLE } from "../kernel/mm/address_space.ts";
import { FrameAllocator } from "../kernel/mm/frame_allocator.ts";

const MIB = 2 ** 20;
const GIB = 2 ** 30;
const OPS = 10_000;
const FLAGS = PAGE_WRITABLE | PAGE_NO_EXECUTE;

function bootSpace(ramBytes: number): { space: AddressSpace; frames: FrameAllocator } {
  const memory = PhysicalMemory.contiguous(ramBytes);
  const machine = new Machine(memory, new VirtualClock());
  const frames = FrameAllocator.create(memory, {
    usableRegions: [{ base: 0, length: ramBytes }],
    exclusions: [{ base: 0, length: MIB }],
  });
  const space = AddressSpace.create(frames, machine.cpu);
  space.activate();
  return { space, frames };
}

const warm = bootSpace(64 * MIB);
const PAGE = 0x7f12_3456_7000 as VirtAddr;
warm.space.map((PAGE + PAGE_SIZE_4K) as VirtAddr, 0x30_0000 as PhysAddr, FLAGS);

Deno.bench({
  name: `map+unmap one 4 KiB page, tables present (ns/op = time / ${OPS})`,
  group: "map+unmap",
  baseline: true,
  fn() {
    const space = warm.space;
    for (let i = 0; i < OPS; i++) {
      space.map(PAGE, ((i & 0xff) * PAGE_SIZE_4K) as PhysAddr, FLAGS);
      space.unmap(PAGE);
    }
  },
});

const cold = bootSpace(64 * MIB);

Deno.bench({
  name: `map+unmap one 4 KiB page, 3 tables made and freed each time (ns/op = time / ${OPS})`,
  group: "map+unmap",
  fn() {
    const space = cold.space;
    for (let i = 0; i < OPS; i++) {
      space.map(PAGE, 0x30_0000 as PhysAddr, FLAGS);
      space.unmap(PAGE);
    }
  },
});

const big = bootSpace(64 * MIB);
const RANGE_VA = 0x40_0000_0000 as VirtAddr;
const RANGE_PA = 0x1_0000_0000 as PhysAddr;

Deno.bench({
  name: "mapRange 1 GiB as 262,144 4 KiB pages (time per op)",
  group: "range",
  n: 30,
  warmup: 3,
  fn(b) {
    const { space, frames } = big;
    const free = frames.stats().freeFrames;
    b.start();
    space.mapRange(RANGE_VA, RANGE_PA, GIB, FLAGS);
    b.end();
    if (space.translate((RANGE_VA + GIB - 1) as VirtAddr) !== RANGE_PA + GIB - 1) {
      throw new Error("range map: last byte does not translate");
    }
    space.unmapRange(RANGE_VA, GIB);
    if (frames.stats().freeFrames !== free) throw new Error("range map: frames lost");
  },
});

Deno.bench({
  name: "unmapRange 1 GiB of 4 KiB pages, tables freed (time per op)",
  group: "range",
  n: 30,
  warmup: 3,
  fn(b) {
    const { space } = big;
    space.mapRange(RANGE_VA, RANGE_PA, GIB, FLAGS);
    b.start();
    space.unmapRange(RANGE_VA, GIB);
    b.end();
  },
});
