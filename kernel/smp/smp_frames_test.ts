import { assertEquals, assertThrows } from "../../testing/asserts.ts";
import { Xorshift32 } from "../../testing/mod.ts";
import { type FrameNumber, Machine, PhysicalMemory, VirtualClock } from "../../hal/mod.ts";
import { FRAME_CACHED, FrameAllocator, KernelError, KmemHeap, Page } from "../mod.ts";
import { C_CACHE_COUNT, C_CACHE_FRAMES, SmpArea } from "./smp_area.ts";
import { SmpCpu } from "./smp_cpu.ts";
import { SmpFrameProvider } from "./smp_frames.ts";

const MIB = 2 ** 20;
const AREA = 0x200000;

/** Two CPUs' handles to one allocator, on one thread: the per-CPU caches, the lock, the metadata. */
function twoCpus(batch = 4) {
  const memory = PhysicalMemory.contiguous(32 * MIB);
  const machine = new Machine(memory, new VirtualClock());
  const allocator = FrameAllocator.create(memory, {
    usableRegions: [{ base: 0, length: 32 * MIB }],
    exclusions: [{ base: 0, length: MIB }, { base: AREA, length: 5 * 4096 }],
  });
  const area = SmpArea.create(memory, AREA as never, 2, batch);
  const smps = [0, 1].map((index) => new SmpCpu(machine, area, index));
  const cpus = [0, 1].map((index) => {
    const smp = smps[index];
    // Each CPU's own handle to the allocator, as an AP attaches to it from RAM.
    const own = index === 0 ? allocator : FrameAllocator.attach(memory, allocator.stateAddr);
    return new SmpFrameProvider(own, smp.locks.frames, area, index);
  });
  return { memory, machine, allocator, area, smps, cpus };
}

Deno.test("SmpFrameProvider: allocations come from the per-CPU cache, refilled a batch at a time under the lock", () => {
  const { allocator, cpus } = twoCpus(4);
  const free = allocator.stats().freeFrames;
  const frame = cpus[0].allocate();
  // One batch left the allocator; one frame is out, three wait in CPU 0's cache.
  assertEquals(allocator.stats().freeFrames, free - 4);
  assertEquals(cpus[0].stats().freeFrames, free - 1);
  assertEquals(cpus[0].stats().details?.perCpuCachedFrames, 3);
  assertEquals(cpus[0].metadata.refcount(frame), 0);
  cpus[0].free(frame);
  assertEquals(cpus[0].metadata.refcount(frame), FRAME_CACHED);
  assertEquals(cpus[0].stateOf(frame), "free");
  assertEquals(allocator.stateOf(frame), "allocated", "still allocated in the bitmap");
  cpus[0].checkInvariants();
});

Deno.test("SmpFrameProvider: a frame freed twice, even into another CPU's cache, is a DoubleFree", () => {
  const { cpus } = twoCpus();
  const frame = cpus[0].allocate();
  cpus[0].free(frame);
  const error = assertThrows(() => cpus[1].free(frame), KernelError);
  assertEquals(error.code, "DoubleFree");
  using page = Page.alloc(cpus[1]);
  assertEquals(assertThrows(() => cpus[0].free(page.frame), KernelError).code, "FrameInUse");
  assertEquals(
    assertThrows(() => cpus[0].free(0x10 as FrameNumber), KernelError).code,
    "InvalidFrame",
  );
});

Deno.test("SmpFrameProvider: random allocations and frees on two CPUs keep every invariant and lose no frame", () => {
  const { allocator, cpus } = twoCpus(8);
  const free = cpus[0].stats().freeFrames;
  const rng = new Xorshift32(7);
  const held: number[] = [];
  for (let op = 0; op < 20_000; op++) {
    const cpu = cpus[rng.next() & 1];
    if (held.length > 0 && (held.length > 300 || (rng.next() & 1) === 0)) {
      const index = rng.next() % held.length;
      cpu.free(held[index] as FrameNumber);
      held[index] = held[held.length - 1];
      held.pop();
    } else {
      held.push(cpu.allocate());
    }
  }
  assertEquals(new Set(held).size, held.length, "no frame handed out twice");
  cpus[0].checkInvariants();
  for (const frame of held) cpus[1].free(frame as FrameNumber);
  assertEquals(cpus[0].stats().freeFrames, free);
  for (const cpu of cpus) cpu.drainCache();
  assertEquals(allocator.stats().freeFrames, free, "every frame back in the allocator");
  allocator.checkInvariants();
});

