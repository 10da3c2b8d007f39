/**
 * Local APIC and I/O APIC register offsets and bits the kernel's drivers
 * use (Intel SDM vol. 3A, APIC chapter, and the 82093AA datasheet; the facts
 * are in docs/apic.md).
 *
 * @module
 */

/** Local APIC ID register (ID in bits 31:24). */
export const LAPIC_ID = 0x020;
/** Local APIC version register. */
export const LAPIC_VERSION = 0x030;
/** Task priority register. */
export const LAPIC_TPR = 0x080;
/** Processor priority register. */
export const LAPIC_PPR = 0x0a0;
/** End-of-interrupt register. */
export const LAPIC_EOI = 0x0b0;
/** Logical destination register. */
export const LAPIC_LDR = 0x0d0;
/** Destination format register. */
export const LAPIC_DFR = 0x0e0;
/** Spurious-interrupt vector register. */
export const LAPIC_SVR = 0x0f0;
/** First word of the in-service register (8 words, 16 bytes apart). */
export const LAPIC_ISR = 0x100;
/** First word of the trigger mode register. */
export const LAPIC_TMR = 0x180;
/** First word of the interrupt request register. */
export const LAPIC_IRR = 0x200;
/** Error status register. */
export const LAPIC_ESR = 0x280;
/** Interrupt command register, low half. */
export const LAPIC_ICR_LOW = 0x300;
/** Interrupt command register, high half. */
export const LAPIC_ICR_HIGH = 0x310;
/** LVT timer. */
export const LAPIC_LVT_TIMER = 0x320;
/** LVT thermal sensor. */
export const LAPIC_LVT_THERMAL = 0x330;
/** LVT performance counters. */
export const LAPIC_LVT_PERFORMANCE = 0x340;
/** LVT LINT0. */
export const LAPIC_LVT_LINT0 = 0x350;
/** LVT LINT1. */
export const LAPIC_LVT_LINT1 = 0x360;
/** LVT error. */
export const LAPIC_LVT_ERROR = 0x370;
/** Timer initial count. */
export const LAPIC_TIMER_INITIAL = 0x380;
/** Timer current count. */
export const LAPIC_TIMER_CURRENT = 0x390;
/** Timer divide configuration. */
export const LAPIC_TIMER_DIVIDE = 0x3e0;
/** Bytes between the words of ISR, TMR and IRR. */
export const LAPIC_VECTOR_WORD_STRIDE = 0x10;

/** SVR bit 8: APIC software enable. */
export const LAPIC_SVR_ENABLE = 1 << 8;
/** LVT/ICR bit 12: delivery status. */
export const LAPIC_DELIVERY_STATUS = 1 << 12;
/** LVT bit 13: input active low. */
export const LAPIC_LVT_ACTIVE_LOW = 1 << 13;
/** LVT bit 14: remote IRR. */
export const LAPIC_LVT_REMOTE_IRR = 1 << 14;
/** LVT/ICR bit 15: level triggered. */
export const LAPIC_LEVEL = 1 << 15;
/** LVT bit 16: masked. */
export const LAPIC_LVT_MASKED = 1 << 16;
/** LVT timer bit 17: periodic. */
export const LAPIC_TIMER_PERIODIC = 1 << 17;
/** ICR bit 14: assert (always set but for INIT de-assert). */
export const LAPIC_ICR_ASSERT = 1 << 14;
/** Delivery mode field position (bits 10:8) in LVT entries, the ICR and redirection entries. */
export const APIC_DELIVERY_MODE_SHIFT = 8;
/** Delivery mode 000: fixed. */
export const APIC_DELIVERY_FIXED = 0b000;
/** Delivery mode 100: NMI. */
export const APIC_DELIVERY_NMI = 0b100;
/** Delivery mode 101: INIT (starts an application processor's start-up, docs/smp.md). */
export const APIC_DELIVERY_INIT = 0b101;
/** Delivery mode 110: start-up (SIPI): the vector is the start page (vector * 4 KiB). */
export const APIC_DELIVERY_STARTUP = 0b110;
/** Delivery mode 111: ExtINT. */
export const APIC_DELIVERY_EXTINT = 0b111;
/** ICR destination shorthand field position (bits 19:18). */
export const LAPIC_ICR_SHORTHAND_SHIFT = 18;
/** Shorthand 01: self. */
export const LAPIC_SHORTHAND_SELF = 0b01;
/** Shorthand 11: all excluding self. */
export const LAPIC_SHORTHAND_ALL_EXCLUDING_SELF = 0b11;
/** DFR model bits 31:28 = 1111: flat model. */
export const LAPIC_DFR_FLAT = 0xffff_ffff;
/** The divide-configuration value for each power-of-two divisor (bits 3, 1, 0). */
export const LAPIC_DIVIDE_CODES: Readonly<Record<number, number>> = {
  1: 0b1011,
  2: 0b0000,
  4: 0b0001,
  8: 0b0010,
  16: 0b0011,
  32: 0b1000,
  64: 0b1001,
  128: 0b1010,
};

/** I/O APIC IOREGSEL offset. */
export const IOAPIC_IOREGSEL = 0x00;
/** I/O APIC IOWIN offset. */
export const IOAPIC_IOWIN = 0x10;
/** I/O APIC register index: ID (bits 27:24). */
export const IOAPIC_REG_ID = 0x00;
/** I/O APIC register index: version (7:0) and max redirection entry (23:16). */
export const IOAPIC_REG_VERSION = 0x01;
/** I/O APIC register index of redirection entry 0's low half; entry n at 0x10 + 2n. */
export const IOAPIC_REG_REDIRECTION = 0x10;
/** Redirection entry bit 11: logical destination. */
export const IOAPIC_RTE_LOGICAL = 1 << 11;
/** Redirection entry bit 12: delivery status. */
export const IOAPIC_RTE_DELIVERY_STATUS = 1 << 12;
/** Redirection entry bit 13: active low. */
export const IOAPIC_RTE_ACTIVE_LOW = 1 << 13;
/** Redirection entry bit 14: Remote IRR. */
export const IOAPIC_RTE_REMOTE_IRR = 1 << 14;
/** Redirection entry bit 15: level triggered. */
export const IOAPIC_RTE_LEVEL = 1 << 15;
/** Redirection entry bit 16: masked. */
export const IOAPIC_RTE_MASKED = 1 << 16;
/** Redirection entry destination field position in the high half (bits 63:56). */
export const IOAPIC_RTE_DESTINATION_SHIFT = 24;
