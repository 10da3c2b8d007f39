/**
 * Host (operating system) errors in a few words, for the CLI's one-line
 * messages: `no such file`, `is a directory`, `no space left on device`.
 *
 * @module
 */

/**
 * Any error from a `Deno` file or stream call in a few words, lower case,
 * without Deno's `(os error N)` suffix.
 */
export function describeOsError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.IsADirectory) return "is a directory";
  if (!(error instanceof Error)) return String(error);
  // "No space left on device (os error 28)" -> "no space left on device".
  const message = error.message.replace(/ \(os error \d+\)$/, "");
  return /^[A-Z][a-z]/.test(message) ? message[0].toLowerCase() + message.slice(1) : message;
}

/**
 * Why a path cannot be read or written, in a few words. A path Deno's
 * permissions do not cover (a device or process file other than `/dev/null`,
 * or any path when the runtime was started without file access) is said to be
 * so, never with a hint to rerun with a Deno flag.
 *
 * @param error The error from a `Deno` file call.
 * @param access Whether the path was being read or written.
 * @param path The path.
 */
export function describeFileError(error: unknown, access: "read" | "write", path: string): string {
  if (!(error instanceof Deno.errors.NotCapable)) return describeOsError(error);
  return Deno.permissions.querySync({ name: access, path }).state === "granted"
    ? "a device or process file, which kernelsim does not open"
    : `kernelsim was started without permission to ${access} files (use deno task boot)`;
}
