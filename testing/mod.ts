/**
 * Test and benchmark helpers: assertions and the seeded PRNG.
 *
 * @module
 */

export * from "./asserts.ts";
export * from "./xorshift32.ts";
