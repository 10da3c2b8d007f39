/**
 * `--smp` end to end, through `main.ts` as a user runs it: the boot log of
 * several CPUs, the self-tests on them, the monitor's CPU commands and the
 * stress, a panic that stops every CPU, and the options `--smp` refuses.
 */

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../testing/mod.ts";
import { hasStackTrace, runMain } from "./_cli.ts";

Deno.test("main.ts --smp 4 --selftest boots four CPUs, lists each coming up and passes the self-tests", async () => {
  const run = await runMain(["--smp", "4", "--selftest", "--no-console"]);
  assertEquals(run.code, 0, run.stderr);
  for (let cpu = 1; cpu < 4; cpu++) {
    assertMatch(
      run.stdout,
      new RegExp(`smp: CPU ${cpu} \\(APIC ID ${cpu}\\) online after \\d+ ms`),
    );
  }
  assertStringIncludes(run.stdout, "smp: 4 of 4 CPUs online");
  assertStringIncludes(run.stdout, "selftest: 8 passed, 0 failed");
  assertEquals(run.stderr, "");
});

Deno.test("main.ts --smp 2: the monitor's cpus, locks, ipi, tlb, shootdown and stress work across CPUs", async () => {
  const script = [
    "cpus",
    "ipi 1 0x40",
    "tlb 1",
    "stress 0.5",
    "shootdown off",
    "stress 0.5",
    "shootdown on",
    "locks",
  ].join("\n");
  const run = await runMain(["--smp", "2", "-q", "--console"], new TextEncoder().encode(script));
  assertEquals(run.code, 0, run.stdout + run.stderr);
  assert(!hasStackTrace(run.stdout + run.stderr));
  assertMatch(run.stdout, /cpus: 2 of 2 CPUs online/);
  assertMatch(run.stdout, /ipi: vector 0x40 sent to CPU 1 \(APIC ID 1\)/);
  assertMatch(run.stdout, /tlb of CPU 1: \d+ entr(y|ies) listed/);
  assertMatch(run.stdout, /stress: every frame back, no stale read, every check passed/);
  assertMatch(run.stdout, /stress: \d+ stale reads?, as expected with shootdown off/);
  assertMatch(run.stdout, /frame allocator\s+-\s+\d+/);
});

Deno.test("main.ts --smp 2: a panic stops every CPU, names the CPU and exits 1", async () => {
  const run = await runMain(["--smp", "2", "-q", "--console"], new TextEncoder().encode("panic\n"));
  assertEquals(run.code, 1, run.stderr);
  assertMatch(run.stdout, /KERNEL PANIC \(CPU 0\): /);
  assertEquals(run.stderr, "");
});

Deno.test("main.ts --smp refuses, in one line with status 2, what several CPUs cannot run", async () => {
  const cases: [string[], RegExp][] = [
    [["--smp", "0"], /^kernelsim: Invalid --smp "0": expected a CPU count from 1 to 16\n$/],
    [["--smp", "17"], /^kernelsim: Invalid --smp "17": expected a CPU count from 1 to 16\n$/],
    [["--smp", "two"], /^kernelsim: Invalid --smp "two"/],
    [
      ["--smp", "2", "--clock", "virtual"],
      /^kernelsim: Options --smp 2 and --clock virtual cannot be combined/,
    ],
    [["--smp", "2", "--no-apic"], /^kernelsim: Options --smp 2 and --no-apic cannot be combined/],
    [
      ["--smp", "4", "--frames", "examples/bitmap_frames.ts"],
      /^kernelsim: Options --smp 4 and --frames cannot be combined: several CPUs run the stock kernel parts only\n$/,
    ],
    [["--smp", "2", "--mbi", "x.bin"], /^kernelsim: Options --smp 2 and --mbi cannot be combined/],
  ];
  for (const [args, message] of cases) {
    const run = await runMain(args);
    assertEquals(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assertMatch(run.stderr, message);
    assertEquals(run.stderr.split("\n").length, 2, "one line");
  }
});

Deno.test("main.ts --smp 1 boots exactly as without --smp", async () => {
  const plain = await runMain(["--clock", "virtual", "--selftest", "--no-console"]);
  const one = await runMain(["--clock", "virtual", "--selftest", "--no-console", "--smp", "1"]);
  assertEquals(one.code, 0);
  assertEquals(one.stdout, plain.stdout);
});
