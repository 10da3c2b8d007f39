import { KernelError, KernelPanic, UserCodeError } from "../kernel/mod.ts";
import { CommandError } from "../kernel/monitor/mod.ts";
import { assert, assertEquals, assertThrows } from "../testing/mod.ts";
import { UserCallStatus } from "./user_call_status.ts";
import { UserCodeGuard } from "./user_code_guard.ts";

class Counter {
  #count = 0;
  get count(): number {
    return this.#count;
  }
  increment(by: number): number {
    this.#count += by;
    return this.#count;
  }
  fail(): never {
    throw new TypeError("x is undefined");
  }
  outOfMemory(): never {
    throw new KernelError("OutOfMemory", "Cannot allocate a frame: none is free");
  }
}

Deno.test("UserCodeGuard.wrap() calls methods on the object itself, so private fields work", () => {
  const counter = new UserCodeGuard("counter.ts", new UserCallStatus()).wrap(new Counter());
  assertEquals(counter.increment(2), 2);
  assertEquals(counter.increment(3), 5);
  assertEquals(counter.count, 5);
  assert(counter instanceof Counter);
});

Deno.test("UserCodeGuard attributes a TypeError to the module and the call", () => {
  const status = new UserCallStatus();
  const counter = new UserCodeGuard("examples/counter.ts", status).wrap(new Counter());
  const error = assertThrows(() => counter.fail(), UserCodeError);
  assertEquals(error.message, "examples/counter.ts: fail() threw TypeError: x is undefined");
  assertEquals(error.moduleName, "examples/counter.ts");
  assertEquals(error.call, "fail()");
  assert(error.cause instanceof TypeError);
  assertEquals(status.snapshot().depth, 0, "the call is over even though it threw");
});

Deno.test("UserCodeGuard lets contract errors through unchanged", () => {
  const guard = new UserCodeGuard("m.ts", new UserCallStatus());
  const counter = guard.wrap(new Counter());
  const error = assertThrows(() => counter.outOfMemory(), KernelError);
  assertEquals(error.code, "OutOfMemory");
  for (const thrown of [new CommandError("bad"), new KernelPanic("why")]) {
    assertEquals(
      assertThrows(() =>
        guard.run("command x", () => {
          throw thrown;
        }), Error),
      thrown,
    );
  }
});

Deno.test("UserCodeGuard keeps the attribution of an inner module's error", () => {
  const status = new UserCallStatus();
  const inner = new UserCodeGuard("frames.ts", status).wrap(new Counter());
  const outer = new UserCodeGuard("heap.ts", status);
  const error = assertThrows(() => outer.run("kmalloc()", () => inner.fail()), UserCodeError);
  assertEquals(error.moduleName, "frames.ts");
});

Deno.test("UserCodeGuard.run() with attribute-all attributes even a KernelError", () => {
  const guard = new UserCodeGuard("kernel.ts", new UserCallStatus());
  const error = assertThrows(
    () =>
      guard.run("kernel entry", () => {
        throw new KernelError("OutOfMemory", "Cannot allocate");
      }, "attribute-all"),
    UserCodeError,
  );
  assertEquals(
    error.message,
    "kernel.ts: kernel entry threw KernelError OutOfMemory: Cannot allocate",
  );
});

Deno.test("UserCodeGuard records the call in progress, a getter too", () => {
  const status = new UserCallStatus();
  const guard = new UserCodeGuard("spy.ts", status);
  const seen: string[] = [];
  const spy = guard.wrap({
    get value() {
      seen.push(status.snapshot().call);
      return 1;
    },
    method() {
      seen.push(status.snapshot().call);
    },
  });
  spy.method();
  assertEquals(spy.value, 1);
  assertEquals(seen, ["spy.ts: method()", "spy.ts: value"]);
});
