/**
 * `deno task grade` end to end, as a teacher or a CI job runs it: the
 * scorecard as text, JSON and JUnit, the exit statuses, one line for bad
 * usage or a bad module, and the watchdog: a module that never returns
 * costs its check ("did not return") while the rest of the card is graded.
 *
 * @module
 */

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../testing/mod.ts";
import { formatScorecard, gradeInProcess, type Scorecard } from "../grader/mod.ts";
import { type CliRun, hasStackTrace, runCommand } from "./_cli.ts";
import { importModule } from "./_import_module.ts";

const GRADER = new URL("../grader/main.ts", import.meta.url).pathname;
const VARIANTS = "tests/grader_variants";
const REPO_ROOT = new URL("..", import.meta.url).pathname;

/** Runs `deno run grader/main.ts ...args` from the repository root. */
function runGrade(args: readonly string[]): Promise<CliRun> {
  return runCommand(
    Deno.execPath(),
    ["run", "--quiet", "--allow-read", "--allow-write", GRADER, ...args],
    { cwd: REPO_ROOT },
  );
}

Deno.test("deno task grade -- --frames stock prints a full scorecard and exits 0", async () => {
  const run = await runGrade(["--frames", "stock", "--seed", "11"]);
  assertEquals(run.code, 0, run.stderr);
  assertEquals(run.stderr, "");
  assertStringIncludes(run.stdout, "kernelsim grade: frames lab (physical frame allocator)");
  assertStringIncludes(run.stdout, "module stock, seed 11, frame order any");
  assertMatch(run.stdout, /^PASS {2}10\/10 {2}frames\.pool /m);
  assertStringIncludes(run.stdout, "Score: 100/100 (100%), pass mark 100%: passed");
  assertStringIncludes(run.stdout, "Reproduce: deno task grade -- --frames stock --seed 11");
});

Deno.test("The grader's --json scorecard is the one grading in this process gives, check by check", async () => {
  const module = `${VARIANTS}/frames_no_double_free_check.ts`;
  const run = await runGrade(["--frames", module, "--seed", "5", "--json"]);
  assertEquals(run.code, 1, run.stderr);
  const card = JSON.parse(run.stdout) as Scorecard;
  assertEquals(Object.keys(card), [
    "lab",
    "labTitle",
    "module",
    "seed",
    "options",
    "checks",
    "score",
    "total",
    "percent",
    "passMark",
    "passed",
  ]);
  assertEquals([card.lab, card.module, card.seed, card.score, card.percent], [
    "frames",
    module,
    5,
    90,
    90,
  ]);
  const failed = card.checks.filter((check) => !check.passed);
  assertEquals(failed.map((check) => [check.id, check.earned, check.points]), [[
    "frames.double-free",
    0,
    10,
  ]]);
  assertEquals(Object.keys(failed[0]), [
    "id",
    "title",
    "points",
    "earned",
    "passed",
    "seed",
    "budget",
    "steps",
    "expected",
    "actual",
    "leak",
  ]);
  const inProcess = await gradeInProcess(
    { lab: "frames", module, seed: 5, baseDir: REPO_ROOT },
    importModule,
  );
  assert(inProcess.kind === "graded");
  assertEquals(formatScorecard(card), formatScorecard(inProcess.scorecard));
});

