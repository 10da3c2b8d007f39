/**
 * Calling a student's part from a check: counting each call against the
 * check's step budget, and telling a contract error (a `KernelError` with a
 * code, a `RangeError` for a bad argument) from a returned value, so checks
 * can say "expected DoubleFree, but free(0x123) returned".
 *
 * @module
 */

import { formatVirtAddr, hex, type VirtAddr } from "../hal/mod.ts";
import { KernelError, type KernelErrorCode, UserCodeError } from "../sdk/mod.ts";
import type { CheckContext } from "./check.ts";
import { fail } from "./check.ts";

/** What a call did: returned a value, or threw a contract error. */
export type Outcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: KernelError };

/**
 * Wraps a part so that every method call counts one step of the check's
 * budget. Property reads are not counted.
 *
 * @param part The student's part (or the stock one).
 * @param context The running check.
 * @returns A proxy standing for `part`.
 */
export function counted<T extends object>(part: T, context: CheckContext): T {
  const wrapped = new Map<PropertyKey, { original: unknown; counted: unknown }>();
  return new Proxy(part, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      const known = wrapped.get(property);
      if (known !== undefined && known.original === value) return known.counted;
      const method = value as (...args: unknown[]) => unknown;
      const countedMethod = (...args: unknown[]) => {
        context.step();
        return method.apply(target, args);
      };
      wrapped.set(property, { original: value, counted: countedMethod });
      return countedMethod;
    },
  });
}

/**
 * Calls `body`, returning its value or the `KernelError` it threw. Anything
 * else it throws (a `UserCodeError`, a hardware fault) goes on up and fails
 * the check.
 *
 * @param body The call.
 * @returns The outcome.
 */
export function attempt<T>(body: () => T): Outcome<T> {
  try {
    return { ok: true, value: body() };
  } catch (error) {
    if (error instanceof KernelError) return { ok: false, error };
    throw error;
  }
}

/**
 * Expects `body` to succeed.
 *
 * @param call The call in words, e.g. `allocate()`.
 * @param body The call.
 * @returns What it returned.
 * @throws {CheckFailure} If it threw a `KernelError`.
 */
export function expectSuccess<T>(call: string, body: () => T): T {
  const outcome = attempt(body);
  if (!outcome.ok) fail(`${call} to succeed`, `it threw ${describeError(outcome.error)}`);
  return outcome.value;
}

/**
 * Expects `body` to throw a `KernelError` with one of `codes`.
 *
 * @param call The call in words, e.g. `free(0x123)`.
 * @param codes The acceptable codes (the first is named in the message).
 * @param body The call.
 * @param why Why it must fail, e.g. `the frame is free`.
 * @throws {CheckFailure} If it returned or threw another code.
 */
export function expectKernelError(
  call: string,
  codes: KernelErrorCode | readonly KernelErrorCode[],
  body: () => unknown,
  why: string,
): void {
  const accepted = typeof codes === "string" ? [codes] : codes;
  const outcome = attempt(body);
  const expected = `${call} to throw KernelError ${accepted.join(" or ")} (${why})`;
  if (outcome.ok) fail(expected, `it returned ${describeValue(outcome.value)}`);
  if (!accepted.includes(outcome.error.code)) {
    fail(expected, `it threw ${describeError(outcome.error)}`);
  }
}

/**
 * Expects `body` to throw a `RangeError` (a bad argument). Through the SDK's
 * guard a `RangeError` arrives as a `UserCodeError` whose cause is one.
 *
 * @param call The call in words.
 * @param body The call.
 * @param why Why the argument is bad.
 * @throws {CheckFailure} If it returned or threw something else.
 */
export function expectRangeError(call: string, body: () => unknown, why: string): void {
  const expected = `${call} to throw RangeError (${why})`;
  let value: unknown;
  try {
    value = body();
  } catch (error) {
    const cause = error instanceof UserCodeError ? error.cause : error;
    if (cause instanceof RangeError) return;
    if (error instanceof UserCodeError) {
      fail(expected, `${error.call} threw ${describeError(cause)}`);
    }
    fail(expected, `it threw ${describeError(error)}`);
  }
  fail(expected, `it returned ${describeValue(value)}`);
}

/**
 * An error in a few words: `KernelError OutOfMemory: Cannot allocate ...`.
 *
 * @param error What was thrown.
 * @returns One line.
 */
export function describeError(error: unknown): string {
  if (error instanceof KernelError) return `KernelError ${error.code}: ${firstLine(error.message)}`;
  if (error instanceof Error) return `${error.name}: ${firstLine(error.message)}`;
  return `${typeof error} ${String(error)}`;
}

/**
 * A returned value in a few words: numbers in hex.
 *
 * @param value What a call returned.
 * @returns E.g. `0x1f3` or `nothing`.
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "number") {
    return Number.isSafeInteger(value) && value >= 0 ? hex(value) : String(value);
  }
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "object" && value !== null) return "an object";
  return String(value);
}

/**
 * A virtual address in a few words: its canonical form below 2^48 (the
 * higher half as `0xffff8...`), else as {@linkcode describeValue} says.
 *
 * @param va An address, or what a call returned as one.
 * @returns E.g. `0xffff800000123000`.
 */
export function describeVirtAddr(va: number): string {
  return Number.isSafeInteger(va) && va >= 0 && va < 2 ** 48
    ? formatVirtAddr(va as VirtAddr)
    : describeValue(va);
}

function firstLine(text: string): string {
  return text.split("\n")[0];
}
