import { assertEquals, assertThrows } from "../../testing/asserts.ts";
import { Machine, PhysicalMemory, VirtualClock } from "../../hal/mod.ts";
import { KernelPanic } from "../panic.ts";
import { C_LOCKS_HELD, SmpArea } from "./smp_area.ts";
import { SmpCpu } from "./smp_cpu.ts";

function lockOfTwoCpus() {
  const memory = PhysicalMemory.contiguous(16 * 2 ** 20);
  const machine = new Machine(memory, new VirtualClock());
  const area = SmpArea.create(memory, 0x100000 as never, 2, 4);
  const [a, b] = [0, 1].map((index) => new SmpCpu(machine, area, index));
  return { area, a, b };
}

Deno.test("SpinLock counts acquisitions and the locks each CPU holds, in RAM", () => {
  const { area, a, b } = lockOfTwoCpus();
  a.locks.heap.hold(() => {
    assertEquals(a.locks.heap.stats().holder, 0);
    assertEquals(area.words[area.cpuWord(0) + C_LOCKS_HELD], 1, "CPU 0 holds one lock");
  });
  b.locks.heap.hold(() => {});
  const stats = b.locks.heap.stats();
  assertEquals(stats.acquisitions, 2);
  assertEquals(stats.contended, 0);
  assertEquals(stats.holder, -1);
  assertEquals(area.words[area.cpuWord(0) + C_LOCKS_HELD], 0);
});

Deno.test("SpinLock: a CPU taking a lock it holds panics instead of waiting for itself", () => {
  const { a } = lockOfTwoCpus();
  a.locks.frames.acquire();
  assertThrows(() => a.locks.frames.acquire(), KernelPanic, "takes it while holding it");
  a.locks.frames.release();
});

Deno.test("SpinLock: a removed lock (the test-only switch) excludes nothing", () => {
  const { a, b } = lockOfTwoCpus();
  a.locks.frames.setRemoved(true);
  a.locks.frames.acquire();
  b.locks.frames.acquire(); // would wait for CPU 0 if the lock were there
  b.locks.frames.release();
  a.locks.frames.release();
  assertEquals(a.locks.frames.stats().isRemoved, true);
  assertEquals(a.locks.frames.stats().acquisitions, 0);
});
