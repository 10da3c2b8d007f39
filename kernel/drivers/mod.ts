/**
 * Kernel device drivers. They reach hardware only through the CPU's port
 * I/O instructions and, for memory-mapped devices, loads and stores through
 * the MMU at addresses of the kernel's MMIO window — never through the
 * device models.
 *
 * @module
 */

export * from "./serial_port.ts";
export * from "./uart_identify.ts";
export * from "./isa_irq.ts";
export * from "./tick_timer.ts";
export * from "./pit_timer.ts";
export * from "./mmio_window.ts";
export * from "./pic8259_driver.ts";
export * from "./lapic_driver.ts";
export * from "./lapic_timer.ts";
export * from "./ioapic_driver.ts";
export * from "./hpet_driver.ts";
