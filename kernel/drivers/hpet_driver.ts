/**
 * The kernel's HPET driver: the main counter as a clock source, and the
 * comparators (docs/hpet.md). Every access is a 32-bit load or store
 * through the mapped registers; the 64-bit counter is read high, low, high
 * until both high reads agree, so a carry between the halves is never torn.
 *
 * @module
 */

import {
  HPET_CAPABILITIES,
  HPET_CONFIGURATION,
  HPET_ENABLE_CNF,
  HPET_INTERRUPT_STATUS,
  HPET_MAIN_COUNTER,
  HPET_TIMER_COMPARATOR,
  HPET_TIMER_CONFIGURATION,
  HPET_TIMER_STRIDE,
  HPET_TN_INT_ENB,
  HPET_TN_LEVEL,
  HPET_TN_PERIODIC,
  HPET_TN_ROUTE_SHIFT,
  HPET_TN_VAL_SET,
} from "./_hpet_registers.ts";
import type { MmioRegion } from "./mmio_window.ts";

const FEMTOSECONDS_PER_SECOND = 1e15;
const TWO_32 = 2 ** 32;
const MAX_TORN_READS = 8;

/** How a comparator interrupts. */
export interface HpetComparatorSetup {
  /** The I/O APIC pin (must be in the timer's route capability). */
  readonly pin: number;
  /** Edge or level. */
  readonly trigger: "edge" | "level";
  /** One-shot at `counter + delta`, or periodic every `delta`. */
  readonly mode: "one-shot" | "periodic";
  /** Counts until the (first) interrupt. */
  readonly deltaTicks: number;
}

/** Drives the HPET through its mapped registers. */
export class HpetDriver {
  /** The mapped registers. */
  readonly region: MmioRegion;

  /** A driver for the HPET whose registers are `region`. */
  constructor(region: MmioRegion) {
    this.region = region;
  }

  /** The counter period in femtoseconds (capabilities bits 63:32). */
  periodFs(): number {
    return this.region.read32(HPET_CAPABILITIES + 4);
  }

  /** The counter frequency in Hz. */
  frequencyHz(): number {
    return FEMTOSECONDS_PER_SECOND / this.periodFs();
  }

  /** The capabilities register's low half (the ACPI event timer block ID). */
  capabilities(): number {
    return this.region.read32(HPET_CAPABILITIES);
  }

  /** Number of comparators. */
  timerCount(): number {
    return ((this.capabilities() >>> 8) & 0x1f) + 1;
  }

  /** Starts (true) or halts (false) the main counter. */
  setEnabled(isEnabled: boolean): void {
    const config = this.region.read32(HPET_CONFIGURATION);
    this.region.write32(
      HPET_CONFIGURATION,
      isEnabled ? config | HPET_ENABLE_CNF : config & ~HPET_ENABLE_CNF,
    );
  }

  /** Whether the main counter runs. */
  isEnabled(): boolean {
    return (this.region.read32(HPET_CONFIGURATION) & HPET_ENABLE_CNF) !== 0;
  }

  /** The main counter, read without tearing (exact below 2^53). */
  counter(): number {
    for (let attempt = 0; attempt < MAX_TORN_READS; attempt++) {
      const high = this.region.read32(HPET_MAIN_COUNTER + 4);
      const low = this.region.read32(HPET_MAIN_COUNTER);
      if (this.region.read32(HPET_MAIN_COUNTER + 4) === high) return high * TWO_32 + low;
    }
    throw new RangeError("HPET main counter kept carrying between its halves");
  }

  /** The I/O APIC pins timer `timer` may be routed to, as a bit mask. */
  routeCapability(timer: number): number {
    return this.region.read32(HPET_TIMER_CONFIGURATION + timer * HPET_TIMER_STRIDE + 4);
  }

  /** Timer `timer`'s configuration register (low half). */
  timerConfiguration(timer: number): number {
    return this.region.read32(HPET_TIMER_CONFIGURATION + timer * HPET_TIMER_STRIDE);
  }

  /** Timer `timer`'s comparator (low half; enough below 2^32 counts). */
  comparatorLow(timer: number): number {
    return this.region.read32(HPET_TIMER_COMPARATOR + timer * HPET_TIMER_STRIDE);
  }

  /**
   * Programs comparator `timer` to interrupt on `setup.pin` after
   * `setup.deltaTicks` counts (and every `deltaTicks` after, when periodic).
   * A periodic timer takes its accumulator with Tn_VAL_SET set (each write
   * clears it) and then its period, as Linux's `hpet_set_periodic` does.
   */
  startComparator(timer: number, setup: HpetComparatorSetup): void {
    const base = HPET_TIMER_CONFIGURATION + timer * HPET_TIMER_STRIDE;
    const comparator = HPET_TIMER_COMPARATOR + timer * HPET_TIMER_STRIDE;
    const isPeriodic = setup.mode === "periodic";
    const config = (setup.pin << HPET_TN_ROUTE_SHIFT) | HPET_TN_INT_ENB |
      (setup.trigger === "level" ? HPET_TN_LEVEL : 0) | (isPeriodic ? HPET_TN_PERIODIC : 0);
    const target = this.counter() + setup.deltaTicks;
    if (!isPeriodic) {
      // One-shot first (interrupt off), so the comparator write sets the comparator.
      this.region.write32(base, config & ~HPET_TN_INT_ENB);
      this.region.write32(comparator + 4, Math.floor(target / TWO_32));
      this.region.write32(comparator, target % TWO_32);
      this.region.write32(base, config);
      return;
    }
    this.region.write32(base, config | HPET_TN_VAL_SET);
    this.region.write32(comparator, target % TWO_32);
    this.region.write32(base, config | HPET_TN_VAL_SET);
    this.region.write32(comparator + 4, Math.floor(target / TWO_32));
    this.region.write32(comparator, setup.deltaTicks % TWO_32);
    this.region.write32(comparator + 4, Math.floor(setup.deltaTicks / TWO_32));
  }

  /** Stops timer `timer` from interrupting. */
  stopComparator(timer: number): void {
    const base = HPET_TIMER_CONFIGURATION + timer * HPET_TIMER_STRIDE;
    this.region.write32(base, this.region.read32(base) & ~HPET_TN_INT_ENB);
  }

  /** The General Interrupt Status register. */
  interruptStatus(): number {
    return this.region.read32(HPET_INTERRUPT_STATUS);
  }

  /** Clears timer `timer`'s level interrupt (writes 1 to its status bit). */
  acknowledge(timer: number): void {
    this.region.write32(HPET_INTERRUPT_STATUS, 1 << timer);
  }
}
