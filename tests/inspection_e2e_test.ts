import { assert, assertEquals, assertMatch, assertStringIncludes } from "../testing/mod.ts";
import { hasStackTrace, runMain } from "./_cli.ts";
import { withTempDir } from "./_temp_dir.ts";

Deno.test("main.ts --trace mm streams frame allocations to stderr, one line each", async () => {
  const run = await runMain(["--clock", "virtual", "--quiet", "--trace", "mm", "--selftest"]);
  assertEquals(run.code, 0);
  const lines = run.stderr.trimEnd().split("\n");
  assert(lines.length > 1000, `expected allocation lines, got ${lines.length}`);
  assert(lines.every((line) => /^\[ +\d+\.\d{6}\] mm: /.test(line)), "only mm lines");
  assertMatch(run.stderr, /mm: alloc frame 0x[0-9a-f]+ \(pa 0x[0-9a-f]+\)/);
  assertStringIncludes(run.stderr, "mm: kmalloc");
});

Deno.test("main.ts --trace all covers uart, irq and mmu events", async () => {
  const script = new TextEncoder().encode("selftest\nhalt\n");
  const run = await runMain(
    ["--clock", "virtual", "--quiet", "--console", "--trace", "all"],
    script,
  );
  assertEquals(run.code, 0);
  const has = (pattern: RegExp) => assert(pattern.test(run.stderr), `no line like ${pattern}`);
  has(/uart: uart16550@0x3f8 rx 0x73 's'/);
  has(/irq: io-apic pin 4: vector 0x34 to APIC 0x00/); // COM1's IRQ 4, routed by the I/O APIC
  has(/irq: deliver vector 0x34 from the local APIC/);
  has(/mmu: page fault at 0x[0-9a-f]+: not-present/);
  has(/mmu: tlb fill /);
});

Deno.test("main.ts --trace-file writes the trace to a file and keeps stderr clean", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/trace.log`;
    const run = await runMain(["--clock", "virtual", "--trace", "mm,irq", "--trace-file", path]);
    assertEquals(run.code, 0);
    assertEquals(run.stderr, "");
    assertStringIncludes(run.stdout, "boot: kernel up");
    const trace = await Deno.readTextFile(path);
    assertStringIncludes(trace, "mm: alloc frame");
    assert(!trace.includes("uart: "), "uart was not asked for");
  });
});

Deno.test("main.ts --report html FILE writes a self-contained memory picture", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/initrd`, new Uint8Array(20000));
    const path = `${dir}/memory.html`;
    const run = await runMain([
      "--clock",
      "virtual",
      "--quiet",
      "--module",
      `${dir}/initrd`,
      "--report",
      "html",
      path,
    ]);
    assertEquals([run.code, run.stdout, run.stderr], [0, "", ""]);
    const html = await Deno.readTextFile(path);
    assertMatch(html, /^<!DOCTYPE html>/i);
    assertStringIncludes(html, "<svg");
    for (const label of ["kernel image", "multiboot2 info", "initrd", "page tables", "free"]) {
      assertStringIncludes(html, label);
    }
    assert(!/(src|href)="(https?:|\/\/)/.test(html), "no external resources");
  });
});

Deno.test("main.ts --report json adds uart and interrupt counters", async () => {
  const run = await runMain(["--clock", "virtual", "--report", "json"]);
  assertEquals(run.code, 0);
  const report = JSON.parse(run.stdout);
  assert(report.uart.bytesTransmitted > 0);
  assertEquals(report.uart.overruns, 0);
  assert(typeof report.interrupts.delivered === "number");
  assertEquals(report.paging.directMapBase, "0xffff800000000000");
  assert(report.paging.pageTableFrames > 0);
  assertEquals(report.paging.tableFrames, undefined, "one name per counter");
  assert(report.paging.pages2M > 0, "the direct map uses 2 MiB pages");
  assertEquals(typeof report.paging.tlb.hits, "number");
});

Deno.test("main.ts rejects bad inspection options with one line and exit 2", async () => {
  const cases: [string[], string][] = [
    [["--trace", "disk"], 'Invalid --trace "disk"'],
    [["--trace-file", "x.log"], "Option --trace-file needs --trace"],
    [["--report", "html"], "Option --report html needs a file"],
    [["--report", "html", "/nonexistent-dir/x.html"], 'Cannot write "/nonexistent-dir/x.html"'],
    [["--report", "json", "stray"], 'Unexpected argument "stray"'],
  ];
  for (const [args, message] of cases) {
    const run = await runMain(["--clock", "virtual", "--quiet", ...args]);
    assertEquals(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assertEquals(run.stderr.trimEnd().split("\n").length, 1, run.stderr);
    assertStringIncludes(run.stderr, message);
    assert(!hasStackTrace(run.stderr));
  }
});
