/**
 * What a monitor command is: a name, its usage, a one-line help text and a
 * handler, and what a handler may use (the kernel, the handles the monitor
 * holds, the console). Handlers report bad input by throwing
 * {@linkcode CommandError}; the monitor prints every error as one line and
 * carries on.
 *
 * @module
 */

import type { VirtAddr } from "../../hal/mod.ts";
import type { Kernel } from "../kernel.ts";
import type { AddressSpaceLike, Page } from "../mm/mod.ts";

/** Bad input to a command (a wrong argument or count): printed as `name: message`. */
export class CommandError extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "CommandError";
}

/** The words of a command line. */
export interface CommandArgs {
  /** The arguments, split at whitespace (the command name not included). */
  readonly words: readonly string[];
  /** Everything after the command name and the one space that follows it, verbatim. */
  readonly rest: string;
}

/** Counters the monitor keeps about its console, for the `serial` command. */
export interface ConsoleStats {
  /** Bytes the receive queue holds now. */
  readonly queuedBytes: number;
  /** Capacity of the receive queue. */
  readonly queueCapacityBytes: number;
  /** Received bytes lost because the receive queue was full. */
  readonly droppedBytes: number;
  /** Lines run. */
  readonly linesRun: number;
  /** Lines rejected for being longer than the line buffer. */
  readonly linesTooLong: number;
  /** The longest line accepted, in bytes. */
  readonly lineCapacityBytes: number;
}

/** Everything a command handler may use. */
export interface CommandContext {
  /** The running kernel. */
  readonly kernel: Kernel;
  /** The kernel's address space once paging is on, else undefined. */
  readonly addressSpace: AddressSpaceLike | undefined;
  /** Page handles the monitor holds (from `alloc`), by physical address. */
  readonly pages: Map<number, Page>;
  /** Heap blocks the monitor allocated (from `kmalloc`), by virtual address. */
  readonly allocations: Set<VirtAddr>;
  /** Every command, in help order. */
  readonly commands: readonly Command[];
  /** The console's counters. */
  consoleStats(): ConsoleStats;
  /** Prints `text` and a newline on the console. */
  print(text: string): void;
  /** Halts the machine cleanly; the monitor stops after the command. */
  halt(): void;
  /** Panics the kernel with `reason` (prints `KERNEL PANIC:`, halts, throws). */
  panic(reason: string): never;
}

/** One monitor command. */
export interface Command {
  /** What the user types. */
  readonly name: string;
  /** The argument synopsis after the name, e.g. `N` or `ADDR [LEN]`. */
  readonly usage: string;
  /** One line of help. */
  readonly summary: string;
  /** The fewest and most arguments accepted (Infinity: any number). */
  readonly arity: readonly [min: number, max: number];
  /** Runs the command; throws to report a failure. */
  readonly run: (args: CommandArgs, context: CommandContext) => void;
}

/** A command's synopsis, as `help` shows it: `alloc N`. */
export function synopsis(command: Command): string {
  return command.usage === "" ? command.name : `${command.name} ${command.usage}`;
}
