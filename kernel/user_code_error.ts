/**
 * An exception out of code a user plugged in (a `--frames` module, a
 * driver's command ...), attributed to the module and the call, so that a
 * panic or the monitor says whose bug it is:
 * `examples/broken_frames.ts: allocate() threw TypeError: x is undefined`.
 *
 * @module
 */

/** An exception thrown by a user's module, with the module and the call it came from. */
export class UserCodeError extends Error {
  /** Always `UserCodeError`. */
  override readonly name = "UserCodeError";
  /** The module, as the user named it (its path). */
  readonly moduleName: string;
  /** The call that threw, e.g. `allocate()` or `command date`. */
  readonly call: string;

  /**
   * Wraps what the user's code threw.
   *
   * @param moduleName The module's path as given.
   * @param call The call that threw.
   * @param cause What it threw.
   */
  constructor(moduleName: string, call: string, cause: unknown) {
    super(`${moduleName}: ${call} threw ${describeThrown(cause)}`, { cause });
    this.moduleName = moduleName;
    this.call = call;
  }
}

/** One line for anything thrown: `TypeError: message` (first line only). */
export function describeThrown(thrown: unknown): string {
  if (thrown instanceof Error) {
    const code = (thrown as { code?: unknown }).code;
    const kind = typeof code === "string" ? `${thrown.name} ${code}` : thrown.name;
    return `${kind}: ${thrown.message.split("\n")[0]}`;
  }
  return `${typeof thrown} ${String(thrown)}`;
}
