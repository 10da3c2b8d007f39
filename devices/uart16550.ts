/**
 * A register-accurate 16550A UART, as wired to COM1 on a PC (ports 0x3F8 to
 * 0x3FF, IRQ 4).
 *
 * Sources: the National Semiconductor PC16550D datasheet, QEMU's
 * `hw/char/serial.c` (reset values, interrupt rules, loopback wiring) and the
 * probe in Linux's `8250_port.c`; the facts used are in `docs/uart16550.md`.
 *
 * Model choices:
 * - **IRQ gating by OUT2.** On a PC the UART's INTRPT pin reaches the 8259
 *   through a buffer enabled by MCR.OUT2, so a driver must set OUT2 to get
 *   interrupts. The line is high iff an enabled interrupt is pending and
 *   MCR.OUT2 is set (the MCR bit, also in loopback, so interrupts keep working
 *   there, as docs/uart16550.md describes). `irqGate: "always"` drops the gate, as QEMU
 *   does.
 * - **Time in character times.** The device has no clock; the machine calls
 *   {@linkcode Uart16550.advanceCharacterTimes}. That drives the character
 *   timeout (data waiting and no RX activity for 4 character times) and, with
 *   `txPacing: "per-character-time"`, the transmitter (one byte leaves the
 *   shift register per character time). With the default `"instant"` pacing a
 *   THR write goes through the TX FIFO to the line at once, so THRE and TEMT
 *   read as set again right after the write, as in QEMU.
 * - **Host flow control.** {@linkcode Uart16550.receive} refuses a byte (and
 *   keeps everything already received) when the RX FIFO, or RBR with FIFOs
 *   off, is full; {@linkcode Uart16550.receiveFromLine} models a sender that
 *   ignores flow control and so overruns.
 *
 * @module
 */

import {
  type AccessWidth,
  COM1_PORT_BASE,
  hex,
  type InterruptLines,
  IRQ_COM1,
  type PortDevice,
  type Tracer,
} from "../hal/mod.ts";

/** Number of I/O ports a 16550A decodes: offsets 0 to 7. */
export const UART_PORT_COUNT = 8;
/** Depth of each of the 16550A's FIFOs, in bytes (datasheet: 16-byte RX and TX FIFOs). */
export const UART_FIFO_SIZE_BYTES = 16;
/** The baud rate at divisor 1: the PC's 1.8432 MHz crystal divided by 16. */
export const UART_BASE_BAUD = 115200;
/** Divisor latch value after reset: 0x0C, 9600 baud (QEMU `serial_reset`). */
export const UART_RESET_DIVISOR = 0x0c;

// Register offsets from the base port (docs/uart16550.md, "Registers").
/** Offset 0, read, DLAB = 0: receiver buffer register. */
export const UART_RBR = 0;
/** Offset 0, write, DLAB = 0: transmitter holding register. */
export const UART_THR = 0;
/** Offset 0, DLAB = 1: divisor latch, low byte. */
export const UART_DLL = 0;
/** Offset 1, DLAB = 0: interrupt enable register. */
export const UART_IER = 1;
/** Offset 1, DLAB = 1: divisor latch, high byte. */
export const UART_DLM = 1;
/** Offset 2, read: interrupt identification register. */
export const UART_IIR = 2;
/** Offset 2, write: FIFO control register. */
export const UART_FCR = 2;
/** Offset 3: line control register. */
export const UART_LCR = 3;
/** Offset 4: modem control register. */
export const UART_MCR = 4;
/** Offset 5, read: line status register (writes are ignored). */
export const UART_LSR = 5;
/** Offset 6, read: modem status register (writes are ignored). */
export const UART_MSR = 6;
/** Offset 7: scratch register. */
export const UART_SCR = 7;

// IER bits (docs/uart16550.md: bits 4 to 7 read 0).
/** IER bit 0: received data available (and character timeout) interrupt. */
export const UART_IER_RDI = 0x01;
/** IER bit 1: transmitter holding register empty interrupt. */
export const UART_IER_THRI = 0x02;
/** IER bit 2: receiver line status interrupt. */
export const UART_IER_RLSI = 0x04;
/** IER bit 3: modem status interrupt. */
export const UART_IER_MSI = 0x08;
/** The IER bits a 16550A implements. */
export const UART_IER_MASK = 0x0f;

// IIR values (docs/uart16550.md, "Interrupts").
/** IIR bit 0: set when no interrupt is pending. */
export const UART_IIR_NO_INT = 0x01;
/** IIR bits 3:1: the interrupt identification. */
export const UART_IIR_ID_MASK = 0x0e;
/** IIR id: modem status (lowest priority); cleared by reading MSR. */
export const UART_IIR_MSI = 0x00;
/** IIR id: THR empty; cleared by reading IIR while it reports this, or writing THR. */
export const UART_IIR_THRI = 0x02;
/** IIR id: received data reached the trigger level; cleared by reading RBR below it. */
export const UART_IIR_RDI = 0x04;
/** IIR id: receiver line status (highest priority); cleared by reading LSR. */
export const UART_IIR_RLSI = 0x06;
/** IIR id: character timeout; cleared by reading RBR. */
export const UART_IIR_CTI = 0x0c;
/** IIR bits 7:6: both set while FIFOs are enabled. */
export const UART_IIR_FIFO_ENABLED = 0xc0;

