import { assert, assertEquals, assertThrows } from "../testing/mod.ts";
import { type AccessWidth, DeviceBus, type PortDevice } from "./bus.ts";
import { CpuContext } from "./cpu.ts";
import { InterruptController, PIC_BIOS_MASTER_VECTOR_BASE } from "./interrupt_controller.ts";
import type { LocalInterruptController } from "./local_interrupt_controller.ts";
import { PhysicalMemory } from "./physical_memory.ts";
import type { PhysAddr } from "./address.ts";

/** IRQ 3's vector with the 8259's reset (BIOS) vector base. */
const IRQ3_VECTOR = PIC_BIOS_MASTER_VECTOR_BASE + 3;

/** A device that raises IRQ 3 on any write, and lowers it on any read. */
class Doorbell implements PortDevice {
  readonly name = "doorbell";
  constructor(readonly pic: InterruptController) {}
  portRead(_offset: number, _width: AccessWidth): number {
    this.pic.lower(3);
    return 0;
  }
  portWrite(_offset: number, _value: number, _width: AccessWidth): void {
    this.pic.raise(3);
  }
}

function machine() {
  const pic = new InterruptController();
  const bus = new DeviceBus(PhysicalMemory.contiguous(16 * 2 ** 20));
  bus.claimPorts(0x100, 1, new Doorbell(pic));
  bus.claimPorts(0x20, 2, pic.masterPorts);
  return { pic, cpu: new CpuContext(bus, pic) };
}

/** A scripted local APIC: hands out queued vectors by priority class above `ppr`. */
class FakeApic implements LocalInterruptController {
  readonly name = "fake-apic";
  readonly mmioBase = 0xfee00000 as PhysAddr;
  readonly mmioSizeBytes = 4096;
  readonly requested = new Set<number>();
  readonly inService: number[] = [];
  passesExtInt = false;
  mmioRead(): number {
    return 0;
  }
  mmioWrite(): void {}
  pendingVector(): number {
    const best = Math.max(-1, ...this.requested);
    const inService = Math.max(0, ...this.inService);
    return best >= 0 && (best & 0xf0) > (inService & 0xf0) ? best : -1;
  }
  acknowledge(vector: number): void {
    this.requested.delete(vector);
    this.inService.push(vector);
  }
  acceptsExtInt(): boolean {
    return this.passesExtInt;
  }
  eoi(): void {
    this.inService.pop();
  }
}

Deno.test("CpuContext delivers interrupts only with IF set, at the next instruction boundary", () => {
  const { cpu } = machine();
  const seen: number[] = [];
  cpu.setInterruptHandler(IRQ3_VECTOR, (vector) => {
    seen.push(vector);
    cpu.inb(0x100); // acknowledge at the device
    cpu.outb(0x20, 0x20); // non-specific EOI to the 8259
  });
  cpu.outb(0x100, 1);
  assertEquals(seen, [], "IF is clear at reset, as at multiboot2 entry");
  cpu.sti();
  assertEquals(seen, [IRQ3_VECTOR], "sti delivers what is pending");
  cpu.outb(0x100, 1);
  assertEquals(seen, [IRQ3_VECTOR, IRQ3_VECTOR], "delivered right after the OUT that raised it");
  assertEquals(cpu.interruptsDelivered, 2);
  assertEquals(cpu.interruptsDeliveredPerVector[IRQ3_VECTOR], 2);
  assertEquals(cpu.interruptsDeliveredPerIrq[3], 2);
});

Deno.test("CpuContext sends no EOI itself: an interrupt without one blocks its line", () => {
  const { cpu, pic } = machine();
  let calls = 0;
  cpu.setInterruptHandler(IRQ3_VECTOR, () => {
    calls++;
    cpu.inb(0x100);
  });
  cpu.sti();
  cpu.outb(0x100, 1);
  cpu.outb(0x100, 1);
  assertEquals(calls, 1, "IRQ 3 is still in service");
  pic.endOfInterrupt();
  assertEquals(cpu.hlt(), true, "the request waiting behind it runs after EOI");
  assertEquals(calls, 2);
});

Deno.test("CpuContext runs handlers with interrupts off and never nests them unprompted", () => {
  const { cpu } = machine();
  const trace: string[] = [];
  cpu.setInterruptHandler(IRQ3_VECTOR, () => {
    trace.push(`enter IF=${cpu.interruptsEnabled}`);
    cpu.inb(0x100);
    if (trace.length === 1) cpu.outb(0x100, 1); // raises again inside: must wait its turn
    cpu.outb(0x20, 0x20);
    trace.push("leave");
  });
  cpu.sti();
  cpu.outb(0x100, 1);
  assertEquals(trace, ["enter IF=false", "leave", "enter IF=false", "leave"]);
  assertEquals(cpu.interruptsEnabled, true);
});

Deno.test("CpuContext.hlt() reports whether an interrupt woke it", () => {
  const { cpu, pic } = machine();
  cpu.setInterruptHandler(IRQ3_VECTOR, () => {
    cpu.inb(0x100);
    cpu.outb(0x20, 0x20);
  });
  cpu.sti();
  assertEquals(cpu.hlt(), false);
  pic.raise(3);
  assertEquals(cpu.hlt(), true);
});

Deno.test("CpuContext takes vectors from its local APIC and nests a higher class when a handler sets IF", () => {
  const { cpu } = machine();
  const apic = new FakeApic();
  cpu.attachLocalApic(apic);
  const trace: string[] = [];
  cpu.setInterruptHandler(0x41, () => {
    trace.push("enter 0x41");
    apic.requested.add(0x61); // higher class: nests once IF is set
    apic.requested.add(0x45); // same class: waits for the EOI
    cpu.sti();
    trace.push("leave 0x41");
    apic.eoi();
  });
  cpu.setInterruptHandler(0x61, () => {
    trace.push("0x61");
    apic.eoi();
  });
  cpu.setInterruptHandler(0x45, () => {
    trace.push("0x45");
    apic.eoi();
  });
  apic.requested.add(0x41);
  cpu.sti();
  assertEquals(trace, ["enter 0x41", "0x61", "leave 0x41", "0x45"]);
  assertEquals(cpu.interruptsDeliveredPerVector[0x61], 1);
});

Deno.test("CpuContext lets the 8259 through only while the local APIC passes ExtINT", () => {
  const { cpu, pic } = machine();
  const apic = new FakeApic();
  cpu.attachLocalApic(apic);
  let calls = 0;
  cpu.setInterruptHandler(IRQ3_VECTOR, () => {
    calls++;
    cpu.inb(0x100);
    cpu.outb(0x20, 0x20);
  });
  cpu.sti();
  pic.raise(3);
  assertEquals(calls, 0, "LINT0 masked: the 8259's INTR goes nowhere");
  apic.passesExtInt = true;
  assert(cpu.hlt());
  assertEquals(calls, 1);
});

Deno.test("CpuContext.setInterruptHandler() takes vectors 0..255", () => {
  const { cpu } = machine();
  assertThrows(() => cpu.setInterruptHandler(256, () => {}), RangeError, "vector 256");
  cpu.setInterruptHandler(255, () => {});
  assert(cpu.interruptHandler(255) !== undefined);
});
