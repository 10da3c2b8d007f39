/**
 * kernelsim: a simulated PC and a kernel that boots on it.
 *
 * @module
 */

export * from "./hal/mod.ts";
export * from "./devices/mod.ts";
export * from "./kernel/mod.ts";
export * from "./sdk/mod.ts";
