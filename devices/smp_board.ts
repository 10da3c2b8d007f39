/**
 * The board of a machine of several CPUs (docs/smp.md, "The machine"). The
 * bootstrap processor runs on the board's thread with the shared devices;
 * every application processor is a Worker over the same RAM buffer, with its
 * own CPU context, MMU, TLB and local APIC.
 *
 * - Power-on: the board creates each AP's local APIC state (shared, so that
 *   any CPU's APIC bus can deliver to it) and starts its Worker, which builds
 *   its view of the machine and waits in reset. It runs no kernel code until
 *   the kernel sends it INIT and a start-up IPI; it then starts at physical
 *   page `vector * 4 KiB`.
 * - Device requests: an AP's port I/O and MMIO to the shared devices arrive in
 *   its mailbox; the board serves them at the BSP's instruction boundaries
 *   and, when the board's thread is idle, as soon as the doorbell rings.
 * - Interrupts: the I/O APIC and every local APIC reach an AP through its
 *   APIC state ({@linkcode LocalApicView}); the AP takes them at its own
 *   instruction boundaries, waking from HLT.
 * - NMI: an NMI to the BSP (an AP's panic broadcast) runs the BSP's NMI
 *   handler at its next instruction boundary.
 * - Halt: when the BSP halts (shutdown, the monitor's `halt`, a panic), every
 *   CPU stops at its next instruction boundary or wait and its Worker ends;
 *   {@linkcode SmpBoard.shutdown} waits for that, with a bound, and
 *   terminates any Worker that has not ended.
 *
 * @module
 */

import {
  type AccessWidth,
  type HostClock,
  type Machine,
  NMI_VECTOR,
  type PhysAddr,
  type PhysicalMemory,
} from "../hal/mod.ts";
import { type ApStartMessage, cpuEvents } from "./ap_machine.ts";
import type { ApicBus, SystemApicBus } from "./apic_bus.ts";
import { CpuMailboxes, type MailboxHandler } from "./cpu_mailbox.ts";
import { createSharedLocalApicState, LocalApicView } from "./local_apic.ts";
import type { SharedMmioRange } from "./mailbox_bus.ts";
import { type CpuRunState, SmpControl } from "./smp_control.ts";

/** How long {@linkcode SmpBoard.shutdown} waits for the Workers to end, in ms. */
export const WORKER_EXIT_TIMEOUT_MS = 2000;
/** How often shutdown looks at the Workers' run states, in ms. */
const EXIT_POLL_MS = 5;

/** What a machine of several CPUs is built with. */
export interface SmpBoardOptions {
  /** How many CPUs (2 to 16). */
  readonly cpuCount: number;
  /** The CPU Worker's module (`cli/cpu_worker.ts` in kernelsim). */
  readonly cpuWorkerUrl: URL;
  /**
   * CPUs that are dead: never powered on, they ignore INIT and start-up
   * messages (for testing how the kernel bounds its wait). Default: none.
   */
  readonly deadCpus?: readonly number[];
}

/** What the board is wired to on its own thread. */
export interface SmpBoardWiring {
  /** The BSP's machine (its CPU runs on the board's thread). */
  readonly machine: Machine;
  /** The shared RAM. */
  readonly memory: PhysicalMemory;
  /** The host clock every CPU reads. */
  readonly clock: HostClock;
  /** The board's APIC bus (the BSP's local APIC and the I/O APIC are on it). */
  readonly apicBus: SystemApicBus;
  /** Where EOI messages for the I/O APICs go. */
  readonly eoiBus: ApicBus;
  /** The BSP's local APIC state, shared. */
  readonly bspApicState: SharedArrayBuffer;
}

/** The board of a machine of several CPUs; see the module documentation. */
export class SmpBoard {
  /** The control block every CPU maps. */
  readonly control: SmpControl;
  /** The CPUs' device mailboxes. */
  readonly mailboxes: CpuMailboxes;
  /** How many CPUs. */
  readonly cpuCount: number;
  readonly #wiring: SmpBoardWiring;
  readonly #cpuWorkerUrl: URL;
  readonly #deadCpus: readonly number[];
  readonly #handler: MailboxHandler;
  readonly #apicStates: SharedArrayBuffer[];
  readonly #workers: { readonly cpu: number; readonly worker: Worker }[] = [];
  readonly #workerErrors: (string | undefined)[];
  #isServing = false;
  #isShutDown = false;
  /** The doorbell's value when the mailboxes were last served. */
  #servedDoorbell = -1;

  /**
   * Wires APs 1 to `cpuCount - 1` to the board: their APIC state and its
   * view on the board's APIC bus. Their Workers start with
   * {@linkcode SmpBoard.powerOn}, once every device is on the bus.
   *
   * @throws {RangeError} For a CPU count outside 2..16.
   */
  constructor(wiring: SmpBoardWiring, options: SmpBoardOptions) {
    if (options.cpuCount < 2) {
      throw new RangeError(`A board of several CPUs needs 2 to 16, not ${options.cpuCount}`);
    }
    this.cpuCount = options.cpuCount;
    this.control = new SmpControl(options.cpuCount);
    this.mailboxes = new CpuMailboxes(this.control);
    this.#wiring = wiring;
    this.#cpuWorkerUrl = options.cpuWorkerUrl;
    this.#deadCpus = options.deadCpus ?? [];
    this.#workerErrors = new Array(options.cpuCount).fill(undefined);
    this.#apicStates = [wiring.bspApicState];
    for (let cpu = 1; cpu < options.cpuCount; cpu++) {
      const state = createSharedLocalApicState(cpu);
      this.#apicStates.push(state);
      wiring.apicBus.attachLocalApic(new LocalApicView(state, cpuEvents(this.control, cpu)));
    }
    const bus = wiring.machine.bus;
    this.#handler = {
      portIn: (port, width) => bus.portIn(port, width),
      portOut: (port, value, width) => bus.portOut(port, value, width),
      mmioRead: (pa, width) => bus.readPhys(pa as PhysAddr, width as AccessWidth),
      mmioWrite: (pa, value, width) => bus.writePhys(pa as PhysAddr, value, width),
      endOfInterrupt: (vector) => wiring.eoiBus.broadcastEoi(vector),
    };
    wiring.machine.cpu.setBoundaryHook(() => this.#bspBoundary());
    wiring.machine.setHaltHook(() => this.control.haltAll());
  }

