/**
 * The machine: RAM, the device bus, the interrupt controller, one CPU with
 * its MMU, and the clock that drives timed devices. It knows no concrete
 * device (the PC board in `devices/pc.ts` plugs them in) and no kernel.
 *
 * @module
 */

import { DeviceBus } from "./bus.ts";
import { type Clock, type ClockedDevice, VirtualClock } from "./clock.ts";
import { CpuContext } from "./cpu.ts";
import type { Hardware } from "./hardware.ts";
import { InterruptController } from "./interrupt_controller.ts";
import { Mmu, type MmuOptions } from "./mmu.ts";
import type { PhysicalMemory } from "./physical_memory.ts";
import type { Tracer } from "./trace.ts";

/** The longest a CPU halted on the host clock sleeps before it looks again (input may arrive). */
const MAX_HOST_HALT_MS = 1;
const NS_PER_MS = 1e6;

/** A simulated computer that a kernel can run on. */
export class Machine implements Hardware {
  /** Physical RAM. */
  readonly memory: PhysicalMemory;
  /** Port I/O and MMIO routing. */
  readonly bus: DeviceBus;
  /** The interrupt controller devices raise lines on. */
  readonly interrupts: InterruptController;
  /** The CPU: control registers, port I/O, interrupt delivery, TLB. */
  readonly cpu: CpuContext;
  /** The MMU translating the CPU's virtual accesses. */
  readonly mmu: Mmu;
  /** The clock timed devices follow. */
  readonly clock: Clock;
  readonly #timedDevices: ClockedDevice[] = [];
  #haltReason: string | undefined;
  #haltHook: (() => void) | undefined;
  /** What a halted CPU sleeps on (Atomics.wait) on the host clock; never notified. */
  readonly #haltWord = new Int32Array(new SharedArrayBuffer(4));

  /** Builds a machine around `memory`, driven by `clock`. */
  constructor(memory: PhysicalMemory, clock: Clock, options: MmuOptions = {}) {
    this.memory = memory;
    this.clock = clock;
    this.bus = new DeviceBus(memory);
    this.interrupts = new InterruptController();
    this.cpu = new CpuContext(this.bus, this.interrupts);
    this.mmu = new Mmu(this.cpu, memory, { ...options, bus: this.bus }); // MMIO through paging
  }

  /**
   * Hands `tracer` (or `undefined` to stop tracing) to the CPU (`irq`), its
   * TLB and the MMU (`mmu`). Devices and the kernel take it separately.
   *
   * @param tracer The tracer.
   */
  setTracer(tracer: Tracer | undefined): void {
    this.cpu.setTracer(tracer);
    this.mmu.setTracer(tracer);
  }

  /** Registers a device whose state depends on time. */
  addTimedDevice(device: ClockedDevice): void {
    this.#timedDevices.push(device);
  }

  /** Lets every timed device catch up with the clock, then delivers interrupts. */
  synchronize(): number {
    const nowNs = this.clock.nowNs();
    for (const device of this.#timedDevices) device.advanceTo(nowNs);
    return this.cpu.deliverPendingInterrupts();
  }

  /**
   * HLT with interrupts on: runs pending interrupts; with nothing pending on a
   * virtual clock, jumps time to the next device event and runs what it
   * raises. On the host clock, which runs by itself, it sleeps until that
   * event is due, at most a millisecond, as a halted CPU does
   * rather than return at once to a caller that would spin (a spin of
   * thousands of rounds a millisecond also has V8 compile the clock and
   * device code with its optimizing compilers, megabytes of resident memory
   * for a boot). Returns how many interrupts ran (0: nothing will ever wake
   * the CPU on a virtual clock, or nothing was due yet on the host clock).
   */
  waitForInterrupt(): number {
    const delivered = this.synchronize();
    if (delivered > 0) return delivered;
    const nextNs = this.nextEventNs();
    if (!(this.clock instanceof VirtualClock)) {
      const sleepMs = Math.min(MAX_HOST_HALT_MS, (nextNs - this.clock.nowNs()) / NS_PER_MS);
      if (sleepMs > 0) Atomics.wait(this.#haltWord, 0, 0, sleepMs);
      return this.synchronize();
    }
    if (!Number.isFinite(nextNs)) return 0;
    this.clock.advanceNs(Math.max(0, nextNs - this.clock.nowNs()));
    return this.synchronize();
  }

  /** When the next timed device event is due, in clock ns (Infinity: none). */
  nextEventNs(): number {
    let next = Infinity;
    for (const device of this.#timedDevices) next = Math.min(next, device.nextEventNs());
    return next;
  }

  /**
   * Stops the CPU for good (after a panic or a halt request), with a reason.
   * The first halt runs the halt hook.
   */
  halt(reason: string): void {
    this.cpu.cli();
    if (this.#haltReason !== undefined) return;
    this.#haltReason = reason;
    this.#haltHook?.();
  }

  /**
   * Sets what else stops when this CPU halts: on a board of several CPUs,
   * every other CPU (its halt-all line).
   *
   * @param hook Run once, at the first halt.
   */
  setHaltHook(hook: (() => void) | undefined): void {
    this.#haltHook = hook;
  }

  /** Why the machine halted, or undefined while it runs. */
  get haltReason(): string | undefined {
    return this.#haltReason;
  }
}
