/**
 * The host side of kernelsim: `runCli` (what `main.ts` runs, callable
 * in-process with any host streams) and its options.
 *
 * @module
 */

export * from "./run.ts";
export * from "./options.ts";
export * from "./exit_status.ts";
export * from "./input_file.ts";
export * from "./output_file.ts";
export type { SyncWriter } from "./byte_writer.ts";
export type { ConsoleStream, ConsoleTerminal } from "./console_session.ts";
export { denoHost } from "./deno_host.ts";
export { runCliUnderWatchdog, type WatchdogHost } from "./watchdog.ts";
