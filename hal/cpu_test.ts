import { assertEquals } from "../testing/mod.ts";
import { type AccessWidth, DeviceBus, type PortDevice } from "./bus.ts";
import { CpuContext } from "./cpu.ts";
import { InterruptController } from "./interrupt_controller.ts";
import { PhysicalMemory } from "./physical_memory.ts";

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
  return { pic, cpu: new CpuContext(bus, pic) };
}

Deno.test("CpuContext delivers interrupts only with IF set, at the next instruction boundary", () => {
  const { cpu } = machine();
  const seen: number[] = [];
  cpu.setInterruptHandler(3, (irq) => {
    seen.push(irq);
    cpu.inb(0x100); // acknowledge at the device
  });
  cpu.outb(0x100, 1);
  assertEquals(seen, [], "IF is clear at reset, as at multiboot2 entry");
  cpu.sti();
  assertEquals(seen, [3], "sti delivers what is pending");
  cpu.outb(0x100, 1);
  assertEquals(seen, [3, 3], "delivered right after the OUT that raised it");
  assertEquals(cpu.interruptsDelivered, 2);
});

Deno.test("CpuContext runs handlers with interrupts off and never nests them", () => {
  const { cpu } = machine();
  const trace: string[] = [];
  cpu.setInterruptHandler(3, () => {
    trace.push(`enter IF=${cpu.interruptsEnabled}`);
    cpu.inb(0x100);
    if (trace.length === 1) cpu.outb(0x100, 1); // raises again inside: must wait its turn
    trace.push("leave");
  });
  cpu.sti();
  cpu.outb(0x100, 1);
  assertEquals(trace, ["enter IF=false", "leave", "enter IF=false", "leave"]);
  assertEquals(cpu.interruptsEnabled, true);
});

Deno.test("CpuContext.hlt() reports whether an interrupt woke it", () => {
  const { cpu, pic } = machine();
  cpu.setInterruptHandler(3, () => cpu.inb(0x100));
  cpu.sti();
  assertEquals(cpu.hlt(), false);
  pic.raise(3);
  assertEquals(cpu.hlt(), true);
});
