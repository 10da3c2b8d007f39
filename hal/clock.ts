/**
 * The machine clock: where simulated time comes from.
 *
 * Machine time is a whole number of nanoseconds since the machine was built.
 * Two sources provide it:
 *
 * - {@linkcode VirtualClock}: time stands still until the machine advances it
 *   with {@linkcode VirtualClock.advanceNs}. Runs are deterministic, so it is
 *   the clock tests use (`--clock virtual`).
 * - {@linkcode HostClock}: time follows the host's monotonic clock
 *   (`performance.now()`), for interactive use (`--clock host`).
 *
 * Devices that keep time (the PIT) implement {@linkcode ClockedDevice}: the
 * machine calls `advanceTo(nowNs)` so they catch up with the clock and raise
 * the interrupts that fell due, and asks `nextEventNs()` how far an idle
 * (halted) virtual machine may skip ahead.
 *
 * {@linkcode cyclesAtNs} and {@linkcode nsAtCycles} convert between
 * nanoseconds and cycles of a fixed-frequency clock exactly, without BigInt,
 * for devices and drivers alike.
 *
 * @module
 */

/** Nanoseconds in one second. */
export const NS_PER_SECOND = 1_000_000_000;

/**
 * The largest clock frequency {@linkcode cyclesAtNs} and {@linkcode nsAtCycles}
 * accept: 1 GHz (the local APIC's bus clock), so that a cycle count never
 * exceeds the nanoseconds it spans and stays a safe integer. Their products
 * are split into 15-bit halves, so every step is an exact double.
 */
export const MAX_CYCLE_FREQUENCY_HZ: number = NS_PER_SECOND;

/** A source of machine time. */
export interface Clock {
  /**
   * The current machine time in whole nanoseconds since the clock started.
   * Never decreases from one call to the next.
   */
  nowNs(): number;
}

/** A device whose state depends on machine time (a timer, a real-time clock). */
export interface ClockedDevice {
  /**
   * Brings the device up to machine time `nowNs`, raising the interrupts that
   * fell due since the last call. A time earlier than one already seen is
   * ignored.
   */
  advanceTo(nowNs: number): void;
  /**
   * The machine time at which the device will next raise an interrupt if
   * nothing reprograms it, or `Infinity` if it will not. A halted machine on a
   * virtual clock may advance straight to it.
   */
  nextEventNs(): number;
}

/**
 * A deterministic clock: time advances only when the machine says so.
 *
 * @example
 * ```ts
 * import { VirtualClock } from "./clock.ts";
 *
 * const clock = new VirtualClock();
 * clock.advanceNs(1_000);
 * console.assert(clock.nowNs() === 1_000);
 * ```
 */
export class VirtualClock implements Clock {
  #nowNs: number;

  /**
   * Creates a clock reading `startNs` (0 by default; a restored snapshot
   * passes its saved time).
   *
   * @throws {RangeError} If `startNs` is not a non-negative safe integer.
   */
  constructor(startNs = 0) {
    this.#nowNs = checkNs("startNs", startNs);
  }

  /** The current machine time in nanoseconds. */
  nowNs(): number {
    return this.#nowNs;
  }

  /**
   * Moves time forward by `durationNs`.
   *
   * @param durationNs Whole nanoseconds to advance; 0 is allowed.
   * @throws {RangeError} If `durationNs` is not a non-negative safe integer, or
   * the clock would pass `Number.MAX_SAFE_INTEGER` nanoseconds (about 104 days).
   */
  advanceNs(durationNs: number): void {
    checkNs("durationNs", durationNs);
    this.#nowNs = checkNs("nowNs", this.#nowNs + durationNs);
  }
}

/**
 * A clock that follows the host's monotonic clock, starting at 0 when created.
 * Readings are floored to whole nanoseconds and never decrease.
 *
 * @example
 * ```ts
 * import { HostClock } from "./clock.ts";
 *
 * const clock = new HostClock();
 * const firstNs = clock.nowNs();
 * console.assert(clock.nowNs() >= firstNs);
 * ```
 */
export class HostClock implements Clock {
  readonly #readMs: () => number;
  readonly #startMs: number;
  #lastNs = 0;

  /**
   * Creates a clock reading the host time source `readMs` (milliseconds, as
   * `performance.now()`, which is the default), reading 0 at `startMs` of
   * that source (default: now). Another thread's view of a running machine's
   * clock passes an absolute source (`performance.timeOrigin +
   * performance.now()`) and the machine's start on it.
   */
  constructor(readMs: () => number = () => performance.now(), startMs: number = readMs()) {
    this.#readMs = readMs;
    this.#startMs = startMs;
  }

  /** The reading of the host time source at which this clock read 0, in ms. */
  get startMs(): number {
    return this.#startMs;
  }

