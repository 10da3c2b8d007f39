/**
 * Spinlocks in RAM (docs/smp.md, "Spinlocks"): a word taken with
 * `Atomics.compareExchange`, as a futex-based mutex takes it. A CPU that
 * finds it taken spins a little at `pause` (an instruction boundary, where
 * it still takes interrupts: a TLB shootdown must reach a CPU waiting for a
 * lock), then sleeps on the word with `Atomics.wait` in short slices rather
 * than burning a core; the holder's release wakes the sleepers. Each lock
 * counts, in RAM, its acquisitions, those that had to wait, the spins and
 * sleeps they took and the longest wait, for the monitor's `locks`.
 *
 * ```
 * word 0  state: 0 free, 1 held, 2 held and a CPU may be sleeping on it
 * word 1  holder: CPU number + 1 (0: none)
 * word 2  acquisitions            word 3  contended acquisitions
 * word 4  spins while waiting     word 5  sleeps while waiting
 * word 6  1: removed (test only)  word 7  longest wait, in microseconds
 * ```
 *
 * A removed lock (a test-only switch) is taken and released without any
 * exclusion at all, so that a test can show the races the lock prevents.
 *
 * @module
 */

import type { CpuContext } from "../../hal/mod.ts";
import { KernelPanic } from "../panic.ts";

const L_STATE = 0;
const L_HOLDER = 1;
const L_ACQUISITIONS = 2;
const L_CONTENDED = 3;
const L_SPINS = 4;
const L_SLEEPS = 5;
const L_REMOVED = 6;
const L_LONGEST_WAIT_US = 7;
/** Words of one spinlock. */
export const SPINLOCK_WORDS = 8;
const FREE = 0;
const HELD = 1;
const HELD_WITH_SLEEPERS = 2;
/** Spins at `pause` before a waiter sleeps. */
const SPINS_BEFORE_SLEEP = 64;
/** How long a waiter sleeps at a time, in ms, before it takes interrupts again. */
const SLEEP_SLICE_MS = 1;
/** The longest a CPU waits for a lock before it panics (a lock never released), in ms. */
export const SPINLOCK_TIMEOUT_MS = 30_000;

/** The CPU taking a lock: its number, its CPU context, and where it counts the locks it holds. */
export interface LockHolder {
  /** The CPU's number. */
  readonly index: number;
  /** Its CPU context (`pause` while spinning). */
  readonly cpu: CpuContext;
  /** The words holding its locks-held counter. */
  readonly heldWords: Int32Array;
  /** The index of that counter in `heldWords`. */
  readonly heldWord: number;
}

/** A lock's counters, read from RAM. */
export interface SpinLockStats {
  /** The lock's name. */
  readonly name: string;
  /** The CPU holding it now, or -1. */
  readonly holder: number;
  /** Acquisitions since boot. */
  readonly acquisitions: number;
  /** Acquisitions that found it taken and waited. */
  readonly contended: number;
  /** Spins at `pause` while waiting. */
  readonly spins: number;
  /** Sleeps on the word while waiting. */
  readonly sleeps: number;
  /** The longest wait, in microseconds. */
  readonly longestWaitUs: number;
  /** Whether the lock is removed (a test-only switch). */
  readonly isRemoved: boolean;
}

/** One CPU's handle to a spinlock in RAM; see the module documentation. */
export class SpinLock {
  /** The lock's name, in messages and `locks`. */
  readonly name: string;
  readonly #words: Int32Array;
  readonly #index: number;
  readonly #holder: LockHolder;

  /**
   * A handle to the lock whose words start at `index` of `words` (a view of
   * RAM), for the CPU `holder`.
   */
  constructor(words: Int32Array, index: number, name: string, holder: LockHolder) {
    this.#words = words;
    this.#index = index;
    this.name = name;
    this.#holder = holder;
  }

