import { assertEquals } from "../../testing/mod.ts";
import { printable } from "./printable.ts";

Deno.test("printable() escapes every control character so a boot string prints as one inert line", () => {
  assertEquals(printable("console=ttyS0 quiet"), "console=ttyS0 quiet");
  assertEquals(printable("\x1b[2J\x1b]0;pwned\x07"), "\\x1b[2J\\x1b]0;pwned\\x07");
  assertEquals(printable("a\tb\nc\rd"), "a\\tb\\nc\\rd");
  assertEquals(printable("\x00\x7f\u0085\u009b"), "\\x00\\x7f\\x85\\x9b"); // C1 CSI too
  assertEquals(printable("line\u2028sep \u202eevil"), "line\\u2028sep \\u202eevil");
  assertEquals(printable('say "hi" \\ bye'), 'say \\"hi\\" \\\\ bye');
  assertEquals(printable("GRUB 2.06 – é ✓"), "GRUB 2.06 – é ✓");
});

Deno.test("printable() output never holds a control character, whatever the input", () => {
  for (let code = 0; code < 0x3000; code++) {
    const escaped = printable(`x${String.fromCharCode(code)}y`);
    // deno-lint-ignore no-control-regex -- looking for control characters is the point
    assertEquals(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/.test(escaped), false);
  }
});
