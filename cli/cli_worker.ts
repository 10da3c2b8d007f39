/**
 * The worker that runs the whole CLI (the machine, the kernel and the
 * user's modules) while `main.ts`'s thread watches it: it records every call
 * into a user module in the shared {@linkcode UserCallStatus} it is given,
 * and posts the exit status when `runCli` ends.
 *
 * Message in: {@linkcode CliWorkerStart}. Message out: {@linkcode CliWorkerDone}.
 * This is the one module that imports user code (`import()`), so it is not
 * published with the package.
 *
 * @module
 */

import { UserCallStatus } from "../sdk/mod.ts";
import { denoHost } from "./deno_host.ts";
import { runCli } from "./run.ts";
import type { CliWorkerDone, CliWorkerStart } from "./watchdog.ts";

/** The worker's global scope, as far as this script uses it. */
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<CliWorkerStart>) => void) | null;
  postMessage(message: CliWorkerDone): void;
};

scope.onmessage = async (event: MessageEvent<CliWorkerStart>) => {
  const { args, statusBuffer } = event.data;
  const status = await runCli(args, {
    ...denoHost(),
    userCalls: new UserCallStatus(statusBuffer),
    // The one dynamic import of user code: here, in the entry point the package does not publish.
    importModule: (url) => import(url),
  });
  const done: CliWorkerDone = { status };
  scope.postMessage(done);
};
