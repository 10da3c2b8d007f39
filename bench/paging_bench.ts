/**
 * Paging benchmarks: map + unmap of one 4 KiB page (with its tables present,
 * and with three tables made and freed each time), and mapping and unmapping
 * 1 GiB as 262,144 4 KiB pages with one range operation. Workloads are
 * defined in docs/benchmarks.md.
 *
 * The address spaces are active (their PML4 in CR3), so every unmap also
 * executes INVLPG. Machines are built once per bench, outside the timing;
 * every loop folds its results into a local that is checked after the loop.
 *
 * Run: `deno bench --allow-read bench/paging_bench.ts` (or `deno task bench`
 * for the summary table).
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
import { AddressSpace, FrameAllocator, PAGE_NO_EXECUTE, PAGE_WRITABLE } from "../kernel/mod.ts";
import { Xorshift32 } from "../testing/mod.ts";
import { FIGURES, LOOP_OPS, RANGE_ENTRIES } from "./_figures.ts";
import { addFloorBench, LOOP_SEED } from "./_floor.ts";

const MIB = 2 ** 20;
const FLAGS = PAGE_WRITABLE | PAGE_NO_EXECUTE;
/** The page the map+unmap loops use. */
const PAGE_VA = 0x7f12_3456_7000;
/** Frames the map+unmap loops map: 256 of them from 3 MiB, chosen by the PRNG. */
const FRAME_BASE_PA = 0x30_0000;

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

/** The sum of the frames one map+unmap loop maps, from the reference PRNG. */
function expectedFrameSum(): number {
  const rng = new Xorshift32(LOOP_SEED);
  let sum = 0;
  for (let op = 0; op < LOOP_OPS; op++) sum += FRAME_BASE_PA + (rng.next() & 0xff) * PAGE_SIZE_4K;
  return sum;
}

/** Registers a map+unmap loop over `space`. */
function addMapUnmapBench(name: string, space: AddressSpace): void {
  const expected = expectedFrameSum();
  Deno.bench({
    name,
    group: "map+unmap",
    fn() {
      const ops = LOOP_OPS;
      const frameBytes = PAGE_SIZE_4K;
      let x = LOOP_SEED;
      let sum = 0;
      for (let op = 0; op < ops; op++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        space.map(
          PAGE_VA as VirtAddr,
          (FRAME_BASE_PA + (x & 0xff) * frameBytes) as PhysAddr,
          FLAGS,
        );
        sum += space.unmap(PAGE_VA as VirtAddr);
      }
      if (sum !== expected) throw new Error(`${name}: sum ${sum}, expected ${expected}`);
    },
  });
}

addFloorBench();

{
  // A neighbouring page stays mapped, so the tables survive every unmap.
  const { space } = bootSpace(64 * MIB);
  space.map((PAGE_VA + PAGE_SIZE_4K) as VirtAddr, FRAME_BASE_PA as PhysAddr, FLAGS);
  addMapUnmapBench(FIGURES.mapUnmap.name, space);
}

{
  // No neighbour: each map allocates (and zeroes) a PDPT, a PD and a PT, each unmap frees them.
  const { space, frames } = bootSpace(64 * MIB);
  const free = frames.stats().freeFrames;
  addMapUnmapBench(FIGURES.mapUnmapCold.name, space);
  if (frames.stats().freeFrames !== free) throw new Error("map+unmap: setup leaked frames");
}

{
  const { space, frames } = bootSpace(64 * MIB);
  const rangeVa = 0x40_0000_0000;
  const rangePa = 0x1_0000_0000;
  const rangeBytes = RANGE_ENTRIES * PAGE_SIZE_4K;
  const free = frames.stats().freeFrames;
  /** Checks a mapped range: first, middle and last byte translate, and the 4 KiB leaf count. */
  const checkMapped = (name: string) => {
    for (const offset of [0, rangeBytes / 2 + 123, rangeBytes - 1]) {
      if (space.translate((rangeVa + offset) as VirtAddr) !== rangePa + offset) {
        throw new Error(`${name}: offset ${offset.toString(16)} does not translate`);
      }
    }
    if (space.stats().pages4K !== RANGE_ENTRIES) throw new Error(`${name}: wrong page count`);
  };

  Deno.bench({
    name: FIGURES.mapRange.name,
    group: "range",
    n: 30,
    warmup: 3,
    fn(b) {
      b.start();
      space.mapRange(rangeVa as VirtAddr, rangePa as PhysAddr, rangeBytes, FLAGS);
      b.end();
      checkMapped(FIGURES.mapRange.name);
      space.unmapRange(rangeVa as VirtAddr, rangeBytes);
      if (frames.stats().freeFrames !== free) throw new Error("mapRange: frames lost");
    },
  });

  Deno.bench({
    name: FIGURES.unmapRange.name,
    group: "range",
    n: 30,
    warmup: 3,
    fn(b) {
      space.mapRange(rangeVa as VirtAddr, rangePa as PhysAddr, rangeBytes, FLAGS);
      b.start();
      const count = space.unmapRange(rangeVa as VirtAddr, rangeBytes);
      b.end();
      if (count !== RANGE_ENTRIES) throw new Error(`unmapRange: ${count} pages unmapped`);
      if (frames.stats().freeFrames !== free) throw new Error("unmapRange: frames lost");
    },
  });
}
