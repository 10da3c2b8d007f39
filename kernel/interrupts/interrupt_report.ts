/**
 * The interrupt sections of `--report json`: the routing (mode, each ISA
 * IRQ's path and vector, the tick's source and calibration, the controllers
 * found) and the counts per vector and per ISA IRQ. Reading it touches the
 * controllers' registers (through the MMU) but changes nothing.
 *
 * @module
 */

import { IRQ_LINE_COUNT } from "../../hal/mod.ts";
import type { InterruptSystem } from "./interrupt_system.ts";
import type { VectorEntry } from "./interrupt_vectors.ts";

/** How interrupts are routed, for `interrupts.routing`. */
export interface InterruptRoutingReport {
  /** `apic` or `legacy`. */
  mode: "apic" | "legacy";
  /** Why legacy mode, or null. */
  legacyReason: string | null;
  /** Each ISA IRQ the kernel routed. */
  isaIrqs: {
    irq: number;
    name: string;
    vector: number;
    controller: "8259" | "I/O APIC";
    ioApicId: number | null;
    pin: number | null;
    gsi: number | null;
    trigger: "edge" | "level";
    polarity: "high" | "low";
    overridden: boolean;
    attached: boolean;
  }[];
  /** The tick. */
  timer: {
    source: string;
    frequencyHz: number;
    vector: number;
    calibration: {
      reference: "HPET";
      referenceTicks: number;
      windowNs: number;
      lapicCounts: number;
      divisor: number;
      countsPerSecond: number;
      busHz: number;
    } | null;
  };
  /** The local APIC (APIC mode). */
  localApic: { id: number; address: number; virtAddr: number; version: number } | null;
  /** The I/O APICs (APIC mode). */
  ioApics: {
    id: number;
    address: number;
    virtAddr: number;
    version: number;
    pins: number;
    gsiBase: number;
  }[];
  /** The HPET (APIC mode). */
  hpet: { address: number; virtAddr: number; periodFs: number; comparators: number } | null;
}

/**
 * The routing report of `system`.
 *
 * @param system The interrupt system the kernel runs.
 * @returns Plain JSON-able data.
 */
export function interruptRoutingReport(system: InterruptSystem): InterruptRoutingReport {
  const { lapic, hpet, calibration, timer } = system;
  return {
    mode: system.mode,
    legacyReason: system.legacyReason ?? null,
    isaIrqs: system.isa.routes().map((route) => ({
      irq: route.irq,
      name: route.name,
      vector: route.vector,
      controller: route.controller,
      ioApicId: route.ioApicId ?? null,
      pin: route.pin ?? null,
      gsi: route.gsi ?? null,
      trigger: route.trigger,
      polarity: route.polarity,
      overridden: route.isOverridden,
      attached: system.isa.isAttached(route.irq),
    })),
    timer: {
      source: timer.name,
      frequencyHz: timer.periodNs === 0 ? 0 : 1e9 / timer.periodNs,
      vector: system.timerVector,
      calibration: calibration === undefined ? null : { reference: "HPET", ...calibration },
    },
    localApic: lapic === undefined ? null : {
      id: lapic.id(),
      address: lapic.region.physAddr,
      virtAddr: lapic.region.virtAddr,
      version: lapic.version(),
    },
    ioApics: system.ioApics.map((ioApic) => ({
      id: ioApic.id,
      address: ioApic.driver.region.physAddr,
      virtAddr: ioApic.driver.region.virtAddr,
      version: ioApic.driver.version(),
      pins: ioApic.pinCount,
      gsiBase: ioApic.driver.gsiBase,
    })),
    hpet: hpet === undefined ? null : {
      address: hpet.region.physAddr,
      virtAddr: hpet.region.virtAddr,
      periodFs: hpet.periodFs(),
      comparators: hpet.timerCount(),
    },
  };
}

/** Interrupts the kernel handled per ISA IRQ (index = IRQ), in either mode. */
export function handledPerIsaIrq(system: InterruptSystem): number[] {
  const counts = new Array<number>(IRQ_LINE_COUNT).fill(0);
  for (const route of system.isa.routes()) counts[route.irq] = system.vectors.counts[route.vector];
  return counts;
}

/** Every vector the kernel installed, with its count. */
export function vectorCounts(system: InterruptSystem): VectorEntry[] {
  return system.vectors.entries();
}