  /** The host time elapsed since this clock was created, in nanoseconds. */
  nowNs(): number {
    const ns = Math.floor((this.#readMs() - this.#startMs) * 1_000_000);
    // A host source may step back slightly (or be coarsened); machine time must not.
    if (ns > this.#lastNs) this.#lastNs = ns;
    return this.#lastNs;
  }
}

/** The clock sources a machine can be built with (`--clock virtual|host`). */
export type ClockKind = "virtual" | "host";

/** Every {@linkcode ClockKind}, for validating user input. */
export const CLOCK_KINDS: readonly ClockKind[] = ["virtual", "host"];

/**
 * Creates a clock of the given kind, starting at 0.
 *
 * @example
 * ```ts
 * import { createClock } from "./clock.ts";
 *
 * const clock = createClock("virtual");
 * console.assert(clock.nowNs() === 0);
 * ```
 */
export function createClock(kind: ClockKind): Clock {
  return kind === "virtual" ? new VirtualClock() : new HostClock();
}

/**
 * The number of whole cycles a `frequencyHz` clock, started at time 0, has
 * completed by `nowNs`: floor(nowNs × frequencyHz / 1e9), computed exactly.
 *
 * @param nowNs A non-negative safe integer number of nanoseconds.
 * @param frequencyHz A positive integer up to {@linkcode MAX_CYCLE_FREQUENCY_HZ}.
 * @returns The cycle count.
 * @throws {RangeError} If either argument is out of range.
 * @example
 * ```ts
 * import { cyclesAtNs } from "./clock.ts";
 *
 * console.assert(cyclesAtNs(1_000_000_000, 1_193_182) === 1_193_182);
 * ```
 */
export function cyclesAtNs(nowNs: number, frequencyHz: number): number {
  checkNs("nowNs", nowNs);
  checkFrequency(frequencyHz);
  // Whole seconds first; the rest is (nowNs mod 1e9) × f / 1e9, both factors below 2^30.
  const remainderNs = nowNs % NS_PER_SECOND;
  return ((nowNs - remainderNs) / NS_PER_SECOND) * frequencyHz +
    mulDiv(remainderNs, frequencyHz, NS_PER_SECOND, "floor");
}

/**
 * The time in nanoseconds that `cycleCount` cycles of a `frequencyHz` clock
 * take, computed exactly and rounded down (`"floor"`, the default) or up
 * (`"ceil"`: the earliest time at which {@linkcode cyclesAtNs} reaches
 * `cycleCount`). Exact while the result is a safe integer.
 *
 * @param cycleCount A non-negative safe integer.
 * @param frequencyHz A positive integer up to {@linkcode MAX_CYCLE_FREQUENCY_HZ}.
 * @param rounding How to round a fractional nanosecond.
 * @returns Nanoseconds.
 * @throws {RangeError} If an argument is out of range.
 * @example
 * ```ts
 * import { nsAtCycles } from "./clock.ts";
 *
 * console.assert(nsAtCycles(1, 1_193_182, "ceil") === 839);
 * ```
 */
export function nsAtCycles(
  cycleCount: number,
  frequencyHz: number,
  rounding: "floor" | "ceil" = "floor",
): number {
  if (!Number.isSafeInteger(cycleCount) || cycleCount < 0) {
    throw new RangeError(`Invalid cycle count ${String(cycleCount)}: expected a safe integer >= 0`);
  }
  checkFrequency(frequencyHz);
  const remainderCycles = cycleCount % frequencyHz;
  return ((cycleCount - remainderCycles) / frequencyHz) * NS_PER_SECOND +
    mulDiv(remainderCycles, NS_PER_SECOND, frequencyHz, rounding);
}

const HALF_BITS = 2 ** 15;

/**
 * `a × b / c` rounded as asked, exactly, for integers `a`, `b` below 2^30
 * and `c` from 1 to 2^30: `b` is split into 15-bit halves so that no
 * intermediate value reaches 2^53.
 */
function mulDiv(a: number, b: number, c: number, rounding: "floor" | "ceil"): number {
  const bHigh = Math.floor(b / HALF_BITS);
  const high = a * bHigh; // a × b = high × 2^15 + a × (b mod 2^15)
  const highQuotient = Math.floor(high / c);
  const rest = (high - highQuotient * c) * HALF_BITS + a * (b - bHigh * HALF_BITS);
  const restQuotient = Math.floor(rest / c);
  const quotient = highQuotient * HALF_BITS + restQuotient;
  return rounding === "ceil" && rest !== restQuotient * c ? quotient + 1 : quotient;
}

function checkNs(name: string, ns: number): number {
  if (!Number.isSafeInteger(ns) || ns < 0) {
    throw new RangeError(`Invalid ${name} ${String(ns)}: expected a safe integer >= 0`);
  }
  return ns;
}

function checkFrequency(frequencyHz: number): void {
  if (
    !Number.isSafeInteger(frequencyHz) || frequencyHz <= 0 || frequencyHz > MAX_CYCLE_FREQUENCY_HZ
  ) {
    throw new RangeError(
      `Invalid frequency ${String(frequencyHz)} Hz: expected an integer in 1..` +
        MAX_CYCLE_FREQUENCY_HZ,
    );
  }
}
