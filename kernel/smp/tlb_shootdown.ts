/**
 * TLB shootdown (docs/smp.md, "TLB shootdown"): when a mapping other CPUs
 * may have cached is removed or restricted, the CPU that changed it
 * invalidates its own TLB, writes the request (the page) into the shootdown
 * block of the SMP area, sends the shootdown IPI to every CPU that may cache
 * it — those that have the address space loaded, or every CPU for a global
 * page — and waits until each has invalidated and acknowledged (cleared its
 * bit of the pending mask) before it goes on to free the frame or the table.
 * One shootdown runs at a time (its spinlock); a CPU that does not
 * acknowledge within {@linkcode SHOOTDOWN_TIMEOUT_MS} is a panic naming it,
 * since freeing the frame would then be unsafe.
 *
 * A teaching switch turns shootdown off: only the initiator's TLB is
 * invalidated, and the other CPUs keep using the old translation.
 *
 * ```
 * shootdown block (SMP area 0x100), words:
 *   [0] kind: 1 invalidate a page, 2 synchronise only (a page table is freed)
 *   [1] page, low 32 bits  [2] high 16 bits
 *   [3] pending mask: the CPUs yet to acknowledge
 *   [4] requester's CPU number  [5] requests so far
 * ```
 *
 * @module
 */

import { formatVirtAddr, type VirtAddr } from "../../hal/mod.ts";
import type { VectorInstaller } from "../drivers/mod.ts";
import { KernelPanic } from "../panic.ts";
import { plural } from "../plural.ts";
import {
  C_SHOOTDOWNS,
  H_SHOOTDOWN_IPIS,
  H_SHOOTDOWN_ROUNDS,
  H_SHOOTDOWN_SKIPPED,
  SHOOTDOWN_OFFSET,
} from "./smp_area.ts";
import type { SmpCpu } from "./smp_cpu.ts";

/** The shootdown IPI's vector (kernelsim's choice, beside Linux's IPI vectors at 0xF0 and up). */
export const TLB_SHOOTDOWN_VECTOR = 0xfc;
/** How long the initiator waits for every acknowledgement, in ms. */
export const SHOOTDOWN_TIMEOUT_MS = 10_000;

const S_KIND = 0;
const S_VA_LO = 1;
const S_VA_HI = 2;
const S_PENDING = 3;
const S_REQUESTER = 4;
const S_REQUESTS = 5;
const KIND_PAGE = 1;
const KIND_SYNC = 2;

/** Shootdown counters, read from the SMP area. */
export interface ShootdownStats {
  /** Whether shootdown is on (off: the teaching switch). */
  readonly isOn: boolean;
  /** Rounds that sent IPIs. */
  readonly rounds: number;
  /** IPIs sent. */
  readonly ipis: number;
  /** Invalidations kept from other CPUs while the switch was off. */
  readonly skipped: number;
}

/** One CPU's side of the TLB shootdown; see the module documentation. */
export class TlbShootdown {
  readonly #smp: SmpCpu;
  readonly #words: Int32Array;
  readonly #block: number;
  readonly #timeoutMs: number;

  /**
   * CPU `smp`'s shootdown, waiting at most `timeoutMs` (default
   * {@linkcode SHOOTDOWN_TIMEOUT_MS}) for the acknowledgements.
   */
  constructor(smp: SmpCpu, timeoutMs: number = SHOOTDOWN_TIMEOUT_MS) {
    this.#smp = smp;
    this.#words = smp.area.words;
    this.#block = SHOOTDOWN_OFFSET / 4;
    this.#timeoutMs = timeoutMs;
  }

