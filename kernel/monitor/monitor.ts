/**
 * The kernel monitor: a command line on the serial console, read through the
 * UART's receive interrupt as a driver on real hardware reads it.
 *
 * ```
 * UART RX FIFO ──IRQ 4──> SerialPort handler ──> receive queue (RAM)      interrupt context
 *                                                    │
 * kernel main loop: Monitor.runPendingWork() <───────┘                      main loop
 *     line editor (echo, cursor keys, history, Tab) ──> line buffer (RAM)
 *     complete line ──> command table ──> output on the serial port
 *     integrity check of the kernel's state ──> KERNEL PANIC if broken
 * ```
 *
 * The interrupt handler only queues bytes; the main loop edits lines, echoes
 * and runs commands, so a long command never runs with interrupts off and a
 * burst of input never waits on the console output. After every command the
 * monitor checks the kernel's own structures (`integrity_check.ts`): a
 * command that corrupted one (`poke!`) ends in `KERNEL PANIC: <structure>:
 * <invariant>`, never in silent wrong behaviour. Page faults the kernel
 * resolves during a command (demand-zero, copy-on-write) are narrated in one
 * line each.
 *
 * Everything the monitor keeps lives in two kernel frames (`Page`s it holds).
 * The console frame:
 *
 * ```
 * offset  bytes  what
 * 0x000   16     receive queue state (ByteRing: head, count, dropped)
 * 0x010   32     line editor state (length, overflow, escape, flags, cursor, ...)
 * 0x030   16     monitor words: magic "KMON", lines run, lines too long, commands failed
 * 0x040   128    address space table: 16 slots, each a PML4 physical address (u64)
 * 0x100   256    echo staging: echoed bytes go to the UART in one write
 * 0x400   1024   line buffer: the longest line is 1024 bytes
 * 0x800   2048   receive queue data
 * ```
 *
 * The history frame: the command history (`line_history.ts`), 4 KiB.
 *
 * @module
 */

import {
  describePageFaultCode,
  hex,
  PAGE_SIZE_4K,
  type PhysAddr,
  type VirtAddr,
} from "../../hal/mod.ts";
import type { Kernel } from "../kernel.ts";
import { Page, type PageFaultEvent } from "../mm/mod.ts";
import { KernelPanic, panicLine } from "../panic.ts";
import { ADDRESS_SPACE_TABLE_WORDS, AddressSpaceTable } from "./address_space_table.ts";
import { BYTE_RING_STATE_WORDS, ByteRing, ByteRingCorrupt } from "./byte_ring.ts";
import type { CommandContext, ConsoleStats, MonitorFrame, MonitorHost } from "./command.ts";
import { completeCommandLine, executeLine, MONITOR_COMMANDS, parseLine } from "./commands.ts";
import { formatVa } from "./_format.ts";
import { checkKernelIntegrity } from "./integrity_check.ts";
import { LINE_EDITOR_STATE_WORDS, LineEditor } from "./line_editor.ts";
import { LINE_HISTORY_STATE_WORDS, LineHistory } from "./line_history.ts";

/** The prompt printed before each line. */
export const MONITOR_PROMPT = "kernelsim> ";
/** The first line the monitor prints. */
export const MONITOR_BANNER = "kernel monitor: type help for the commands";
/** The banner's second line: the keys a user needs first. */
export const MONITOR_KEYS_LINE: string =
  "keys: Ctrl-A x quits, Ctrl-A h lists the console keys, Ctrl-C discards the line, " +
  "Up/Down history, Tab completes";
/** The monitor words' first word: "KMON" as a little-endian u32, to find the frame in a dump. */
export const MONITOR_MAGIC = 0x4e4f_4d4b;
/** The longest line the monitor accepts, in bytes. */
export const MONITOR_LINE_MAX_BYTES = 1024;
/** Capacity of the receive queue between the interrupt handler and the main loop. */
export const MONITOR_QUEUE_BYTES = 2048;

