/**
 * Test and benchmark helpers: assertions and the seeded PRNG.
 *
 * @module
 */

export * from "./asserts.ts";
export * from "../lib/mod.ts";
export * from "./collecting_tracer.ts";
