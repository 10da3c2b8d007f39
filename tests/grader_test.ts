/**
 * The grader discriminates: the stock parts score 100%, so do the examples
 * (a second, next-fit frame allocator and a page mapper), and each
 * deliberately broken variant in
 * `tests/grader_variants/` loses exactly the checks of the property its bug
 * breaks. The same seed gives a byte-identical scorecard. (The watchdog and
 * the command line are tested end to end in `grade_e2e_test.ts`.)
 *
 * @module
 */

import { assert, assertEquals, assertMatch, assertNotEquals } from "../testing/mod.ts";
import {
  formatJunit,
  formatScorecard,
  gradeInProcess,
  type GradeRequest,
  type LabKind,
  type Scorecard,
} from "../grader/mod.ts";
import { importModule } from "./_import_module.ts";

const SEED = 2026;
const VARIANTS_DIR = new URL("./grader_variants/", import.meta.url).pathname;

async function grade(request: GradeRequest): Promise<Scorecard> {
  const outcome = await gradeInProcess(request, importModule);
  if (outcome.kind === "refused") throw new Error(outcome.message);
  return outcome.scorecard;
}

function failedIds(card: Scorecard): string[] {
  return card.checks.filter((check) => !check.passed).map((check) => check.id);
}

for (const lab of ["frames", "pagetable", "heap", "cow"] as const) {
  Deno.test(`The grader gives the stock ${lab} part 100%`, async () => {
    const card = await grade({ lab, module: "stock", seed: SEED });
    assertEquals(failedIds(card), []);
    assertEquals([card.score, card.total, card.percent, card.passed], [100, 100, 100, true]);
  });
}

Deno.test("The grader gives the stock frame allocator 100% when the lab asks for the lowest free frame", async () => {
  const card = await grade({
    lab: "frames",
    module: "stock",
    seed: SEED,
    options: { frameOrder: "lowest" },
  });
  assertEquals(failedIds(card), []);
  assertEquals(card.total, 110);
  assert(card.checks.some((check) => check.id === "frames.order"));
});

Deno.test("The grader gives the example examples/bitmap_frames.ts (next fit) 100%, and only frames.order fails under the lowest-first rule", async () => {
  const module = new URL("../examples/bitmap_frames.ts", import.meta.url).pathname;
  assertEquals(failedIds(await grade({ lab: "frames", module, seed: SEED })), []);
  const lowest = await grade({
    lab: "frames",
    module,
    seed: SEED,
    options: { frameOrder: "lowest" },
  });
  assertEquals(failedIds(lowest), ["frames.order"]);
  assertMatch(lowest.checks.find((check) => !check.passed)?.actual ?? "", /it returned 0x/);
});

Deno.test("The grader gives the example examples/simple_page_mapper.ts 100%", async () => {
  const module = new URL("../examples/simple_page_mapper.ts", import.meta.url).pathname;
  assertEquals(failedIds(await grade({ lab: "pagetable", module, seed: SEED })), []);
});

