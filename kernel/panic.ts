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
  /** The CPU that panicked, once several run (undefined with one). */
  readonly cpu: number | undefined;

  /**
   * Creates a panic with a one-line `reason`; with several CPUs running,
   * `cpu` names the one that panicked (`KERNEL PANIC (CPU 2): reason`).
   */
  constructor(reason: string, options?: { cause?: unknown; cpu?: number }) {
    super(panicLine(reason, options?.cpu), options);
    this.reason = reason;
    this.cpu = options?.cpu;
  }
}

/**
 * The panic line without its newline: `KERNEL PANIC: reason`, or with
 * several CPUs running `KERNEL PANIC (CPU n): reason`.
 */
export function panicLine(reason: string, cpu?: number): string {
  return cpu === undefined ? `KERNEL PANIC: ${reason}` : `KERNEL PANIC (CPU ${cpu}): ${reason}`;
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
  throw new KernelPanic(reason, { cpu: log.panicCpu });
}

/**
 * Prints the panic line on the console, or on the debug port before the
 * console is up. With several CPUs running it names the CPU: `cpu`, or the
 * log's {@linkcode KernelLog.panicCpu}.
 */
export function printPanic(
  machine: Machine,
  log: KernelLog,
  reason: string,
  cpu: number | undefined = log.panicCpu,
): void {
  const line = `${panicLine(reason, cpu)}\n`;
  if (log.hasConsole) {
    log.raw(line);
    return;
  }
  for (const early of [...log.pendingLines(), line]) {
    for (const byte of new TextEncoder().encode(early)) machine.cpu.outb(DEBUG_CONSOLE_PORT, byte);
  }
}
