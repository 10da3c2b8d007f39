/**
 * An interrupt controller with 16 IRQ lines, modelled on the PC's cascaded
 * 8259A pair in its edge-triggered mode: a rising edge on a line latches the
 * request (IRR); the CPU acknowledges the highest-priority (lowest-numbered)
 * unmasked request, which moves it in service (ISR) until end of interrupt.
 * A line that stays high after EOI raises nothing new, as on ISA hardware, so
 * a driver must drain every cause (the 16550's IIR loop) before returning.
 *
 * @module
 */

/** Number of IRQ lines (master and slave 8259A). */
export const IRQ_LINE_COUNT = 16;
/** The PIT timer's IRQ line. */
export const IRQ_TIMER = 0;
/** COM1's IRQ line. */
export const IRQ_COM1 = 4;

/** Latches device interrupt requests and hands them to the CPU by priority. */
export class InterruptController {
  #level = 0;
  #requested = 0;
  #inService = 0;
  #mask = 0;
  /** Interrupts raised per line since reset, for statistics. */
  readonly raisedCount: Uint32Array = new Uint32Array(IRQ_LINE_COUNT);

  /** Drives `irq` high; a rising edge latches a request. */
  raise(irq: number): void {
    const bit = lineBit(irq);
    if ((this.#level & bit) === 0) {
      this.#level |= bit;
      this.#requested |= bit;
      this.raisedCount[irq]++;
    }
  }

  /** Drives `irq` low. */
  lower(irq: number): void {
    this.#level &= ~lineBit(irq);
  }

  /** Whether `irq` is currently driven high. */
  isHigh(irq: number): boolean {
    return (this.#level & lineBit(irq)) !== 0;
  }

  /** Masks (`"masked"`) or unmasks (`"unmasked"`) a line (the OCW1 mask register). */
  setMask(irq: number, state: "masked" | "unmasked"): void {
    if (state === "masked") this.#mask |= lineBit(irq);
    else this.#mask &= ~lineBit(irq);
  }

  /**
   * The IRQ the CPU would be given now, or -1: the lowest-numbered unmasked
   * request with no equal or higher priority interrupt in service.
   */
  pendingIrq(): number {
    const ready = this.#requested & ~this.#mask;
    if (ready === 0) return -1;
    const irq = 31 - Math.clz32(ready & -ready);
    const higherOrEqualInService = this.#inService & ((lineBit(irq) << 1) - 1);
    return higherOrEqualInService === 0 ? irq : -1;
  }

  /** INTA: moves `irq` from requested to in service. */
  acknowledge(irq: number): void {
    const bit = lineBit(irq);
    this.#requested &= ~bit;
    this.#inService |= bit;
  }

  /** Non-specific EOI: ends the highest-priority interrupt in service. */
  endOfInterrupt(): void {
    if (this.#inService !== 0) this.#inService &= this.#inService - 1;
  }
}

function lineBit(irq: number): number {
  if (!Number.isInteger(irq) || irq < 0 || irq >= IRQ_LINE_COUNT) {
    throw new RangeError(`Invalid IRQ line ${irq}: expected 0..${IRQ_LINE_COUNT - 1}`);
  }
  return 1 << irq;
}
