/**
 * The host side of the serial console's output, and of the `--trace` lines
 * that share the user's terminal with it (stderr, or stdout and stderr
 * merged with `2>&1`): both are written in the order the events happened.
 *
 * The UART hands over one byte at a time and the console is written a line
 * at a time, while trace lines are whole lines. The order rules:
 *
 * - a trace line that happens while no console line is open is written
 *   before any console byte that follows it;
 * - a trace line that happens in the middle of a console line (an `irq` line
 *   while the kernel echoes a command, an `mm` line while it prints a
 *   result) waits for that line to end and follows it, so it never splits a
 *   line the user reads; a console line left open for long (a prompt while
 *   the user is away) is ended once {@linkcode HELD_TRACE_CHARS} of trace
 *   lines have waited, and they are written.
 *
 * Trace lines are collected and written in batches between console lines,
 * so tracing to the terminal costs a write per batch, not per line.
 *
 * @module
 */

import type { SyncWriter } from "./byte_writer.ts";

/** Console bytes collected before a write to the host stream, when no newline comes. */
const LINE_BUFFER_BYTES = 8192;
/** Characters of trace lines collected before they are written. */
const TRACE_BATCH_CHARS = 64 * 1024;
/** Characters of trace lines that may wait for an open console line to end. */
export const HELD_TRACE_CHARS = 64 * 1024;
const LF = 0x0a;
const NEWLINE = new Uint8Array([LF]);

/** The serial console's output with the trace lines that share its terminal. */
export class ConsoleOutput {
  #serial: SyncWriter | undefined;
  readonly #trace: SyncWriter | undefined;
  readonly #encoder = new TextEncoder();
  readonly #line = new Uint8Array(LINE_BUFFER_BYTES);
  /** Console bytes collected, not yet written. */
  #lineLength = 0;
  /** Whether the last console byte (written or not) was not a newline. */
  #isLineOpen = false;
  /** Trace lines to write before the next console byte. */
  #ready: string[] = [];
  #readyChars = 0;
  /** Trace lines waiting for the open console line to end. */
  #held: string[] = [];
  #heldChars = 0;

  /**
   * Creates the output.
   *
   * @param serial Where console bytes go; undefined drops them (`--quiet`).
   * @param trace Where trace lines go (stderr), or undefined when there are
   *   none here (tracing off, or to a file of its own).
   */
  constructor(serial: SyncWriter | undefined, trace?: SyncWriter) {
    this.#serial = serial;
    this.#trace = trace;
  }

  /** Whether console bytes are shown (not dropped by `--quiet`). */
  get isShown(): boolean {
    return this.#serial !== undefined;
  }

  /**
   * Sends the console's further bytes to `stream` (the monitor's console is
   * shown even under `--quiet`), after writing out what was collected.
   */
  setSerialStream(stream: SyncWriter | undefined): void {
    this.#flushLine();
    this.#serial = stream;
  }

  /** Takes one byte from the UART; a newline writes the line out. */
  writeSerialByte(byte: number): void {
    if (this.#serial === undefined) return;
    this.#line[this.#lineLength++] = byte;
    this.#isLineOpen = byte !== LF;
    if (byte === LF) {
      this.#flushLine();
      this.#releaseHeld();
    } else if (this.#lineLength === this.#line.length) {
      this.#flushLine();
    }
  }

  /** Takes one trace line (ending in a newline), in event order with the console. */
  writeTraceLine(line: string): void {
    if (this.#isLineOpen) {
      this.#held.push(line);
      this.#heldChars += line.length;
      if (this.#heldChars >= HELD_TRACE_CHARS) this.#endOpenLine();
      return;
    }
    this.#ready.push(line);
    this.#readyChars += line.length;
    if (this.#readyChars >= TRACE_BATCH_CHARS) this.#writeReady();
  }

  /**
   * Writes out everything that may be shown now: trace lines that came
   * before the open console line, and that line so far (a prompt).
   */
  flush(): void {
    this.#flushLine();
    this.#writeReady();
  }

  /** Writes out everything, ending an open console line if trace lines wait for it. */
  finish(): void {
    if (this.#held.length > 0) this.#endOpenLine();
    else this.flush();
  }

  /** Writes the collected console bytes, after the trace lines that came before them. */
  #flushLine(): void {
    this.#writeReady();
    if (this.#serial === undefined || this.#lineLength === 0) return;
    writeAll(this.#serial, this.#line.subarray(0, this.#lineLength));
    this.#lineLength = 0;
  }

  /** Ends the open console line on the terminal and writes the trace lines held for it. */
  #endOpenLine(): void {
    this.#flushLine();
    if (this.#serial !== undefined && this.#isLineOpen) writeAll(this.#serial, NEWLINE);
    this.#isLineOpen = false;
    this.#releaseHeld();
    this.#writeReady();
  }

  /** The console line ended: the trace lines held for it are next. */
  #releaseHeld(): void {
    if (this.#held.length === 0) return;
    this.#ready = this.#ready.concat(this.#held);
    this.#readyChars += this.#heldChars;
    this.#held = [];
    this.#heldChars = 0;
  }

  #writeReady(): void {
    if (this.#ready.length === 0 || this.#trace === undefined) return;
    const bytes = this.#encoder.encode(this.#ready.join(""));
    this.#ready = [];
    this.#readyChars = 0;
    writeAll(this.#trace, bytes);
  }
}

function writeAll(stream: SyncWriter, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += stream.writeSync(bytes.subarray(offset));
}
