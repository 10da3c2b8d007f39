/**
 * The kernel's I/O APIC driver: register accesses go through IOREGSEL and
 * IOWIN, 32-bit loads and stores through the mapped page (docs/apic.md,
 * "I/O APIC"). Each select-then-access pair runs with interrupts off (as
 * Linux holds `ioapic_lock` with interrupts saved), so a handler that
 * touches the I/O APIC cannot move IOREGSEL in between.
 *
 * @module
 */

import {
  APIC_DELIVERY_FIXED,
  APIC_DELIVERY_MODE_SHIFT,
  IOAPIC_IOREGSEL,
  IOAPIC_IOWIN,
  IOAPIC_REG_ID,
  IOAPIC_REG_REDIRECTION,
  IOAPIC_REG_VERSION,
  IOAPIC_RTE_ACTIVE_LOW,
  IOAPIC_RTE_DELIVERY_STATUS,
  IOAPIC_RTE_DESTINATION_SHIFT,
  IOAPIC_RTE_LEVEL,
  IOAPIC_RTE_LOGICAL,
  IOAPIC_RTE_MASKED,
  IOAPIC_RTE_REMOTE_IRR,
} from "./_apic_registers.ts";
import type { CpuContext } from "../../hal/mod.ts";
import type { MmioRegion } from "./mmio_window.ts";

const VERSION_MASK = 0xff;
const MAX_ENTRY_SHIFT = 16;
const ID_SHIFT = 24;
const ID_MASK = 0x0f;
const VECTOR_MASK = 0xff;
const DELIVERY_MODE_MASK = 0b111;
const DELIVERY_MODE_NAMES = [
  "fixed",
  "lowest",
  "SMI",
  "reserved",
  "NMI",
  "INIT",
  "reserved",
  "ExtINT",
];

/** How a pin interrupts: the redirection entry's settings. */
export interface IoApicRoute {
  /** The vector. */
  readonly vector: number;
  /** Edge or level. */
  readonly trigger: "edge" | "level";
  /** Active high or low. */
  readonly polarity: "high" | "low";
  /** The physical destination APIC ID. */
  readonly destinationApicId: number;
  /** Whether it starts masked. */
  readonly isMasked: boolean;
}

/** One redirection entry decoded. */
export interface RedirectionEntry {
  /** The pin. */
  readonly pin: number;
  /** Low half. */
  readonly low: number;
  /** High half. */
  readonly high: number;
  /** Vector. */
  readonly vector: number;
  /** `fixed`, `lowest`, `SMI`, `NMI`, `INIT` or `ExtINT`. */
  readonly deliveryMode: string;
  /** Destination mode. */
  readonly isLogical: boolean;
  /** A message waits to be accepted. */
  readonly isPending: boolean;
  /** Active low. */
  readonly isActiveLow: boolean;
  /** Remote IRR (level entries): accepted, no EOI yet. */
  readonly isRemoteIrr: boolean;
  /** Level triggered. */
  readonly isLevel: boolean;
  /** Masked. */
  readonly isMasked: boolean;
  /** Destination field. */
  readonly destination: number;
}

/** Drives one I/O APIC through its mapped registers. */
export class IoApicDriver {
  /** The mapped registers. */
  readonly region: MmioRegion;
  /** The GSI of pin 0 (from the MADT). */
  readonly gsiBase: number;
  readonly #cpu: CpuContext;

  /** A driver for the I/O APIC at `region` serving GSIs from `gsiBase`, used from `cpu`. */
  constructor(region: MmioRegion, gsiBase: number, cpu: CpuContext) {
    this.region = region;
    this.gsiBase = gsiBase;
    this.#cpu = cpu;
  }

  /** Reads register `index` through IOREGSEL and IOWIN. */
  read(index: number): number {
    const wereEnabled = this.#cpu.interruptsEnabled;
    this.#cpu.cli();
    this.region.write32(IOAPIC_IOREGSEL, index);
    const value = this.region.read32(IOAPIC_IOWIN);
    if (wereEnabled) this.#cpu.sti();
    return value;
  }

