/**
 * An application processor as its Worker sees the machine: the one RAM
 * buffer, its own CPU context, MMU, TLB and local APIC (at 0xFEE00000, as
 * every CPU's), the board's devices behind its mailbox, and the APIC bus to
 * every other CPU's local APIC through their shared state (docs/smp.md).
 *
 * It implements the {@linkcode Hardware} a kernel runs on. Its instruction
 * boundaries (port I/O, device accesses, `sti`, `hlt`, `pause`) also do what
 * the machine does between instructions: stop when the board halts every CPU
 * ({@linkcode CpuHalted}), take a pending NMI, and let the local APIC timer
 * catch up with time. HLT sleeps on the CPU's wake word until an interrupt
 * arrives or the timer is due, never in a busy loop.
 *
 * @module
 */

import {
  type Clock,
  CpuContext,
  type Hardware,
  HostClock,
  InterruptController,
  Mmu,
  NMI_VECTOR,
  PhysicalMemory,
  type RamRange,
} from "../hal/mod.ts";
import {
  APIC_DELIVERY_INIT,
  APIC_DELIVERY_NMI,
  APIC_DELIVERY_STARTUP,
  type ApicBusEoiTarget,
  SystemApicBus,
} from "./apic_bus.ts";
import { CpuHalted, CpuMailboxes } from "./cpu_mailbox.ts";
import { LocalApic, LocalApicView } from "./local_apic.ts";
import { MailboxBus, type SharedMmioRange } from "./mailbox_bus.ts";
import { SmpControl } from "./smp_control.ts";

/** The longest an idle CPU sleeps before it looks at its timer again, in ms. */
const MAX_IDLE_SLEEP_MS = 100;
/** How long a CPU in reset sleeps at a time while it waits for INIT and SIPI, in ms. */
const STARTUP_SLICE_MS = 100;

/** Everything a CPU Worker needs to build its view of the machine (posted by the board). */
export interface ApStartMessage {
  /** This CPU's index; its APIC ID is the same number. */
  readonly cpu: number;
  /** The RAM buffer. */
  readonly ramBuffer: SharedArrayBuffer;
  /** The RAM ranges. */
  readonly ramRanges: readonly RamRange[];
  /** The machine's control block. */
  readonly controlBuffer: SharedArrayBuffer;
  /** The machine's device mailboxes. */
  readonly mailboxBuffer: SharedArrayBuffer;
  /** Every CPU's local APIC state, by CPU index. */
  readonly apicStates: readonly SharedArrayBuffer[];
  /** The board's MMIO ranges. */
  readonly mmio: readonly SharedMmioRange[];
  /** `performance.timeOrigin + performance.now()` at which machine time was 0, in ms. */
  readonly clockStartMs: number;
}

/** An application processor's hardware, on its Worker. */
export class ApMachine implements Hardware {
  /** This CPU's index (and APIC ID). */
  readonly cpuIndex: number;
  /** The shared RAM. */
  readonly memory: PhysicalMemory;
  /** This CPU. */
  readonly cpu: CpuContext;
  /** This CPU's MMU. */
  readonly mmu: Mmu;
  /** Machine time, the board's clock seen from this thread. */
  readonly clock: Clock;
  /** This CPU's local APIC. */
  readonly localApic: LocalApic;
  /** The machine's control block. */
  readonly control: SmpControl;
  #haltReason: string | undefined;

