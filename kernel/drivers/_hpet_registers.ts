/**
 * HPET register offsets and bits the kernel's driver uses (IA-PC HPET 1.0a;
 * the facts are in docs/hpet.md). Registers are 64 bits, read and written
 * as two 32-bit halves.
 *
 * @module
 */

/** General Capabilities and ID (low: ID fields, high: period in fs). */
export const HPET_CAPABILITIES = 0x000;
/** General Configuration. */
export const HPET_CONFIGURATION = 0x010;
/** General Interrupt Status. */
export const HPET_INTERRUPT_STATUS = 0x020;
/** Main Counter Value. */
export const HPET_MAIN_COUNTER = 0x0f0;
/** Timer 0 Configuration and Capabilities; timer n adds n × 0x20. */
export const HPET_TIMER_CONFIGURATION = 0x100;
/** Timer 0 Comparator Value. */
export const HPET_TIMER_COMPARATOR = 0x108;
/** Bytes between timers. */
export const HPET_TIMER_STRIDE = 0x20;
/** General Configuration bit 0: counter runs. */
export const HPET_ENABLE_CNF = 1 << 0;
/** Timer bit 1: level-triggered interrupt. */
export const HPET_TN_LEVEL = 1 << 1;
/** Timer bit 2: interrupt enable. */
export const HPET_TN_INT_ENB = 1 << 2;
/** Timer bit 3: periodic. */
export const HPET_TN_PERIODIC = 1 << 3;
/** Timer bit 4: periodic capable. */
export const HPET_TN_PER_INT_CAP = 1 << 4;
/** Timer bit 6: next comparator write sets the accumulator. */
export const HPET_TN_VAL_SET = 1 << 6;
/** Timer bits 13:9: I/O APIC pin. */
export const HPET_TN_ROUTE_SHIFT = 9;
/** The largest period in femtoseconds the specification allows (100 ns). */
export const HPET_MAX_PERIOD_FS = 100_000_000;
