/**
 * `deno task compile`: builds the standalone `kernelsim` binary with
 * `deno compile`, which joins the program to Deno's `denort` runtime. The
 * runtime is downloaded from dl.deno.land, or taken from `DENORT_BIN`. This
 * script checks `DENORT_BIN` first (a regular, executable file that is the
 * runtime, not the full `deno` binary, from which `deno compile` would
 * silently build a plain Deno), says in one line what is missing when the
 * runtime can be neither found nor downloaded, and checks the binary it
 * built answers `--version` as kernelsim.
 *
 * Usage: `deno task compile [--output PATH]` (default `./kernelsim`).
 * Exit status: 0 built, 1 not built (one line on stderr says why), 2 bad
 * arguments.
 *
 * @module
 */

import { parseArgs } from "node:util";

/**
 * Modules the program starts as Workers (`new Worker(new URL(...))`), which
 * `deno compile` does not find by itself: each is passed with `--include`.
 * Add a Worker's entry module here when one is written.
 */
export const WORKER_MODULES: readonly string[] = ["cli/cli_worker.ts", "cli/cpu_worker.ts"];

/** The permissions the binary runs with: those of `deno task boot`. */
const RUNTIME_PERMISSIONS = ["--allow-read", "--allow-write"];
/** How long `DENORT_BIN --version` may take, in ms. */
const PROBE_TIMEOUT_MS = 10_000;

/** A reason the binary cannot be built, as the one line to print. */
export class CompileError extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "CompileError";
}

/** Where to find what the build needs. */
export interface CompileOptions {
  /** The repository root (holds `main.ts`). */
  readonly root: string;
  /** The binary to write. */
  readonly output: string;
  /** Worker modules to include, relative to `root`. */
  readonly workerModules: readonly string[];
}

/**
 * The `deno compile` arguments for `options`.
 *
 * @throws {CompileError} If a listed Worker module does not exist.
 */
export function compileArgs(options: CompileOptions): string[] {
  const includes = options.workerModules.flatMap((module) => {
    const path = `${options.root}/${module}`;
    if (!isRegularFile(path)) {
      throw new CompileError(`Worker module "${module}" in WORKER_MODULES does not exist`);
    }
    return ["--include", path];
  });
  return [
    "compile",
    ...RUNTIME_PERMISSIONS,
    ...includes,
    "--output",
    options.output,
    `${options.root}/main.ts`,
  ];
}

/** The runtime's download address for this Deno and platform, for messages. */
function denortUrl(): string {
  return `https://dl.deno.land/release/v${Deno.version.deno}/denort-${Deno.build.target}.zip`;
}

/** How to provide the runtime, for the end of messages. */
function howToProvide(): string {
  return `set DENORT_BIN to Deno's denort runtime ${Deno.version.deno} (unzipped from ${denortUrl()})`;
}

/**
 * Checks that `path` can be Deno's `denort` runtime.
 *
 * @throws {CompileError} If it is missing, not a regular executable file, or
 *   the full `deno` binary (which answers `--version`; denort does not).
 */
export async function checkDenortBin(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch {
    throw new CompileError(`DENORT_BIN "${path}" does not exist: ${howToProvide()}`);
  }
  if (!info.isFile) {
    throw new CompileError(`DENORT_BIN "${path}" is not a regular file: ${howToProvide()}`);
  }
  if (info.mode !== null && (info.mode & 0o111) === 0) {
    throw new CompileError(`DENORT_BIN "${path}" is not executable (chmod +x it)`);
  }
  // The full deno prints "deno 2.9.6 (...)"; denort, run without a program
  // attached, fails without printing a version.
  const answer = await askVersion(path);
  if (answer.succeeded && /^deno \d/.test(answer.printed)) {
    throw new CompileError(
      `DENORT_BIN "${path}" is the full deno binary, not its denort runtime ` +
        `(deno compile would build a plain Deno): ${howToProvide()}`,
    );
  }
}

/**
 * Builds the binary.
 *
 * @param options What to build, and where.
 * @param denortBin The `DENORT_BIN` setting, if any.
 * @returns What `deno compile` printed.
 * @throws {CompileError} If it cannot be built.
 */
export async function compile(
  options: CompileOptions,
  denortBin: string | undefined,
): Promise<string> {
  if (denortBin !== undefined) await checkDenortBin(denortBin);
  const result = await new Deno.Command(Deno.execPath(), {
    args: compileArgs(options),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const printed = new TextDecoder().decode(result.stderr);
  if (!result.success) {
    if (denortBin === undefined && printed.includes(denortUrl())) {
      throw new CompileError(
        `deno compile needs Deno's denort runtime, which is not cached and cannot be ` +
          `downloaded here: ${howToProvide()}`,
      );
    }
    throw new CompileError(`deno compile failed: ${compileFailure(stripColor(printed))}`);
  }
  await checkBinary(options.output);
  return printed;
}

/** Runs the built binary's `--version`; a binary that is not kernelsim is removed. */
async function checkBinary(binary: string): Promise<void> {
  const answer = await askVersion(binary);
  if (answer.succeeded && /^kernelsim \d/.test(answer.printed)) return;
  Deno.removeSync(binary);
  throw new CompileError(
    `The built binary does not run as kernelsim (it answered "${answer.printed.trim()}"), ` +
      `so it was removed: ${howToProvide()}`,
  );
}

/**
 * Runs `program --version`: whether it succeeded and what it printed on
 * stdout (nothing if it cannot be run or takes longer than the probe may).
 */
async function askVersion(
  program: string,
): Promise<{ readonly succeeded: boolean; readonly printed: string }> {
  const run = await new Deno.Command(program, {
    args: ["--version"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
  }).output().catch(() => undefined);
  return {
    succeeded: run?.success ?? false,
    printed: run === undefined ? "" : new TextDecoder().decode(run.stdout),
  };
}

/**
 * deno's error in one line: its `error:` line and the innermost of the
 * causes it lists (`1: Invalid object: Not an ELF file`).
 */
function compileFailure(printed: string): string {
  const lines = printed.split("\nStack backtrace:")[0].split("\n");
  const error = lines.find((line) => line.startsWith("error: "))?.slice("error: ".length);
  const causes = lines.flatMap((line) => /^\s+\d+: (.*)$/.exec(line)?.[1] ?? []);
  const cause = causes[causes.length - 1];
  if (error === undefined) return lines.filter((line) => line.trim() !== "").pop() ?? "";
  return cause === undefined ? error : `${error}: ${cause}`;
}

function isRegularFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function stripColor(text: string): string {
  // deno colours its own messages unless NO_COLOR is set.
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

if (import.meta.main) {
  let output: string;
  try {
    const { values } = parseArgs({
      args: Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args,
      options: { output: { type: "string", short: "o" } },
    });
    output = values.output ?? "kernelsim";
  } catch (error) {
    console.error(`compile: ${(error as Error).message.split("\n")[0]}`);
    Deno.exit(2);
  }
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  try {
    const printed = await compile(
      { root, output, workerModules: WORKER_MODULES },
      Deno.env.get("DENORT_BIN"),
    );
    await Deno.stderr.write(new TextEncoder().encode(printed));
  } catch (error) {
    if (!(error instanceof CompileError)) throw error;
    console.error(`compile: ${error.message}`);
    Deno.exit(1);
  }
}
