import { assert, assertEquals, assertThrows } from "../testing/mod.ts";
import { type PhysAddr, physAddr } from "./address.ts";
import { BusError } from "./faults.ts";
import { PhysicalMemory } from "./physical_memory.ts";

const MIB = 2 ** 20;
const GIB = 2 ** 30;

Deno.test("PhysicalMemory reads and writes little-endian 8/16/32/64-bit values", () => {
  const memory = PhysicalMemory.contiguous(16 * MIB);
  memory.write64(physAddr(0x1000), 0x0123456789abcd);
  assertEquals(memory.read8(physAddr(0x1000)), 0xcd);
  assertEquals(memory.read16(physAddr(0x1000)), 0xabcd);
  assertEquals(memory.read32(physAddr(0x1000)), 0x6789abcd);
  assertEquals(memory.read32(physAddr(0x1004)), 0x012345);
  assertEquals(memory.read64(physAddr(0x1000)), 0x0123456789abcd);
  memory.write16(physAddr(0x2001), 0xbeef); // unaligned
  assertEquals([memory.read8(physAddr(0x2001)), memory.read8(physAddr(0x2002))], [0xef, 0xbe]);
  memory.write32(physAddr(0x3000), -1);
  assertEquals(memory.read32(physAddr(0x3000)), 0xffffffff);
  assertEquals(memory.u32[0x3000 / 4], 0xffffffff, "typed views see the same bytes");
});

Deno.test("PhysicalMemory fills, copies (overlapping) and moves byte ranges", () => {
  const memory = PhysicalMemory.contiguous(16 * MIB);
  memory.writeBytes(physAddr(0x100), new Uint8Array([1, 2, 3, 4, 5]));
  memory.copy(physAddr(0x102), physAddr(0x100), 5);
  assertEquals([...memory.readBytes(physAddr(0x100), 7)], [1, 2, 1, 2, 3, 4, 5]);
  memory.fill(physAddr(0x100), 3, 0xaa);
  assertEquals([...memory.readBytes(physAddr(0x100), 4)], [0xaa, 0xaa, 0xaa, 2]);
});

Deno.test("PhysicalMemory raises BusError for holes and addresses past the end", () => {
  const memory = new PhysicalMemory([
    { base: 0 as PhysAddr, sizeBytes: MIB },
    { base: physAddr(2 * MIB), sizeBytes: MIB },
  ]);
  assertEquals(memory.sizeBytes, 2 * MIB);
  assertEquals(memory.endBytes, 3 * MIB);
  assert(memory.isRam(2 * MIB, MIB));
  assert(!memory.isRam(MIB - 2, 4), "an access straddling into a hole is not RAM");
  const error = assertThrows(() => memory.read32(physAddr(MIB + 16)), BusError, "0x100010");
  assertEquals(error.address, MIB + 16);
  assertThrows(() => memory.write8(physAddr(3 * MIB), 1), BusError);
  assertThrows(() => memory.readBytes(physAddr(MIB - 8), 16), BusError);
});

Deno.test("PhysicalMemory rejects overlapping, unaligned and oversized layouts", () => {
  assertThrows(
    () =>
      new PhysicalMemory([
        { base: 0 as PhysAddr, sizeBytes: 2 * MIB },
        { base: physAddr(MIB), sizeBytes: MIB },
      ]),
    RangeError,
    "overlaps",
  );
  assertThrows(() => PhysicalMemory.contiguous(MIB + 1), RangeError, "4 KiB frames");
  assertThrows(() => new PhysicalMemory([]), RangeError);
  assertThrows(() => PhysicalMemory.contiguous(100 * GIB), RangeError, "limit");
});

Deno.test("PhysicalMemory backs 64 GiB on one SharedArrayBuffer without touching it", () => {
  const memory = new PhysicalMemory([
    { base: 0 as PhysAddr, sizeBytes: 3.5 * GIB },
    { base: physAddr(4 * GIB), sizeBytes: 60.5 * GIB },
  ]);
  assert(memory.buffer instanceof SharedArrayBuffer);
  assertEquals(memory.sizeBytes, 64 * GIB);
  const top = physAddr(64.5 * GIB - 8);
  memory.write64(top, 0x1122334455);
  assertEquals(memory.read64(top), 0x1122334455);
  assertThrows(() => memory.read8(physAddr(3.75 * GIB)), BusError, "not RAM");
});
