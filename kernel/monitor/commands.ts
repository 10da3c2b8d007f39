/**
 * The monitor's command table and the dispatcher that splits a line into a
 * command name and arguments, checks the argument count and runs the
 * handler.
 *
 * @module
 */

import { KernelPanic } from "../panic.ts";
import { describeError } from "./_format.ts";
import {
  type Command,
  type CommandArgs,
  type CommandContext,
  CommandError,
  synopsis,
} from "./command.ts";
import { apicCommands } from "./apic_commands.ts";
import { memoryCommands } from "./memory_commands.ts";
import { pagingCommands } from "./paging_commands.ts";
import { helpCommand, systemCommands } from "./system_commands.ts";

/** Every monitor command, in the order `help` lists them. */
export const MONITOR_COMMANDS: readonly Command[] = [
  helpCommand,
  ...memoryCommands,
  ...pagingCommands,
  ...apicCommands,
  ...systemCommands,
];

/** A command line split into its command name and arguments. */
export interface ParsedLine {
  /** The command name (the first word). */
  readonly name: string;
  /** The arguments. */
  readonly args: CommandArgs;
}

/**
 * Splits a line at whitespace. Leading whitespace is ignored; `rest` is the
 * text after the command name and one separator, verbatim (for `echo`).
 *
 * @returns The parsed line, or undefined for a blank line.
 *
 * @example
 * ```ts
 * import { parseLine } from "./commands.ts";
 *
 * const parsed = parseLine("  echo  two  spaces");
 * console.assert(parsed?.name === "echo" && parsed.args.rest === " two  spaces");
 * ```
 */
export function parseLine(line: string): ParsedLine | undefined {
  const text = line.trimStart();
  if (text === "") return undefined;
  const nameEnd = text.search(/\s/);
  const name = nameEnd < 0 ? text : text.slice(0, nameEnd);
  const rest = nameEnd < 0 ? "" : text.slice(nameEnd + 1);
  const words = rest.split(/\s+/).filter((word) => word !== "");
  return { name, args: { words, rest } };
}

/**
 * Runs one command line with `context` and never throws for anything the
 * line or the command does wrong: an unknown command, a wrong argument count
 * and every error a command throws (kernel errors, page faults, general
 * protection faults, bus errors, RangeErrors ...) are printed as one line,
 * `name: what went wrong`. Only a {@linkcode KernelPanic} (the `panic`
 * command, or a kernel invariant broken underneath) goes through: the
 * machine has halted.
 *
 * @param line The line without its line ending.
 * @param context What the commands use; `context.commands` is the table searched.
 * @returns `"ran"`, `"failed"` (an error line was printed) or `"blank"`.
 * @throws {KernelPanic} If the kernel panicked.
 */
export function executeLine(line: string, context: CommandContext): "ran" | "failed" | "blank" {
  const parsed = parseLine(line);
  if (parsed === undefined) return "blank";
  const command = context.commands.find((candidate) => candidate.name === parsed.name);
  if (command === undefined) {
    context.print(`unknown command "${parsed.name}": type help for the list`);
    return "failed";
  }
  try {
    const count = parsed.args.words.length;
    const [min, max] = command.arity;
    if (count < min || count > max) {
      throw new CommandError(
        `expected ${describeArity(min, max)}, got ${count} (usage: ${synopsis(command)})`,
      );
    }
    command.run(parsed.args, context);
    return "ran";
  } catch (error) {
    if (error instanceof KernelPanic) throw error;
    context.print(`${command.name}: ${describeError(error)}`);
    return "failed";
  }
}

function describeArity(min: number, max: number): string {
  if (max === 0) return "no arguments";
  if (min === max) return min === 1 ? "1 argument" : `${min} arguments`;
  if (max === Infinity) return `at least ${min} arguments`;
  return `${min} to ${max} arguments`;
}
