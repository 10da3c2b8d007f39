/**
 * The kernel's serial driver for a 16550A UART, through port I/O only.
 *
 * Transmission polls LSR.THRE and then fills up to 16 bytes (the TX FIFO
 * depth) per THRE, as Linux's `serial8250_tx_chars` does. It never waits for
 * CTS: with no cable attached CTS stays low forever, which is how the
 * `uart_16550` crate's bug #65 hangs a kernel. Every wait is bounded, so a
 * stuck or absent transmitter costs dropped bytes, never a hang.
 *
 * Reception is interrupt driven. The PC's interrupt controller is
 * edge-triggered, so the handler loops on IIR until it reports no interrupt,
 * draining RBR while LSR.DR is set; the UART's IRQ line then falls and the
 * next byte makes a fresh edge.
 *
 * @module
 */

import { type CpuContext, hex, IRQ_COM1 } from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";
import type { IsaIrqAttacher } from "./isa_irq.ts";
import {
  DLL,
  DLM,
  FCR,
  FCR_CLEAR_RX,
  FCR_CLEAR_TX,
  FCR_ENABLE,
  FCR_TRIGGER_14,
  IER,
  IER_RDI,
  IER_RLSI,
  IIR,
  IIR_FIFO_BITS,
  IIR_ID_MASK,
  IIR_MSI,
  IIR_NO_INT,
  LCR,
  LCR_8N1,
  LCR_DLAB,
  LSR,
  LSR_DR,
  LSR_OE,
  LSR_THRE,
  MCR,
  MCR_DTR,
  MCR_LOOP,
  MCR_OUT1,
  MCR_OUT2,
  MCR_RTS,
  MSR,
  RBR,
  SCR,
  THR,
} from "./_uart_registers.ts";

/** COM1's base port on a PC. */
export const SERIAL_COM1_PORT = 0x3f8;
/** Bytes written per THRE with working FIFOs: the 16550A's TX FIFO depth. */
export const SERIAL_TX_LOAD_BYTES = 16;
/** Default bound on LSR polls while waiting for THRE or DR. */
export const SERIAL_DEFAULT_MAX_POLLS = 100_000;

const SCRATCH_PATTERNS = [0xa5, 0x5a] as const;
const LOOPBACK_TEST_BYTE = 0xae;
// Bounds for the interrupt handler, as Linux's PASS_LIMIT and rx max_count.
const MAX_IIR_PASSES = 64;
const MAX_RX_BYTES_PER_PASS = 256;

/** Options for {@linkcode SerialPort}. */
export interface SerialPortOptions {
  /** The UART's first port; defaults to COM1, {@linkcode SERIAL_COM1_PORT}. */
  readonly basePort?: number;
  /** The UART's IRQ line; defaults to 4 (COM1). */
  readonly irq?: number;
  /** Baud rate divisor (115200 / baud); defaults to 1, 115200 baud. */
  readonly divisor?: number;
  /**
   * How many LSR polls to spend waiting for the transmitter (THRE) or the
   * loopback byte (DR) before giving up; defaults to
   * {@linkcode SERIAL_DEFAULT_MAX_POLLS}.
   */
  readonly maxPolls?: number;
}

/**
 * A 16550A serial port driven through port I/O.
 *
 * @example
 * ```ts
 * import { CpuContext, DeviceBus, InterruptController, PhysicalMemory } from "../../hal/mod.ts";
 * import { SerialPort } from "./serial_port.ts";
 *
 * const bus = new DeviceBus(PhysicalMemory.contiguous(4096));
 * const cpu = new CpuContext(bus, new InterruptController());
 * const serial = new SerialPort(cpu); // COM1, 115200 baud
 * try {
 *   serial.init(); // throws KernelError "DeviceNotFound": this bus has no UART
 * } catch (error) {
 *   console.assert(error instanceof Error && error.name === "KernelError");
 * }
 * ```
 */
