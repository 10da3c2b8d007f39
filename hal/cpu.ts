/**
 * The CPU context the kernel runs on: control registers, privilege level, the
 * interrupt flag, port I/O instructions and interrupt delivery.
 *
 * Interrupts are delivered at instruction boundaries the simulator can see:
 * after each port I/O instruction, on `sti`, and on `hlt`. A handler runs with
 * interrupts disabled (an interrupt gate) and the controller's in-service bit
 * set; the CPU sends the EOI when the handler returns.
 *
 * @module
 */

import type { AccessWidth, DeviceBus } from "./bus.ts";
import { type InterruptController, IRQ_LINE_COUNT } from "./interrupt_controller.ts";

/** CR0.PE (bit 0): protected mode. */
export const CR0_PE = 1 << 0;
/** CR0.WP (bit 16): supervisor writes honour read-only pages. */
export const CR0_WP = 1 << 16;
/** CR0.PG (bit 31): paging enabled. */
export const CR0_PG = 1 << 31;
/** CR4.PAE (bit 5): physical address extension, required for 4-level paging. */
export const CR4_PAE = 1 << 5;
/** CR4.PGE (bit 7): global pages survive CR3 writes. */
export const CR4_PGE = 1 << 7;
/** CR4.SMEP (bit 20): supervisor fetches from user pages fault. */
export const CR4_SMEP = 1 << 20;
/** CR4.SMAP (bit 21): supervisor data accesses to user pages fault unless AC. */
export const CR4_SMAP = 1 << 21;
/** EFER.LME (bit 8): long mode enable. */
export const EFER_LME = 1 << 8;
/** EFER.NXE (bit 11): execute-disable bit enable. */
export const EFER_NXE = 1 << 11;

/** A kernel interrupt handler for one IRQ line. */
export type InterruptHandler = (irq: number) => void;

/** One simulated CPU: registers, port I/O and interrupt delivery. */
export class CpuContext {
  /** Control register 0 (PE, WP, PG ...). Bit 31 makes it negative as an int32. */
  cr0 = CR0_PE;
  /** Control register 2: the last page-fault linear address (48-bit form). */
  cr2 = 0;
  /** Control register 3: physical address of the PML4 (flags in low bits). */
  cr3 = 0;
  /** Control register 4 (PAE, PGE, SMEP, SMAP ...). */
  cr4 = 0;
  /** The EFER model-specific register (LME, NXE). */
  efer = 0;
  /** Current privilege level: 0 kernel, 3 user. */
  cpl: 0 | 3 = 0;
  /** EFLAGS.AC, which lets SMAP-protected supervisor accesses through. */
  alignmentCheck = false;
  /** Interrupts delivered since reset. */
  interruptsDelivered = 0;
  readonly #bus: DeviceBus;
  readonly #pic: InterruptController;
  readonly #handlers: (InterruptHandler | undefined)[] = new Array(IRQ_LINE_COUNT);
  #interruptsEnabled = false;
  #inHandler = false;

  /** Creates a CPU wired to a bus and an interrupt controller. */
  constructor(bus: DeviceBus, pic: InterruptController) {
    this.#bus = bus;
    this.#pic = pic;
  }

  /** Whether RFLAGS.IF is set. */
  get interruptsEnabled(): boolean {
    return this.#interruptsEnabled;
  }

  /** Installs the kernel's handler for `irq` (an IDT gate, simplified). */
  setInterruptHandler(irq: number, handler: InterruptHandler | undefined): void {
    if (!Number.isInteger(irq) || irq < 0 || irq >= IRQ_LINE_COUNT) {
      throw new RangeError(`Invalid IRQ line ${irq}`);
    }
    this.#handlers[irq] = handler;
  }

  /** STI: enables interrupts and delivers any that are pending. */
  sti(): void {
    this.#interruptsEnabled = true;
    this.deliverPendingInterrupts();
  }

  /** CLI: disables interrupts. */
  cli(): void {
    this.#interruptsEnabled = false;
  }

  /**
   * HLT: delivers pending interrupts; returns true if any was delivered,
   * false if the CPU would sleep until the next one.
   */
  hlt(): boolean {
    return this.deliverPendingInterrupts() > 0;
  }

  /** IN of a byte. */
  inb(port: number): number {
    return this.#in(port, 1);
  }

  /** IN of a 16-bit word. */
  inw(port: number): number {
    return this.#in(port, 2);
  }

  /** IN of a 32-bit doubleword. */
  inl(port: number): number {
    return this.#in(port, 4);
  }

  /** OUT of a byte. */
  outb(port: number, value: number): void {
    this.#out(port, value, 1);
  }

  /** OUT of a 16-bit word. */
  outw(port: number, value: number): void {
    this.#out(port, value, 2);
  }

  /** OUT of a 32-bit doubleword. */
  outl(port: number, value: number): void {
    this.#out(port, value, 4);
  }

  /**
   * Delivers pending interrupts while IF is set, in priority order; returns
   * how many ran. Does nothing inside a handler (handlers are not nested).
   */
  deliverPendingInterrupts(): number {
    if (!this.#interruptsEnabled || this.#inHandler) return 0;
    let delivered = 0;
    for (let irq = this.#pic.pendingIrq(); irq >= 0; irq = this.#pic.pendingIrq()) {
      this.#pic.acknowledge(irq);
      const handler = this.#handlers[irq];
      this.#inHandler = true;
      this.#interruptsEnabled = false;
      try {
        handler?.(irq);
      } finally {
        this.#inHandler = false;
        this.#interruptsEnabled = true;
        this.#pic.endOfInterrupt();
      }
      delivered++;
      this.interruptsDelivered++;
    }
    return delivered;
  }

  #in(port: number, width: AccessWidth): number {
    const value = this.#bus.portIn(port, width);
    if (this.#interruptsEnabled) this.deliverPendingInterrupts();
    return value;
  }

  #out(port: number, value: number, width: AccessWidth): void {
    this.#bus.portOut(port, value, width);
    if (this.#interruptsEnabled) this.deliverPendingInterrupts();
  }
}
