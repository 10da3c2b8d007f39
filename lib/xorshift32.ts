/**
 * The xorshift32 PRNG defined in docs/benchmarks.md, for seeded, deterministic
 * tests, self-tests, graders and benchmark workloads.
 *
 * @module
 */

/** A seeded xorshift32 generator returning unsigned 32-bit integers. */
export class Xorshift32 {
  #state: number;

  /** Creates a generator; `seed` must be non-zero. */
  constructor(seed: number) {
    if ((seed >>> 0) === 0) throw new RangeError("Xorshift32 seed must be non-zero");
    this.#state = seed >>> 0;
  }

  /** The next unsigned 32-bit value. */
  next(): number {
    let x = this.#state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x >>> 0;
    return this.#state;
  }

  /** A value in [0, bound) (modulo, as the benchmark workloads define it). */
  below(bound: number): number {
    return this.next() % bound;
  }
}

/** FNV-1a style checksum step used by the benchmark workloads. */
export function foldChecksum(hash: number, value: number): number {
  return Math.imul(hash ^ value, 16777619) >>> 0;
}

/** The checksum's starting value. */
export const CHECKSUM_SEED = 2166136261;