// Offsets in the console frame (see the module comment).
const RING_STATE_OFFSET = 0x000;
const EDITOR_STATE_OFFSET = 0x010;
const WORDS_OFFSET = 0x030;
const SPACES_OFFSET = 0x040;
const ECHO_OFFSET = 0x100;
const ECHO_BYTES = 256;
const LINE_OFFSET = 0x400;
const QUEUE_OFFSET = 0x800;
// Monitor words.
const W_MAGIC = 0;
const W_LINES_RUN = 1;
const W_LINES_TOO_LONG = 2;
const W_COMMANDS_FAILED = 3;
const MONITOR_WORDS = 4;
// The history frame.
const HISTORY_DATA_OFFSET = 4 * LINE_HISTORY_STATE_WORDS;

/** Options of {@linkcode Monitor.start}. */
export interface MonitorOptions {
  /** Host file access for `dump` (absent: `dump` says it is not available). */
  readonly host?: MonitorHost;
}

/** The first command that failed, for the CLI's exit status line. */
export interface MonitorFailure {
  /** Its line number, counting every line read (blank lines and comments too). */
  readonly lineNumber: number;
  /** The line as typed. */
  readonly line: string;
}

/** A running monitor. */
export class Monitor implements Disposable {
  /** Physical address of the console frame (its layout is in the module comment). */
  readonly consoleFrameAddr: PhysAddr;
  /** Physical address of the history frame. */
  readonly historyFrameAddr: PhysAddr;
  readonly #kernel: Kernel;
  readonly #page: Page;
  readonly #historyPage: Page;
  readonly #words: Uint32Array;
  readonly #ring: ByteRing;
  readonly #editor: LineEditor;
  readonly #history: LineHistory;
  readonly #spaces: AddressSpaceTable;
  readonly #echo: Uint8Array;
  #echoLength = 0;
  readonly #context: CommandContext;
  readonly #decoder = new TextDecoder();
  /** Lines read, blank ones and comments included (for the first failure's line number). */
  #linesRead = 0;
  #firstFailure: MonitorFailure | undefined;
  /** What the command being run has printed so far. */
  #output: string[] = [];
  /** What the last command that was not a check printed. */
  #previousOutput = "";
  #isNarratingFaults = true;
  #isDisposed = false;

