/**
 * Runs `main.ts` (or another program) as a subprocess, as a user would, for
 * end-to-end tests.
 *
 * @module
 */

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** What a run of the CLI printed and how it exited. */
export interface CliRun {
  /** Exit status. */
  readonly code: number;
  /** Standard output as text. */
  readonly stdout: string;
  /** Standard error as text. */
  readonly stderr: string;
}

/** How long a run may take before it is killed, so a regression that never ends fails a test. */
const RUN_LIMIT_MS = 60_000;

/** How to run a program: where, with what input and environment. */
export interface RunOptions {
  /** The working directory (default: this process's). */
  readonly cwd?: string;
  /** Bytes for standard input (default: none, stdin is /dev/null). */
  readonly stdin?: Uint8Array;
  /** Environment variables to set (default: NO_COLOR=1, so output can be matched as text). */
  readonly env?: Record<string, string>;
}

/**
 * Runs `program args...` and collects what it printed; a run that takes
 * longer than a minute is killed (status 137), so a regression that never
 * ends fails its test instead of hanging the suite.
 */
export async function runCommand(
  program: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<CliRun> {
  const { stdin } = options;
  const child = new Deno.Command(program, {
    args: [...args],
    cwd: options.cwd,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: options.env ?? { NO_COLOR: "1" },
  }).spawn();
  // Write stdin while the output is read: a large input would otherwise
  // fill both pipes and deadlock.
  const writing = stdin === undefined ? Promise.resolve() : writeAll(child.stdin, stdin);
  const output = await outputWithin(child, writing);
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Runs `deno run main.ts ...args` with read and write permission, optional stdin. */
export function runMain(args: readonly string[], stdin?: Uint8Array): Promise<CliRun> {
  return runCommand(
    Deno.execPath(),
    ["run", "--quiet", "--allow-read", "--allow-write", MAIN, ...args],
    { stdin },
  );
}

/**
 * Runs `main.ts ...args` through `sh -c` with `redirections` appended to its
 * command (e.g. `> /dev/full`, `2>&1`, `< /some/dir`), as a user's shell
 * would run it. The arguments are passed as positional parameters, never
 * parsed by the shell.
 */
export function runMainInShell(
  args: readonly string[],
  redirections: string,
  stdin?: Uint8Array,
): Promise<CliRun> {
  const script = 'deno="$1"; main="$2"; shift 2; ' +
    `exec "$deno" run --quiet --allow-read --allow-write "$main" "$@" ${redirections}`;
  return runCommand("sh", ["-c", script, "sh", Deno.execPath(), MAIN, ...args], { stdin });
}

/** The child's output; a child still running after RUN_LIMIT_MS is killed (status 137). */
async function outputWithin(
  child: Deno.ChildProcess,
  writing: Promise<void>,
): Promise<Deno.CommandOutput> {
  const timer = setTimeout(() => child.kill("SIGKILL"), RUN_LIMIT_MS);
  try {
    const [output] = await Promise.all([child.output(), writing]);
    return output;
  } finally {
    clearTimeout(timer);
  }
}

async function writeAll(stream: WritableStream<Uint8Array>, bytes: Uint8Array): Promise<void> {
  const writer = stream.getWriter();
  try {
    await writer.write(bytes);
    await writer.close();
  } catch (error) {
    // The child may exit (halt, panic) before reading all of its input.
    if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
  }
}

/** Asserts nothing in `text` looks like a JavaScript stack trace. */
export function hasStackTrace(text: string): boolean {
  return /^\s+at .+:\d+:\d+\)?$/m.test(text) || text.includes("error: Uncaught");
}
