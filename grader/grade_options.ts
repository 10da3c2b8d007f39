/**
 * The command line of `deno task grade`: which lab and module, the seed, the
 * output formats, the pass mark, the watchdog's timeout, and the lab's
 * options. Every bad option is a {@linkcode GradeUsageError} with one line.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DEFAULT_PASS_MARK, DEFAULT_USER_TIMEOUT_MS } from "./grade.ts";
import { LAB_KINDS } from "./labs.ts";
import type { FrameOrder } from "./frames_lab.ts";
import type { LabKind } from "./scorecard.ts";

/** A bad command line: the CLI prints the message and exits 2. */
export class GradeUsageError extends Error {
  override readonly name = "GradeUsageError";
}

/** The parsed command line. */
export interface GradeOptions {
  /** The lab (which of `--frames`, `--pagetable`, `--heap`, `--cow` was given). */
  readonly lab: LabKind;
  /** The module's path, or `stock`. */
  readonly module: string;
  /** `--seed N`, or undefined for a fresh random seed. */
  readonly seed: number | undefined;
  /** `--json`: the scorecard as JSON on stdout. */
  readonly json: boolean;
  /** `--junit FILE`: also write a JUnit XML report. */
  readonly junitPath: string | undefined;
  /** `--pass-mark P`: the percentage that passes. */
  readonly passMark: number;
  /** `--user-timeout SECONDS`, in ms. */
  readonly userTimeoutMs: number;
  /** `--frame-order lowest|any` (frames lab). */
  readonly frameOrder: FrameOrder;
  /** `--help`. */
  readonly help: boolean;
}

/** Exit status: the scorecard reaches the pass mark. */
export const EXIT_PASSED = 0;
/** Exit status: the scorecard is below the pass mark. */
export const EXIT_BELOW_PASS_MARK = 1;
/** Exit status: a bad command line, or a module that cannot be graded. */
export const EXIT_USAGE = 2;

const MAX_SEED = 2 ** 32 - 1;
const MAX_USER_TIMEOUT_MS = 3_600_000;
const FRAME_ORDERS: readonly FrameOrder[] = ["any", "lowest"];

/**
 * Parses the grader's command line. A leading `--` is skipped.
 *
 * @param args The arguments.
 * @returns The options.
 * @throws {GradeUsageError} For anything it cannot accept, with one line.
 */
