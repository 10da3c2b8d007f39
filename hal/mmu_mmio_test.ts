import { assert, assertEquals, assertStringIncludes, assertThrows } from "../testing/mod.ts";
import { PAGE_SIZE_2M, PAGE_SIZE_4K, type PhysAddr, type VirtAddr } from "./address.ts";
import type { AccessWidth, MmioDevice } from "./bus.ts";
import { VirtualClock } from "./clock.ts";
import { CR0_PE, CR0_PG, CR4_PAE, EFER_LME, EFER_NXE } from "./cpu.ts";
import { BusError } from "./faults.ts";
import type { LocalInterruptController } from "./local_interrupt_controller.ts";
import { Machine } from "./machine.ts";
import {
  MEMORY_TYPE_UC,
  MEMORY_TYPE_UC_MINUS,
  MEMORY_TYPE_WB,
  MEMORY_TYPE_WT,
  memoryTypeOf,
} from "./memory_type.ts";
import {
  encodeEntryHigh,
  encodeEntryLow,
  entryIndex,
  type PagingLevel,
  PTE_P,
  PTE_PAT,
  PTE_PAT_HUGE,
  PTE_PCD,
  PTE_PS,
  PTE_PWT,
  PTE_RW,
  writeEntry,
} from "./page_table_entry.ts";
import { PhysicalMemory } from "./physical_memory.ts";
import { Tracer } from "./trace.ts";

const MMIO_BASE = 0xfeb0_0000 as PhysAddr;
const APIC_BASE = 0xfee0_0000 as PhysAddr;
const UNBACKED = 0xd000_0000 as PhysAddr;

/** A device that records accesses and answers reads with offset + 0x1000. */
class RecordingDevice implements MmioDevice {
  readonly accesses: string[] = [];
  constructor(readonly name: string) {}
  mmioRead(offsetBytes: number, width: AccessWidth): number {
    this.accesses.push(`read ${offsetBytes.toString(16)}/${width}`);
    return 0x1000 + offsetBytes;
  }
  mmioWrite(offsetBytes: number, value: number, width: AccessWidth): void {
    this.accesses.push(`write ${offsetBytes.toString(16)}=${value.toString(16)}/${width}`);
  }
}

/** A machine with 16 MiB of RAM, paging on, a device on the bus and a local APIC in the CPU. */
function rig() {
  const memory = PhysicalMemory.contiguous(16 * 2 ** 20);
  const machine = new Machine(memory, new VirtualClock());
  const device = new RecordingDevice("test-device");
  machine.bus.claimMmio(MMIO_BASE, PAGE_SIZE_4K, device);
  const apicDevice = new RecordingDevice("apic");
  const apic: LocalInterruptController = {
    name: "local-apic",
    mmioBase: APIC_BASE,
    mmioSizeBytes: PAGE_SIZE_4K,
    mmioRead: (offset, width) => apicDevice.mmioRead(offset, width),
    mmioWrite: (offset, value, width) => apicDevice.mmioWrite(offset, value, width),
    pendingVector: () => -1,
    acknowledge: () => {},
    acceptsExtInt: () => true,
  };
  machine.cpu.attachLocalApic(apic);
  let nextTable = 0x10_0000;
  const allocate = () => {
    const table = nextTable;
    nextTable += PAGE_SIZE_4K;
    memory.fill(table as PhysAddr, PAGE_SIZE_4K, 0);
    return table;
  };
  const root = allocate();
  /** Maps one page of `sizeBytes` at `va` to `pa` with extra leaf bits `flags`. */
  const map = (va: number, pa: number, flags: number, sizeBytes = PAGE_SIZE_4K) => {
    const leafLevel: PagingLevel = sizeBytes === PAGE_SIZE_4K ? 1 : 2;
    let table = root;
    for (let level = 4; level > leafLevel; level--) {
      const entry = table + entryIndex(va as VirtAddr, level as PagingLevel) * 8;
      if ((memory.read32(entry as PhysAddr) & PTE_P) === 0) {
        writeEntry(
          memory,
          entry as PhysAddr,
          encodeEntryLow(allocate() as PhysAddr, PTE_P | PTE_RW),
          0,
        );
      }
      table = memory.read32(entry as PhysAddr) & ~0xfff;
    }
    const leaf = PTE_P | PTE_RW | flags | (leafLevel === 2 ? PTE_PS : 0);
    writeEntry(
      memory,
      (table + entryIndex(va as VirtAddr, leafLevel) * 8) as PhysAddr,
      encodeEntryLow(pa as PhysAddr, leaf),
      encodeEntryHigh(pa as PhysAddr, 0),
    );
  };
  const cpu = machine.cpu;
  cpu.writeCr4(CR4_PAE);
  cpu.writeEfer(EFER_LME | EFER_NXE);
  cpu.writeCr3(root);
  cpu.writeCr0(CR0_PE | CR0_PG);
  return { machine, memory, device, apicDevice, map, mmu: machine.mmu };
}

Deno.test("Mmu reaches a bus device through a mapping: MMIO through paging", () => {
  const { mmu, map, device } = rig();
  map(0x40_0000, MMIO_BASE, PTE_PCD | PTE_PWT);
  assertEquals(mmu.readVirt32(0x40_0010 as VirtAddr), 0x1010);
  mmu.writeVirt32(0x40_0020 as VirtAddr, 0xabcd);
  mmu.writeVirt8(0x40_0021 as VirtAddr, 0x7f);
  assertEquals(device.accesses, ["read 10/4", "write 20=abcd/4", "write 21=7f/1"]);
  assertEquals(mmu.readVirt32(0x40_0010 as VirtAddr), 0x1010, "a TLB hit reaches it too");
  assertEquals(device.accesses.length, 4);
});