// FCR bits (docs/uart16550.md).
/** FCR bit 0: enable both FIFOs; changing it flushes both. */
export const UART_FCR_ENABLE = 0x01;
/** FCR bit 1: clear the RX FIFO (self-clearing). */
export const UART_FCR_CLEAR_RX = 0x02;
/** FCR bit 2: clear the TX FIFO (self-clearing). */
export const UART_FCR_CLEAR_TX = 0x04;
/** FCR bit 3: DMA mode select (only changes the RXRDY/TXRDY pins, not modelled). */
export const UART_FCR_DMA_MODE = 0x08;
/** FCR bits 7:6: RX FIFO interrupt trigger level. */
export const UART_FCR_TRIGGER_MASK = 0xc0;
/** FCR trigger level: 1 byte. */
export const UART_FCR_TRIGGER_1 = 0x00;
/** FCR trigger level: 4 bytes. */
export const UART_FCR_TRIGGER_4 = 0x40;
/** FCR trigger level: 8 bytes. */
export const UART_FCR_TRIGGER_8 = 0x80;
/** FCR trigger level: 14 bytes. */
export const UART_FCR_TRIGGER_14 = 0xc0;

// LCR bits (docs/uart16550.md).
/** LCR bits 1:0: word length 5 + n bits. */
export const UART_LCR_WORD_LENGTH_MASK = 0x03;
/** LCR bit 2: two stop bits (1.5 with 5-bit words). */
export const UART_LCR_TWO_STOP_BITS = 0x04;
/** LCR bit 3: parity enable. */
export const UART_LCR_PARITY = 0x08;
/** LCR bit 4: even parity. */
export const UART_LCR_EVEN_PARITY = 0x10;
/** LCR bit 5: stick parity. */
export const UART_LCR_STICK_PARITY = 0x20;
/** LCR bit 6: break control (stored, not modelled on the line). */
export const UART_LCR_BREAK = 0x40;
/** LCR bit 7: divisor latch access bit. */
export const UART_LCR_DLAB = 0x80;
/** LCR value for 8 data bits, no parity, 1 stop bit. */
export const UART_LCR_8N1 = 0x03;

// MCR bits (docs/uart16550.md: bits 5 to 7 read 0).
/** MCR bit 0: data terminal ready. */
export const UART_MCR_DTR = 0x01;
/** MCR bit 1: request to send. */
export const UART_MCR_RTS = 0x02;
/** MCR bit 2: OUT1 (RI in loopback). */
export const UART_MCR_OUT1 = 0x04;
/** MCR bit 3: OUT2, which gates the IRQ line on a PC (DCD in loopback). */
export const UART_MCR_OUT2 = 0x08;
/** MCR bit 4: loopback (diagnostic) mode. */
export const UART_MCR_LOOP = 0x10;
/** The MCR bits a 16550A implements. */
export const UART_MCR_MASK = 0x1f;

// LSR bits (docs/uart16550.md).
/** LSR bit 0: data ready. */
export const UART_LSR_DR = 0x01;
/** LSR bit 1: overrun error (cleared by reading LSR). */
export const UART_LSR_OE = 0x02;
/** LSR bit 2: parity error of the byte at the head of the RX FIFO. */
export const UART_LSR_PE = 0x04;
/** LSR bit 3: framing error of the byte at the head of the RX FIFO. */
export const UART_LSR_FE = 0x08;
/** LSR bit 4: break interrupt (cleared by reading LSR). */
export const UART_LSR_BI = 0x10;
/** LSR bit 5: THR (or TX FIFO) empty. */
export const UART_LSR_THRE = 0x20;
/** LSR bit 6: transmitter empty (THR or TX FIFO and shift register). */
export const UART_LSR_TEMT = 0x40;
/** LSR bit 7: at least one parity, framing or break error in the RX FIFO. */
export const UART_LSR_FIFO_ERROR = 0x80;
/** The LSR bits that raise a receiver line status interrupt. */
export const UART_LSR_ERROR_BITS = UART_LSR_OE | UART_LSR_PE | UART_LSR_FE | UART_LSR_BI;

// MSR bits (docs/uart16550.md).
/** MSR bit 0: CTS changed since MSR was last read. */
export const UART_MSR_DCTS = 0x01;
/** MSR bit 1: DSR changed since MSR was last read. */
export const UART_MSR_DDSR = 0x02;
/** MSR bit 2: trailing edge of RI (RI went from 1 to 0). */
export const UART_MSR_TERI = 0x04;
/** MSR bit 3: DCD changed since MSR was last read. */
export const UART_MSR_DDCD = 0x08;
/** MSR bit 4: clear to send. */
export const UART_MSR_CTS = 0x10;
/** MSR bit 5: data set ready. */
export const UART_MSR_DSR = 0x20;
/** MSR bit 6: ring indicator. */
export const UART_MSR_RI = 0x40;
/** MSR bit 7: data carrier detect. */
export const UART_MSR_DCD = 0x80;
/** The MSR delta bits, cleared by reading MSR. */
export const UART_MSR_DELTA_MASK = 0x0f;
/** MSR with a cable and a live host: CTS, DSR and DCD (QEMU's default, 0xB0). */
export const UART_MSR_CONNECTED = UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD;

/** The character times without RX activity before a character timeout (datasheet). */
export const UART_TIMEOUT_CHARACTER_TIMES = 4;

/** How the transmitter moves bytes to the line. */
export type UartTxPacing = "instant" | "per-character-time";
/** The modem lines the host side drives: a connected peer, or no cable (all low). */
export type UartLineState = "connected" | "no-cable";
/** Whether MCR.OUT2 gates the IRQ line (a real PC) or not (QEMU). */
export type UartIrqGate = "out2" | "always";
/** What arrived with a byte on the line. */
export type UartReceiveCondition = "ok" | "parity-error" | "framing-error";

