import { assert, assertEquals, assertThrows } from "../testing/mod.ts";
import type { PhysAddr } from "./address.ts";
import {
  ACPI_AREA_SIZE_BYTES,
  HIGH_MEMORY_START,
  KERNEL_LOAD_ADDRESS,
  LOW_MEMORY_END,
  MAX_RAM_BYTES,
  PCI_HOLE_END,
  PCI_HOLE_START,
  pcMemoryMap,
  ramRangesFor,
} from "./memory_layout.ts";
import type { MemoryMapEntry } from "./multiboot2.ts";
import { PhysicalMemory } from "./physical_memory.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;
/** The 385 KiB between 639 KiB and 1 MiB that no PC reports as RAM. */
const LOW_HOLE_BYTES = KERNEL_LOAD_ADDRESS - LOW_MEMORY_END;
const BIOS_FLASH = { base: 0xfffc0000, length: 0x40000, type: 2 };

function ramTypeBytes(map: readonly MemoryMapEntry[]): number {
  return map.filter((e) => e.type === 1 || e.type === 3).reduce((sum, e) => sum + e.length, 0);
}

Deno.test("pcMemoryMap() lays out 16 MiB like QEMU with SeaBIOS", () => {
  assertEquals(pcMemoryMap(16 * MiB), [
    { base: 0, length: 0x9fc00, type: 1 },
    { base: 0x9fc00, length: 0x60400, type: 2 },
    { base: 0x100000, length: 16 * MiB - 0x100000 - 0x20000, type: 1 },
    { base: 16 * MiB - 0x20000, length: 0x20000, type: 3 },
    BIOS_FLASH,
  ]);
});

Deno.test("pcMemoryMap() puts the ACPI area in the last 128 KiB of 128 MiB", () => {
  const map = pcMemoryMap(128 * MiB);
  assertEquals(map[2], { base: 0x100000, length: 0x7fe0000 - 0x100000, type: 1 });
  assertEquals(map[3], { base: 0x7fe0000, length: ACPI_AREA_SIZE_BYTES, type: 3 });
  assertEquals(map.length, 5);
});

Deno.test("pcMemoryMap() keeps 3 GiB below the PCI hole with nothing above 4 GiB", () => {
  const map = pcMemoryMap(3 * GiB);
  assertEquals(map.at(-2), { base: 3 * GiB - 0x20000, length: 0x20000, type: 3 });
  assertEquals(map.at(-1), BIOS_FLASH);
});

Deno.test("pcMemoryMap() moves RAM above 3.5 GiB to 4 GiB for a 4 GiB machine", () => {
  const map = pcMemoryMap(4 * GiB);
  assertEquals(map[3], { base: PCI_HOLE_START - 0x20000, length: 0x20000, type: 3 });
  assertEquals(map.at(-1), { base: HIGH_MEMORY_START, length: 512 * MiB, type: 1 });
});

Deno.test("pcMemoryMap() places 60.5 GiB above 4 GiB for a 64 GiB machine", () => {
  const map = pcMemoryMap(64 * GiB);
  assertEquals(map.at(-1), { base: 4 * GiB, length: 64 * GiB - 3.5 * GiB, type: 1 });
});

Deno.test("pcMemoryMap() reports RAM minus the low hole, sorted, with only BIOS flash in the PCI hole", () => {
  for (const ramBytes of [16 * MiB, 128 * MiB, 3 * GiB, 3.5 * GiB, 4 * GiB, 64 * GiB]) {
    const map = pcMemoryMap(ramBytes);
    assertEquals(ramTypeBytes(map), ramBytes - LOW_HOLE_BYTES, `${ramBytes} bytes`);
    for (let i = 1; i < map.length; i++) {
      assert(map[i].base >= map[i - 1].base + map[i - 1].length, "sorted and disjoint");
    }
    const inHole = map.filter((e) => e.base < PCI_HOLE_END && e.base + e.length > PCI_HOLE_START);
    assertEquals(inHole, [BIOS_FLASH]);
  }
});

Deno.test("pcMemoryMap() rejects sizes outside 16 MiB..64 GiB or not whole frames", () => {
  for (const bad of [8 * MiB, 16 * MiB - 4096, MAX_RAM_BYTES + 4096, 16 * MiB + 1, NaN]) {
    assertThrows(() => pcMemoryMap(bad), RangeError, "16 MiB to 64 GiB");
  }
});

Deno.test("ramRangesFor() turns a PC map into frame-aligned RAM with holes", () => {
  assertEquals(ramRangesFor(pcMemoryMap(128 * MiB)), [
    { base: 0, sizeBytes: 0x9f000 },
    { base: 0x100000, sizeBytes: 128 * MiB - 0x100000 },
  ]);
  assertEquals(ramRangesFor(pcMemoryMap(4 * GiB)).at(-1), {
    base: 4 * GiB,
    sizeBytes: 512 * MiB,
  });
});

Deno.test("ramRangesFor() rounds inward, merges overlaps, keeps NVS and drops reserved and bad RAM", () => {
  const ranges = ramRangesFor([
    { base: 0x3000, length: 0x2000, type: 1 }, // merged with the next two
    { base: 0x1800, length: 0x2000, type: 4 }, // NVS, rounds to 0x2000..0x3000
    { base: 0x5000, length: 0x1000, type: 3 }, // adjacent
    { base: 0x10000, length: 0x800, type: 1 }, // less than a frame: dropped
    { base: 0x20000, length: 0x1000, type: 2 },
    { base: 0x30000, length: 0x1000, type: 5 },
    { base: 0x40000, length: 0x1000, type: 7 },
  ]);
  assertEquals(ranges, [{ base: 0x2000, sizeBytes: 0x4000 }]);
  assertEquals(ramRangesFor([]), []);
});

Deno.test("ramRangesFor() output builds a PhysicalMemory with RAM above 4 GiB and the PCI hole empty", () => {
  const memory = new PhysicalMemory(ramRangesFor(pcMemoryMap(4 * GiB)));
  assert(memory.isRam(4 * GiB, 512 * MiB));
  assert(!memory.isRam(PCI_HOLE_START, 4096));
  assert(!memory.isRam(0xa0000, 1));
  memory.write32((4 * GiB + 8) as PhysAddr, 0x12345678);
  assertEquals(memory.read32((4 * GiB + 8) as PhysAddr), 0x12345678);
  assertEquals(memory.sizeBytes, 4 * GiB - LOW_HOLE_BYTES - 0xc00);
});
