/**
 * The real host of the CLI: Deno's standard streams and file system, as
 * `main.ts` and the watchdog's worker hand them to `runCli`.
 *
 * @module
 */

import { TERMINATION_SIGNALS, type TerminationSignal } from "./exit_status.ts";
import { readInputFile } from "./input_file.ts";
import { OutputFile } from "./output_file.ts";
import type { CliHost } from "./run.ts";

/** The process's streams and files as a {@linkcode CliHost}. */
export function denoHost(): CliHost {
  return {
    stdout: Deno.stdout,
    stderr: Deno.stderr,
    stdin: Deno.stdin,
    readFile: readInputFile,
    createFile: (path, truncate) =>
      OutputFile.open(path, truncate, { stdout: Deno.stdout, stderr: Deno.stderr }),
    onTerminationSignal: trapTerminationSignals,
  };
}

/** Calls `handler` on SIGINT, SIGTERM and SIGHUP until the returned function is called. */
export function trapTerminationSignals(
  handler: (signal: TerminationSignal) => void,
): () => void {
  const signals = Object.keys(TERMINATION_SIGNALS) as TerminationSignal[];
  const listeners = signals.map((signal) => [signal, () => handler(signal)] as const);
  for (const [signal, listener] of listeners) Deno.addSignalListener(signal, listener);
  return () => {
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  };
}