  /** Writes register `index` through IOREGSEL and IOWIN. */
  write(index: number, value: number): void {
    const wereEnabled = this.#cpu.interruptsEnabled;
    this.#cpu.cli();
    this.region.write32(IOAPIC_IOREGSEL, index);
    this.region.write32(IOAPIC_IOWIN, value);
    if (wereEnabled) this.#cpu.sti();
  }

  /** The ID register's ID. */
  id(): number {
    return (this.read(IOAPIC_REG_ID) >>> ID_SHIFT) & ID_MASK;
  }

  /** The version (0x11 for the 82093AA). */
  version(): number {
    return this.read(IOAPIC_REG_VERSION) & VERSION_MASK;
  }

  /** The number of pins: the maximum redirection entry plus one. */
  pinCount(): number {
    return ((this.read(IOAPIC_REG_VERSION) >>> MAX_ENTRY_SHIFT) & 0xff) + 1;
  }

  /** Masks every pin (as Linux's `clear_IO_APIC` does before routing). */
  maskAll(): void {
    const pins = this.pinCount();
    for (let pin = 0; pin < pins; pin++) this.setMasked(pin, true);
  }

  /** Programs `pin` as a fixed, physical-destination interrupt (masked or not). */
  route(pin: number, route: IoApicRoute): void {
    const low = (route.vector & VECTOR_MASK) | (APIC_DELIVERY_FIXED << APIC_DELIVERY_MODE_SHIFT) |
      (route.polarity === "low" ? IOAPIC_RTE_ACTIVE_LOW : 0) |
      (route.trigger === "level" ? IOAPIC_RTE_LEVEL : 0) | IOAPIC_RTE_MASKED;
    // Masked while it changes, then the destination, then the final low half.
    this.write(IOAPIC_REG_REDIRECTION + 2 * pin, low);
    this.write(
      IOAPIC_REG_REDIRECTION + 2 * pin + 1,
      route.destinationApicId << IOAPIC_RTE_DESTINATION_SHIFT,
    );
    if (!route.isMasked) this.write(IOAPIC_REG_REDIRECTION + 2 * pin, low & ~IOAPIC_RTE_MASKED);
  }

  /** Masks or unmasks `pin`, keeping the rest of its entry. */
  setMasked(pin: number, isMasked: boolean): void {
    const index = IOAPIC_REG_REDIRECTION + 2 * pin;
    const low = this.read(index);
    this.write(index, isMasked ? low | IOAPIC_RTE_MASKED : low & ~IOAPIC_RTE_MASKED);
  }

  /** Redirection entry `pin`, decoded. */
  entry(pin: number): RedirectionEntry {
    const low = this.read(IOAPIC_REG_REDIRECTION + 2 * pin);
    const high = this.read(IOAPIC_REG_REDIRECTION + 2 * pin + 1);
    return {
      pin,
      low,
      high,
      vector: low & VECTOR_MASK,
      deliveryMode: DELIVERY_MODE_NAMES[(low >>> APIC_DELIVERY_MODE_SHIFT) & DELIVERY_MODE_MASK],
      isLogical: (low & IOAPIC_RTE_LOGICAL) !== 0,
      isPending: (low & IOAPIC_RTE_DELIVERY_STATUS) !== 0,
      isActiveLow: (low & IOAPIC_RTE_ACTIVE_LOW) !== 0,
      isRemoteIrr: (low & IOAPIC_RTE_REMOTE_IRR) !== 0,
      isLevel: (low & IOAPIC_RTE_LEVEL) !== 0,
      isMasked: (low & IOAPIC_RTE_MASKED) !== 0,
      destination: high >>> IOAPIC_RTE_DESTINATION_SHIFT,
    };
  }
}