  /** Installs the handler of the shootdown IPI on this CPU. */
  installHandler(vectors: VectorInstaller): void {
    vectors.install(TLB_SHOOTDOWN_VECTOR, "TLB shootdown", () => this.#handle());
  }

  /**
   * Invalidates the page at `va` on this CPU (when `isLoadedHere` or the page
   * is global) and on the CPUs of `cpuMask` (every online CPU for a global
   * page), and returns once all have.
   *
   * @throws {KernelPanic} If a CPU does not acknowledge in time.
   */
  invalidatePage(va: VirtAddr, isGlobal: boolean, isLoadedHere: boolean, cpuMask: number): void {
    if (isGlobal || isLoadedHere) this.#smp.cpu.invlpg(va);
    this.#round(KIND_PAGE, va, isGlobal ? this.#smp.area.onlineMask : cpuMask);
  }

  /**
   * Waits until no CPU of `cpuMask` can be in a page walk that started
   * before now: each acknowledges at an instruction boundary, which a walk
   * never spans (a page table is freed next).
   *
   * @throws {KernelPanic} If a CPU does not acknowledge in time.
   */
  synchronize(cpuMask: number): void {
    this.#round(KIND_SYNC, 0, cpuMask);
  }

  /** The counters. */
  stats(): ShootdownStats {
    const area = this.#smp.area;
    return {
      isOn: area.switches.shootdown,
      rounds: area.counter(H_SHOOTDOWN_ROUNDS),
      ipis: area.counter(H_SHOOTDOWN_IPIS),
      skipped: area.counter(H_SHOOTDOWN_SKIPPED),
    };
  }

  /** One request to the other CPUs of `cpuMask` that are online; waits for every acknowledgement. */
  #round(kind: number, va: number, cpuMask: number): void {
    const smp = this.#smp;
    const area = smp.area;
    const targets = cpuMask & area.onlineMask & ~(1 << smp.index);
    if (targets === 0) return;
    if (!area.switches.shootdown) {
      area.count(H_SHOOTDOWN_SKIPPED);
      return;
    }
    const words = this.#words;
    const block = this.#block;
    smp.locks.shootdown.hold(() => {
      words[block + S_KIND] = kind;
      words[block + S_VA_LO] = va % 2 ** 32;
      words[block + S_VA_HI] = Math.floor(va / 2 ** 32);
      words[block + S_REQUESTER] = smp.index;
      words[block + S_REQUESTS]++;
      // The pending store publishes the request (Atomics are sequentially consistent).
      Atomics.store(words, block + S_PENDING, targets);
      let sent = 0;
      for (let cpu = 0; cpu < area.cpuCount; cpu++) {
        if ((targets & (1 << cpu)) === 0) continue;
        smp.sendIpi(cpu, TLB_SHOOTDOWN_VECTOR);
        sent++;
      }
      area.count(H_SHOOTDOWN_ROUNDS);
      area.count(H_SHOOTDOWN_IPIS, sent);
      const isDone = smp.waitFor(
        words,
        block + S_PENDING,
        (pending) => pending === 0,
        this.#timeoutMs,
      );
      if (!isDone) {
        const silent = Atomics.load(words, block + S_PENDING);
        const cpus = [];
        for (let cpu = 0; cpu < area.cpuCount; cpu++) {
          if ((silent & (1 << cpu)) !== 0) cpus.push(cpu);
        }
        throw new KernelPanic(
          `TLB shootdown of ${
            kind === KIND_PAGE ? `page ${formatVirtAddr(va as VirtAddr)}` : "a page table"
          }: ` +
            `${plural(cpus.length, "CPU")} (${cpus.join(", ")}) did not acknowledge within ` +
            `${this.#timeoutMs} ms`,
        );
      }
    });
  }

  /** The IPI's handler: invalidate as asked, acknowledge, EOI. */
  #handle(): void {
    const smp = this.#smp;
    const words = this.#words;
    const block = this.#block;
    if (words[block + S_KIND] === KIND_PAGE) {
      const va = (words[block + S_VA_LO] >>> 0) + (words[block + S_VA_HI] >>> 0) * 2 ** 32;
      smp.cpu.invlpg(va as VirtAddr);
    }
    Atomics.add(smp.area.words, smp.area.cpuWord(smp.index) + C_SHOOTDOWNS, 1);
    Atomics.and(words, block + S_PENDING, ~(1 << smp.index));
    Atomics.notify(words, block + S_PENDING);
    smp.lapic.eoi();
  }
}
