import { KernelError } from "../errors.ts";
import { assertEquals, assertThrows } from "../../testing/mod.ts";
import { EarlyFrameAllocator } from "./early_allocator.ts";

const MIB = 2 ** 20;

Deno.test("EarlyFrameAllocator.allocate() hands out frames top-down from the highest region", () => {
  const early = new EarlyFrameAllocator([
    { base: 0, length: 4 * MIB },
    { base: 8 * MIB, length: 2 * MIB },
  ]);
  assertEquals(early.allocate(1), 0x9ff);
  assertEquals(early.allocate(2), 0x9fd);
  assertEquals(early.allocatedFrameCount, 3);
  assertEquals(early.allocatedRanges, [{ base: 0x9fd000, length: 0x3000 }]);
});

Deno.test("EarlyFrameAllocator.allocate() never hands out excluded frames", () => {
  // Usable 0..2 MiB; the first MiB and the kernel image at 1 MiB..1.5 MiB are excluded.
  const early = new EarlyFrameAllocator(
    [{ base: 0, length: 2 * MIB }],
    [{ base: 0, length: MIB }, { base: MIB, length: MIB / 2 }],
  );
  const frames: number[] = [];
  for (let i = 0; i < 128; i++) frames.push(early.allocate(1));
  assertEquals(Math.min(...frames), 0x180);
  assertEquals(Math.max(...frames), 0x1ff);
  assertThrows(() => early.allocate(1), KernelError, "no usable span left");
});

Deno.test("EarlyFrameAllocator rounds regions inward and exclusions outward", () => {
  // Region 0x1800..0x5800 holds whole frames 2..4; the exclusion 0x4001..0x4002 touches frame 4.
  const early = new EarlyFrameAllocator(
    [{ base: 0x1800, length: 0x4000 }, { base: 0x10_0000, length: 0xfff }],
    [{ base: 0x4001, length: 1 }],
  );
  assertEquals(early.allocate(1), 3);
  assertEquals(early.allocate(1), 2);
  assertThrows(() => early.allocate(1), KernelError, "no usable span left");
});

Deno.test("EarlyFrameAllocator.allocate() honours alignment and moves down past a span too small", () => {
  const early = new EarlyFrameAllocator([
    { base: 0x10_0000, length: 0x10_0000 }, // frames 0x100..0x1ff
    { base: 0x40_0000, length: 0x3000 }, // frames 0x400..0x402
  ]);
  assertEquals(early.allocate(1, 2), 0x402);
  // Four frames do not fit above 0x400; the allocator moves on to the lower span.
  assertEquals(early.allocate(4, 4), 0x1fc);
  assertEquals(early.allocate(1, 16), 0x1f0);
  assertEquals(early.allocatedRanges, [
    { base: 0x40_2000, length: 0x1000 },
    { base: 0x1f_c000, length: 0x4000 },
    { base: 0x1f_0000, length: 0x1000 },
  ]);
});

Deno.test("EarlyFrameAllocator.allocate() fails with OutOfMemory when nothing fits, abandoning nothing", () => {
  const early = new EarlyFrameAllocator([{ base: 0, length: 0x4000 }]);
  const error = assertThrows(() => early.allocate(5), KernelError);
  assertEquals(error.code, "OutOfMemory");
  assertEquals(early.allocate(4), 0);
});

Deno.test("EarlyFrameAllocator.allocate() rejects invalid counts and alignments", () => {
  const early = new EarlyFrameAllocator([{ base: 0, length: MIB }]);
  assertThrows(() => early.allocate(0), RangeError);
  assertThrows(() => early.allocate(1.5), RangeError);
  assertThrows(() => early.allocate(1, 0), RangeError);
  assertThrows(() => new EarlyFrameAllocator([{ base: -1, length: 1 }]), RangeError);
});

Deno.test("EarlyFrameAllocator.retire() reports what was handed out and then refuses service", () => {
  const early = new EarlyFrameAllocator([{ base: 0, length: MIB }]);
  early.allocate(2);
  assertEquals(early.isRetired, false);
  assertEquals(early.retire(), [{ base: 0xfe000, length: 0x2000 }]);
  assertEquals(early.isRetired, true);
  const error = assertThrows(() => early.allocate(1), KernelError, "already retired");
  assertEquals(error.code, "UseAfterDispose");
  assertThrows(() => early.retire(), KernelError, "twice");
});

Deno.test("EarlyFrameAllocator keeps copies of its regions and exclusions", () => {
  const usable = [{ base: 0, length: MIB }];
  const exclusions = [{ base: 0, length: 0x1000 }];
  const early = new EarlyFrameAllocator(usable, exclusions);
  usable[0] = { base: 0, length: 0 };
  assertEquals(early.usableRegions, [{ base: 0, length: MIB }]);
  assertEquals(early.exclusions, [{ base: 0, length: 0x1000 }]);
});
