import { InterruptController, IRQ_COM1 } from "../hal/mod.ts";
import { assert, assertEquals, assertThrows, Xorshift32 } from "../testing/mod.ts";
import {
  Uart16550,
  type Uart16550Options,
  UART_DLL,
  UART_DLM,
  UART_FCR,
  UART_FCR_CLEAR_RX,
  UART_FCR_CLEAR_TX,
  UART_FCR_DMA_MODE,
  UART_FCR_ENABLE,
  UART_FCR_TRIGGER_1,
  UART_FCR_TRIGGER_14,
  UART_FCR_TRIGGER_4,
  UART_FCR_TRIGGER_8,
  UART_IER,
  UART_IER_MSI,
  UART_IER_RDI,
  UART_IER_RLSI,
  UART_IER_THRI,
  UART_IIR,
  UART_LCR,
  UART_LCR_8N1,
  UART_LCR_DLAB,
  UART_LSR,
  UART_LSR_BI,
  UART_LSR_DR,
  UART_LSR_FE,
  UART_LSR_FIFO_ERROR,
  UART_LSR_OE,
  UART_LSR_PE,
  UART_LSR_TEMT,
  UART_LSR_THRE,
  UART_MCR,
  UART_MCR_DTR,
  UART_MCR_LOOP,
  UART_MCR_OUT1,
  UART_MCR_OUT2,
  UART_MCR_RTS,
  UART_MSR,
  UART_MSR_CTS,
  UART_MSR_DCD,
  UART_MSR_DCTS,
  UART_MSR_DDCD,
  UART_MSR_DDSR,
  UART_MSR_DSR,
  UART_MSR_RI,
  UART_MSR_TERI,
  UART_RBR,
  UART_SCR,
  UART_THR,
} from "./uart16550.ts";

interface Rig {
  readonly uart: Uart16550;
  readonly pic: InterruptController;
  readonly sent: number[];
  read(offset: number): number;
  write(offset: number, value: number): void;
}

function rig(options: Partial<Uart16550Options> = {}): Rig {
  const pic = new InterruptController();
  const sent: number[] = [];
  const uart = new Uart16550({ interrupts: pic, sink: (byte) => sent.push(byte), ...options });
  return {
    uart,
    pic,
    sent,
    read: (offset) => uart.portRead(offset, 1),
    write: (offset, value) => uart.portWrite(offset, value, 1),
  };
}

/** FIFOs on, cleared, with the given trigger level bits. */
function enableFifos(r: Rig, trigger: number): void {
  r.write(UART_FCR, UART_FCR_ENABLE | UART_FCR_CLEAR_RX | UART_FCR_CLEAR_TX | trigger);
}

function feed(r: Rig, bytes: readonly number[]): void {
  for (const byte of bytes) assert(r.uart.receive(byte), `receive(${byte}) was refused`);
}

// --- Reset values and plain registers -------------------------------------------

Deno.test("Uart16550 resets to QEMU's register values", () => {
  const r = rig();
  assertEquals(r.read(UART_IER), 0);
  assertEquals(r.read(UART_IIR), 0x01);
  assertEquals(r.read(UART_LCR), 0);
  assertEquals(r.read(UART_MCR), 0);
  assertEquals(r.read(UART_LSR), 0x60);
  assertEquals(r.read(UART_MSR), 0xb0);
  assertEquals(r.read(UART_SCR), 0);
  r.write(UART_LCR, UART_LCR_DLAB);
  assertEquals(r.read(UART_DLL), 0x0c);
  assertEquals(r.read(UART_DLM), 0);
  assertEquals(r.uart.baudRate, 9600);
});

Deno.test("Uart16550.reset() restores power-on values and lowers the IRQ line", () => {
  const r = rig();
  r.write(UART_MCR, UART_MCR_OUT2);
  r.write(UART_IER, UART_IER_THRI);
  assert(r.pic.isHigh(IRQ_COM1));
  r.write(UART_SCR, 0x55);
  r.uart.reset();
  assert(!r.pic.isHigh(IRQ_COM1));
  assertEquals(r.read(UART_SCR), 0);
  assertEquals(r.read(UART_MCR), 0);
  assertEquals(r.uart.divisor, 0x0c);
});

Deno.test("Uart16550 IER keeps bits 0 to 3 and reads 0 in bits 4 to 7", () => {
  const r = rig();
  r.write(UART_IER, 0xff);
  assertEquals(r.read(UART_IER), 0x0f);
  r.write(UART_IER, 0x05);
  assertEquals(r.read(UART_IER), 0x05);
});

Deno.test("Uart16550 MCR keeps bits 0 to 4 and reads 0 in bits 5 to 7", () => {
  const r = rig();
  r.write(UART_MCR, 0xef);
  assertEquals(r.read(UART_MCR), 0x0f);
});

Deno.test("Uart16550 scratch register holds any byte", () => {
  const r = rig();
  const rng = new Xorshift32(7);
  for (let i = 0; i < 32; i++) {
    const value = rng.below(256);
    r.write(UART_SCR, value);
    assertEquals(r.read(UART_SCR), value);
  }
});

