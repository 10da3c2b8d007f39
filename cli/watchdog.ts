/**
 * Runs the CLI in a worker under a watchdog, for runs that load user
 * modules: the worker records each call into a module in a shared status
 * buffer; this thread polls it, and when one outermost call into user code
 * has not returned within the timeout, it terminates the worker (which
 * stops the user's loop wherever it is), restores the terminal, prints
 * which call it was and returns 124, the status `timeout(1)` uses.
 *
 * Everything the run writes goes straight to the process's streams from the
 * worker; the serial console writes whole lines, so at most a partial line
 * is lost when the worker is stopped.
 *
 * @module
 */

import { UserCallStatus, UserCallWatchdog } from "../sdk/mod.ts";
import { ExitStatus } from "./exit_status.ts";

/**
 * The worker's script. It is the one module that imports user code with a
 * dynamic `import()`, so it stays out of the published package (deno.json
 * `publish.exclude`): nothing imports it, not even its types.
 */
const CLI_WORKER_URL = new URL("./cli_worker.ts", import.meta.url);

/** What the watchdog sends the worker to start the run. */
export interface CliWorkerStart {
  /** The command-line arguments. */
  readonly args: readonly string[];
  /** The shared status buffer the watchdog reads. */
  readonly statusBuffer: SharedArrayBuffer;
}

/** What the worker sends back when the run ends. */
export interface CliWorkerDone {
  /** The exit status. */
  readonly status: number;
}

/** What the watchdog needs from the host. */
export interface WatchdogHost {
  /** Where the one line about a stopped call goes. */
  readonly stderr: { writeSync(bytes: Uint8Array): number };
  /** Standard input, whose raw mode is restored if the run is stopped. */
  readonly stdin: { isTerminal(): boolean; setRaw(mode: boolean): void };
}

/**
 * Runs `runCli(args)` in a worker and waits for its exit status, stopping
 * it if a call into user code runs longer than `timeoutMs`.
 *
 * @param args The command-line arguments.
 * @param timeoutMs How long one outermost call into user code may run.
 * @param host The streams.
 * @returns The run's exit status, or 124 if it was stopped.
 */
export function runCliUnderWatchdog(
  args: readonly string[],
  timeoutMs: number,
  host: WatchdogHost,
): Promise<number> {
  const status = new UserCallStatus();
  const watchdog = new UserCallWatchdog(status, timeoutMs);
  const worker = new Worker(CLI_WORKER_URL, { type: "module" });
  return new Promise((resolve) => {
    const finish = (exitStatus: number) => {
      stopWatchdog();
      worker.terminate();
      resolve(exitStatus);
    };
    const stopWatchdog = watchdog.start((overrun) => {
      finish(ExitStatus.userCodeStopped);
      if (host.stdin.isTerminal()) host.stdin.setRaw(false);
      writeLine(host, `kernelsim: stopped: ${overrun.message}`);
    });
    worker.onmessage = (event: MessageEvent<CliWorkerDone>) => finish(event.data.status);
    worker.onerror = (event) => {
      event.preventDefault();
      writeLine(host, `kernelsim: Internal error: ${event.message}`);
      finish(ExitStatus.internalError);
    };
    const start: CliWorkerStart = { args: [...args], statusBuffer: status.buffer };
    worker.postMessage(start);
  });
}

function writeLine(host: WatchdogHost, text: string): void {
  const bytes = new TextEncoder().encode(`${text}\n`);
  for (let offset = 0; offset < bytes.length;) {
    offset += host.stderr.writeSync(bytes.subarray(offset));
  }
}
