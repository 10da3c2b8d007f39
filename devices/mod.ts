/**
 * Device models that plug into the machine's bus: the 16550A UART, the 8254
 * timer, the debug console, the local APIC, the I/O APIC and the HPET with
 * the APIC bus between them, the PC board that wires them up, and its ACPI
 * firmware tables; for a machine of several CPUs, the board of the
 * application processors (Workers), their control block and device
 * mailboxes, and an AP's view of the machine.
 *
 * @module
 */

export * from "./uart16550.ts";
export * from "./pit8254.ts";
export * from "./debug_console.ts";
export * from "./apic_bus.ts";
export * from "./local_apic.ts";
export * from "./io_apic.ts";
export * from "./hpet.ts";
export * from "./isa_interrupt_lines.ts";
export * from "./pc.ts";
export * from "./device_plugin.ts";
export * from "./acpi_firmware.ts";
export * from "./smp_control.ts";
export * from "./cpu_mailbox.ts";
export * from "./mailbox_bus.ts";
export * from "./ap_machine.ts";
export * from "./smp_board.ts";