Deno.test("Uart16550 LCR holds all 8 bits and DLAB maps offsets 0 and 1 to the divisor latch", () => {
  const r = rig();
  r.write(UART_IER, 0x03);
  r.write(UART_LCR, UART_LCR_DLAB | UART_LCR_8N1);
  assertEquals(r.read(UART_LCR), 0x83);
  r.write(UART_DLL, 0x01);
  r.write(UART_DLM, 0x00);
  assertEquals(r.read(UART_DLL), 0x01);
  assertEquals(r.read(UART_DLM), 0x00);
  r.write(UART_DLM, 0x12);
  assertEquals(r.uart.divisor, 0x1201);
  r.write(UART_DLM, 0x00);
  assertEquals(r.sent, [], "a DLL write must not transmit");
  r.write(UART_LCR, UART_LCR_8N1);
  assertEquals(r.read(UART_IER), 0x03, "IER survives divisor writes");
  assertEquals(r.uart.divisor, 1);
  assertEquals(r.uart.baudRate, 115200);
});

Deno.test("Uart16550 ignores writes to LSR and MSR", () => {
  const r = rig();
  r.write(UART_LSR, 0x00);
  r.write(UART_MSR, 0x00);
  assertEquals(r.read(UART_LSR), 0x60);
  assertEquals(r.read(UART_MSR), 0xb0);
});

Deno.test("Uart16550 splits a 16-bit read into consecutive registers", () => {
  const r = rig();
  r.write(UART_LCR, UART_LCR_DLAB);
  assertEquals(r.uart.portRead(UART_DLL, 2), 0x000c);
  r.uart.portWrite(UART_DLL, 0x0203, 2);
  assertEquals(r.uart.divisor, 0x0203);
});

// --- Transmitter ----------------------------------------------------------------

Deno.test("Uart16550 sends THR writes to the sink at once and keeps THRE and TEMT set", () => {
  const r = rig();
  for (const byte of [0x48, 0x69, 0x0a]) r.write(UART_THR, byte);
  assertEquals(r.sent, [0x48, 0x69, 0x0a]);
  assertEquals(r.read(UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT), UART_LSR_THRE | UART_LSR_TEMT);
  assertEquals(r.uart.transmittedByteCount, 3);
});

Deno.test("Uart16550 transmits without CTS when there is no cable", () => {
  const r = rig({ lineState: "no-cable" });
  assertEquals(r.read(UART_MSR), 0x00);
  r.write(UART_THR, 0x41);
  assertEquals(r.sent, [0x41]);
});

Deno.test("Uart16550 paced transmitter drains one byte per character time", () => {
  const r = rig({ txPacing: "per-character-time" });
  enableFifos(r, UART_FCR_TRIGGER_1);
  for (let i = 0; i < 5; i++) r.write(UART_THR, 0x30 + i);
  // The first byte moved straight to the shift register; four wait in the FIFO.
  assertEquals(r.sent, []);
  assertEquals(r.read(UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT), 0);
  r.uart.advanceCharacterTimes(1);
  assertEquals(r.sent, [0x30]);
  r.uart.advanceCharacterTimes(3);
  assertEquals(r.sent, [0x30, 0x31, 0x32, 0x33]);
  // The last byte is in the shift register: THR empty, transmitter not.
  assertEquals(r.read(UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT), UART_LSR_THRE);
  r.uart.advanceCharacterTimes(10);
  assertEquals(r.sent, [0x30, 0x31, 0x32, 0x33, 0x34]);
  assertEquals(r.read(UART_LSR) & (UART_LSR_THRE | UART_LSR_TEMT), UART_LSR_THRE | UART_LSR_TEMT);
});

Deno.test("Uart16550 paced transmitter drops writes to a full TX FIFO", () => {
  const r = rig({ txPacing: "per-character-time" });
  enableFifos(r, UART_FCR_TRIGGER_1);
  for (let i = 0; i < 20; i++) r.write(UART_THR, i);
  r.uart.advanceCharacterTimes(100);
  // One byte in the shift register plus 16 in the FIFO; the last three were lost.
  assertEquals(r.sent, Array.from({ length: 17 }, (_, i) => i));
});

Deno.test("Uart16550 paced transmitter raises THRE when the TX FIFO empties", () => {
  const r = rig({ txPacing: "per-character-time" });
  enableFifos(r, UART_FCR_TRIGGER_1);
  r.write(UART_MCR, UART_MCR_OUT2);
  r.write(UART_IER, UART_IER_THRI);
  assertEquals(r.read(UART_IIR), 0xc2);
  r.write(UART_THR, 1);
  r.write(UART_THR, 2);
  r.write(UART_THR, 3);
  assertEquals(r.read(UART_IIR), 0xc1, "writing THR clears THRE");
  assert(!r.pic.isHigh(IRQ_COM1));
  r.uart.advanceCharacterTimes(1);
  assertEquals(r.read(UART_IIR), 0xc1, "one byte still waits in the FIFO");
  r.uart.advanceCharacterTimes(1);
  assert(r.pic.isHigh(IRQ_COM1));
  assertEquals(r.read(UART_IIR), 0xc2);
});

