/**
 * An object with some of its methods replaced, for wrappers that change one
 * behaviour of a part and pass the rest through (a grader watching the
 * frames a heap takes, a test's deliberately broken allocator).
 *
 * @module
 */

/**
 * A proxy for `target` that answers the properties `overrides` has of its
 * own from `overrides`, and everything else from `target`, with `target`'s
 * methods bound to it (so methods that use private fields still work).
 *
 * @param target The object to wrap.
 * @param overrides What to answer instead (typically methods that call `target`'s).
 * @returns An object of `target`'s type.
 *
 * @example
 * ```ts
 * import { withOverrides } from "./with_overrides.ts";
 *
 * class Counter {
 *   #count = 0;
 *   increment(): number {
 *     return ++this.#count;
 *   }
 *   get count(): number {
 *     return this.#count;
 *   }
 * }
 * const counter = new Counter();
 * const twice = withOverrides(counter, {
 *   increment: () => (counter.increment(), counter.increment()),
 * });
 * twice.increment();
 * console.assert(twice.count === 2 && counter.count === 2);
 * ```
 */
export function withOverrides<T extends object>(target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get(object, property) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof T];
      const value = Reflect.get(object, property, object);
      return typeof value === "function" ? value.bind(object) : value;
    },
  });
}
