import { assertEquals, assertThrows } from "../testing/mod.ts";
import { USER_CALL_STATUS_BYTES, UserCallStatus } from "./user_call_status.ts";

Deno.test("UserCallStatus names the innermost call in progress and counts outermost entries", () => {
  const status = new UserCallStatus();
  const outer = status.intern("my_heap.ts: kmalloc()");
  const inner = status.intern("my_frames.ts: allocate()");
  assertEquals(status.snapshot(), { depth: 0, entries: 0, call: "" });
  const beforeOuter = status.enter(outer);
  assertEquals(status.snapshot(), { depth: 1, entries: 1, call: "my_heap.ts: kmalloc()" });
  const beforeInner = status.enter(inner);
  // A nested call is not a new outermost entry: a loop of nested calls still counts as one.
  assertEquals(status.snapshot(), { depth: 2, entries: 1, call: "my_frames.ts: allocate()" });
  status.leave(beforeInner);
  assertEquals(status.snapshot().call, "my_heap.ts: kmalloc()");
  status.leave(beforeOuter);
  assertEquals(status.snapshot(), { depth: 0, entries: 1, call: "" });
  status.enter(outer);
  assertEquals(status.snapshot().entries, 2);
});

Deno.test("UserCallStatus interns each name once and another view of the buffer reads it", () => {
  const writer = new UserCallStatus();
  const index = writer.intern("a.ts: map()");
  assertEquals(writer.intern("a.ts: map()"), index);
  assertEquals(writer.intern("ünïcode.ts: ☃()") !== index, true);
  const reader = new UserCallStatus(writer.buffer);
  writer.enter(writer.intern("ünïcode.ts: ☃()"));
  assertEquals(reader.snapshot().call, "ünïcode.ts: ☃()");
});

Deno.test("UserCallStatus names calls generically once its name table is full", () => {
  const status = new UserCallStatus();
  let last = 0;
  for (let i = 0; i < 2000; i++) last = status.intern(`module.ts: method${i}()`);
  assertEquals(last, 0);
  status.enter(last);
  assertEquals(status.snapshot().call, "(a call into user code)");
});

Deno.test("UserCallStatus refuses a buffer of the wrong size", () => {
  assertThrows(
    () => new UserCallStatus(new SharedArrayBuffer(USER_CALL_STATUS_BYTES - 4)),
    RangeError,
    "expected",
  );
});