Deno.test("Uart16550.advanceCharacterTimes() rejects a negative or fractional count", () => {
  const r = rig();
  assertThrows(() => r.uart.advanceCharacterTimes(-1), RangeError, "-1");
  assertThrows(() => r.uart.advanceCharacterTimes(1.5), RangeError, "1.5");
});

// --- Loopback ---------------------------------------------------------------------

Deno.test("Uart16550 loopback sends transmitted bytes to the receiver, not the line", () => {
  const r = rig();
  enableFifos(r, UART_FCR_TRIGGER_1);
  r.write(UART_MCR, UART_MCR_LOOP);
  r.write(UART_THR, 0xae);
  r.write(UART_THR, 0x55);
  assertEquals(r.sent, []);
  assert(r.read(UART_LSR) & UART_LSR_DR);
  assertEquals(r.read(UART_RBR), 0xae);
  assertEquals(r.read(UART_RBR), 0x55);
  assertEquals(r.read(UART_LSR) & UART_LSR_DR, 0);
  r.write(UART_MCR, 0);
  r.write(UART_THR, 0x21);
  assertEquals(r.sent, [0x21]);
});

Deno.test("Uart16550 loopback disconnects the receiver from the host", () => {
  const r = rig();
  r.write(UART_MCR, UART_MCR_LOOP);
  assertEquals(r.uart.rxFreeSpace(), 0);
  assertEquals(r.uart.receive(0x41), false);
  r.uart.receiveFromLine(0x42);
  assertEquals(r.read(UART_LSR) & UART_LSR_DR, 0);
});

Deno.test("Uart16550 loopback drives CTS from RTS, DSR from DTR, RI from OUT1 and DCD from OUT2", () => {
  const r = rig();
  const cases: [number, number][] = [
    [UART_MCR_RTS, UART_MSR_CTS],
    [UART_MCR_DTR, UART_MSR_DSR],
    [UART_MCR_OUT1, UART_MSR_RI],
    [UART_MCR_OUT2, UART_MSR_DCD],
    [0, 0],
    [0x0f, 0xf0],
  ];
  for (const [mcr, msr] of cases) {
    r.write(UART_MCR, UART_MCR_LOOP | mcr);
    assertEquals(r.read(UART_MSR) & 0xf0, msr, `MCR ${mcr.toString(16)}`);
  }
  r.write(UART_MCR, 0);
  assertEquals(r.read(UART_MSR) & 0xf0, 0xb0, "leaving loopback shows the host lines again");
});

Deno.test("Uart16550 loopback receives with FIFOs off and overruns RBR", () => {
  const r = rig();
  r.write(UART_MCR, UART_MCR_LOOP);
  r.write(UART_THR, 1);
  r.write(UART_THR, 2);
  assertEquals(r.read(UART_LSR) & (UART_LSR_DR | UART_LSR_OE), UART_LSR_DR | UART_LSR_OE);
  assertEquals(r.read(UART_RBR), 2);
});

// --- Modem status -----------------------------------------------------------------

Deno.test("Uart16550 MSR delta bits follow line changes and clear on read", () => {
  const r = rig();
  r.uart.setLineState("no-cable");
  assertEquals(r.read(UART_MSR), UART_MSR_DCTS | UART_MSR_DDSR | UART_MSR_DDCD);
  assertEquals(r.read(UART_MSR), 0);
  r.uart.setModemInputs(UART_MSR_CTS);
  assertEquals(r.read(UART_MSR), UART_MSR_CTS | UART_MSR_DCTS);
  r.uart.setModemInputs(UART_MSR_CTS | UART_MSR_RI);
  assertEquals(r.read(UART_MSR), UART_MSR_CTS | UART_MSR_RI, "a rising RI sets no TERI");
  r.uart.setModemInputs(UART_MSR_CTS);
  assertEquals(r.read(UART_MSR), UART_MSR_CTS | UART_MSR_TERI, "a falling RI sets TERI");
  r.uart.setLineState("connected");
  assertEquals(r.read(UART_MSR), 0xb0 | UART_MSR_DDSR | UART_MSR_DDCD);
});

Deno.test("Uart16550 loopback MCR changes set MSR delta bits", () => {
  const r = rig({ lineState: "no-cable" });
  r.write(UART_MCR, UART_MCR_LOOP);
  r.write(UART_MCR, UART_MCR_LOOP | UART_MCR_RTS | UART_MCR_OUT1);
  assertEquals(r.read(UART_MSR), UART_MSR_CTS | UART_MSR_RI | UART_MSR_DCTS);
  r.write(UART_MCR, UART_MCR_LOOP | UART_MCR_RTS);
  assertEquals(r.read(UART_MSR), UART_MSR_CTS | UART_MSR_TERI);
});

