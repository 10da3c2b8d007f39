/**
 * Bringing interrupts up at boot, in APIC mode as Linux does, or in legacy
 * mode (the 8259 pair and the PIT) with `--no-apic` or when the firmware's
 * tables do not describe usable APIC hardware (docs/apic.md, "How the
 * kernel switches to APIC mode").
 *
 * APIC mode, step by step:
 * 1. map the local APIC, each I/O APIC and the HPET into the MMIO window,
 *    uncached; from here on they are driven through virtual addresses;
 * 2. initialise the 8259 pair and mask every line;
 * 3. set the local APIC up: software enabled, spurious vector 0xFF, LINT0
 *    masked, LINT1 NMI as the MADT says, errors on vector 0xFE;
 * 4. mask every redirection entry, then route the ISA IRQs the kernel uses
 *    (the timer through its override, COM1), masked until attached;
 * 5. start the HPET's main counter and calibrate the local APIC timer
 *    against it, counting a window of PIT ticks that arrive on IRQ 0 through
 *    the I/O APIC;
 * 6. stop the PIT and run the local APIC timer periodic as the tick.
 *
 * @module
 */

import {
  formatVirtAddr,
  hex,
  IRQ_COM1,
  IRQ_TIMER,
  type Machine,
  type PhysAddr,
} from "../../hal/mod.ts";
import type { AcpiTables } from "../acpi/mod.ts";
import { nmiAppliesTo } from "../acpi/mod.ts";
import {
  HpetDriver,
  IoApicDriver,
  LapicDriver,
  LapicTimer,
  MmioWindow,
  Pic8259Driver,
  PitTimer,
  type TickTimer,
} from "../drivers/mod.ts";
import type { KernelLog } from "../log.ts";
import type { AddressSpaceLike } from "../mm/mod.ts";
import { calibrateLapicTimer, type TimerCalibration } from "./lapic_calibration.ts";
import {
  APIC_ERROR_VECTOR,
  InterruptVectors,
  ISA_IRQ_VECTOR_BASE,
  LOCAL_TIMER_VECTOR,
  SPURIOUS_VECTOR,
} from "./interrupt_vectors.ts";
import { describeRoute, IsaInterrupts, type RoutedIoApic } from "./isa_interrupts.ts";

/** Bytes of the local APIC's register page. */
const LAPIC_MMIO_BYTES = 4096;
/** Bytes of an I/O APIC's registers (IOREGSEL and IOWIN). */
const IOAPIC_MMIO_BYTES = 0x20;
/** Bytes of an HPET register block. */
const HPET_MMIO_BYTES = 0x400;
/** The HPET specification's longest counter period: 100 ns. */
const HPET_MAX_PERIOD_FS = 100_000_000;
/** The divisor the local APIC timer runs with. */
const LAPIC_TIMER_DIVISOR = 16;
/** The ISA IRQs the kernel routes at boot. */
const KERNEL_ISA_IRQS: readonly (readonly [number, string])[] = [
  [IRQ_TIMER, "timer"],
  [IRQ_COM1, "COM1"],
];

/** How interrupts run after boot. */
export interface InterruptSystem {
  /** `apic` or `legacy`. */
  readonly mode: "apic" | "legacy";
  /** Why legacy mode was chosen, or undefined in APIC mode. */
  readonly legacyReason: string | undefined;
  /** Handlers per vector, with counts. */
  readonly vectors: InterruptVectors;
  /** ISA IRQ routing; drivers attach through it. */
  readonly isa: IsaInterrupts;
  /** The kernel's tick. */
  readonly timer: TickTimer;
  /** The vector the tick arrives on. */
  readonly timerVector: number;
  /** The 8259 pair (masked in APIC mode). */
  readonly pic: Pic8259Driver;
  /** The mapped device registers (APIC mode). */
  readonly mmio: MmioWindow | undefined;
  /** The local APIC (APIC mode). */
  readonly lapic: LapicDriver | undefined;
  /** The I/O APICs (APIC mode). */
  readonly ioApics: readonly RoutedIoApic[];
  /** The HPET (APIC mode). */
  readonly hpet: HpetDriver | undefined;
  /** How the local APIC timer was calibrated (APIC mode). */
  readonly calibration: TimerCalibration | undefined;
  /** APIC error interrupts taken, and the last ESR value read. */
  readonly apicErrors: { count: number; lastEsr: number };
}

