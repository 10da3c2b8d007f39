import { assertEquals } from "../testing/mod.ts";
import { UserCallStatus } from "./user_call_status.ts";
import { UserCallWatchdog } from "./user_call_watchdog.ts";

const TIMEOUT_MS = 500;

Deno.test("UserCallWatchdog.poll() reports a call that has not returned within the timeout, naming it", () => {
  const status = new UserCallStatus();
  const watchdog = new UserCallWatchdog(status, TIMEOUT_MS);
  assertEquals(watchdog.poll(0), undefined);
  status.enter(status.intern("my_frames.ts: allocate()"));
  // The clock starts when the watchdog first sees the call.
  assertEquals(watchdog.poll(100), undefined);
  assertEquals(watchdog.poll(100 + TIMEOUT_MS - 1), undefined);
  assertEquals(watchdog.poll(100 + TIMEOUT_MS), {
    call: "my_frames.ts: allocate()",
    message: "my_frames.ts: allocate() did not return within 0.5 s",
  });
});

Deno.test("UserCallWatchdog.poll() restarts its clock for each new outermost call, not for nested ones", () => {
  const status = new UserCallStatus();
  const watchdog = new UserCallWatchdog(status, TIMEOUT_MS);
  const outer = status.intern("my_heap.ts: kmalloc()");
  const inner = status.intern("my_frames.ts: allocate()");
  let before = status.enter(outer);
  assertEquals(watchdog.poll(0), undefined);
  // Calls nested in the same outermost call do not restart the clock.
  for (let nowMs = 100; nowMs < TIMEOUT_MS; nowMs += 100) {
    const beforeInner = status.enter(inner);
    assertEquals(watchdog.poll(nowMs), undefined);
    status.leave(beforeInner);
  }
  assertEquals(watchdog.poll(TIMEOUT_MS)?.call, "my_heap.ts: kmalloc()");
  // A call that returned and a new one: the clock starts again from when it is seen.
  status.leave(before);
  before = status.enter(outer);
  assertEquals(watchdog.poll(TIMEOUT_MS + 1), undefined);
  assertEquals(watchdog.poll(2 * TIMEOUT_MS), undefined);
  // No call in progress: nothing to report, however long.
  status.leave(before);
  assertEquals(watchdog.poll(10 * TIMEOUT_MS), undefined);
  assertEquals(watchdog.poll(20 * TIMEOUT_MS), undefined);
});

Deno.test("UserCallWatchdog.start() calls back once for a call that never returns, then stops", async () => {
  const status = new UserCallStatus();
  const watchdog = new UserCallWatchdog(status, 10);
  status.enter(status.intern("loop.ts: allocate()"));
  const overruns: string[] = [];
  let stop = () => {};
  await new Promise<void>((resolve) => {
    stop = watchdog.start((overrun) => {
      overruns.push(overrun.message);
      resolve();
    }, 1);
  });
  // Long enough for more ticks, had the timer not stopped.
  await new Promise((resolve) => setTimeout(resolve, 30));
  stop();
  assertEquals(overruns, ["loop.ts: allocate() did not return within 0.01 s"]);
});
