import {
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  type PhysAddr,
  type VirtAddr,
} from "./address.ts";
import { BusError } from "./faults.ts";
import {
  describeEntry,
  encodeEntryHigh,
  encodeEntryLow,
  entryFrameAddr,
  entryIndex,
  entryTableAddr,
  formatEntry,
  isLeaf,
  isNoExecute,
  isPresent,
  leafPageSize,
  levelSpanBytes,
  PTE_A,
  PTE_D,
  PTE_G,
  PTE_HIGH_NX,
  PTE_P,
  PTE_PAT,
  PTE_PAT_HUGE,
  PTE_PCD,
  PTE_PS,
  PTE_PWT,
  PTE_RW,
  PTE_US,
  readEntryHigh,
  readEntryLow,
  reservedHighMask,
  reservedLowMask,
  writeEntry,
} from "./page_table_entry.ts";
import { PhysicalMemory } from "./physical_memory.ts";
import { assertEquals, assertThrows } from "../testing/mod.ts";

Deno.test("PTE_* constants are the SDM bit positions, NX as bit 31 of the high half", () => {
  assertEquals(
    [PTE_P, PTE_RW, PTE_US, PTE_PWT, PTE_PCD, PTE_A, PTE_D, PTE_PS, PTE_PAT, PTE_G, PTE_PAT_HUGE],
    [1, 2, 4, 8, 16, 32, 64, 128, 128, 256, 4096],
  );
  assertEquals(PTE_HIGH_NX, 0x80000000);
});

Deno.test("entryIndex() takes VA[47:39], [38:30], [29:21] and [20:12]", () => {
  // 0xffff_8123_4567_8000: PML4 index 258, PDPT 141, PD 43, PT 120.
  const va = (0x8123_4567_8000) as VirtAddr;
  assertEquals(entryIndex(va, 4), 0x8123_4567_8000 / 2 ** 39 | 0);
  assertEquals(entryIndex(va, 4), 258);
  assertEquals(entryIndex(va, 3), 141);
  assertEquals(entryIndex(va, 2), 43);
  assertEquals(entryIndex(va, 1), 120);
  assertEquals(entryIndex((2 ** 48 - 1) as VirtAddr, 4), 511);
  assertEquals(levelSpanBytes(3), PAGE_SIZE_1G);
  assertEquals(levelSpanBytes(4), 512 * PAGE_SIZE_1G);
});

Deno.test("encodeEntryLow() and encodeEntryHigh() split an address above 4 GiB into halves", () => {
  const pa = (0x000f_1234_5678_9000) as PhysAddr;
  const low = encodeEntryLow(pa, PTE_P | PTE_RW | PTE_US);
  const high = encodeEntryHigh(pa, PTE_HIGH_NX);
  assertEquals(low, 0x5678_9007);
  assertEquals(high, 0x800f_1234);
  assertEquals(entryTableAddr(low, high), pa);
  assertEquals(isNoExecute(high), true);
  assertEquals(isNoExecute(encodeEntryHigh(pa)), false);
  assertEquals(formatEntry(low, high), "0x800f123456789007");
});

Deno.test("encodeEntryLow() rejects an address that is misaligned or not below 2^52", () => {
  assertThrows(() => encodeEntryLow(0x1001 as PhysAddr, PTE_P), RangeError, "0x1001");
  assertThrows(() => encodeEntryHigh(2 ** 52 as PhysAddr), RangeError);
});

Deno.test("entryFrameAddr() keeps bits 51:12, 51:21 or 51:30 by page size", () => {
  const low = 0xffff_f000 | PTE_P;
  const high = 0xfff0_0001; // NX, ignored bits 62:52 and address bit 32
  assertEquals(entryFrameAddr(low, high, PAGE_SIZE_4K), 0x1_ffff_f000);
  assertEquals(entryFrameAddr(low, high, PAGE_SIZE_2M), 0x1_ffe0_0000);
  assertEquals(entryFrameAddr(low, high, PAGE_SIZE_1G), 0x1_c000_0000);
  // Bit 12 of a huge leaf is PAT, not address.
  assertEquals(entryFrameAddr(0x0020_1000 | PTE_PS | PTE_P, 0, PAGE_SIZE_2M), 0x0020_0000);
});

