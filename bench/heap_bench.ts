/**
 * Benchmarks of the kmem heap: workload W4 of shared/BENCHMARKS.md (native
 * first-fit reference: 157 ns per operation, 0 failures) and a kmalloc/kfree
 * pair of 64 bytes, over the kernel's FrameAllocator. Setup (RAM, frame
 * allocator, heap creation) is not timed.
 *
 * Deno.bench reports the time of one W4 run of 200,000 operations; divide by
 * 200,000 for ns/op. The file also prints the per-operation figure itself
 * when the run ends.
 *
 * @module
 */

import { PhysicalMemory, type VirtAddr } from "../hal/mod.ts";
import { FrameAllocator, KernelError, KmemHeap } from "../kernel/mod.ts";
import { Xorshift32 } from "../testing/mod.ts";

/** RAM of the benchmark machine. */
const RAM_BYTES = 64 * 2 ** 20;
/** W4: operations per run. */
const W4_OPERATIONS = 200_000;
/** W4: most objects live at once. */
const W4_MAX_LIVE = 200;
/** W4: PRNG seed. */
const W4_SEED = 0xdeadbeef;

/**
 * Runs workload W4 once on `heap` exactly as shared/BENCHMARKS.md defines it.
 *
 * @param heap The heap under test.
 * @param live Scratch space for the live addresses (at least 200 entries).
 * @returns The number of failed allocations, and how many objects are left live in `live`.
 */
function runW4(heap: KmemHeap, live: Float64Array): { failed: number; liveCount: number } {
  const rng = new Xorshift32(W4_SEED);
  let liveCount = 0;
  let failed = 0;
  for (let op = 0; op < W4_OPERATIONS; op++) {
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

const memory = PhysicalMemory.contiguous(RAM_BYTES);
// The kernel's real frame allocator over all of RAM but the first 1 MiB.
const frames = FrameAllocator.create(memory, {
  usableRegions: [{ base: 0, length: RAM_BYTES }],
  exclusions: [{ base: 0, length: 2 ** 20 }],
});
const live = new Float64Array(W4_MAX_LIVE);
let w4TimedMs = 0;
let w4Runs = 0;

Deno.bench({
  name: "W4 heap: 200,000 ops, at most 200 live, 8..512 bytes",
  fn(b) {
    const heap = KmemHeap.create(memory, frames);
    b.start();
    const started = performance.now();
    const { failed, liveCount } = runW4(heap, live);
    w4TimedMs += performance.now() - started;
    b.end();
    w4Runs++;
    if (failed !== 0) throw new Error(`W4 had ${failed} failed allocations`);
    for (let i = 0; i < liveCount; i++) heap.kfree(live[i] as VirtAddr);
    heap.checkInvariants();
    heap.destroy();
  },
});

const pairHeap = KmemHeap.create(memory, frames);

Deno.bench({
  name: "kmalloc + kfree of 64 bytes",
  fn() {
    pairHeap.kfree(pairHeap.kmalloc(64));
  },
});

globalThis.addEventListener("unload", () => {
  if (w4Runs === 0) return;
  const nsPerOp = (w4TimedMs * 1e6) / (w4Runs * W4_OPERATIONS);
  console.log(`W4 heap: ${nsPerOp.toFixed(1)} ns/op over ${w4Runs} runs, 0 failed allocations`);
});