// --- Receiver, FIFOs and overrun ---------------------------------------------------------

Deno.test("Uart16550 receive() returns false when RBR is full with FIFOs off", () => {
  const r = rig();
  assertEquals(r.uart.rxFreeSpace(), 1);
  assert(r.uart.receive(0x61));
  assertEquals(r.uart.rxFreeSpace(), 0);
  assertEquals(r.uart.receive(0x62), false);
  assertEquals(r.read(UART_LSR) & (UART_LSR_DR | UART_LSR_OE), UART_LSR_DR);
  assertEquals(r.read(UART_RBR), 0x61);
  assert(r.uart.receive(0x62));
  assertEquals(r.read(UART_RBR), 0x62);
});

Deno.test("Uart16550 receive() returns false on a full RX FIFO and keeps its contents", () => {
  const r = rig();
  enableFifos(r, UART_FCR_TRIGGER_14);
  const bytes = Array.from({ length: 16 }, (_, i) => 0x40 + i);
  feed(r, bytes);
  assertEquals(r.uart.rxFreeSpace(), 0);
  assertEquals(r.uart.receive(0x7f), false);
  assertEquals(r.read(UART_LSR) & UART_LSR_OE, 0, "a refused byte is no overrun");
  const got: number[] = [];
  while (r.read(UART_LSR) & UART_LSR_DR) got.push(r.read(UART_RBR));
  assertEquals(got, bytes);
});

Deno.test("Uart16550 overruns a full RX FIFO, sets OE and keeps the FIFO contents", () => {
  const r = rig();
  enableFifos(r, UART_FCR_TRIGGER_1);
  for (let i = 0; i < 18; i++) r.uart.receiveFromLine(i);
  const lsr = r.read(UART_LSR);
  assertEquals(lsr & (UART_LSR_DR | UART_LSR_OE), UART_LSR_DR | UART_LSR_OE);
  assertEquals(r.read(UART_LSR) & UART_LSR_OE, 0, "reading LSR clears OE");
  const got: number[] = [];
  while (r.read(UART_LSR) & UART_LSR_DR) got.push(r.read(UART_RBR));
  assertEquals(got, Array.from({ length: 16 }, (_, i) => i));
});

Deno.test("Uart16550 without FIFOs overruns when a byte arrives while DR is set", () => {
  const r = rig();
  r.uart.receiveFromLine(0x11);
  assertEquals(r.read(UART_LSR) & UART_LSR_OE, 0);
  r.uart.receiveFromLine(0x22);
  assertEquals(r.read(UART_LSR) & (UART_LSR_DR | UART_LSR_OE), UART_LSR_DR | UART_LSR_OE);
  assertEquals(r.read(UART_RBR), 0x22, "the new byte replaced the unread one");
  assertEquals(r.read(UART_LSR) & (UART_LSR_DR | UART_LSR_OE), 0);
});

Deno.test("Uart16550 raises received data at each FIFO trigger level 1, 4, 8 and 14", () => {
  const levels: [number, number][] = [
    [UART_FCR_TRIGGER_1, 1],
    [UART_FCR_TRIGGER_4, 4],
    [UART_FCR_TRIGGER_8, 8],
    [UART_FCR_TRIGGER_14, 14],
  ];
  for (const [bits, level] of levels) {
    const r = rig();
    enableFifos(r, bits);
    r.write(UART_IER, UART_IER_RDI);
    feed(r, Array.from({ length: level - 1 }, (_, i) => i));
    assertEquals(r.read(UART_IIR), 0xc1, `below trigger ${level}`);
    feed(r, [0xee]);
    assertEquals(r.read(UART_IIR), 0xc4, `at trigger ${level}`);
    // Reading one byte takes the FIFO below the trigger and clears the interrupt.
    r.read(UART_RBR);
    assertEquals(r.read(UART_IIR), 0xc1, `read below trigger ${level}`);
  }
});

Deno.test("Uart16550 receives a byte per RBR read without FIFOs and raises received data at once", () => {
  const r = rig();
  r.write(UART_IER, UART_IER_RDI);
  assert(r.uart.receive(0x31));
  assertEquals(r.read(UART_IIR), 0x04);
  assertEquals(r.read(UART_RBR), 0x31);
  assertEquals(r.read(UART_IIR), 0x01);
  assertEquals(r.read(UART_RBR), 0x31, "an empty RBR reads its last byte again");
});

