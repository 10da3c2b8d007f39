/**
 * A tracer whose lines are collected in an array, for tests of `--trace`
 * events.
 *
 * @module
 */

import { type TraceCategory, Tracer } from "../hal/mod.ts";

/** A tracer for `categories` and the lines it has written so far. */
export function collectingTracer(
  categories: number | readonly TraceCategory[],
  nowNs?: () => number,
): { tracer: Tracer; lines: string[] } {
  const lines: string[] = [];
  return { tracer: new Tracer({ categories, sink: (line) => lines.push(line), nowNs }), lines };
}
