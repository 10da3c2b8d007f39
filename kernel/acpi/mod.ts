/**
 * ACPI: the kernel's parser of the firmware tables (RSDP, XSDT/RSDT, FADT
 * and DSDT, MADT, HPET) and the boot-log lines that describe them.
 *
 * @module
 */

export * from "./acpi_error.ts";
export * from "./table_bytes.ts";
export * from "./system_table.ts";
export * from "./rsdp.ts";
export * from "./madt.ts";
export * from "./hpet_table.ts";
export * from "./fadt.ts";
export * from "./acpi_tables.ts";
export * from "./acpi_description.ts";
export * from "./acpi_discovery.ts";
export * from "./acpi_report.ts";
