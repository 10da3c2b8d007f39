/**
 * The scorecard as JUnit XML (`--junit FILE`), the format CI systems and
 * learning platforms read: one test suite per lab, one test case per
 * check, a `<failure>` with what was expected and what happened. The run's
 * seed, module and score are suite properties. No timings, so the same
 * seed gives the same file.
 *
 * @module
 */

import type { Scorecard } from "./scorecard.ts";

/**
 * Formats a scorecard as a JUnit XML document.
 *
 * @param card The scorecard.
 * @returns The document, ending in a newline.
 */
export function formatJunit(card: Scorecard): string {
  const failures = card.checks.filter((check) => !check.passed).length;
  const suite = `kernelsim.grade.${card.lab}`;
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="kernelsim grade" tests="${card.checks.length}" failures="${failures}">`,
    `  <testsuite name="${suite}" tests="${card.checks.length}" failures="${failures}" errors="0" skipped="0">`,
    "    <properties>",
  ];
  const properties: [string, string][] = [
    ["lab", card.lab],
    ["module", card.module],
    ["seed", String(card.seed)],
    ...Object.entries(card.options),
    ["score", String(card.score)],
    ["total", String(card.total)],
    ["percent", String(card.percent)],
    ["passMark", String(card.passMark)],
    ["passed", String(card.passed)],
  ];
  for (const [name, value] of properties) {
    lines.push(`      <property name="${escapeXml(name)}" value="${escapeXml(value)}"/>`);
  }
  lines.push("    </properties>");
  for (const check of card.checks) {
    const open = `    <testcase classname="${suite}" name="${
      escapeXml(`${check.id}: ${check.title}`)
    }"`;
    if (check.passed) {
      lines.push(`${open}/>`);
      continue;
    }
    const details = [
      check.expected === undefined ? undefined : `expected: ${check.expected}`,
      check.actual === undefined ? undefined : `actual: ${check.actual}`,
      check.leak === undefined ? undefined : `leak: ${check.leak}`,
      `points: 0 of ${check.points}; seed ${check.seed}`,
    ].filter((line) => line !== undefined).join("\n");
    const message = check.expected === undefined
      ? (check.leak ?? "failed")
      : `expected ${check.expected}`;
    lines.push(`${open}>`);
    lines.push(
      `      <failure message="${escapeXml(message)}" type="${escapeXml(check.id)}">${
        escapeXml(details)
      }</failure>`,
    );
    lines.push("    </testcase>");
  }
  lines.push("  </testsuite>", "</testsuites>");
  return `${lines.join("\n")}\n`;
}

/** Escapes text for an XML attribute or element. */
function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&apos;")
    // Control characters other than tab and newline are not allowed in XML 1.0.
    // deno-lint-ignore no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, "\ufffd");
}
