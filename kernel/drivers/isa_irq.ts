/**
 * What drivers need from the kernel's interrupt routing: a way to have an
 * ISA IRQ delivered to a handler, through whichever controller the kernel
 * runs (the 8259 pair, or the I/O APIC and local APIC), and a way to install
 * a handler for a vector of their own (the local APIC timer's). The routing
 * sends the end of interrupt after the handler returns.
 *
 * @module
 */

/** A handler run in interrupt context (interrupts off). */
export type IrqHandler = () => void;

/** Routes ISA IRQs to handlers (the kernel's `IsaInterrupts` implements it). */
export interface IsaIrqAttacher {
  /** Routes ISA IRQ `irq` to `handler`, named `name`, and unmasks it. */
  attachIsaIrq(irq: number, name: string, handler: IrqHandler): void;
  /** Masks `irq` and removes its handler. */
  detachIsaIrq(irq: number): void;
}

/** Installs handlers on CPU vectors, counting each delivery (the kernel's `InterruptVectors`). */
export interface VectorInstaller {
  /** Installs `handler` on `vector` under `name`. */
  install(vector: number, name: string, handler: IrqHandler): void;
  /** Removes the handler of `vector`. */
  remove(vector: number): void;
}