/** Options for {@linkcode Uart16550}. */
export interface Uart16550Options {
  /** The interrupt lines the UART drives (the 8259, or the board's ISA lines). */
  readonly interrupts: InterruptLines;
  /** The IRQ line; defaults to {@linkcode IRQ_COM1} (4). */
  readonly irq?: number;
  /** Receives each byte the UART puts on the line; defaults to discarding it. */
  readonly sink?: (byte: number) => void;
  /** Name used in messages; defaults to `uart16550@0x3f8`. */
  readonly name?: string;
  /** Transmitter timing; defaults to `"instant"`. */
  readonly txPacing?: UartTxPacing;
  /** Initial host modem lines; defaults to `"connected"` (MSR 0xB0). */
  readonly lineState?: UartLineState;
  /** IRQ gating; defaults to `"out2"` as on a PC. */
  readonly irqGate?: UartIrqGate;
}

/** A snapshot of a {@linkcode Uart16550}, plain JSON-able data. */
export interface Uart16550State {
  /** Interrupt enable register. */
  readonly ier: number;
  /** Line control register. */
  readonly lcr: number;
  /** Modem control register. */
  readonly mcr: number;
  /** The sticky FCR bits: enable, DMA mode, trigger level. */
  readonly fcr: number;
  /** Scratch register. */
  readonly scr: number;
  /** Divisor latch, 16 bits. */
  readonly divisor: number;
  /** The last byte read from RBR (returned again when RX is empty). */
  readonly rbr: number;
  /** RX FIFO contents, oldest first. */
  readonly rxBytes: readonly number[];
  /** The LSR error bits (PE, FE, BI) that arrived with each RX byte. */
  readonly rxErrorFlags: readonly number[];
  /** TX FIFO (or THR) contents, oldest first. */
  readonly txBytes: readonly number[];
  /** The byte in the transmitter shift register, or null when idle. */
  readonly shiftRegister: number | null;
  /** Latched LSR error bits (OE, PE, FE, BI) not yet read. */
  readonly lsrErrors: number;
  /** Whether LSR bit 7 is latched. */
  readonly isFifoErrorLatched: boolean;
  /** MSR delta bits not yet read. */
  readonly msrDeltas: number;
  /** The modem inputs the UART sees now (MSR bits 7:4). */
  readonly modemInputs: number;
  /** The modem inputs the host side drives (MSR bits 7:4), used outside loopback. */
  readonly hostModemInputs: number;
  /** Whether a THRE interrupt is pending. */
  readonly isThrInterruptPending: boolean;
  /** Whether a character timeout interrupt is pending. */
  readonly isTimeoutPending: boolean;
  /** Character times since the last RX activity. */
  readonly rxIdleCharTimes: number;
}

const FIFO_INDEX_MASK = UART_FIFO_SIZE_BYTES - 1;
const NO_SHIFT = -1;

/**
 * A 16550A UART on the port I/O bus.
 *
 * @example
 * ```ts
 * import { COM1_PORT_BASE, InterruptController } from "../hal/mod.ts";
 * import { Uart16550, UART_PORT_COUNT } from "./uart16550.ts";
 *
 * const output: number[] = [];
 * const uart = new Uart16550({
 *   interrupts: new InterruptController(),
 *   sink: (byte) => output.push(byte),
 * });
 * // A machine claims the ports: bus.claimPorts(COM1_PORT_BASE, UART_PORT_COUNT, uart)
 * console.assert(COM1_PORT_BASE === 0x3f8 && UART_PORT_COUNT === 8);
 * uart.portWrite(0, 0x41, 1); // THR
 * console.assert(output[0] === 0x41);
 * uart.receive(0x42); // host to guest
 * console.assert(uart.portRead(0, 1) === 0x42); // RBR
 * ```
 */
export class Uart16550 implements PortDevice {
  /** Short name used in messages. */
  readonly name: string;
  readonly #interrupts: InterruptLines;
  readonly #irq: number;
  readonly #sink: (byte: number) => void;
  readonly #isPaced: boolean;
  readonly #isGatedByOut2: boolean;

  #ier = 0;
  #lcr = 0;
  #mcr = 0;
  #fcr = 0;
  #scr = 0;
  #divisor = UART_RESET_DIVISOR;
  #rxTriggerBytes = 1;

  // RX FIFO: a ring of 16 bytes plus the error flags (PE/FE/BI) each arrived with.
  readonly #rxData = new Uint8Array(UART_FIFO_SIZE_BYTES);
  readonly #rxFlags = new Uint8Array(UART_FIFO_SIZE_BYTES);
  #rxHead = 0;
  #rxCount = 0;
  #rxErrorCount = 0;
  #rbr = 0;

  // TX FIFO (one slot, the THR, with FIFOs off) and the shift register.
  readonly #txData = new Uint8Array(UART_FIFO_SIZE_BYTES);
  #txHead = 0;
  #txCount = 0;
  #shiftRegister = NO_SHIFT;

  #lsrErrors = 0;
  #isFifoErrorLatched = false;
  #msrDeltas = 0;
  #modemInputs = 0;
  #hostModemInputs: number;

  #isThrInterruptPending = false;
  #isTimeoutPending = false;
  #rxIdleCharTimes = 0;
  #isIrqLineHigh = false;
  #transmittedByteCount = 0;
  #receivedByteCount = 0;
  #overrunCount = 0;
  /** Event tracing (`--trace uart`); undefined when off. */
  #tracer: Tracer | undefined;

