/**
 * ACPI at boot: the RSDP copies from the MBI (tag 15 first, then tag 14),
 * the tables parsed and logged; a table the parser refuses is logged and
 * ACPI is ignored, so the kernel falls back to the 8259 and the PIT.
 *
 * @module
 */

import type { PhysicalMemory } from "../../hal/mod.ts";
import type { BootInfo } from "../boot/mod.ts";
import type { KernelLog } from "../log.ts";
import { AcpiError } from "./acpi_error.ts";
import { describeAcpiTables, describeHpetTable, describeMadt } from "./acpi_description.ts";
import { type AcpiTables, parseAcpiTables, type RsdpCandidate } from "./acpi_tables.ts";

/**
 * Finds, checks and logs the ACPI tables.
 *
 * @param memory Physical memory.
 * @param bootInfo The parsed MBI.
 * @param log The kernel log.
 * @returns The tables, or undefined when there are none or they are refused.
 */
export function discoverAcpi(
  memory: PhysicalMemory,
  bootInfo: BootInfo,
  log: KernelLog,
): AcpiTables | undefined {
  const candidates: RsdpCandidate[] = [];
  if (bootInfo.rsdpV2 !== undefined) {
    candidates.push({ bytes: bootInfo.rsdpV2, source: "MBI tag 15", kind: "acpi2" });
  }
  if (bootInfo.rsdpV1 !== undefined) {
    candidates.push({ bytes: bootInfo.rsdpV1, source: "MBI tag 14", kind: "acpi1" });
  }
  if (candidates.length === 0) {
    log.info("acpi", "no RSDP in the boot information");
    return undefined;
  }
  let acpi: AcpiTables;
  try {
    acpi = parseAcpiTables(memory, candidates);
  } catch (error) {
    if (!(error instanceof AcpiError)) throw error;
    log.warn("acpi", `${error.message}: ignoring ACPI`);
    return undefined;
  }
  for (const line of describeAcpiTables(acpi)) log.info("acpi", line);
  for (const warning of acpi.warnings) log.warn("acpi", warning);
  if (acpi.madt !== undefined) {
    for (const line of describeMadt(acpi.madt)) {
      log.info("acpi", line);
    }
  }
  if (acpi.hpet !== undefined) log.info("acpi", describeHpetTable(acpi.hpet));
  return acpi;
}
