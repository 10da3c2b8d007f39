import { type FrameNumber, type PhysAddr, PhysicalMemory } from "../../hal/mod.ts";
import { KernelError, type KernelErrorCode } from "../errors.ts";
import {
  assert,
  assertEquals,
  assertStringIncludes,
  assertThrows,
  Xorshift32,
} from "../../testing/mod.ts";
import {
  ALLOC_POISON_BYTE,
  FrameAllocator,
  type FrameAllocatorDebugOptions,
  FREE_POISON_BYTE,
} from "./frame_allocator.ts";
import { FRAME_UNUSED } from "./frame_metadata.ts";
import { ContigPages, heldFrames, Page } from "./page.ts";

const MIB = 2 ** 20;

/** An 8 MiB machine with the first MiB excluded; frames 0x100 and up are free. */
function machine(debug: FrameAllocatorDebugOptions = {}): FrameAllocator {
  return FrameAllocator.create(PhysicalMemory.contiguous(8 * MIB), {
    usableRegions: [{ base: 0, length: 8 * MIB }],
    exclusions: [{ base: 0, length: MIB }],
    debug,
  });
}

function code(fn: () => unknown): KernelErrorCode {
  return assertThrows(fn, KernelError).code;
}

Deno.test("Page.alloc() returns a zeroed frame unless told not to", () => {
  const frames = machine();
  const dirty = frames.allocate();
  frames.memory.u8.fill(0x77, dirty * 4096, dirty * 4096 + 4096);
  frames.free(dirty);
  {
    using page = Page.alloc(frames);
    assertEquals(page.frame, dirty);
    assert(page.bytes().every((b) => b === 0));
    page.bytes().fill(0x77);
  }
  using page = Page.alloc(frames, { zeroed: false });
  assertEquals(page.frame, dirty);
  assert(page.bytes().every((b) => b === 0x77));
  assertEquals(page.bytes().length, 4096);
  assertEquals(page.physAddr, dirty * 4096);
});

Deno.test("Page frees its frame when a using scope ends", () => {
  const frames = machine();
  const before = frames.stats();
  let frame: FrameNumber;
  {
    using page = Page.alloc(frames);
    frame = page.frame;
    assertEquals(page.refcount, 1);
    assertEquals(frames.stateOf(frame), "allocated");
    assertEquals(frames.stats().freeFrames, before.freeFrames - 1);
  }
  assertEquals(frames.stateOf(frame), "free");
  assertEquals(frames.metadata.refcount(frame), FRAME_UNUSED);
  assertEquals(frames.stats(), before);
});

Deno.test("Page.clone() shares the frame until the last handle is disposed", () => {
  const frames = machine();
  const page = Page.alloc(frames);
  const copy = page.clone();
  assertEquals(copy.frame, page.frame);
  assertEquals(page.refcount, 2);
  copy.bytes()[7] = 0xab;
  assertEquals(page.bytes()[7], 0xab);
  page[Symbol.dispose]();
  assertEquals(frames.stateOf(copy.frame), "allocated");
  assertEquals(copy.refcount, 1);
  const frame = copy.frame;
  copy[Symbol.dispose]();
  assertEquals(frames.stateOf(frame), "free");
});

Deno.test("Page methods throw UseAfterDispose on a disposed handle", () => {
  const frames = machine();
  const page = Page.alloc(frames);
  page[Symbol.dispose]();
  assert(page.isDisposed);
  assertThrows(
    () => page.clone(),
    KernelError,
    "Cannot clone page at frame 0x100: handle already disposed",
  );
  for (
    const use of [
      () => page.frame,
      () => page.physAddr,
      () => page.refcount,
      () => page.clone(),
      () => page.bytes(),
      () => page.intoRaw(),
      () => page[Symbol.dispose](),
    ]
  ) {
    assertEquals(code(use), "UseAfterDispose");
  }
});

Deno.test("Page.intoRaw() and Page.fromRaw() pass ownership through a physical address", () => {
  const frames = machine();
  const page = Page.alloc(frames);
  page.bytes()[0] = 0x5a;
  const pa = page.intoRaw();
  assert(page.isDisposed);
  assertEquals(frames.metadata.refcount((pa / 4096) as FrameNumber), 1);
  const back = Page.fromRaw(frames, pa);
  assertEquals(back.physAddr, pa);
  assertEquals(back.bytes()[0], 0x5a);
  assertEquals(back.refcount, 1);
  back[Symbol.dispose]();
  assertEquals(frames.stateOf((pa / 4096) as FrameNumber), "free");
});

Deno.test("Page.fromRaw() rejects addresses no handle gave away", () => {
  const frames = machine();
  assertThrows(
    () => Page.fromRaw(frames, 0x20_0000 as PhysAddr),
    KernelError,
    "not held by any page handle",
  );
  assertThrows(
    () => Page.fromRaw(frames, 0x20_0010 as PhysAddr),
    KernelError,
    "not the start of a frame",
  );
  assertEquals(code(() => Page.fromRaw(frames, 0x10_0000 as PhysAddr)), "InvalidFrame");
  assertEquals(code(() => Page.fromRaw(frames, (64 * MIB) as PhysAddr)), "InvalidFrame");
});

