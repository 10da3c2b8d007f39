/**
 * What a monitor command is: a name, its usage, a one-line help text and a
 * handler, and what a handler may use (the kernel, the handles the monitor
 * holds, the console). Handlers report bad input by throwing
 * {@linkcode CommandError}; the monitor prints every error as one line and
 * carries on.
 *
 * @module
 */

import type { PhysAddr, VirtAddr } from "../../hal/mod.ts";
import type { Kernel } from "../kernel.ts";
import type { AddressSpaceLike, Page } from "../mm/mod.ts";
import type { AddressSpaceTable } from "./address_space_table.ts";

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
  /**
   * Whether the name was typed with the force suffix (`unmap!`, `poke!`):
   * the user was told what the target is and wants it changed anyway.
   */
  readonly force: boolean;
}

/** Host services the monitor may use, as QEMU's monitor writes host files with `pmemsave`. */
export interface MonitorHost {
  /**
   * Writes `chunks` to the host file `path`, created or truncated.
   *
   * @throws {Error} With a one-line message if the file cannot be written.
   */
  writeFile(path: string, chunks: Iterable<Uint8Array>): void;
}

/** A physical range the monitor itself keeps state in, for the `poke!` guard. */
export interface MonitorFrame {
  /** First byte. */
  readonly base: PhysAddr;
  /** Length in bytes. */
  readonly length: number;
  /** What it holds, e.g. `the console input ring and line buffer`. */
  readonly what: string;
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
  /** Physical address of the receive queue's state words (head, count, dropped). */
  readonly ringStateAddr: PhysAddr;
}

/** Everything a command handler may use. */
export interface CommandContext {
  /** The running kernel. */
  readonly kernel: Kernel;
  /** The current address space (the one CR3 points at) once paging is on, else undefined. */
  readonly addressSpace: AddressSpaceLike | undefined;
  /** The address spaces the monitor knows: 0 is the kernel's, the others come from `as`. */
  readonly spaces: AddressSpaceTable;
  /** Page handles the monitor holds (from `alloc`), by physical address. */
  readonly pages: Map<number, Page>;
  /** Heap blocks the monitor allocated (from `kmalloc`), by virtual address. */
  readonly allocations: Set<VirtAddr>;
  /** Every command, in help order. */
  readonly commands: readonly Command[];
  /** The console's counters. */
  consoleStats(): ConsoleStats;
  /** The frames the monitor keeps its own state in (console ring, line buffer, history). */
  monitorFrames(): readonly MonitorFrame[];
  /** Everything the previous command printed (for `expect`). */
  previousOutput(): string;
  /** Runs `run` without narrating page faults (the self-tests fault on purpose). */
  withoutFaultNarration<T>(run: () => T): T;
  /** Host file access (for `dump`), or undefined when the session has none. */
  readonly host: MonitorHost | undefined;
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
  /** More lines `help COMMAND` prints after the synopsis (forms, arguments), if any. */
  readonly details?: readonly string[];
  /** The fewest and most arguments accepted (Infinity: any number). */
  readonly arity: readonly [min: number, max: number];
  /**
   * Whether the command takes the force suffix (`unmap!`): without it, the
   * command refuses to change a structure the kernel owns and says so.
   */
  readonly isForceable?: boolean;
  /**
   * Whether the command checks the previous command's output (`expect`):
   * its own output does not replace the output the next check reads.
   */
  readonly isCheck?: boolean;
  /** Words Tab completes at each argument position (e.g. `as`'s subcommands), if any. */
  readonly completions?: readonly (readonly string[])[];
  /** Runs the command; throws to report a failure. */
  readonly run: (args: CommandArgs, context: CommandContext) => void;
}

/** A command's synopsis, as `help` shows it: `alloc N`, `unmap[!] VA`. */
export function synopsis(command: Command): string {
  const name = command.isForceable ? `${command.name}[!]` : command.name;
  return command.usage === "" ? name : `${name} ${command.usage}`;
}
