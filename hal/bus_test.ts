import { assertEquals, assertThrows } from "../testing/mod.ts";
import { type PhysAddr, physAddr } from "./address.ts";
import { type AccessWidth, DeviceBus, type MmioDevice, type PortDevice } from "./bus.ts";
import { BusError } from "./faults.ts";
import { PhysicalMemory } from "./physical_memory.ts";

/** A device that records every access and answers reads with offset + width. */
class RecordingDevice implements PortDevice, MmioDevice {
  readonly log: string[] = [];
  constructor(readonly name: string) {}
  portRead(offset: number, width: AccessWidth): number {
    this.log.push(`in ${offset}/${width}`);
    return 0x100 + offset;
  }
  portWrite(offset: number, value: number, width: AccessWidth): void {
    this.log.push(`out ${offset}/${width}=${value.toString(16)}`);
  }
  mmioRead(offset: number, width: AccessWidth): number {
    this.log.push(`read ${offset}/${width}`);
    return 0xabcd;
  }
  mmioWrite(offset: number, value: number, width: AccessWidth): void {
    this.log.push(`write ${offset}/${width}=${value.toString(16)}`);
  }
}

const MIB = 2 ** 20;

Deno.test("DeviceBus routes port I/O to the claiming device with offsets relative to its base", () => {
  const bus = new DeviceBus(PhysicalMemory.contiguous(16 * MIB));
  const uart = new RecordingDevice("uart");
  bus.claimPorts(0x3f8, 8, uart);
  assertEquals(bus.portIn(0x3fd, 1), 0x105);
  bus.portOut(0x3f8, 0x1ff, 1); // masked to the access width
  bus.portOut(0x3fa, 0x12345, 2);
  assertEquals(uart.log, ["in 5/1", "out 0/1=ff", "out 2/2=2345"]);
  assertEquals(bus.portOwner(0x3ff), uart);
  assertEquals(bus.portOwner(0x400), undefined);
});

Deno.test("DeviceBus reads unclaimed ports as all ones and drops and counts writes", () => {
  const bus = new DeviceBus(PhysicalMemory.contiguous(16 * MIB));
  assertEquals([bus.portIn(0x80, 1), bus.portIn(0x80, 2), bus.portIn(0x80, 4)], [
    0xff,
    0xffff,
    0xffffffff,
  ]);
  bus.portOut(0x80, 1, 1);
  bus.portOut(0x2f8, 1, 1);
  assertEquals([bus.unclaimedPortReads, bus.unclaimedPortWrites], [3, 2]);
});

Deno.test("DeviceBus rejects overlapping port claims, naming both devices", () => {
  const bus = new DeviceBus(PhysicalMemory.contiguous(16 * MIB));
  bus.claimPorts(0x40, 4, new RecordingDevice("pit"));
  assertThrows(
    () => bus.claimPorts(0x43, 2, new RecordingDevice("other")),
    RangeError,
    "Cannot claim port 0x43 for other: already claimed by pit",
  );
  assertThrows(() => bus.claimPorts(0xffff, 2, new RecordingDevice("x")), RangeError);
  // The failed claim took nothing.
  assertEquals(bus.portOwner(0x44), undefined);
});

Deno.test("DeviceBus routes physical accesses to RAM, then MMIO, else BusError", () => {
  const memory = new PhysicalMemory([
    { base: 0 as PhysAddr, sizeBytes: MIB },
    { base: physAddr(4 * MIB), sizeBytes: MIB },
  ]);
  const bus = new DeviceBus(memory);
  const device = new RecordingDevice("mmio");
  bus.claimMmio(physAddr(2 * MIB), 4096, device);
  bus.writePhys(physAddr(0x1000), 0xdeadbeef, 4);
  assertEquals(memory.read32(physAddr(0x1000)), 0xdeadbeef);
  assertEquals(bus.readPhys(physAddr(0x1002), 2), 0xdead);
  assertEquals(bus.readPhys(physAddr(2 * MIB + 8), 4), 0xabcd);
  bus.writePhys(physAddr(2 * MIB + 16), 7, 1);
  assertEquals(device.log, ["read 8/4", "write 16/1=7"]);
  const error = assertThrows(() => bus.readPhys(physAddr(3 * MIB), 4), BusError, "0x300000");
  assertEquals([error.address, error.sizeBytes], [3 * MIB, 4]);
  // An access straddling the end of a device range is not the device's.
  assertThrows(() => bus.readPhys(physAddr(2 * MIB + 4094), 4), BusError);
});

Deno.test("DeviceBus rejects MMIO claims overlapping RAM or another device", () => {
  const bus = new DeviceBus(PhysicalMemory.contiguous(16 * MIB));
  assertThrows(
    () => bus.claimMmio(physAddr(15 * MIB), 2 * MIB, new RecordingDevice("big")),
    RangeError,
    "overlaps RAM",
  );
  bus.claimMmio(physAddr(0xfee00000), 4096, new RecordingDevice("lapic"));
  assertThrows(
    () => bus.claimMmio(physAddr(0xfee00800), 4096, new RecordingDevice("other")),
    RangeError,
    "overlaps lapic",
  );
});