  /** Builds the CPU's view of the machine from the board's start message. */
  constructor(start: ApStartMessage) {
    const cpu = start.cpu;
    this.cpuIndex = cpu;
    this.control = new SmpControl(start.apicStates.length, start.controlBuffer);
    const mailboxes = new CpuMailboxes(this.control, start.mailboxBuffer);
    this.memory = new PhysicalMemory(start.ramRanges, start.ramBuffer);
    this.clock = new HostClock(
      () => performance.timeOrigin + performance.now(),
      start.clockStartMs,
    );
    const bus = new MailboxBus(this.memory, mailboxes, cpu, start.mmio);
    // An AP's LINT0 is masked: the 8259's INTR never reaches it.
    this.cpu = new CpuContext(bus, new InterruptController());
    const apicBus = new SystemApicBus();
    const eoiToBoard: ApicBusEoiTarget = {
      endOfInterrupt: (vector) => mailboxes.request(cpu, "eoi", vector, 4),
    };
    apicBus.attachIoApic(eoiToBoard);
    this.localApic = new LocalApic({
      apicId: cpu,
      clock: this.clock,
      bus: apicBus,
      stateBuffer: start.apicStates[cpu],
      keepState: true,
    });
    start.apicStates.forEach((state, other) => {
      apicBus.attachLocalApic(
        other === cpu ? this.localApic : new LocalApicView(state, cpuEvents(this.control, other)),
      );
    });
    this.cpu.attachLocalApic(this.localApic);
    this.mmu = new Mmu(this.cpu, this.memory, { bus });
    this.cpu.setBoundaryHook(() => this.#boundary());
    this.control.setPowered(cpu);
  }

  /** Why this CPU halted, or undefined while it runs. */
  get haltReason(): string | undefined {
    return this.#haltReason;
  }

  /** CLI; HLT for good, with a reason. */
  halt(reason: string): void {
    this.cpu.cli();
    this.#haltReason ??= reason;
    this.control.setRunState(this.cpuIndex, "stopped");
  }

  /**
   * Waits in reset for INIT and a start-up message, as an AP does after
   * power-on.
   *
   * @returns The start-up vector: the CPU starts at physical `vector * 4096`.
   * @throws {CpuHalted} If the machine halts every CPU first.
   */
  waitForStartup(): number {
    const control = this.control;
    for (;;) {
      const seen = control.wakeCount(this.cpuIndex);
      if (control.isHaltingAll) throw new CpuHalted(`CPU ${this.cpuIndex} was never started`);
      if (control.runState(this.cpuIndex) === "running") {
        return control.startVector(this.cpuIndex);
      }
      control.sleep(this.cpuIndex, seen, STARTUP_SLICE_MS);
    }
  }

  /**
   * HLT with interrupts on: runs pending interrupts; with none, sleeps until
   * one arrives or the local APIC timer is due (at most 100 ms), then runs
   * what arrived.
   *
   * @returns How many interrupts ran (0: none yet).
   * @throws {CpuHalted} If the machine halts every CPU.
   */
  waitForInterrupt(): number {
    const control = this.control;
    const seen = control.wakeCount(this.cpuIndex);
    const delivered = this.cpu.instructionBoundary();
    if (delivered > 0 || !this.cpu.interruptsEnabled) return delivered;
    const untilTimerMs = (this.localApic.nextEventNs() - this.clock.nowNs()) / 1e6;
    control.sleep(this.cpuIndex, seen, Math.min(MAX_IDLE_SLEEP_MS, untilTimerMs));
    return this.cpu.instructionBoundary();
  }

  /** Marks the CPU's Worker as ended (its last act). */
  exit(): void {
    this.control.setRunState(this.cpuIndex, "exited");
  }

  /** Between instructions: halt-all, a pending NMI, the timer. */
  #boundary(): void {
    const control = this.control;
    if (control.isHaltingAll) {
      throw new CpuHalted(`CPU ${this.cpuIndex} stopped: the machine halted every CPU`);
    }
    if (control.takeNmi(this.cpuIndex)) this.cpu.interruptHandler(NMI_VECTOR)?.(NMI_VECTOR);
    this.localApic.advanceTo(this.clock.nowNs());
  }
}

/**
 * What happens when a message reaches CPU `cpu`'s local APIC from another
 * thread: a fixed interrupt wakes it; INIT, STARTUP and NMI go to the
 * control block, which starts or interrupts the CPU.
 */
export function cpuEvents(
  control: SmpControl,
  cpu: number,
): { accepted(): void; special(deliveryMode: number, vector: number): void } {
  return {
    accepted: () => control.wake(cpu),
    special: (deliveryMode, vector) => {
      if (deliveryMode === APIC_DELIVERY_INIT) control.receiveInit(cpu);
      else if (deliveryMode === APIC_DELIVERY_STARTUP) control.receiveStartup(cpu, vector);
      else if (deliveryMode === APIC_DELIVERY_NMI) control.receiveNmi(cpu);
    },
  };
}
