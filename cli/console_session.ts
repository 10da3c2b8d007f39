/**
 * The host side of the serial console after boot: feeds input to COM1's
 * receive line with flow control, runs the machine so the kernel's monitor
 * drains the FIFO and runs complete lines, and writes what the UART sends.
 *
 * The loop, one step at a time:
 *
 * 1. feed queued input bytes while the RX FIFO has room
 *    (`uart.rxFreeSpace()`): the 16-byte FIFO is never overrun, however large
 *    the input;
 * 2. let the machine run (`synchronize`): the UART's interrupt reaches the
 *    kernel, whose handler moves the FIFO into its queue; then the kernel's
 *    main loop step (`monitor.runPendingWork()`) echoes and runs lines;
 * 3. flush the output; stop if the machine halted;
 * 4. with input left, go on; with none, wait: for more input, or (bytes
 *    below the FIFO's trigger level) for the UART's character timeout.
 *
 * Time: on the virtual clock, waiting for the character timeout jumps the
 * clock to it (`waitForInterrupt`); input arrives instantly, and while the
 * host waits for piped input time stands still, so a run does not depend on
 * how the pipe happens to split the input. On the host clock, time passes
 * while waiting, and the wait wakes up at the machine's next event (timer
 * ticks keep coming).
 *
 * At end of input (the script or stdin closed) the session waits until the
 * kernel has read every byte and run every line, then halts the machine. A
 * last line without a line ending is ended for it.
 *
 * On a terminal, stdin is put in raw mode (so the kernel echoes and edits
 * lines, not the host's terminal) and restored at the end, whatever happens.
 * As with QEMU's serial console, Ctrl-A x quits, Ctrl-A Ctrl-A sends a
 * Ctrl-A, and Ctrl-A h lists the escapes.
 *
 * @module
 */

import type { Pc, Uart16550 } from "../devices/mod.ts";
import { VirtualClock } from "../hal/mod.ts";
import type { Monitor } from "../kernel/monitor/mod.ts";
import { describeOsError } from "./_os_error.ts";

/** An async byte stream such as `Deno.stdin`. */
export interface ConsoleStream {
  /** Reads into `buffer`; resolves to the byte count, or null at end of input. */
  read(buffer: Uint8Array): Promise<number | null>;
}

/** A terminal stdin: a stream whose raw mode can be switched. */
export interface ConsoleTerminal extends ConsoleStream {
  /** Switches raw mode (no line editing, no echo, no signals) on or off. */
  setRaw(mode: boolean): void;
}

/** One source of monitor input, read in order. */
export type ConsoleInput =
  | {
    /** Bytes known up front (a `--script` file). */
    readonly kind: "bytes";
    /** The bytes. */
    readonly bytes: Uint8Array;
  }
  | {
    /** A pipe or file on stdin. */
    readonly kind: "stream";
    /** The stream. */
    readonly stream: ConsoleStream;
  }
  | {
    /** A terminal on stdin: raw mode and the Ctrl-A escapes. */
    readonly kind: "terminal";
    /** The terminal. */
    readonly terminal: ConsoleTerminal;
  };

/** What a console session needs. */
export interface ConsoleSessionOptions {
  /** The PC whose COM1 carries the console. */
  readonly pc: Pc;
  /** The kernel's monitor, started. */
  readonly monitor: Monitor;
  /** Writes out the console output buffered so far. */
  readonly flushOutput: () => void;
  /** Writes a line for the user outside the console (messages of the host side). */
  readonly notice: (text: string) => void;
  /** Input sources, read one after the other. */
  readonly inputs: readonly ConsoleInput[];
  /**
   * Settles when the session must end at once (the process got SIGINT,
   * SIGTERM or SIGHUP); the terminal is restored before the session returns.
   */
  readonly interrupt?: Promise<void>;
}

/**
 * How a session ended: the machine halted, input ended, the user quit
 * (Ctrl-A x), or `interrupt` settled.
 */
export type ConsoleSessionEnd = "halted" | "end-of-input" | "quit" | "interrupted";

/** Reading an input stream (stdin) failed, e.g. because it is a directory. */
export class ConsoleInputError extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "ConsoleInputError";
}

/** The session gave up: the kernel stopped reading the serial port. */
export class ConsoleStalled extends Error {
  /** The error class name, shown in messages. */
  /** The error class name, shown in messages. */
  override readonly name = "ConsoleStalled";
}

