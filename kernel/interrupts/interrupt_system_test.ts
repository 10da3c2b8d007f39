import {
  IOAPIC_IOREGSEL,
  IOAPIC_IOWIN,
  IOAPIC_REG_REDIRECTION_BASE,
  LAPIC_LVT_LINT0,
  LAPIC_LVT_MASKED,
  LAPIC_LVT_TIMER,
  LAPIC_TIMER_PERIODIC,
  LAPIC_TMR,
} from "../../devices/mod.ts";
import {
  IRQ_COM1,
  loadMultiboot2,
  pcMemoryMap,
  PhysicalMemory,
  PTE_PCD,
  PTE_PWT,
  ramRangesFor,
  type VirtAddr,
  VirtualClock,
} from "../../hal/mod.ts";
import { createPc, installAcpiTables } from "../../devices/mod.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
  assertThrows,
} from "../../testing/mod.ts";
import { bootTestKernel } from "../../tests/_boot_kernel.ts";
import { buildKernelImage } from "../boot/mod.ts";
import { Kernel } from "../kernel.ts";
import { KernelPanic } from "../panic.ts";
import { MMIO_WINDOW_BASE } from "../drivers/mod.ts";

const MiB = 2 ** 20;

/** A default (APIC mode) boot on a 32 MiB PC with a virtual clock. */
function apicBoot() {
  return bootTestKernel({ memoryBytes: 32 * MiB });
}

