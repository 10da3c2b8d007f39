import { assert, assertEquals, assertMatch, assertStringIncludes } from "../testing/mod.ts";
import { MbiWriter } from "../hal/mod.ts";
import { hasStackTrace, runMain } from "./_cli.ts";

const GiB = 2 ** 30;
const MiB = 2 ** 20;

interface Report {
  bootloaderName: string;
  cmdline: string;
  mbi: { address: number; totalSize: number; tagTypes: number[] };
  memoryMap: { base: number; length: number; type: number }[];
  modules: { start: number; end: number; string: string }[];
  usableBytes: number;
}

async function bootReport(args: string[]): Promise<{ report: Report; log: string }> {
  const run = await runMain(["--clock", "virtual", "--report", "json", ...args]);
  assertEquals(run.code, 0, run.stderr);
  return { report: JSON.parse(run.stdout), log: run.stderr };
}

Deno.test("main.ts boots and prints the boot log with the memory map table", async () => {
  const run = await runMain(["--clock", "virtual", "--cmdline", "console=ttyS0 loglevel=7"]);
  assertEquals(run.code, 0, run.stderr);
  assertStringIncludes(run.stdout, "serial: 16550A at 0x3f8");
  assertStringIncludes(run.stdout, "boot loader: kernelsim ");
  assertStringIncludes(run.stdout, "cmdline: console=ttyS0 loglevel=7");
  assertMatch(run.stdout, /0x0000000000100000 0x0000000007fdffff +126\.9 MiB {2}available/);
  assertStringIncludes(run.stdout, "usable memory: 127.5 MiB");
  assertEquals(run.stderr, "");
});

for (const [size, bytes] of [["16M", 16 * MiB], ["512M", 512 * MiB], ["4G", 4 * GiB]] as const) {
  Deno.test(`main.ts --memory ${size} reports the memory map of a ${size} PC`, async () => {
    const { report } = await bootReport(["--memory", size]);
    const available = report.memoryMap.filter((r) => r.type === 1);
    const sum = available.reduce((total, r) => total + r.length, 0);
    assertEquals(report.usableBytes, sum);
    // All RAM but the 385 KiB legacy hole and the 128 KiB ACPI area is usable.
    assertEquals(report.usableBytes, bytes - 385 * 1024 - 128 * 1024);
    if (bytes > 3.5 * GiB) assert(available.some((r) => r.base === 4 * GiB), "RAM above 4 GiB");
  });
}

Deno.test("main.ts --memory 64G boots and reports about 64 GiB usable", async () => {
  const { report } = await bootReport(["--memory", "64G"]);
  assert(report.usableBytes > 63.9 * GiB && report.usableBytes <= 64 * GiB);
});

Deno.test("main.ts --report json describes the MBI as parsed from RAM", async () => {
  const { report, log } = await bootReport(["--cmdline", "root=/dev/sda1"]);
  assertEquals(report.cmdline, "root=/dev/sda1");
  assertMatch(report.bootloaderName, /^kernelsim \d+\.\d+\.\d+$/);
  assertEquals(report.mbi.address % 8, 0);
  assertEquals(report.mbi.tagTypes, [1, 2, 4, 6, 21, 14, 15]);
  assert(report.mbi.totalSize > 16);
  assertStringIncludes(log, "boot: cmdline: root=/dev/sda1");
});

Deno.test("main.ts --module loads files page-aligned after the kernel image", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/initrd.img`, new Uint8Array(5000).fill(7));
    await Deno.writeFile(`${dir}/second.bin`, new Uint8Array(10));
    const { report, log } = await bootReport([
      "--module",
      `${dir}/initrd.img`,
      "--module",
      `${dir}/second.bin=second --verbose`,
    ]);
    assertEquals(report.modules.map((m) => m.string), ["initrd.img", "second --verbose"]);
    assertEquals(report.modules.map((m) => m.end - m.start), [5000, 10]);
    for (const module of report.modules) assertEquals(module.start % 4096, 0);
    assert(report.modules[0].start >= 1 * MiB + 512 * 1024, "after the kernel image");
    assertStringIncludes(log, `"second --verbose"`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main.ts --mbi boots from a raw GRUB-style MBI with holes in its map", async () => {
  const writer = new MbiWriter();
  writer.bootLoaderName("GRUB 2.12");
  writer.cmdline("/boot/kernel quiet");
  writer.memoryMap([
    { base: 0, length: 0x9fc00, type: 1 },
    { base: 0x9fc00, length: 0x60400, type: 2 },
    { base: 0x100000, length: 0x3ef0000, type: 1 },
    { base: 0x3ff0000, length: 0x10000, type: 3 },
  ]);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/grub.mbi`, writer.finish());
    const { report, log } = await bootReport(["--mbi", `${dir}/grub.mbi`, "--mbi-addr", "0x9000"]);
    assertEquals(report.bootloaderName, "GRUB 2.12");
    assertEquals(report.mbi.address, 0x9000);
    assertEquals(report.usableBytes, 0x9fc00 + 0x3ef0000);
    assertStringIncludes(log, "cmdline: /boot/kernel quiet");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main.ts --mbi with a corrupt MBI is a kernel panic and exit 1", async () => {
  const writer = new MbiWriter();
  writer.cmdline("x");
  const bytes = writer.finish();
  new DataView(bytes.buffer).setUint32(0, 12, true); // total_size below 16
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/bad.mbi`, bytes);
    const run = await runMain(["--clock", "virtual", "--mbi", `${dir}/bad.mbi`]);
    assertEquals(run.code, 1);
    assertMatch(run.stdout, /^KERNEL PANIC: InvalidBootInfo: .*total_size/m);
    assert(!hasStackTrace(run.stdout + run.stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main.ts rejects bad options with one line and exit status 2", async () => {
  const cases: [string[], string][] = [
    [["--memory", "8M"], 'Invalid --memory "8M": must be from 16M to 64G'],
    [["--memory", "lots"], 'Invalid --memory "lots"'],
    [["--frobnicate"], "Unknown option --frobnicate"],
    [["--report", "yaml"], 'Invalid --report "yaml"'],
    [
      ["--module", "/nonexistent/file.bin"],
      'Cannot read --module "/nonexistent/file.bin": no such file',
    ],
    [["--mbi-addr", "0x1000"], "Option --mbi-addr needs --mbi FILE"],
    [["--clock", "sundial"], 'Invalid --clock "sundial"'],
  ];
  for (const [args, message] of cases) {
    const run = await runMain(args);
    assertEquals(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assertEquals(run.stdout, "");
    const lines = run.stderr.trimEnd().split("\n");
    assertEquals(lines.length, 1, run.stderr);
    assertStringIncludes(lines[0], message);
  }
});

Deno.test("main.ts --help lists every option and --version prints the version", async () => {
  const help = await runMain(["--help"]);
  assertEquals(help.code, 0);
  for (const option of ["--memory", "--cmdline", "--module", "--mbi", "--mbi-addr", "--report"]) {
    assertStringIncludes(help.stdout, option);
  }
  const version = await runMain(["--version"]);
  assertMatch(version.stdout, /^kernelsim \d+\.\d+\.\d+\n$/);
});

Deno.test("main.ts --quiet prints nothing on a successful boot", async () => {
  const run = await runMain(["--clock", "virtual", "--quiet"]);
  assertEquals([run.code, run.stdout, run.stderr], [0, "", ""]);
});
