/**
 * ACPI tables in words, one line each, for the boot log, the monitor's
 * `acpi` command and the reports.
 *
 * @module
 */

import { hex } from "../../hal/mod.ts";
import type { AcpiTables } from "./acpi_tables.ts";
import type { HpetTable } from "./hpet_table.ts";
import type { InterruptPolarity, InterruptTrigger, Madt } from "./madt.ts";
import type { AcpiTableHeader } from "./system_table.ts";

/** `FACP 0x7fe00c0  276 bytes  rev 6  "KSIM  " "KSIMFACP"`: one table's header. */
export function describeTableHeader(header: AcpiTableHeader): string {
  return `${header.signature} ${hex(header.address, 8)} ${
    String(header.length).padStart(5)
  } bytes  rev ${header.revision}  "${header.oemId}" "${header.oemTableId}"`;
}

/** The RSDP and every table's header. */
export function describeAcpiTables(acpi: AcpiTables): string[] {
  const { rsdp } = acpi;
  return [
    `RSDP revision ${rsdp.revision} (ACPI ${rsdp.revision >= 2 ? "2.0+" : "1.0"}) from ` +
    `${rsdp.source}, OEM "${rsdp.oemId}", root ${acpi.root.signature}`,
    ...acpi.tables.map(describeTableHeader),
  ];
}

/** The MADT decoded: local APIC address, CPUs, I/O APICs, overrides, NMI inputs. */
export function describeMadt(madt: Madt): string[] {
  const lines = [
    `MADT: local APIC at ${hex(madt.localApicAddress)}` +
    (madt.isPcAtCompatible ? ", PC-AT compatible (dual 8259)" : ", no 8259"),
  ];
  for (const cpu of madt.processors) {
    const state = cpu.isEnabled ? "enabled" : cpu.isOnlineCapable ? "online capable" : "unusable";
    lines.push(`CPU: processor UID ${cpu.processorUid}, APIC ID ${cpu.apicId}, ${state}`);
  }
  for (const ioApic of madt.ioApics) {
    lines.push(`I/O APIC ${ioApic.id} at ${hex(ioApic.address)}, GSI base ${ioApic.gsiBase}`);
  }
  for (const override of madt.overrides) {
    lines.push(
      `override: ISA IRQ ${override.sourceIrq} -> GSI ${override.gsi} ` +
        `(${describeInti(override.polarity, override.trigger)})`,
    );
  }
  for (const nmi of madt.nmis) {
    const cpus = nmi.processorUid === 0xff ? "all processors" : `processor ${nmi.processorUid}`;
    lines.push(`NMI: ${cpus} on LINT${nmi.lint} (${describeInti(nmi.polarity, nmi.trigger)})`);
  }
  return lines;
}

/** The HPET table decoded. */
export function describeHpetTable(hpet: HpetTable): string {
  return `HPET ${hpet.number} at ${hex(hpet.address)}: ${hpet.comparatorCount} comparators, ` +
    `${hpet.isCounter64Bit ? 64 : 32}-bit counter, vendor ${hex(hpet.vendorId, 4)}, ` +
    `revision ${hpet.hardwareRevision}` +
    (hpet.isLegacyReplacementCapable ? ", legacy replacement capable" : "");
}

/** Polarity and trigger mode in words: `active high, edge` or `bus default`. */
export function describeInti(polarity: InterruptPolarity, trigger: InterruptTrigger): string {
  if (polarity === "bus-default" && trigger === "bus-default") return "bus default";
  const p = polarity === "bus-default" ? "bus-default polarity" : `active ${polarity}`;
  const t = trigger === "bus-default" ? "bus-default trigger" : trigger;
  return `${p}, ${t}`;
}
