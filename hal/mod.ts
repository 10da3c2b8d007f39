/**
 * The simulated hardware: physical RAM, the device bus, the interrupt
 * controller, the CPU context, the MMU and the multiboot2 boot loader.
 *
 * @module
 */

export * from "./address.ts";
export * from "./faults.ts";
export * from "./physical_memory.ts";
export * from "./bus.ts";
export * from "./interrupt_controller.ts";
export * from "./local_interrupt_controller.ts";
export * from "./cpu.ts";
export * from "./clock.ts";
export * from "./page_table_entry.ts";
export * from "./tlb.ts";
export * from "./memory_type.ts";
export * from "./mmu.ts";
export * from "./machine.ts";
export * from "./hardware.ts";
export * from "./memory_layout.ts";
export * from "./multiboot2.ts";
export * from "./boot_loader.ts";
export * from "./acpi_tables.ts";
export * from "./trace.ts";
