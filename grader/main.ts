/**
 * `deno task grade`: grades a kernel part against its lab's conformance
 * suite. See `--help` and docs/grader.md.
 *
 * The checks run in a Worker (`grade_worker.ts`) watched from this thread;
 * the process exits when the grade is done, whatever a stopped Worker was
 * still doing.
 *
 * @module
 */

import { runGradeCli } from "./grade_cli.ts";

if (import.meta.main) {
  const status = await runGradeCli(Deno.args, {
    stdout: Deno.stdout,
    stderr: Deno.stderr,
    writeTextFile: (path, text) => Deno.writeTextFileSync(path, text),
    randomSeed: () => crypto.getRandomValues(new Uint32Array(1))[0],
  });
  Deno.exit(status);
}
