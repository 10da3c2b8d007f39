/**
 * main.ts with input files, output paths and standard streams a user may get
 * wrong or abuse: devices, directories, pipes, files over the limit, a full
 * disk, special output paths. Each ends in one line and a documented exit
 * status, before the boot when the problem is known then.
 */

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../testing/mod.ts";
import { MbiWriter } from "../hal/mod.ts";
import { type CliRun, hasStackTrace, runCommand, runMain, runMainInShell } from "./_cli.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/** Asserts `run` failed with `code` and printed exactly one line, on stderr, with `text`. */
function assertOneLine(run: CliRun, code: number, text: string): void {
  assertEquals(run.code, code, run.stderr);
  assertEquals(run.stdout, "", "nothing booted");
  const lines = run.stderr.trimEnd().split("\n");
  assertEquals(lines.length, 1, run.stderr);
  assertStringIncludes(lines[0], text);
  assert(!hasStackTrace(run.stderr), run.stderr);
  assert(
    !/--allow-|run again/.test(run.stderr),
    `no hint to rerun with a Deno flag: ${run.stderr}`,
  );
}

/** Creates a sparse file of `sizeBytes` (no disk space used) in `dir`. */
async function sparseFile(dir: string, name: string, sizeBytes: number): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeFile(path, new Uint8Array(0));
  await Deno.truncate(path, sizeBytes);
  return path;
}

