/**
 * The kernel's periodic tick, whatever drives it: the 8254 PIT (legacy
 * mode) or the local APIC timer (APIC mode).
 *
 * @module
 */

/** Called from the tick interrupt with the tick count so far. */
export type TickHandler = (tickCount: number) => void;

/** A periodic timer interrupt and the uptime it measures. */
export interface TickTimer {
  /** The hardware behind it, e.g. `8254 PIT` or `local APIC timer`. */
  readonly name: string;
  /** Ticks counted so far. */
  readonly tickCount: number;
  /** The exact period in nanoseconds (fractional), or 0 before it runs. */
  readonly periodNs: number;
  /** Time since it started, in whole nanoseconds (one-period resolution). */
  uptimeNs(): number;
  /** Sets (or removes) the function run on every tick, in interrupt context. */
  setTickHandler(handler: TickHandler | undefined): void;
}
