import { assertEquals } from "../testing/mod.ts";
import { plural } from "./plural.ts";

Deno.test("plural() uses the singular noun for a count of 1 only", () => {
  assertEquals(plural(1, "frame"), "1 frame");
  assertEquals(plural(0, "frame"), "0 frames");
  assertEquals(plural(2, "region"), "2 regions");
  assertEquals(plural(1, "entry", "entries"), "1 entry");
  assertEquals(plural(64, "entry", "entries"), "64 entries");
});
