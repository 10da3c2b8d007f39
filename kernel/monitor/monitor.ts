/**
 * The kernel monitor: a command line on the serial console, read through the
 * UART's receive interrupt as a driver on real hardware reads it.
 *
 * ```
 * UART RX FIFO ──IRQ 4──> SerialPort handler ──> receive queue (RAM)      interrupt context
 *                                                    │
 * kernel main loop: Monitor.runPendingWork() <───────┘                      main loop
 *     line editor (echo, backspace, Ctrl-U) ──> line buffer (RAM)
 *     complete line ──> command table ──> output on the serial port
 * ```
 *
 * The interrupt handler only queues bytes; the main loop edits lines, echoes
 * and runs commands, so a long command never runs with interrupts off and a
 * burst of input never waits on the console output. Everything the monitor
 * keeps lives in one kernel frame (a {@linkcode Page} it holds), laid out as:
 *
 * ```
 * offset  bytes  what
 * 0x000   16     receive queue state (ByteRing: head, count, dropped)
 * 0x010   16     line editor state (length, overflow, escape, flags)
 * 0x020   16     monitor words: magic "KMON", lines run, lines too long, zero
 * 0x100   256    echo staging: echoed bytes go to the UART in one write
 * 0x400   1024   line buffer: the longest line is 1024 bytes
 * 0x800   2048   receive queue data
 * ```
 *
 * @module
 */

import type { PhysAddr, VirtAddr } from "../../hal/mod.ts";
import type { Kernel } from "../kernel.ts";
import { Page } from "../mm/mod.ts";
import { KernelPanic } from "../panic.ts";
import { BYTE_RING_STATE_WORDS, ByteRing } from "./byte_ring.ts";
import type { CommandContext, ConsoleStats } from "./command.ts";
import { executeLine, MONITOR_COMMANDS } from "./commands.ts";
import { LINE_EDITOR_STATE_WORDS, LineEditor } from "./line_editor.ts";

/** The prompt printed before each line. */
export const MONITOR_PROMPT = "kernelsim> ";
/** The first line the monitor prints. */
export const MONITOR_BANNER = "kernel monitor: type help for the commands";
/** The monitor words' first word: "KMON" as a little-endian u32, to find the frame in a dump. */
export const MONITOR_MAGIC = 0x4e4f_4d4b;
/** The longest line the monitor accepts, in bytes. */
export const MONITOR_LINE_MAX_BYTES = 1024;
/** Capacity of the receive queue between the interrupt handler and the main loop. */
export const MONITOR_QUEUE_BYTES = 2048;

// Offsets in the console frame (see the module comment).
const RING_STATE_OFFSET = 0x000;
const EDITOR_STATE_OFFSET = 0x010;
const WORDS_OFFSET = 0x020;
const ECHO_OFFSET = 0x100;
const ECHO_BYTES = 256;
const LINE_OFFSET = 0x400;
const QUEUE_OFFSET = 0x800;
// Monitor words.
const W_MAGIC = 0;
const W_LINES_RUN = 1;
const W_LINES_TOO_LONG = 2;
const MONITOR_WORDS = 4;

/** A running monitor. */
export class Monitor implements Disposable {
  /** Physical address of the console frame (its layout is in the module comment). */
  readonly consoleFrameAddr: PhysAddr;
  readonly #kernel: Kernel;
  readonly #page: Page;
  readonly #words: Uint32Array;
  readonly #ring: ByteRing;
  readonly #editor: LineEditor;
  readonly #echo: Uint8Array;
  #echoLength = 0;
  readonly #context: CommandContext;
  readonly #decoder = new TextDecoder();
  #isDisposed = false;