Deno.test("Uart16550 reports parity and framing errors with the byte at the FIFO head", () => {
  const r = rig();
  enableFifos(r, UART_FCR_TRIGGER_14);
  r.uart.receiveFromLine(0x10);
  r.uart.receiveFromLine(0x11, "parity-error");
  r.uart.receiveFromLine(0x12, "framing-error");
  assertEquals(r.read(UART_LSR), UART_LSR_DR | UART_LSR_THRE | UART_LSR_TEMT | UART_LSR_FIFO_ERROR);
  assertEquals(r.read(UART_RBR), 0x10);
  assertEquals(r.read(UART_LSR) & (UART_LSR_PE | UART_LSR_FE), UART_LSR_PE);
  assertEquals(r.read(UART_RBR), 0x11);
  const lsr = r.read(UART_LSR);
  assertEquals(lsr & (UART_LSR_PE | UART_LSR_FE | UART_LSR_FIFO_ERROR), UART_LSR_FE | 0x80);
  assertEquals(r.read(UART_RBR), 0x12);
  // Bit 7 is cleared by the first LSR read that finds no error byte left (datasheet).
  assertEquals(r.read(UART_LSR) & UART_LSR_FIFO_ERROR, UART_LSR_FIFO_ERROR);
  assertEquals(r.read(UART_LSR) & UART_LSR_FIFO_ERROR, 0);
});

Deno.test("Uart16550 receives a break as a 0 byte with BI, cleared by reading LSR", () => {
  const r = rig();
  r.uart.receiveBreak();
  assertEquals(r.read(UART_LSR) & (UART_LSR_BI | UART_LSR_DR), UART_LSR_BI | UART_LSR_DR);
  assertEquals(r.read(UART_LSR) & UART_LSR_BI, 0);
  assertEquals(r.read(UART_RBR), 0);
});

// --- FCR -----------------------------------------------------------------------------

Deno.test("Uart16550 IIR bits 7:6 read 11 with FIFOs on and 00 with them off", () => {
  const r = rig();
  assertEquals(r.read(UART_IIR) & 0xc0, 0);
  r.write(UART_FCR, UART_FCR_ENABLE);
  assertEquals(r.read(UART_IIR) & 0xc0, 0xc0);
  r.write(UART_FCR, 0);
  assertEquals(r.read(UART_IIR) & 0xc0, 0);
});

Deno.test("Uart16550 FCR clear bits self-clear and clearing RX clears DR", () => {
  const r = rig();
  enableFifos(r, UART_FCR_TRIGGER_8);
  feed(r, [1, 2, 3]);
  r.write(UART_FCR, UART_FCR_ENABLE | UART_FCR_CLEAR_RX | UART_FCR_TRIGGER_8 | UART_FCR_DMA_MODE);
  assertEquals(r.read(UART_LSR) & UART_LSR_DR, 0);
  assertEquals(r.uart.saveState().fcr, UART_FCR_ENABLE | UART_FCR_TRIGGER_8 | UART_FCR_DMA_MODE);
  feed(r, [4]);
  assertEquals(r.read(UART_RBR), 4);
});

Deno.test("Uart16550 FCR clearing TX sets THRE", () => {
  const r = rig({ txPacing: "per-character-time" });
  enableFifos(r, UART_FCR_TRIGGER_1);
  for (let i = 0; i < 4; i++) r.write(UART_THR, i);
  assertEquals(r.read(UART_LSR) & UART_LSR_THRE, 0);
  r.write(UART_FCR, UART_FCR_ENABLE | UART_FCR_CLEAR_TX);
  assertEquals(r.read(UART_LSR) & UART_LSR_THRE, UART_LSR_THRE);
  r.uart.advanceCharacterTimes(10);
  assertEquals(r.sent, [0], "only the byte already shifting goes out");
});

Deno.test("Uart16550 changing the FIFO enable bit flushes both FIFOs", () => {
  const r = rig({ txPacing: "per-character-time" });
  r.write(UART_FCR, UART_FCR_ENABLE);
  feed(r, [1, 2, 3]);
  r.write(UART_THR, 9);
  r.write(UART_THR, 8);
  r.write(UART_FCR, 0);
  assertEquals(r.read(UART_LSR) & (UART_LSR_DR | UART_LSR_THRE), UART_LSR_THRE);
  feed(r, [4]);
  r.write(UART_FCR, UART_FCR_ENABLE);
  assertEquals(r.read(UART_LSR) & UART_LSR_DR, 0);
});

// --- Interrupt priorities and clearing rules ---------------------------------------------

Deno.test("Uart16550 IIR reports line status before received data", () => {
  const r = rig();
  enableFifos(r, UART_FCR_TRIGGER_1);
  r.write(UART_IER, UART_IER_RDI | UART_IER_RLSI);
  r.uart.receiveFromLine(0x41, "parity-error");
  assertEquals(r.read(UART_IIR), 0xc6);
  r.read(UART_LSR);
  assertEquals(r.read(UART_IIR), 0xc4, "reading LSR clears line status");
});

Deno.test("Uart16550 IIR reports overrun as a line status interrupt cleared by reading LSR", () => {
  const r = rig();
  r.write(UART_IER, UART_IER_RLSI);
  r.uart.receiveFromLine(1);
  assertEquals(r.read(UART_IIR), 0x01);
  r.uart.receiveFromLine(2);
  assertEquals(r.read(UART_IIR), 0x06);
  assertEquals(r.read(UART_IIR), 0x06, "reading IIR does not clear line status");
  r.read(UART_LSR);
  assertEquals(r.read(UART_IIR), 0x01);
});

