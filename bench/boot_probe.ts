/**
 * Boots kernelsim exactly as `deno task boot ARGS` does (same CLI code
 * path), then prints one JSON line: the CLI's exit status and the process's
 * peak resident memory (`getrusage` maxrss, through `node:process`). The
 * boot's own output is dropped. bench/summary.ts runs it as a child process
 * and times the whole process from outside.
 *
 * Run: `deno run bench/boot_probe.ts --memory 64G --no-console`
 *
 * @module
 */

import process from "node:process";
import { runCli } from "../cli/mod.ts";

/** A host stream that drops everything written to it. */
const discard = { writeSync: (bytes: Uint8Array) => bytes.length };

const status = await runCli(Deno.args, {
  stdout: discard,
  stderr: Deno.stderr,
  stdin: Deno.stdin,
  readFile: (path) => Deno.readFileSync(path),
  createFile: (path) => Deno.openSync(path, { write: true, create: true, truncate: true }),
});
// maxRSS is in KiB, as getrusage(2) reports it on Linux.
console.log(JSON.stringify({ status, peakRssBytes: process.resourceUsage().maxRSS * 1024 }));
