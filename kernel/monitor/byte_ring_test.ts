import { assertEquals, assertThrows } from "../../testing/mod.ts";
import { ByteRing, ByteRingCorrupt } from "./byte_ring.ts";

Deno.test("ByteRing.shift() returns bytes in the order push() queued them, across the wrap", () => {
  const ring = new ByteRing(new Uint32Array(4), new Uint8Array(3));
  const out: number[] = [];
  for (let byte = 1; byte <= 10; byte++) {
    ring.push(byte);
    if (byte % 2 === 0) out.push(ring.shift(), ring.shift());
  }
  assertEquals(out, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assertEquals(ring.shift(), -1);
});

Deno.test("ByteRing.push() refuses a byte when full and counts it as dropped", () => {
  const ring = new ByteRing(new Uint32Array(4), new Uint8Array(2));
  assertEquals([ring.push(1), ring.push(2), ring.push(3)], [true, true, false]);
  assertEquals(ring.droppedBytes, 1);
  assertEquals([ring.shift(), ring.shift(), ring.shift()], [1, 2, -1]);
});

Deno.test("ByteRing keeps head, count and drops in its state words", () => {
  const state = new Uint32Array(4);
  const ring = new ByteRing(state, new Uint8Array(4));
  ring.push(7);
  ring.push(8);
  ring.shift();
  assertEquals([...state], [1, 1, 0, 0]);
});

Deno.test("ByteRing.shift() checks its state even when empty and reports a corrupt ring", () => {
  const state = new Uint32Array(4);
  const ring = new ByteRing(state, new Uint8Array(4));
  ring.push(1);
  state[1] = 0xffff_ffff; // a stray write to the count
  assertEquals(ring.check(), "count 4294967295 exceeds the 4-byte ring");
  assertThrows(() => ring.shift(), ByteRingCorrupt, "count 4294967295 exceeds");
  // An empty ring with its head out of range: pushes are refused, shift reports it.
  state[1] = 0;
  state[0] = 4;
  assertEquals(ring.push(2), false);
  const error = assertThrows(() => ring.shift(), ByteRingCorrupt);
  assertEquals(error.invariant, "head 4 is outside the 4-byte ring");
  state[0] = 0;
  assertEquals(ring.check(), undefined);
  assertEquals([ring.push(3), ring.shift()], [true, 3]);
});