Deno.test("Uart16550 IIR reports received data before a character timeout", () => {
  const r = rig();
  enableFifos(r, UART_FCR_TRIGGER_4);
  r.write(UART_IER, UART_IER_RDI);
  feed(r, [1, 2]);
  r.uart.advanceCharacterTimes(4);
  assertEquals(r.read(UART_IIR), 0xcc);
  feed(r, [3, 4]);
  assertEquals(r.read(UART_IIR), 0xc4, "trigger level reached outranks the timeout");
  r.read(UART_RBR);
  assertEquals(r.read(UART_IIR), 0xc1, "reading RBR clears both");
});

Deno.test("Uart16550 IIR reports a character timeout before THRE", () => {
  const r = rig();
  enableFifos(r, UART_FCR_TRIGGER_14);
  r.write(UART_IER, UART_IER_RDI | UART_IER_THRI);
  feed(r, [1]);
  r.uart.advanceCharacterTimes(4);
  assertEquals(r.read(UART_IIR), 0xcc);
  r.read(UART_RBR);
  assertEquals(r.read(UART_IIR), 0xc2);
});

Deno.test("Uart16550 IIR reports THRE before modem status", () => {
  const r = rig();
  r.write(UART_IER, UART_IER_THRI | UART_IER_MSI);
  r.uart.setModemInputs(0x30);
  assertEquals(r.read(UART_IIR), 0x02);
  assertEquals(r.read(UART_IIR), 0x00, "reading IIR cleared THRE");
  r.read(UART_MSR);
  assertEquals(r.read(UART_IIR), 0x01, "reading MSR cleared modem status");
});

Deno.test("Uart16550 THRE interrupt clears on a THR write and returns when THR empties", () => {
  const r = rig({ txPacing: "per-character-time" });
  r.write(UART_IER, UART_IER_THRI);
  assertEquals(r.read(UART_IIR), 0x02);
  r.write(UART_THR, 0x41); // moves to the shift register: THR is empty again at once
  assertEquals(r.read(UART_IIR), 0x02);
  r.write(UART_THR, 0x42); // waits in THR behind the shift register
  assertEquals(r.read(UART_IIR), 0x01);
  r.uart.advanceCharacterTimes(1);
  assertEquals(r.read(UART_IIR), 0x02);
});

Deno.test("Uart16550 setting IER.THRE while THR is empty raises THRE again", () => {
  const r = rig();
  r.write(UART_MCR, UART_MCR_OUT2);
  r.write(UART_IER, UART_IER_THRI);
  assertEquals(r.read(UART_IIR), 0x02);
  assertEquals(r.read(UART_IIR), 0x01);
  assert(!r.pic.isHigh(IRQ_COM1));
  r.write(UART_IER, 0);
  r.write(UART_IER, UART_IER_THRI);
  assert(r.pic.isHigh(IRQ_COM1));
  assertEquals(r.read(UART_IIR), 0x02);
});

Deno.test("Uart16550 signals a character timeout after 4 idle character times with data waiting", () => {
  const r = rig();
  enableFifos(r, UART_FCR_TRIGGER_14);
  r.write(UART_IER, UART_IER_RDI);
  r.uart.advanceCharacterTimes(10);
  assertEquals(r.read(UART_IIR), 0xc1, "no timeout with an empty FIFO");
  feed(r, [1, 2, 3]);
  r.uart.advanceCharacterTimes(3);
  assertEquals(r.read(UART_IIR), 0xc1);
  feed(r, [4]); // new data restarts the count
  r.uart.advanceCharacterTimes(3);
  assertEquals(r.read(UART_IIR), 0xc1);
  r.uart.advanceCharacterTimes(1);
  assertEquals(r.read(UART_IIR), 0xcc);
  assertEquals(r.read(UART_RBR), 1);
  assertEquals(r.read(UART_IIR), 0xc1, "reading RBR clears the timeout and restarts the count");
  r.uart.advanceCharacterTimes(4);
  assertEquals(r.read(UART_IIR), 0xcc);
  r.write(UART_FCR, UART_FCR_ENABLE | UART_FCR_CLEAR_RX | UART_FCR_TRIGGER_14);
  assertEquals(r.read(UART_IIR), 0xc1, "clearing RX clears the timeout");
});

Deno.test("Uart16550 masks every interrupt source with its IER bit", () => {
  const r = rig();
  enableFifos(r, UART_FCR_TRIGGER_1);
  r.uart.receiveFromLine(1, "framing-error");
  r.uart.setModemInputs(0);
  r.uart.advanceCharacterTimes(4);
  r.write(UART_IER, 0);
  assertEquals(r.read(UART_IIR), 0xc1);
  r.write(UART_IER, UART_IER_MSI);
  assertEquals(r.read(UART_IIR), 0xc0);
});

