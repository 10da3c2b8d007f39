import { type FrameNumber, PhysicalMemory } from "../hal/mod.ts";
import { KernelError } from "../kernel/mod.ts";
import type { BootReservation } from "../kernel/boot/mod.ts";
import { EarlyFrameAllocator, FRAME_UNUSABLE, type FrameProvider } from "../kernel/mm/mod.ts";
import { assert, assertEquals, assertThrows, Xorshift32 } from "../testing/mod.ts";
import createBitmapFrames from "./bitmap_frames.ts";

const MIB = 2 ** 20;

/** A 32 MiB machine with a hole, reservations and the early allocator, as the kernel sets it up. */
function boot() {
  const memory = PhysicalMemory.contiguous(32 * MIB);
  const usableRegions = [{ base: 0, length: 0x9fc00 }, { base: MIB, length: 31 * MIB }];
  const reservations: BootReservation[] = [
    { base: 0, length: MIB, what: "first 1 MiB", source: "the PC's layout" },
    { base: MIB, length: 512 * 1024, what: "kernel image", source: "the test" },
  ];
  const early = new EarlyFrameAllocator(usableRegions, reservations);
  const frames = createBitmapFrames({ memory, usableRegions, reservations, early, debug: false });
  return { frames, early, reservations };
}

/** Every frame the allocator must never hand out: reservations and its own state. */
function neverHandedOut(frames: FrameProvider, early: EarlyFrameAllocator): Set<number> {
  const never = new Set<number>();
  for (const range of [...early.allocatedRanges, { base: 0, length: 1.5 * MIB }]) {
    for (let pa = range.base; pa < range.base + range.length; pa += 4096) never.add(pa / 4096);
  }
  for (const range of frames.metadataRanges()) {
    for (let pa: number = range.base; pa < range.base + range.length; pa += 4096) {
      never.add(pa / 4096);
    }
  }
  return never;
}

Deno.test("bitmap_frames: 20000 seeded operations against a shadow model never hand a frame out twice", () => {
  const { frames, early } = boot();
  const never = neverHandedOut(frames, early);
  const rng = new Xorshift32(0xb17a9);
  const held = new Set<number>();
  const initialFree = frames.stats().freeFrames;
  for (let op = 0; op < 20000; op++) {
    // Allocate and free about evenly, keeping at most 3000 frames: well below the 7.5k there are.
    const choice = held.size >= 3000 ? 9 : rng.below(10);
    if (choice < 4 || held.size === 0) {
      const frame = frames.allocate();
      assert(!held.has(frame), `frame ${frame} handed out twice`);
      assert(!never.has(frame), `frame ${frame} is reserved or the allocator's state`);
      held.add(frame);
    } else if (choice < 5) {
      const count = 1 + rng.below(16);
      const align = 2 ** rng.below(6);
      let first: number;
      try {
        first = frames.allocateContiguous(count, align);
      } catch (error) {
        // Fragmentation is allowed; refusing a run that is free is not.
        assert(error instanceof KernelError && error.code === "OutOfMemory", String(error));
        assertEquals(firstFreeRun(frames, count, align), -1, "OutOfMemory with a free run");
        continue;
      }
      assertEquals(first % align, 0);
      for (let f = first; f < first + count; f++) {
        assert(!held.has(f) && !never.has(f), `frame ${f} of a run is not free`);
        held.add(f);
      }
    } else {
      const list = [...held];
      const frame = list[rng.below(list.length)] as FrameNumber;
      frames.free(frame);
      held.delete(frame);
    }
    if (op % 1000 === 0) {
      const stats = frames.stats();
      assertEquals(stats.freeFrames, initialFree - held.size);
      assertEquals(
        stats.totalFrames,
        stats.freeFrames + stats.allocatedFrames + stats.reservedFrames,
      );
    }
  }
  for (const frame of held) frames.free(frame as FrameNumber);
  assertEquals(frames.stats().freeFrames, initialFree);
});

/** The first aligned run of `count` free frames, by `stateOf`, or -1. */
function firstFreeRun(frames: FrameProvider, count: number, align: number): number {
  const end = frames.stats().totalFrames;
  for (let start = 0; start + count <= end; start += align) {
    let free = 0;
    while (free < count && frames.stateOf((start + free) as FrameNumber) === "free") free++;
    if (free === count) return start;
  }
  return -1;
}

Deno.test("bitmap_frames: errors have the contract's codes and change nothing", () => {
  const { frames } = boot();
  const frame = frames.allocate();
  frames.free(frame);
  const free = frames.stats().freeFrames;
  const code = (fn: () => unknown) => assertThrows(fn, KernelError).code;
  assertEquals(code(() => frames.free(frame)), "DoubleFree");
  assertEquals(code(() => frames.free(0x10 as FrameNumber)), "InvalidFrame"); // reserved
  assertEquals(code(() => frames.free(0x100000 as FrameNumber)), "InvalidFrame"); // outside
  assertEquals(code(() => frames.allocateSpecific(0x10 as FrameNumber)), "InvalidFrame");
  const taken = frames.allocateSpecific(frame);
  assertEquals(code(() => frames.allocateSpecific(taken)), "FrameInUse");
  assertEquals(code(() => frames.freeContiguous(taken, 2)), "DoubleFree");
  assertEquals(frames.stateOf(taken), "allocated", "a failed freeContiguous freed nothing");
  assertThrows(() => frames.allocateContiguous(4, 3), RangeError);
  assertThrows(() => frames.allocateContiguous(0, 1), RangeError);
  frames.free(taken);
  assertEquals(frames.stats().freeFrames, free);
});

Deno.test("bitmap_frames: runs out of memory with OutOfMemory, and a contiguous run too", () => {
  const { frames } = boot();
  const taken: FrameNumber[] = [];
  const free = frames.stats().freeFrames;
  for (let i = 0; i < free; i++) taken.push(frames.allocate());
  assertEquals(assertThrows(() => frames.allocate(), KernelError).code, "OutOfMemory");
  assertEquals(
    assertThrows(() => frames.allocateContiguous(2, 1), KernelError).code,
    "OutOfMemory",
  );
  frames.freeContiguous(taken[10], 1);
  assertEquals(frames.allocate(), taken[10]);
});

Deno.test("bitmap_frames: the reference counts say which frames it may hand out", () => {
  const { frames } = boot();
  assertEquals(frames.metadata.refcount(0x10 as FrameNumber), FRAME_UNUSABLE);
  assertEquals(frames.stateOf(0x10 as FrameNumber), "reserved");
  const frame = frames.allocate();
  assertEquals(frames.metadata.refcount(frame), 0);
  const details = frames.stats().details ?? {};
  assertEquals(details.allocations, 1);
  assertEquals(details.nextFitCursor, frame + 1);
});
