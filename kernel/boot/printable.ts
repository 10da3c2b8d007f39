/**
 * Strings from the boot information (command line, boot loader name, module
 * strings) are whatever bytes the loader passed: an escape sequence in them
 * would drive the user's terminal when the boot log prints it. The kernel
 * prints them through {@linkcode printable}, which escapes every control
 * character; reports keep the exact strings (JSON escapes them itself).
 *
 * @module
 */

/** Characters escaped by {@linkcode printable}: C0, DEL, C1, line and paragraph separators, bidi controls. */
const UNPRINTABLE =
  // deno-lint-ignore no-control-regex -- matching control characters is the point
  /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\\"]/g;

const SHORT_ESCAPES: Record<string, string> = {
  "\t": "\\t",
  "\n": "\\n",
  "\r": "\\r",
  "\\": "\\\\",
  '"': '\\"',
};

/**
 * The string with every control character escaped, so it prints as one
 * inert line: tab, newline and carriage return as `\t`, `\n`, `\r`; other C0
 * and C1 controls and DEL as `\xNN`; the Unicode line and paragraph
 * separators and the bidirectional formatting characters as `\uNNNN`; and
 * backslash and double quote as `\\` and `\"`, so the result reads back
 * unambiguously inside quotes.
 *
 * @param text A string from the boot information.
 * @returns The same text, safe to print on a terminal.
 * @example
 * ```ts
 * import { printable } from "./printable.ts";
 * console.assert(printable("a\x1b[2Jb") === "a\\x1b[2Jb");
 * console.assert(printable('say "hi"') === 'say \\"hi\\"');
 * ```
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (char) => {
    const short = SHORT_ESCAPES[char];
    if (short !== undefined) return short;
    const code = char.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}
