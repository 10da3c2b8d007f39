/**
 * Runs monitor scripts through `main.ts` as a user would (piped into
 * `--console` on the virtual clock) and splits the transcript into the
 * commands the kernel echoed and what each printed, for end-to-end tests.
 *
 * @module
 */

import { assert, assertEquals } from "../testing/mod.ts";
import { MONITOR_BANNER, MONITOR_KEYS_LINE, MONITOR_PROMPT } from "../kernel/monitor/mod.ts";
import { hasStackTrace, runMain } from "./_cli.ts";

/** The monitor's first two lines. */
export const BANNER = `${MONITOR_BANNER}\n${MONITOR_KEYS_LINE}\n`;
/** The monitor's prompt. */
export const PROMPT = MONITOR_PROMPT;

/** One command of a transcript: the line the kernel echoed and what it printed. */
export interface Exchange {
  /** The line as echoed. */
  readonly command: string;
  /** What it printed, up to the next prompt. */
  readonly output: string;
}

/** A finished run of the monitor. */
export interface MonitorRun {
  /** Exit status. */
  readonly code: number;
  /** Standard output. */
  readonly stdout: string;
  /** Standard error. */
  readonly stderr: string;
  /** Everything after the banner. */
  readonly transcript: string;
  /** The transcript split at each prompt. */
  readonly exchanges: readonly Exchange[];
}

/** Pipes `script` into `main.ts --console` on a virtual clock, with `args` added. */
export async function runMonitor(
  script: string,
  args: readonly string[] = [],
): Promise<MonitorRun> {
  const run = await runMain(
    ["--clock", "virtual", "--console", ...args],
    new TextEncoder().encode(script),
  );
  assert(!hasStackTrace(run.stdout + run.stderr), run.stdout + run.stderr);
  const start = run.stdout.indexOf(BANNER);
  assert(start >= 0, `no monitor banner in:\n${run.stdout}\n${run.stderr}`);
  const transcript = run.stdout.slice(start + BANNER.length);
  const exchanges = transcript.split(PROMPT).slice(1).map((block) => {
    const newline = block.indexOf("\n");
    return newline < 0
      ? { command: block, output: "" }
      : { command: block.slice(0, newline), output: block.slice(newline + 1) };
  });
  return { ...run, transcript, exchanges };
}

/** The output of the only exchange whose command is `command`. */
export function outputOf(run: MonitorRun, command: string): string {
  const found = run.exchanges.filter((exchange) => exchange.command === command);
  assertEquals(found.length, 1, `one "${command}" in:\n${run.transcript}`);
  return found[0].output;
}

/** The outputs of every exchange whose command is `command`, in order. */
export function outputsOf(run: MonitorRun, command: string): string[] {
  return run.exchanges.filter((exchange) => exchange.command === command).map((e) => e.output);
}
