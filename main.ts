/**
 * kernelsim: boots the simulated PC and its kernel. See `--help`.
 *
 * @module
 */

import {
  OutputFile,
  readInputFile,
  runCli,
  TERMINATION_SIGNALS,
  type TerminationSignal,
} from "./cli/mod.ts";

if (import.meta.main) {
  const status = await runCli(Deno.args, {
    stdout: Deno.stdout,
    stderr: Deno.stderr,
    stdin: Deno.stdin,
    readFile: readInputFile,
    createFile: (path, truncate) =>
      OutputFile.open(path, truncate, { stdout: Deno.stdout, stderr: Deno.stderr }),
    onTerminationSignal: trapTerminationSignals,
  });
  Deno.exit(status);
}

/** Calls `handler` on SIGINT, SIGTERM and SIGHUP until the returned function is called. */
function trapTerminationSignals(handler: (signal: TerminationSignal) => void): () => void {
  const signals = Object.keys(TERMINATION_SIGNALS) as TerminationSignal[];
  const listeners = signals.map((signal) => [signal, () => handler(signal)] as const);
  for (const [signal, listener] of listeners) Deno.addSignalListener(signal, listener);
  return () => {
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  };
}
