import { HostClock } from "./clock.ts";
import { Machine } from "./machine.ts";
import { PhysicalMemory } from "./physical_memory.ts";
import { assert } from "../testing/mod.ts";

Deno.test("Machine.waitForInterrupt() on the host clock sleeps until the next timer event instead of spinning", () => {
  const clock = new HostClock();
  const machine = new Machine(PhysicalMemory.contiguous(16 * 2 ** 20), clock);
  const dueNs = clock.nowNs() + 3_000_000;
  let firedAtNs: number | undefined;
  machine.addTimedDevice({
    advanceTo(nowNs) {
      if (nowNs >= dueNs) firedAtNs ??= nowNs;
    },
    nextEventNs: () => firedAtNs === undefined ? dueNs : Infinity,
  });
  let halts = 0;
  while (firedAtNs === undefined) {
    machine.waitForInterrupt();
    halts++;
  }
  // A HLT that returned at once would run thousands of times in 3 ms; one that
  // sleeps runs once per millisecond at most (more sleep on a busy host: fewer).
  assert(halts <= 5, `${halts} halts before the event 3 ms ahead`);
});
