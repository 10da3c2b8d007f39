import { assertEquals, assertThrows } from "../testing/mod.ts";
import { UserCodeError } from "../sdk/mod.ts";
import { type Check, CheckContext, expect, StepBudgetExceeded } from "./check.ts";
import { runCheck } from "./run_check.ts";
import { checkSeed } from "./scorecard.ts";

function check(run: Check<number>["run"], budget = 10): Check<number> {
  return { id: "lab.thing", title: "Does the thing", points: 7, budget, run };
}

Deno.test("CheckContext.step() throws StepBudgetExceeded once the budget is used up", () => {
  const context = new CheckContext(1, 3);
  context.step(3);
  assertEquals(context.steps, 3);
  assertThrows(() => context.step(), StepBudgetExceeded, "more than its 3 operations");
});

Deno.test("runCheck() gives the points of a check that passes, with its seed and steps", () => {
  const result = runCheck(check((factory, context) => context.step(factory)), 4, 99);
  assertEquals(result, {
    id: "lab.thing",
    title: "Does the thing",
    points: 7,
    earned: 7,
    passed: true,
    seed: checkSeed(99, "lab.thing"),
    budget: 10,
    steps: 4,
  });
});

Deno.test("runCheck() reports a failed expectation, a budget overrun, user code that throws and a leak", () => {
  const failed = runCheck(check(() => expect(false, "one", () => "two")), 0, 1);
  assertEquals([failed.passed, failed.earned, failed.expected, failed.actual], [
    false,
    0,
    "one",
    "two",
  ]);
  const overrun = runCheck(check((_, context) => context.step(11)), 0, 1);
  assertEquals(overrun.expected, "the check to finish within its budget of 10 operations");
  const thrown = runCheck(
    check(() => {
      throw new UserCodeError("student.ts", "allocate()", new TypeError("x is undefined"));
    }),
    0,
    1,
  );
  assertEquals(thrown.actual, "student.ts: allocate() threw TypeError: x is undefined");
  const leaked = runCheck(
    check((_, context) => context.reportLeak("leaked 2 frames (0x1, 0x2)")),
    0,
    1,
  );
  assertEquals([leaked.passed, leaked.earned, leaked.leak, leaked.expected], [
    false,
    0,
    "leaked 2 frames (0x1, 0x2)",
    undefined,
  ]);
  const crashed = runCheck(
    check(() => {
      throw new RangeError("Offset is outside the bounds of the DataView");
    }),
    0,
    1,
  );
  assertEquals(crashed.actual, "it threw RangeError: Offset is outside the bounds of the DataView");
});
