/**
 * Interrupts: vector assignments and handlers, ISA IRQ routing through the
 * 8259 pair or the I/O APIC, the switch to APIC mode with the local APIC
 * timer calibrated against the HPET, and the machine-check handler.
 *
 * @module
 */

export * from "./interrupt_vectors.ts";
export * from "./isa_interrupts.ts";
export * from "./lapic_calibration.ts";
export * from "./interrupt_system.ts";
export * from "./machine_check.ts";
export * from "./interrupt_report.ts";
