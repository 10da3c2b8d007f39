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

  /** A table over `cpu`'s IDT. */
  constructor(cpu: CpuContext) {
    this.#cpu = cpu;
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
    this.#cpu.setInterruptHandler(vector, undefined);
  }

  /** The name given to `vector`, if any. */
  nameOf(vector: number): string | undefined {
    return this.#names[vector];
  }

  /** Every vector ever installed, lowest first, with its count. */
  entries(): VectorEntry[] {
    const entries: VectorEntry[] = [];
    for (let vector = 0; vector < INTERRUPT_VECTOR_COUNT; vector++) {
      const name = this.#names[vector];
      if (name !== undefined) entries.push({ vector, name, count: this.counts[vector] });
    }
    return entries;
  }
}
