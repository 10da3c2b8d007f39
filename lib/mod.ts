/**
 * Small libraries with no dependency on the machine or the kernel, usable by
 * every layer (as Linux's `lib/`): the seeded xorshift32 PRNG.
 *
 * @module
 */

export * from "./xorshift32.ts";
