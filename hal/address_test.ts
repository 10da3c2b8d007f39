import { assertEquals, assertThrows } from "../testing/mod.ts";
import {
  alignDown,
  alignUp,
  formatVirtAddr,
  frameContaining,
  frameFromStart,
  hex,
  parseUnsigned,
  parseVirtAddr,
  type PhysAddr,
  physAddr,
  virtAddr,
} from "./address.ts";

Deno.test("parseVirtAddr() accepts canonical addresses and rejects the rest", () => {
  assertEquals(parseVirtAddr("0xffff800000000000"), 2 ** 47);
  assertEquals(parseVirtAddr("0xFFFF_FFFF_8000_0000"), 2 ** 48 - 2 ** 31);
  assertEquals(parseVirtAddr("0x7fffffffffff"), 2 ** 47 - 1);
  assertEquals(parseVirtAddr("4096"), 4096);
  assertThrows(() => parseVirtAddr("0x0000800000000000"), RangeError, "Non-canonical");
  assertThrows(() => parseVirtAddr("0xfffe800000000000"), RangeError, "Non-canonical");
  assertThrows(() => parseVirtAddr("140737488355328"), RangeError, "Non-canonical");
  assertThrows(() => parseVirtAddr("0x"), RangeError, "expected hex");
  assertThrows(() => parseVirtAddr("12ab"), RangeError, "expected hex");
});

Deno.test("formatVirtAddr() sign-extends the higher half", () => {
  assertEquals(formatVirtAddr(virtAddr(2 ** 47)), "0xffff800000000000");
  assertEquals(formatVirtAddr(virtAddr(0x1000)), "0x1000");
  assertEquals(parseVirtAddr(formatVirtAddr(virtAddr(2 ** 48 - 4096))), 2 ** 48 - 4096);
});

Deno.test("frame helpers round down or reject misalignment", () => {
  assertEquals(frameContaining(physAddr(0x1fff)), 1);
  assertEquals(frameFromStart(physAddr(0x2000)), 2);
  assertThrows(() => frameFromStart(0x2001 as PhysAddr), RangeError, "0x2001 is not 4 KiB aligned");
  assertEquals([alignUp(4097, 4096), alignDown(8191, 4096)], [8192, 4096]);
});

Deno.test("address constructors reject values that cannot be addresses", () => {
  assertThrows(() => physAddr(-1), RangeError);
  assertThrows(() => physAddr(2 ** 52), RangeError);
  assertThrows(() => virtAddr(2 ** 48), RangeError);
  assertEquals(parseUnsigned("0x1_000"), 4096);
  assertThrows(() => parseUnsigned("-5", "size"), RangeError, 'Invalid size "-5"');
  assertEquals(hex(255, 4), "0x00ff");
});
