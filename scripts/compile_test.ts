import { assert, assertEquals, assertStringIncludes, assertThrows } from "../testing/mod.ts";
import { checkDenortBin, compileArgs, CompileError, WORKER_MODULES } from "./compile.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** Asserts `check` rejects with a CompileError whose message includes `text`. */
async function assertRefuses(check: Promise<void>, text: string): Promise<void> {
  const error = await check.then(() => undefined, (reason: unknown) => reason);
  assert(error instanceof CompileError, `expected a CompileError, got ${error}`);
  assertStringIncludes(error.message, text);
}

Deno.test("compileArgs() includes each listed Worker module and refuses a missing one", () => {
  const args = compileArgs({
    root: ROOT,
    output: "out/kernelsim",
    workerModules: ["cli/run.ts", "hal/mod.ts"],
  });
  assertEquals(args, [
    "compile",
    "--allow-read",
    "--allow-write",
    "--include",
    `${ROOT}/cli/run.ts`,
    "--include",
    `${ROOT}/hal/mod.ts`,
    "--output",
    "out/kernelsim",
    `${ROOT}/main.ts`,
  ]);
  assertThrows(
    () => compileArgs({ root: ROOT, output: "x", workerModules: ["hal/no_such_worker.ts"] }),
    CompileError,
    'Worker module "hal/no_such_worker.ts" in WORKER_MODULES does not exist',
  );
});

Deno.test("WORKER_MODULES lists every module the program starts as a Worker", async () => {
  // Every `new Worker(new URL("./x.ts", import.meta.url))` of main.ts's program
  // (the grader is a program of its own, not in the binary).
  const started: string[] = [];
  for (const folder of ["cli", "devices", "hal", "kernel", "sdk"]) {
    for await (const entry of Deno.readDir(`${ROOT}/${folder}`)) {
      if (!entry.name.endsWith(".ts") || entry.name.endsWith("_test.ts")) continue;
      const source = await Deno.readTextFile(`${ROOT}/${folder}/${entry.name}`);
      if (!/new Worker\(/.test(source)) continue;
      for (const match of source.matchAll(/new URL\(\s*"\.\/([\w.]+)",\s*import\.meta\.url\)/g)) {
        if (match[1].endsWith("_worker.ts")) started.push(`${folder}/${match[1]}`);
      }
    }
  }
  // The CPU Worker's URL is made by the CLI and handed to the board, which starts it.
  const cpuWorker = await Deno.readTextFile(`${ROOT}/cli/run.ts`);
  for (
    const match of cpuWorker.matchAll(/new URL\("\.\/([\w.]+_worker\.ts)", import\.meta\.url\)/g)
  ) {
    started.push(`cli/${match[1]}`);
  }
  for (const module of started) assert(WORKER_MODULES.includes(module), `${module} is listed`);
  assert(WORKER_MODULES.includes("cli/cpu_worker.ts"), "the CPU Worker of --smp is listed");
});

Deno.test("checkDenortBin() refuses the full deno binary, a directory, a missing or plain file", async () => {
  await assertRefuses(
    checkDenortBin(Deno.execPath()),
    "is the full deno binary, not its denort runtime",
  );
  await assertRefuses(checkDenortBin(ROOT), "is not a regular file");
  await assertRefuses(checkDenortBin(`${ROOT}/no-denort`), "does not exist");
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/denort`, "not a program", { mode: 0o644 });
    await Deno.chmod(`${dir}/denort`, 0o644);
    await assertRefuses(checkDenortBin(`${dir}/denort`), "is not executable");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task compile without a runtime says in one line to set DENORT_BIN", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "compile", "--output", `${dir}/kernelsim`],
      cwd: ROOT,
      // No DENORT_BIN, an empty cache, and a proxy that refuses: the runtime
      // cannot be downloaded, whatever the network here.
      clearEnv: true,
      env: { DENO_DIR: `${dir}/deno-dir`, HTTPS_PROXY: "http://127.0.0.1:9", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(run.stderr);
    assertEquals(run.code, 1, stderr);
    const lines = stderr.trimEnd().split("\n");
    assertEquals(lines.length, 1, stderr);
    assertStringIncludes(lines[0], "compile: deno compile needs Deno's denort runtime");
    assertStringIncludes(lines[0], `set DENORT_BIN to Deno's denort runtime ${Deno.version.deno}`);
    assertEquals(await Deno.stat(`${dir}/kernelsim`).catch(() => "absent"), "absent");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task compile refuses a DENORT_BIN that is the full deno binary", async () => {
  const run = await new Deno.Command(Deno.execPath(), {
    args: ["task", "compile", "--output", "/nonexistent-dir/kernelsim"],
    cwd: ROOT,
    env: { DENORT_BIN: Deno.execPath(), NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(run.stderr);
  assertEquals(run.code, 1, stderr);
  assertStringIncludes(stderr, `compile: DENORT_BIN "${Deno.execPath()}" is the full deno binary`);
});