Deno.test("Mmu sends the local APIC page to the CPU's own APIC, never to the bus", () => {
  const { mmu, map, apicDevice, machine } = rig();
  const other = new RecordingDevice("bus-device-at-apic-page");
  machine.bus.claimMmio(APIC_BASE, PAGE_SIZE_4K, other);
  map(0x40_1000, APIC_BASE, PTE_PCD | PTE_PWT);
  assertEquals(mmu.readVirt32(0x40_1020 as VirtAddr), 0x1020);
  assertEquals(apicDevice.accesses, ["read 20/4"]);
  assertEquals(other.accesses, [], "the system bus never sees the core's APIC accesses");
});

Deno.test("Mmu: an access nothing answers is a BusError naming address, width and direction", () => {
  const { mmu, map } = rig();
  map(0x40_2000, UNBACKED, PTE_PCD | PTE_PWT);
  const read = assertThrows(() => mmu.readVirt32(0x40_2004 as VirtAddr), BusError);
  assertEquals([read.address, read.sizeBytes], [UNBACKED + 4, 4]);
  assertStringIncludes(
    read.message,
    "0xd0000004 (4 bytes): no RAM or device answers a 4-byte read",
  );
  const write = assertThrows(() => mmu.writeVirt8(0x40_2000 as VirtAddr, 1), BusError);
  assertStringIncludes(write.message, "(1 byte): no RAM or device answers a 1-byte write");
  assertEquals(mmu.machineChecks, 2);
});

Deno.test("Mmu raises #MC through the kernel's machine-check handler, which does not return", () => {
  const { mmu, map } = rig();
  map(0x40_2000, UNBACKED, 0);
  const seen: BusError[] = [];
  class Panic extends Error {}
  mmu.setMachineCheckHandler((error) => {
    seen.push(error);
    throw new Panic("machine check");
  });
  assertThrows(() => mmu.readVirt16(0x40_2002 as VirtAddr), Panic);
  assertEquals(seen.map((error) => error.address), [UNBACKED + 2]);
  mmu.setMachineCheckHandler(() => {}); // a handler that returns: the MMU still throws
  assertThrows(() => mmu.readVirt8(0x40_2000 as VirtAddr), BusError);
});

Deno.test("memoryTypeOf() follows the reset PAT: PCD selects UC or UC-, PWT alone WT", () => {
  assertEquals(memoryTypeOf(false, false, false), MEMORY_TYPE_WB);
  assertEquals(memoryTypeOf(false, false, true), MEMORY_TYPE_WT);
  assertEquals(memoryTypeOf(false, true, false), MEMORY_TYPE_UC_MINUS);
  assertEquals(memoryTypeOf(false, true, true), MEMORY_TYPE_UC);
  assertEquals(memoryTypeOf(true, true, true), MEMORY_TYPE_UC);
  assertEquals(memoryTypeOf(true, false, false), MEMORY_TYPE_WB);
});

Deno.test("Mmu's uncached-MMIO check reports cacheable device mappings once per page, and traces them", () => {
  const { mmu, map, machine } = rig();
  const lines: string[] = [];
  mmu.setTracer(new Tracer({ categories: ["mmu"], sink: (line) => lines.push(line) }));
  map(0x50_0000, MMIO_BASE, PTE_PCD | PTE_PWT); // UC
  map(0x50_1000, MMIO_BASE, PTE_PCD); // UC-
  map(0x50_2000, MMIO_BASE, PTE_PAT | PTE_PCD | PTE_PWT); // PAT entry 7: UC
  map(0x50_3000, MMIO_BASE, 0); // WB: a mistake
  map(0x50_4000, MMIO_BASE, PTE_PWT); // WT: a mistake too
  map(0x50_5000, 0x20_0000, 0); // RAM: cacheable is right
  for (const page of [0x50_0000, 0x50_1000, 0x50_2000, 0x50_3000, 0x50_4000, 0x50_5000]) {
    mmu.readVirt32(page as VirtAddr);
  }
  machine.cpu.tlb.flushAll();
  mmu.readVirt32(0x50_3000 as VirtAddr); // walked again: not counted twice
  assertEquals(mmu.cachingViolationCount, 2);
  assertEquals(
    mmu.cachingViolations.map((v) => [v.virtAddr, v.physAddr, v.memoryType, v.deviceName]),
    [[0x50_3000, MMIO_BASE, "WB", "test-device"], [0x50_4000, MMIO_BASE, "WT", "test-device"]],
  );
  assertEquals(lines.length, 2);
  assertStringIncludes(
    lines[0],
    "mmu: uncached-MMIO check: page 0x503000 maps test-device registers at 0xfeb00000 as WB, " +
      "not UC (map MMIO with PCD|PWT)",
  );
});

Deno.test("Mmu's uncached-MMIO check reads the PAT bit of a 2 MiB page at bit 12 and covers the APIC page", () => {
  const { mmu, map } = rig();
  map(0x60_0000, 0xfee0_0000, 0, PAGE_SIZE_2M); // WB, over the APIC page
  mmu.readVirt32((0x60_0000 + (APIC_BASE % PAGE_SIZE_2M)) as VirtAddr);
  assertEquals(mmu.cachingViolations.map((v) => v.deviceName), ["local-apic"]);
  map(0x80_0000, 0xfee0_0000, PTE_PAT_HUGE | PTE_PCD | PTE_PWT, PAGE_SIZE_2M); // UC
  mmu.readVirt32((0x80_0000 + (APIC_BASE % PAGE_SIZE_2M)) as VirtAddr);
  assertEquals(mmu.cachingViolationCount, 1);
  assert(mmu.cachingViolations[0].pageSizeBytes === PAGE_SIZE_2M);
});
