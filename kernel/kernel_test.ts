import {
  createPc,
  DebugConsole,
  UART_FCR_TRIGGER_14,
  UART_FCR_TRIGGER_MASK,
} from "../devices/mod.ts";
import {
  DEBUG_CONSOLE_PORT,
  loadMultiboot2,
  Machine,
  pcMemoryMap,
  type PhysAddr,
  PhysicalMemory,
  ramRangesFor,
  VirtualClock,
} from "../hal/mod.ts";
import { assert, assertEquals, assertMatch, assertThrows } from "../testing/mod.ts";
import { buildKernelImage } from "./boot/mod.ts";
import { Kernel } from "./kernel.ts";
import { KernelPanic } from "./panic.ts";

const MIB = 2 ** 20;

function loadedMemory(): { memory: PhysicalMemory; magic: number; mbiAddress: PhysAddr } {
  const memoryMap = pcMemoryMap(32 * MIB);
  const memory = new PhysicalMemory(ramRangesFor(memoryMap));
  const loaded = loadMultiboot2(memory, buildKernelImage(), { memoryMap, loaderVersion: "test" });
  return { memory, magic: loaded.magic, mbiAddress: loaded.mbiAddress };
}

Deno.test("Kernel.boot() panics on a wrong multiboot2 magic and halts the machine", () => {
  const { memory, mbiAddress } = loadedMemory();
  let serial = "";
  const pc = createPc(memory, new VirtualClock(), {
    serialSink: (byte) => serial += String.fromCharCode(byte),
  });
  const panic = assertThrows(
    () => Kernel.boot(pc.machine, 0x2badb002, mbiAddress, { version: "test" }),
    KernelPanic,
  );
  assertMatch(serial, /^KERNEL PANIC: InvalidBootMagic: .*0x2badb002/m);
  assertEquals(pc.machine.haltReason, panic.reason);
  assertEquals(pc.machine.cpu.interruptsEnabled, false);
});

Deno.test("Kernel.boot() without a UART panics on the debug console, early log included", () => {
  const { memory, magic, mbiAddress } = loadedMemory();
  const machine = new Machine(memory, new VirtualClock());
  let debug = "";
  machine.bus.claimPorts(
    DEBUG_CONSOLE_PORT,
    1,
    new DebugConsole((byte) => debug += String.fromCharCode(byte)),
  );
  assertThrows(
    () => Kernel.boot(machine, magic, mbiAddress, { version: "test" }),
    KernelPanic,
  );
  assertMatch(debug, /^KERNEL PANIC: DeviceNotFound: .*0x3f8/m);
  assert(machine.haltReason !== undefined);
});

Deno.test("Kernel.boot() brings every subsystem up and reports from RAM", () => {
  const { memory, magic, mbiAddress } = loadedMemory();
  const pc = createPc(memory, new VirtualClock(), { serialSink: () => {} });
  const kernel = Kernel.boot(pc.machine, magic, mbiAddress, {
    version: "test",
    selftest: true,
  });
  const report = kernel.report();
  assertEquals(report.selftest, { passed: 8, failed: 0 });
  assertEquals(
    report.frames.totalFrames,
    report.frames.pools.reduce((n, p) => n + p.frameCount, 0),
  );
  assertEquals(report.paging.directMapBase, "0xffff800000000000");
  assertEquals(report.heap.bytesInUse, 0, "the self-tests freed everything");
  // The UART probe runs before the driver's init, so the RX FIFO keeps trigger 14.
  assertEquals(pc.uart.saveState().fcr & UART_FCR_TRIGGER_MASK, UART_FCR_TRIGGER_14);
});