  /**
   * Takes the lock, waiting (interruptibly) while another CPU holds it.
   *
   * @throws {KernelPanic} If this CPU holds it already (it would wait for
   *   itself forever), or the wait exceeds {@linkcode SPINLOCK_TIMEOUT_MS}.
   */
  acquire(): void {
    const words = this.#words;
    const state = this.#index + L_STATE;
    const me = this.#holder.index + 1;
    if (words[this.#index + L_REMOVED] !== 0) return;
    if (Atomics.compareExchange(words, state, FREE, HELD) !== FREE) this.#wait(me);
    words[this.#index + L_HOLDER] = me;
    words[this.#index + L_ACQUISITIONS]++;
    Atomics.add(this.#holder.heldWords, this.#holder.heldWord, 1);
  }

  /** Releases the lock and wakes a CPU sleeping on it. */
  release(): void {
    const words = this.#words;
    if (words[this.#index + L_REMOVED] !== 0) return;
    words[this.#index + L_HOLDER] = 0;
    Atomics.sub(this.#holder.heldWords, this.#holder.heldWord, 1);
    if (Atomics.exchange(words, this.#index + L_STATE, FREE) === HELD_WITH_SLEEPERS) {
      Atomics.notify(words, this.#index + L_STATE, 1);
    }
  }

  /** Runs `body` holding the lock. */
  hold<T>(body: () => T): T {
    this.acquire();
    try {
      return body();
    } finally {
      this.release();
    }
  }

  /** Removes (or puts back) the lock: a test-only switch, with no CPU holding it. */
  setRemoved(isRemoved: boolean): void {
    Atomics.store(this.#words, this.#index + L_REMOVED, isRemoved ? 1 : 0);
  }

  /** The lock's counters. */
  stats(): SpinLockStats {
    const words = this.#words;
    const i = this.#index;
    return {
      name: this.name,
      holder: Atomics.load(words, i + L_HOLDER) - 1,
      acquisitions: words[i + L_ACQUISITIONS] >>> 0,
      contended: words[i + L_CONTENDED] >>> 0,
      spins: words[i + L_SPINS] >>> 0,
      sleeps: words[i + L_SLEEPS] >>> 0,
      longestWaitUs: words[i + L_LONGEST_WAIT_US] >>> 0,
      isRemoved: words[i + L_REMOVED] !== 0,
    };
  }

  /** The contended path: spin, then sleep in slices; returns holding the lock. */
  #wait(me: number): void {
    const words = this.#words;
    const state = this.#index + L_STATE;
    if (Atomics.load(words, this.#index + L_HOLDER) === me) {
      throw new KernelPanic(`spinlock ${this.name}: CPU ${me - 1} takes it while holding it`);
    }
    const cpu = this.#holder.cpu;
    const startMs = performance.now();
    let spins = 0;
    let sleeps = 0;
    for (;;) {
      if (spins < SPINS_BEFORE_SLEEP) {
        cpu.pause();
        spins++;
        if (Atomics.compareExchange(words, state, FREE, HELD) === FREE) break;
        continue;
      }
      // Mark sleepers before sleeping, so the holder's release wakes us; if
      // the lock was free meanwhile, it is ours (with the mark, which only
      // costs the next release a notify).
      if (Atomics.exchange(words, state, HELD_WITH_SLEEPERS) === FREE) break;
      Atomics.wait(words, state, HELD_WITH_SLEEPERS, SLEEP_SLICE_MS);
      sleeps++;
      cpu.pause(); // an instruction boundary: interrupts (a shootdown) get through
      if (performance.now() - startMs > SPINLOCK_TIMEOUT_MS) {
        const holder = Atomics.load(words, this.#index + L_HOLDER) - 1;
        throw new KernelPanic(
          `spinlock ${this.name}: CPU ${me - 1} waited more than ${SPINLOCK_TIMEOUT_MS / 1000} s ` +
            `(held by CPU ${holder})`,
        );
      }
    }
    // Holding the lock: the counters are ours to update.
    const i = this.#index;
    words[i + L_CONTENDED]++;
    words[i + L_SPINS] += spins;
    words[i + L_SLEEPS] += sleeps;
    const waitUs = Math.round((performance.now() - startMs) * 1000);
    if (waitUs > (words[i + L_LONGEST_WAIT_US] >>> 0)) words[i + L_LONGEST_WAIT_US] = waitUs;
  }
}
