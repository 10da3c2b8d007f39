/**
 * The kernel's local APIC driver: every access is a 32-bit load or store
 * through the APIC page mapped in the MMIO window (registers and bits in
 * docs/apic.md).
 *
 * @module
 */

import {
  APIC_DELIVERY_EXTINT,
  APIC_DELIVERY_FIXED,
  APIC_DELIVERY_INIT,
  APIC_DELIVERY_MODE_SHIFT,
  APIC_DELIVERY_NMI,
  APIC_DELIVERY_STARTUP,
  LAPIC_DELIVERY_STATUS,
  LAPIC_DFR,
  LAPIC_DFR_FLAT,
  LAPIC_DIVIDE_CODES,
  LAPIC_EOI,
  LAPIC_ESR,
  LAPIC_ICR_ASSERT,
  LAPIC_ICR_HIGH,
  LAPIC_ICR_LOW,
  LAPIC_ICR_SHORTHAND_SHIFT,
  LAPIC_ID,
  LAPIC_IRR,
  LAPIC_ISR,
  LAPIC_LDR,
  LAPIC_LVT_ERROR,
  LAPIC_LVT_LINT0,
  LAPIC_LVT_LINT1,
  LAPIC_LVT_MASKED,
  LAPIC_LVT_PERFORMANCE,
  LAPIC_LVT_THERMAL,
  LAPIC_LVT_TIMER,
  LAPIC_PPR,
  LAPIC_SHORTHAND_ALL_EXCLUDING_SELF,
  LAPIC_SHORTHAND_SELF,
  LAPIC_SVR,
  LAPIC_SVR_ENABLE,
  LAPIC_TIMER_CURRENT,
  LAPIC_TIMER_DIVIDE,
  LAPIC_TIMER_INITIAL,
  LAPIC_TMR,
  LAPIC_TPR,
  LAPIC_VECTOR_WORD_STRIDE,
  LAPIC_VERSION,
} from "./_apic_registers.ts";
import type { MmioRegion } from "./mmio_window.ts";

const VECTOR_WORDS = 8;
const ID_SHIFT = 24;
const BYTE = 0xff;
const MAX_ICR_POLLS = 1000;
const LDR_SHIFT = 24;

/** The local APIC's registers, by name, as the monitor shows them. */
export interface LapicRegisters {
  /** ID register. */
  readonly id: number;
  /** Version register. */
  readonly version: number;
  /** TPR. */
  readonly tpr: number;
  /** PPR. */
  readonly ppr: number;
  /** SVR. */
  readonly svr: number;
  /** ESR (after the write that latches it). */
  readonly esr: number;
  /** LDR. */
  readonly ldr: number;
  /** DFR. */
  readonly dfr: number;
  /** ICR high and low. */
  readonly icrHigh: number;
  /** ICR low. */
  readonly icrLow: number;
  /** LVT timer, thermal, performance, LINT0, LINT1, error. */
  readonly lvt: readonly number[];
  /** Timer initial count. */
  readonly timerInitial: number;
  /** Timer current count. */
  readonly timerCurrent: number;
  /** Timer divide configuration. */
  readonly timerDivide: number;
  /** Vectors in service. */
  readonly inService: readonly number[];
  /** Vectors requested. */
  readonly requested: readonly number[];
  /** Vectors whose TMR bit is set (level triggered). */
  readonly levelTriggered: readonly number[];
}

/** Where an IPI goes: this CPU, every other, or the APIC with one ID. */
export type IpiTarget = "self" | "all-but-self" | { readonly destination: number };

/** The LVT registers in address order, with their names. */
export const LAPIC_LVT_NAMES: readonly (readonly [number, string])[] = [
  [LAPIC_LVT_TIMER, "timer"],
  [LAPIC_LVT_THERMAL, "thermal"],
  [LAPIC_LVT_PERFORMANCE, "performance"],
  [LAPIC_LVT_LINT0, "LINT0"],
  [LAPIC_LVT_LINT1, "LINT1"],
  [LAPIC_LVT_ERROR, "error"],
];

