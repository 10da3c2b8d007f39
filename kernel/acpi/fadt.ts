/**
 * The Fixed ACPI Description Table, signature `FACP` (docs/acpi.md,
 * "FADT"): the kernel reads the DSDT pointers, the flags and the IA-PC boot
 * architecture flags.
 *
 * | offset | bytes | field |
 * |---|---|---|
 * | 36 | 4 | FIRMWARE_CTRL: the FACS (32-bit) |
 * | 40 | 4 | DSDT (32-bit) |
 * | 109 | 2 | IAPC_BOOT_ARCH (ACPI 2.0 and later) |
 * | 112 | 4 | flags; bit 20 HW_REDUCED_ACPI (ACPI 5.0 and later) |
 * | 132 | 8 | X_FIRMWARE_CTRL (ACPI 2.0 and later) |
 * | 140 | 8 | X_DSDT (ACPI 2.0 and later), used when not 0 |
 *
 * @module
 */

import type { SystemTable } from "./system_table.ts";

const ACPI1_FADT_BYTES = 116;
const X_FIRMWARE_CTRL_END = 140;
const X_DSDT_END = 148;
const BOOT_ARCH_END = 111;
/** FADT flags bit 20: a hardware-reduced ACPI platform (no fixed hardware). */
export const FADT_FLAG_HW_REDUCED = 1 << 20;
/** IAPC_BOOT_ARCH bit 0: legacy ISA devices present. */
export const FADT_BOOT_LEGACY_DEVICES = 1 << 0;
/** IAPC_BOOT_ARCH bit 1: an 8042 keyboard controller present. */
export const FADT_BOOT_8042 = 1 << 1;
/** IAPC_BOOT_ARCH bit 2: no VGA. */
export const FADT_BOOT_NO_VGA = 1 << 2;
/** IAPC_BOOT_ARCH bit 3: MSI not supported. */
export const FADT_BOOT_NO_MSI = 1 << 3;
/** IAPC_BOOT_ARCH bit 5: no CMOS RTC. */
export const FADT_BOOT_NO_CMOS_RTC = 1 << 5;

/** The decoded FADT. */
export interface Fadt {
  /** The DSDT's address (X_DSDT when not 0, else DSDT). */
  readonly dsdtAddress: number;
  /** The FACS's address, or 0 (optional on hardware-reduced platforms). */
  readonly facsAddress: number;
  /** The flags word. */
  readonly flags: number;
  /** Whether the platform is hardware-reduced. */
  readonly isHardwareReduced: boolean;
  /** IAPC_BOOT_ARCH, or 0 in an ACPI 1.0 FADT. */
  readonly bootArchitecture: number;
  /** Oddities worth a warning (a 32/64-bit pointer mismatch). */
  readonly warnings: readonly string[];
}

/**
 * Decodes a checked FADT.
 *
 * @param fadt The table, read with `readSystemTable`.
 * @returns Its pointers and flags.
 * @throws {AcpiError} If it is shorter than an ACPI 1.0 FADT or names no DSDT.
 */
export function parseFadt(fadt: SystemTable): Fadt {
  const table = fadt.table;
  if (table.length < ACPI1_FADT_BYTES) {
    throw table.error(`length ${table.length} is shorter than the 116 bytes of an ACPI 1.0 FADT`);
  }
  const warnings: string[] = [];
  const dsdt32 = table.u32(40, "DSDT");
  const dsdt64 = table.length >= X_DSDT_END ? table.u64(140, "X_DSDT") : 0;
  if (dsdt32 !== 0 && dsdt64 !== 0 && dsdt32 !== dsdt64) {
    warnings.push(
      `FADT: DSDT 0x${dsdt32.toString(16)} and X_DSDT 0x${
        dsdt64.toString(16)
      } differ; using X_DSDT`,
    );
  }
  const dsdtAddress = dsdt64 !== 0 ? dsdt64 : dsdt32;
  if (dsdtAddress === 0) throw table.error("names no DSDT (DSDT and X_DSDT are 0)");
  const facs32 = table.u32(36, "FIRMWARE_CTRL");
  const facs64 = table.length >= X_FIRMWARE_CTRL_END ? table.u64(132, "X_FIRMWARE_CTRL") : 0;
  const flags = table.u32(112, "flags");
  const isHardwareReduced = (flags & FADT_FLAG_HW_REDUCED) !== 0;
  const facsAddress = facs64 !== 0 ? facs64 : facs32;
  if (facsAddress === 0 && !isHardwareReduced) {
    warnings.push("FADT: no FACS, which only a hardware-reduced platform may omit");
  }
  return {
    dsdtAddress,
    facsAddress,
    flags,
    isHardwareReduced,
    bootArchitecture: table.length >= BOOT_ARCH_END ? table.u16(109, "IAPC_BOOT_ARCH") : 0,
    warnings,
  };
}