Deno.test("Page reports RefcountUnderflow when one reference is adopted twice", () => {
  const frames = machine();
  const pa = Page.alloc(frames).intoRaw();
  const first = Page.fromRaw(frames, pa);
  const second = Page.fromRaw(frames, pa); // a bug: only one reference exists
  first[Symbol.dispose]();
  const error = assertThrows(
    () => second[Symbol.dispose](),
    KernelError,
    "reference count is already 0",
  );
  assertEquals(error.code, "RefcountUnderflow");
  assertEquals(frames.stateOf((pa / 4096) as FrameNumber), "free");
});

Deno.test("Page.alloc() catches an allocator that hands out a frame a handle holds", () => {
  const frames = machine();
  const frame = frames.allocate();
  frames.free(frame);
  frames.metadata.fill(frame, 1, 1); // corrupted: a free frame that a handle seems to hold
  assertThrows(() => frames.checkInvariants(), Error, "frame 0x100 is free but its metadata is 1");
  const error = assertThrows(() => Page.alloc(frames), KernelError, "held by 1 page handle");
  assertEquals(error.code, "FrameInUse");
});

Deno.test("Page.alloc() fails with OutOfMemory when memory is full", () => {
  const frames = machine();
  const pages: Page[] = [];
  const free = frames.stats().freeFrames;
  for (let i = 0; i < free; i++) pages.push(Page.alloc(frames, { zeroed: false }));
  assertEquals(code(() => Page.alloc(frames)), "OutOfMemory");
  for (const page of pages) page[Symbol.dispose]();
  assertEquals(frames.stats().freeFrames, free);
});

Deno.test("ContigPages.alloc() returns aligned, zeroed frames each counted once", () => {
  const frames = machine();
  frames.allocate();
  const before = frames.stats();
  {
    using run = ContigPages.alloc(frames, 5, { alignFrames: 8 });
    assertEquals(run.frame, 0x108);
    assertEquals(run.physAddr, 0x10_8000);
    assertEquals(run.sizeBytes, 5 * 4096);
    assertEquals(run.bytes().length, 5 * 4096);
    assert(run.bytes().every((b) => b === 0));
    for (let frame = 0x108; frame < 0x10d; frame++) {
      assertEquals(frames.metadata.refcount(frame as FrameNumber), 1);
    }
  }
  assertEquals(frames.stats(), before);
  assertThrows(() => ContigPages.alloc(frames, 0), RangeError);
});

Deno.test("ContigPages.split() hands each frame to its own Page", () => {
  const frames = machine();
  const before = frames.stats();
  const run = ContigPages.alloc(frames, 4);
  const keep = run.clone();
  const pages = run.split();
  assert(run.isDisposed);
  assertEquals(code(() => run.split()), "UseAfterDispose");
  assertEquals(pages.map((page) => page.frame), [0x100, 0x101, 0x102, 0x103]);
  assertEquals(pages.map((page) => page.refcount), [2, 2, 2, 2]);
  pages[1][Symbol.dispose]();
  pages[3][Symbol.dispose]();
  keep[Symbol.dispose]();
  // Frames 1 and 3 had no other handle; 0 and 2 are still held by their pages.
  assertEquals([0x100, 0x101, 0x102, 0x103].map((f) => frames.stateOf(f as FrameNumber)), [
    "allocated",
    "free",
    "allocated",
    "free",
  ]);
  pages[0][Symbol.dispose]();
  pages[2][Symbol.dispose]();
  assertEquals(frames.stats(), before);
  frames.checkInvariants();
});

Deno.test("ContigPages.intoRaw() and ContigPages.fromRaw() round-trip a run", () => {
  const frames = machine();
  const run = ContigPages.alloc(frames, 3);
  const pa = run.intoRaw();
  assertEquals(code(() => run.bytes()), "UseAfterDispose");
  assertEquals(code(() => ContigPages.fromRaw(frames, pa, 4)), "InvalidFrame");
  const back = ContigPages.fromRaw(frames, pa, 3);
  assertEquals(back.frameCount, 3);
  const clone = back.clone();
  back[Symbol.dispose]();
  assertEquals(frames.stateOf(clone.frame), "allocated");
  clone[Symbol.dispose]();
  assertEquals(code(() => clone.clone()), "UseAfterDispose");
  assertEquals(frames.stats().allocatedFrames, 0);
});

