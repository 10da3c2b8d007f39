/**
 * The kernel's timer driver: programs counter 0 of the 8254 PIT as a periodic
 * interrupt source on IRQ 0, counts the ticks, and derives uptime from them.
 *
 * It knows the PIT only through port I/O on the CPU, as a kernel on real
 * hardware does: the control word goes to port 0x43, the count and reads go
 * through port 0x40 (Intel 8254 datasheet, "Control Word Format").
 *
 * Resolution: uptime advances by one timer period per IRQ 0 (10 ms at
 * 100 Hz), so it lags real machine time by less than one period, plus the one
 * input cycle (~0.84 µs) the PIT takes to load a new count. Periods are
 * summed in PIT input cycles and converted exactly, so uptime does not drift
 * from rounding however long the machine runs.
 *
 * @module
 */

import { type CpuContext, IRQ_TIMER, NS_PER_SECOND, nsAtCycles } from "../../hal/mod.ts";
import type { IsaIrqAttacher } from "./isa_irq.ts";
import type { TickHandler, TickTimer } from "./tick_timer.ts";

/** The PIT's input clock on a PC, in Hz. */
const INPUT_FREQUENCY_HZ = 1_193_182;
/** Counter 0's data port. */
const COUNTER0_PORT = 0x40;
/** The control word port. */
const CONTROL_PORT = 0x43;
/** Control word: counter 0 (SC 00), lobyte then hibyte (RW 11), binary; the mode goes in bits 3-1. */
const CONTROL_COUNTER0_LOHI = 0b00_11_000_0;
/** Control word: counter latch command for counter 0 (SC 00, RW 00). */
const CONTROL_COUNTER0_LATCH = 0b00_00_000_0;
/** Mode 0 (interrupt on terminal count): with no count written, OUT stays low and nothing fires. */
const MODE_INTERRUPT_ON_TERMINAL_COUNT = 0;
/** The largest divisor, written as 0. */
const MAX_DIVISOR = 0x10000;

/** The lowest rate the PIT can generate: 1193182 / 65536 = 18.2 Hz, so 19 Hz. */
export const PIT_TIMER_MIN_HZ = 19;
/** The highest rate: one IRQ per PIT input cycle (divisor 1). */
export const PIT_TIMER_MAX_HZ: number = INPUT_FREQUENCY_HZ;

/**
 * How counter 0 generates the periodic interrupt: mode 2 (`"rate-generator"`,
 * a one-cycle low pulse each period, as Linux uses) or mode 3
 * (`"square-wave"`, as the PC BIOS uses). Both raise IRQ 0 once per period.
 */
export type PitTimerMode = "rate-generator" | "square-wave";

/** Options for {@linkcode PitTimer.programPeriodic}. */
export interface ProgramPeriodicOptions {
  /** The counter mode; `"rate-generator"` by default. */
  mode?: PitTimerMode;
}

/** A requested timer rate the PIT cannot generate. */
export class TimerFrequencyError extends RangeError {
  /** The error class name, shown in messages. */
  override readonly name = "TimerFrequencyError";
  /** The rate that was asked for, in Hz. */
  readonly frequencyHz: number;
  /** The lowest rate accepted, in Hz. */
  readonly minHz: number;
  /** The highest rate accepted, in Hz. */
  readonly maxHz: number;

  /** Creates the error for a request of `frequencyHz`. */
  constructor(frequencyHz: number) {
    super(
      `Cannot program the timer at ${String(frequencyHz)} Hz: expected a rate in ` +
        `${PIT_TIMER_MIN_HZ}..${PIT_TIMER_MAX_HZ} Hz`,
    );
    this.frequencyHz = frequencyHz;
    this.minHz = PIT_TIMER_MIN_HZ;
    this.maxHz = PIT_TIMER_MAX_HZ;
  }
}

/**
 * The PIT driver: periodic ticks on IRQ 0 and the uptime they measure.
 *
 * @example
 * ```ts
 * import {
 *   CpuContext,
 *   DeviceBus,
 *   InterruptController,
 *   PhysicalMemory,
 *   physAddr,
 * } from "../../hal/mod.ts";
 * import { PitTimer } from "./pit_timer.ts";
 *
 * const memory = new PhysicalMemory([{ base: physAddr(0), sizeBytes: 4096 }]);
 * const cpu = new CpuContext(new DeviceBus(memory), new InterruptController());
 * const attached: string[] = [];
 * const timer = new PitTimer(cpu, {
 *   attachIsaIrq: (irq, name) => attached.push(`IRQ ${irq} ${name}`),
 *   detachIsaIrq: () => {},
 * });
 * timer.programPeriodic(100); // divisor 11932: a period of about 10.0002 ms
 * cpu.sti();
 * // As machine time passes, each IRQ 0 adds one period to the uptime.
 * console.assert(timer.divisor === 11932 && timer.uptimeNs() === 0 && attached[0] === "IRQ 0 timer");
 * ```
 */
