/**
 * The Worker that runs a grade's checks while the main thread watches the
 * shared call status (see `grade.ts`): it loads the part, runs the checks
 * from the index it is given, and posts each result as it is known, so
 * that a call that never returns costs only the check it is in.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { UserCallStatus, UserModuleError } from "../sdk/mod.ts";
import { loadFactory } from "./grade.ts";
import { DEFAULT_LAB_OPTIONS, LABS } from "./labs.ts";
import { runCheck } from "./run_check.ts";
import type { WorkerReply, WorkerStart } from "./_worker_protocol.ts";

self.onmessage = async (event: MessageEvent<WorkerStart>) => {
  const { request, startIndex, statusBuffer } = event.data;
  const reply = (message: WorkerReply) => self.postMessage(message);
  const lab = LABS[request.lab];
  let factory: unknown;
  try {
    factory = await loadFactory(lab, request.module, {
      // The one dynamic import of a student's module: here, outside the published package.
      importModule: (url) => import(url),
      status: new UserCallStatus(statusBuffer),
      baseDir: request.baseDir,
    });
  } catch (error) {
    if (!(error instanceof UserModuleError)) throw error;
    reply({ kind: "refused", message: error.message });
    return;
  }
  reply({ kind: "loaded" });
  const checks = lab.checks(request.options ?? DEFAULT_LAB_OPTIONS);
  for (let index = startIndex; index < checks.length; index++) {
    reply({ kind: "result", result: runCheck(checks[index], factory, request.seed) });
  }
  reply({ kind: "done" });
};
