import { assertEquals, assertThrows, Xorshift32 } from "../../testing/mod.ts";
import { LINE_HISTORY_MAGIC, LineHistory } from "./line_history.ts";

const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("LineHistory keeps lines newest first, skips empty lines and repeats", () => {
  const history = new LineHistory(new Uint32Array(4), new Uint8Array(64));
  for (const line of ["meminfo", "", "alloc 1", "alloc 1", "pages"]) history.add(encode(line));
  assertEquals(history.count, 3);
  assertEquals([1, 2, 3].map((back) => decode(history.entry(back))), [
    "pages",
    "alloc 1",
    "meminfo",
  ]);
  assertThrows(() => history.entry(4), RangeError, "3 entries held");
  assertThrows(() => history.entry(0), RangeError);
});

Deno.test("LineHistory drops the oldest lines to make room, and refuses a line that can never fit", () => {
  const history = new LineHistory(new Uint32Array(4), new Uint8Array(20));
  history.add(encode("aaaaaa")); // 8 bytes with its length
  history.add(encode("bbbbbb"));
  history.add(encode("cccccc")); // 24 > 20: "aaaaaa" goes
  assertEquals(history.count, 2);
  assertEquals(decode(history.entry(2)), "bbbbbb");
  history.add(encode("x".repeat(19))); // 21 bytes: never fits, nothing changes
  assertEquals(history.count, 2);
  assertEquals(history.check(), undefined);
});

Deno.test("LineHistory keeps its state in the memory it was given, and check() catches a stray write", () => {
  const state = new Uint32Array(4);
  const data = new Uint8Array(64);
  const history = new LineHistory(state, data);
  history.add(encode("hi"));
  assertEquals([...state], [LINE_HISTORY_MAGIC, 1, 4, 0]);
  assertEquals([...data.subarray(0, 4)], [2, 0, 0x68, 0x69]);
  state[1] = 5;
  assertEquals(history.check(), "5 entries counted, 1 stored");
  assertThrows(() => history.entry(1), RangeError, "Invalid history");
  state[1] = 1;
  data[0] = 9; // the entry now runs past the bytes in use
  assertEquals(history.check(), "entry 1 runs past the bytes in use");
  data[0] = 2;
  state[2] = 65;
  assertEquals(history.check(), "65 bytes in use in a 64-byte area");
  state[2] = 4;
  state[0] = 0;
  assertEquals(history.check(), 'magic is 0x0, not "KHIS"');
  // A corrupt history takes no new line rather than making things worse.
  history.add(encode("more"));
  assertEquals(state[2], 4);
});

Deno.test("LineHistory stays consistent over 10,000 random lines", () => {
  const rng = new Xorshift32(0x415);
  const history = new LineHistory(new Uint32Array(4), new Uint8Array(300));
  const added: string[] = [];
  for (let i = 0; i < 10_000; i++) {
    const line = "x".repeat(rng.below(60)) + String(rng.below(5));
    history.add(encode(line));
    if (added.at(-1) !== line) added.push(line);
    assertEquals(history.check(), undefined);
    assertEquals(decode(history.entry(1)), line);
  }
  // The entries held are the newest lines added, in order.
  const held = Array.from(
    { length: history.count },
    (_, i) => decode(history.entry(history.count - i)),
  );
  assertEquals(held, added.slice(added.length - history.count));
});
