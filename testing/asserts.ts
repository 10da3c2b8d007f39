/**
 * Assertions for tests, named as in `@std/assert` but built on Deno's bundled
 * `node:assert/strict` (JSR is unreachable from our machines). Switching to
 * `@std/assert` is a change to this one file.
 *
 * @module
 */

import nodeAssert from "node:assert/strict";

/** Asserts that `value` is truthy. */
export function assert(value: unknown, message?: string): asserts value {
  nodeAssert.ok(value, message);
}

/** Asserts deep strict equality. */
export function assertEquals<T>(
  actual: unknown,
  expected: T,
  message?: string,
): asserts actual is T {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

/** Asserts deep strict inequality. */
export function assertNotEquals(actual: unknown, expected: unknown, message?: string): void {
  nodeAssert.notDeepStrictEqual(actual, expected, message);
}

/** Asserts that `text` contains `expected`. */
export function assertStringIncludes(text: string, expected: string, message?: string): void {
  nodeAssert.ok(
    text.includes(expected),
    message ?? `Expected text to include ${JSON.stringify(expected)}, got ${JSON.stringify(text)}`,
  );
}

/** Asserts that `text` matches `pattern`. */
export function assertMatch(text: string, pattern: RegExp, message?: string): void {
  nodeAssert.match(text, pattern, message);
}

/**
 * Asserts that `fn` throws an instance of `ErrorClass` (and, if given, that the
 * message includes `messageIncludes`); returns the error for further checks.
 */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  ErrorClass: abstract new (...args: any[]) => E,
  messageIncludes?: string,
): E {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof ErrorClass)) {
      throw new nodeAssert.AssertionError({
        message: `Expected ${ErrorClass.name} to be thrown, got ${String(error)}`,
      });
    }
    if (messageIncludes !== undefined && !error.message.includes(messageIncludes)) {
      throw new nodeAssert.AssertionError({
        message: `Expected message to include "${messageIncludes}", got "${error.message}"`,
      });
    }
    return error;
  }
  throw new nodeAssert.AssertionError({ message: `Expected ${ErrorClass.name} to be thrown` });
}
