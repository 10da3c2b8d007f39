/**
 * The kernel logger: levelled, subsystem-prefixed lines written to a console
 * (the serial port once its driver is up). Lines logged before a console is
 * attached are kept, as printk's ring buffer keeps early messages, and
 * written out when one is.
 *
 * @module
 */

/** Log levels, most severe first. */
export type LogLevel = "error" | "warn" | "info" | "debug";

const LEVEL_RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** Where finished log lines go (one call per line, newline included). */
export type ConsoleWriter = (line: string) => void;

/** Writes kernel log lines with a timestamp, a subsystem prefix and a level. */
export class KernelLog {
  readonly #nowNs: () => number;
  readonly #maxLevel: LogLevel;
  #console: ConsoleWriter | undefined;
  #early: string[] = [];
  /**
   * The CPU this log's panics are attributed to once several CPUs run (the
   * boot CPU, 0): panic lines then say which CPU panicked. Undefined with one.
   */
  panicCpu: number | undefined;

  /**
   * Creates a logger. `nowNs` gives the machine's time for timestamps;
   * messages above `maxLevel` are dropped.
   */
  constructor(nowNs: () => number, maxLevel: LogLevel = "info") {
    this.#nowNs = nowNs;
    this.#maxLevel = maxLevel;
  }

  /** Attaches the console and writes every line logged so far to it. */
  attachConsole(console: ConsoleWriter): void {
    this.#console = console;
    for (const line of this.#early) console(line);
    this.#early = [];
  }

  /** Whether a console is attached. */
  get hasConsole(): boolean {
    return this.#console !== undefined;
  }

  /** Lines logged while no console was attached (for emergency output). */
  pendingLines(): readonly string[] {
    return this.#early;
  }

  /** Logs an informational line for `subsystem`. */
  info(subsystem: string, message: string): void {
    this.write("info", subsystem, message);
  }

  /** Logs a warning for `subsystem`. */
  warn(subsystem: string, message: string): void {
    this.write("warn", subsystem, message);
  }

  /** Logs an error for `subsystem`. */
  error(subsystem: string, message: string): void {
    this.write("error", subsystem, message);
  }

  /** Logs a debug line for `subsystem` (dropped unless the level allows it). */
  debug(subsystem: string, message: string): void {
    this.write("debug", subsystem, message);
  }

  /** Logs `message` at `level`; multi-line messages get the prefix on every line. */
  write(level: LogLevel, subsystem: string, message: string): void {
    if (LEVEL_RANK[level] > LEVEL_RANK[this.#maxLevel]) return;
    const seconds = this.#nowNs() / 1e9;
    const stamp = `[${seconds.toFixed(6).padStart(12)}] `;
    const tag = level === "info" || level === "debug" ? "" : `${level.toUpperCase()}: `;
    for (const text of message.split("\n")) {
      this.raw(`${stamp}${subsystem}: ${tag}${text}\n`);
    }
  }

  /** Writes `text` as it is, with no prefix (for panic lines and the monitor). */
  raw(text: string): void {
    if (this.#console) this.#console(text);
    else this.#early.push(text);
  }
}
