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
  const candidates = rsdpCandidates(bootInfo);
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

/**
 * How many enabled CPUs the MADT lists, found quietly before anything else
 * of ACPI is logged (Linux counts the possible CPUs this early too): the
 * kernel sets its structures for several CPUs up before it builds its page
 * tables and heap. Tables that are missing or refused count as one CPU.
 *
 * @param memory Physical memory.
 * @param bootInfo The parsed MBI.
 * @returns The number of enabled processors, at least 1.
 */
export function enabledCpuCount(memory: PhysicalMemory, bootInfo: BootInfo): number {
  const candidates = rsdpCandidates(bootInfo);
  if (candidates.length === 0) return 1;
  try {
    const madt = parseAcpiTables(memory, candidates).madt;
    return Math.max(1, madt?.processors.filter((cpu) => cpu.isEnabled).length ?? 1);
  } catch (error) {
    if (error instanceof AcpiError) return 1;
    throw error;
  }
}

/** The RSDP copies in the MBI: tag 15 first, then tag 14. */
function rsdpCandidates(bootInfo: BootInfo): RsdpCandidate[] {
  const candidates: RsdpCandidate[] = [];
  if (bootInfo.rsdpV2 !== undefined) {
    candidates.push({ bytes: bootInfo.rsdpV2, source: "MBI tag 15", kind: "acpi2" });
  }
  if (bootInfo.rsdpV1 !== undefined) {
    candidates.push({ bytes: bootInfo.rsdpV1, source: "MBI tag 14", kind: "acpi1" });
  }
  return candidates;
}
