/**
 * A CPU Worker for the board's tests: instead of a kernel, the AP runs a
 * tiny program of 32-bit words it finds in RAM at its start-up address,
 * through its own CPU, MMU and local APIC (paging off, so addresses are
 * physical), and halts at the end:
 *
 * ```
 * 1 port value        OUT byte
 * 2 port addr         IN byte, stored at RAM addr
 * 3 pa addr           32-bit MMIO read, stored at RAM addr
 * 4 pa value          32-bit MMIO write
 * 5 vector addr       install a handler for vector that adds 1 at RAM addr and EOIs; STI
 * 6 addr count        wait (HLT) until the word at RAM addr reaches count
 * 7 high low          write the local APIC's ICR (high, then low: send an IPI)
 * 8 addr value        store value at RAM addr
 * 9 port value        OUT byte value 200 times
 * 0                   end: store 1 at start + 4092 and halt
 * ```
 *
 * @module
 */

import { ApMachine, type ApStartMessage, CpuHalted, LAPIC_EOI } from "./mod.ts";
import { LOCAL_APIC_BASE, type PhysAddr } from "../hal/mod.ts";

const LAPIC_ICR_LOW = 0x300;
const LAPIC_ICR_HIGH = 0x310;
const DONE_OFFSET = 4092;
/** How many times op 9 writes its byte. */
const REPEATED_OUTS = 200;

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<ApStartMessage>) => void) | null;
  close(): void;
};

scope.onmessage = (event) => {
  const machine = new ApMachine(event.data);
  try {
    const start = machine.waitForStartup() * 4096;
    run(machine, start);
    machine.memory.write32((start + DONE_OFFSET) as PhysAddr, 1);
    machine.halt("program ended");
  } catch (error) {
    if (!(error instanceof CpuHalted)) throw error;
  } finally {
    machine.exit();
    scope.close();
  }
};

function run(machine: ApMachine, start: number): void {
  const { memory, mmu, cpu } = machine;
  const word = (i: number) => memory.read32((start + 4 * i) as PhysAddr);
  for (let pc = 0;;) {
    const op = word(pc);
    const a = word(pc + 1);
    const b = word(pc + 2);
    pc += 3;
    switch (op) {
      case 0:
        return;
      case 1:
        cpu.outb(a, b);
        break;
      case 2:
        memory.write32(b as PhysAddr, cpu.inb(a));
        break;
      case 3:
        memory.write32(b as PhysAddr, mmu.readVirt32(a as never));
        break;
      case 4:
        mmu.writeVirt32(a as never, b);
        break;
      case 5:
        cpu.setInterruptHandler(a, () => {
          Atomics.add(memory.i32, b / 4, 1);
          mmu.writeVirt32((LOCAL_APIC_BASE + LAPIC_EOI) as never, 0);
        });
        cpu.sti();
        break;
      case 6:
        while (Atomics.load(memory.i32, a / 4) < b) machine.waitForInterrupt();
        break;
      case 7:
        mmu.writeVirt32((LOCAL_APIC_BASE + LAPIC_ICR_HIGH) as never, a);
        mmu.writeVirt32((LOCAL_APIC_BASE + LAPIC_ICR_LOW) as never, b);
        break;
      case 8:
        Atomics.store(memory.i32, a / 4, b);
        break;
      case 9:
        for (let i = 0; i < REPEATED_OUTS; i++) cpu.outb(a, b);
        break;
      default:
        throw new Error(`Unknown op ${op} at ${start + 4 * (pc - 3)}`);
    }
  }
}
