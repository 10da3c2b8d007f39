/**
 * Grading one part: load the student's module (or take the stock part),
 * run the lab's checks, and total them into a {@linkcode Scorecard}.
 *
 * {@linkcode gradeInWorker} is what `deno task grade` uses: the checks run
 * in a Worker while this thread watches the SDK's shared call status; a
 * call into the student's module that does not return within the timeout
 * is stopped (the Worker is terminated), that check fails with "did not
 * return", and a fresh Worker goes on with the next check.
 * {@linkcode gradeInProcess} runs everything on this thread (no watchdog),
 * for tests and for parts known to return.
 *
 * The Worker module is `grade_worker.ts`; a `deno compile` of a program
 * that grades must `--include` it.
 *
 * @module
 */

import {
  type LoadOptions,
  loadPartModule,
  type ModuleImporter,
  UserCallStatus,
  UserCallWatchdog,
  UserModuleError,
} from "../sdk/mod.ts";
import { DEFAULT_LAB_OPTIONS, type Lab, type LabOptions, LABS } from "./labs.ts";
import { runCheck } from "./run_check.ts";
import {
  buildScorecard,
  type CheckResult,
  type LabKind,
  type Scorecard,
  stoppedResult,
} from "./scorecard.ts";
import type { WorkerReply, WorkerStart } from "./_worker_protocol.ts";

/** The module name that stands for the stock part. */
export const STOCK_MODULE = "stock";
/** The default pass mark: every point. */
export const DEFAULT_PASS_MARK = 100;
/** The default time one call into the student's module may take. */
export const DEFAULT_USER_TIMEOUT_MS = 5_000;

/** What to grade and how. */
export interface GradeRequest {
  /** The lab. */
  readonly lab: LabKind;
  /** The module's path, or `stock`. */
  readonly module: string;
  /** The run's seed. */
  readonly seed: number;
  /** The lab's options (default: any frame order). */
  readonly options?: LabOptions;
  /** The pass mark, a percentage (default 100). */
  readonly passMark?: number;
  /** Directory relative module paths start from (default: the working directory). */
  readonly baseDir?: string;
}

/** What a grade came to: a scorecard, or a module that could not be graded. */
export type GradeOutcome =
  | { readonly kind: "graded"; readonly scorecard: Scorecard }
  | { readonly kind: "refused"; readonly message: string };

/**
 * Grades on this thread, without a watchdog.
 *
 * @param request What to grade.
 * @param importModule How to import the student's module (the caller's `import()`).
 * @returns The scorecard, or why the module cannot be graded.
 */
export async function gradeInProcess(
  request: GradeRequest,
  importModule: ModuleImporter,
): Promise<GradeOutcome> {
  const lab = LABS[request.lab];
  const options = request.options ?? DEFAULT_LAB_OPTIONS;
  let factory: unknown;
  try {
    factory = await loadFactory(lab, request.module, {
      importModule,
      status: new UserCallStatus(),
      baseDir: request.baseDir,
    });
  } catch (error) {
    if (error instanceof UserModuleError) return { kind: "refused", message: error.message };
    throw error;
  }
  const results = lab.checks(options).map((check) => runCheck(check, factory, request.seed));
  return { kind: "graded", scorecard: scorecardOf(request, lab, results) };
}

/**
 * Loads the part a lab grades: the stock one, or the module at `path`,
 * guarded, its calls recorded in `options.status`.
 *
 * @param lab The lab.
 * @param path The module's path, or `stock`.
 * @param options The importer, the call status and the base directory.
 * @returns The part's factory.
 * @throws {UserModuleError} If the module cannot be used.
 */
export async function loadFactory(
  lab: Lab<unknown>,
  path: string,
  options: LoadOptions,
): Promise<unknown> {
  if (path === STOCK_MODULE) return lab.stock;
  return (await loadPartModule(lab.partKind, path, options)).create;
}

/**
 * Grades in a Worker under a watchdog.
 *
 * @param request What to grade.
 * @param userTimeoutMs How long one call into the module may run.
 * @returns The scorecard, or why the module cannot be graded.
 */
export async function gradeInWorker(
  request: GradeRequest,
  userTimeoutMs: number = DEFAULT_USER_TIMEOUT_MS,
): Promise<GradeOutcome> {
  const lab = LABS[request.lab];
  const checks = lab.checks(request.options ?? DEFAULT_LAB_OPTIONS);
  const results: CheckResult[] = [];
  while (results.length < checks.length) {
    const run = await runWorker(
      request,
      results.length,
      userTimeoutMs,
      (result) => results.push(result),
    );
    if (run.kind === "refused") return run;
    if (run.kind === "stopped") {
      const check = checks[results.length];
      results.push(stoppedResult(check, request.seed, run.expected, run.actual));
    }
  }
  return { kind: "graded", scorecard: scorecardOf(request, lab, results) };
}

/** How one Worker's run ended. */
type WorkerEnd =
  | { readonly kind: "done" }
  | { readonly kind: "refused"; readonly message: string }
  | { readonly kind: "stopped"; readonly expected: string; readonly actual: string };

/** Runs the checks from `startIndex` in a new Worker until they end or one is stopped. */
function runWorker(
  request: GradeRequest,
  startIndex: number,
  userTimeoutMs: number,
  onResult: (result: CheckResult) => void,
): Promise<WorkerEnd> {
  const status = new UserCallStatus();
  const watchdog = new UserCallWatchdog(status, userTimeoutMs);
  const worker = new Worker(new URL("./grade_worker.ts", import.meta.url).href, { type: "module" });
  return new Promise((resolve) => {
    let isLoaded = false;
    const finish = (end: WorkerEnd) => {
      stopWatchdog();
      worker.terminate();
      resolve(end);
    };
    const stopWatchdog = watchdog.start((overrun) => {
      if (!isLoaded && startIndex === 0) {
        finish({ kind: "refused", message: `stopped: ${overrun.message}` });
      } else {
        finish({
          kind: "stopped",
          expected: "every call into the module to return",
          actual: overrun.message,
        });
      }
    });
    worker.onmessage = (event: MessageEvent<WorkerReply>) => {
      const reply = event.data;
      if (reply.kind === "loaded") isLoaded = true;
      else if (reply.kind === "result") onResult(reply.result);
      else if (reply.kind === "done") finish({ kind: "done" });
      else finish({ kind: "refused", message: reply.message });
    };
    worker.onerror = (event) => {
      event.preventDefault();
      finish({
        kind: "stopped",
        expected: "the check to run to its end",
        actual: `the grader's worker stopped: ${event.message}`,
      });
    };
    const start: WorkerStart = { request, startIndex, statusBuffer: status.buffer };
    worker.postMessage(start);
  });
}

function scorecardOf(
  request: GradeRequest,
  lab: Lab<unknown>,
  results: readonly CheckResult[],
): Scorecard {
  return buildScorecard({
    lab: request.lab,
    labTitle: lab.title,
    module: request.module,
    seed: request.seed,
    options: lab.describeOptions(request.options ?? DEFAULT_LAB_OPTIONS),
    passMark: request.passMark ?? DEFAULT_PASS_MARK,
    checks: results,
  });
}