/** What {@linkcode startInterrupts} needs. */
export interface InterruptOptions {
  /** The kernel's address space, for the MMIO window. */
  readonly space: AddressSpaceLike;
  /** The ACPI tables, or undefined when there are none usable. */
  readonly acpi: AcpiTables | undefined;
  /** Where boot messages go. */
  readonly log: KernelLog;
  /** Try APIC mode (false: `--no-apic`). */
  readonly useApic: boolean;
  /** The tick rate. */
  readonly tickHz: number;
}

/**
 * Sets interrupts up (APIC mode when possible, else legacy), starts the
 * tick and enables interrupts.
 *
 * @throws {KernelError} `TimerCalibrationFailed` if the timer interrupt
 *   never arrives during calibration; `DeviceNotFound` if no I/O APIC serves
 *   a GSI the kernel needs.
 */
export function startInterrupts(machine: Machine, options: InterruptOptions): InterruptSystem {
  const { log } = options;
  const reason = options.useApic ? apicUnusableReason(options.acpi) : "--no-apic";
  if (reason !== undefined) return startLegacy(machine, log, options.tickHz, reason);
  return startApic(machine, options);
}

/** Why the ACPI tables do not allow APIC mode, or undefined when they do. */
function apicUnusableReason(acpi: AcpiTables | undefined): string | undefined {
  if (acpi === undefined) return "no usable ACPI tables";
  if (acpi.madt === undefined) return "no MADT";
  if (!acpi.madt.processors.some((cpu) => cpu.isEnabled)) return "the MADT lists no enabled CPU";
  if (acpi.madt.ioApics.length === 0) return "the MADT lists no I/O APIC";
  if (acpi.hpet === undefined) return "no HPET table to calibrate the local APIC timer against";
  return undefined;
}

function startLegacy(
  machine: Machine,
  log: KernelLog,
  tickHz: number,
  legacyReason: string,
): InterruptSystem {
  const cpu = machine.cpu;
  log.info("irq", `legacy mode (8259 and PIT): ${legacyReason}`);
  const vectors = new InterruptVectors(cpu);
  const pic = new Pic8259Driver(cpu);
  const isa = IsaInterrupts.legacy(pic, vectors); // ICW1-4: IRQ n on vector 0x30 + n, all masked
  for (const [irq, name] of KERNEL_ISA_IRQS) log.info("irq", describeRoute(isa.declare(irq, name)));
  const timer = new PitTimer(cpu, isa);
  timer.programPeriodic(tickHz);
  cpu.sti();
  log.info("timer", `PIT at ${tickHz} Hz (divisor ${timer.divisor}) on IRQ 0`);
  return {
    mode: "legacy",
    legacyReason,
    vectors,
    isa,
    timer,
    timerVector: isa.declare(IRQ_TIMER, "timer").vector,
    pic,
    mmio: undefined,
    lapic: undefined,
    ioApics: [],
    hpet: undefined,
    calibration: undefined,
    apicErrors: { count: 0, lastEsr: 0 },
  };
}

