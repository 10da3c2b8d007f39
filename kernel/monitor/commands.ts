/**
 * The monitor's command table and the dispatcher that splits a line into a
 * command name and arguments, checks the argument count and runs the
 * handler.
 *
 * @module
 */

import { KernelPanic } from "../panic.ts";
import { describeError, plural } from "./_format.ts";
import {
  type Command,
  type CommandArgs,
  type CommandContext,
  CommandError,
  synopsis,
} from "./command.ts";
import { apicCommands } from "./apic_commands.ts";
import { addressSpaceCommands } from "./address_space_commands.ts";
import { inspectCommands } from "./inspect_commands.ts";
import { memoryCommands } from "./memory_commands.ts";
import { pagingCommands } from "./paging_commands.ts";
import { helpCommand, systemCommands } from "./system_commands.ts";
import { smpCommands } from "./smp_commands.ts";
import { tlbCommands } from "./tlb_commands.ts";

/** Every monitor command, in the order `help` lists them. */
export const MONITOR_COMMANDS: readonly Command[] = [
  helpCommand,
  ...memoryCommands,
  ...inspectCommands,
  ...pagingCommands,
  ...tlbCommands,
  ...addressSpaceCommands,
  ...apicCommands,
  ...smpCommands,
  ...systemCommands,
];

/** The force suffix: `unmap! VA` changes a structure the kernel owns after all. */
export const FORCE_SUFFIX = "!";
/** A line whose first non-blank character is this is a comment (scripts). */
export const COMMENT_PREFIX = "#";

/** A command line split into its command name and arguments. */
export interface ParsedLine {
  /** The command name (the first word, without a force suffix). */
  readonly name: string;
  /** The arguments. */
  readonly args: CommandArgs;
}

/**
 * Splits a line at whitespace. Leading whitespace is ignored; `rest` is the
 * text after the command name and one separator, verbatim (for `echo`). A
 * name ending in `!` is the command with `force` set.
 *
 * @returns The parsed line, or undefined for a blank line or a `#` comment.
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
  if (text === "" || text.startsWith(COMMENT_PREFIX)) return undefined;
  const nameEnd = text.search(/\s/);
  const typed = nameEnd < 0 ? text : text.slice(0, nameEnd);
  const force = typed.length > 1 && typed.endsWith(FORCE_SUFFIX);
  const name = force ? typed.slice(0, -FORCE_SUFFIX.length) : typed;
  const rest = nameEnd < 0 ? "" : text.slice(nameEnd + 1);
  const words = rest.split(/\s+/).filter((word) => word !== "");
  return { name, args: { words, rest, force } };
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
 * @returns `"ran"`, `"failed"` (an error line was printed) or `"blank"` (a
 *   blank line or a comment).
 * @throws {KernelPanic} If the kernel panicked.
 */
export function executeLine(line: string, context: CommandContext): "ran" | "failed" | "blank" {
  const parsed = parseLine(line);
  if (parsed === undefined) return "blank";
  const command = findCommand(parsed.name, context.commands);
  if (command === undefined) {
    context.print(`unknown command "${parsed.name}": type help for the list`);
    return "failed";
  }
  if (parsed.args.force && !command.isForceable) {
    const forceable = context.commands.filter((candidate) => candidate.isForceable);
    context.print(
      `${command.name}: takes no ${FORCE_SUFFIX} (only ` +
        `${forceable.map((candidate) => candidate.name + FORCE_SUFFIX).join(" and ")} do)`,
    );
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

/** The command named `name` in `commands`, or undefined. */
export function findCommand(name: string, commands: readonly Command[]): Command | undefined {
  return commands.find((candidate) => candidate.name === name);
}

/**
 * Tab completion for the line editor: command names for the first word,
 * and for the words after `help` or a command that lists its own choices.
 *
 * @param textBeforeCursor The line up to the cursor.
 * @param commands The command table.
 * @returns The words the last word may complete to.
 */
export function completeCommandLine(
  textBeforeCursor: string,
  commands: readonly Command[],
): readonly string[] {
  const words = textBeforeCursor.trimStart().split(/\s+/);
  if (words.length <= 1) return commands.map((command) => command.name);
  if (words.length === 2 && words[0] === "help") return commands.map((command) => command.name);
  const command = findCommand(words[0].replace(/!$/, ""), commands);
  return command?.completions?.[words.length - 2] ?? [];
}

function describeArity(min: number, max: number): string {
  if (max === 0) return "no arguments";
  if (min === max) return min === 1 ? "1 argument" : `${min} arguments`;
  if (max === Infinity) return `at least ${plural(min, "argument")}`;
  return `${min} to ${max} arguments`;
}