Deno.test("isPresent(), isLeaf() and leafPageSize() read P and PS by level", () => {
  assertEquals(isPresent(PTE_P), true);
  assertEquals(isPresent(PTE_RW), false);
  assertEquals(isLeaf(PTE_P, 1), true);
  assertEquals(isLeaf(PTE_P | PTE_PAT, 1), true);
  assertEquals(isLeaf(PTE_P | PTE_PS, 2), true);
  assertEquals(isLeaf(PTE_P | PTE_PS, 3), true);
  assertEquals(isLeaf(PTE_P | PTE_PS, 4), false);
  assertEquals(isLeaf(PTE_P, 3), false);
  assertEquals([leafPageSize(1), leafPageSize(2), leafPageSize(3)], [
    PAGE_SIZE_4K,
    PAGE_SIZE_2M,
    PAGE_SIZE_1G,
  ]);
});

Deno.test("reservedHighMask() covers bits 51:MAXPHYADDR of the high half", () => {
  assertEquals(reservedHighMask(46), 0x000f_c000);
  assertEquals(reservedHighMask(52), 0);
  assertEquals(reservedHighMask(36), 0x000f_fff0);
  assertEquals(reservedHighMask(32), 0x000f_ffff);
  assertThrows(() => reservedHighMask(31), RangeError, "MAXPHYADDR");
  assertThrows(() => reservedHighMask(53), RangeError);
});

Deno.test("reservedLowMask() covers bits 29:13 of a 1 GiB leaf and 20:13 of a 2 MiB leaf", () => {
  assertEquals(reservedLowMask(PTE_P | PTE_PS, 3), 0x3fff_e000);
  assertEquals(reservedLowMask(PTE_P | PTE_PS, 2), 0x001f_e000);
  assertEquals(reservedLowMask(PTE_P, 2), 0);
  assertEquals(reservedLowMask(PTE_P | PTE_PAT, 1), 0);
});

Deno.test("writeEntry() and readEntryLow()/readEntryHigh() round-trip through RAM", () => {
  const memory = PhysicalMemory.contiguous(16 * 2 ** 20);
  const entryPa = 0x2008 as PhysAddr;
  writeEntry(memory, entryPa, 0x1234_5067, 0x8000_0001);
  assertEquals(readEntryLow(memory, entryPa), 0x1234_5067);
  assertEquals(readEntryHigh(memory, entryPa), 0x8000_0001);
  assertEquals(memory.read32(entryPa), 0x1234_5067);
  assertEquals(memory.read32((entryPa + 4) as PhysAddr), 0x8000_0001);
  writeEntry(memory, entryPa, 0, 0);
  assertEquals(memory.read64(entryPa), 0);
});

Deno.test("writeEntry() rejects a misaligned entry and one outside RAM", () => {
  const memory = PhysicalMemory.contiguous(16 * 2 ** 20);
  assertThrows(() => writeEntry(memory, 0x2004 as PhysAddr, 1, 0), RangeError, "8-byte");
  assertThrows(() => writeEntry(memory, (16 * 2 ** 20) as PhysAddr, 1, 0), BusError);
  assertThrows(() => readEntryLow(memory, (16 * 2 ** 20) as PhysAddr), BusError);
});

Deno.test("describeEntry() names the flags each level defines", () => {
  const leaf = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
  assertEquals(describeEntry(leaf, PTE_HIGH_NX, 1), "P RW US A D NX");
  assertEquals(describeEntry(PTE_P | PTE_G | PTE_PAT | PTE_PWT | PTE_PCD, 0, 1), "P PWT PCD G PAT");
  assertEquals(describeEntry(PTE_P | PTE_PS | PTE_D | PTE_G | PTE_PAT_HUGE, 0, 2), "P D PS G PAT");
  assertEquals(describeEntry(PTE_P | PTE_PS, 0, 3), "P PS");
  // In a non-leaf entry D and G are ignored; PS in a PML4E is reserved.
  assertEquals(describeEntry(PTE_P | PTE_RW | PTE_D | PTE_G, 0, 2), "P RW");
  assertEquals(describeEntry(PTE_P | PTE_PS, 0, 4), "P PS!");
  assertEquals(describeEntry(PTE_RW | PTE_US, PTE_HIGH_NX, 1), "not present");
});