Deno.test("heldFrames() reports leaked handles with their allocation sites in debug mode", () => {
  const frames = machine({ trackAllocationSites: true });
  const page = Page.alloc(frames);
  const run = ContigPages.alloc(frames, 2);
  const copy = page.clone();
  const held = heldFrames(frames);
  assertEquals(held.map((h) => [h.frame, h.refcount]), [[0x100, 2], [0x101, 1], [0x102, 1]]);
  assertEquals(held[1].physAddr, 0x10_1000);
  for (const entry of held) assertStringIncludes(entry.allocationSite ?? "", "page_test.ts");
  page[Symbol.dispose]();
  copy[Symbol.dispose]();
  run[Symbol.dispose]();
  assertEquals(heldFrames(frames), []);
  // Without the debug option there are no sites.
  const plain = machine();
  using leak = Page.alloc(plain);
  assertEquals(heldFrames(plain), [{ frame: leak.frame, physAddr: leak.physAddr, refcount: 1 }]);
});

Deno.test("Page shows the poison patterns in debug mode", () => {
  const frames = machine({ poison: true });
  const page = Page.alloc(frames, { zeroed: false });
  const bytes = page.bytes();
  assert(bytes.every((b) => b === ALLOC_POISON_BYTE));
  page[Symbol.dispose]();
  assert(bytes.every((b) => b === FREE_POISON_BYTE)); // a dangling view sees the poison
  using zeroed = Page.alloc(frames);
  assert(zeroed.bytes().every((b) => b === 0));
});

Deno.test("Page and ContigPages keep refcounts equal to live handles over 50,000 random operations", () => {
  const frames = machine();
  const start = frames.stats();
  const frameLimit = frames.metadata.frameCount;
  const expected = new Int32Array(frameLimit);
  const handles: (Page | ContigPages)[] = [];
  const rng = new Xorshift32(0xc0ffee);
  const span = (h: Page | ContigPages) => h instanceof Page ? 1 : h.frameCount;
  const adjust = (h: Page | ContigPages, delta: number) => {
    for (let i = 0; i < span(h); i++) expected[h.frame + i] += delta;
  };
  const take = () => handles.splice(rng.below(handles.length), 1)[0];

  for (let step = 0; step < 50_000; step++) {
    const choice = rng.below(100);
    const mustShrink = handles.length > 600;
    if (choice < 20 && !mustShrink) {
      const page = Page.alloc(frames, { zeroed: rng.below(2) === 0 });
      handles.push(page);
      adjust(page, 1);
    } else if (choice < 30 && !mustShrink) {
      const count = 1 + rng.below(6);
      const alignFrames = 1 << rng.below(4);
      try {
        const run = ContigPages.alloc(frames, count, { alignFrames });
        assertEquals(run.frame % alignFrames, 0);
        handles.push(run);
        adjust(run, 1);
      } catch (error) {
        assert(error instanceof KernelError && error.code === "OutOfMemory");
      }
    } else if (choice < 50 && handles.length > 0 && !mustShrink) {
      const copy = handles[rng.below(handles.length)].clone();
      handles.push(copy);
      adjust(copy, 1);
    } else if (choice < 85 && handles.length > 0) {
      const handle = take();
      adjust(handle, -1);
      const first = handle.frame;
      handle[Symbol.dispose]();
      for (let i = 0; i < span(handle); i++) {
        const state = frames.stateOf((first + i) as FrameNumber);
        assertEquals(state, expected[first + i] === 0 ? "free" : "allocated");
      }
    } else if (choice < 90 && handles.length > 0) {
      const handle = take();
      if (handle instanceof ContigPages) {
        handles.push(...handle.split());
      } else {
        handles.push(Page.fromRaw(frames, handle.intoRaw()));
      }
    } else if (choice < 95 && handles.length > 0) {
      const handle = take();
      if (handle instanceof ContigPages) {
        handles.push(ContigPages.fromRaw(frames, handle.intoRaw(), handle.frameCount));
      } else {
        handles.push(handle);
      }
    } else if (handles.length > 0) {
      // Clones see each other's writes: the memory is shared, not copied.
      const handle = handles[rng.below(handles.length)];
      const tag = rng.below(256);
      handle.bytes()[rng.below(4096)] = tag;
      const copy = handle.clone();
      assert(copy.bytes().includes(tag));
      copy[Symbol.dispose]();
    }
    if (step % 250 === 0) {
      for (let frame = 0; frame < frameLimit; frame++) {
        const count = frames.metadata.refcount(frame as FrameNumber);
        if (expected[frame] !== Math.max(0, count)) {
          throw new Error(
            `Step ${step}: frame ${frame} has refcount ${count}, expected ${expected[frame]}`,
          );
        }
      }
      frames.checkInvariants();
    }
    const stats = frames.stats();
    assertEquals(
      stats.freeFrames + stats.allocatedFrames + stats.reservedFrames,
      stats.totalFrames,
    );
  }
  for (const handle of handles.splice(0)) handle[Symbol.dispose]();
  assertEquals(frames.stats(), start);
  assertEquals(heldFrames(frames), []);
  frames.checkInvariants();
});
