/**
 * Kernel panics: an unrecoverable kernel failure prints `KERNEL PANIC:
 * <reason>` on the console, disables interrupts and halts the machine.
 *
 * @module
 */

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
