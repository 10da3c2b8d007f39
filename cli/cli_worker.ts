/**
 * The worker that runs the whole CLI (the machine, the kernel and the
 * user's modules) while `main.ts`'s thread watches it: it records every call
 * into a user module in the shared {@linkcode UserCallStatus} it is given,
 * and posts the exit status when `runCli` ends.
 *
 * Message in: `{ args, statusBuffer }`. Message out: `{ status }`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { UserCallStatus } from "../sdk/mod.ts";
import { denoHost } from "./deno_host.ts";
import { runCli } from "./run.ts";

/** What the watchdog sends to start the run. */
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

self.onmessage = async (event: MessageEvent<CliWorkerStart>) => {
  const { args, statusBuffer } = event.data;
  const status = await runCli(args, {
    ...denoHost(),
    userCalls: new UserCallStatus(statusBuffer),
  });
  const done: CliWorkerDone = { status };
  self.postMessage(done);
};
