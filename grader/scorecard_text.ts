/**
 * The scorecard as text, as `deno task grade` prints it: one line per
 * check (PASS or FAIL, points, id, what it demands), on failure what was
 * expected, what happened and any leak, then the total and the command
 * that reproduces the run.
 *
 * @module
 */

import type { Scorecard } from "./scorecard.ts";

/**
 * Formats a scorecard for a terminal or a log.
 *
 * @param card The scorecard.
 * @returns Text ending in a newline; the same card gives the same text.
 */
export function formatScorecard(card: Scorecard): string {
  const lines: string[] = [];
  const options = Object.entries(card.options)
    .map(([key, value]) => `, ${key.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`)} ${value}`)
    .join("");
  lines.push(`kernelsim grade: ${card.lab} lab (${card.labTitle})`);
  lines.push(`module ${card.module}, seed ${card.seed}${options}`);
  lines.push("");
  const idWidth = Math.max(...card.checks.map((check) => check.id.length));
  const pointsWidth = Math.max(...card.checks.map((check) => String(check.points).length));
  for (const check of card.checks) {
    const points = `${String(check.earned).padStart(pointsWidth)}/${
      String(check.points).padEnd(pointsWidth)
    }`;
    lines.push(
      `${check.passed ? "PASS" : "FAIL"}  ${points}  ${check.id.padEnd(idWidth)}  ${check.title}`,
    );
    const indent = " ".repeat(6);
    if (check.expected !== undefined) lines.push(`${indent}expected: ${check.expected}`);
    if (check.actual !== undefined) lines.push(`${indent}actual:   ${check.actual}`);
    if (check.leak !== undefined) lines.push(`${indent}leak:     ${check.leak}`);
  }
  lines.push("");
  const verdict = card.passed ? "passed" : "below the pass mark";
  lines.push(
    `Score: ${card.score}/${card.total} (${card.percent}%), pass mark ${card.passMark}%: ${verdict}`,
  );
  lines.push(`Reproduce: ${reproduceCommand(card)}`);
  return `${lines.join("\n")}\n`;
}

/**
 * The command that grades the same module with the same seed and options.
 *
 * @param card The scorecard.
 * @returns E.g. `deno task grade -- --frames ./my_frames.ts --seed 1234`.
 */
export function reproduceCommand(card: Scorecard): string {
  const quote = (text: string) =>
    /^[\w./@:+-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
  const parts = [
    "deno task grade --",
    `--${card.lab}`,
    quote(card.module),
    "--seed",
    String(card.seed),
  ];
  if (card.options.frameOrder === "lowest") parts.push("--frame-order", "lowest");
  return parts.join(" ");
}