  /**
   * Powers the APs on: starts each one's Worker, which waits in reset for
   * INIT and a start-up IPI. Called once the board's devices are all on the
   * bus (the Workers are told the MMIO ranges).
   */
  powerOn(): void {
    const { memory, clock, machine } = this.#wiring;
    const mmio: SharedMmioRange[] = machine.bus.mmioClaims.map((claim) => ({
      base: claim.base,
      sizeBytes: claim.end - claim.base,
      name: claim.device.name,
    }));
    const clockStartMs = performance.timeOrigin + clock.startMs;
    for (let cpu = 1; cpu < this.cpuCount; cpu++) {
      if (this.#deadCpus.includes(cpu)) {
        this.control.setRunState(cpu, "exited");
        continue;
      }
      const worker = new Worker(this.#cpuWorkerUrl, { type: "module", name: `cpu${cpu}` });
      worker.onerror = (event) => {
        // A Worker that fails to load never comes online; the kernel reports it.
        event.preventDefault();
        this.#workerErrors[cpu] = event.message;
        this.control.setRunState(cpu, "exited");
      };
      const start: ApStartMessage = {
        cpu,
        ramBuffer: memory.buffer,
        ramRanges: memory.ranges,
        controlBuffer: this.control.buffer,
        mailboxBuffer: this.mailboxes.buffer,
        apicStates: this.#apicStates,
        mmio,
        clockStartMs,
      };
      worker.postMessage(start);
      this.#workers.push({ cpu, worker });
    }
  }

  /**
   * Resolves once every AP's Worker has built its CPU and waits in reset
   * (its module loaded), or after `timeoutMs`. A kernel does not need this:
   * it bounds its own wait for each AP. Tests use it so that loading the
   * Worker's modules is not counted in the kernel's bound.
   *
   * @returns The CPUs not powered by then.
   */
  async whenPowered(timeoutMs: number): Promise<number[]> {
    const deadline = performance.now() + timeoutMs;
    const unpowered = () =>
      this.#workers.filter(({ cpu }) => !this.control.isPowered(cpu)).map(({ cpu }) => cpu);
    while (unpowered().length > 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, EXIT_POLL_MS));
    }
    return unpowered();
  }

  /** CPU `cpu`'s run state (an AP's: CPU 0, the BSP, is not tracked and reads as reset). */
  runState(cpu: number): CpuRunState {
    return this.control.runState(cpu);
  }

  /** Why CPU `cpu`'s Worker failed, if it did. */
  workerError(cpu: number): string | undefined {
    return this.#workerErrors[cpu];
  }

  /**
   * Serves every device request the APs have posted.
   *
   * @returns How many were served.
   */
  serve(): number {
    if (this.#isServing) return 0; // a device model's interrupt led back here
    // Nothing posted since the last look: the doorbell has not rung (one load).
    // Read before the mailboxes, so a request posted meanwhile rings it again.
    const doorbell = this.control.doorbell;
    if (doorbell === this.#servedDoorbell) return 0;
    this.#servedDoorbell = doorbell;
    this.#isServing = true;
    try {
      return this.mailboxes.serve(this.#handler);
    } finally {
      this.#isServing = false;
    }
  }

  /**
   * Serves device requests while the board's thread is otherwise idle (the
   * console waiting for input), until shutdown: each ring of the doorbell
   * wakes it. Interrupts for the BSP wait for its next instruction boundary
   * (the console's next step), as they would for a halted CPU.
   */
  async serveWhileIdle(): Promise<void> {
    const { control } = this;
    while (!this.#isShutDown) {
      const seen = control.doorbell;
      this.serve();
      await control.waitForDoorbell(seen);
    }
  }

  /**
   * Halts every CPU, waits for the AP Workers to end (at most
   * {@linkcode WORKER_EXIT_TIMEOUT_MS}) and terminates any that has not.
   *
   * @returns The CPUs whose Worker had to be terminated.
   */
  async shutdown(): Promise<number[]> {
    if (this.#isShutDown) return [];
    this.#isShutDown = true;
    this.control.haltAll();
    const deadline = performance.now() + WORKER_EXIT_TIMEOUT_MS;
    const pending = () => this.#workers.filter(({ cpu }) => this.runState(cpu) !== "exited");
    while (pending().length > 0 && performance.now() < deadline) {
      this.serve(); // an AP may be in the middle of a device request
      await new Promise((resolve) => setTimeout(resolve, EXIT_POLL_MS));
    }
    const stuck: number[] = [];
    for (const { cpu, worker } of this.#workers) {
      if (this.runState(cpu) !== "exited") stuck.push(cpu);
      worker.terminate();
    }
    return stuck;
  }

  /** The BSP's instruction boundary: serve the APs, take an NMI. */
  #bspBoundary(): void {
    if (this.#isServing) return;
    this.serve();
    if (this.control.takeNmi(0)) {
      const cpu = this.#wiring.machine.cpu;
      cpu.interruptHandler(NMI_VECTOR)?.(NMI_VECTOR);
    }
  }
}