function startApic(machine: Machine, options: InterruptOptions): InterruptSystem {
  const { log, tickHz } = options;
  const madt = options.acpi!.madt!;
  const hpetTable = options.acpi!.hpet!;
  const cpu = machine.cpu;
  const mmio = new MmioWindow(options.space, machine.mmu);
  const lapic = new LapicDriver(
    mmio.map("local APIC", madt.localApicAddress as PhysAddr, LAPIC_MMIO_BYTES),
  );
  const ioApics = madt.ioApics.map((entry): RoutedIoApic => {
    const region = mmio.map(`I/O APIC ${entry.id}`, entry.address as PhysAddr, IOAPIC_MMIO_BYTES);
    const driver = new IoApicDriver(region, entry.gsiBase, cpu);
    return { id: entry.id, driver, pinCount: driver.pinCount() };
  });
  const hpet = new HpetDriver(mmio.map("HPET", hpetTable.address as PhysAddr, HPET_MMIO_BYTES));
  for (const region of mmio.regions) {
    log.info(
      "mmio",
      `${region.name} ${hex(region.physAddr)} mapped at ${
        formatVirtAddr(region.virtAddr)
      } uncached (PCD PWT)`,
    );
  }
  const periodFs = hpet.periodFs();
  if (periodFs === 0 || periodFs > HPET_MAX_PERIOD_FS) {
    return startLegacy(
      machine,
      log,
      tickHz,
      `the HPET's period ${periodFs} fs is outside 1..100000000`,
    );
  }
  const apicId = lapic.id();
  const processor = madt.processors.find((candidate) => candidate.apicId === apicId);
  if (processor === undefined || !processor.isEnabled) {
    log.warn("apic", `this CPU's APIC ID ${apicId} is not an enabled MADT processor`);
  }
  const vectors = new InterruptVectors(cpu);
  const pic = new Pic8259Driver(cpu);
  pic.initialise(ISA_IRQ_VECTOR_BASE); // every line masked: the 8259 is out of the way
  log.info("apic", "8259 masked: switching to APIC mode");
  const nmiOnLint1 = madt.nmis.some((nmi) =>
    nmi.lint === 1 && nmiAppliesTo(nmi, processor?.processorUid ?? 0)
  );
  const apicErrors = { count: 0, lastEsr: 0 };
  vectors.install(SPURIOUS_VECTOR, "spurious", () => {}); // a spurious vector takes no EOI
  vectors.install(APIC_ERROR_VECTOR, "APIC error", () => {
    apicErrors.count++;
    apicErrors.lastEsr = lapic.readErrors();
    lapic.eoi();
  });
  lapic.setUp(SPURIOUS_VECTOR, APIC_ERROR_VECTOR, nmiOnLint1);
  vectors.handleUnexpected(() => lapic.eoi()); // a stray vector must not block its class
  log.info(
    "apic",
    `local APIC ${apicId} version ${hex(lapic.version() & 0xff, 2)} at ${
      hex(madt.localApicAddress)
    }: ` +
      `enabled, spurious vector ${hex(SPURIOUS_VECTOR, 2)}, LINT0 masked, LINT1 ${
        nmiOnLint1 ? "NMI" : "masked"
      }`,
  );
  for (const ioApic of ioApics) {
    ioApic.driver.maskAll();
    log.info(
      "ioapic",
      `I/O APIC ${ioApic.id} version ${
        hex(ioApic.driver.version(), 2)
      }: ${ioApic.pinCount} pins, ` +
        `GSI ${ioApic.driver.gsiBase}-${ioApic.driver.gsiBase + ioApic.pinCount - 1}`,
    );
  }
  const isa = IsaInterrupts.apic(ioApics, madt.overrides, lapic, apicId, vectors);
  for (const [irq, name] of KERNEL_ISA_IRQS) log.info("irq", describeRoute(isa.declare(irq, name)));
  hpet.setEnabled(true);
  log.info(
    "hpet",
    `${(hpet.frequencyHz() / 1e6).toFixed(6)} MHz main counter (period ${periodFs} fs), ` +
      `${hpet.timerCount()} comparators`,
  );
  const pit = new PitTimer(cpu, isa);
  const calibration = calibrateLapicTimer(machine, lapic, hpet, pit, LAPIC_TIMER_DIVISOR);
  log.info(
    "apic",
    `local APIC timer calibrated against the HPET: ${
      (calibration.countsPerSecond / 1e6).toFixed(3)
    } MHz ` +
      `(bus ${(calibration.busHz / 1e6).toFixed(3)} MHz, divide ${LAPIC_TIMER_DIVISOR}; ` +
      `${calibration.lapicCounts} counts in ${calibration.referenceTicks} HPET ticks)`,
  );
  const timer = new LapicTimer(lapic, vectors);
  timer.start({
    countsPerSecond: calibration.countsPerSecond,
    divisor: LAPIC_TIMER_DIVISOR,
    frequencyHz: tickHz,
    vector: LOCAL_TIMER_VECTOR,
  });
  log.info(
    "timer",
    `local APIC timer at ${tickHz} Hz, periodic (vector ${hex(LOCAL_TIMER_VECTOR, 2)}, ` +
      `initial count ${timer.initialCount})`,
  );
  return {
    mode: "apic",
    legacyReason: undefined,
    vectors,
    isa,
    timer,
    timerVector: LOCAL_TIMER_VECTOR,
    pic,
    mmio,
    lapic,
    ioApics,
    hpet,
    calibration,
    apicErrors,
  };
}
