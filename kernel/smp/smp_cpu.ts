/**
 * One CPU as the kernel's SMP code knows it, on the thread that runs it:
 * its number, its hardware, the SMP area, its handles to the spinlocks, its
 * local APIC driver (to send IPIs), and the one way it waits for another CPU
 * (bounded, at instruction boundaries, sleeping rather than spinning).
 *
 * @module
 */

import type { CpuContext, Hardware } from "../../hal/mod.ts";
import type { LapicDriver } from "../drivers/mod.ts";
import { KernelError } from "../errors.ts";
import {
  C_CR3_HI,
  C_CR3_LO,
  C_INTERRUPTS,
  C_LOCKS_HELD,
  C_PUBLISHED,
  C_TLB_ENTRIES,
  C_TLB_FLUSHES,
  C_TLB_HITS,
  C_TLB_MISSES,
  SMP_LOCKS,
  type SmpArea,
  type SmpLockName,
} from "./smp_area.ts";
import { type LockHolder, SpinLock } from "./spinlock.ts";

/** The names the lock table's spinlocks show in `locks`. */
export const SMP_LOCK_NAMES: Readonly<Record<SmpLockName, string>> = {
  frames: "frame allocator",
  heap: "kmem heap",
  shootdown: "TLB shootdown",
  calls: "cross-CPU calls",
  registry: "address-space registry",
};

/** Spins at `pause` before a waiting CPU sleeps. */
const SPINS_BEFORE_SLEEP = 32;
/** How long a waiting CPU sleeps at a time before it takes interrupts again, in ms. */
const WAIT_SLICE_MS = 1;

/** One CPU's SMP context; see the module documentation. */
export class SmpCpu implements LockHolder {
  /** The CPU's number (0 is the bootstrap processor). */
  readonly index: number;
  /** Its hardware. */
  readonly hw: Hardware;
  /** Its CPU context. */
  readonly cpu: CpuContext;
  /** The SMP area in RAM. */
  readonly area: SmpArea;
  /** Where it counts the locks it holds: its per-CPU area. */
  readonly heldWords: Int32Array;
  /** The index of that counter. */
  readonly heldWord: number;
  /** Its handles to the lock table's spinlocks. */
  readonly locks: Readonly<Record<SmpLockName, SpinLock>>;
  #lapic: LapicDriver | undefined;

  /** CPU `index`'s context on `hw`. */
  constructor(hw: Hardware, area: SmpArea, index: number) {
    this.hw = hw;
    this.cpu = hw.cpu;
    this.area = area;
    this.index = index;
    this.heldWords = area.words;
    this.heldWord = area.cpuWord(index) + C_LOCKS_HELD;
    const locks = {} as Record<SmpLockName, SpinLock>;
    for (const name of Object.keys(SMP_LOCKS) as SmpLockName[]) {
      locks[name] = new SpinLock(area.words, area.lockWord(name), SMP_LOCK_NAMES[name], this);
    }
    this.locks = locks;
  }

  /** The local APIC driver (set once interrupts are up). */
  get lapic(): LapicDriver {
    if (this.#lapic === undefined) {
      throw new KernelError("DeviceNotFound", `CPU ${this.index}: its local APIC is not set up`);
    }
    return this.#lapic;
  }

  /** Whether the local APIC driver is set. */
  get hasLapic(): boolean {
    return this.#lapic !== undefined;
  }

  /** Sets the local APIC driver, once the APIC is set up. */
  attachLapic(lapic: LapicDriver): void {
    this.#lapic = lapic;
  }

  /** A handle, for this CPU, to the spinlock whose words start at `index` of the SMP area. */
  spinLock(index: number, name: string): SpinLock {
    return new SpinLock(this.area.words, index, name, this);
  }

  /** Sends a fixed IPI with `vector` to CPU `cpu`. */
  sendIpi(cpu: number, vector: number): void {
    this.lapic.sendFixedIpi(vector, { destination: this.area.apicIdOf(cpu) });
  }

  /**
   * Waits until word `index` of `words` satisfies `isDone`: a few spins at
   * `pause`, then sleeps of a millisecond on the word (its writer notifies
   * it), with an instruction boundary after each, so interrupts (and, on the
   * BSP, the APs' device requests) are served meanwhile.
   *
   * @returns Whether it was satisfied within `timeoutMs`.
   */
  waitFor(
    words: Int32Array,
    index: number,
    isDone: (value: number) => boolean,
    timeoutMs: number,
  ): boolean {
    const startMs = performance.now();
    for (let spins = 0;; spins++) {
      const value = Atomics.load(words, index);
      if (isDone(value)) return true;
      if (spins >= SPINS_BEFORE_SLEEP) {
        if (performance.now() - startMs > timeoutMs) return false;
        Atomics.wait(words, index, value, WAIT_SLICE_MS);
      }
      this.cpu.pause();
    }
  }

  /** Writes this CPU's CR3, TLB and interrupt counters into its per-CPU area. */
  publishStats(): void {
    const words = this.area.words;
    const base = this.area.cpuWord(this.index);
    const cpu = this.cpu;
    const { hits, misses, flushes } = cpu.tlb.stats;
    words[base + C_CR3_LO] = cpu.cr3 % 2 ** 32;
    words[base + C_CR3_HI] = Math.floor(cpu.cr3 / 2 ** 32);
    words[base + C_TLB_HITS] = hits;
    words[base + C_TLB_MISSES] = misses;
    words[base + C_TLB_FLUSHES] = flushes;
    words[base + C_TLB_ENTRIES] = cpu.tlb.size;
    words[base + C_INTERRUPTS] = cpu.interruptsDelivered;
    Atomics.add(words, base + C_PUBLISHED, 1);
  }
}