/** Bytes read from a stream at a time. */
const READ_CHUNK_BYTES = 64 * 1024;
/** The longest a host-clock wait for input sleeps, in ms, so timer ticks keep being delivered. */
const MAX_HOST_WAIT_MS = 10;
/** A host-clock wait for the UART's character timeout (4 character times: 0.35 ms). */
const HOST_IDLE_MS = 1;
/** Waits in a row, with input in the FIFO and no byte read by the kernel, before giving up. */
const MAX_STALLED_WAITS = 10_000;
const CTRL_A = 0x01;
const CTRL_R = 0x12;
/** What Ctrl-A h prints: the host's escapes, then the kernel's editing keys. */
const CONSOLE_KEYS_HELP = [
  "",
  "Ctrl-A x       quit kernelsim (exit status 0)",
  "Ctrl-A Ctrl-A  send Ctrl-A (in the monitor: start of line)",
  "Ctrl-A h       this help",
  "Ctrl-C         discard the line being typed (the kernel's line editor; no signal)",
  "Left/Right, Home/End, Up/Down history, Tab completes, Ctrl-U erases the line",
].join("\n");
const LF = 0x0a;
const CR = 0x0d;
const NEWLINE = new Uint8Array([LF]);

/**
 * Runs the console until the machine halts, the input ends or the user quits.
 * On a terminal, raw mode is restored before it returns or throws.
 *
 * @returns How the session ended.
 * @throws {KernelPanic} If the kernel panicked (the machine has halted).
 * @throws {ConsoleStalled} If the kernel stopped reading its input.
 */
export async function runConsoleSession(
  options: ConsoleSessionOptions,
): Promise<ConsoleSessionEnd> {
  const terminals = options.inputs.flatMap((input) =>
    input.kind === "terminal" ? [input.terminal] : []
  );
  for (const terminal of terminals) terminal.setRaw(true);
  try {
    return await new ConsoleSession(options).run();
  } finally {
    for (const terminal of terminals) restoreTerminal(terminal);
  }
}

/** Leaves raw mode; a terminal that hung up (SIGHUP) has nothing left to restore. */
function restoreTerminal(terminal: ConsoleTerminal): void {
  try {
    terminal.setRaw(false);
  } catch {
    // The terminal is gone (EIO, ENOTTY after a hangup): nothing to restore.
  }
}

/** The session's state: the input queue and the loop. */
class ConsoleSession {
  readonly #pc: Pc;
  readonly #uart: Uart16550;
  readonly #monitor: Monitor;
  readonly #options: ConsoleSessionOptions;
  readonly #isVirtualClock: boolean;
  readonly #readBuffer = new Uint8Array(READ_CHUNK_BYTES);
  /** Input waiting to be fed to the UART. */
  #queue: Uint8Array = new Uint8Array(0);
  #queueOffset = 0;
  #inputIndex = 0;
  #pendingRead: Promise<number | null> | undefined;
  #lastFedByte = LF;
  #isEscapePending = false;
  #hasQuit = false;
  #stalledWaits = 0;
  #freeBytesAtLastIdle = -1;
  #fedSinceLastIdle = 0;
  readonly #interrupt: Promise<"interrupted"> | undefined;
  #isInterrupted = false;

