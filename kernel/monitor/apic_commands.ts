/**
 * Monitor commands about firmware tables and interrupt hardware: `acpi`,
 * `lapic`, `ioapic`, `irq` and `mmio`. The controllers are read through
 * their registers (MMIO through the MMU, the 8259 through ports), as the
 * kernel drives them; reading changes nothing but the ESR, which the
 * architecture only lets software read by writing it first.
 *
 * @module
 */

import { describeCachingViolation, formatVirtAddr, hex, type VirtAddr } from "../../hal/mod.ts";
import {
  checksumNow,
  describeAcpiTables,
  describeHpetTable,
  describeMadt,
  describeTableHeader,
  FADT_BOOT_8042,
  FADT_BOOT_LEGACY_DEVICES,
  FADT_BOOT_NO_CMOS_RTC,
  FADT_BOOT_NO_MSI,
  FADT_BOOT_NO_VGA,
} from "../acpi/mod.ts";
import { LAPIC_LVT_NAMES } from "../drivers/mod.ts";
import { describeRoute, type InterruptSystem } from "../interrupts/mod.ts";
import { formatRange, plural } from "./_format.ts";
import type { Command, CommandContext } from "./command.ts";

const LVT_MASKED = 1 << 16;
const LVT_LEVEL = 1 << 15;
const LVT_ACTIVE_LOW = 1 << 13;
const LVT_PENDING = 1 << 12;
const LVT_PERIODIC = 1 << 17;
const SVR_ENABLE = 1 << 8;
const DELIVERY_MODES = ["fixed", "lowest", "SMI", "reserved", "NMI", "INIT", "reserved", "ExtINT"];
const DIVISORS: Readonly<Record<number, number>> = {
  0b0000: 2,
  0b0001: 4,
  0b0010: 8,
  0b0011: 16,
  0b1000: 32,
  0b1001: 64,
  0b1010: 128,
  0b1011: 1,
};
const BOOT_ARCH_NAMES: readonly (readonly [number, string])[] = [
  [FADT_BOOT_LEGACY_DEVICES, "legacy devices"],
  [FADT_BOOT_8042, "8042"],
  [FADT_BOOT_NO_VGA, "no VGA"],
  [FADT_BOOT_NO_MSI, "no MSI"],
  [FADT_BOOT_NO_CMOS_RTC, "no CMOS RTC"],
];

