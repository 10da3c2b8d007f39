/**
 * Running a function on other CPUs (Linux's `smp_call_function`; docs/smp.md,
 * "Cross-CPU calls"): the caller writes the function's number and argument
 * into the call block of the SMP area, sends the call IPI to each target and
 * waits (bounded) until each has run it in its IPI handler and cleared its
 * bit of the pending mask. Functions are registered by number on every CPU,
 * since no JavaScript object crosses threads: only the numbers in RAM do.
 * A function that runs long (the stress) only queues work in its handler;
 * the CPU's idle loop runs it with interrupts on.
 *
 * ```
 * call block (SMP area 0x140), words:
 *   [0] function number  [1] argument, low 32 bits  [2] high 32 bits
 *   [3] pending mask: the CPUs yet to run it  [4] caller's CPU number
 * ```
 *
 * @module
 */

import type { VectorInstaller } from "../drivers/mod.ts";
import { C_CALLS, CALL_OFFSET, H_CALL_ROUNDS } from "./smp_area.ts";
import type { SmpCpu } from "./smp_cpu.ts";

/** The call IPI's vector (Linux's CALL_FUNCTION_VECTOR). */
export const CALL_FUNCTION_VECTOR = 0xfb;
/** How long a caller waits for every CPU to run the function, in ms. */
export const CALL_TIMEOUT_MS = 10_000;

/** The functions other CPUs can be asked to run, by number. */
export const SMP_FUNCTIONS = {
  /** Write CR3, TLB and interrupt counters into the per-CPU area. */
  publishStats: 1,
  /** Write up to 32 TLB entries into the page whose address is the argument. */
  dumpTlb: 2,
  /** Queue the stress whose block is at the argument (run from the idle loop). */
  runStress: 3,
  /** Give the per-CPU frame cache back to the allocator. */
  drainFrameCache: 4,
  /** Reload CR3 (flush the non-global TLB entries). */
  flushTlb: 5,
  /** Queue a share of the frame churn whose block is at the argument (run from the idle loop). */
  frameChurn: 6,
  /** Queue the timed device reads whose block is at the argument (run from the idle loop). */
  deviceRoundTrip: 7,
} as const;

/** A function other CPUs run when asked; it receives the call's argument. */
export type SmpFunction = (argument: number) => void;

const F_FUNCTION = 0;
const F_ARG_LO = 1;
const F_ARG_HI = 2;
const F_PENDING = 3;
const F_CALLER = 4;

/** One CPU's side of cross-CPU calls; see the module documentation. */
export class SmpCalls {
  readonly #smp: SmpCpu;
  readonly #words: Int32Array;
  readonly #block: number;
  readonly #functions = new Map<number, SmpFunction>();

  /** CPU `smp`'s calls. */
  constructor(smp: SmpCpu) {
    this.#smp = smp;
    this.#words = smp.area.words;
    this.#block = CALL_OFFSET / 4;
  }

  /** Makes function `id` runnable on this CPU. */
  register(id: number, fn: SmpFunction): void {
    this.#functions.set(id, fn);
  }

  /** Installs the call IPI's handler on this CPU. */
  installHandler(vectors: VectorInstaller): void {
    vectors.install(CALL_FUNCTION_VECTOR, "cross-CPU call", () => this.#handle());
  }

  /**
   * Runs function `id` with `argument` on the online CPUs of `cpuMask` other
   * than this one, and waits until each has.
   *
   * @returns The CPUs that did not run it within {@linkcode CALL_TIMEOUT_MS}.
   */
  call(cpuMask: number, id: number, argument = 0): number[] {
    const smp = this.#smp;
    const area = smp.area;
    const targets = cpuMask & area.onlineMask & ~(1 << smp.index);
    if (targets === 0) return [];
    const words = this.#words;
    const block = this.#block;
    return smp.locks.calls.hold(() => {
      words[block + F_FUNCTION] = id;
      words[block + F_ARG_LO] = argument % 2 ** 32;
      words[block + F_ARG_HI] = Math.floor(argument / 2 ** 32);
      words[block + F_CALLER] = smp.index;
      Atomics.store(words, block + F_PENDING, targets);
      for (let cpu = 0; cpu < area.cpuCount; cpu++) {
        if ((targets & (1 << cpu)) !== 0) smp.sendIpi(cpu, CALL_FUNCTION_VECTOR);
      }
      area.count(H_CALL_ROUNDS);
      smp.waitFor(words, block + F_PENDING, (pending) => pending === 0, CALL_TIMEOUT_MS);
      const silent = Atomics.exchange(words, block + F_PENDING, 0);
      const cpus: number[] = [];
      for (let cpu = 0; cpu < area.cpuCount; cpu++) if ((silent & (1 << cpu)) !== 0) cpus.push(cpu);
      return cpus;
    });
  }

  /** The call IPI's handler: run the function, acknowledge, EOI. */
  #handle(): void {
    const smp = this.#smp;
    const words = this.#words;
    const block = this.#block;
    const bit = 1 << smp.index;
    // A call the caller gave up on (timed out) is not run late.
    if ((Atomics.load(words, block + F_PENDING) & bit) !== 0) {
      const argument = (words[block + F_ARG_LO] >>> 0) + (words[block + F_ARG_HI] >>> 0) * 2 ** 32;
      try {
        this.#functions.get(words[block + F_FUNCTION])?.(argument);
      } finally {
        Atomics.add(smp.area.words, smp.area.cpuWord(smp.index) + C_CALLS, 1);
        Atomics.and(words, block + F_PENDING, ~bit);
        Atomics.notify(words, block + F_PENDING);
      }
    }
    smp.lapic.eoi();
  }
}