  private constructor(kernel: Kernel, page: Page) {
    this.#kernel = kernel;
    this.#page = page;
    const pa = page.physAddr;
    this.consoleFrameAddr = pa;
    const buffer = kernel.machine.memory.buffer;
    const frame = page.bytes();
    this.#words = new Uint32Array(buffer, pa + WORDS_OFFSET, MONITOR_WORDS);
    this.#words[W_MAGIC] = MONITOR_MAGIC;
    this.#ring = new ByteRing(
      new Uint32Array(buffer, pa + RING_STATE_OFFSET, BYTE_RING_STATE_WORDS),
      frame.subarray(QUEUE_OFFSET, QUEUE_OFFSET + MONITOR_QUEUE_BYTES),
    );
    this.#echo = frame.subarray(ECHO_OFFSET, ECHO_OFFSET + ECHO_BYTES);
    this.#editor = new LineEditor(
      new Uint32Array(buffer, pa + EDITOR_STATE_OFFSET, LINE_EDITOR_STATE_WORDS),
      frame.subarray(LINE_OFFSET, LINE_OFFSET + MONITOR_LINE_MAX_BYTES),
      this.#echoByte,
    );
    this.#context = this.#createContext();
  }

  /**
   * Starts the monitor on `kernel`'s serial console: takes its frame,
   * installs the receive handler (IRQ 4, received data and character
   * timeout), and prints the banner and the prompt.
   *
   * @throws {KernelError} `OutOfMemory` if no frame is free for its buffers.
   */
  static start(kernel: Kernel): Monitor {
    const monitor = new Monitor(kernel, Page.alloc(kernel.frames));
    kernel.serial.enableReceiveInterrupts(monitor.#receiveByte);
    monitor.#print(MONITOR_BANNER);
    monitor.#writePrompt();
    return monitor;
  }

  /** Whether the machine has halted (the `halt` or `panic` command, or a panic). */
  get isHalted(): boolean {
    return this.#kernel.machine.haltReason !== undefined;
  }

  /** Bytes received and not yet processed by the main loop. */
  get pendingBytes(): number {
    return this.#ring.length;
  }

  /**
   * The kernel main loop's step: takes every queued byte through the line
   * editor, runs each complete line and prints the next prompt. Returns when
   * the queue is empty or the machine has halted.
   *
   * @throws {KernelPanic} If a command panicked the kernel (the machine is halted).
   */
  runPendingWork(): void {
    const ring = this.#ring;
    const editor = this.#editor;
    while (!this.isHalted) {
      const byte = ring.shift();
      if (byte < 0) break;
      const event = editor.feed(byte);
      if (event === "pending") continue;
      this.#flushEcho();
      if (event === "line") this.#runLine();
      if (this.isHalted) return;
      this.#writePrompt();
    }
    this.#flushEcho();
  }

  /** The console's counters, read from the console frame. */
  consoleStats(): ConsoleStats {
    return {
      queuedBytes: this.#ring.length,
      queueCapacityBytes: this.#ring.capacityBytes,
      droppedBytes: this.#ring.droppedBytes,
      linesRun: this.#words[W_LINES_RUN],
      linesTooLong: this.#words[W_LINES_TOO_LONG],
      lineCapacityBytes: this.#editor.capacityBytes,
    };
  }

  /**
   * Stops the monitor: removes the receive handler and gives back its frame,
   * the page handles it holds and its heap blocks. Disposing twice is a no-op.
   */
  [Symbol.dispose](): void {
    if (this.#isDisposed) return;
    this.#isDisposed = true;
    this.#kernel.serial.disableReceiveInterrupts();
    for (const page of this.#context.pages.values()) page[Symbol.dispose]();
    this.#context.pages.clear();
    for (const va of this.#context.allocations) this.#kernel.heap.kfree(va);
    this.#context.allocations.clear();
    this.#page[Symbol.dispose]();
  }

  /** The serial receive handler (interrupt context): queue the byte, nothing more. */
  readonly #receiveByte = (byte: number): void => {
    this.#ring.push(byte);
  };

  /** The line editor's echo: staged, written to the UART in one go. */
  readonly #echoByte = (byte: number): void => {
    this.#echo[this.#echoLength++] = byte;
    if (this.#echoLength === this.#echo.length) this.#flushEcho();
  };

  #flushEcho(): void {
    if (this.#echoLength === 0) return;
    this.#kernel.serial.write(this.#echo.subarray(0, this.#echoLength));
    this.#echoLength = 0;
  }

  #runLine(): void {
    const editor = this.#editor;
    if (editor.overflowBytes > 0) {
      this.#words[W_LINES_TOO_LONG]++;
      this.#print(
        `line too long: ${editor.lengthBytes + editor.overflowBytes} bytes, the limit is ` +
          `${editor.capacityBytes}; nothing was run`,
      );
      return;
    }
    // Copy the line out of the shared frame before decoding it.
    const line = this.#decoder.decode(editor.line().slice());
    if (executeLine(line, this.#context) !== "blank") this.#words[W_LINES_RUN]++;
  }

  #writePrompt(): void {
    this.#kernel.serial.writeString(MONITOR_PROMPT);
  }

  #print(text: string): void {
    const serial = this.#kernel.serial;
    serial.writeString(text);
    serial.writeString("\n");
  }

  #createContext(): CommandContext {
    const kernel = this.#kernel;
    return {
      kernel,
      addressSpace: kernel.kernelSpace.addressSpace,
      pages: new Map<number, Page>(),
      allocations: new Set<VirtAddr>(),
      commands: [...MONITOR_COMMANDS, ...kernel.commands],
      consoleStats: () => this.consoleStats(),
      print: (text) => this.#print(text),
      halt: () => kernel.machine.halt("monitor: halt command"),
      panic: (reason): never => {
        kernel.log.raw(`KERNEL PANIC: ${reason}\n`);
        kernel.machine.halt(reason);
        throw new KernelPanic(reason);
      },
    };
  }
}

/**
 * Starts the kernel monitor on the serial console (see {@linkcode Monitor}).
 * The caller's main loop then calls {@linkcode Monitor.runPendingWork}
 * whenever the CPU wakes up.
 *
 * @param kernel The booted kernel.
 * @returns The running monitor.
 * @throws {KernelError} `OutOfMemory` if no frame is free for its buffers.
 */
export function startMonitor(kernel: Kernel): Monitor {
  return Monitor.start(kernel);
}
