/**
 * The floor every benchmark figure is compared with: a loop that draws an
 * index with xorshift32 and adds that element of a 4 KiB `Uint32Array` (L1
 * resident) to a local sum. It is the cost of one step of a loop doing one
 * cached typed-array load, measured in the same process as the figures, so
 * ratios to it hold on any machine (docs/benchmarks.md).
 *
 * Every measured loop, here and in the bench files, copies the constants it
 * imports into locals before it starts: V8 reads an imported binding from its
 * module cell, with a check, at every use, which would be timed as part of
 * the loop.
 *
 * @module
 */

import { CHECKSUM_SEED, Xorshift32 } from "../testing/mod.ts";
import { FIGURES, LOOP_OPS } from "./_figures.ts";

/**
 * The seed every per-operation loop restarts from, as a signed 32-bit value
 * (the same bits as 0x9E3779B9). A loop variable that starts above 2^31 is a
 * double to V8, which would then convert the PRNG state between double and
 * integer twice per step and measure that instead of the work.
 */
export const LOOP_SEED = 0x9E3779B9 | 0;
/** Elements of the floor's table: 4 KiB of 32-bit words. */
export const FLOOR_TABLE_WORDS = 1024;

/**
 * Registers the floor bench in the calling bench file, so each file measures
 * the floor beside its own figures.
 */
export function addFloorBench(): void {
  const table = new Uint32Array(FLOOR_TABLE_WORDS);
  const fill = new Xorshift32(CHECKSUM_SEED);
  for (let i = 0; i < table.length; i++) table[i] = fill.next() >>> 1;
  // The expected sum, from the reference PRNG rather than the loop under test.
  const rng = new Xorshift32(LOOP_SEED);
  let expected = 0;
  for (let op = 0; op < LOOP_OPS; op++) expected += table[rng.next() & (FLOOR_TABLE_WORDS - 1)];

  Deno.bench({
    name: FIGURES.floor.name,
    group: "floor",
    fn() {
      const ops = LOOP_OPS; // a local: see the module comment
      let x = LOOP_SEED;
      let sum = 0;
      for (let op = 0; op < ops; op++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        sum += table[x & (FLOOR_TABLE_WORDS - 1)];
      }
      if (sum !== expected) throw new Error(`Floor: sum ${sum}, expected ${expected}`);
    },
  });
}