  private constructor(kernel: Kernel, page: Page, historyPage: Page, options: MonitorOptions) {
    this.#kernel = kernel;
    this.#page = page;
    this.#historyPage = historyPage;
    const pa = page.physAddr;
    this.consoleFrameAddr = pa;
    this.historyFrameAddr = historyPage.physAddr;
    const buffer = kernel.machine.memory.buffer;
    const frame = page.bytes();
    this.#words = new Uint32Array(buffer, pa + WORDS_OFFSET, MONITOR_WORDS);
    this.#words[W_MAGIC] = MONITOR_MAGIC;
    this.#ring = new ByteRing(
      new Uint32Array(buffer, pa + RING_STATE_OFFSET, BYTE_RING_STATE_WORDS),
      frame.subarray(QUEUE_OFFSET, QUEUE_OFFSET + MONITOR_QUEUE_BYTES),
    );
    this.#echo = frame.subarray(ECHO_OFFSET, ECHO_OFFSET + ECHO_BYTES);
    this.#history = new LineHistory(
      new Uint32Array(buffer, this.historyFrameAddr, LINE_HISTORY_STATE_WORDS),
      historyPage.bytes().subarray(HISTORY_DATA_OFFSET),
    );
    this.#editor = new LineEditor(
      new Uint32Array(buffer, pa + EDITOR_STATE_OFFSET, LINE_EDITOR_STATE_WORDS),
      frame.subarray(LINE_OFFSET, LINE_OFFSET + MONITOR_LINE_MAX_BYTES),
      this.#echoByte,
      {
        history: this.#history,
        complete: (before) => completeCommandLine(before, this.#context.commands),
        prompt: MONITOR_PROMPT,
      },
    );
    this.#spaces = new AddressSpaceTable(
      kernel,
      new Uint32Array(buffer, pa + SPACES_OFFSET, ADDRESS_SPACE_TABLE_WORDS),
    );
    this.#context = this.#createContext(options);
  }

  /**
   * Starts the monitor on `kernel`'s serial console: takes its frames,
   * installs the receive handler (IRQ 4, received data and character
   * timeout) and the page-fault narration, and prints the banner and the
   * prompt.
   *
   * @throws {KernelError} `OutOfMemory` if no frame is free for its buffers.
   */
  static start(kernel: Kernel, options: MonitorOptions = {}): Monitor {
    const page = Page.alloc(kernel.frames);
    let historyPage: Page;
    try {
      historyPage = Page.alloc(kernel.frames);
    } catch (error) {
      page[Symbol.dispose]();
      throw error;
    }
    const monitor = new Monitor(kernel, page, historyPage, options);
    kernel.serial.enableReceiveInterrupts(monitor.#receiveByte);
    kernel.pageFaults.setObserver?.(monitor.#narrateFault);
    monitor.#print(MONITOR_BANNER);
    monitor.#print(MONITOR_KEYS_LINE);
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

  /** Commands that failed (an error line, a failed `expect`), read from the console frame. */
  get failedCommands(): number {
    return this.#words[W_COMMANDS_FAILED];
  }

  /** The first command that failed, or undefined if none has. */
  get firstFailure(): MonitorFailure | undefined {
    return this.#firstFailure;
  }

  /**
   * The kernel main loop's step: takes every queued byte through the line
   * editor, runs each complete line, checks the kernel's state and prints
   * the next prompt. Returns when the queue is empty or the machine has
   * halted.
   *
   * @throws {KernelPanic} If a command panicked the kernel, or left it (or
   *   the console's input ring) corrupt; the machine is halted and the
   *   `KERNEL PANIC:` line printed.
   */
  runPendingWork(): void {
    const ring = this.#ring;
    const editor = this.#editor;
    while (!this.isHalted) {
      let byte: number;
      try {
        byte = ring.shift();
      } catch (error) {
        if (error instanceof ByteRingCorrupt) this.#panic(`console input ring: ${error.invariant}`);
        throw error;
      }
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
      ringStateAddr: (this.consoleFrameAddr + RING_STATE_OFFSET) as PhysAddr,
    };
  }

  /**
   * Stops the monitor: removes the receive handler and the fault narration,
   * switches back to the kernel's address space and frees the others, and
   * gives back its frames, the page handles it holds and its heap blocks.
   * Disposing twice is a no-op.
   */
  [Symbol.dispose](): void {
    if (this.#isDisposed) return;
    this.#isDisposed = true;
    this.#kernel.serial.disableReceiveInterrupts();
    this.#kernel.pageFaults.setObserver?.(undefined);
    this.#spaces[Symbol.dispose]();
    for (const page of this.#context.pages.values()) page[Symbol.dispose]();
    this.#context.pages.clear();
    for (const va of this.#context.allocations) this.#kernel.heap.kfree(va);
    this.#context.allocations.clear();
    this.#historyPage[Symbol.dispose]();
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

  /** One line per page fault the kernel resolved during a command. */
  readonly #narrateFault = (event: PageFaultEvent): void => {
    if (!this.#isNarratingFaults || event.kind === "unhandled") return;
    const what = event.kind === "demand-zero"
      ? `demand-zero: mapped zeroed frame ${hex(event.frame)}`
      : event.kind === "copy-on-write-copy"
      ? `copy-on-write: copied frame ${hex(event.from)} to ${hex(event.to)}, ` +
        `refcount ${event.refcountBefore} -> ${event.refcountAfter}`
      : `copy-on-write: frame ${hex(event.frame)} has no other sharer (refcount 1), ` +
        "made writable in place";
    this.#print(
      `page fault at ${formatVa(event.address)}: ${describePageFaultCode(event.errorCode)} ` +
        `(error code ${hex(event.errorCode)}): ${what}`,
    );
  };

  #flushEcho(): void {
    if (this.#echoLength === 0) return;
    this.#kernel.serial.write(this.#echo.subarray(0, this.#echoLength));
    this.#echoLength = 0;
  }

  #runLine(): void {
    const editor = this.#editor;
    this.#linesRead++;
    this.#output = [];
    if (editor.overflowBytes > 0) {
      this.#words[W_LINES_TOO_LONG]++;
      this.#print(
        `line too long: ${editor.lengthBytes + editor.overflowBytes} bytes, the limit is ` +
          `${editor.capacityBytes}; nothing was run`,
      );
      this.#recordFailure("(a line too long to run)");
      this.#previousOutput = this.#output.join("");
      return;
    }
    // Copy the line out of the shared frame before decoding it.
    const line = this.#decoder.decode(editor.line().slice());
    let outcome: ReturnType<typeof executeLine>;
    try {
      outcome = executeLine(line, this.#context);
    } catch (error) {
      if (error instanceof KernelPanic && !this.isHalted) this.#panic(error.reason);
      throw error;
    }
    if (outcome === "blank") return;
    this.#words[W_LINES_RUN]++;
    if (outcome === "failed") this.#recordFailure(line);
    const name = parseLine(line)?.name;
    const command = this.#context.commands.find((candidate) => candidate.name === name);
    if (!command?.isCheck) this.#previousOutput = this.#output.join("");
    if (this.isHalted) return;
    const problem = checkKernelIntegrity(this.#kernel, {
      ring: this.#ring,
      editor: this.#editor,
      history: this.#history,
      spaces: this.#spaces,
      checkWords: () =>
        this.#words[W_MAGIC] === MONITOR_MAGIC
          ? undefined
          : `magic is ${hex(this.#words[W_MAGIC])}, not "KMON"`,
    });
    if (problem !== undefined) this.#panic(problem);
  }

  #recordFailure(line: string): void {
    this.#words[W_COMMANDS_FAILED]++;
    this.#firstFailure ??= { lineNumber: this.#linesRead, line };
  }

  /** Prints `KERNEL PANIC: reason`, halts the machine and throws. */
  #panic(reason: string): never {
    this.#flushEcho();
    const cpu = this.#kernel.log.panicCpu;
    this.#kernel.log.raw(`${panicLine(reason, cpu)}\n`);
    this.#kernel.machine.halt(reason);
    throw new KernelPanic(reason, { cpu });
  }

  #writePrompt(): void {
    this.#kernel.serial.writeString(MONITOR_PROMPT);
  }

  #print(text: string): void {
    const serial = this.#kernel.serial;
    serial.writeString(text);
    serial.writeString("\n");
    this.#output.push(text, "\n");
  }

  #createContext(options: MonitorOptions): CommandContext {
    const kernel = this.#kernel;
    const spaces = this.#spaces;
    const monitorFrames: MonitorFrame[] = [
      {
        base: this.consoleFrameAddr,
        length: PAGE_SIZE_4K,
        what: "the monitor's console frame (input ring, line buffer, address space table)",
      },
      { base: this.historyFrameAddr, length: PAGE_SIZE_4K, what: "the monitor's command history" },
    ];
    return {
      kernel,
      get addressSpace() {
        return spaces.current?.space;
      },
      spaces,
      pages: new Map<number, Page>(),
      allocations: new Set<VirtAddr>(),
      commands: [...MONITOR_COMMANDS, ...kernel.commands],
      host: options.host,
      consoleStats: () => this.consoleStats(),
      monitorFrames: () => monitorFrames,
      previousOutput: () => this.#previousOutput,
      withoutFaultNarration: <T>(run: () => T): T => {
        const was = this.#isNarratingFaults;
        this.#isNarratingFaults = false;
        try {
          return run();
        } finally {
          this.#isNarratingFaults = was;
        }
      },
      print: (text) => this.#print(text),
      halt: () => kernel.machine.halt("monitor: halt command"),
      panic: (reason): never => this.#panic(reason),
    };
  }
}

/**
 * Starts the kernel monitor on the serial console (see {@linkcode Monitor}).
 * The caller's main loop then calls {@linkcode Monitor.runPendingWork}
 * whenever the CPU wakes up.
 *
 * @param kernel The booted kernel.
 * @param options Host services.
 * @returns The running monitor.
 * @throws {KernelError} `OutOfMemory` if no frame is free for its buffers.
 */
export function startMonitor(kernel: Kernel, options: MonitorOptions = {}): Monitor {
  return Monitor.start(kernel, options);
}