  constructor(options: ConsoleSessionOptions) {
    this.#options = options;
    this.#pc = options.pc;
    this.#uart = options.pc.uart;
    this.#monitor = options.monitor;
    this.#isVirtualClock = options.pc.machine.clock instanceof VirtualClock;
    this.#interrupt = options.interrupt?.then(() => {
      this.#isInterrupted = true;
      return "interrupted" as const;
    });
  }

  async run(): Promise<ConsoleSessionEnd> {
    this.#step();
    for (;;) {
      if (this.#isInterrupted) {
        // The read still pending is never awaited: its failure must not surface.
        this.#pendingRead?.catch(() => {});
        return "interrupted";
      }
      this.#feed();
      this.#step();
      if (this.#monitor.isHalted) return "halted";
      if (this.#hasQuit) return "quit";
      if (this.#queueOffset < this.#queue.length) {
        // The FIFO is full and the kernel has not emptied it: let time pass.
        if (this.#uart.rxFreeSpace() === 0) await this.#idle();
        continue;
      }
      const input = this.#options.inputs[this.#inputIndex];
      if (input === undefined) {
        // End of input: halt once the kernel has read and run everything.
        if (!isRxFifoEmpty(this.#uart)) {
          await this.#idle();
          continue;
        }
        this.#pc.machine.halt("end of console input");
        return "end-of-input";
      }
      if (input.kind === "terminal" && this.#isVirtualClock && !isRxFifoEmpty(this.#uart)) {
        // A user at a terminal sees the echo before typing on.
        await this.#idle();
        continue;
      }
      await this.#refill(input);
    }
  }

  /** Offers queued bytes to the UART while its receiver has room. */
  #feed(): void {
    const uart = this.#uart;
    const queue = this.#queue;
    let offset = this.#queueOffset;
    const end = Math.min(queue.length, offset + uart.rxFreeSpace());
    while (offset < end && uart.receive(queue[offset])) offset++;
    if (offset > this.#queueOffset) {
      this.#lastFedByte = queue[offset - 1];
      this.#fedSinceLastIdle += offset - this.#queueOffset;
    }
    this.#queueOffset = offset;
  }

  /** One machine step: deliver interrupts, run the kernel's main loop, show the output. */
  #step(): void {
    this.#pc.machine.synchronize();
    this.#monitor.runPendingWork();
    this.#options.flushOutput();
  }

  /**
   * Lets machine time pass until something may have happened. Gives up when
   * the kernel has not read a byte of its input over many waits in a row.
   */
  async #idle(): Promise<void> {
    const freeBytes = this.#uart.rxFreeSpace();
    const isStalled = freeBytes === this.#freeBytesAtLastIdle && this.#fedSinceLastIdle === 0;
    this.#stalledWaits = isStalled ? this.#stalledWaits + 1 : 0;
    this.#freeBytesAtLastIdle = freeBytes;
    this.#fedSinceLastIdle = 0;
    if (this.#stalledWaits > MAX_STALLED_WAITS) {
      throw new ConsoleStalled(
        "The kernel stopped reading the serial port: console input is stuck in the UART",
      );
    }
    if (this.#isVirtualClock) this.#pc.machine.waitForInterrupt();
    else await delay(HOST_IDLE_MS);
  }

  /** Waits for the next chunk of `input`, or moves on to the next input at its end. */
  async #refill(input: ConsoleInput): Promise<void> {
    if (input.kind === "bytes") {
      this.#inputIndex++;
      this.#setQueue(withLineEnding(input.bytes));
      return;
    }
    const stream = input.kind === "terminal" ? input.terminal : input.stream;
    this.#pendingRead ??= stream.read(this.#readBuffer).catch((error: unknown) => {
      throw new ConsoleInputError(describeOsError(error), { cause: error });
    });
    const waits: Promise<number | null | "timeout" | "interrupted">[] = [this.#pendingRead];
    if (this.#interrupt !== undefined) waits.push(this.#interrupt);
    let count: number | null | "timeout" | "interrupted";
    if (this.#isVirtualClock) {
      count = await Promise.race(waits);
    } else {
      // On the host clock the machine keeps running while the host waits.
      const machine = this.#pc.machine;
      const untilNextEventMs = (machine.nextEventNs() - machine.clock.nowNs()) / 1e6;
      const timer = cancellableDelay(Math.max(1, Math.min(MAX_HOST_WAIT_MS, untilNextEventMs)));
      count = await Promise.race([...waits, timer.promise]);
      timer.cancel();
    }
    if (count === "timeout" || count === "interrupted") return;
    this.#pendingRead = undefined;
    if (count === null) {
      this.#endInput(input);
      return;
    }
    const chunk = this.#readBuffer.subarray(0, count);
    this.#setQueue(input.kind === "terminal" ? this.#applyEscapes(chunk) : chunk);
  }

  #setQueue(bytes: Uint8Array): void {
    this.#queue = bytes;
    this.#queueOffset = 0;
  }

  /** Moves to the next input; a piped last line gets its missing line ending. */
  #endInput(input: ConsoleInput): void {
    this.#inputIndex++;
    if (input.kind === "stream" && this.#lastFedByte !== LF && this.#lastFedByte !== CR) {
      this.#setQueue(NEWLINE);
    }
  }

  /**
   * Handles QEMU's Ctrl-A escapes in terminal input: `x` quits, Ctrl-A sends
   * a Ctrl-A, `h` lists them; anything else after Ctrl-A is dropped. Returns
   * the bytes to send, in place in `chunk`.
   */
  #applyEscapes(chunk: Uint8Array): Uint8Array {
    let out = 0;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (!this.#isEscapePending) {
        if (byte === CTRL_A) this.#isEscapePending = true;
        else chunk[out++] = byte;
        continue;
      }
      this.#isEscapePending = false;
      if (byte === CTRL_A) {
        chunk[out++] = byte;
      } else if (byte === 0x78 /* x */) {
        this.#hasQuit = true;
        this.#options.notice("\nkernelsim: terminated by Ctrl-A x");
        return chunk.subarray(0, out);
      } else if (byte === 0x68 /* h */) {
        this.#options.notice(CONSOLE_KEYS_HELP);
        // Ctrl-R: the kernel's line editor reprints the prompt and the line.
        chunk[out++] = CTRL_R;
      }
    }
    return chunk.subarray(0, out);
  }
}

/** `bytes`, with a line feed appended unless it ends with one (or a CR). */
function withLineEnding(bytes: Uint8Array): Uint8Array {
  const last = bytes[bytes.length - 1];
  if (bytes.length === 0 || last === LF || last === CR) return bytes;
  const ended = new Uint8Array(bytes.length + 1);
  ended.set(bytes);
  ended[bytes.length] = LF;
  return ended;
}

/**
 * Whether COM1's RX FIFO is empty. Reads the device's state (an allocation),
 * which is fine: the session asks only when it has no input left to feed.
 */
function isRxFifoEmpty(uart: Uart16550): boolean {
  return uart.saveState().rxBytes.length === 0;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function cancellableDelay(ms: number): { promise: Promise<"timeout">; cancel: () => void } {
  let id: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<"timeout">((resolve) => {
    id = setTimeout(() => resolve("timeout"), ms);
  });
  return { promise, cancel: () => clearTimeout(id) };
}
