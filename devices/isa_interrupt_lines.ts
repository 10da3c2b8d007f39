/**
 * The ISA interrupt wires of a PC with an I/O APIC: each ISA IRQ line
 * reaches both the 8259 pair (IRQ n) and the I/O APIC, on pin n except where
 * the board wires it elsewhere — the PIT's IRQ 0 arrives on pin 2, which is
 * why every PC's MADT carries the interrupt source override IRQ 0 -> GSI 2
 * (docs/acpi.md). Which controller the CPU listens to is the kernel's choice
 * (8259 masked and the local APIC enabled, or the reverse).
 *
 * @module
 */

import type { InterruptController, InterruptLines } from "../hal/mod.ts";
import { IRQ_LINE_COUNT, IRQ_TIMER, TIMER_IRQ_GSI } from "../hal/mod.ts";
import type { IoApic } from "./io_apic.ts";

/** The I/O APIC pin (GSI, with the I/O APIC's base at 0) each ISA IRQ drives on this board. */
export function isaIrqPin(irq: number): number {
  if (!Number.isInteger(irq) || irq < 0 || irq >= IRQ_LINE_COUNT) {
    throw new RangeError(`Invalid ISA IRQ ${irq}: expected 0..${IRQ_LINE_COUNT - 1}`);
  }
  return irq === IRQ_TIMER ? TIMER_IRQ_GSI : irq;
}

/** Fans each ISA IRQ line out to the 8259 pair and the I/O APIC. */
export class IsaInterruptLines implements InterruptLines {
  readonly #pic: InterruptController;
  readonly #ioApic: IoApic;

  /** Wires the ISA lines to `pic` and `ioApic`. */
  constructor(pic: InterruptController, ioApic: IoApic) {
    this.#pic = pic;
    this.#ioApic = ioApic;
  }

  raise(irq: number): void {
    this.#pic.raise(irq);
    this.#ioApic.setPinLevel(isaIrqPin(irq), true);
  }

  lower(irq: number): void {
    this.#pic.lower(irq);
    this.#ioApic.setPinLevel(isaIrqPin(irq), false);
  }
}