/** The ACPI and interrupt commands, in help order. */
export const apicCommands: readonly Command[] = [
  {
    name: "acpi",
    usage: "",
    summary: "the ACPI tables (address, length, checksum now) and the decoded MADT, HPET, FADT",
    arity: [0, 0],
    run(_args, context) {
      const { acpi } = context.kernel;
      if (acpi === undefined) {
        context.print("acpi: no usable ACPI tables (see the boot log)");
        return;
      }
      const [rsdpLine] = describeAcpiTables(acpi);
      context.print(rsdpLine);
      for (const header of acpi.tables) {
        const sum = checksumNow(context.kernel.machine.memory, header);
        const state = sum === 0
          ? "checksum ok"
          : sum < 0
          ? "no longer in RAM"
          : `CHECKSUM BAD (sum ${hex(sum, 2)})`;
        context.print(`${describeTableHeader(header)}  ${state}`);
      }
      for (const warning of acpi.warnings) context.print(`warning: ${warning}`);
      if (acpi.madt !== undefined) {
        for (const line of describeMadt(acpi.madt)) {
          context.print(line);
        }
      }
      if (acpi.hpet !== undefined) context.print(describeHpetTable(acpi.hpet));
      if (acpi.fadt !== undefined) {
        const { fadt } = acpi;
        const boot = BOOT_ARCH_NAMES.filter(([bit]) => (fadt.bootArchitecture & bit) !== 0)
          .map(([, name]) => name);
        context.print(
          `FADT: DSDT at ${hex(fadt.dsdtAddress)}, ` +
            `${fadt.isHardwareReduced ? "hardware-reduced" : "fixed hardware"}, ` +
            `boot flags ${hex(fadt.bootArchitecture, 2)} (${boot.join(", ") || "none"})`,
        );
      }
    },
  },
  {
    name: "lapic",
    usage: "",
    summary: "the local APIC's registers, decoded: priorities, LVT, timer, ISR/IRR/TMR",
    arity: [0, 0],
    run(_args, context) {
      const system = context.kernel.interrupts;
      const lapic = system.lapic;
      if (lapic === undefined) {
        context.print(`lapic: not in use: legacy mode (${system.legacyReason})`);
        return;
      }
      const r = lapic.registers();
      context.print(
        `local APIC ${r.id >>> 24} at ${hex(lapic.region.physAddr)} (mapped at ` +
          `${formatVirtAddr(lapic.region.virtAddr)}), version ${hex(r.version & 0xff, 2)}, ` +
          `${((r.version >>> 16) & 0xff) + 1} LVT entries`,
      );
      context.print(
        `TPR ${hex(r.tpr, 2)}  PPR ${hex(r.ppr, 2)}  SVR ${hex(r.svr, 3)} (` +
          `${(r.svr & SVR_ENABLE) !== 0 ? "enabled" : "disabled"}, spurious vector ` +
          `${hex(r.svr & 0xff, 2)})  ESR ${hex(r.esr, 2)}`,
      );
      context.print(
        `LDR ${hex(r.ldr, 8)}  DFR ${hex(r.dfr, 8)} (${
          r.dfr >>> 28 === 0xf ? "flat" : "cluster"
        })` +
          `  ICR ${hex(r.icrHigh, 8)}:${hex(r.icrLow, 8)}`,
      );
      LAPIC_LVT_NAMES.forEach(([, name], index) => {
        const value = r.lvt[index];
        context.print(`LVT ${name.padEnd(11)} ${hex(value, 8)}  ${describeLvt(name, value)}`);
      });
      context.print(
        `timer: initial count ${r.timerInitial}, current count ${r.timerCurrent}, ` +
          `divide by ${DIVISORS[r.timerDivide & 0b1011]}`,
      );
      context.print(`ISR: ${describeVectors(r.inService)}`);
      context.print(`IRR: ${describeVectors(r.requested)}`);
      context.print(`TMR: ${describeVectors(r.levelTriggered)}`);
    },
  },
  {
    name: "ioapic",
    usage: "",
    summary: "each I/O APIC and its redirection entries, decoded",
    arity: [0, 0],
    run(_args, context) {
      const system = context.kernel.interrupts;
      if (system.ioApics.length === 0) {
        context.print(`ioapic: not in use: legacy mode (${system.legacyReason})`);
        return;
      }
      const routes = system.isa.routes();
      for (const ioApic of system.ioApics) {
        const driver = ioApic.driver;
        const gsiBase = driver.gsiBase;
        context.print(
          `I/O APIC ${ioApic.id} at ${hex(driver.region.physAddr)} (mapped at ` +
            `${formatVirtAddr(driver.region.virtAddr as VirtAddr)}), version ` +
            `${hex(driver.version(), 2)}, ${ioApic.pinCount} pins, GSI ${gsiBase}-` +
            `${gsiBase + ioApic.pinCount - 1}`,
        );
        context.print(
          "pin  GSI  vector  mode    dest  trigger  polarity  mask  remote-IRR  pending  use",
        );
        let idle = 0;
        for (let pin = 0; pin < ioApic.pinCount; pin++) {
          const entry = driver.entry(pin);
          const route = routes.find((candidate) =>
            candidate.ioApicId === ioApic.id && candidate.pin === pin
          );
          if (route === undefined && entry.isMasked && entry.vector === 0) {
            idle++;
            continue;
          }
          const use = route === undefined ? "" : `IRQ ${route.irq} (${route.name})`;
          context.print(
            `${String(pin).padStart(3)}  ${String(gsiBase + pin).padStart(3)}  ` +
              `${hex(entry.vector, 2).padEnd(6)}  ${entry.deliveryMode.padEnd(6)}  ` +
              `${(entry.isLogical ? "L" : "") + hex(entry.destination, 2).padEnd(4)}  ` +
              `${(entry.isLevel ? "level" : "edge").padEnd(7)}  ` +
              `${(entry.isActiveLow ? "low" : "high").padEnd(8)}  ` +
              `${(entry.isMasked ? "yes" : "no").padEnd(4)}  ${
                (entry.isRemoteIrr ? "set" : "-").padEnd(10)
              }  ` +
              `${(entry.isPending ? "yes" : "-").padEnd(7)}  ${use}`.trimEnd(),
          );
        }
        if (idle > 0) context.print(`(${plural(idle, "other pin")} masked with vector 0x00)`);
      }
    },
  },
  {
    name: "irq",
    usage: "",
    summary: "interrupts per vector and their source, the routing mode and the 8259's state",
    arity: [0, 0],
    run(_args, context) {
      const system = context.kernel.interrupts;
      context.print(describeMode(system));
      context.print("vector  count       source");
      const routes = system.isa.routes();
      for (const entry of system.vectors.entries()) {
        const route = routes.find((candidate) => candidate.vector === entry.vector);
        const source = route === undefined ? entry.name : describeRoute(route);
        context.print(
          `${hex(entry.vector, 2).padEnd(6)}  ${String(entry.count).padStart(10)}  ${source}`,
        );
      }
      const pic = system.pic.registers();
      context.print(
        `8259: IMR ${hex(pic.imr, 4)}  IRR ${hex(pic.irr, 4)}  ISR ${hex(pic.isr, 4)}` +
          (system.mode === "apic" ? " (every line masked: APIC mode)" : ""),
      );
      const errors = system.apicErrors;
      if (errors.count > 0) {
        context.print(`APIC errors: ${errors.count}, last ESR ${hex(errors.lastEsr, 2)}`);
      }
    },
  },
  {
    name: "mmio",
    usage: "",
    summary: "device register ranges, where the kernel mapped them, and uncached-MMIO mistakes",
    arity: [0, 0],
    run(_args, context) {
      for (const line of mmioLines(context)) context.print(line);
    },
  },
];