/** Drives one CPU's local APIC through its mapped registers. */
export class LapicDriver {
  /** The mapped register page. */
  readonly region: MmioRegion;

  /** A driver for the APIC whose page is `region`. */
  constructor(region: MmioRegion) {
    this.region = region;
  }

  /** Reads register `offset`. */
  read(offset: number): number {
    return this.region.read32(offset);
  }

  /** Writes register `offset`. */
  write(offset: number, value: number): void {
    this.region.write32(offset, value);
  }

  /** The APIC ID. */
  id(): number {
    return this.read(LAPIC_ID) >>> ID_SHIFT;
  }

  /** The version register. */
  version(): number {
    return this.read(LAPIC_VERSION);
  }

  /**
   * Puts the APIC in the state the kernel runs with (as Linux's
   * `setup_local_APIC`): flat logical mode with logical ID `1 << apicId`,
   * task priority 0, software enabled with `spuriousVector`, LINT0 masked
   * (the 8259 no longer reaches the CPU), LINT1 as NMI when `nmiOnLint1`,
   * errors on `errorVector`, and the ESR cleared.
   */
  setUp(spuriousVector: number, errorVector: number, nmiOnLint1: boolean): void {
    this.write(LAPIC_DFR, LAPIC_DFR_FLAT);
    this.write(LAPIC_LDR, ((1 << (this.id() & 7)) << LDR_SHIFT) >>> 0);
    this.write(LAPIC_TPR, 0);
    this.write(LAPIC_SVR, LAPIC_SVR_ENABLE | spuriousVector);
    this.write(
      LAPIC_LVT_LINT0,
      LAPIC_LVT_MASKED | (APIC_DELIVERY_EXTINT << APIC_DELIVERY_MODE_SHIFT),
    );
    this.write(
      LAPIC_LVT_LINT1,
      nmiOnLint1 ? APIC_DELIVERY_NMI << APIC_DELIVERY_MODE_SHIFT : LAPIC_LVT_MASKED,
    );
    this.write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED);
    this.write(LAPIC_LVT_THERMAL, LAPIC_LVT_MASKED);
    this.write(LAPIC_LVT_PERFORMANCE, LAPIC_LVT_MASKED);
    this.write(LAPIC_LVT_ERROR, errorVector);
    this.readErrors();
    this.readErrors();
  }

  /** Signals the end of the interrupt in service. */
  eoi(): void {
    this.write(LAPIC_EOI, 0);
  }

  /** The errors seen since the last call (writes the ESR to latch them, then reads it). */
  readErrors(): number {
    this.write(LAPIC_ESR, 0);
    return this.read(LAPIC_ESR);
  }

  /** Sets the task priority. */
  setTaskPriority(priority: number): void {
    this.write(LAPIC_TPR, priority & BYTE);
  }

  /** The processor priority. */
  processorPriority(): number {
    return this.read(LAPIC_PPR);
  }

  /** Sets the timer's divisor (1, 2, 4 ... 128). Throws RangeError for other values. */
  setTimerDivisor(divisor: number): void {
    const code = LAPIC_DIVIDE_CODES[divisor];
    if (code === undefined) throw new RangeError(`Invalid APIC timer divisor ${divisor}`);
    this.write(LAPIC_TIMER_DIVIDE, code);
  }

  /** Runs the timer masked and one-shot from `initialCount`, only to be read (calibration). */
  countFreely(divisor: number, initialCount: number): void {
    this.setTimerDivisor(divisor);
    this.setTimerLvt(LAPIC_LVT_MASKED);
    this.setTimerInitialCount(initialCount);
  }

  /** Programs the LVT timer entry. */
  setTimerLvt(value: number): void {
    this.write(LAPIC_LVT_TIMER, value);
  }

  /** Loads the initial count, which (re)starts the timer; 0 stops it. */
  setTimerInitialCount(count: number): void {
    this.write(LAPIC_TIMER_INITIAL, count >>> 0);
  }

  /** The timer's current count. */
  timerCurrentCount(): number {
    return this.read(LAPIC_TIMER_CURRENT);
  }

  /**
   * Sends a fixed IPI with vector `vector`: to this CPU (`"self"`), to all
   * but this CPU (`"all-but-self"`), or to the APIC with ID `destination`.
   * Waits (bounded) for the delivery status to return to idle.
   *
   * @returns Whether the ICR went idle (the message left).
   */
  sendFixedIpi(vector: number, target: IpiTarget): boolean {
    return this.#sendIpi(APIC_DELIVERY_FIXED, vector, target);
  }

  /**
   * Sends INIT to the APIC with ID `destination`: an application processor
   * then waits for a start-up IPI (docs/smp.md, "Starting a CPU").
   *
   * @returns Whether the ICR went idle.
   */
  sendInit(destination: number): boolean {
    return this.#sendIpi(APIC_DELIVERY_INIT, 0, { destination });
  }

  /**
   * Sends a start-up IPI to the APIC with ID `destination`: a processor
   * waiting after INIT starts at physical address `vector * 4 KiB`.
   *
   * @returns Whether the ICR went idle.
   */
  sendStartup(destination: number, vector: number): boolean {
    return this.#sendIpi(APIC_DELIVERY_STARTUP, vector, { destination });
  }

  /**
   * Sends an NMI (as a panic stops the other CPUs).
   *
   * @returns Whether the ICR went idle.
   */
  sendNmi(target: IpiTarget): boolean {
    return this.#sendIpi(APIC_DELIVERY_NMI, 0, target);
  }

  #sendIpi(deliveryMode: number, vector: number, target: IpiTarget): boolean {
    const shorthand = target === "self"
      ? LAPIC_SHORTHAND_SELF
      : target === "all-but-self"
      ? LAPIC_SHORTHAND_ALL_EXCLUDING_SELF
      : 0;
    if (typeof target === "object") {
      this.write(LAPIC_ICR_HIGH, (target.destination << ID_SHIFT) >>> 0);
    }
    this.write(
      LAPIC_ICR_LOW,
      (vector & BYTE) | (deliveryMode << APIC_DELIVERY_MODE_SHIFT) | LAPIC_ICR_ASSERT |
        (shorthand << LAPIC_ICR_SHORTHAND_SHIFT),
    );
    for (let polls = 0; polls < MAX_ICR_POLLS; polls++) {
      if ((this.read(LAPIC_ICR_LOW) & LAPIC_DELIVERY_STATUS) === 0) return true;
    }
    return false;
  }

  /** Every register the monitor shows, read now. */
  registers(): LapicRegisters {
    return {
      id: this.read(LAPIC_ID),
      version: this.version(),
      tpr: this.read(LAPIC_TPR),
      ppr: this.read(LAPIC_PPR),
      svr: this.read(LAPIC_SVR),
      esr: this.readErrors(),
      ldr: this.read(LAPIC_LDR),
      dfr: this.read(LAPIC_DFR),
      icrHigh: this.read(LAPIC_ICR_HIGH),
      icrLow: this.read(LAPIC_ICR_LOW),
      lvt: LAPIC_LVT_NAMES.map(([offset]) => this.read(offset)),
      timerInitial: this.read(LAPIC_TIMER_INITIAL),
      timerCurrent: this.read(LAPIC_TIMER_CURRENT),
      timerDivide: this.read(LAPIC_TIMER_DIVIDE),
      inService: this.#vectors(LAPIC_ISR),
      requested: this.#vectors(LAPIC_IRR),
      levelTriggered: this.#vectors(LAPIC_TMR),
    };
  }

  #vectors(first: number): number[] {
    const vectors: number[] = [];
    for (let word = 0; word < VECTOR_WORDS; word++) {
      const bits = this.read(first + word * LAPIC_VECTOR_WORD_STRIDE);
      for (let bit = 0; bit < 32; bit++) if ((bits >>> bit) & 1) vectors.push(word * 32 + bit);
    }
    return vectors;
  }
}
