import { assert, assertEquals, assertMatch, assertStringIncludes } from "../testing/mod.ts";
import { hasStackTrace, runMain } from "./_cli.ts";
import { withTempDir } from "./_temp_dir.ts";

const TABLES = ["RSDP", "XSDT", "RSDT", "FACP", "DSDT", "APIC", "HPET"];

/** Whether `iasl` (Debian package acpica-tools) can be run here. */
function hasIasl(): boolean {
  try {
    return new Deno.Command("iasl", { args: ["-v"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

/**
 * Runs `iasl -d` on `file` and returns what it complained about: any line
 * with an error, a warning or a checksum remark, and `****` notes in the
 * disassembly. Empty means accepted.
 */
async function iaslComplaints(file: string): Promise<string[]> {
  const output = await new Deno.Command("iasl", {
    args: ["-d", file],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  const complaints = text.split("\n").filter((line) => /error|warning|checksum/i.test(line));
  if (!output.success) complaints.push(`iasl exited with status ${output.code}`);
  const dsl = file.replace(/\.dat$/, ".dsl");
  const disassembly = await Deno.readTextFile(dsl).catch(() => "");
  if (disassembly === "") complaints.push(`no disassembly in ${dsl}`);
  complaints.push(...disassembly.split("\n").filter((line) => line.includes("****")));
  return complaints;
}

Deno.test("main.ts --dump-acpi DIR writes each firmware table as SIGNATURE.dat and exits", async () => {
  await withTempDir(async (dir) => {
    const run = await runMain(["--dump-acpi", dir]);
    assertEquals(run.code, 0, run.stderr);
    for (const signature of TABLES) {
      const bytes = await Deno.readFile(`${dir}/${signature}.dat`);
      assertMatch(
        run.stdout,
        new RegExp(`${signature}\\.dat: ${bytes.length} bytes at 0x[0-9a-f]+\\n`),
      );
      const sum = bytes.reduce((total, byte) => (total + byte) & 0xff, 0);
      assertEquals(sum, 0, `${signature} checksum`);
      if (signature !== "RSDP") {
        assertEquals(new TextDecoder().decode(bytes.subarray(0, 4)), signature);
      }
    }
    assertEquals((await Deno.readFile(`${dir}/RSDP.dat`)).length, 36);
    assert(!run.stdout.includes("boot:"), "it exits before booting");
  });
});

Deno.test({
  name: hasIasl()
    ? "iasl -d disassembles every table --dump-acpi writes, without errors or checksum warnings"
    : "iasl -d disassembles every table --dump-acpi writes (skipped: iasl from acpica-tools is not installed)",
  ignore: !hasIasl(),
  fn: async () => {
    await withTempDir(async (dir) => {
      assertEquals((await runMain(["--dump-acpi", dir])).code, 0);
      // iasl reads tables with a standard header; the RSDP has none (its checksums are checked above).
      for (const signature of TABLES.filter((s) => s !== "RSDP")) {
        assertEquals(await iaslComplaints(`${dir}/${signature}.dat`), [], signature);
      }
      // The check catches what it is for: the same MADT with one byte changed.
      const madt = await Deno.readFile(`${dir}/APIC.dat`);
      madt[40] ^= 1;
      await Deno.writeFile(`${dir}/BAD.dat`, madt);
      const complaints = await iaslComplaints(`${dir}/BAD.dat`);
      assert(
        complaints.some((line) => /Incorrect checksum in table \[APIC\]/.test(line)),
        complaints.join("\n"),
      );
    });
  },
});

Deno.test("main.ts --dump-acpi into a missing directory fails with one line and status 2", async () => {
  const run = await runMain(["--dump-acpi", "/nonexistent/kernelsim-acpi"]);
  assertEquals(run.code, 2);
  assertMatch(
    run.stderr,
    /^kernelsim: Cannot write "\/nonexistent\/kernelsim-acpi\/RSDP\.dat": no such file\n$/,
  );
});

Deno.test("main.ts --report json shows the ACPI tables and the interrupt routing of APIC mode", async () => {
  const run = await runMain(["--clock", "virtual", "--report", "json"]);
  assertEquals(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  assertEquals(report.acpi.root, "XSDT");
  assertEquals(report.acpi.tables.map((t: { signature: string }) => t.signature), [
    "XSDT",
    "FACP",
    "APIC",
    "HPET",
    "DSDT",
  ]);
  assert(report.acpi.tables.every((t: { checksum: string }) => t.checksum === "valid"));
  assertEquals(report.acpi.madt.ioApics, [{ id: 1, address: 0xfec00000, gsiBase: 0 }]);
  const routing = report.interrupts.routing;
  assertEquals(routing.mode, "apic");
  assertEquals(
    routing.isaIrqs.map((
      r: { irq: number; gsi: number; vector: number },
    ) => [r.irq, r.gsi, r.vector]),
    [
      [0, 2, 0x30],
      [4, 4, 0x34],
    ],
  );
  assertEquals(routing.timer.source, "local APIC timer");
  assertEquals(routing.timer.calibration.countsPerSecond, 62_500_000);
  assertEquals(routing.hpet.periodFs, 10_000_000);
  assertEquals(report.interrupts.perIrq[0], 11, "the calibration window's PIT ticks");
});

Deno.test("main.ts --no-apic boots with the 8259 and the PIT and the monitor still works", async () => {
  const run = await runMain(
    ["--clock", "virtual", "--no-apic", "--console", "-q"],
    new TextEncoder().encode("irq\nuptime\n"),
  );
  assertEquals(run.code, 0, run.stderr);
  assertStringIncludes(
    run.stdout,
    "mode: legacy (8259 and PIT: --no-apic), tick: 8254 PIT on vector 0x30",
  );
  assertStringIncludes(run.stdout, "IRQ 4 (COM1) -> 8259 master IR4 -> vector 0x34");
  assertMatch(run.stdout, /up \d+\.\d{6} s: \d+ timer ticks? at 99\.998 Hz/);
});

Deno.test("main.ts: a monitor access to an unbacked physical address is a machine-check panic", async () => {
  const script = "map 0x400000 0xd0000000 rw\npeek 0x400000 4\necho not reached\n";
  const run = await runMain(
    ["--clock", "virtual", "--console", "-q"],
    new TextEncoder().encode(script),
  );
  assertEquals(run.code, 1);
  assertStringIncludes(
    run.stdout,
    "KERNEL PANIC: Machine check: bus error at physical address 0xd0000000 (1 byte): no RAM or " +
      "device answers a 1-byte read\n",
  );
  assert(!run.stdout.includes("not reached"));
  assert(!hasStackTrace(run.stdout + run.stderr));
});

Deno.test("main.ts: a cacheable mapping of device registers is traced and listed by mmio", async () => {
  const script = "map 0x400000 0xfec00000 rw\npeek 0x400000 4\nmmio\n";
  const run = await runMain(
    ["--clock", "virtual", "--console", "-q", "--trace", "mmu"],
    new TextEncoder().encode(script),
  );
  assertEquals(run.code, 0, run.stderr);
  const mistake =
    "page 0x400000 maps io-apic registers at 0xfec00000 as WB, not UC (map MMIO with PCD|PWT)";
  assertStringIncludes(run.stderr, `mmu: uncached-MMIO check: ${mistake}`);
  assertStringIncludes(run.stdout, "uncached-MMIO check: 1 device page mapped cacheable");
  assertStringIncludes(run.stdout, `  ${mistake}`);
  assertMatch(
    run.stdout,
    /0xfee00000-0xfee00fff {2}local-apic {2}in the CPU {2}mapped at 0xffffffffff000000/,
  );
});

Deno.test("main.ts --help lists --no-apic and --dump-acpi", async () => {
  const run = await runMain(["--help"]);
  assertMatch(run.stdout, /--no-apic +boot the legacy way/);
  assertMatch(run.stdout, /--dump-acpi DIR +write each ACPI table/);
});