export function parseGradeOptions(args: readonly string[]): GradeOptions {
  let values;
  try {
    values = parseArgs({
      args: args[0] === "--" ? args.slice(1) : [...args],
      strict: true,
      allowPositionals: false,
      options: {
        frames: { type: "string" },
        pagetable: { type: "string" },
        heap: { type: "string" },
        cow: { type: "string" },
        seed: { type: "string" },
        json: { type: "boolean" },
        junit: { type: "string" },
        "pass-mark": { type: "string" },
        "user-timeout": { type: "string" },
        "frame-order": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (error) {
    throw new GradeUsageError(describeParseError(error));
  }
  const help = values.help ?? false;
  const given = LAB_KINDS.filter((kind) => values[kind] !== undefined);
  if (given.length === 0 && !help) {
    throw new GradeUsageError(
      "Name the part to grade: --frames, --pagetable, --heap or --cow FILE (or stock)",
    );
  }
  if (given.length > 1) {
    throw new GradeUsageError(`Grade one part at a time: got --${given.join(" and --")}`);
  }
  const lab = given[0] ?? "frames";
  const module = values[lab] ?? "stock";
  if (module === "") throw new GradeUsageError(`Option --${lab} needs a file (or stock)`);
  if (values["frame-order"] !== undefined && lab !== "frames") {
    throw new GradeUsageError("Option --frame-order is for the frames lab (--frames)");
  }
  if (values.junit === "") throw new GradeUsageError("Option --junit needs a file name");
  return {
    lab,
    module,
    seed: values.seed === undefined ? undefined : parseSeed(values.seed),
    json: values.json ?? false,
    junitPath: values.junit,
    passMark: values["pass-mark"] === undefined
      ? DEFAULT_PASS_MARK
      : parsePassMark(values["pass-mark"]),
    userTimeoutMs: values["user-timeout"] === undefined
      ? DEFAULT_USER_TIMEOUT_MS
      : parseUserTimeout(values["user-timeout"]),
    frameOrder: values["frame-order"] === undefined
      ? "any"
      : parseFrameOrder(values["frame-order"]),
    help,
  };
}

function parseSeed(text: string): number {
  const value = /^(0x[0-9a-f]+|[0-9]+)$/i.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(value) || value > MAX_SEED) {
    throw new GradeUsageError(
      `Invalid --seed "${text}": expected an integer from 0 to ${MAX_SEED}`,
    );
  }
  return value;
}

function parsePassMark(text: string): number {
  const value = /^[0-9]+(\.[0-9]+)?$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!(value >= 0 && value <= 100)) {
    throw new GradeUsageError(`Invalid --pass-mark "${text}": expected a percentage from 0 to 100`);
  }
  return value;
}

function parseUserTimeout(text: string): number {
  const ms = /^[0-9]+(\.[0-9]+)?$/.test(text.trim())
    ? Math.round(Number(text.trim()) * 1000)
    : Number.NaN;
  if (!(ms >= 1 && ms <= MAX_USER_TIMEOUT_MS)) {
    throw new GradeUsageError(
      `Invalid --user-timeout "${text}": expected seconds from 0.001 to 3600, e.g. 5 or 0.5`,
    );
  }
  return ms;
}

function parseFrameOrder(text: string): FrameOrder {
  const order = FRAME_ORDERS.find((candidate) => candidate === text);
  if (order === undefined) {
    throw new GradeUsageError(
      `Invalid --frame-order "${text}": expected ${FRAME_ORDERS.join(" or ")}`,
    );
  }
  return order;
}

function describeParseError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const unknown = /Unknown option '([^']+)'/.exec(message);
  if (unknown) return `Unknown option ${unknown[1]}: see --help`;
  const missing = /Option '(?:-\w, )?(--[\w-]+) <value>' argument missing/.exec(message);
  if (missing) return `Option ${missing[1]} needs a value: see --help`;
  const ambiguous = /Option '(?:-\w, )?(--[\w-]+)' argument is ambiguous/.exec(message);
  if (ambiguous) {
    return `Option ${ambiguous[1]}: write a value starting with "-" as ${ambiguous[1]}=VALUE`;
  }
  const flag = /Option '(?:-\w, )?(--[\w-]+)' does not take an argument/.exec(message);
  if (flag) return `Option ${flag[1]} takes no value`;
  const positional = /Unexpected argument '([^']+)'/.exec(message);
  if (positional) {
    return `Unexpected argument "${positional[1]}": name the module with --frames FILE and so on`;
  }
  return message.split("\n")[0];
}

/** The `--help` text. */
export const GRADE_HELP_TEXT =
  `kernelsim grade: grade a kernel part against the lab's conformance suite

Usage: deno task grade -- --frames FILE [options]
       (or --pagetable, --heap, --cow; FILE "stock" grades the stock part)

Labs (one per run):
      --frames FILE         the physical frame allocator (a FrameProviderFactory)
      --pagetable FILE      the page-table mapper (a PageMapperFactory)
      --heap FILE           the kernel heap, kmalloc/kfree (a KernelHeapFactory)
      --cow FILE            the copy-on-write page-fault policy (a PageFaultPolicyFactory)

Options:
      --seed N              reproduce a run (default: a fresh random seed, printed)
      --json                print the scorecard as JSON on stdout
      --junit FILE          also write the scorecard as JUnit XML to FILE
      --pass-mark P         percentage needed to pass, 0 to 100 (default ${DEFAULT_PASS_MARK})
      --user-timeout SECS   stop a call into the module after SECS seconds and fail
                            its check (default ${DEFAULT_USER_TIMEOUT_MS / 1000})
      --frame-order ORDER   frames lab: "lowest" (allocate() returns the lowest free
                            frame, checked) or "any" (default)
  -h, --help                show this help

Exit status: 0 the score reaches the pass mark, 1 it does not, 2 bad command
line or a module that cannot be loaded.
The checks, their points and how determinism works: docs/grader.md.
`;
