/**
 * MMIO benchmarks: the cost of a device register access through the TLB,
 * next to a RAM access through the TLB, on a booted kernel (APIC mode,
 * virtual clock). Every access is a `readVirt32`/`writeVirt32` on a TLB hit;
 * the difference is what happens after translation: RAM is a typed-array
 * load, the local APIC page goes to the CPU's own APIC model, the HPET and
 * I/O APIC go through the device bus, and each device access ends at an
 * instruction boundary where pending interrupts are checked.
 *
 * Each bench runs OPS accesses per iteration (ns/op = time / OPS); the
 * values read are summed in a local and checked after the loop. Setup (the
 * boot) is not timed.
 *
 * Run: `deno bench --allow-read bench/mmio_bench.ts`
 *
 * @module
 */

import { createPc, installAcpiTables } from "../devices/mod.ts";
import {
  loadMultiboot2,
  pcMemoryMap,
  type PhysAddr,
  PhysicalMemory,
  ramRangesFor,
  type VirtAddr,
  VirtualClock,
} from "../hal/mod.ts";
import { buildKernelImage, directMapAddr, Kernel } from "../kernel/mod.ts";

const OPS = 1000;
/** Local APIC task priority register offset (docs/apic.md). */
const LAPIC_TPR = 0x080;
/** Local APIC version register offset. */
const LAPIC_VERSION = 0x030;
/** HPET capabilities register, high half: the period in femtoseconds (docs/hpet.md). */
const HPET_PERIOD = 0x004;
/** I/O APIC IOWIN offset. */
const IOAPIC_IOWIN = 0x10;
const LAPIC_VERSION_VALUE = 0x0005_0014;
const HPET_PERIOD_FS = 10_000_000;

function bootKernel(): Kernel {
  const memoryMap = pcMemoryMap(64 * 2 ** 20);
  const memory = new PhysicalMemory(ramRangesFor(memoryMap));
  const pc = createPc(memory, new VirtualClock(), { serialSink: () => {} });
  const acpi = installAcpiTables(pc, memory, memoryMap);
  const loaded = loadMultiboot2(memory, buildKernelImage(), {
    memoryMap,
    loaderVersion: "bench",
    rsdp: acpi?.rsdp,
  });
  return Kernel.boot(pc.machine, loaded.magic, loaded.mbiAddress, { version: "bench" });
}

const kernel = bootKernel();
const { mmu } = kernel.machine;
const system = kernel.interrupts;
if (system.mode !== "apic") throw new Error(`MMIO bench needs APIC mode, got ${system.mode}`);
const lapicVa = system.lapic!.region.virtAddr;
const hpetVa = system.hpet!.region.virtAddr;
const ioApicVa = system.ioApics[0].driver.region.virtAddr;
const ramVa = directMapAddr(0x20_0000 as PhysAddr);
const at = (base: VirtAddr, offset: number) => (base + offset) as VirtAddr;
// Warm the TLB; the I/O APIC window is left selecting its version register.
for (const va of [lapicVa, hpetVa, ioApicVa, ramVa]) mmu.readVirt32(va);
mmu.writeVirt32(ioApicVa, 0x01);
const ioApicVersion = mmu.readVirt32(at(ioApicVa, IOAPIC_IOWIN));
kernel.machine.mmu.writeVirt32(ramVa, 7);

Deno.bench(`RAM readVirt32 through the TLB (${OPS} ops)`, { group: "mmio", baseline: true }, () => {
  let sum = 0;
  for (let i = 0; i < OPS; i++) sum += mmu.readVirt32(ramVa);
  if (sum !== 7 * OPS) throw new Error(`RAM read ${sum}`);
});

Deno.bench(`local APIC register readVirt32 through the TLB (${OPS} ops)`, { group: "mmio" }, () => {
  let sum = 0;
  const va = at(lapicVa, LAPIC_VERSION);
  for (let i = 0; i < OPS; i++) sum += mmu.readVirt32(va);
  if (sum !== LAPIC_VERSION_VALUE * OPS) throw new Error(`APIC version read ${sum}`);
});

Deno.bench(
  `local APIC register writeVirt32 through the TLB (${OPS} ops)`,
  { group: "mmio" },
  () => {
    const va = at(lapicVa, LAPIC_TPR);
    for (let i = 0; i < OPS; i++) mmu.writeVirt32(va, 0);
    if (mmu.readVirt32(va) !== 0) throw new Error("TPR write lost");
  },
);

Deno.bench(`HPET register readVirt32 through the bus (${OPS} ops)`, { group: "mmio" }, () => {
  let sum = 0;
  const va = at(hpetVa, HPET_PERIOD);
  for (let i = 0; i < OPS; i++) sum += mmu.readVirt32(va);
  if (sum !== HPET_PERIOD_FS * OPS) throw new Error(`HPET period read ${sum}`);
});

Deno.bench(`I/O APIC IOWIN readVirt32 through the bus (${OPS} ops)`, { group: "mmio" }, () => {
  let sum = 0;
  const va = at(ioApicVa, IOAPIC_IOWIN);
  for (let i = 0; i < OPS; i++) sum += mmu.readVirt32(va);
  if (sum !== ioApicVersion * OPS) throw new Error(`I/O APIC version read ${sum}`);
});
