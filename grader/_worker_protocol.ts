/**
 * The messages between the grader's watchdog (the main thread) and the
 * Worker that runs the checks.
 *
 * @module
 */

import type { GradeRequest } from "./grade.ts";
import type { CheckResult } from "./scorecard.ts";

/** Main thread to Worker: what to grade, from which check, and where to record calls. */
export interface WorkerStart {
  /** What to grade. */
  readonly request: GradeRequest;
  /** The index of the first check to run. */
  readonly startIndex: number;
  /** The shared call status the watchdog reads. */
  readonly statusBuffer: SharedArrayBuffer;
}

/** Worker to main thread, in order: loaded, one result per check, done (or refused). */
export type WorkerReply =
  | { readonly kind: "loaded" }
  | { readonly kind: "result"; readonly result: CheckResult }
  | { readonly kind: "done" }
  | { readonly kind: "refused"; readonly message: string };