export class SerialPort {
  readonly #cpu: CpuContext;
  readonly #basePort: number;
  readonly #irq: number;
  #interrupts: IsaIrqAttacher | undefined;
  readonly #divisor: number;
  readonly #maxPolls: number;
  #txLoadBytes = 1;
  #txFreeBytes = 0;
  #isTransmitterStuck = false;
  #isCallAborted = false;
  #callWrittenBytes = 0;
  #callDroppedBytes = 0;
  #onByte: ((byte: number) => void) | undefined = undefined;
  #bytesWritten = 0;
  #bytesReceived = 0;
  #overruns = 0;
  #droppedBytes = 0;

  /**
   * Creates a driver for the UART at `options.basePort`; touches no hardware
   * until {@linkcode SerialPort.init}. Throws RangeError for a divisor
   * outside 1..65535 or a poll bound below 1.
   */
  constructor(cpu: CpuContext, options: SerialPortOptions = {}) {
    this.#cpu = cpu;
    this.#basePort = options.basePort ?? SERIAL_COM1_PORT;
    this.#irq = options.irq ?? IRQ_COM1;
    this.#divisor = options.divisor ?? 1;
    this.#maxPolls = options.maxPolls ?? SERIAL_DEFAULT_MAX_POLLS;
    if (!Number.isInteger(this.#divisor) || this.#divisor < 1 || this.#divisor > 0xffff) {
      throw new RangeError(`Invalid baud divisor ${this.#divisor}: expected 1 to 65535`);
    }
    if (!Number.isSafeInteger(this.#maxPolls) || this.#maxPolls < 1) {
      throw new RangeError(`Invalid poll bound ${this.#maxPolls}: expected a positive integer`);
    }
  }

  /** Bytes handed to the UART's THR. */
  get bytesWritten(): number {
    return this.#bytesWritten;
  }

  /** Bytes read from RBR by the interrupt handler. */
  get bytesReceived(): number {
    return this.#bytesReceived;
  }

  /** Receiver overruns (LSR.OE) seen: each means at least one byte was lost. */
  get overruns(): number {
    return this.#overruns;
  }

  /** Bytes not sent because the transmitter never became ready. */
  get droppedBytes(): number {
    return this.#droppedBytes;
  }

  /**
   * Initialises the UART: checks the scratch register, disables its
   * interrupts, sets the divisor and 8N1, enables and clears the FIFOs
   * (RX trigger 14 bytes), runs a loopback self-test and then selects normal
   * mode with DTR, RTS and OUT2 (OUT2 lets the IRQ reach the interrupt
   * controller on a PC).
   *
   * @throws {KernelError} `DeviceNotFound` if the scratch register does not
   * hold a value or the loopback byte does not come back; the UART is left
   * with interrupts disabled.
   */
  init(): void {
    for (const pattern of SCRATCH_PATTERNS) {
      this.#write(SCR, pattern);
      const readBack = this.#read(SCR);
      if (readBack !== pattern) {
        throw new KernelError(
          "DeviceNotFound",
          `No UART at port ${hex(this.#basePort)}: scratch register read back ` +
            `${hex(readBack)} after writing ${hex(pattern)}`,
        );
      }
    }
    this.#write(IER, 0); // no interrupts while configuring
    this.#write(LCR, LCR_DLAB); // divisor latch on offsets 0 and 1
    this.#write(DLL, this.#divisor & 0xff);
    this.#write(DLM, this.#divisor >>> 8);
    this.#write(LCR, LCR_8N1); // 8N1, divisor latch off
    this.#write(FCR, FCR_ENABLE | FCR_CLEAR_RX | FCR_CLEAR_TX | FCR_TRIGGER_14);
    // Trust the FIFO only if IIR says it works; otherwise send a byte per THRE.
    this.#txLoadBytes = (this.#read(IIR) & IIR_FIFO_BITS) === IIR_FIFO_BITS
      ? SERIAL_TX_LOAD_BYTES
      : 1;
    this.#loopbackSelfTest();
    this.#write(MCR, MCR_DTR | MCR_RTS | MCR_OUT2); // normal mode, IRQ gate open
    // Clear status the loopback test latched (MSR deltas, LSR errors).
    this.#read(LSR);
    this.#read(MSR);
    this.#txFreeBytes = 0;
    this.#isTransmitterStuck = false;
  }

  /**
   * Writes `bytes` in order, waiting (bounded) for THRE and then loading up
   * to 16 bytes per THRE. If the transmitter does not become ready within
   * the poll bound, the rest of `bytes` is counted in
   * {@linkcode SerialPort.droppedBytes} and the call returns; later calls
   * poll only once until the transmitter recovers, so a dead UART cannot
   * slow the kernel down. CTS is not consulted. Interrupts are disabled for
   * the duration (as Linux's console lock does) so a handler that writes,
   * such as an echo, cannot overfill the TX FIFO between THRE and the loads.
   *
   * @returns The number of bytes handed to the UART.
   */
  write(bytes: Uint8Array): number {
    const wereInterruptsEnabled = this.#beginWrite();
    for (let i = 0; i < bytes.length; i++) this.#putByte(bytes[i]);
    return this.#endWrite(wereInterruptsEnabled);
  }

  /**
   * Writes a string as UTF-8 (lone surrogates become U+FFFD, as
   * `TextEncoder` does), with the behaviour of {@linkcode SerialPort.write}
   * and without allocating.
   *
   * @returns The number of bytes handed to the UART.
   */
  writeString(text: string): number {
    const wereInterruptsEnabled = this.#beginWrite();
    for (let i = 0; i < text.length; i++) {
      let codePoint = text.codePointAt(i) ?? 0;
      if (codePoint > 0xffff) i++; // a surrogate pair takes two UTF-16 units
      else if (codePoint >= 0xd800 && codePoint <= 0xdfff) codePoint = 0xfffd;
      if (codePoint < 0x80) {
        this.#putByte(codePoint);
      } else if (codePoint < 0x800) {
        this.#putByte(0xc0 | (codePoint >>> 6));
        this.#putByte(0x80 | (codePoint & 0x3f));
      } else if (codePoint < 0x10000) {
        this.#putByte(0xe0 | (codePoint >>> 12));
        this.#putByte(0x80 | ((codePoint >>> 6) & 0x3f));
        this.#putByte(0x80 | (codePoint & 0x3f));
      } else {
        this.#putByte(0xf0 | (codePoint >>> 18));
        this.#putByte(0x80 | ((codePoint >>> 12) & 0x3f));
        this.#putByte(0x80 | ((codePoint >>> 6) & 0x3f));
        this.#putByte(0x80 | (codePoint & 0x3f));
      }
    }
    return this.#endWrite(wereInterruptsEnabled);
  }

  /**
   * Attaches the IRQ handler through the connected interrupt routing and
   * enables the received-data and line-status interrupts. `onByte` is
   * called once per received byte, in order, from the interrupt handler
   * (interrupts disabled). Bytes reach the kernel once the CPU has
   * interrupts enabled (`sti`).
   *
   * @throws {KernelError} `InterruptsNotRouted` before {@linkcode SerialPort.connectInterrupts}.
   */
  enableReceiveInterrupts(onByte: (byte: number) => void): void {
    const interrupts = this.#interrupts;
    if (interrupts === undefined) {
      throw new KernelError(
        "InterruptsNotRouted",
        `Serial port ${hex(this.#basePort)} cannot take interrupts: no IRQ routing connected`,
      );
    }
    this.#onByte = onByte;
    interrupts.attachIsaIrq(this.#irq, "COM1", this.#handleInterrupt);
    this.#write(IER, IER_RDI | IER_RLSI);
  }

  /** Disables the UART's interrupts and detaches its IRQ. */
  disableReceiveInterrupts(): void {
    this.#write(IER, 0);
    this.#interrupts?.detachIsaIrq(this.#irq);
    this.#onByte = undefined;
  }

  /**
   * Connects the kernel's interrupt routing (8259 or I/O APIC), which
   * {@linkcode SerialPort.enableReceiveInterrupts} attaches the IRQ through.
   */
  connectInterrupts(interrupts: IsaIrqAttacher): void {
    this.#interrupts = interrupts;
  }

  /** The IRQ handler: serve every cause IIR reports until it says none. */
  readonly #handleInterrupt = (): void => {
    for (let pass = 0; pass < MAX_IIR_PASSES; pass++) {
      const iir = this.#read(IIR);
      if ((iir & IIR_NO_INT) !== 0) return;
      const id = iir & IIR_ID_MASK;
      if (id === IIR_MSI) {
        this.#read(MSR); // clears the modem status interrupt
      } else {
        // Line status, received data and timeout are all served by reading
        // LSR (which clears line status) and draining RBR. A THRE id was
        // already cleared by reading IIR.
        this.#drainReceiver();
      }
    }
  };

  #drainReceiver(): void {
    for (let count = 0; count < MAX_RX_BYTES_PER_PASS; count++) {
      const lsr = this.#read(LSR);
      if ((lsr & LSR_OE) !== 0) this.#overruns++;
      if ((lsr & LSR_DR) === 0) return;
      const byte = this.#read(RBR);
      this.#bytesReceived++;
      this.#onByte?.(byte);
    }
  }

  #loopbackSelfTest(): void {
    this.#write(MCR, MCR_LOOP | MCR_OUT1 | MCR_OUT2 | MCR_RTS);
    this.#write(THR, LOOPBACK_TEST_BYTE);
    const isBack = this.#poll(LSR_DR, this.#maxPolls);
    const readBack = isBack ? this.#read(RBR) : -1;
    if (readBack === LOOPBACK_TEST_BYTE) return;
    this.#write(MCR, 0);
    throw new KernelError(
      "DeviceNotFound",
      `Serial port ${hex(this.#basePort)} failed its loopback self-test: sent ` +
        `${hex(LOOPBACK_TEST_BYTE)}, ` +
        (isBack ? `read back ${hex(readBack)}` : `nothing came back`),
    );
  }

