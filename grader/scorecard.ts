/**
 * The scorecard of one grade: every check's result (pass or fail, points,
 * and on failure what was expected and what happened), the total, the seed
 * that reproduces it, and whether it reaches the pass mark. It holds no
 * timing, so the same seed gives a byte-identical card.
 *
 * @module
 */

import { CHECKSUM_SEED, foldChecksum } from "../lib/mod.ts";
import type { CheckInfo } from "./check.ts";

/** The labs, by the name of their option. */
export type LabKind = "frames" | "pagetable" | "heap" | "cow";

/** The result of one check. */
export interface CheckResult {
  /** The check's id, e.g. `frames.double-free`. */
  readonly id: string;
  /** What the check demands. */
  readonly title: string;
  /** Points it is worth. */
  readonly points: number;
  /** Points earned: all of them, or 0. */
  readonly earned: number;
  /** Whether it passed (no failure and no leak). */
  readonly passed: boolean;
  /** The check's own seed, derived from the run's. */
  readonly seed: number;
  /** Its step budget (operations). */
  readonly budget: number;
  /** Operations it took (absent when the check was stopped). */
  readonly steps?: number;
  /** On failure: what the check expected. */
  readonly expected?: string;
  /** On failure: what happened. */
  readonly actual?: string;
  /** Frames or heap bytes left behind, in words. */
  readonly leak?: string;
}

/** A whole grade. */
export interface Scorecard {
  /** The lab. */
  readonly lab: LabKind;
  /** The lab's name in words. */
  readonly labTitle: string;
  /** The module graded, as given (`stock` for the stock part). */
  readonly module: string;
  /** The run's seed: `--seed` reproduces the card. */
  readonly seed: number;
  /** The lab's options, e.g. `{ "frameOrder": "any" }`. */
  readonly options: Readonly<Record<string, string>>;
  /** Every check, in order. */
  readonly checks: readonly CheckResult[];
  /** Points earned. */
  readonly score: number;
  /** Points available. */
  readonly total: number;
  /** `score / total` as a percentage, to one decimal. */
  readonly percent: number;
  /** The pass mark, a percentage. */
  readonly passMark: number;
  /** Whether `percent` reaches the pass mark. */
  readonly passed: boolean;
}

/** What a scorecard is built from. */
export interface ScorecardInput {
  /** The lab. */
  readonly lab: LabKind;
  /** The lab's name in words. */
  readonly labTitle: string;
  /** The module graded. */
  readonly module: string;
  /** The run's seed. */
  readonly seed: number;
  /** The lab's options. */
  readonly options: Readonly<Record<string, string>>;
  /** The pass mark, a percentage. */
  readonly passMark: number;
  /** Every check's result, in order. */
  readonly checks: readonly CheckResult[];
}

/**
 * Totals the results into a scorecard.
 *
 * @param input The lab, module, seed, pass mark and results.
 * @returns The scorecard.
 */
export function buildScorecard(input: ScorecardInput): Scorecard {
  const score = input.checks.reduce((sum, check) => sum + check.earned, 0);
  const total = input.checks.reduce((sum, check) => sum + check.points, 0);
  const percent = total === 0 ? 0 : Math.round((score * 1000) / total) / 10;
  return {
    lab: input.lab,
    labTitle: input.labTitle,
    module: input.module,
    seed: input.seed,
    options: input.options,
    checks: input.checks,
    score,
    total,
    percent,
    passMark: input.passMark,
    passed: percent >= input.passMark,
  };
}

/**
 * The seed of one check: the run's seed folded with the check's id, so a
 * check's seed does not depend on which other checks run.
 *
 * @param runSeed The run's seed (any 32-bit value).
 * @param checkId The check's id.
 * @returns A non-zero 32-bit seed.
 */
export function checkSeed(runSeed: number, checkId: string): number {
  let hash = foldChecksum(CHECKSUM_SEED, runSeed >>> 0);
  for (let i = 0; i < checkId.length; i++) hash = foldChecksum(hash, checkId.charCodeAt(i));
  return hash === 0 ? 1 : hash;
}

/**
 * The result of a check that never finished: a call into the module did
 * not return, or the worker running it stopped.
 *
 * @param check The check.
 * @param runSeed The run's seed.
 * @param expected What was expected.
 * @param actual What happened.
 * @returns A failed result without a step count.
 */
export function stoppedResult(
  check: CheckInfo,
  runSeed: number,
  expected: string,
  actual: string,
): CheckResult {
  return {
    id: check.id,
    title: check.title,
    points: check.points,
    earned: 0,
    passed: false,
    seed: checkSeed(runSeed, check.id),
    budget: check.budget,
    expected,
    actual,
  };
}
