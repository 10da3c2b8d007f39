/**
 * 8259A ports and command words the kernel's driver uses (Intel 8259A
 * datasheet; the facts are in docs/8259.md).
 *
 * @module
 */

/** Master command port. */
export const PIC_MASTER_COMMAND = 0x20;
/** Master data (mask) port. */
export const PIC_MASTER_DATA = 0x21;
/** Slave command port. */
export const PIC_SLAVE_COMMAND = 0xa0;
/** Slave data (mask) port. */
export const PIC_SLAVE_DATA = 0xa1;
/** ICW1: initialise, edge triggered, cascaded, ICW4 follows. */
export const PIC_ICW1_INIT_WITH_ICW4 = 0x11;
/** ICW3 for the master: the slave is on IR2. */
export const PIC_ICW3_MASTER_SLAVE_ON_IR2 = 1 << 2;
/** ICW3 for the slave: its cascade identity is 2. */
export const PIC_ICW3_SLAVE_ID = 2;
/** ICW4: 8086 mode, normal EOI. */
export const PIC_ICW4_8086 = 0x01;
/** OCW2: non-specific EOI. */
export const PIC_OCW2_EOI = 0x20;
/** OCW3: read the IRR next. */
export const PIC_OCW3_READ_IRR = 0x0a;
/** OCW3: read the ISR next. */
export const PIC_OCW3_READ_ISR = 0x0b;
/** The master line the slave cascades into. */
export const PIC_CASCADE_IRQ = 2;
