/**
 * `deno task grade`: parses the command line, grades the part in a Worker
 * under a watchdog, prints the scorecard (text, or JSON with `--json`),
 * writes JUnit XML with `--junit FILE`, and returns the exit status:
 * 0 the score reaches the pass mark, 1 it does not, 2 a bad command line,
 * a module that cannot be loaded, or a report file that cannot be written.
 *
 * @module
 */

import {
  EXIT_BELOW_PASS_MARK,
  EXIT_PASSED,
  EXIT_USAGE,
  GRADE_HELP_TEXT,
  GradeUsageError,
  parseGradeOptions,
} from "./grade_options.ts";
import { gradeInWorker, type GradeOutcome, type GradeRequest } from "./grade.ts";
import { formatJunit } from "./scorecard_junit.ts";
import { formatScorecard } from "./scorecard_text.ts";

/** A stream the CLI writes whole texts to. */
export interface GradeWriter {
  /** Writes some of `bytes`; returns how many. */
  writeSync(bytes: Uint8Array): number;
}

/** What the grader's CLI needs from its host. */
export interface GradeHost {
  /** Standard output: the scorecard. */
  readonly stdout: GradeWriter;
  /** Standard error: one line for a bad command line or module. */
  readonly stderr: GradeWriter;
  /** Writes a whole file (`--junit`); throws if it cannot. */
  writeTextFile(path: string, text: string): void;
  /** A fresh seed when `--seed` is not given. */
  randomSeed(): number;
}

/** Grades a request; {@linkcode gradeInWorker} unless a test supplies another. */
export type Grader = (request: GradeRequest, userTimeoutMs: number) => Promise<GradeOutcome>;

/**
 * Runs the grader's command line.
 *
 * @param args The arguments (a leading `--` is skipped).
 * @param host The streams, files and seed source.
 * @param grade How to grade (default: in a Worker under a watchdog).
 * @returns The exit status.
 */
export async function runGradeCli(
  args: readonly string[],
  host: GradeHost,
  grade: Grader = gradeInWorker,
): Promise<number> {
  let options;
  try {
    options = parseGradeOptions(args);
  } catch (error) {
    if (!(error instanceof GradeUsageError)) throw error;
    writeText(host.stderr, `kernelsim grade: ${error.message}\n`);
    return EXIT_USAGE;
  }
  if (options.help) {
    writeText(host.stdout, GRADE_HELP_TEXT);
    return EXIT_PASSED;
  }
  const outcome = await grade({
    lab: options.lab,
    module: options.module,
    seed: options.seed ?? host.randomSeed(),
    options: { frameOrder: options.frameOrder },
    passMark: options.passMark,
  }, options.userTimeoutMs);
  if (outcome.kind === "refused") {
    writeText(host.stderr, `kernelsim grade: ${outcome.message}\n`);
    return EXIT_USAGE;
  }
  const card = outcome.scorecard;
  if (options.junitPath !== undefined) {
    try {
      host.writeTextFile(options.junitPath, formatJunit(card));
    } catch (error) {
      const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
      writeText(host.stderr, `kernelsim grade: Cannot write ${options.junitPath}: ${reason}\n`);
      return EXIT_USAGE;
    }
  }
  writeText(
    host.stdout,
    options.json ? `${JSON.stringify(card, null, 2)}\n` : formatScorecard(card),
  );
  return card.passed ? EXIT_PASSED : EXIT_BELOW_PASS_MARK;
}

function writeText(writer: GradeWriter, text: string): void {
  const bytes = new TextEncoder().encode(text);
  for (let offset = 0; offset < bytes.length;) offset += writer.writeSync(bytes.subarray(offset));
}