Deno.test("A default boot runs in APIC mode: 8259 and LINT0 masked, the local APIC timer as the tick", () => {
  const { kernel, pc, clock, serialText } = apicBoot();
  const system = kernel.interrupts;
  assertEquals(system.mode, "apic");
  assertEquals(pc.machine.interrupts.maskBits, 0xffff, "every 8259 line masked");
  const lint0 = pc.localApic.mmioRead(LAPIC_LVT_LINT0, 4);
  assertEquals(lint0 & LAPIC_LVT_MASKED, LAPIC_LVT_MASKED, "the 8259 no longer reaches the CPU");
  assertEquals(pc.localApic.mmioRead(LAPIC_LVT_TIMER, 4), 0xec | LAPIC_TIMER_PERIODIC);
  assertEquals(kernel.timer.name, "local APIC timer");
  const log = serialText();
  assertStringIncludes(log, "apic: 8259 masked: switching to APIC mode");
  assertStringIncludes(
    log,
    "irq: IRQ 0 (timer) -> I/O APIC 1 pin 2 (GSI 2, ACPI override) -> vector 0x30, edge, active high",
  );
  assertStringIncludes(log, "irq: IRQ 4 (COM1) -> I/O APIC 1 pin 4 (GSI 4) -> vector 0x34");
  assertMatch(
    log,
    /apic: local APIC timer calibrated against the HPET: 62\.500 MHz \(bus 1000\.000 MHz/,
  );
  assertStringIncludes(
    log,
    "timer: local APIC timer at 100 Hz, periodic (vector 0xec, initial count 625000)",
  );
  // One second of machine time: 100 ticks through the local APIC, none through the 8259.
  const ticksBefore = kernel.timer.tickCount;
  clock.advanceNs(1_000_000_000);
  pc.machine.synchronize();
  assertEquals(
    kernel.timer.tickCount - ticksBefore,
    1,
    "a whole second collapses into one IRR bit",
  );
  for (let i = 0; i < 99; i++) pc.machine.waitForInterrupt();
  assertEquals(kernel.timer.tickCount - ticksBefore, 100);
  assertEquals(pc.machine.cpu.interruptsDeliveredPerIrq.reduce((a, b) => a + b, 0), 0);
});

Deno.test("COM1 input arrives through the I/O APIC and the local APIC in APIC mode", () => {
  const { kernel, pc } = apicBoot();
  const received: number[] = [];
  kernel.serial.enableReceiveInterrupts((byte) => received.push(byte));
  for (const byte of [0x6f, 0x6b]) assert(pc.uart.receive(byte));
  pc.machine.waitForInterrupt(); // the character timeout raises IRQ 4
  assertEquals(received, [0x6f, 0x6b]);
  assert(pc.ioApic.messagesSent[4] >= 1, "the I/O APIC sent pin 4's vector");
  assert(kernel.interrupts.vectors.counts[0x34] >= 1);
  assertEquals(
    pc.machine.cpu.interruptsDeliveredPerIrq[IRQ_COM1],
    0,
    "nothing came through the 8259",
  );
  kernel.serial.disableReceiveInterrupts();
  pc.ioApic.mmioWrite(IOAPIC_IOREGSEL, IOAPIC_REG_REDIRECTION_BASE + 8, 4);
  assertEquals(pc.ioApic.mmioRead(IOAPIC_IOWIN, 4) & (1 << 16), 1 << 16, "detached: pin 4 masked");
});

Deno.test("The kernel maps the local APIC, I/O APIC and HPET uncached and reads them through the MMU", () => {
  const { kernel, pc } = apicBoot();
  const system = kernel.interrupts;
  const space = kernel.kernelSpace.addressSpace;
  for (const region of system.mmio!.regions) {
    assert(region.virtAddr >= MMIO_WINDOW_BASE, `${region.name} in the MMIO window`);
    const mapping = space.mapping(region.virtAddr as VirtAddr)!;
    assertEquals(mapping.physAddr, region.physAddr - (region.physAddr % 4096));
    assertEquals(mapping.flags & (PTE_PCD | PTE_PWT), PTE_PCD | PTE_PWT, `${region.name} uncached`);
  }
  const mmu = pc.machine.mmu;
  const missesBefore = mmu.tlb.stats.misses;
  pc.machine.cpu.tlb.flushAll();
  assertEquals(system.lapic!.id(), pc.localApic.apicId);
  assertEquals(system.ioApics[0].driver.version(), 0x11);
  assertEquals(system.hpet!.periodFs(), 10_000_000);
  assert(mmu.tlb.stats.misses > missesBefore, "the reads went through page walks");
  assertEquals(mmu.cachingViolationCount, 0, "no device page is mapped cacheable");
});

Deno.test("An access to an unbacked physical address panics as a machine check naming it", () => {
  const { kernel, pc, serialText } = apicBoot();
  const va = 0x7000_0000 as VirtAddr;
  kernel.kernelSpace.addressSpace.map(va, 0xd000_0000 as never, { writable: true });
  const panic = assertThrows(() => pc.machine.mmu.readVirt32((va + 8) as VirtAddr), KernelPanic);
  assertEquals(
    panic.reason,
    "Machine check: bus error at physical address 0xd0000008 (4 bytes): no RAM or device answers " +
      "a 4-byte read",
  );
  assertStringIncludes(serialText(), `KERNEL PANIC: ${panic.reason}\n`);
  assertEquals(pc.machine.haltReason, panic.reason);
  assertEquals(pc.machine.cpu.interruptsEnabled, false);
});

Deno.test("An HPET comparator routed to an I/O APIC level pin interrupts the kernel until acknowledged", () => {
  const { kernel, pc, clock } = apicBoot();
  const system = kernel.interrupts;
  const hpet = system.hpet!;
  const lapic = system.lapic!;
  const ioApic = system.ioApics[0].driver;
  const calls: boolean[] = [];
  system.vectors.install(0x60, "HPET timer 1", () => {
    const isFirst = calls.length === 0;
    calls.push(pc.localApic.mmioRead(LAPIC_TMR + 0x30, 4) !== 0); // vector 0x60's TMR bit
    if (!isFirst) hpet.acknowledge(1); // the first time, leave the line active
    lapic.eoi();
  });
  ioApic.route(21, {
    vector: 0x60,
    trigger: "level",
    polarity: "high",
    destinationApicId: 0,
    isMasked: false,
  });
  hpet.startComparator(1, { pin: 21, trigger: "level", mode: "one-shot", deltaTicks: 50_000 });
  const startNs = clock.nowNs();
  pc.machine.waitForInterrupt();
  const waitedNs = clock.nowNs() - startNs;
  assert(
    waitedNs > 500_000 - 10 && waitedNs <= 500_000,
    `50,000 counts of 10 ns, not ${waitedNs} ns`,
  );
  assertEquals(calls, [true, true], "an EOI with the line still active brings it back at once");
  assertEquals(ioApic.entry(21).isRemoteIrr, false, "the last EOI cleared Remote IRR");
  assertEquals(hpet.interruptStatus() & 0b10, 0);
  clock.advanceNs(10_000_000);
  pc.machine.synchronize();
  assertEquals(calls.length, 2, "a 64-bit one-shot fires once");
});

Deno.test("The kernel's local APIC sends itself an IPI, and a shorthand to all others reaches no one here", () => {
  const { kernel } = apicBoot();
  const system = kernel.interrupts;
  let selfIpis = 0;
  system.vectors.install(0x70, "test IPI", () => {
    selfIpis++;
    system.lapic!.eoi();
  });
  assert(system.lapic!.sendFixedIpi(0x70, "self"));
  assertEquals(selfIpis, 1, "delivered at the next instruction boundary");
  assert(system.lapic!.sendFixedIpi(0x70, "all-but-self"));
  assertEquals(selfIpis, 1);
});

Deno.test("--no-apic boots the legacy way: the 8259 carries IRQ 0 and 4, the PIT ticks", () => {
  const { kernel, pc, serialText } = bootTestKernel({ memoryBytes: 32 * MiB, noApic: true });
  assertEquals(kernel.interrupts.mode, "legacy");
  assertEquals(kernel.timer.name, "8254 PIT");
  assertStringIncludes(serialText(), "irq: legacy mode (8259 and PIT): --no-apic");
  assertStringIncludes(serialText(), "irq: IRQ 4 (COM1) -> 8259 master IR4 -> vector 0x34");
  assertEquals(pc.machine.interrupts.maskBits & 1, 0, "IRQ 0 unmasked");
  pc.machine.waitForInterrupt();
  assert(kernel.timer.tickCount >= 1);
  assert(pc.machine.cpu.interruptsDeliveredPerIrq[0] >= 1, "through the 8259, via LINT0 ExtINT");
  const received: number[] = [];
  kernel.serial.enableReceiveInterrupts((byte) => received.push(byte));
  assert(pc.uart.receive(0x41));
  pc.machine.waitForInterrupt();
  pc.machine.waitForInterrupt();
  assertEquals(received, [0x41]);
  assertEquals(pc.ioApic.messagesSent[4], 0, "every I/O APIC entry stays masked");
});

/** Boots a 32 MiB PC whose firmware tables `damage` changes first. */
function bootWithTables(damage: (memory: PhysicalMemory, madtAddress: number) => void) {
  const memoryMap = pcMemoryMap(32 * MiB);
  const memory = new PhysicalMemory(ramRangesFor(memoryMap));
  let serial = "";
  const pc = createPc(memory, new VirtualClock(), {
    serialSink: (byte) => serial += String.fromCharCode(byte),
  });
  const acpi = installAcpiTables(pc, memory, memoryMap)!;
  damage(memory, acpi.tables.find((t) => t.signature === "APIC")!.address);
  const loaded = loadMultiboot2(memory, buildKernelImage(), {
    memoryMap,
    loaderVersion: "test",
    rsdp: acpi.rsdp,
  });
  const kernel = Kernel.boot(pc.machine, loaded.magic, loaded.mbiAddress, { version: "test" });
  return { kernel, serial };
}

Deno.test("A corrupted MADT is logged and the kernel falls back to the 8259 and the PIT", () => {
  const { kernel, serial } = bootWithTables((memory, madt) =>
    memory.write8((madt + 60) as never, 0x77)
  );
  assertEquals(kernel.interrupts.mode, "legacy");
  assertMatch(
    serial,
    /acpi: WARN: ACPI APIC at 0x[0-9a-f]+: checksum fails: its 80 bytes sum to 0x[0-9a-f]+, not 0: ignoring ACPI/,
  );
  assertStringIncludes(serial, "irq: legacy mode (8259 and PIT): no usable ACPI tables");
  assertEquals(kernel.acpi, undefined);
});

Deno.test("Without firmware tables (an empty RSDT) the kernel boots legacy and says why", () => {
  const memoryMap = pcMemoryMap(32 * MiB);
  const memory = new PhysicalMemory(ramRangesFor(memoryMap));
  let serial = "";
  const pc = createPc(memory, new VirtualClock(), {
    serialSink: (byte) => serial += String.fromCharCode(byte),
  });
  const loaded = loadMultiboot2(memory, buildKernelImage(), { memoryMap, loaderVersion: "test" });
  const kernel = Kernel.boot(pc.machine, loaded.magic, loaded.mbiAddress, { version: "test" });
  assertEquals(kernel.interrupts.mode, "legacy");
  assertStringIncludes(serial, "acpi: RSDP revision 0 (ACPI 1.0) from MBI tag 14");
  assertStringIncludes(serial, "irq: legacy mode (8259 and PIT): no MADT");
});