/** Each broken variant, the checks it must fail, and a phrase its failure must show. */
const VARIANTS: {
  readonly lab: LabKind;
  readonly file: string;
  readonly bug: string;
  readonly fails: readonly string[];
  readonly shows: RegExp;
}[] = [
  {
    lab: "frames",
    file: "frames_off_by_one_pool_end.ts",
    bug: "rounds a usable region's end up (off by one at the pool end)",
    fails: ["frames.pool"],
    shows: /stateOf\(0x23ff\) is "free"/,
  },
  {
    lab: "frames",
    file: "frames_no_double_free_check.ts",
    bug: "does not check for a double free",
    fails: ["frames.double-free"],
    shows: /a second time to throw KernelError DoubleFree/,
  },
  {
    lab: "frames",
    file: "frames_contiguous_unaligned.ts",
    bug: "ignores the alignment of a contiguous run",
    fails: ["frames.contiguous"],
    shows: /to return a frame number that is a multiple of/,
  },
  {
    lab: "frames",
    file: "frames_reserved_handed_out.ts",
    bug: "hands out reserved frames (forgets the boot reservations)",
    fails: ["frames.reserved"],
    shows: /\(first 1 MiB \(BIOS, real-mode area\)\) to be reserved/,
  },
  {
    // freeContiguous() also releases Page handles, so the refcount check leaks too.
    lab: "frames",
    file: "frames_leak_on_free.ts",
    bug: "leaks the last frame of every run it frees",
    fails: ["frames.contiguous", "frames.refcounts"],
    shows: /leaked 1 frame/,
  },
  {
    lab: "frames",
    file: "frames_throws.ts",
    bug: "throws a TypeError from freeContiguous()",
    fails: ["frames.contiguous"],
    shows:
      /frames_throws\.ts: freeContiguous\(\) threw TypeError: Cannot read properties of undefined/,
  },
  {
    lab: "pagetable",
    file: "pagetable_no_tlb_flush_on_unmap.ts",
    bug: "does not flush the TLB after unmap",
    fails: ["pagetable.tlb-unmap"],
    shows: /in the active space \(INVLPG\)/,
  },
  {
    lab: "pagetable",
    file: "pagetable_nx_dropped.ts",
    bug: "drops the NX bit",
    fails: ["pagetable.flag-bits"],
    shows: /NX\) \| |to be 0x80000000/,
  },
  {
    lab: "pagetable",
    file: "pagetable_us_always_set.ts",
    bug: "sets the US bit on every page",
    fails: ["pagetable.flag-bits"],
    shows: /\(P US/,
  },
  {
    lab: "heap",
    file: "heap_overlapping_blocks.ts",
    bug: "returns overlapping blocks",
    fails: ["heap.no-overlap"],
    shows: /overlaps block 0x/,
  },
  {
    lab: "cow",
    file: "cow_copy_shares_frame.ts",
    bug: "makes a copy-on-write page writable in place instead of copying it",
    fails: ["cow.copy-on-write"],
    shows: /to give it a new frame/,
  },
  {
    // The reference it keeps leaks the frame, and leak accounting fails every check that copies.
    lab: "cow",
    file: "cow_refcount_not_dropped.ts",
    bug: "never drops the shared frame's reference after a copy",
    fails: ["cow.copy-on-write", "cow.refcounts", "cow.counts", "cow.out-of-memory"],
    shows: /reference count to equal the 2 mappings of it after the child's write \(a copy\)/,
  },
];

for (const variant of VARIANTS) {
  Deno.test(`The grader takes exactly ${variant.fails.join(" and ")} from a ${variant.lab} part that ${variant.bug}`, async () => {
    const card = await grade({
      lab: variant.lab,
      module: `${VARIANTS_DIR}${variant.file}`,
      seed: SEED,
    });
    assertEquals(failedIds(card), [...variant.fails]);
    const lost = card.checks.filter((check) => !check.passed);
    assertEquals(card.score, card.total - lost.reduce((sum, check) => sum + check.points, 0));
    const details = lost.map((check) => `${check.expected} | ${check.actual} | ${check.leak}`).join(
      "\n",
    );
    assertMatch(details, variant.shows);
    assert(card.checks.every((check) => check.passed || check.earned === 0));
  });
}

Deno.test("The same seed gives a byte-identical scorecard, as text, JSON and JUnit", async () => {
  const request: GradeRequest = {
    lab: "frames",
    module: `${VARIANTS_DIR}frames_leak_on_free.ts`,
    seed: 77,
    options: { frameOrder: "lowest" },
  };
  const first = await grade(request);
  const second = await grade(request);
  assertEquals(formatScorecard(second), formatScorecard(first));
  assertEquals(JSON.stringify(second), JSON.stringify(first));
  assertEquals(formatJunit(second), formatJunit(first));
  const other = await grade({ ...request, seed: 78 });
  assertNotEquals(other.checks.map((check) => check.seed), first.checks.map((check) => check.seed));
  assertEquals(failedIds(other), failedIds(first));
});

Deno.test("A module that cannot be loaded is refused with one line, not graded", async () => {
  const outcome = await gradeInProcess({
    lab: "heap",
    module: `${VARIANTS_DIR}nothing_here.ts`,
    seed: 1,
  }, importModule);
  assertEquals(outcome.kind, "refused");
  if (outcome.kind === "refused") {
    assertMatch(outcome.message, /^Cannot load .*nothing_here\.ts: no such file$/);
  }
});