// --- IRQ line ----------------------------------------------------------------------------

Deno.test("Uart16550 raises IRQ 4 only while an enabled interrupt is pending and OUT2 is set", () => {
  const r = rig();
  r.write(UART_IER, UART_IER_RDI);
  assert(r.uart.receive(0x41));
  assert(!r.pic.isHigh(IRQ_COM1), "OUT2 clear gates the line");
  r.write(UART_MCR, UART_MCR_OUT2);
  assert(r.pic.isHigh(IRQ_COM1));
  assertEquals(r.pic.pendingIrq(), IRQ_COM1);
  r.read(UART_RBR);
  assert(!r.pic.isHigh(IRQ_COM1), "reading the byte lowers the line");
  assert(r.uart.receive(0x42));
  assert(r.pic.isHigh(IRQ_COM1));
  assertEquals(r.pic.raisedCount[IRQ_COM1], 2, "one rising edge per interrupt");
});

Deno.test("Uart16550 with irqGate always raises the line without OUT2, as QEMU", () => {
  const r = rig({ irqGate: "always" });
  r.write(UART_IER, UART_IER_THRI);
  assert(r.pic.isHigh(IRQ_COM1));
  r.read(UART_IIR);
  assert(!r.pic.isHigh(IRQ_COM1));
});

Deno.test("Uart16550 drives the IRQ line it is given", () => {
  const r = rig({ irq: 3 });
  r.write(UART_MCR, UART_MCR_OUT2);
  r.write(UART_IER, UART_IER_THRI);
  assert(r.pic.isHigh(3));
  assert(!r.pic.isHigh(IRQ_COM1));
});

Deno.test("Uart16550 instant THR writes pulse the THRE interrupt for each byte", () => {
  const r = rig();
  r.write(UART_MCR, UART_MCR_OUT2);
  r.write(UART_IER, UART_IER_THRI);
  r.read(UART_IIR);
  const before = r.pic.raisedCount[IRQ_COM1];
  r.write(UART_THR, 1);
  r.write(UART_THR, 2);
  assertEquals(r.pic.raisedCount[IRQ_COM1] - before, 2);
});

// --- Snapshots ---------------------------------------------------------------------------

Deno.test("Uart16550.saveState() round-trips through JSON into an equal device", () => {
  const r = rig({ txPacing: "per-character-time" });
  enableFifos(r, UART_FCR_TRIGGER_4);
  r.write(UART_LCR, UART_LCR_DLAB);
  r.write(UART_DLL, 3);
  r.write(UART_LCR, UART_LCR_8N1);
  r.write(UART_SCR, 0x5a);
  r.write(UART_MCR, UART_MCR_OUT2 | UART_MCR_RTS);
  r.write(UART_IER, UART_IER_RDI | UART_IER_RLSI);
  feed(r, [0x61, 0x62]);
  r.uart.receiveFromLine(0x63, "parity-error");
  r.write(UART_THR, 0x70);
  r.write(UART_THR, 0x71);
  r.uart.setModemInputs(UART_MSR_CTS);

  const state = r.uart.saveState();
  const copy = rig({ txPacing: "per-character-time" });
  copy.uart.restoreState(JSON.parse(JSON.stringify(state)));
  assertEquals(copy.uart.saveState(), state);
  assertEquals(copy.pic.isHigh(IRQ_COM1), r.pic.isHigh(IRQ_COM1));
  for (const d of [r, copy]) {
    assertEquals(d.read(UART_RBR), 0x61);
    assertEquals(d.read(UART_RBR), 0x62);
    assertEquals(d.read(UART_LSR) & UART_LSR_PE, UART_LSR_PE);
    assertEquals(d.read(UART_RBR), 0x63);
    assertEquals(d.read(UART_MSR), UART_MSR_CTS | UART_MSR_DDSR | UART_MSR_DDCD);
    d.uart.advanceCharacterTimes(2);
  }
  assertEquals(copy.sent, r.sent);
  assertEquals(copy.sent, [0x70, 0x71]);
  assertEquals(copy.uart.divisor, 3);
});

Deno.test("Uart16550.restoreState() raises the IRQ line when the state has a pending interrupt", () => {
  const r = rig();
  r.write(UART_MCR, UART_MCR_OUT2);
  r.write(UART_IER, UART_IER_THRI);
  const copy = rig();
  assert(!copy.pic.isHigh(IRQ_COM1));
  copy.uart.restoreState(r.uart.saveState());
  assert(copy.pic.isHigh(IRQ_COM1));
  copy.uart.restoreState(rig().uart.saveState());
  assert(!copy.pic.isHigh(IRQ_COM1));
});

