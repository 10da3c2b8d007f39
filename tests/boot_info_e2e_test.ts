/**
 * End-to-end: boot information a user hands the CLI that is odd or hostile
 * (overlapping or impossible memory maps, control characters in strings,
 * options that contradict `--mbi`) boots with a warning, or is refused in
 * one line, never a JavaScript error.
 */

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../testing/mod.ts";
import { MbiWriter, type MemoryMapEntry } from "../hal/mod.ts";
import { hasStackTrace, runMain } from "./_cli.ts";

const LOW_AND_128M: MemoryMapEntry[] = [
  { base: 0, length: 0x9fc00, type: 1 },
  { base: 0x100000, length: 0x7f00000, type: 1 },
];

async function withMbi<T>(bytes: Uint8Array, use: (path: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/boot.mbi`, bytes);
    return await use(`${dir}/boot.mbi`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function bootMbi(map: MemoryMapEntry[]) {
  const bytes = new MbiWriter().cmdline("sanitize me").memoryMap(map).finish();
  return await withMbi(
    bytes,
    (path) => runMain(["--clock", "virtual", "--report", "json", "--mbi", path]),
  );
}

Deno.test("main.ts --mbi with overlapping available entries boots with one warning", async () => {
  const run = await bootMbi([...LOW_AND_128M, { base: 0x200000, length: 0x1000000, type: 1 }]);
  assertEquals(run.code, 0, run.stdout + run.stderr);
  const warnings = run.stderr.split("\n").filter((line) => line.includes("WARN"));
  assertEquals(warnings.length, 1, run.stderr);
  assertStringIncludes(
    warnings[0],
    "mem: WARN: memory map: available 0x200000..0x1200000 overlaps another available entry",
  );
  const report = JSON.parse(run.stdout);
  assertEquals(report.usableBytes, 0x9fc00 + 0x7f00000);
  assertEquals(report.sanitizedMemoryMap, LOW_AND_128M);
  assertEquals(report.memoryMap.length, 3, "the firmware's map is reported as given");
});

Deno.test("main.ts --mbi never hands out memory an overlapping entry reserves", async () => {
  const run = await bootMbi([...LOW_AND_128M, { base: 0x400000, length: 0x400000, type: 2 }]);
  assertEquals(run.code, 0, run.stderr);
  assertStringIncludes(
    run.stderr,
    "memory map: available 0x100000..0x8000000 overlaps more restrictive entries: " +
      "0x400000..0x800000 is reserved",
  );
  const report = JSON.parse(run.stdout);
  const pools: { base: number; frameCount: number }[] = report.frames.pools;
  for (const pool of pools) {
    assert(pool.base + pool.frameCount * 4096 <= 0x400000 || pool.base >= 0x800000);
  }
});

Deno.test("main.ts --mbi with RAM beyond the machine or the address width boots, saying so in hex", async () => {
  const run = await bootMbi([
    ...LOW_AND_128M,
    { base: 0x20_0000_0000, length: 0x4000_0000, type: 1 },
    { base: 2 ** 50, length: 0x4000_0000, type: 1 },
  ]);
  assertEquals(run.code, 0, run.stderr);
  assertStringIncludes(
    run.stderr,
    "memory map: available 0x4000000000000..0x4000040000000 lies above the 46-bit physical " +
      "address width, left out",
  );
  assertStringIncludes(
    run.stderr,
    "memory map: available 0x2000000000..0x2040000000 has no RAM behind it, left out",
  );
  const warnings = run.stderr.split("\n").filter((l) => l.includes("WARN: ")).map((l) =>
    l.slice(l.indexOf("WARN: "))
  );
  assertEquals(warnings.length, 2);
  for (const warning of warnings) assert(!/\b\d{6,}\b/.test(warning), `decimal: ${warning}`);
  assert(!hasStackTrace(run.stdout + run.stderr));
});

Deno.test("main.ts prints boot strings with control characters escaped; the JSON report keeps them exact", async () => {
  const cmdline = "quiet\x1b[2J\x1b]0;owned\x07 tab\there";
  const run = await runMain(["--clock", "virtual", "--report", "json", `--cmdline=${cmdline}`]);
  assertEquals(run.code, 0, run.stderr);
  assertStringIncludes(run.stderr, "boot: cmdline: quiet\\x1b[2J\\x1b]0;owned\\x07 tab\\there\n");
  assert(!run.stderr.includes("\x1b"), "no raw escape reaches the terminal");
  assertEquals(JSON.parse(run.stdout).cmdline, cmdline);

  const mbi = new MbiWriter()
    .bootLoaderName("GRUB\x1b[31m red")
    .module({ start: 0x300000, end: 0x301000, string: "initrd\r\n\x1b[1A" })
    .memoryMap(LOW_AND_128M)
    .finish();
  const raw = await withMbi(mbi, (path) => runMain(["--clock", "virtual", "--mbi", path]));
  assertEquals(raw.code, 0, raw.stderr);
  assertStringIncludes(raw.stdout, "boot: boot loader: GRUB\\x1b[31m red\n");
  assertStringIncludes(raw.stdout, '"initrd\\r\\n\\x1b[1A"');
  assert(!raw.stdout.includes("\x1b"));
});

Deno.test("main.ts --mbi with a module tag reports the module as not loaded, not its contents", async () => {
  const mbi = new MbiWriter()
    .loadBaseAddr(0x100000)
    .module({ start: 0x300000, end: 0x3000f0, string: "initrd" })
    .memoryMap(LOW_AND_128M)
    .finish();
  const run = await withMbi(
    mbi,
    (path) => runMain(["--clock", "virtual", "--report", "json", "--mbi", path]),
  );
  assertEquals(run.code, 0, run.stderr);
  assertMatch(
    run.stderr,
    /boot: WARN: module 0: 0x300000\.\.0x3000f0 \(240 bytes\) "initrd": not loaded: 0x300000\.\.0x3000f0 is not RAM/,
  );
  assertEquals(JSON.parse(run.stdout).modules, [
    { start: 0x300000, end: 0x3000f0, string: "initrd", loaded: false },
  ]);
});

Deno.test("main.ts refuses --mbi with --cmdline or --memory in one line, exit status 2", async () => {
  const mbi = new MbiWriter().memoryMap(LOW_AND_128M).finish();
  await withMbi(mbi, async (path) => {
    const cases: [string[], string][] = [
      [["--cmdline", "quiet"], "Options --mbi and --cmdline cannot be combined"],
      [["--memory", "1G"], "Options --mbi and --memory cannot be combined"],
    ];
    for (const [args, message] of cases) {
      const run = await runMain(["--mbi", path, ...args]);
      assertEquals(run.code, 2, run.stderr);
      assertEquals(run.stdout, "");
      assertEquals(run.stderr.trimEnd().split("\n").length, 1, run.stderr);
      assertStringIncludes(run.stderr, message);
    }
  });
});

Deno.test("main.ts boots an MBI placed right after a small kernel, as GRUB places it", async () => {
  const mbi = new MbiWriter()
    .loadBaseAddr(0x100000)
    .cmdline("placed by GRUB")
    .memoryMap(LOW_AND_128M)
    .finish();
  const run = await withMbi(
    mbi,
    (path) =>
      runMain(["--clock", "virtual", "--report", "json", "--mbi", path, "--mbi-addr", "0x104768"]),
  );
  assertEquals(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  assertEquals(report.mbi.address, 0x104768);
  assertEquals(report.kernelImage.start, 0x100000);
  assertEquals(report.kernelImage.end, 0x104768);
  assertStringIncludes(
    run.stderr,
    "boot: reserved 0x100000..0x104768 kernel image: base from the load base address tag (21), " +
      "end from the lowest MBI or module address (the MBI at 0x104768)",
  );
});
