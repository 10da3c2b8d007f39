/**
 * 16550A register offsets and bits as the kernel's drivers see them (docs/uart16550.md
 * register table; Linux serial_reg.h). The kernel keeps its own copy rather
 * than importing the device model's: a driver knows the datasheet, not the
 * simulator.
 *
 * @module
 */

export const RBR = 0; // receive buffer (read), DLAB = 0
export const THR = 0; // transmit holding (write), DLAB = 0
export const DLL = 0; // divisor latch low, DLAB = 1
export const IER = 1; // interrupt enable, DLAB = 0
export const DLM = 1; // divisor latch high, DLAB = 1
export const IIR = 2; // interrupt identification (read)
export const FCR = 2; // FIFO control (write)
export const LCR = 3; // line control
export const MCR = 4; // modem control
export const LSR = 5; // line status
export const MSR = 6; // modem status
export const SCR = 7; // scratch

export const IER_RDI = 0x01; // received data available (and character timeout)
export const IER_RLSI = 0x04; // receiver line status
export const IIR_NO_INT = 0x01;
export const IIR_ID_MASK = 0x0e;
export const IIR_MSI = 0x00;
export const IIR_FIFO_BITS = 0xc0; // both set while FIFOs work
export const FCR_ENABLE = 0x01;
export const FCR_CLEAR_RX = 0x02;
export const FCR_CLEAR_TX = 0x04;
export const FCR_TRIGGER_14 = 0xc0;
export const LCR_DLAB = 0x80;
export const LCR_8N1 = 0x03; // 8 data bits, no parity, 1 stop bit
export const MCR_DTR = 0x01;
export const MCR_RTS = 0x02;
export const MCR_OUT1 = 0x04;
export const MCR_OUT2 = 0x08; // gates the UART's IRQ onto the ISA bus on a PC
export const MCR_LOOP = 0x10;
export const LSR_DR = 0x01;
export const LSR_OE = 0x02;
export const LSR_THRE = 0x20;
