/**
 * The kernel's 8259A driver, through port I/O (docs/8259.md): the classic
 * initialisation that moves the vectors away from the CPU's exceptions,
 * masks, end of interrupt, and the request and in-service registers.
 *
 * @module
 */

import type { CpuContext } from "../../hal/mod.ts";
import {
  PIC_CASCADE_IRQ,
  PIC_ICW1_INIT_WITH_ICW4,
  PIC_ICW3_MASTER_SLAVE_ON_IR2,
  PIC_ICW3_SLAVE_ID,
  PIC_ICW4_8086,
  PIC_MASTER_COMMAND,
  PIC_MASTER_DATA,
  PIC_OCW2_EOI,
  PIC_OCW3_READ_IRR,
  PIC_OCW3_READ_ISR,
  PIC_SLAVE_COMMAND,
  PIC_SLAVE_DATA,
} from "./_pic_registers.ts";

const LINES_PER_CHIP = 8;
const ALL_MASKED = 0xff;

/** The pair's registers, 16 bits each (bit n: IRQ n). */
export interface Pic8259Registers {
  /** Interrupt mask. */
  readonly imr: number;
  /** Requests. */
  readonly irr: number;
  /** In service. */
  readonly isr: number;
}

/** Drives the cascaded 8259A pair. */
export class Pic8259Driver {
  readonly #cpu: CpuContext;
  #vectorBase = 0;

  /** A driver using `cpu`'s port I/O. */
  constructor(cpu: CpuContext) {
    this.#cpu = cpu;
  }

  /** The vector of IRQ 0 (IRQ n is `vectorBase + n`), or 0 before {@linkcode initialise}. */
  get vectorBase(): number {
    return this.#vectorBase;
  }

  /**
   * Initialises both chips (ICW1 to ICW4) with IRQ 0..7 on vectors
   * `vectorBase`.. and IRQ 8..15 on `vectorBase + 8`.., normal EOI, and
   * every line masked.
   */
  initialise(vectorBase: number): void {
    const cpu = this.#cpu;
    this.#vectorBase = vectorBase;
    cpu.outb(PIC_MASTER_COMMAND, PIC_ICW1_INIT_WITH_ICW4);
    cpu.outb(PIC_SLAVE_COMMAND, PIC_ICW1_INIT_WITH_ICW4);
    cpu.outb(PIC_MASTER_DATA, vectorBase); // ICW2
    cpu.outb(PIC_SLAVE_DATA, vectorBase + LINES_PER_CHIP);
    cpu.outb(PIC_MASTER_DATA, PIC_ICW3_MASTER_SLAVE_ON_IR2);
    cpu.outb(PIC_SLAVE_DATA, PIC_ICW3_SLAVE_ID);
    cpu.outb(PIC_MASTER_DATA, PIC_ICW4_8086);
    cpu.outb(PIC_SLAVE_DATA, PIC_ICW4_8086);
    this.maskAll();
  }

  /** Masks every line of both chips (OCW1). */
  maskAll(): void {
    this.#cpu.outb(PIC_MASTER_DATA, ALL_MASKED);
    this.#cpu.outb(PIC_SLAVE_DATA, ALL_MASKED);
  }

  /** Masks or unmasks `irq`; unmasking a slave line also unmasks the cascade. */
  setMasked(irq: number, isMasked: boolean): void {
    const cpu = this.#cpu;
    const isSlave = irq >= LINES_PER_CHIP;
    const port = isSlave ? PIC_SLAVE_DATA : PIC_MASTER_DATA;
    const bit = 1 << (irq % LINES_PER_CHIP);
    const mask = cpu.inb(port);
    cpu.outb(port, isMasked ? mask | bit : mask & ~bit);
    if (isSlave && !isMasked) this.setMasked(PIC_CASCADE_IRQ, false);
  }

  /** Ends `irq`'s interrupt: the slave first for IRQ 8..15, then the master. */
  eoi(irq: number): void {
    if (irq >= LINES_PER_CHIP) this.#cpu.outb(PIC_SLAVE_COMMAND, PIC_OCW2_EOI);
    this.#cpu.outb(PIC_MASTER_COMMAND, PIC_OCW2_EOI);
  }

  /** IMR, IRR and ISR of both chips. */
  registers(): Pic8259Registers {
    const cpu = this.#cpu;
    const imr = cpu.inb(PIC_MASTER_DATA) | (cpu.inb(PIC_SLAVE_DATA) << LINES_PER_CHIP);
    cpu.outb(PIC_MASTER_COMMAND, PIC_OCW3_READ_IRR);
    cpu.outb(PIC_SLAVE_COMMAND, PIC_OCW3_READ_IRR);
    const irr = cpu.inb(PIC_MASTER_COMMAND) | (cpu.inb(PIC_SLAVE_COMMAND) << LINES_PER_CHIP);
    cpu.outb(PIC_MASTER_COMMAND, PIC_OCW3_READ_ISR);
    cpu.outb(PIC_SLAVE_COMMAND, PIC_OCW3_READ_ISR);
    const isr = cpu.inb(PIC_MASTER_COMMAND) | (cpu.inb(PIC_SLAVE_COMMAND) << LINES_PER_CHIP);
    cpu.outb(PIC_MASTER_COMMAND, PIC_OCW3_READ_IRR);
    cpu.outb(PIC_SLAVE_COMMAND, PIC_OCW3_READ_IRR);
    return { imr, irr, isr };
  }
}
