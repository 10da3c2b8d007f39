/**
 * The kernel: its entry point and subsystems (boot, drivers, memory
 * management). It knows the machine only through `hal/`.
 *
 * @module
 */

export * from "./kernel.ts";
export * from "./errors.ts";
export * from "./panic.ts";
export * from "./log.ts";
export * from "./boot/mod.ts";
export * from "./drivers/mod.ts";
export * from "./mm/mod.ts";
export * from "./acpi/mod.ts";
export * from "./interrupts/mod.ts";