  /** Creates a UART in its reset state; it drives `options.irq` on `options.interrupts`. */
  constructor(options: Uart16550Options) {
    this.name = options.name ?? `uart16550@${hex(COM1_PORT_BASE)}`;
    this.#interrupts = options.interrupts;
    this.#irq = options.irq ?? IRQ_COM1;
    this.#sink = options.sink ?? (() => {});
    this.#isPaced = (options.txPacing ?? "instant") === "per-character-time";
    this.#isGatedByOut2 = (options.irqGate ?? "out2") === "out2";
    this.#hostModemInputs = lineStateInputs(options.lineState ?? "connected");
    this.reset();
  }

  /**
   * Puts every register in its power-on state (QEMU's values: IER 0, IIR
   * 0x01, LCR 0, MCR 0, LSR 0x60, MSR 0xB0 with a cable, divisor 0x0C),
   * empties both FIFOs and lowers the IRQ line. The host modem lines (the
   * cable) are not part of the chip and stay as they are.
   */
  reset(): void {
    this.#ier = 0;
    this.#lcr = 0;
    this.#mcr = 0;
    this.#fcr = 0;
    this.#scr = 0;
    this.#divisor = UART_RESET_DIVISOR;
    this.#rxTriggerBytes = 1;
    this.#clearRx();
    this.#rbr = 0;
    this.#txHead = 0;
    this.#txCount = 0;
    this.#shiftRegister = NO_SHIFT;
    this.#lsrErrors = 0;
    this.#msrDeltas = 0;
    this.#modemInputs = this.#hostModemInputs;
    this.#isThrInterruptPending = false;
    this.#updateIrq();
  }

  /** The divisor latch (baud rate = {@linkcode UART_BASE_BAUD} / divisor). */
  get divisor(): number {
    return this.#divisor;
  }

  /** The baud rate the divisor selects, or 0 when the divisor is 0. */
  get baudRate(): number {
    return this.#divisor === 0 ? 0 : UART_BASE_BAUD / this.#divisor;
  }

  /** Bytes the transmitter has shifted out (to the sink or, in loopback, to RX). */
  get transmittedByteCount(): number {
    return this.#transmittedByteCount;
  }

  /** Bytes that arrived at the receiver (from the line or, in loopback, the transmitter). */
  get receivedByteCount(): number {
    return this.#receivedByteCount;
  }

  /** Bytes lost to receiver overruns. */
  get overrunCount(): number {
    return this.#overrunCount;
  }

  /**
   * Sets (or with `undefined` removes) the tracer that receives `uart`
   * events: one line per byte sent or received and per IRQ line change.
   *
   * @param tracer The tracer.
   */
  setTracer(tracer: Tracer | undefined): void {
    this.#tracer = tracer;
  }

  /** Handles an IN; wider accesses read consecutive registers, as the ISA bus splits them. */
  portRead(offset: number, width: AccessWidth): number {
    if (width === 1) return this.#readRegister(offset);
    let value = 0;
    for (let i = 0; i < width; i++) {
      const byte = offset + i < UART_PORT_COUNT ? this.#readRegister(offset + i) : 0xff;
      value |= byte << (8 * i);
    }
    return value >>> 0;
  }

  /** Handles an OUT; wider accesses write consecutive registers, low byte first. */
  portWrite(offset: number, value: number, width: AccessWidth): void {
    for (let i = 0; i < width && offset + i < UART_PORT_COUNT; i++) {
      this.#writeRegister(offset + i, (value >>> (8 * i)) & 0xff);
    }
  }

  /**
   * Host side: offers one byte arriving on the RX line, with flow control.
   * Returns false, and changes nothing, when the receiver has no room (RX
   * FIFO full, or RBR holding an unread byte with FIFOs off) or is cut off
   * from the line by loopback mode; the host should retry after the guest
   * has read.
   */
  receive(byte: number): boolean {
    if (this.rxFreeSpace() === 0) return false;
    this.#receiveByte(byte & 0xff, 0);
    this.#updateIrq();
    return true;
  }

