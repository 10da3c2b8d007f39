/**
 * One check of a lab and the context it runs in: its seed, its step budget
 * (a bounded number of operations, never a wall-clock timeout), and the
 * leaks found after it.
 *
 * A check throws a {@linkcode CheckFailure} (what was expected, what
 * happened) at the first thing that does not hold. Whatever else escapes it
 * (a `UserCodeError` out of the student's module, a hardware fault the
 * student's tables caused) fails the check too; the runner describes it.
 *
 * @module
 */

import { Xorshift32 } from "../lib/mod.ts";

/** What the scorecard shows of a check before it runs. */
export interface CheckInfo {
  /** Stable identifier, `lab.property` (e.g. `frames.double-free`). */
  readonly id: string;
  /** What the check demands, as a sentence. */
  readonly title: string;
  /** Points it is worth (all or nothing). */
  readonly points: number;
  /** The most operations (calls into the part, frames scanned) it may take. */
  readonly budget: number;
}

/** A check of a lab whose part is built by a factory of type `F`. */
export interface Check<F> extends CheckInfo {
  /**
   * Runs the check on a fresh machine with a part made by `factory`; gives
   * back everything it took and reports leaks through `context`.
   *
   * @throws {CheckFailure} At the first expectation that does not hold.
   */
  run(factory: F, context: CheckContext): void;
}

/** Thrown by a check when something does not hold. */
export class CheckFailure extends Error {
  override readonly name = "CheckFailure";
  /** What the check expected, in words. */
  readonly expected: string;
  /** What happened instead. */
  readonly actual: string;

  /**
   * Creates the failure.
   *
   * @param expected What the check expected.
   * @param actual What happened.
   */
  constructor(expected: string, actual: string) {
    super(`Expected ${expected}, but ${actual}`);
    this.expected = expected;
    this.actual = actual;
  }
}

/** Thrown when a check would take more operations than its budget. */
export class StepBudgetExceeded extends Error {
  override readonly name = "StepBudgetExceeded";
  /** The budget that ran out. */
  readonly budget: number;

  /**
   * Creates the error.
   *
   * @param budget The budget that ran out.
   */
  constructor(budget: number) {
    super(`The check needed more than its ${budget} operations`);
    this.budget = budget;
  }
}

/** The seed, budget, step count and leaks of one check while it runs. */
export class CheckContext {
  /** The check's own seed, derived from the run's seed and the check's id. */
  readonly seed: number;
  /** A generator seeded with {@linkcode CheckContext.seed}. */
  readonly rng: Xorshift32;
  /** The most operations the check may take. */
  readonly budget: number;
  #steps = 0;
  readonly #leaks: string[] = [];

  /**
   * Creates the context of one check.
   *
   * @param seed The check's seed (a non-zero 32-bit value).
   * @param budget The most operations it may take.
   */
  constructor(seed: number, budget: number) {
    this.seed = seed;
    this.rng = new Xorshift32(seed);
    this.budget = budget;
  }

  /** Operations taken so far. */
  get steps(): number {
    return this.#steps;
  }

  /** Leaks reported after the check, in words. */
  get leaks(): readonly string[] {
    return this.#leaks;
  }

  /**
   * Counts `count` operations against the budget.
   *
   * @param count How many operations (default one).
   * @throws {StepBudgetExceeded} When the budget is used up.
   */
  step(count = 1): void {
    this.#steps += count;
    if (this.#steps > this.budget) throw new StepBudgetExceeded(this.budget);
  }

  /**
   * Records a leak found after the check (frames, heap bytes); it fails the check.
   *
   * @param description E.g. `leaked 2 frames (0x1234, 0x1235)`.
   */
  reportLeak(description: string): void {
    this.#leaks.push(description);
  }
}

/**
 * Fails the check unless `condition` holds.
 *
 * @param condition What must hold.
 * @param expected What the check expected, in words.
 * @param actual What happened, in words (a function, so hot loops build no string when it holds).
 * @throws {CheckFailure} When `condition` is false.
 */
export function expect(
  condition: boolean,
  expected: string,
  actual: string | (() => string),
): asserts condition {
  if (!condition) throw new CheckFailure(expected, typeof actual === "string" ? actual : actual());
}

/**
 * Fails the check.
 *
 * @param expected What the check expected.
 * @param actual What happened.
 * @throws {CheckFailure} Always.
 */
export function fail(expected: string, actual: string): never {
  throw new CheckFailure(expected, actual);
}
