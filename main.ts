/**
 * kernelsim: boots the simulated PC and its kernel. See `--help`.
 *
 * @module
 */

import { runCli } from "./cli/run.ts";

if (import.meta.main) {
  Deno.exit(runCli(Deno.args, {
    stdout: Deno.stdout,
    stderr: Deno.stderr,
    readFile: (path) => Deno.readFileSync(path),
  }));
}
