/**
 * Benchmarks of the kmem heap: workload W4 (docs/benchmarks.md; native
 * first-fit reference: 157 ns per operation, 0 failures) and kmalloc/kfree
 * pairs of 64 bytes, over the kernel's FrameAllocator. Setup (RAM, frame
 * allocator, heap creation) is not timed.
 *
 * Run: `deno bench --allow-read bench/heap_bench.ts` (or `deno task bench`
 * for the summary table, which divides by the operation counts).
 *
 * @module
 */

import { PhysicalMemory, type VirtAddr } from "../hal/mod.ts";
import { FrameAllocator, KernelError, KmemHeap } from "../kernel/mod.ts";
import { Xorshift32 } from "../testing/mod.ts";
import { FIGURES, LOOP_OPS, W4_OPS } from "./_figures.ts";
import { addFloorBench } from "./_floor.ts";

/** RAM of the benchmark machine. */
const RAM_BYTES = 64 * 2 ** 20;
/** W4: most objects live at once. */
const W4_MAX_LIVE = 200;
/** W4: PRNG seed. */
const W4_SEED = 0xdeadbeef;

/**
 * Runs workload W4 once on `heap` exactly as docs/benchmarks.md defines it.
 *
 * @param heap The heap under test.
 * @param live Scratch space for the live addresses (at least 200 entries).
 * @returns The number of failed allocations, and how many objects are left live in `live`.
 */
function runW4(heap: KmemHeap, live: Float64Array): { failed: number; liveCount: number } {
  const rng = new Xorshift32(W4_SEED);
  let liveCount = 0;
  let failed = 0;
  for (let op = 0; op < W4_OPS; op++) {
    const coin = rng.next() >>> 31;
    const r = rng.next();
    if (liveCount === W4_MAX_LIVE || (liveCount > 0 && coin === 1)) {
      const index = r % liveCount;
      heap.kfree(live[index] as VirtAddr);
      live[index] = live[--liveCount];
    } else {
      try {
        live[liveCount] = heap.kmalloc(8 + r % 505);
        liveCount++;
      } catch (error) {
        if (!(error instanceof KernelError && error.code === "OutOfMemory")) throw error;
        failed++;
      }
    }
  }
  return { failed, liveCount };
}

addFloorBench();

const memory = PhysicalMemory.contiguous(RAM_BYTES);
// The kernel's real frame allocator over all of RAM but the first 1 MiB.
const frames = FrameAllocator.create(memory, {
  usableRegions: [{ base: 0, length: RAM_BYTES }],
  exclusions: [{ base: 0, length: 2 ** 20 }],
});

{
  const live = new Float64Array(W4_MAX_LIVE);
  Deno.bench({
    name: FIGURES.w4.name,
    fn(b) {
      const heap = KmemHeap.create(memory, frames);
      b.start();
      const { failed, liveCount } = runW4(heap, live);
      b.end();
      if (failed !== 0) throw new Error(`W4 had ${failed} failed allocations`);
      for (let i = 0; i < liveCount; i++) heap.kfree(live[i] as VirtAddr);
      heap.checkInvariants();
      heap.destroy();
    },
  });
}

{
  const heap = KmemHeap.create(memory, frames);
  const name = FIGURES.kmallocPair.name;
  Deno.bench({
    name,
    fn() {
      let distinct = 0;
      let previous = 0;
      const ops = LOOP_OPS;
      for (let op = 0; op < ops; op++) {
        const address = heap.kmalloc(64);
        if (address !== previous) distinct++;
        previous = address;
        heap.kfree(address);
      }
      // A freed 64-byte object is the next one handed out: one address throughout.
      if (distinct !== 1) throw new Error(`${name}: ${distinct} distinct addresses, expected 1`);
    },
  });
}
