/**
 * Argument parsers of the monitor commands. Each returns the value or throws
 * {@linkcode CommandError} saying what was expected and what was given;
 * virtual addresses that are numbers but not canonical throw the
 * GeneralProtection the processor would raise for them.
 *
 * @module
 */

import { canonicalVirtAddrFromText, type PhysAddr, type VirtAddr } from "../../hal/mod.ts";
import { CommandError } from "./command.ts";

const HEX = /^0x[0-9a-f]+$/;
const DECIMAL = /^[0-9]+$/;

/**
 * An integer from `min` to `max`, written in decimal or `0x` hex (`_`
 * separators allowed).
 *
 * @param text The argument.
 * @param what What it stands for, e.g. `a frame count`.
 * @throws {CommandError} `expected a frame count from 1 to 1048576, got "x"`.
 */
export function parseInteger(text: string, what: string, min: number, max: number): number {
  const clean = text.replaceAll("_", "").toLowerCase();
  const value = HEX.test(clean)
    ? parseInt(clean.slice(2), 16)
    : DECIMAL.test(clean)
    ? Number(clean)
    : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new CommandError(`expected ${what} from ${min} to ${max}, got "${text}"`);
  }
  return value;
}

/**
 * A physical address (decimal or `0x` hex, below 2^52).
 *
 * @throws {CommandError} If it is not one.
 */
export function parsePhysAddr(text: string): PhysAddr {
  const clean = text.replaceAll("_", "").toLowerCase();
  const value = HEX.test(clean)
    ? parseInt(clean.slice(2), 16)
    : DECIMAL.test(clean)
    ? Number(clean)
    : NaN;
  if (!Number.isSafeInteger(value) || value >= 2 ** 52) {
    throw new CommandError(
      `expected a physical address (0x... hex or decimal, below 2^52), got "${text}"`,
    );
  }
  return value as PhysAddr;
}

/**
 * A virtual address in canonical 64-bit form: `0x` hex (up to 16 digits) or
 * decimal (up to 2^64 - 1).
 *
 * @throws {CommandError} If it is not a 64-bit number.
 * @throws {GeneralProtection} If it is not canonical, as the processor would.
 */
export function parseVirtAddr(text: string): VirtAddr {
  const clean = text.replaceAll("_", "").toLowerCase();
  let digits: string | undefined;
  if (/^0x[0-9a-f]{1,16}$/.test(clean)) {
    digits = clean.slice(2);
  } else if (DECIMAL.test(clean) && clean.length <= 20) {
    // User input, not a hot path: BigInt makes every 64-bit value exact.
    const value = BigInt(clean);
    if (value < 2n ** 64n) digits = value.toString(16);
  }
  if (digits === undefined) {
    throw new CommandError(
      `expected a virtual address (0x... up to 16 hex digits, or decimal), got "${text}"`,
    );
  }
  return canonicalVirtAddrFromText(digits);
}

/** A 64-bit value as two 32-bit halves (no BigInt past parsing). */
export interface U64 {
  /** Bits 63:32. */
  readonly high32: number;
  /** Bits 31:0. */
  readonly low32: number;
}

/**
 * A 64-bit unsigned value: `0x` hex (up to 16 digits) or decimal (up to
 * 2^64 - 1).
 *
 * @throws {CommandError} If it is not one.
 */
export function parseU64(text: string, what: string): U64 {
  const clean = text.replaceAll("_", "").toLowerCase();
  // User input, not a hot path: BigInt makes every 64-bit value exact.
  const value = /^0x[0-9a-f]{1,16}$/.test(clean) || (DECIMAL.test(clean) && clean.length <= 20)
    ? BigInt(clean)
    : -1n;
  if (value < 0n || value >= 2n ** 64n) {
    throw new CommandError(`expected ${what} from 0 to 0xffffffffffffffff, got "${text}"`);
  }
  return { high32: Number(value >> 32n), low32: Number(value & 0xffff_ffffn) };
}

/** Page permissions a `map` command can ask for. */
export interface FlagLetters {
  /** `w`: writable. */
  readonly writable: boolean;
  /** `x`: executable (otherwise no-execute). */
  readonly executable: boolean;
  /** `u`: user accessible. */
  readonly user: boolean;
  /** `g`: global. */
  readonly global: boolean;
}

/**
 * Page permissions as letters: `r` (read, always implied), `w`, `x`, `u`,
 * `g`, e.g. `rw` or `rwxu`.
 *
 * @throws {CommandError} For any other letter.
 */
export function parseFlagLetters(text: string): FlagLetters {
  const clean = text.toLowerCase();
  if (!/^[rwxug]+$/.test(clean)) {
    throw new CommandError(
      `expected flags made of r, w, x, u, g (e.g. rw or rwx), got "${text}"`,
    );
  }
  return {
    writable: clean.includes("w"),
    executable: clean.includes("x"),
    user: clean.includes("u"),
    global: clean.includes("g"),
  };
}