/** Whether `mkfifo` is there to make named pipes with. */
function hasMkfifo(): boolean {
  try {
    return new Deno.Command("mkfifo", { args: ["--version"], stdout: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

Deno.test("main.ts refuses a device as --module, --mbi or --script with one line, exit 2", async () => {
  const cases: [string[], string][] = [
    [["--module", "/dev/zero"], 'Cannot read --module "/dev/zero": a character device'],
    [["--mbi", "/dev/zero"], 'Cannot read --mbi "/dev/zero": a character device'],
    [["--script", "/dev/zero"], 'Cannot read --script "/dev/zero": a character device'],
    [["--script", "/dev/stdin"], 'Cannot read --script "/dev/stdin": a device'],
    [["--module", "/"], 'Cannot read --module "/": a directory, not a regular file'],
  ];
  for (const [args, text] of cases) {
    assertOneLine(await runMain(["--clock", "virtual", ...args]), 2, text);
  }
});

Deno.test("main.ts refuses input files over their limit before reading them, exit 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const module = await sparseFile(dir, "module.bin", 16 * MiB + 1);
    const mbi = await sparseFile(dir, "huge.mbi", 4 * GiB + 8);
    const script = await sparseFile(dir, "commands.txt", MiB + 1);
    assertOneLine(
      await runMain(["--clock", "virtual", "--memory", "16M", "--module", module]),
      2,
      `${16 * MiB + 1} bytes, larger than the machine's 16 MiB of RAM`,
    );
    assertOneLine(
      await runMain(["--clock", "virtual", "--mbi", mbi]),
      2,
      `${4 * GiB + 8} bytes, larger than 4 GiB`,
    );
    assertOneLine(
      await runMain(["--clock", "virtual", "--script", script]),
      2,
      `${MiB + 1} bytes, larger than 1 MiB, the limit for a script`,
    );
    // At the limit, a module loads.
    const fits = await sparseFile(dir, "fits.bin", 64 * 1024);
    const run = await runMain(["--clock", "virtual", "--module", fits, "--report", "json"]);
    assertEquals(run.code, 0, run.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: `main.ts --script reads a named pipe, and --module refuses one${
    hasMkfifo() ? "" : " (skipped: mkfifo is not installed)"
  }`,
  ignore: !hasMkfifo(),
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const fifo = `${dir}/commands`;
      const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
      assert(made.success);
      const refused = await runMain(["--clock", "virtual", "--module", fifo]);
      assertOneLine(refused, 2, "a named pipe, not a regular file");
      // The writer blocks until main.ts opens the pipe for reading.
      const writing = Deno.writeTextFile(fifo, "echo through a pipe\n");
      const run = await runMain(["--clock", "virtual", "--quiet", "--script", fifo]);
      await writing;
      assertEquals(run.code, 0, run.stderr);
      assertStringIncludes(run.stdout, "kernelsim> echo through a pipe\nthrough a pipe\n");
      // A pipe is read up to the script limit and no further.
      const flood = Deno.writeFile(fifo, new Uint8Array(MiB + 1).fill(0x0a)).catch((error) => {
        // main.ts closes the pipe once it has seen too much.
        if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
      });
      const flooded = await runMain(["--clock", "virtual", "--quiet", "--script", fifo]);
      await flood;
      assertOneLine(flooded, 2, `Cannot read --script "${fifo}": larger than 1 MiB`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("main.ts checks output paths before the boot: nothing boots for a bad one, exit 2", async () => {
  const cases: [string[], string][] = [
    [["--report", "html", "/nonexistent-dir/x.html"], 'Cannot write "/nonexistent-dir/x.html"'],
    [["--report", "html", "/"], 'Cannot write "/": is a directory'],
    [["--report", "html", "/dev/full"], 'Cannot write "/dev/full": a device'],
    [["--trace", "mm", "--trace-file", "/dev/full"], 'Cannot write "/dev/full": a device'],
  ];
  for (const [args, text] of cases) {
    // assertOneLine checks stdout is empty: no boot log, the check came first.
    assertOneLine(await runMain(["--clock", "virtual", ...args]), 2, text);
  }
});

Deno.test("main.ts writes --report html and --trace-file to /dev/stdout and /dev/stderr", async () => {
  const html = await runMain(["--clock", "virtual", "--quiet", "--report", "html", "/dev/stdout"]);
  assertEquals(html.code, 0, html.stderr);
  assert(html.stdout.startsWith("<!DOCTYPE html>"), html.stdout.slice(0, 100));
  assertEquals(html.stderr, "");
  const trace = await runMain([
    "--clock",
    "virtual",
    "--quiet",
    "--trace",
    "mm",
    "--trace-file",
    "/dev/stderr",
  ]);
  assertEquals(trace.code, 0, trace.stderr);
  assertMatch(trace.stderr, /^\[ +0\.000000\] mm: alloc frame /m);
});

Deno.test("main.ts keeps an old --report html file when the boot fails, and leaves no new one", async () => {
  const writer = new MbiWriter();
  writer.cmdline("x");
  const bad = writer.finish();
  new DataView(bad.buffer).setUint32(0, 12, true); // total_size below 16: a kernel panic
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/bad.mbi`, bad);
    await Deno.writeTextFile(`${dir}/old.html`, "the last good report");
    const old = await runMain(["--mbi", `${dir}/bad.mbi`, "--report", "html", `${dir}/old.html`]);
    assertEquals(old.code, 1, old.stderr);
    assertEquals(await Deno.readTextFile(`${dir}/old.html`), "the last good report");
    const fresh = await runMain(["--mbi", `${dir}/bad.mbi`, "--report", "html", `${dir}/new.html`]);
    assertEquals(fresh.code, 1, fresh.stderr);
    assertEquals(await Deno.stat(`${dir}/new.html`).catch(() => "absent"), "absent");
    // A good boot replaces the old report.
    const good = await runMain(["--clock", "virtual", "--report", "html", `${dir}/old.html`]);
    assertEquals(good.code, 0, good.stderr);
    assert((await Deno.readTextFile(`${dir}/old.html`)).startsWith("<!DOCTYPE html>"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main.ts with stdout on a full disk exits 74 with one line", async () => {
  for (const args of [["--clock", "virtual"], ["--clock", "virtual", "-q", "--report", "json"]]) {
    const run = await runMainInShell(args, "> /dev/full");
    assertEquals(run.code, 74, run.stderr);
    assertEquals(run.stderr, "kernelsim: Cannot write standard output: no space left on device\n");
  }
});

Deno.test("main.ts with a directory on stdin for the console exits 2 with one line", async () => {
  const run = await runMainInShell(["--clock", "virtual", "-q", "--console"], "< /");
  assertEquals(run.code, 2, run.stderr);
  assertEquals(run.stderr, "kernelsim: Cannot read standard input: is a directory\n");
});

Deno.test("main.ts -q prints one KERNEL PANIC line, for a boot panic and for the monitor's", async () => {
  const writer = new MbiWriter();
  writer.cmdline("x");
  const bad = writer.finish();
  new DataView(bad.buffer).setUint32(0, 12, true); // total_size below 16
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/bad.mbi`, bad);
    const boot = await runMainInShell(["-q", "--mbi", `${dir}/bad.mbi`], "2>&1");
    assertEquals(boot.code, 1, boot.stdout);
    assertEquals(boot.stdout.match(/KERNEL PANIC/g)?.length, 1, boot.stdout);
    const monitor = await runMainInShell(
      ["--clock", "virtual", "-q", "--console"],
      "2>&1",
      new TextEncoder().encode("panic\n"),
    );
    assertEquals(monitor.code, 1, monitor.stdout);
    assertEquals(monitor.stdout.match(/KERNEL PANIC/g)?.length, 1, monitor.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main.ts interleaves trace lines with the console in event order, never inside a line", async () => {
  const commands = "alloc 1\necho hello world, a line long enough to fill the receive FIFO\n";
  const run = await runMainInShell(
    ["--clock", "virtual", "-q", "--console", "--trace", "mm,irq"],
    "2>&1",
    new TextEncoder().encode(commands),
  );
  assertEquals(run.code, 0, run.stdout);
  const lines = run.stdout.split("\n");
  // Every echoed command is whole on its line: no trace line split it.
  for (const command of commands.trimEnd().split("\n")) {
    assert(lines.includes(`kernelsim> ${command}`), `"${command}" echoed whole:\n${run.stdout}`);
  }
  // The frame allocation is traced before the command's result, after its echo.
  const echo = lines.indexOf("kernelsim> alloc 1");
  const result = lines.findIndex((line) => line.startsWith("alloc: 1 frame: "));
  const traced = lines.findIndex((line, i) => i > echo && / mm: alloc frame /.test(line));
  assert(echo < traced && traced < result, run.stdout);
  // The receive interrupt of the input comes right after its echoed line, not before its prompt:
  // COM1's IRQ 4 through I/O APIC pin 4, then its vector from the local APIC.
  assertMatch(lines[echo + 1], /\] irq: io-apic pin 4: vector 0x34 to APIC 0x00$/, run.stdout);
  assertMatch(lines[echo + 2], /\] irq: deliver vector 0x34 from the local APIC$/, run.stdout);
  // Every trace line is whole: it starts a line.
  for (const line of lines) {
    assert(!/.\[ +\d+\.\d{6}\] /.test(line), `trace line inside "${line}"`);
  }
});

Deno.test("main.ts --trace-file /dev/stdout keeps trace lines in order with the console", async () => {
  const run = await runMain(
    ["--clock", "virtual", "-q", "--console", "--trace", "mm", "--trace-file", "/dev/stdout"],
    new TextEncoder().encode("alloc 1\n"),
  );
  assertEquals(run.code, 0, run.stderr);
  assertMatch(
    run.stdout,
    /kernelsim> alloc 1\n\[ +\d+\.\d{6}\] mm: alloc frame 0x\w+ \(pa 0x\w+\)\nalloc: 1 frame: /,
  );
});

Deno.test("main.ts without write permission says so in one line, without a Deno flag to add", async () => {
  const main = new URL("../main.ts", import.meta.url).pathname;
  const run = await runCommand(
    Deno.execPath(),
    ["run", "--quiet", "--allow-read", main, "--report", "html", "/tmp/kernelsim.html"],
  );
  assertOneLine(
    run,
    2,
    'Cannot write "/tmp/kernelsim.html": kernelsim was started without permission to write files',
  );
});
