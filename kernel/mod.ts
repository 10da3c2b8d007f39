/**
 * The kernel: its entry point and subsystems (boot, drivers, memory
 * management). It knows the machine only through `hal/`.
 *
 * @module
 */

export * from "./kernel.ts";
export * from "./kernel_parts.ts";
export * from "./errors.ts";
export * from "./user_code_error.ts";
export * from "./panic.ts";
export * from "./log.ts";
export * from "./plural.ts";
export * from "./boot/mod.ts";
export * from "./drivers/mod.ts";
export * from "./mm/mod.ts";
export * from "./acpi/mod.ts";
export * from "./interrupts/mod.ts";
export * from "./selftest.ts";
export * from "./monitor/mod.ts";
export * from "./smp/mod.ts";
