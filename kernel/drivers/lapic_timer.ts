/**
 * The local APIC timer as the kernel's tick (docs/apic.md, "Timer"): once
 * calibrated, it runs periodic at the tick rate on its own vector; each
 * interrupt adds one period to the uptime and ends with an EOI to the APIC.
 *
 * @module
 */

import { NS_PER_SECOND, nsAtCycles } from "../../hal/mod.ts";
import { LAPIC_TIMER_PERIODIC } from "./_apic_registers.ts";
import type { VectorInstaller } from "./isa_irq.ts";
import type { LapicDriver } from "./lapic_driver.ts";
import type { TickHandler, TickTimer } from "./tick_timer.ts";

const MAX_INITIAL_COUNT = 0xffff_ffff;

/** How to run the timer. */
export interface LapicTimerSetup {
  /** Divided-clock counts per second, from the calibration. */
  readonly countsPerSecond: number;
  /** The divide configuration's divisor the calibration used. */
  readonly divisor: number;
  /** Ticks per second wanted. */
  readonly frequencyHz: number;
  /** The vector its interrupts use. */
  readonly vector: number;
}

/** The local APIC timer, periodic, as the kernel's tick. */
export class LapicTimer implements TickTimer {
  /** The hardware behind the tick. */
  readonly name = "local APIC timer";
  readonly #lapic: LapicDriver;
  readonly #vectors: VectorInstaller;
  #initialCount = 0;
  #countsPerSecond = 1;
  #tickCount = 0;
  #elapsedCounts = 0;
  #tickHandler: TickHandler | undefined;

  /** A tick on `lapic`'s timer, handlers installed through `vectors`. */
  constructor(lapic: LapicDriver, vectors: VectorInstaller) {
    this.#lapic = lapic;
    this.#vectors = vectors;
  }

  get tickCount(): number {
    return this.#tickCount;
  }

  get periodNs(): number {
    return this.#initialCount === 0
      ? 0
      : this.#initialCount * NS_PER_SECOND / this.#countsPerSecond;
  }

  /** The initial count loaded: counts per period. */
  get initialCount(): number {
    return this.#initialCount;
  }

  /**
   * Installs the handler and starts the timer periodic: initial count =
   * round(countsPerSecond / frequencyHz).
   *
   * @throws {RangeError} If the count does not fit the 32-bit register or the inputs are not positive integers.
   */
  start(setup: LapicTimerSetup): void {
    const initial = Math.round(setup.countsPerSecond / setup.frequencyHz);
    if (
      !Number.isSafeInteger(setup.countsPerSecond) || setup.countsPerSecond <= 0 || initial < 1 ||
      initial > MAX_INITIAL_COUNT
    ) {
      throw new RangeError(
        `Cannot run the APIC timer at ${setup.frequencyHz} Hz from ${setup.countsPerSecond} ` +
          "counts per second",
      );
    }
    this.#initialCount = initial;
    this.#countsPerSecond = setup.countsPerSecond;
    this.#vectors.install(setup.vector, this.name, () => this.#onTick());
    const lapic = this.#lapic;
    lapic.setTimerDivisor(setup.divisor);
    lapic.setTimerLvt(setup.vector | LAPIC_TIMER_PERIODIC);
    lapic.setTimerInitialCount(initial);
  }

  uptimeNs(): number {
    return nsAtCycles(this.#elapsedCounts, this.#countsPerSecond);
  }

  setTickHandler(handler: TickHandler | undefined): void {
    this.#tickHandler = handler;
  }

  #onTick(): void {
    this.#tickCount++;
    this.#elapsedCounts += this.#initialCount;
    this.#tickHandler?.(this.#tickCount);
    this.#lapic.eoi();
  }
}
