import { type FrameNumber, PhysicalMemory, type VirtAddr } from "../../hal/mod.ts";
import {
  assert,
  assertEquals,
  assertStringIncludes,
  assertThrows,
  Xorshift32,
} from "../../testing/mod.ts";
import { KernelError, type KernelErrorCode } from "../errors.ts";
import type { FrameSource } from "./frame_source.ts";
import { ROOT_ALLOCATIONS_W, ROOT_FREES_W } from "./_kmem_layout.ts";
import { HeapCorruption, KMALLOC_MAX_BYTES, KmemHeap, type KmemHeapOptions } from "./kmem_heap.ts";

const MiB = 2 ** 20;
/** Object sizes of the heap's size classes, as documented. */
const CLASS_SIZES = [
  16,
  32,
  48,
  64,
  80,
  96,
  112,
  128,
  160,
  192,
  224,
  256, //
  320,
  384,
  448,
  512,
  640,
  768,
  896,
  1024,
  1280,
  1536,
  1792,
  2048,
];

/**
 * A test-only frame source: lowest-free-first over all of RAM, counting free
 * frames, filling every frame it hands out with 0xcc so the heap cannot rely
 * on zeroed memory, and rejecting double and foreign frees.
 */
class TestFrameSource implements FrameSource {
  readonly #memory: PhysicalMemory;
  readonly #isUsed: Uint8Array;
  #freeFrameCount: number;
  /** Frames it will still hand out before failing with OutOfMemory. */
  quotaFrames = Infinity;

  constructor(memory: PhysicalMemory) {
    this.#memory = memory;
    this.#isUsed = new Uint8Array(memory.endBytes / 4096);
    this.#freeFrameCount = this.#isUsed.length;
  }

  /** Frames not handed out. */
  get freeFrameCount(): number {
    return this.#freeFrameCount;
  }

  allocate(): FrameNumber {
    return this.allocateContiguous(1, 1);
  }

  /** Marks frames as used without handing them out, as firmware or a kernel image would. */
  reserve(first: number, frameCount: number): void {
    this.#isUsed.fill(1, first, first + frameCount);
    this.#freeFrameCount -= frameCount;
  }

  allocateContiguous(frameCount: number, alignFrames: number): FrameNumber {
    const isUsed = this.#isUsed;
    if (frameCount > this.quotaFrames) {
      throw new KernelError("OutOfMemory", `Quota allows no ${frameCount} more frames`);
    }
    for (let first = 0; first + frameCount <= isUsed.length; first += alignFrames) {
      let run = 0;
      while (run < frameCount && isUsed[first + run] === 0) run++;
      if (run < frameCount) continue;
      isUsed.fill(1, first, first + frameCount);
      this.#freeFrameCount -= frameCount;
      this.quotaFrames -= frameCount;
      this.#memory.u8.fill(0xcc, first * 4096, (first + frameCount) * 4096);
      return first as FrameNumber;
    }
    throw new KernelError("OutOfMemory", `No ${frameCount} contiguous free frames`);
  }

  free(frame: FrameNumber): void {
    this.freeContiguous(frame, 1);
  }

