/**
 * Kernel device drivers. They reach hardware only through the CPU's port
 * I/O instructions, never through the device models.
 *
 * @module
 */

export * from "./serial_port.ts";
export * from "./uart_identify.ts";
export * from "./pit_timer.ts";