  /**
   * Host side: a byte arrives on the RX line whether or not there is room, as
   * from a sender that ignores flow control. A full RX FIFO sets OE and keeps
   * its contents; with FIFOs off a byte arriving while DR is set overruns and
   * replaces RBR. Ignored in loopback mode, where the line is disconnected.
   */
  receiveFromLine(byte: number, condition: UartReceiveCondition = "ok"): void {
    if ((this.#mcr & UART_MCR_LOOP) !== 0) return;
    const flags = condition === "parity-error"
      ? UART_LSR_PE
      : condition === "framing-error"
      ? UART_LSR_FE
      : 0;
    this.#receiveByte(byte & 0xff, flags);
    this.#updateIrq();
  }

  /** Host side: a break condition on the RX line (a 0 byte with BI, as QEMU). */
  receiveBreak(): void {
    if ((this.#mcr & UART_MCR_LOOP) !== 0) return;
    this.#receiveByte(0, UART_LSR_BI);
    this.#updateIrq();
  }

  /**
   * Character times until the character-timeout interrupt would fire, or
   * Infinity when none is coming: it needs FIFOs on, data waiting in RX and
   * no timeout already pending (the datasheet's 4 character times).
   */
  characterTimesUntilTimeout(): number {
    const fifoEnabled = (this.#fcr & UART_FCR_ENABLE) !== 0;
    if (this.#rxCount === 0 || !fifoEnabled || this.#isTimeoutPending) return Infinity;
    return Math.max(1, UART_TIMEOUT_CHARACTER_TIMES - this.#rxIdleCharTimes);
  }

  /** Host side: how many bytes {@linkcode Uart16550.receive} would accept now. */
  rxFreeSpace(): number {
    if ((this.#mcr & UART_MCR_LOOP) !== 0) return 0;
    return this.#rxCapacity() - this.#rxCount;
  }

  /** Host side: sets the modem lines to a connected peer (MSR 0xB0) or no cable (all low). */
  setLineState(state: UartLineState): void {
    this.setModemInputs(lineStateInputs(state));
  }

  /**
   * Host side: drives the modem input lines, given as MSR bits 7:4 (CTS, DSR,
   * RI, DCD). Changes set the MSR delta bits (TERI only when RI falls). In
   * loopback the UART sees its own outputs instead until loopback ends.
   */
  setModemInputs(msrBits: number): void {
    this.#hostModemInputs = msrBits & 0xf0;
    this.#refreshModemInputs();
    this.#updateIrq();
  }

  /**
   * Advances the device's time by `characterTimes` (the time one frame takes
   * at the current line settings). Drives the character timeout and, when
   * paced, the transmitter. Throws RangeError unless it is a non-negative
   * safe integer.
   */
  advanceCharacterTimes(characterTimes: number): void {
    if (!Number.isSafeInteger(characterTimes) || characterTimes < 0) {
      throw new RangeError(
        `Invalid character time count ${String(characterTimes)}: expected a non-negative integer`,
      );
    }
    let remaining = characterTimes;
    // One step per character time only while the transmitter has work.
    while (remaining > 0 && this.#shiftRegister !== NO_SHIFT) {
      this.#tickRxIdle(1);
      this.#emit(this.#shiftRegister);
      this.#shiftRegister = NO_SHIFT;
      this.#loadShiftRegister();
      remaining--;
      this.#updateIrq();
    }
    if (remaining > 0) this.#tickRxIdle(remaining);
    this.#updateIrq();
  }

  /** Captures the device state as plain data (v86-style `get_state`). */
  saveState(): Uart16550State {
    const rxBytes: number[] = [];
    const rxErrorFlags: number[] = [];
    for (let i = 0; i < this.#rxCount; i++) {
      const index = (this.#rxHead + i) & FIFO_INDEX_MASK;
      rxBytes.push(this.#rxData[index]);
      rxErrorFlags.push(this.#rxFlags[index]);
    }
    const txBytes: number[] = [];
    for (let i = 0; i < this.#txCount; i++) {
      txBytes.push(this.#txData[(this.#txHead + i) & FIFO_INDEX_MASK]);
    }
    return {
      ier: this.#ier,
      lcr: this.#lcr,
      mcr: this.#mcr,
      fcr: this.#fcr,
      scr: this.#scr,
      divisor: this.#divisor,
      rbr: this.#rbr,
      rxBytes,
      rxErrorFlags,
      txBytes,
      shiftRegister: this.#shiftRegister === NO_SHIFT ? null : this.#shiftRegister,
      lsrErrors: this.#lsrErrors,
      isFifoErrorLatched: this.#isFifoErrorLatched,
      msrDeltas: this.#msrDeltas,
      modemInputs: this.#modemInputs,
      hostModemInputs: this.#hostModemInputs,
      isThrInterruptPending: this.#isThrInterruptPending,
      isTimeoutPending: this.#isTimeoutPending,
      rxIdleCharTimes: this.#rxIdleCharTimes,
    };
  }

  /**
   * Restores a state from {@linkcode Uart16550.saveState} and drives the IRQ
   * line to match it. Throws RangeError, naming the field, if the state is
   * malformed; the device is unchanged then.
   */
  restoreState(state: Uart16550State): void {
    const capacity = (byteField(state, "fcr") & UART_FCR_ENABLE) !== 0 ? UART_FIFO_SIZE_BYTES : 1;
    const rx = byteList(state.rxBytes, "rxBytes", capacity);
    const rxFlags = byteList(state.rxErrorFlags, "rxErrorFlags", capacity);
    if (rxFlags.length !== rx.length) {
      throw new RangeError("Invalid UART state: rxErrorFlags and rxBytes differ in length");
    }
    const tx = byteList(state.txBytes, "txBytes", capacity);
    if (!Number.isInteger(state.divisor) || state.divisor < 0 || state.divisor > 0xffff) {
      throw new RangeError(`Invalid UART state: divisor ${String(state.divisor)}`);
    }
    if (
      state.shiftRegister !== null &&
      !(Number.isInteger(state.shiftRegister) && state.shiftRegister >= 0 &&
        state.shiftRegister <= 0xff)
    ) {
      throw new RangeError(`Invalid UART state: shiftRegister ${String(state.shiftRegister)}`);
    }
    if (!Number.isSafeInteger(state.rxIdleCharTimes) || state.rxIdleCharTimes < 0) {
      throw new RangeError(`Invalid UART state: rxIdleCharTimes ${String(state.rxIdleCharTimes)}`);
    }
    const fields = ["ier", "lcr", "mcr", "scr", "rbr", "lsrErrors", "msrDeltas"] as const;
    for (const field of fields) byteField(state, field);
    byteField(state, "modemInputs");
    byteField(state, "hostModemInputs");

    this.#ier = state.ier & UART_IER_MASK;
    this.#lcr = state.lcr;
    this.#mcr = state.mcr & UART_MCR_MASK;
    this.#fcr = state.fcr & (UART_FCR_ENABLE | UART_FCR_DMA_MODE | UART_FCR_TRIGGER_MASK);
    this.#rxTriggerBytes = triggerBytes(this.#fcr);
    this.#scr = state.scr;
    this.#divisor = state.divisor;
    this.#rbr = state.rbr;
    this.#rxHead = 0;
    this.#rxCount = rx.length;
    this.#rxErrorCount = 0;
    for (let i = 0; i < rx.length; i++) {
      this.#rxData[i] = rx[i];
      this.#rxFlags[i] = rxFlags[i] & (UART_LSR_PE | UART_LSR_FE | UART_LSR_BI);
      if (this.#rxFlags[i] !== 0) this.#rxErrorCount++;
    }
    this.#txHead = 0;
    this.#txCount = tx.length;
    for (let i = 0; i < tx.length; i++) this.#txData[i] = tx[i];
    this.#shiftRegister = state.shiftRegister ?? NO_SHIFT;
    this.#lsrErrors = state.lsrErrors & UART_LSR_ERROR_BITS;
    this.#isFifoErrorLatched = state.isFifoErrorLatched === true;
    this.#msrDeltas = state.msrDeltas & UART_MSR_DELTA_MASK;
    this.#modemInputs = state.modemInputs & 0xf0;
    this.#hostModemInputs = state.hostModemInputs & 0xf0;
    this.#isThrInterruptPending = state.isThrInterruptPending === true;
    this.#isTimeoutPending = state.isTimeoutPending === true;
    this.#rxIdleCharTimes = state.rxIdleCharTimes;
    // Drive the line from scratch so the controller matches the restored state.
    this.#isIrqLineHigh = !this.#shouldIrqBeHigh();
    this.#updateIrq();
  }

  // --- Register access -----------------------------------------------------

  #readRegister(offset: number): number {
    const isDlab = (this.#lcr & UART_LCR_DLAB) !== 0;
    switch (offset) {
      case UART_RBR:
        return isDlab ? this.#divisor & 0xff : this.#readRbr();
      case UART_IER:
        return isDlab ? this.#divisor >>> 8 : this.#ier;
      case UART_IIR:
        return this.#readIir();
      case UART_LCR:
        return this.#lcr;
      case UART_MCR:
        return this.#mcr;
      case UART_LSR:
        return this.#readLsr();
      case UART_MSR:
        return this.#readMsr();
      case UART_SCR:
        return this.#scr;
      default:
        return 0xff;
    }
  }

  #writeRegister(offset: number, value: number): void {
    const isDlab = (this.#lcr & UART_LCR_DLAB) !== 0;
    switch (offset) {
      case UART_THR:
        if (isDlab) this.#divisor = (this.#divisor & 0xff00) | value;
        else this.#writeThr(value);
        return;
      case UART_IER:
        if (isDlab) this.#divisor = (this.#divisor & 0x00ff) | (value << 8);
        else this.#writeIer(value);
        return;
      case UART_FCR:
        this.#writeFcr(value);
        return;
      case UART_LCR:
        this.#lcr = value;
        return;
      case UART_MCR:
        this.#mcr = value & UART_MCR_MASK;
        this.#refreshModemInputs();
        this.#updateIrq();
        return;
      case UART_SCR:
        this.#scr = value;
        return;
      default:
        // LSR and MSR writes are ignored (docs/uart16550.md).
        return;
    }
  }

  #readRbr(): number {
    if (this.#rxCount > 0) {
      const index = this.#rxHead;
      const byte = this.#rxData[index];
      if (this.#rxFlags[index] !== 0) this.#rxErrorCount--;
      this.#rxHead = (index + 1) & FIFO_INDEX_MASK;
      this.#rxCount--;
      this.#rbr = byte;
      // The next byte's errors show in LSR once it reaches the head of the FIFO.
      if (this.#rxCount > 0) this.#lsrErrors |= this.#rxFlags[this.#rxHead];
    }
    this.#rxIdleCharTimes = 0;
    this.#isTimeoutPending = false;
    this.#updateIrq();
    return this.#rbr;
  }

  #readIir(): number {
    const id = this.#pendingInterruptId();
    if (id === UART_IIR_THRI) {
      this.#isThrInterruptPending = false;
      this.#updateIrq();
    }
    return id | (this.#isFifoEnabled() ? UART_IIR_FIFO_ENABLED : 0);
  }

  #readLsr(): number {
    const isTxEmpty = this.#txCount === 0;
    let value = this.#lsrErrors;
    if (this.#rxCount > 0) value |= UART_LSR_DR;
    if (isTxEmpty) value |= UART_LSR_THRE;
    if (isTxEmpty && this.#shiftRegister === NO_SHIFT) value |= UART_LSR_TEMT;
    if (this.#isFifoErrorLatched && this.#isFifoEnabled()) value |= UART_LSR_FIFO_ERROR;
    // Reading LSR clears the error bits; bit 7 only when no error byte remains.
    this.#lsrErrors = 0;
    if (this.#rxErrorCount === 0) this.#isFifoErrorLatched = false;
    this.#updateIrq();
    return value;
  }

  #readMsr(): number {
    const value = this.#modemInputs | this.#msrDeltas;
    this.#msrDeltas = 0;
    this.#updateIrq();
    return value;
  }

  #writeThr(value: number): void {
    if (this.#txCount < this.#txCapacity()) {
      this.#txData[(this.#txHead + this.#txCount) & FIFO_INDEX_MASK] = value;
      this.#txCount++;
    } else if (!this.#isFifoEnabled()) {
      // Without FIFOs a write to a full THR replaces the byte waiting there.
      this.#txData[this.#txHead] = value;
    }
    // With FIFOs on, a write to a full TX FIFO is lost (datasheet).
    this.#isThrInterruptPending = false;
    this.#updateIrq();
    if (this.#isPaced) {
      if (this.#shiftRegister === NO_SHIFT) this.#loadShiftRegister();
    } else {
      while (this.#txCount > 0) this.#emit(this.#popTx());
      this.#isThrInterruptPending = true;
    }
    this.#updateIrq();
  }

  #writeIer(value: number): void {
    this.#ier = value & UART_IER_MASK;
    // QEMU: any IER write while THR is empty makes THRE pending again, so
    // setting IER.THRI with THR empty raises the interrupt.
    if (this.#txCount === 0) this.#isThrInterruptPending = true;
    this.#updateIrq();
  }

  #writeFcr(value: number): void {
    let clear = value & (UART_FCR_CLEAR_RX | UART_FCR_CLEAR_TX);
    if (((value ^ this.#fcr) & UART_FCR_ENABLE) !== 0) {
      clear = UART_FCR_CLEAR_RX | UART_FCR_CLEAR_TX;
    }
    if ((clear & UART_FCR_CLEAR_RX) !== 0) this.#clearRx();
    if ((clear & UART_FCR_CLEAR_TX) !== 0 && this.#txCount > 0) {
      this.#txHead = 0;
      this.#txCount = 0;
      // THR just became empty: THRE sets, and so does its interrupt.
      this.#isThrInterruptPending = true;
    }
    this.#fcr = value & (UART_FCR_ENABLE | UART_FCR_DMA_MODE | UART_FCR_TRIGGER_MASK);
    this.#rxTriggerBytes = triggerBytes(this.#fcr);
    this.#updateIrq();
  }

  // --- Internals -------------------------------------------------------------

  #isFifoEnabled(): boolean {
    return (this.#fcr & UART_FCR_ENABLE) !== 0;
  }

  #rxCapacity(): number {
    return this.#isFifoEnabled() ? UART_FIFO_SIZE_BYTES : 1;
  }

  #txCapacity(): number {
    return this.#isFifoEnabled() ? UART_FIFO_SIZE_BYTES : 1;
  }

  #clearRx(): void {
    this.#rxHead = 0;
    this.#rxCount = 0;
    this.#rxErrorCount = 0;
    this.#isFifoErrorLatched = false;
    this.#isTimeoutPending = false;
    this.#rxIdleCharTimes = 0;
  }

  #receiveByte(byte: number, flags: number): void {
    this.#receivedByteCount++;
    const tracer = this.#tracer;
    if (tracer !== undefined && tracer.uart) this.#traceReceive(tracer, byte, flags);
    if (this.#rxCount < this.#rxCapacity()) {
      const index = (this.#rxHead + this.#rxCount) & FIFO_INDEX_MASK;
      this.#rxData[index] = byte;
      this.#rxFlags[index] = flags;
      this.#rxCount++;
      if (flags !== 0) {
        this.#rxErrorCount++;
        this.#isFifoErrorLatched = true;
      }
      if (this.#rxCount === 1) this.#lsrErrors |= flags;
    } else if (this.#isFifoEnabled()) {
      // A full FIFO keeps its contents; the byte in the shift register is lost.
      this.#lsrErrors |= UART_LSR_OE;
      this.#overrunCount++;
    } else {
      // Without FIFOs the new byte overwrites the unread one in RBR.
      const index = this.#rxHead;
      if (this.#rxFlags[index] !== 0) this.#rxErrorCount--;
      if (flags !== 0) this.#rxErrorCount++;
      this.#rxData[index] = byte;
      this.#rxFlags[index] = flags;
      this.#lsrErrors |= UART_LSR_OE | flags;
      this.#overrunCount++;
    }
    this.#rxIdleCharTimes = 0;
  }

  #tickRxIdle(characterTimes: number): void {
    if (this.#rxCount === 0 || !this.#isFifoEnabled()) return;
    this.#rxIdleCharTimes = Math.min(
      this.#rxIdleCharTimes + characterTimes,
      UART_TIMEOUT_CHARACTER_TIMES,
    );
    if (this.#rxIdleCharTimes >= UART_TIMEOUT_CHARACTER_TIMES) this.#isTimeoutPending = true;
  }

  #popTx(): number {
    const byte = this.#txData[this.#txHead];
    this.#txHead = (this.#txHead + 1) & FIFO_INDEX_MASK;
    this.#txCount--;
    return byte;
  }

  /** Paced mode: moves the next byte from THR/TX FIFO into the shift register. */
  #loadShiftRegister(): void {
    if (this.#txCount === 0) return;
    this.#shiftRegister = this.#popTx();
    if (this.#txCount === 0) this.#isThrInterruptPending = true;
  }

  /** A byte leaves the transmitter: to the line, or back to RX in loopback. */
  #emit(byte: number): void {
    this.#transmittedByteCount++;
    const tracer = this.#tracer;
    if (tracer !== undefined && tracer.uart) {
      tracer.emit(
        "uart",
        `${this.name} tx ${describeByte(byte)}` +
          ((this.#mcr & UART_MCR_LOOP) !== 0 ? " (loopback)" : ""),
      );
    }
    if ((this.#mcr & UART_MCR_LOOP) !== 0) this.#receiveByte(byte, 0);
    else this.#sink(byte);
  }

  #refreshModemInputs(): void {
    // In loopback RTS drives CTS, DTR drives DSR, OUT1 drives RI, OUT2 drives DCD.
    const mcr = this.#mcr;
    const inputs = (mcr & UART_MCR_LOOP) !== 0
      ? ((mcr & UART_MCR_RTS) << 3) | ((mcr & UART_MCR_DTR) << 5) |
        ((mcr & (UART_MCR_OUT1 | UART_MCR_OUT2)) << 4)
      : this.#hostModemInputs;
    const changed = inputs ^ this.#modemInputs;
    if (changed === 0) return;
    // CTS, DSR, DCD (bits 4, 5, 7) map onto DCTS, DDSR, DDCD (bits 0, 1, 3).
    this.#msrDeltas |= (changed >>> 4) & (UART_MSR_DCTS | UART_MSR_DDSR | UART_MSR_DDCD);
    if ((this.#modemInputs & UART_MSR_RI) !== 0 && (inputs & UART_MSR_RI) === 0) {
      this.#msrDeltas |= UART_MSR_TERI;
    }
    this.#modemInputs = inputs;
  }

  #pendingInterruptId(): number {
    const ier = this.#ier;
    if ((ier & UART_IER_RLSI) !== 0 && (this.#lsrErrors & UART_LSR_ERROR_BITS) !== 0) {
      return UART_IIR_RLSI;
    }
    if ((ier & UART_IER_RDI) !== 0) {
      if (
        this.#rxCount > 0 && (!this.#isFifoEnabled() || this.#rxCount >= this.#rxTriggerBytes)
      ) {
        return UART_IIR_RDI;
      }
      // QEMU: IER.RDI also masks the timeout, as observed on real hardware.
      if (this.#isTimeoutPending) return UART_IIR_CTI;
    }
    if ((ier & UART_IER_THRI) !== 0 && this.#isThrInterruptPending) return UART_IIR_THRI;
    if ((ier & UART_IER_MSI) !== 0 && this.#msrDeltas !== 0) return UART_IIR_MSI;
    return UART_IIR_NO_INT;
  }

  #shouldIrqBeHigh(): boolean {
    if (this.#isGatedByOut2 && (this.#mcr & UART_MCR_OUT2) === 0) return false;
    return this.#pendingInterruptId() !== UART_IIR_NO_INT;
  }

  #updateIrq(): void {
    const isHigh = this.#shouldIrqBeHigh();
    if (isHigh === this.#isIrqLineHigh) return;
    this.#isIrqLineHigh = isHigh;
    const tracer = this.#tracer;
    if (tracer !== undefined && tracer.uart) {
      tracer.emit(
        "uart",
        isHigh
          ? `${this.name} raise IRQ ${this.#irq} (${IIR_NAMES[this.#pendingInterruptId() >>> 1]})`
          : `${this.name} lower IRQ ${this.#irq}`,
      );
    }
    if (isHigh) this.#interrupts.raise(this.#irq);
    else this.#interrupts.lower(this.#irq);
  }

  /** The trace line of a byte arriving at the receiver. */
  #traceReceive(tracer: Tracer, byte: number, flags: number): void {
    const isFull = this.#rxCount >= this.#rxCapacity();
    const notes = [];
    if ((this.#mcr & UART_MCR_LOOP) !== 0) notes.push("loopback");
    if ((flags & UART_LSR_PE) !== 0) notes.push("parity error");
    if ((flags & UART_LSR_FE) !== 0) notes.push("framing error");
    if ((flags & UART_LSR_BI) !== 0) notes.push("break");
    if (isFull) notes.push(this.#isFifoEnabled() ? "overrun, byte lost" : "overrun, RBR replaced");
    tracer.emit(
      "uart",
      `${this.name} rx ${describeByte(byte)}${notes.length > 0 ? ` (${notes.join(", ")})` : ""}`,
    );
  }
}

/** Interrupt names by IIR id / 2, for trace lines. */
const IIR_NAMES: readonly string[] = [
  "modem status",
  "THR empty",
  "received data",
  "line status",
  "unknown",
  "unknown",
  "character timeout",
  "unknown",
];

/** A byte for trace lines: `0x41 'A'`, `0x0a '\n'`, `0xff`. */
function describeByte(byte: number): string {
  const code = "0x" + byte.toString(16).padStart(2, "0");
  if (byte >= 0x20 && byte < 0x7f) return `${code} '${String.fromCharCode(byte)}'`;
  if (byte === 0x0a) return `${code} '\\n'`;
  if (byte === 0x0d) return `${code} '\\r'`;
  if (byte === 0x09) return `${code} '\\t'`;
  return code;
}

function lineStateInputs(state: UartLineState): number {
  return state === "connected" ? UART_MSR_CONNECTED : 0;
}

function triggerBytes(fcr: number): number {
  switch (fcr & UART_FCR_TRIGGER_MASK) {
    case UART_FCR_TRIGGER_1:
      return 1;
    case UART_FCR_TRIGGER_4:
      return 4;
    case UART_FCR_TRIGGER_8:
      return 8;
    default:
      return 14;
  }
}

function isByte(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 0xff;
}

function byteField<K extends keyof Uart16550State>(state: Uart16550State, field: K): number {
  const value: unknown = state[field];
  if (!isByte(value)) {
    throw new RangeError(`Invalid UART state: ${field} ${String(value)} is not a byte`);
  }
  return value;
}

function byteList(value: unknown, field: string, maxLength: number): readonly number[] {
  if (!Array.isArray(value) || value.length > maxLength || !value.every(isByte)) {
    throw new RangeError(
      `Invalid UART state: ${field} must be at most ${maxLength} bytes`,
    );
  }
  return value;
}
