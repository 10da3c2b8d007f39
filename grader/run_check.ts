/**
 * Runs one check in this thread and turns what happened into a
 * {@linkcode CheckResult}: a {@linkcode CheckFailure} gives its own
 * expected and actual; an exception out of the student's module gives the
 * `UserCodeError` line (module, call, cause); a budget that runs out, or
 * any other exception (a page fault, a bus error the part's tables caused),
 * is described in one line. Leaks reported after the check fail it too.
 *
 * @module
 */

import { describeThrown } from "../kernel/mod.ts";
import { UserCodeError } from "../sdk/mod.ts";
import { type Check, CheckContext, CheckFailure, StepBudgetExceeded } from "./check.ts";
import { type CheckResult, checkSeed } from "./scorecard.ts";

/**
 * Runs `check` against the part `factory` builds.
 *
 * @param check The check.
 * @param factory The part's factory (guarded for a student's module).
 * @param runSeed The run's seed.
 * @returns The check's result; never throws for what the part does.
 */
export function runCheck<F>(check: Check<F>, factory: F, runSeed: number): CheckResult {
  const seed = checkSeed(runSeed, check.id);
  const context = new CheckContext(seed, check.budget);
  let failure: { expected: string; actual: string } | undefined;
  try {
    check.run(factory, context);
  } catch (error) {
    failure = describeFailure(error);
  }
  const leak = context.leaks.length > 0 ? context.leaks.join("; ") : undefined;
  const passed = failure === undefined && leak === undefined;
  return {
    id: check.id,
    title: check.title,
    points: check.points,
    earned: passed ? check.points : 0,
    passed,
    seed,
    budget: check.budget,
    steps: context.steps,
    ...failure,
    ...(leak === undefined ? {} : { leak }),
  };
}

/** What a check's exception means, as expected / actual. */
function describeFailure(error: unknown): { expected: string; actual: string } {
  if (error instanceof CheckFailure) return { expected: error.expected, actual: error.actual };
  if (error instanceof StepBudgetExceeded) {
    return {
      expected: `the check to finish within its budget of ${error.budget} operations`,
      actual: "it needed more operations",
    };
  }
  if (error instanceof UserCodeError) {
    return {
      expected: "calls into the module to return or throw the contract's errors",
      actual: error.message,
    };
  }
  return { expected: "no fault or exception", actual: `it threw ${describeThrown(error)}` };
}
