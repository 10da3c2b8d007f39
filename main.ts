/**
 * kernelsim: boots the simulated PC and its kernel. See `--help`.
 *
 * A run that loads user modules (`--frames`, `--kernel`, `--device` ...)
 * runs in a worker under a watchdog, so that a module that never returns is
 * stopped; every other run stays on this thread.
 *
 * @module
 */

import {
  denoHost,
  hasUserModules,
  parseCliOptions,
  runCli,
  runCliUnderWatchdog,
} from "./cli/mod.ts";

if (import.meta.main) {
  const watchdogTimeoutMs = userTimeoutMs(Deno.args);
  const status = watchdogTimeoutMs === undefined
    ? await runCli(Deno.args, denoHost())
    : await runCliUnderWatchdog(Deno.args, watchdogTimeoutMs, Deno);
  Deno.exit(status);
}

/** The watchdog's timeout when the arguments load user modules (a bad command line: none). */
function userTimeoutMs(args: readonly string[]): number | undefined {
  try {
    const options = parseCliOptions(args);
    return hasUserModules(options) ? options.userTimeoutMs : undefined;
  } catch {
    return undefined; // runCli reports the bad command line
  }
}