Deno.test("Uart16550.restoreState() rejects a malformed state and leaves the device unchanged", () => {
  const r = rig();
  r.write(UART_SCR, 0x12);
  const good = r.uart.saveState();
  assertThrows(() => r.uart.restoreState({ ...good, lcr: 300 }), RangeError, "lcr");
  assertThrows(
    () => r.uart.restoreState({ ...good, rxBytes: [1, 2], rxErrorFlags: [0, 0] }),
    RangeError,
    "rxBytes",
  );
  assertThrows(() => r.uart.restoreState({ ...good, divisor: -1 }), RangeError, "divisor");
  assertEquals(r.read(UART_SCR), 0x12);
});

// --- The Linux 8250 autoconfig probe (docs/uart16550.md, steps 1 to 6) -------------------------------

Deno.test("Uart16550 passes the Linux 8250 autoconfig probe as a 16550A", () => {
  const r = rig();
  const { read, write } = r;

  // Step 1: IER test.
  const savedIer = read(UART_IER);
  write(UART_IER, 0);
  const ier0 = read(UART_IER) & 0x0f;
  write(UART_IER, 0x0f);
  const ier15 = read(UART_IER) & 0x0f;
  write(UART_IER, savedIer);
  assertEquals([ier0, ier15], [0, 0x0f]);

  // Step 2: loopback MSR test.
  const savedMcr = read(UART_MCR);
  const savedLcr = read(UART_LCR);
  write(UART_MCR, UART_MCR_LOOP | 0x0a);
  assertEquals(read(UART_MSR) & 0xf0, 0x90);
  write(UART_MCR, savedMcr);

  // Step 3: clear a would-be EFR, then FCR = 0x01 gives IIR >> 6 == 3.
  write(UART_LCR, 0xbf);
  write(2, 0);
  write(UART_LCR, 0);
  write(UART_FCR, UART_FCR_ENABLE);
  assertEquals(read(UART_IIR) >> 6, 3);

  // Step 4: offset 2 reads non-zero with LCR 0x80 and 0xBF (no EFR there).
  write(UART_LCR, 0x80);
  assert(read(2) !== 0, "EFR-looking zero at LCR 0x80");
  write(UART_LCR, 0xbf);
  assert(read(2) !== 0, "EFR-looking zero at LCR 0xBF");

  // Step 5a: IIR bit 4 does not follow MCR.LOOP (no National SuperIO EXCR1).
  write(UART_LCR, 0);
  const mcr = read(UART_MCR);
  write(UART_LCR, 0xe0);
  let excr1 = read(2);
  assertEquals((excr1 ^ mcr) & UART_MCR_LOOP, 0);
  write(UART_LCR, 0);
  write(UART_MCR, mcr ^ UART_MCR_LOOP);
  write(UART_LCR, 0xe0);
  excr1 = read(2);
  write(UART_LCR, 0);
  write(UART_MCR, mcr);
  assertEquals((excr1 ^ mcr) & UART_MCR_LOOP, 0, "IIR bit 4 followed LOOP");

  // Step 5b: IIR bit 5 stays 0 after FCR = 0x21, with and without DLAB (no TI16750).
  write(UART_FCR, 0x21);
  const iirPlain = read(UART_IIR) >> 5;
  write(UART_FCR, UART_FCR_ENABLE);
  write(UART_LCR, 0x80);
  write(UART_FCR, 0x21);
  const iirDlab = read(UART_IIR) >> 5;
  write(UART_FCR, UART_FCR_ENABLE);
  write(UART_LCR, 0);
  assertEquals([iirPlain, iirDlab], [6, 6]);

  // Step 5c: IER bit 6 (XScale UUE) does not stick.
  const ier = read(UART_IER);
  write(UART_IER, ier & ~0x40);
  assertEquals(read(UART_IER) & 0x40, 0);
  write(UART_IER, ier | 0x40);
  assertEquals(read(UART_IER) & 0x40, 0);
  write(UART_IER, ier);

  // Step 6: the FIFO size probe counts 16 bytes through loopback.
  const oldLcr = read(UART_LCR);
  write(UART_LCR, 0);
  const oldMcr = read(UART_MCR);
  write(UART_FCR, UART_FCR_ENABLE | UART_FCR_CLEAR_RX | UART_FCR_CLEAR_TX);
  write(UART_MCR, UART_MCR_LOOP);
  write(UART_LCR, 0x80);
  const oldDivisor = read(UART_DLL) | (read(UART_DLM) << 8);
  write(UART_DLL, 1);
  write(UART_DLM, 0);
  write(UART_LCR, 0x03);
  for (let i = 0; i < 256; i++) write(UART_THR, i);
  let count = 0;
  while ((read(UART_LSR) & UART_LSR_DR) && count < 256) {
    read(UART_RBR);
    count++;
  }
  assertEquals(count, 16);
  write(UART_FCR, 0);
  write(UART_MCR, oldMcr);
  write(UART_LCR, 0x80);
  write(UART_DLL, oldDivisor & 0xff);
  write(UART_DLM, oldDivisor >> 8);
  write(UART_LCR, oldLcr);
  write(UART_LCR, savedLcr);
  assertEquals(r.uart.divisor, 0x0c);
  assertEquals(r.sent, [], "the probe never reaches the line");
});
