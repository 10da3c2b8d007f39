/**
 * Kernel panics: an unrecoverable kernel failure prints `KERNEL PANIC:
 * <reason>` on the console, disables interrupts and halts the machine.
 *
 * @module
 */

import { DEBUG_CONSOLE_PORT, type Machine } from "../hal/mod.ts";
import type { KernelLog } from "./log.ts";
import { UserCodeError } from "./user_code_error.ts";

/** Thrown to unwind out of the kernel once it has panicked and halted. */
export class KernelPanic extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "KernelPanic";
  /** The one-line reason printed after `KERNEL PANIC:`. */
  readonly reason: string;

  /** Creates a panic with a one-line `reason`. */
  constructor(reason: string, options?: { cause?: unknown }) {
    super(`KERNEL PANIC: ${reason}`, options);
    this.reason = reason;
  }
}

/** Formats any error as the one-line reason of a panic, naming its kind. */
export function panicReason(error: unknown): string {
  if (error instanceof KernelPanic) return error.reason;
  // Already one line naming the user's module, the call and what it threw.
  if (error instanceof UserCodeError) return error.message.split("\n")[0];
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const kind = typeof code === "string" ? code : error.name;
    return `${kind}: ${error.message.split("\n")[0]}`;
  }
  return `unexpected ${typeof error}: ${String(error)}`;
}

/**
 * Panics now, from anywhere (an exception handler, a command): prints
 * `KERNEL PANIC: <reason>` on the console (or, with no console yet, replays
 * the early log and the panic on the debug port), halts the machine and
 * throws {@linkcode KernelPanic}.
 *
 * @throws {KernelPanic} Always.
 */
export function raisePanic(machine: Machine, log: KernelLog, reason: string): never {
  printPanic(machine, log, reason);
  machine.halt(reason);
  throw new KernelPanic(reason);
}

/** Prints the panic line on the console, or on the debug port before the console is up. */
export function printPanic(machine: Machine, log: KernelLog, reason: string): void {
  const line = `KERNEL PANIC: ${reason}\n`;
  if (log.hasConsole) {
    log.raw(line);
    return;
  }
  for (const early of [...log.pendingLines(), line]) {
    for (const byte of new TextEncoder().encode(early)) machine.cpu.outb(DEBUG_CONSOLE_PORT, byte);
  }
}
