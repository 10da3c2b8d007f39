/**
 * Calibrating the local APIC timer against the HPET (docs/apic.md,
 * "Timer calibration"), the way Linux's `calibrate_APIC_clock` does: the
 * APIC timer counts down freely (masked, one-shot, from 0xFFFFFFFF) while
 * the CPU halts between ticks of a periodic timer interrupt (the PIT on
 * IRQ 0, through the I/O APIC); the first and last tick of the window each
 * read the APIC's current count and the HPET's main counter, and the ratio
 * of the two differences gives the APIC timer's frequency.
 *
 * Reading both clocks in the same handler makes the result independent of
 * interrupt latency. On the virtual clock every halt jumps straight to the
 * next tick, so calibration is instant and exact; on the host clock it takes
 * the window's 10 ms.
 *
 * @module
 */

import type { Machine } from "../../hal/mod.ts";
import type { HpetDriver, LapicDriver, PitTimer } from "../drivers/mod.ts";
import { KernelError } from "../errors.ts";

/** The PIT's rate during calibration. */
const CALIBRATION_TICK_HZ = 1000;
/** Ticks in the window (10 ms at 1 kHz). */
const CALIBRATION_TICKS = 10;
/** Give up when the HPET shows this many times the window without the ticks. */
const TIMEOUT_WINDOWS = 100;
const APIC_TIMER_MAX_COUNT = 0xffff_ffff;

/** What the calibration measured. */
export interface TimerCalibration {
  /** HPET counts between the window's first and last tick. */
  readonly referenceTicks: number;
  /** The window's length by the HPET, in nanoseconds. */
  readonly windowNs: number;
  /** APIC timer counts in the same window. */
  readonly lapicCounts: number;
  /** The divide configuration used. */
  readonly divisor: number;
  /** APIC timer counts per second (divided clock). */
  readonly countsPerSecond: number;
  /** The APIC's bus clock: counts per second times the divisor. */
  readonly busHz: number;
}

/**
 * Runs the calibration; leaves the PIT stopped, IRQ 0 masked, the APIC timer
 * stopped and interrupts enabled.
 *
 * @throws {KernelError} `TimerCalibrationFailed` if the ticks stop coming.
 */
export function calibrateLapicTimer(
  machine: Machine,
  lapic: LapicDriver,
  hpet: HpetDriver,
  pit: PitTimer,
  divisor: number,
): TimerCalibration {
  lapic.countFreely(divisor, APIC_TIMER_MAX_COUNT); // one-shot, masked: it only counts
  let hpetStart = 0;
  let lapicStart = 0;
  let hpetEnd = 0;
  let lapicEnd = 0;
  // The APIC count is read between two HPET reads, whose mean is taken as its instant.
  pit.setTickHandler((tick) => {
    if (tick === 1) {
      const before = hpet.counter();
      lapicStart = lapic.timerCurrentCount();
      hpetStart = (before + hpet.counter()) / 2;
    } else if (tick === 1 + CALIBRATION_TICKS) {
      const before = hpet.counter();
      lapicEnd = lapic.timerCurrentCount();
      hpetEnd = (before + hpet.counter()) / 2;
    }
  });
  const windowHpetTicks = hpet.frequencyHz() * CALIBRATION_TICKS / CALIBRATION_TICK_HZ;
  const deadline = hpet.counter() + TIMEOUT_WINDOWS * windowHpetTicks;
  pit.programPeriodic(CALIBRATION_TICK_HZ);
  machine.cpu.sti();
  while (pit.tickCount < 1 + CALIBRATION_TICKS) {
    machine.waitForInterrupt(); // HLT
    if (!Number.isFinite(machine.nextEventNs()) || hpet.counter() > deadline) {
      pit.stop();
      throw new KernelError(
        "TimerCalibrationFailed",
        `Local APIC timer calibration failed: ${pit.tickCount} of ${1 + CALIBRATION_TICKS} ` +
          "timer interrupts arrived on IRQ 0 through the I/O APIC",
      );
    }
  }
  pit.stop();
  pit.setTickHandler(undefined);
  lapic.setTimerInitialCount(0);
  const referenceTicks = hpetEnd - hpetStart;
  const lapicCounts = lapicStart - lapicEnd;
  const windowSeconds = referenceTicks / hpet.frequencyHz();
  const countsPerSecond = Math.round(lapicCounts / windowSeconds);
  if (referenceTicks <= 0 || lapicCounts <= 0 || countsPerSecond <= 0) {
    throw new KernelError(
      "TimerCalibrationFailed",
      `Local APIC timer calibration failed: ${lapicCounts} counts in ${referenceTicks} HPET ticks`,
    );
  }
  return {
    referenceTicks,
    windowNs: Math.round(windowSeconds * 1e9),
    lapicCounts,
    divisor,
    countsPerSecond,
    busHz: countsPerSecond * divisor,
  };
}
