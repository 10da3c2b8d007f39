/**
 * The real host of the CLI: Deno's standard streams and file system, as
 * `main.ts` and the watchdog's worker hand them to `runCli`.
 *
 * @module
 */

import type { CliHost } from "./run.ts";

/** The process's streams and files as a {@linkcode CliHost}. */
export function denoHost(): CliHost {
  return {
    stdout: Deno.stdout,
    stderr: Deno.stderr,
    stdin: Deno.stdin,
    readFile: (path) => Deno.readFileSync(path),
    createFile: (path) => Deno.openSync(path, { write: true, create: true, truncate: true }),
  };
}
