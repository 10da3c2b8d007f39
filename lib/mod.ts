/**
 * Small libraries with no dependency on the machine or the kernel, usable by
 * every layer (as Linux's `lib/`): the seeded xorshift32 PRNG, and `withOverrides`
 * for wrappers that replace some methods of an object.
 *
 * @module
 */

export * from "./xorshift32.ts";
export * from "./with_overrides.ts";
