/**
 * Counts in words for what users read (the boot log, the monitor, reports):
 * `1 frame`, `2 frames`, `1 entry`, `3 entries`.
 *
 * @module
 */

/**
 * A count and a noun, the noun plural unless the count is 1.
 *
 * @param count The count.
 * @param noun The singular noun: `frame`.
 * @param pluralNoun The plural, when it is not the noun plus `s`: `entries`.
 * @returns `1 frame`, `0 frames`, `2 frames`.
 * @example
 * ```ts
 * import { plural } from "./plural.ts";
 * plural(1, "region"); // "1 region"
 * plural(3, "entry", "entries"); // "3 entries"
 * ```
 */
export function plural(count: number, noun: string, pluralNoun: string = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : pluralNoun}`;
}