Deno.test("SmpFrameProvider.checkInvariants() catches a frame in two caches and a cached frame no cache holds", () => {
  const { area, cpus } = twoCpus(4);
  cpus[0].free(cpus[0].allocate()); // CPU 0's cache: 4 frames
  const words = area.words;
  const base0 = area.cpuWord(0);
  const base1 = area.cpuWord(1);
  // Corrupt: CPU 1's cache claims CPU 0's first cached frame too.
  words[base1 + C_CACHE_FRAMES] = words[base0 + C_CACHE_FRAMES];
  words[base1 + C_CACHE_COUNT] = 1;
  assertThrows(() => cpus[0].checkInvariants(), Error, "is in two caches");
  words[base1 + C_CACHE_COUNT] = 0;
  // Corrupt: CPU 0 forgets a frame it cached.
  words[base0 + C_CACHE_COUNT]--;
  assertThrows(
    () => cpus[0].checkInvariants(),
    Error,
    "is marked cached but is in no per-CPU cache",
  );
});

Deno.test("FrameAllocator.attach() and KmemHeap.attach() see the allocator and heap another CPU built", () => {
  const { memory, allocator, cpus } = twoCpus();
  const attached = FrameAllocator.attach(memory, allocator.stateAddr);
  assertEquals(attached.stats(), allocator.stats());
  const frame = attached.allocate();
  assertEquals(allocator.stateOf(frame), "allocated");
  allocator.free(frame);
  const heap = KmemHeap.create(memory, cpus[0]);
  const va = heap.kmalloc(100);
  const other = KmemHeap.attach(memory, cpus[1], heap.rootAddress, 0);
  assertEquals(other.usableSize(va), heap.usableSize(va));
  other.kfree(va);
  assertEquals(heap.stats().liveAllocations, 0);
  heap.checkInvariants();
  assertEquals(
    assertThrows(() => FrameAllocator.attach(memory, 0x300000 as never), KernelError).code,
    "InvalidAddress",
  );
  assertEquals(
    assertThrows(() => KmemHeap.attach(memory, cpus[0], 0x300000 as never, 0), KernelError).code,
    "InvalidAddress",
  );
});

Deno.test("SmpFrameProvider: a drain an interrupt asks for while a batch goes back waits for it, then empties the cache", () => {
  const { machine, area, smps, cpus } = twoCpus(4);
  const count0 = () => area.words[area.cpuWord(0) + C_CACHE_COUNT];
  // CPU 0's cache full: 8 frames (two batches) CPU 1 allocated and CPU 0 freed.
  for (const frame of Array.from({ length: 8 }, () => cpus[1].allocate())) cpus[0].free(frame);
  assertEquals(count0(), 8);
  const extra = cpus[1].allocate();
  // CPU 1 holds the allocator's lock: CPU 0's next batch waits for it, taking interrupts.
  smps[1].locks.frames.acquire();
  let interrupts = 0;
  machine.cpu.setBoundaryHook(() => {
    if (interrupts++ > 0) return;
    cpus[0].drainCache(); // what the cross-CPU call runs, in the interrupt
    smps[1].locks.frames.release();
  });
  cpus[0].free(extra); // full: a batch of 4 goes back, then the drain asked meanwhile
  machine.cpu.setBoundaryHook(undefined);
  assertEquals(interrupts > 0, true, "the drain was asked while the batch was going back");
  assertEquals(count0(), 1, "drained, then the frame freed into the empty cache");
  cpus[0].checkInvariants();
});
