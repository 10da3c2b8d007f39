/**
 * The grader for kernel labs: conformance suites for the frame allocator,
 * the page-table mapper, the kernel heap and the copy-on-write fault
 * policy, run against a student's part through the SDK's factories, with
 * leak accounting, seeds and step budgets, and scorecards as text, JSON and
 * JUnit XML. `deno task grade --help` and docs/grader.md describe it.
 *
 * @module
 */

export * from "./check.ts";
export * from "./scorecard.ts";
export * from "./labs.ts";
export * from "./run_check.ts";
export * from "./grade.ts";
export * from "./grade_options.ts";
export * from "./grade_cli.ts";
export * from "./scorecard_text.ts";
export * from "./scorecard_junit.ts";
export { type FrameOrder, framesChecks } from "./frames_lab.ts";
export { PAGETABLE_CHECKS } from "./pagetable_lab.ts";
export { HEAP_CHECKS } from "./heap_lab.ts";
export { COW_CHECKS } from "./cow_lab.ts";
