/**
 * The `acpi` section of `--report json`: the RSDP, every table with its
 * checksum state read from RAM now, and the decoded MADT, HPET and FADT.
 *
 * @module
 */

import type { PhysicalMemory } from "../../hal/mod.ts";
import type { AcpiTables } from "./acpi_tables.ts";
import type { Madt } from "./madt.ts";
import { checksumNow } from "./system_table.ts";

/** One table in the report. */
export interface AcpiTableReport {
  /** Signature. */
  signature: string;
  /** Physical address. */
  address: number;
  /** Length in bytes. */
  length: number;
  /** Revision. */
  revision: number;
  /** OEM ID. */
  oemId: string;
  /** OEM table ID. */
  oemTableId: string;
  /** `valid`, `invalid` (the bytes changed since boot) or `unreadable`. */
  checksum: "valid" | "invalid" | "unreadable";
}

/** The `acpi` section. */
export interface AcpiReport {
  /** The RSDP used. */
  rsdp: {
    revision: number;
    oemId: string;
    source: string;
    rsdtAddress: number;
    xsdtAddress: number;
  };
  /** `XSDT` or `RSDT`. */
  root: string;
  /** Every table found. */
  tables: AcpiTableReport[];
  /** The MADT decoded, or null. */
  madt: Madt | null;
  /** The HPET table decoded, or null. */
  hpet: {
    address: number;
    comparatorCount: number;
    counterBits: number;
    vendorId: number;
    minimumTick: number;
  } | null;
  /** The FADT's DSDT pointer and flags, or null. */
  fadt:
    | { dsdtAddress: number; flags: number; hardwareReduced: boolean; bootArchitecture: number }
    | null;
  /** What was skipped or odd. */
  warnings: string[];
}

/**
 * The report section for `acpi`, checksums recomputed from `memory`.
 *
 * @param acpi The parsed tables.
 * @param memory Physical memory.
 * @returns Plain JSON-able data.
 */
export function acpiReport(acpi: AcpiTables, memory: PhysicalMemory): AcpiReport {
  const { rsdp, madt, hpet, fadt } = acpi;
  return {
    rsdp: {
      revision: rsdp.revision,
      oemId: rsdp.oemId,
      source: rsdp.source,
      rsdtAddress: rsdp.rsdtAddress,
      xsdtAddress: rsdp.xsdtAddress,
    },
    root: acpi.root.signature,
    tables: acpi.tables.map((header) => {
      const sum = checksumNow(memory, header);
      return {
        signature: header.signature,
        address: header.address,
        length: header.length,
        revision: header.revision,
        oemId: header.oemId,
        oemTableId: header.oemTableId,
        checksum: sum === 0 ? "valid" : sum < 0 ? "unreadable" : "invalid",
      };
    }),
    madt: madt ?? null,
    hpet: hpet === undefined ? null : {
      address: hpet.address,
      comparatorCount: hpet.comparatorCount,
      counterBits: hpet.isCounter64Bit ? 64 : 32,
      vendorId: hpet.vendorId,
      minimumTick: hpet.minimumTick,
    },
    fadt: fadt === undefined ? null : {
      dsdtAddress: fadt.dsdtAddress,
      flags: fadt.flags,
      hardwareReduced: fadt.isHardwareReduced,
      bootArchitecture: fadt.bootArchitecture,
    },
    warnings: [...acpi.warnings],
  };
}
