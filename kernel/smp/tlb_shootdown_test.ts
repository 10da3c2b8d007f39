import { assertEquals, assertThrows } from "../../testing/asserts.ts";
import { createPc } from "../../devices/mod.ts";
import {
  LOCAL_APIC_BASE,
  type PhysAddr,
  PhysicalMemory,
  type VirtAddr,
  VirtualClock,
} from "../../hal/mod.ts";
import { LapicDriver, MmioRegion } from "../drivers/mod.ts";
import { KernelPanic } from "../panic.ts";
import { SmpArea } from "./smp_area.ts";
import { SmpCpu } from "./smp_cpu.ts";
import { TlbShootdown } from "./tlb_shootdown.ts";

/**
 * CPU 0 of a machine whose CPU 1 is online in the kernel's mask but never
 * answers (no CPU behind APIC ID 1): paging off, the local APIC at its
 * physical address.
 */
function cpuWithASilentPeer() {
  const memory = PhysicalMemory.contiguous(16 * 2 ** 20);
  const pc = createPc(memory, new VirtualClock(), { serialSink: () => {} });
  const area = SmpArea.create(memory, 0x100000 as PhysAddr, 2, 4);
  area.words[area.cpuWord(1)] = 1; // CPU 1's APIC ID
  area.setOnline(0, true);
  area.setOnline(1, true);
  const smp = new SmpCpu(pc.machine, area, 0);
  smp.attachLapic(
    new LapicDriver(
      new MmioRegion(
        pc.machine.mmu,
        "local APIC",
        LOCAL_APIC_BASE,
        LOCAL_APIC_BASE as number as VirtAddr,
        4096,
      ),
    ),
  );
  return { pc, area, smp };
}

Deno.test("TlbShootdown: a CPU that never acknowledges is a panic naming it, not a wait forever", () => {
  const { smp } = cpuWithASilentPeer();
  const shootdown = new TlbShootdown(smp, 50);
  assertThrows(
    () => shootdown.invalidatePage(0x40_0000 as VirtAddr, false, true, 0b10),
    KernelPanic,
    "TLB shootdown of page 0x400000: 1 CPU (1) did not acknowledge within 50 ms",
  );
  assertEquals(shootdown.stats().rounds, 1);
});

Deno.test("TlbShootdown with the teaching switch off invalidates this CPU only and counts what it kept back", () => {
  const { pc, area, smp } = cpuWithASilentPeer();
  area.setSwitches({ shootdown: false });
  const shootdown = new TlbShootdown(smp, 50);
  const va = 0x40_0000 as VirtAddr;
  pc.machine.cpu.tlb.insert(va, 4096, 0x20_0000 as PhysAddr, 0);
  shootdown.invalidatePage(va, false, true, 0b11);
  assertEquals(pc.machine.cpu.tlb.size, 0, "this CPU's entry is gone");
  assertEquals(shootdown.stats(), { isOn: false, rounds: 0, ipis: 0, skipped: 1 });
});