function mmioLines(context: CommandContext): string[] {
  const { machine, interrupts } = context.kernel;
  const regions = interrupts.mmio?.regions ?? [];
  const ranges: { base: number; end: number; name: string; where: string }[] = machine.bus
    .mmioClaims.map((claim) => ({
      base: claim.base,
      end: claim.end,
      name: claim.device.name,
      where: "on the bus",
    }));
  const apic = machine.cpu.localApic;
  if (apic !== undefined) {
    ranges.push({
      base: apic.mmioBase,
      end: apic.mmioBase + apic.mmioSizeBytes,
      name: apic.name,
      where: "in the CPU",
    });
  }
  ranges.sort((a, b) => a.base - b.base);
  const lines = ranges.map((range) => {
    const region = regions.find((candidate) =>
      candidate.physAddr >= range.base && candidate.physAddr < range.end
    );
    const mapping = region === undefined
      ? "not mapped by the kernel"
      : `mapped at ${formatVirtAddr(region.virtAddr)} uncached (PCD PWT)`;
    return `${formatRange(range.base, range.end - 1).padEnd(21)}  ${range.name.padEnd(10)}  ` +
      `${range.where.padEnd(10)}  ${mapping}`;
  });
  const mmu = machine.mmu;
  if (mmu.cachingViolationCount === 0) {
    lines.push("uncached-MMIO check: no device page mapped cacheable so far");
  } else {
    lines.push(
      `uncached-MMIO check: ${plural(mmu.cachingViolationCount, "device page")} mapped ` +
        "cacheable, a mistake on real hardware:",
    );
    for (const violation of mmu.cachingViolations) {
      lines.push(`  ${describeCachingViolation(violation)}`);
    }
  }
  return lines;
}

function describeMode(system: InterruptSystem): string {
  const tick = `tick: ${system.timer.name} on vector ${hex(system.timerVector, 2)}`;
  return system.mode === "apic"
    ? `mode: APIC (I/O APIC and local APIC), ${tick}`
    : `mode: legacy (8259 and PIT: ${system.legacyReason}), ${tick}`;
}

function describeLvt(name: string, value: number): string {
  const words: string[] = [];
  if ((value & LVT_MASKED) !== 0) words.push("masked");
  const vector = value & 0xff;
  const mode = DELIVERY_MODES[(value >>> 8) & 0b111];
  if (name === "timer") {
    words.push(`vector ${hex(vector, 2)}`, (value & LVT_PERIODIC) !== 0 ? "periodic" : "one-shot");
  } else if (name === "error") {
    words.push(`vector ${hex(vector, 2)}`);
  } else {
    words.push(mode === "fixed" ? `fixed vector ${hex(vector, 2)}` : mode);
  }
  if (name.startsWith("LINT")) {
    words.push(
      (value & LVT_LEVEL) !== 0 ? "level" : "edge",
      (value & LVT_ACTIVE_LOW) !== 0 ? "active low" : "active high",
    );
  }
  if ((value & LVT_PENDING) !== 0) words.push("send pending");
  return words.join(", ");
}

function describeVectors(vectors: readonly number[]): string {
  return vectors.length === 0 ? "none" : vectors.map((vector) => hex(vector, 2)).join(" ");
}
