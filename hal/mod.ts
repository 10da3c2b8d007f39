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
export * from "./cpu.ts";
