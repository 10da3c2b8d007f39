/**
 * The kernel's vector assignments and its table of installed handlers
 * (the IDT's software side): which vector serves what, and how many times
 * each ran. Vectors follow Linux's: ISA IRQ n on 0x30 + n in both modes,
 * the local APIC timer on 0xEC, APIC errors on 0xFE, spurious on 0xFF.
 *
 * @module
 */

import { type CpuContext, INTERRUPT_VECTOR_COUNT } from "../../hal/mod.ts";
import type { IrqHandler, VectorInstaller } from "../drivers/mod.ts";

/** Vector of ISA IRQ 0 (IRQ n: + n), as Linux's ISA_IRQ_VECTOR. */
export const ISA_IRQ_VECTOR_BASE = 0x30;
/** The local APIC timer's vector (Linux's LOCAL_TIMER_VECTOR). */
export const LOCAL_TIMER_VECTOR = 0xec;
/** The local APIC error vector (Linux's ERROR_APIC_VECTOR). */
export const APIC_ERROR_VECTOR = 0xfe;
/** The local APIC spurious vector (Linux's SPURIOUS_APIC_VECTOR). */
export const SPURIOUS_VECTOR = 0xff;
/** The first vector an interrupt (not an exception) may use. */
export const FIRST_INTERRUPT_VECTOR = 0x20;
/** What `irq` calls a vector that arrived without a handler of its own. */
export const UNEXPECTED_VECTOR_NAME = "unexpected";

/** One vector in use. */
export interface VectorEntry {
  /** The vector. */
  readonly vector: number;
  /** What it serves. */
  readonly name: string;
  /** How many times its handler ran. */
  readonly count: number;
}

/** Handlers on CPU vectors, named and counted. */
export class InterruptVectors implements VectorInstaller {
  /** Deliveries per vector since boot. */
  readonly counts: Uint32Array = new Uint32Array(INTERRUPT_VECTOR_COUNT);
  readonly #cpu: CpuContext;
  readonly #names: (string | undefined)[] = new Array(INTERRUPT_VECTOR_COUNT);
  #unexpected: IrqHandler | undefined;

  /** A table over `cpu`'s IDT. */
  constructor(cpu: CpuContext) {
    this.#cpu = cpu;
  }

  /**
   * Gives every interrupt vector without a handler of its own one that
   * counts it and sends the EOI (as Linux acknowledges a vector it has no
   * handler for): otherwise the vector would stay in service and block its
   * priority class for good. It shows in {@linkcode entries} as
   * "unexpected" once it arrived.
   *
   * @param eoi Sends the EOI (to the local APIC).
   */
  handleUnexpected(eoi: IrqHandler): void {
    this.#unexpected = eoi;
    for (let vector = FIRST_INTERRUPT_VECTOR; vector < SPURIOUS_VECTOR; vector++) {
      if (this.#cpu.interruptHandler(vector) === undefined) this.#installUnexpected(vector);
    }
  }

  install(vector: number, name: string, handler: IrqHandler): void {
    this.#names[vector] = name;
    const counts = this.counts;
    this.#cpu.setInterruptHandler(vector, () => {
      counts[vector]++;
      handler();
    });
  }

  remove(vector: number): void {
    this.#names[vector] = undefined;
    if (this.#unexpected !== undefined && vector >= FIRST_INTERRUPT_VECTOR) {
      this.#installUnexpected(vector);
    } else {
      this.#cpu.setInterruptHandler(vector, undefined);
    }
  }

  /** The name given to `vector`, if any. */
  nameOf(vector: number): string | undefined {
    return this.#names[vector];
  }

  /**
   * Every vector with a handler installed, and every unexpected one that
   * arrived, lowest first, with its count.
   */
  entries(): VectorEntry[] {
    const entries: VectorEntry[] = [];
    for (let vector = 0; vector < INTERRUPT_VECTOR_COUNT; vector++) {
      const count = this.counts[vector];
      const name = this.#names[vector] ?? (count > 0 ? UNEXPECTED_VECTOR_NAME : undefined);
      if (name !== undefined) entries.push({ vector, name, count });
    }
    return entries;
  }

  #installUnexpected(vector: number): void {
    const counts = this.counts;
    const eoi = this.#unexpected!;
    this.#cpu.setInterruptHandler(vector, () => {
      counts[vector]++;
      eoi();
    });
  }
}