Deno.test("--junit FILE writes one test case per check with the failures, and the text still goes to stdout", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/grade.xml`;
    const run = await runGrade([
      "--pagetable",
      `${VARIANTS}/pagetable_nx_dropped.ts`,
      "--seed",
      "3",
      "--junit",
      file,
    ]);
    assertEquals(run.code, 1, run.stderr);
    assertStringIncludes(run.stdout, "Score: 85/100 (85%)");
    const xml = await Deno.readTextFile(file);
    assertStringIncludes(
      xml,
      '<testsuite name="kernelsim.grade.pagetable" tests="12" failures="1"',
    );
    assertStringIncludes(xml, '<property name="seed" value="3"/>');
    assertEquals(xml.match(/<testcase /g)?.length, 12);
    assertMatch(
      xml,
      /<failure message="expected the 4 KiB leaf for [^"]+" type="pagetable\.flag-bits">/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--pass-mark sets the exit status: 90% passes a mark of 85 and fails the default 100", async () => {
  const module = `${VARIANTS}/frames_no_double_free_check.ts`;
  const lenient = await runGrade(["--frames", module, "--seed", "1", "--pass-mark", "85"]);
  assertEquals(lenient.code, 0, lenient.stderr);
  assertStringIncludes(lenient.stdout, "Score: 90/100 (90%), pass mark 85%: passed");
  const strict = await runGrade(["--frames", module, "--seed", "1"]);
  assertEquals(strict.code, 1);
  assertStringIncludes(strict.stdout, "pass mark 100%: below the pass mark");
});

Deno.test("A module that never returns fails its check with 'did not return', and the rest is still graded", async () => {
  const module = `${VARIANTS}/heap_loops_on_large_alignment.ts`;
  const run = await runGrade(["--heap", module, "--seed", "9", "--user-timeout", "0.3"]);
  assertEquals(run.code, 1, run.stderr);
  assertMatch(run.stdout, /^FAIL {3}0\/10 {2}heap\.alignment /m);
  assertStringIncludes(run.stdout, "expected: every call into the module to return");
  assertStringIncludes(run.stdout, `actual:   ${module}: kmalloc() did not return within 0.3 s`);
  for (const id of ["heap.basic", "heap.sizes", "heap.out-of-memory"]) {
    assertMatch(run.stdout, new RegExp(`^PASS .* ${id.replace(".", "\\.")} `, "m"));
  }
  assertStringIncludes(run.stdout, "Score: 90/100 (90%)");
  assert(!hasStackTrace(run.stdout + run.stderr));
});

Deno.test("A module that throws fails the checks that call it with the module, the call and the cause", async () => {
  const run = await runGrade(["--frames", `${VARIANTS}/frames_throws.ts`, "--seed", "2"]);
  assertEquals(run.code, 1, run.stderr);
  assertStringIncludes(
    run.stdout,
    `actual:   ${VARIANTS}/frames_throws.ts: freeContiguous() threw TypeError: Cannot read properties of undefined (reading 'first')`,
  );
  assertStringIncludes(run.stdout, "Score: 85/100 (85%)");
  assert(!hasStackTrace(run.stdout + run.stderr));
});

const BAD_COMMAND_LINES: [string, string[], RegExp][] = [
  [
    "no lab",
    [],
    /^kernelsim grade: Name the part to grade: --frames, --pagetable, --heap or --cow FILE \(or stock\)\n$/,
  ],
  [
    "a missing module",
    ["--heap", "nothing_here.ts"],
    /^kernelsim grade: Cannot load nothing_here\.ts: no such file\n$/,
  ],
  [
    "a module of the wrong kind",
    ["--cow", `${VARIANTS}/heap_overlapping_blocks.ts`],
    /^kernelsim grade: .*heap_overlapping_blocks\.ts: the factory returned an object without handle\(\) \(on a scratch machine\)\n$/,
  ],
];

Deno.test("A module whose factory never returns cannot be graded: one line and exit status 2", async () => {
  const module = `${VARIANTS}/factory_never_returns.ts`;
  const run = await runGrade(["--frames", module, "--user-timeout", "0.3"]);
  assertEquals(run.code, 2, run.stdout);
  assertEquals(run.stdout, "");
  assertEquals(
    run.stderr,
    `kernelsim grade: stopped: ${module}: factory did not return within 0.3 s\n`,
  );
});

for (const [what, args, message] of BAD_COMMAND_LINES) {
  Deno.test(`The grader refuses ${what} with one line and exit status 2`, async () => {
    const run = await runGrade(args);
    assertEquals(run.code, 2, run.stdout);
    assertEquals(run.stdout, "");
    assertMatch(run.stderr, message);
    assertEquals(run.stderr.split("\n").length, 2, run.stderr);
  });
}

Deno.test("deno task grade --help lists every option and the exit statuses", async () => {
  const run = await runGrade(["--help"]);
  assertEquals(run.code, 0);
  for (
    const option of [
      "--frames",
      "--pagetable",
      "--heap",
      "--cow",
      "--seed",
      "--json",
      "--junit",
      "--pass-mark",
      "--user-timeout",
      "--frame-order",
    ]
  ) {
    assertStringIncludes(run.stdout, option);
  }
  assertStringIncludes(
    run.stdout,
    "Exit status: 0 the score reaches the pass mark, 1 it does not, 2 bad command",
  );
});

Deno.test("The scorecard shown in the README is what the grader prints for that module and seed", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const block = /<!-- scorecard checked by tests\/grade_e2e_test\.ts -->\n\n```text\n([^]*?)```/
    .exec(readme);
  assert(block !== null, "the README has the marked scorecard");
  const run = await runGrade(["--frames", `${VARIANTS}/frames_leak_on_free.ts`, "--seed", "1234"]);
  assertEquals(run.code, 1, run.stderr);
  const printed = run.stdout.split("\n");
  let from = 0;
  for (const line of block[1].split("\n").filter((line) => line !== "" && line !== "...")) {
    const at = printed.indexOf(line, from);
    assert(at >= 0, `the grader prints, in this order: ${line}`);
    from = at + 1;
  }
});
