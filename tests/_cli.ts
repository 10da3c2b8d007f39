/**
 * Runs `main.ts` as a subprocess, as a user would, for end-to-end tests.
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

/** Runs `deno run main.ts ...args` with only read permission, optional stdin. */
export async function runMain(args: readonly string[], stdin?: Uint8Array): Promise<CliRun> {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-read", "--allow-write", MAIN, ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
  const child = command.spawn();
  // Write stdin while the output is read: a large input would otherwise
  // fill both pipes and deadlock.
  const writing = stdin === undefined ? Promise.resolve() : writeAll(child.stdin, stdin);
  const [output] = await Promise.all([child.output(), writing]);
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
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