export class PitTimer implements TickTimer {
  /** The hardware behind the tick. */
  readonly name = "8254 PIT";
  readonly #cpu: CpuContext;
  readonly #interrupts: IsaIrqAttacher;
  #divisor = 0;
  #tickCount = 0;
  #elapsedCycles = 0;
  #tickHandler: TickHandler | undefined;

  /**
   * Creates a driver using `cpu` for port I/O and `interrupts` to have IRQ 0
   * delivered; it programs nothing yet.
   */
  constructor(cpu: CpuContext, interrupts: IsaIrqAttacher) {
    this.#cpu = cpu;
    this.#interrupts = interrupts;
  }

  /** IRQ 0 interrupts counted since the driver was created. */
  get tickCount(): number {
    return this.#tickCount;
  }

  /** The programmed divisor (1..65536), or 0 before {@linkcode programPeriodic}. */
  get divisor(): number {
    return this.#divisor;
  }

  /** The exact timer period in nanoseconds (fractional), or 0 before programming. */
  get periodNs(): number {
    return this.#divisor * NS_PER_SECOND / INPUT_FREQUENCY_HZ;
  }

  /**
   * Installs the IRQ 0 handler and programs counter 0 to interrupt
   * `frequencyHz` times a second: divisor = round(1193182 / frequencyHz),
   * clamped to 1..65536 (written as 0 for 65536). Reprogramming restarts the
   * period; ticks and uptime so far are kept.
   *
   * @param frequencyHz The rate, in 19..1193182 Hz.
   * @param options The counter mode (rate generator by default).
   * @throws {TimerFrequencyError} If `frequencyHz` is not a number in range.
   */
  programPeriodic(frequencyHz: number, options: ProgramPeriodicOptions = {}): void {
    if (
      !Number.isFinite(frequencyHz) || frequencyHz < PIT_TIMER_MIN_HZ ||
      frequencyHz > PIT_TIMER_MAX_HZ
    ) {
      throw new TimerFrequencyError(frequencyHz);
    }
    const divisor = Math.min(
      MAX_DIVISOR,
      Math.max(1, Math.round(INPUT_FREQUENCY_HZ / frequencyHz)),
    );
    const modeBits = options.mode === "square-wave" ? 3 : 2;
    // The handler goes in first so no tick of the new period is missed.
    this.#interrupts.attachIsaIrq(IRQ_TIMER, "timer", () => this.#onTick());
    this.#divisor = divisor;
    const cpu = this.#cpu;
    cpu.outb(CONTROL_PORT, CONTROL_COUNTER0_LOHI | (modeBits << 1));
    cpu.outb(COUNTER0_PORT, divisor & 0xff); // 65536 is written as 0x00, 0x00
    cpu.outb(COUNTER0_PORT, (divisor >> 8) & 0xff);
  }

  /**
   * Stops counter 0 (mode 0 with no count: OUT stays low, no more edges) and
   * detaches IRQ 0. Ticks and uptime so far are kept.
   */
  stop(): void {
    this.#cpu.outb(CONTROL_PORT, CONTROL_COUNTER0_LOHI | (MODE_INTERRUPT_ON_TERMINAL_COUNT << 1));
    this.#interrupts.detachIsaIrq(IRQ_TIMER);
  }

  /** Sets the function run on every tick (in interrupt context), or removes it. */
  setTickHandler(handler: TickHandler | undefined): void {
    this.#tickHandler = handler;
  }

  /**
   * Time since the timer was first programmed, in whole nanoseconds: the sum
   * of the periods ticked so far. Its resolution is one period.
   */
  uptimeNs(): number {
    return nsAtCycles(this.#elapsedCycles, INPUT_FREQUENCY_HZ);
  }

  /**
   * Reads counter 0's current count with the counter latch command, so the
   * two bytes belong to the same instant. A mode 2 count runs from the divisor
   * down to 1; a mode 3 count steps by 2 twice a period. 0 stands for 65536.
   */
  readCounter(): number {
    const cpu = this.#cpu;
    cpu.outb(CONTROL_PORT, CONTROL_COUNTER0_LATCH);
    const low = cpu.inb(COUNTER0_PORT);
    const high = cpu.inb(COUNTER0_PORT);
    return (high << 8) | low;
  }

  #onTick(): void {
    this.#tickCount++;
    this.#elapsedCycles += this.#divisor;
    this.#tickHandler?.(this.#tickCount);
  }
}
