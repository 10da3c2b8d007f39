import { assertEquals, assertNotEquals, assertStringIncludes } from "../testing/mod.ts";
import { buildScorecard, type CheckResult, checkSeed } from "./scorecard.ts";
import { formatScorecard, reproduceCommand } from "./scorecard_text.ts";
import { formatJunit } from "./scorecard_junit.ts";

const PASSED: CheckResult = {
  id: "frames.pool",
  title: "Every usable frame starts free",
  points: 10,
  earned: 10,
  passed: true,
  seed: 1,
  budget: 100,
  steps: 40,
};
const FAILED: CheckResult = {
  id: "frames.double-free",
  title: "Freeing a free frame is refused",
  points: 15,
  earned: 0,
  passed: false,
  seed: 2,
  budget: 100,
  steps: 3,
  expected: "free(0x15c) to throw KernelError DoubleFree <&\"'>",
  actual: "it returned nothing",
  leak: "leaked 1 frame (0x15c)",
};

function card(checks: CheckResult[], passMark = 100) {
  return buildScorecard({
    lab: "frames",
    labTitle: "physical frame allocator",
    module: "my frames.ts",
    seed: 7,
    options: { frameOrder: "lowest" },
    passMark,
    checks,
  });
}

Deno.test("checkSeed() depends on the run's seed and the check's id only, and is never 0", () => {
  assertEquals(checkSeed(5, "frames.pool"), checkSeed(5, "frames.pool"));
  assertNotEquals(checkSeed(5, "frames.pool"), checkSeed(6, "frames.pool"));
  assertNotEquals(checkSeed(5, "frames.pool"), checkSeed(5, "frames.random"));
  for (let seed = 0; seed < 200; seed++) assertNotEquals(checkSeed(seed, "x"), 0);
});

Deno.test("buildScorecard() totals the points, rounds the percentage to one decimal and applies the pass mark", () => {
  const result = card([PASSED, FAILED], 40);
  assertEquals([result.score, result.total, result.percent, result.passed], [10, 25, 40, true]);
  assertEquals(card([PASSED, FAILED, { ...PASSED, id: "x", points: 5, earned: 5 }]).percent, 50);
  assertEquals(card([{ ...PASSED, points: 1, earned: 1 }, { ...FAILED, points: 2 }]).percent, 33.3);
});

Deno.test("formatScorecard() prints each check, the failure's expected, actual and leak, the total and the command", () => {
  assertEquals(
    formatScorecard(card([PASSED, FAILED])),
    [
      "kernelsim grade: frames lab (physical frame allocator)",
      "module my frames.ts, seed 7, frame order lowest",
      "",
      "PASS  10/10  frames.pool         Every usable frame starts free",
      "FAIL   0/15  frames.double-free  Freeing a free frame is refused",
      "      expected: free(0x15c) to throw KernelError DoubleFree <&\"'>",
      "      actual:   it returned nothing",
      "      leak:     leaked 1 frame (0x15c)",
      "",
      "Score: 10/25 (40%), pass mark 100%: below the pass mark",
      "Reproduce: deno task grade -- --frames 'my frames.ts' --seed 7 --frame-order lowest",
      "",
    ].join("\n"),
  );
  assertEquals(
    reproduceCommand({ ...card([PASSED]), module: "it's.ts" }),
    "deno task grade -- --frames 'it'\\''s.ts' --seed 7 --frame-order lowest",
  );
});

Deno.test("formatJunit() escapes XML and gives each failed check a failure element", () => {
  const xml = formatJunit(card([PASSED, FAILED]));
  assertStringIncludes(
    xml,
    '<testsuite name="kernelsim.grade.frames" tests="2" failures="1" errors="0" skipped="0">',
  );
  assertStringIncludes(
    xml,
    '<testcase classname="kernelsim.grade.frames" name="frames.pool: Every usable frame starts free"/>',
  );
  assertStringIncludes(
    xml,
    '<failure message="expected free(0x15c) to throw KernelError DoubleFree &lt;&amp;&quot;&apos;&gt;" type="frames.double-free">',
  );
  assertStringIncludes(xml, "leak: leaked 1 frame (0x15c)\npoints: 0 of 15; seed 2</failure>");
  assertStringIncludes(xml, '<property name="module" value="my frames.ts"/>');
  assertEquals(
    formatJunit(card([{ ...FAILED, actual: "bad \u0001 byte" }])).includes("\u0001"),
    false,
  );
});