  /** Starts a write call: interrupts off, per-call counters reset. */
  #beginWrite(): boolean {
    const wereInterruptsEnabled = this.#cpu.interruptsEnabled;
    this.#cpu.cli();
    this.#callWrittenBytes = 0;
    this.#callDroppedBytes = 0;
    this.#isCallAborted = false;
    return wereInterruptsEnabled;
  }

  /** Ends a write call: updates the statistics and restores the interrupt flag. */
  #endWrite(wereInterruptsEnabled: boolean): number {
    this.#bytesWritten += this.#callWrittenBytes;
    this.#droppedBytes += this.#callDroppedBytes;
    if (wereInterruptsEnabled) this.#cpu.sti();
    return this.#callWrittenBytes;
  }

  /**
   * Hands one byte to THR. A THRE seen frees a whole TX load (16 bytes with
   * FIFOs), which stays free across calls because only this driver fills it.
   */
  #putByte(byte: number): void {
    if (this.#isCallAborted) {
      this.#callDroppedBytes++;
      return;
    }
    if (this.#txFreeBytes === 0) {
      // A stuck transmitter gets one poll per call until it recovers.
      const isReady = this.#poll(LSR_THRE, this.#isTransmitterStuck ? 1 : this.#maxPolls);
      this.#isTransmitterStuck = !isReady;
      if (!isReady) {
        this.#isCallAborted = true;
        this.#callDroppedBytes++;
        return;
      }
      this.#txFreeBytes = this.#txLoadBytes;
    }
    this.#write(THR, byte);
    this.#txFreeBytes--;
    this.#callWrittenBytes++;
  }

  /** Polls LSR until `bit` is set, at most `maxPolls` times. */
  #poll(bit: number, maxPolls: number): boolean {
    for (let i = 0; i < maxPolls; i++) {
      if ((this.#read(LSR) & bit) !== 0) return true;
    }
    return false;
  }

  #read(offset: number): number {
    return this.#cpu.inb(this.#basePort + offset);
  }

  #write(offset: number, value: number): void {
    this.#cpu.outb(this.#basePort + offset, value);
  }
}