  freeContiguous(frame: FrameNumber, frameCount: number): void {
    for (let f = frame; f < frame + frameCount; f++) {
      if (this.#isUsed[f] !== 1) throw new KernelError("DoubleFree", `Frame ${f} is not allocated`);
    }
    this.#isUsed.fill(0, frame, frame + frameCount);
    this.#freeFrameCount += frameCount;
    this.quotaFrames += frameCount;
  }
}

/** A fresh machine with a heap on it. */
function setup(ramBytes = 16 * MiB, options?: KmemHeapOptions) {
  const memory = PhysicalMemory.contiguous(ramBytes);
  const frames = new TestFrameSource(memory);
  const initialFreeFrames = frames.freeFrameCount;
  const heap = KmemHeap.create(memory, frames, options);
  return { memory, frames, heap, initialFreeFrames };
}

/** Asserts that `fn` throws a KernelError with `code`; returns it. */
function assertKernelError(fn: () => unknown, code: KernelErrorCode): KernelError {
  const error = assertThrows(fn, KernelError);
  assertEquals(error.code, code, error.message);
  return error;
}

/** Fills `sizeBytes` at physical `address` with a pattern derived from `id`. */
function fillPattern(memory: PhysicalMemory, address: number, sizeBytes: number, id: number): void {
  const u8 = memory.u8;
  for (let i = 0; i < sizeBytes; i++) u8[address + i] = (id * 131 + i * 7) & 0xff;
}

/** Whether the pattern of `id` is intact. */
function hasPattern(
  memory: PhysicalMemory,
  address: number,
  sizeBytes: number,
  id: number,
): boolean {
  const u8 = memory.u8;
  for (let i = 0; i < sizeBytes; i++) {
    if (u8[address + i] !== ((id * 131 + i * 7) & 0xff)) return false;
  }
  return true;
}

/** The block whose header is at `address`, as dump() shows it. */
function blockAt(
  heap: KmemHeap,
  address: number,
): { sizeBytes: number; state: string } | undefined {
  for (const line of heap.dump().split("\n")) {
    const [blockAddress, kind, size, unit, state] = line.trim().split(/\s+/);
    if (kind === "block" && unit === "B" && Number(blockAddress) === address) {
      return { sizeBytes: Number(size), state };
    }
  }
  return undefined;
}

Deno.test("KmemHeap.create() takes one root frame and starts empty and consistent", () => {
  const { heap, frames, initialFreeFrames } = setup();
  assertEquals(frames.freeFrameCount, initialFreeFrames - 1);
  const stats = heap.stats();
  assertEquals(stats.bytesInUse, 0);
  assertEquals(stats.bytesMapped, 4096);
  assertEquals(stats.allocations, 0);
  assertEquals(stats.liveAllocations, 0);
  assertEquals(stats.sizeClasses.map((c) => c.objectSizeBytes), CLASS_SIZES);
  heap.checkInvariants();
});

Deno.test("KmemHeap.create() rejects a direct-map offset that is not page aligned", () => {
  const memory = PhysicalMemory.contiguous(16 * MiB);
  const frames = new TestFrameSource(memory);
  assertThrows(() => KmemHeap.create(memory, frames, { directMapOffset: 100 }), RangeError);
  assertThrows(() => KmemHeap.create(memory, frames, { directMapOffset: 2 ** 48 }), RangeError);
});

Deno.test("KmemHeap.kmalloc() serves every size class from slabs of that object size", () => {
  const { heap, frames, memory, initialFreeFrames } = setup();
  for (const objectBytes of CLASS_SIZES) {
    const classStats = () =>
      heap.stats().sizeClasses.find((c) => c.objectSizeBytes === objectBytes)!;
    const perSlab = classStats().objectsPerSlab;
    assert(perSlab >= 4, `class ${objectBytes} holds ${perSlab} objects per slab`);
    // One more object than a slab holds forces a second slab.
    const vas: VirtAddr[] = [];
    for (let i = 0; i <= perSlab; i++) {
      const sizeBytes = objectBytes - (i % 16);
      const va = heap.kmalloc(sizeBytes);
      assertEquals(heap.usableSize(va), objectBytes);
      assertEquals(va % 16, 0);
      const naturalAlign = objectBytes & -objectBytes;
      assertEquals(va % naturalAlign, 0, `class ${objectBytes} object at ${va}`);
      fillPattern(memory, va, objectBytes, i);
      vas.push(va);
    }
    assertEquals(classStats().slabCount, 2);
    assertEquals(classStats().objectsInUse, perSlab + 1);
    heap.checkInvariants();
    vas.forEach((va, i) => {
      assert(hasPattern(memory, va, objectBytes, i), `object ${i} of class ${objectBytes} intact`);
      heap.kfree(va);
    });
    // One empty slab stays cached; the other went back.
    assertEquals(classStats().slabCount, 1);
    heap.checkInvariants();
  }
  heap.shrink();
  assertEquals(frames.freeFrameCount, initialFreeFrames - 1);
});

Deno.test("KmemHeap.kmalloc() aligns small and large allocations to every power of two up to 4096", () => {
  const { heap, memory } = setup(32 * MiB);
  const live: { va: VirtAddr; sizeBytes: number; id: number }[] = [];
  let id = 0;
  for (let alignBytes = 1; alignBytes <= 4096; alignBytes *= 2) {
    for (const sizeBytes of [1, 24, 100, 1000, 2048, 2049, 3000, 10000]) {
      const va = heap.kmalloc(sizeBytes, { alignBytes });
      assertEquals(va % Math.max(alignBytes, 16), 0, `${sizeBytes} bytes aligned to ${alignBytes}`);
      assert(heap.usableSize(va) >= sizeBytes);
      fillPattern(memory, va, sizeBytes, ++id);
      live.push({ va, sizeBytes, id });
    }
  }
  heap.checkInvariants();
  for (const { va, sizeBytes, id } of live) {
    assert(hasPattern(memory, va, sizeBytes, id), `allocation ${id} intact`);
    heap.kfree(va);
  }
  heap.checkInvariants();
  assertEquals(heap.stats().liveAllocations, 0);
});

Deno.test("KmemHeap.kmalloc() fails with InvalidAlignment for an alignment that is not a power of two up to 4096", () => {
  const { heap } = setup();
  for (const alignBytes of [0, 3, 24, 8192, 1.5, -16, NaN]) {
    const error = assertKernelError(() => heap.kmalloc(64, { alignBytes }), "InvalidAlignment");
    assertStringIncludes(error.message, "power of two from 1 to 4096");
  }
});

Deno.test("KmemHeap.kmalloc() fails with InvalidSize for zero, fractional, negative and oversized requests", () => {
  const { heap } = setup();
  assertStringIncludes(
    assertKernelError(() => heap.kmalloc(0), "InvalidSize").message,
    "Cannot allocate 0 bytes",
  );
  for (const sizeBytes of [-1, 1.5, NaN, Infinity]) {
    assertKernelError(() => heap.kmalloc(sizeBytes), "InvalidSize");
  }
  const error = assertKernelError(() => heap.kmalloc(KMALLOC_MAX_BYTES + 1), "InvalidSize");
  assertStringIncludes(error.message, "64 MiB");
  assertKernelError(() => heap.kzalloc(0), "InvalidSize");
  heap.checkInvariants();
});

Deno.test("KmemHeap.kmalloc() serves the 64 MiB maximum from an arena of its own and gives it back on free", () => {
  const { heap, frames, memory, initialFreeFrames } = setup(96 * MiB);
  const va = heap.kmalloc(KMALLOC_MAX_BYTES);
  assert(heap.usableSize(va) >= KMALLOC_MAX_BYTES);
  memory.u8[va + KMALLOC_MAX_BYTES - 1] = 0x42;
  heap.checkInvariants();
  heap.kfree(va);
  // Not ordinary-sized, so not cached: everything but the root is back.
  assertEquals(frames.freeFrameCount, initialFreeFrames - 1);
  heap.checkInvariants();
});

Deno.test("KmemHeap.kmalloc() fails with OutOfMemory when the frame source runs dry and stays consistent", () => {
  const { heap, frames, initialFreeFrames } = setup(16 * MiB);
  const vas: VirtAddr[] = [];
  const error = assertKernelError(() => {
    for (;;) vas.push(heap.kmalloc(vas.length % 2 === 0 ? 500 : 5000));
  }, "OutOfMemory");
  assertStringIncludes(error.message, "out of memory");
  assert(vas.length > 1000);
  assertKernelError(() => heap.kmalloc(1 * MiB), "OutOfMemory");
  heap.checkInvariants();
  for (const va of vas) heap.kfree(va);
  heap.shrink();
  assertEquals(frames.freeFrameCount, initialFreeFrames - 1);
  heap.checkInvariants();
});

Deno.test("KmemHeap.create() fails with OutOfMemory when no frame is left for its root", () => {
  const memory = PhysicalMemory.contiguous(16 * MiB);
  const frames = new TestFrameSource(memory);
  frames.quotaFrames = 0;
  const error = assertKernelError(() => KmemHeap.create(memory, frames), "OutOfMemory");
  assertStringIncludes(error.message, "root descriptor");
});

Deno.test("KmemHeap.create() on 1 GiB of RAM takes a two-frame root and destroy() gives it back", () => {
  const { heap, frames, initialFreeFrames } = setup(1024 * MiB);
  // 256 directory entries of 8 bytes no longer fit after the fixed 3.5 KiB.
  assertEquals(heap.stats().metadataFrames, 2);
  const va = heap.kmalloc(100);
  heap.checkInvariants();
  heap.kfree(va);
  heap.destroy();
  assertEquals(frames.freeFrameCount, initialFreeFrames);
});

Deno.test("KmemHeap.kmalloc() gives the slab's frames back when no frame is left for an owner-table leaf", () => {
  const { heap, frames } = setup(16 * MiB);
  // Every frame of the first 4 MiB is taken: the next slab lands in the
  // second 4 MiB, whose owner-table leaf does not exist yet.
  frames.reserve(1, 1023);
  const freeBefore = frames.freeFrameCount;
  frames.quotaFrames = 1; // The slab's frame, but not the leaf's.
  assertKernelError(() => heap.kmalloc(64), "OutOfMemory");
  assertEquals(frames.freeFrameCount, freeBefore);
  assertEquals(heap.stats().framesMapped, 1);
  heap.checkInvariants();
  frames.quotaFrames = 2;
  const va = heap.kmalloc(64);
  assertEquals(va, 1024 * 4096 + 64); // The first object of a slab at frame 1024.
  frames.quotaFrames = 0;
  assertKernelError(() => heap.kmalloc(100), "OutOfMemory"); // A new class needs a new slab.
  assertKernelError(() => heap.kmalloc(3000), "OutOfMemory"); // So does the first arena.
  heap.kfree(va);
  heap.checkInvariants();
});

Deno.test("KmemHeap.krealloc() grows a large block over its whole free neighbour when too little would be left", () => {
  const { heap } = setup();
  const [a, b, c] = [heap.kmalloc(3000), heap.kmalloc(3000), heap.kmalloc(3000)];
  const usable = heap.usableSize(a);
  heap.kfree(b);
  // a + b less 16 bytes: the 16-byte remainder cannot be a block of its own.
  assertEquals(heap.krealloc(a, 2 * usable), a);
  assertEquals(heap.usableSize(a), 2 * usable + 16);
  heap.checkInvariants();
  heap.kfree(a);
  heap.kfree(c);
  heap.checkInvariants();
});

Deno.test("KmemHeap counts allocations and frees past 2^32", () => {
  const { heap, memory } = setup();
  const rootWord = heap.rootAddress / 4;
  // Pretend 2^32 - 1 allocations and frees have happened.
  memory.u32[rootWord + ROOT_ALLOCATIONS_W] = 0xffffffff;
  memory.u32[rootWord + ROOT_FREES_W] = 0xffffffff;
  heap.kfree(heap.kmalloc(8));
  const stats = heap.stats();
  assertEquals(stats.allocations, 2 ** 32);
  assertEquals(stats.frees, 2 ** 32);
  heap.checkInvariants();
});

Deno.test("KmemHeap.kfree() merges a large block with free neighbours on both sides", () => {
  const { heap, frames, initialFreeFrames } = setup();
  const [a, b, c, d, e] = [3000, 3000, 3000, 3000, 3000].map((size) => heap.kmalloc(size));
  const blockBytes = heap.usableSize(a) + 16;
  assertEquals(b - a, blockBytes);
  assertEquals(c - b, blockBytes);
  // Left: b merges into the free a.
  heap.kfree(a);
  heap.kfree(b);
  assertEquals(blockAt(heap, a - 16), { sizeBytes: 2 * blockBytes, state: "free" });
  // Right: c merges with the free d.
  heap.kfree(d);
  heap.checkInvariants();
  assertEquals(blockAt(heap, d - 16), { sizeBytes: blockBytes, state: "free" });
  // Both sides: c joins a+b on its left and d on its right.
  heap.kfree(c);
  assertEquals(blockAt(heap, a - 16), { sizeBytes: 4 * blockBytes, state: "free" });
  assertEquals(blockAt(heap, b - 16), undefined);
  heap.checkInvariants();
  // The last block merges with everything: the arena is empty and cached.
  heap.kfree(e);
  const stats = heap.stats();
  assertEquals(stats.arenaFrames, 16);
  assertEquals(stats.cachedFrames, 16);
  assertEquals(stats.bytesInUse, 0);
  heap.checkInvariants();
  assertEquals(heap.shrink(), 16);
  assertEquals(frames.freeFrameCount, initialFreeFrames - 1);
});

Deno.test("KmemHeap.kfree() merges with the right neighbour and reuses the merged block", () => {
  const { heap } = setup();
  const [a, b, c] = [heap.kmalloc(4000), heap.kmalloc(4000), heap.kmalloc(4000)];
  heap.kfree(c);
  heap.kfree(b);
  heap.checkInvariants();
  const bc = heap.kmalloc(8000);
  assertEquals(bc, b);
  heap.kfree(bc);
  heap.kfree(a);
  heap.checkInvariants();
});

Deno.test("KmemHeap gives fully free slabs and arenas back to the frame source", () => {
  const { heap, frames, initialFreeFrames } = setup();
  const small = Array.from({ length: 2000 }, () => heap.kmalloc(64));
  const large = Array.from({ length: 40 }, () => heap.kmalloc(6000));
  const taken = initialFreeFrames - frames.freeFrameCount;
  assert(taken > 40, `took ${taken} frames`);
  for (const va of small) heap.kfree(va);
  for (const va of large) heap.kfree(va);
  // One slab and one arena stay cached; the owner-table leaf and root remain.
  const cached = heap.stats().cachedFrames;
  assertEquals(cached, 1 + 16);
  assertEquals(frames.freeFrameCount, initialFreeFrames - 1 - 1 - cached);
  assertEquals(heap.stats().metadataFrames, 2);
  assertEquals(heap.shrink(), cached);
  assertEquals(frames.freeFrameCount, initialFreeFrames - 1);
  assertEquals(heap.stats().framesMapped, 1);
  heap.checkInvariants();
  heap.destroy();
  assertEquals(frames.freeFrameCount, initialFreeFrames);
});

Deno.test("KmemHeap.krealloc() keeps contents when growing and shrinking across slabs and arenas", () => {
  const { heap, memory } = setup();
  let va = heap.kmalloc(40);
  fillPattern(memory, va, 40, 7);
  // Grows within its 48-byte object: same address.
  assertEquals(heap.krealloc(va, 48), va);
  va = heap.krealloc(va, 1000);
  assert(hasPattern(memory, va, 40, 7));
  fillPattern(memory, va, 1000, 8);
  va = heap.krealloc(va, 5000); // Small to large.
  assert(hasPattern(memory, va, 1000, 8));
  fillPattern(memory, va, 5000, 9);
  // The rest of the arena is free: a large block grows in place.
  const grown = heap.krealloc(va, 20000);
  assertEquals(grown, va);
  assert(hasPattern(memory, va, 5000, 9));
  fillPattern(memory, va, 20000, 10);
  heap.checkInvariants();
  // Shrinks in place, splitting off a free tail.
  assertEquals(heap.krealloc(va, 3000), va);
  assertEquals(heap.usableSize(va), 3008);
  assert(hasPattern(memory, va, 3000, 10));
  heap.checkInvariants();
  const blocker = heap.kmalloc(3000);
  assertEquals(blocker, va + 3024);
  // The right neighbour is live now: growing moves the block.
  const moved = heap.krealloc(va, 9000);
  assert(moved !== va);
  assert(hasPattern(memory, moved, 3000, 10));
  // Large to small moves into a slab.
  const small = heap.krealloc(moved, 100);
  assertEquals(heap.usableSize(small), 112);
  assert(hasPattern(memory, small, 100, 10));
  // Shrinking a small object to under half its class moves it too.
  fillPattern(memory, small, 100, 11);
  const smaller = heap.krealloc(small, 20);
  assertEquals(heap.usableSize(smaller), 32);
  assert(hasPattern(memory, smaller, 20, 11));
  heap.checkInvariants();
  heap.kfree(smaller);
  heap.kfree(blocker);
  assertEquals(heap.stats().liveAllocations, 0);
  const stats = heap.stats();
  assertEquals(stats.allocations, stats.frees);
  heap.checkInvariants();
});

Deno.test("KmemHeap.krealloc() honours an alignment and rejects a pointer that is not live", () => {
  const { heap, memory } = setup();
  const va = heap.kmalloc(100);
  fillPattern(memory, va, 100, 3);
  const aligned = heap.krealloc(va, 100, { alignBytes: 4096 });
  assertEquals(aligned % 4096, 0);
  assert(hasPattern(memory, aligned, 100, 3));
  assertKernelError(() => heap.krealloc(va, 200), "DoubleFree");
  assertKernelError(() => heap.krealloc((aligned + 16) as VirtAddr, 200), "InvalidFree");
  assertKernelError(() => heap.krealloc(aligned, 0), "InvalidSize");
  heap.kfree(aligned);
  heap.checkInvariants();
});

Deno.test("KmemHeap.kzalloc() zeroes memory even when it reuses a freed allocation", () => {
  const { heap, memory } = setup();
  for (const sizeBytes of [24, 700, 2048, 3000, 50000]) {
    const dirty = heap.kmalloc(sizeBytes);
    memory.u8.fill(0xff, dirty, dirty + heap.usableSize(dirty));
    heap.kfree(dirty);
    const clean = heap.kzalloc(sizeBytes);
    assertEquals(clean, dirty, `${sizeBytes} bytes reuse the freed memory`);
    const usable = heap.usableSize(clean);
    assert(memory.u8.subarray(clean, clean + usable).every((byte) => byte === 0));
    heap.kfree(clean);
  }
  const aligned = heap.kzalloc(100, { alignBytes: 256 });
  assertEquals(aligned % 256, 0);
  heap.kfree(aligned);
  heap.checkInvariants();
});

Deno.test("KmemHeap.kfree() fails with InvalidFree for addresses the heap did not hand out", () => {
  const { heap, memory } = setup();
  const small = heap.kmalloc(100);
  const large = heap.kmalloc(10000);
  const foreign = [
    0, // Frame 0 holds the root descriptor, not an allocation.
    heap.rootAddress + 0x100,
    memory.endBytes - 4096, // RAM the heap does not own.
    memory.endBytes, // Past the end of RAM.
    memory.endBytes + 10 * MiB,
    2 ** 48 - 16,
    -16,
    NaN,
    small + 0.5,
    small + 1, // Misaligned.
    small + 16, // Interior of a small object.
    small - 64, // Into its slab's header (or the previous object).
    (small & ~4095) + 16, // A slab header.
    large + 16, // Interior of a large block.
    large + 4096,
    large - 16, // The block header.
    (large & ~4095) + 64, // The arena's bitmap.
  ];
  for (const va of foreign) {
    const error = assertKernelError(() => heap.kfree(va as VirtAddr), "InvalidFree");
    assertStringIncludes(error.message, "not allocated by the heap");
  }
  assertKernelError(() => heap.usableSize((small + 16) as VirtAddr), "InvalidAddress");
  heap.checkInvariants();
  heap.kfree(small);
  heap.kfree(large);
  heap.checkInvariants();
});

Deno.test("KmemHeap.kfree() fails with DoubleFree for a small or large allocation freed twice", () => {
  const { heap } = setup();
  const keep = heap.kmalloc(100); // Keeps the slab from emptying.
  const small = heap.kmalloc(100);
  const left = heap.kmalloc(3000);
  const large = heap.kmalloc(3000);
  const right = heap.kmalloc(3000);
  heap.kfree(small);
  heap.kfree(large);
  const error = assertKernelError(() => heap.kfree(small), "DoubleFree");
  assertEquals(error.message, `Cannot free ${"0x" + small.toString(16)}: already freed`);
  assertKernelError(() => heap.kfree(large), "DoubleFree");
  assertKernelError(() => heap.usableSize(large), "InvalidAddress");
  heap.checkInvariants();
  for (const va of [keep, left, right]) heap.kfree(va);
  heap.checkInvariants();
});

Deno.test("KmemHeap hands out direct-map virtual addresses and names them in canonical form", () => {
  const { heap, memory } = setup(16 * MiB, { directMapOffset: 2 ** 47 });
  const va = heap.kmalloc(64);
  assert(va >= 2 ** 47 && va < 2 ** 47 + memory.endBytes);
  const pa = va - 2 ** 47;
  memory.u32[pa / 4] = 0x12345678;
  heap.kfree(va);
  const error = assertKernelError(() => heap.kfree(va), "DoubleFree");
  assertStringIncludes(error.message, "Cannot free 0xffff8000");
  // The identity address of the same memory is not what the heap handed out.
  assertKernelError(() => heap.kfree(pa as VirtAddr), "InvalidFree");
  assertStringIncludes(heap.dump(), "0xffff8000");
  heap.checkInvariants();
});

Deno.test("KmemHeap in debug mode poisons memory and catches a write after free", () => {
  const { heap, memory } = setup(16 * MiB, { debug: { poison: true } });
  const keep = heap.kmalloc(64);
  const small = heap.kmalloc(64);
  assertEquals(memory.u8[small + 10], 0x5a);
  heap.kfree(small);
  assertEquals(memory.u8[small + 10], 0x6b);
  const large = heap.kmalloc(5000);
  const guard = heap.kmalloc(5000);
  heap.kfree(large);
  assertEquals(memory.u8[large + 100], 0x6b);
  heap.checkInvariants();
  memory.u8[small + 10] = 1; // A use after free.
  assertThrows(() => heap.checkInvariants(), HeapCorruption, "written after being freed");
  memory.u8[small + 10] = 0x6b;
  memory.u8[large + 100] = 1;
  assertThrows(() => heap.checkInvariants(), HeapCorruption, "written after being freed");
  memory.u8[large + 100] = 0x6b;
  heap.checkInvariants();
  heap.kfree(keep);
  heap.kfree(guard);
  heap.checkInvariants();
});

Deno.test("KmemHeap.checkInvariants() reports a corrupted header as HeapCorruption", () => {
  const { heap, memory } = setup();
  const va = heap.kmalloc(5000);
  heap.kmalloc(5000);
  memory.u32[(va - 16) / 4 + 2] = 0; // The block magic.
  assertThrows(() => heap.checkInvariants(), HeapCorruption, "block magic");
  assertThrows(() => heap.kfree(va), HeapCorruption, "overwritten");
});

Deno.test("KmemHeap.stats() and dump() describe the heap", () => {
  const { heap } = setup();
  const a = heap.kmalloc(100);
  const b = heap.kmalloc(3000);
  heap.kmalloc(100);
  heap.kfree(a);
  const stats = heap.stats();
  assertEquals(stats.liveAllocations, 2);
  assertEquals(stats.allocations, 3);
  assertEquals(stats.frees, 1);
  assertEquals(stats.bytesInUse, 112 + heap.usableSize(b));
  assertEquals(stats.largeBytesInUse, heap.usableSize(b));
  assertEquals(stats.framesMapped, 1 + 1 + 1 + 16); // Root, leaf, slab, arena.
  assertEquals(stats.bytesMapped, stats.framesMapped * 4096);
  assertEquals(stats.metadataFrames, 2);
  assert(stats.bytesFree > 60000);
  const dump = heap.dump();
  assertStringIncludes(dump, "kmem heap: 19 frames mapped");
  assertStringIncludes(dump, "112 B");
  assertStringIncludes(dump, "1/36");
  assertStringIncludes(dump, "used (3000 B asked)");
  assertStringIncludes(dump, "free");
});

Deno.test("KmemHeap survives 150,000 random operations with no overlap, intact contents and exact stats", () => {
  const { heap, frames, memory, initialFreeFrames } = setup(64 * MiB);
  const rng = new Xorshift32(0x5eed1234);
  // Live allocations, by slot: address, requested size, usable size, id.
  const vas: number[] = [];
  const sizes: number[] = [];
  const usables: number[] = [];
  const ids: number[] = [];
  // Test-side interval structure: starts and ends sorted by start.
  const starts: number[] = [];
  const ends: number[] = [];
  const search = (address: number): number => {
    let low = 0;
    let high = starts.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (starts[mid] < address) low = mid + 1;
      else high = mid;
    }
    return low;
  };
  const addInterval = (start: number, end: number) => {
    const i = search(start);
    assert(
      i === 0 || ends[i - 1] <= start,
      `[${start}, ${end}) overlaps a live allocation before it`,
    );
    assert(
      i === starts.length || starts[i] >= end,
      `[${start}, ${end}) overlaps a live allocation after it`,
    );
    starts.splice(i, 0, start);
    ends.splice(i, 0, end);
  };
  const removeInterval = (start: number) => {
    const i = search(start);
    assertEquals(starts[i], start);
    starts.splice(i, 1);
    ends.splice(i, 1);
  };
  const randomSize = (): number => {
    const kind = rng.below(100);
    if (kind < 80) return 1 + rng.below(512);
    if (kind < 92) return 513 + rng.below(1536);
    if (kind < 99) return 2049 + rng.below(30000);
    return 32768 + rng.below(300000);
  };
  let nextId = 0;
  let usableTotal = 0;
  const OPERATIONS = 150_000;
  for (let op = 0; op < OPERATIONS; op++) {
    const roll = rng.below(100);
    const target = vas.length < 50 ? 60 : vas.length > 1500 ? 35 : 50;
    if (vas.length === 0 || roll < target) {
      const sizeBytes = randomSize();
      const alignBytes = rng.below(8) === 0 ? 1 << rng.below(13) : undefined;
      const zeroed = rng.below(10) === 0;
      const options = alignBytes === undefined ? undefined : { alignBytes };
      const va = zeroed ? heap.kzalloc(sizeBytes, options) : heap.kmalloc(sizeBytes, options);
      if (alignBytes !== undefined) assertEquals(va % alignBytes, 0);
      const usable = heap.usableSize(va);
      assert(usable >= sizeBytes);
      if (zeroed) assert(memory.u8.subarray(va, va + usable).every((byte) => byte === 0));
      addInterval(va, va + usable);
      const id = nextId++;
      fillPattern(memory, va, sizeBytes, id);
      vas.push(va);
      sizes.push(sizeBytes);
      usables.push(usable);
      ids.push(id);
      usableTotal += usable;
    } else if (roll < 92) {
      const slot = rng.below(vas.length);
      assert(
        hasPattern(memory, vas[slot], sizes[slot], ids[slot]),
        `allocation ${ids[slot]} intact`,
      );
      heap.kfree(vas[slot] as VirtAddr);
      removeInterval(vas[slot]);
      usableTotal -= usables[slot];
      const last = vas.length - 1;
      vas[slot] = vas[last];
      sizes[slot] = sizes[last];
      usables[slot] = usables[last];
      ids[slot] = ids[last];
      vas.pop();
      sizes.pop();
      usables.pop();
      ids.pop();
    } else {
      const slot = rng.below(vas.length);
      const newSize = randomSize();
      assert(
        hasPattern(memory, vas[slot], sizes[slot], ids[slot]),
        `allocation ${ids[slot]} intact`,
      );
      const va = heap.krealloc(vas[slot] as VirtAddr, newSize);
      const kept = Math.min(sizes[slot], newSize);
      assert(hasPattern(memory, va, kept, ids[slot]), `krealloc kept allocation ${ids[slot]}`);
      removeInterval(vas[slot]);
      const usable = heap.usableSize(va);
      addInterval(va, va + usable);
      usableTotal += usable - usables[slot];
      const id = nextId++;
      fillPattern(memory, va, newSize, id);
      vas[slot] = va;
      sizes[slot] = newSize;
      usables[slot] = usable;
      ids[slot] = id;
    }
    if (op % 1000 === 0) {
      const stats = heap.stats();
      assertEquals(stats.bytesInUse, usableTotal);
      assertEquals(stats.liveAllocations, vas.length);
    }
    if (op % 10_000 === 0) heap.checkInvariants();
  }
  heap.checkInvariants();
  for (let slot = 0; slot < vas.length; slot++) {
    assert(hasPattern(memory, vas[slot], sizes[slot], ids[slot]), `allocation ${ids[slot]} intact`);
    heap.kfree(vas[slot] as VirtAddr);
  }
  heap.checkInvariants();
  const stats = heap.stats();
  assertEquals(stats.bytesInUse, 0);
  assertEquals(stats.allocations, stats.frees);
  heap.shrink();
  assertEquals(frames.freeFrameCount, initialFreeFrames - 1, "all but the root frame given back");
  heap.destroy();
  assertEquals(frames.freeFrameCount, initialFreeFrames, "frames taken == frames given back");
});

Deno.test("KmemHeap with poisoning survives 30,000 random operations with its invariants intact", () => {
  const { heap, frames, initialFreeFrames } = setup(32 * MiB, { debug: { poison: true } });
  const rng = new Xorshift32(0xc0ffee);
  const live: VirtAddr[] = [];
  const randomSize = () => rng.below(5) === 0 ? 2049 + rng.below(20000) : 1 + rng.below(2048);
  for (let op = 0; op < 30_000; op++) {
    const roll = rng.below(10);
    if (live.length === 0 || (live.length < 400 && roll < 5)) {
      live.push(heap.kmalloc(randomSize()));
    } else if (roll === 9) {
      const slot = rng.below(live.length);
      live[slot] = heap.krealloc(live[slot], randomSize());
    } else {
      const slot = rng.below(live.length);
      heap.kfree(live[slot]);
      live[slot] = live[live.length - 1];
      live.pop();
    }
    if (op % 3000 === 0) heap.checkInvariants();
  }
  for (const va of live) heap.kfree(va);
  heap.checkInvariants();
  heap.destroy();
  assertEquals(frames.freeFrameCount, initialFreeFrames);
});
