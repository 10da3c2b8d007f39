import { assert, assertEquals, assertThrows, Xorshift32 } from "../../testing/mod.ts";
import { type FrameNumber, PhysicalMemory } from "../../hal/mod.ts";
import { FrameAllocator, type FrameState } from "./frame_allocator.ts";
import { KmemHeap } from "./kmem_heap.ts";

const MiB = 2 ** 20;

/** A 32 MiB machine with a hole: pools [0, 8 MiB) and [12 MiB, 32 MiB), the first MiB excluded. */
function holedAllocator(): FrameAllocator {
  const memory = PhysicalMemory.contiguous(32 * MiB);
  return FrameAllocator.create(memory, {
    usableRegions: [{ base: 0, length: 8 * MiB }, { base: 12 * MiB, length: 20 * MiB }],
    exclusions: [{ base: 0, length: MiB }, { base: 2 * MiB + 100, length: 5000 }],
  });
}

Deno.test("FrameAllocator.countStates() agrees with stateOf() over random ranges", () => {
  const frames = holedAllocator();
  const random = new Xorshift32(7);
  const held: FrameNumber[] = [];
  for (let i = 0; i < 3000; i++) held.push(frames.allocate());
  for (let i = 0; i < 1000; i++) frames.free(held.splice(random.below(held.length), 1)[0]);
  const endFrame = (32 * MiB) / 4096;
  for (let trial = 0; trial < 200; trial++) {
    const first = random.below(endFrame);
    const count = random.below(endFrame - first + 1);
    const expected: Record<FrameState, number> = { free: 0, allocated: 0, reserved: 0, outside: 0 };
    for (let f = first; f < first + count; f++) expected[frames.stateOf(f as FrameNumber)]++;
    assertEquals(frames.countStates(first, count), expected, `${first}+${count}`);
  }
  const all = frames.countStates(0, endFrame + 100);
  const stats = frames.stats();
  assertEquals(all.free, stats.freeFrames);
  assertEquals(all.allocated, stats.allocatedFrames);
  assertEquals(all.reserved, stats.reservedFrames);
  assertEquals(all.outside, endFrame + 100 - stats.totalFrames);
  assertThrows(() => frames.countStates(-1, 4), RangeError);
});

Deno.test("FrameAllocator.metadataRanges() names the reserved frames of its own state", () => {
  const frames = holedAllocator();
  const ranges = frames.metadataRanges();
  assertEquals(ranges.length, 2);
  for (const range of ranges) {
    assertEquals(range.base % 4096, 0);
    assertEquals(range.length % 4096, 0);
    const counts = frames.countStates(range.base / 4096, range.length / 4096);
    assertEquals(counts.reserved, range.length / 4096, range.what);
  }
  assert(ranges.some((r) => r.base === frames.stateAddr));
  assert(ranges.some((r) => r.base === frames.metadata.base));
});

Deno.test("KmemHeap.frameRanges() lists every frame the heap holds, by kind", () => {
  const frames = holedAllocator();
  const heap = KmemHeap.create(frames.memory, frames);
  const vas = [heap.kmalloc(24), heap.kmalloc(24), heap.kmalloc(1000), heap.kmalloc(100_000)];
  const ranges = heap.frameRanges();
  const kinds = new Set(ranges.map((r) => r.kind));
  assertEquals([...kinds].sort(), ["arena", "owner-table", "root", "slab"]);
  assertEquals(ranges.reduce((sum, r) => sum + r.frameCount, 0), heap.stats().framesMapped);
  for (let i = 1; i < ranges.length; i++) {
    assert(ranges[i - 1].firstFrame + ranges[i - 1].frameCount <= ranges[i].firstFrame);
  }
  for (const range of ranges) {
    const counts = frames.countStates(range.firstFrame, range.frameCount);
    assertEquals(counts.allocated, range.frameCount, range.kind);
  }
  const slabSizes = ranges.filter((r) => r.kind === "slab").map((r) => r.objectSizeBytes).sort();
  assertEquals(slabSizes, [1024, 32]);
  for (const va of vas) heap.kfree(va);
});
