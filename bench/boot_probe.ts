/**
 * Boots kernelsim exactly as `deno task boot ARGS` does (same CLI code
 * path), then prints one JSON line: the CLI's exit status and the process's
 * peak resident memory, VmHWM from `/proc/self/status` (Linux's own account,
 * as `getrusage` maxrss; reading it needs `--allow-all`). Not `getrusage`
 * through `node:process`: importing it makes Deno start its Node.js
 * compatibility layer, which the CLI does not load, and the probe would
 * measure that too. The boot's own output is dropped. bench/summary.ts runs
 * it as a child process and times the whole process from outside.
 *
 * Run: `deno run --allow-all bench/boot_probe.ts --memory 64G --no-console`
 *
 * @module
 */

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
// "VmHWM:   51234 kB": the peak resident set size (proc(5)).
const peakKib = /^VmHWM:\s+(\d+) kB$/m.exec(Deno.readTextFileSync("/proc/self/status"));
if (peakKib === null) throw new Error("No VmHWM line in /proc/self/status");
console.log(JSON.stringify({ status, peakRssBytes: Number(peakKib[1]) * 1024 }));
