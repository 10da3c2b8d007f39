/**
 * kernelsim: boots the simulated PC and its kernel. See `--help`.
 *
 * @module
 */

import { runCli } from "./cli/mod.ts";

if (import.meta.main) {
  const status = await runCli(Deno.args, {
    stdout: Deno.stdout,
    stderr: Deno.stderr,
    stdin: Deno.stdin,
    readFile: (path) => Deno.readFileSync(path),
    createFile: (path) => Deno.openSync(path, { write: true, create: true, truncate: true }),
  });
  Deno.exit(status);
}
