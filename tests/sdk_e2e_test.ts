/**
 * End-to-end tests of the SDK through `main.ts`: every example, and every way a
 * user's module can fail (missing, wrong shape, throwing, never returning).
 *
 * @module
 */

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../testing/mod.ts";
import { hasStackTrace, runMain } from "./_cli.ts";

const REPO = new URL("../", import.meta.url).pathname;
const SDK = new URL("../sdk/mod.ts", import.meta.url).href;
const BITMAP_FRAMES = `${REPO}examples/bitmap_frames.ts`;
const SIMPLE_MAPPER = `${REPO}examples/simple_page_mapper.ts`;
const HELLO_KERNEL = `${REPO}examples/hello_kernel.ts`;
const CMOS_RTC = `${REPO}examples/cmos_rtc.ts`;

/** Writes a module into a fresh temporary directory; `SDK` in the source is the SDK's URL. */
async function moduleFile(name: string, source: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kernelsim_sdk_e2e_" });
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, source.replaceAll("SDK", SDK));
  return path;
}

async function scriptFile(lines: readonly string[]): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "kernelsim_sdk_script_" });
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  return path;
}

Deno.test("main.ts --frames examples/bitmap_frames.ts --selftest --report json boots green with the allocator's statistics", async () => {
  const run = await runMain([
    "--clock",
    "virtual",
    "--frames",
    BITMAP_FRAMES,
    "--selftest",
    "--report",
    "json",
  ]);
  assertEquals(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  assertEquals(report.selftest, { passed: 8, failed: 0 });
  assertEquals(report.parts.frames, BITMAP_FRAMES);
  assertEquals(report.parts.pageMapper, "stock");
  assertEquals(report.frames.pools.length, 1);
  assert(report.frames.details.allocations > 1000, JSON.stringify(report.frames.details));
  assert(report.frames.details.bitmapWordsScanned > 0);
  assertEquals(
    report.frames.totalFrames,
    report.frames.freeFrames + report.frames.reservedFrames + report.frames.allocatedFrames,
  );
  assertStringIncludes(run.stderr, `parts: frame allocator from ${BITMAP_FRAMES}`);
});

Deno.test("main.ts --pagetable examples/simple_page_mapper.ts boots a 5 GiB PC on the user's page tables, self-tests green", async () => {
  const run = await runMain([
    "--clock",
    "virtual",
    "--memory",
    "5G",
    "--pagetable",
    SIMPLE_MAPPER,
    "--selftest",
    "--report",
    "json",
  ]);
  assertEquals(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  assertEquals(report.selftest, { passed: 8, failed: 0 });
  assertEquals(report.parts.pageMapper, SIMPLE_MAPPER);
  assert(report.paging.pages1G >= 3, "the direct map uses the user's 1 GiB pages");
  assertStringIncludes(run.stderr, "-> 0x100000..0xe0000000 (2 x 1 GiB, 767 x 2 MiB, 256 x 4 KiB)");
  assertStringIncludes(
    run.stderr,
    "-> 0x100000000..0x160000000 (1 x 1 GiB, 256 x 2 MiB, 0 x 4 KiB)",
  );
});

Deno.test("main.ts with every part from a module boots green, and the monitor and both reports work with them", async () => {
  const html = await Deno.makeTempFile({ prefix: "kernelsim_sdk_report_", suffix: ".html" });
  const script = await scriptFile([
    "meminfo",
    "heap",
    "alloc 2",
    "leaks",
    "translate 0xffff800000100000",
  ]);
  const parts = [
    "--frames",
    BITMAP_FRAMES,
    "--pagetable",
    SIMPLE_MAPPER,
    "--heap",
    `${REPO}tests/user_modules/stock_heap.ts`,
    "--faults",
    `${REPO}tests/user_modules/stock_faults.ts`,
  ];
  const json = await runMain(["--clock", "virtual", ...parts, "--selftest", "--report", "json"]);
  assertEquals(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout);
  assertEquals(report.selftest, { passed: 8, failed: 0 });
  assertEquals(
    report.parts.faults ?? report.parts.pageFaults,
    `${REPO}tests/user_modules/stock_faults.ts`,
  );
  assert(report.heap.bytesMapped > 0);
  const monitor = await runMain([
    "--clock",
    "virtual",
    ...parts,
    "--script",
    script,
    "--report",
    "html",
    html,
  ]);
  assertEquals(monitor.code, 0, monitor.stderr);
  assertStringIncludes(monitor.stdout, "pool 0x000000000000: 32736 frames");
  assertStringIncludes(monitor.stdout, "alloc: 2 frames");
  assertStringIncludes(monitor.stdout, "translate: 0xffff800000100000 -> 0x100000 (4 KiB page, ");
  assert(!hasStackTrace(monitor.stdout + monitor.stderr));
  assertStringIncludes(await Deno.readTextFile(html), "bitmap allocator state");
});

Deno.test("main.ts --kernel examples/hello_kernel.ts prints the hello kernel's own boot log on serial", async () => {
  const run = await runMain(["--clock", "virtual", "--kernel", HELLO_KERNEL]);
  assertEquals(run.code, 0, run.stderr);
  assertEquals(run.stderr, "");
  const lines = run.stdout.trimEnd().split("\n");
  assertEquals(lines[0], "hello: COM1 up, 115200 8N1");
  assertMatch(lines[1], /^hello: boot information at 0x[0-9a-f]+, \d+ bytes$/);
  assertEquals(lines[2], "hello: 0x0000000000000000 0x000009fc00 available");
  assertEquals(lines.at(-1), "hello: 130559 KiB available; nothing else to do, halting");
  assert(!run.stdout.includes("kernelsim 0.1.0 starting"), "the stock kernel did not run");
});

Deno.test("main.ts --device examples/cmos_rtc.ts adds the RTC, its boot log and the date and rtc commands", async () => {
  const script = await scriptFile([
    "date",
    "rtc",
    "date 2024-02-29 13:14:15",
    "date 2023-02-29 00:00:00",
  ]);
  const run = await runMain(["--clock", "virtual", "--device", CMOS_RTC, "--script", script]);
  // A driver's command that fails counts as a failed monitor command: exit status 4.
  assertEquals(run.code, 4, run.stderr);
  assertStringIncludes(run.stderr, "the first on line 4: date 2023-02-29 00:00:00");
  assertStringIncludes(run.stdout, "rtc: MC146818 at 0x70 (BCD, 24-hour)");
  assertStringIncludes(run.stdout, "kernelsim> date\ndate: 2000-01-01 00:00:00 UTC (Saturday)\n");
  assertStringIncludes(run.stdout, "rtc: A 0x26 B 0x02 C 0x00 D 0x80 (BCD, 24-hour)");
  assertStringIncludes(run.stdout, "date: 2024-02-29 13:14:15 UTC (Thursday)");
  assertStringIncludes(run.stdout, "date: expected a date and time from 2000 to 2099");
});

Deno.test("main.ts --selftest catches a broken part: a frame allocator that accepts a double free exits 3", async () => {
  const module = `${REPO}tests/user_modules/no_double_free_check.ts`;
  const run = await runMain(["--clock", "virtual", "--frames", module, "--selftest"]);
  assertEquals(run.code, 3, run.stderr);
  assertStringIncludes(
    run.stdout,
    'selftest: ERROR: "frames: double free is detected" failed: second free was accepted',
  );
  assertStringIncludes(run.stdout, "selftest: 7 passed, 1 failed");
});

Deno.test("main.ts: a part that throws during boot is a KERNEL PANIC naming the module and the call, exit 1", async () => {
  const module = `${REPO}tests/user_modules/throwing_frames.ts`;
  const run = await runMain(["--clock", "virtual", "--frames", module]);
  assertEquals(run.code, 1);
  assertStringIncludes(
    run.stdout,
    `KERNEL PANIC: ${module}: allocate() threw TypeError: Cannot read properties of undefined (reading 'frame')\n`,
  );
  assert(!hasStackTrace(run.stdout + run.stderr), run.stderr);
});

Deno.test("main.ts: a part that never returns is stopped with one line and exit status 124", async () => {
  const module = `${REPO}tests/user_modules/loop_frames.ts`;
  const run = await runMain(["--clock", "virtual", "--frames", module, "--user-timeout", "0.3"]);
  assertEquals(run.code, 124);
  assertEquals(
    run.stderr,
    `kernelsim: stopped: ${module}: allocate() did not return within 0.3 s\n`,
  );
  assertStringIncludes(run.stdout, "frames: free:", "the boot log up to the loop is there");
});

Deno.test("main.ts: a missing module, or one of the wrong shape, is one line and exit status 2", async () => {
  const missing = await runMain(["--frames", "no/such/frames.ts"]);
  assertEquals(missing.code, 2);
  assertEquals(missing.stderr, "kernelsim: Cannot load no/such/frames.ts: no such file\n");
  const shape = await moduleFile(
    "shape.ts",
    "export default () => ({ allocate() { return 0; } });\n",
  );
  const wrong = await runMain(["--frames", shape]);
  assertEquals(wrong.code, 2);
  assertEquals(
    wrong.stderr,
    `kernelsim: ${shape}: the factory returned an object without allocateSpecific() (on a scratch machine)\n`,
  );
  const noDefault = await moduleFile("none.ts", "export const heap = 1;\n");
  const none = await runMain(["--heap", noDefault]);
  assertEquals(none.code, 2);
  assertStringIncludes(none.stderr, "the default export must be a KernelHeapFactory");
});

Deno.test("main.ts --kernel refuses the stock kernel's options, and --user-timeout needs a module", async () => {
  const clash = await runMain(["--kernel", HELLO_KERNEL, "--selftest"]);
  assertEquals(clash.code, 2);
  assertEquals(
    clash.stderr,
    "kernelsim: Options --kernel and --selftest cannot be combined: --selftest is for the stock kernel\n",
  );
  const timeout = await runMain(["--user-timeout", "5"]);
  assertEquals(timeout.code, 2);
  assertStringIncludes(timeout.stderr, "Option --user-timeout needs a module");
});

Deno.test("main.ts --kernel: a kernel that throws is one line and exit 1; one that loops is stopped, 124", async () => {
  const throwing = await moduleFile(
    "crash.ts",
    "export default (magic, mbi, hw) => { hw.cpu.outb(0x3f8, 0x41); hw.memory.read32(2 ** 40); };\n",
  );
  const crash = await runMain(["--clock", "virtual", "--kernel", throwing]);
  assertEquals(crash.code, 1);
  assertMatch(
    crash.stderr,
    /^kernelsim: .*crash\.ts: kernel entry threw BusError: Bus error at physical address 0x10000000000 \(4 bytes\): not RAM\n$/,
  );
  const looping = await moduleFile("spin.ts", "export default () => { for (;;) {} };\n");
  const spin = await runMain(["--kernel", looping, "--user-timeout", "0.2"]);
  assertEquals(spin.code, 124);
  assertEquals(
    spin.stderr,
    `kernelsim: stopped: ${looping}: kernel entry did not return within 0.2 s\n`,
  );
});

Deno.test("main.ts --device: a command that throws is the monitor's one-line error; a port clash is exit 2", async () => {
  const device = await moduleFile(
    "flaky.ts",
    `export default {
  device: { name: "flaky", attach(board) { board.claimPorts(0x300, 1, { name: "flaky", portRead: () => { throw new TypeError("no register"); }, portWrite() {} }); } },
  driver: { name: "flaky", commands: [
    { name: "poke-flaky", usage: "", summary: "read the flaky port", arity: [0, 0], run: (args, context) => context.print(String(context.kernel.machine.cpu.inb(0x300))) },
    { name: "oops", usage: "", summary: "a bug", arity: [0, 0], run: () => null.x },
  ] },
};\n`,
  );
  const script = await scriptFile(["oops", "poke-flaky", "echo still here"]);
  const run = await runMain([
    "--clock",
    "virtual",
    "--device",
    device,
    "--script",
    script,
    "--keep-going",
  ]);
  assertEquals(run.code, 0, run.stderr);
  assertStringIncludes(
    run.stdout,
    `oops: ${device}: command oops threw TypeError: Cannot read properties of null`,
  );
  assertStringIncludes(
    run.stdout,
    `poke-flaky: ${device}: portRead() threw TypeError: no register`,
  );
  assertStringIncludes(run.stdout, "still here");
  const clash = await moduleFile(
    "clash.ts",
    `export default { device: { name: "clash", attach(board) { board.claimPorts(0x3f8, 8, { name: "clash", portRead: () => 0, portWrite() {} }); } } };\n`,
  );
  const refused = await runMain(["--device", clash]);
  assertEquals(refused.code, 2);
  assertMatch(
    refused.stderr,
    /^kernelsim: .*clash\.ts: device\.attach\(\) threw RangeError: Cannot claim port 0x3f8 for clash: already claimed by .*\n$/,
  );
});
