import { assertEquals } from "../../testing/mod.ts";
import { LineEditor, type LineEvent } from "./line_editor.ts";

interface Typed {
  readonly lines: string[];
  readonly events: LineEvent[];
  readonly echo: string;
  readonly editor: LineEditor;
}

/** Types `text` into a fresh editor with a `capacity`-byte buffer. */
function type(text: string, capacity = 64): Typed {
  const echoed: number[] = [];
  const editor = new LineEditor(
    new Uint32Array(4),
    new Uint8Array(capacity),
    (byte) => echoed.push(byte),
  );
  const lines: string[] = [];
  const events: LineEvent[] = [];
  for (const byte of new TextEncoder().encode(text)) {
    const event = editor.feed(byte);
    if (event !== "pending") events.push(event);
    if (event === "line") lines.push(new TextDecoder().decode(editor.line()));
  }
  return { lines, events, echo: new TextDecoder().decode(new Uint8Array(echoed)), editor };
}

Deno.test("LineEditor.feed() echoes printable bytes and ends a line at CR, LF or CR LF", () => {
  const typed = type("help\rmeminfo\nalloc 1\r\npages\r");
  assertEquals(typed.lines, ["help", "meminfo", "alloc 1", "pages"]);
  assertEquals(typed.echo, "help\nmeminfo\nalloc 1\npages\n");
});

Deno.test("LineEditor.feed() treats LF CR LF as two lines but CR LF as one", () => {
  assertEquals(type("a\n\r\nb\r\n").lines, ["a", "", "b"]);
});

Deno.test("LineEditor.feed() erases with backspace or DEL and echoes \\b \\b", () => {
  const typed = type("hepl\x7f\x7flp\r");
  assertEquals(typed.lines, ["help"]);
  assertEquals(typed.echo, "hepl\b \b\b \blp\n");
  assertEquals(type("ab\x08c\r").lines, ["ac"]);
});

Deno.test("LineEditor.feed() ignores backspace at the start of a line", () => {
  const typed = type("\x7f\x08\x7fok\r");
  assertEquals(typed.lines, ["ok"]);
  assertEquals(typed.echo, "ok\n");
});

Deno.test("LineEditor.feed() erases a whole UTF-8 character with one backspace", () => {
  const typed = type("echo é\x7fe\r");
  assertEquals(typed.lines, ["echo e"]);
  assertEquals(typed.echo, "echo é\b \be\n");
});

Deno.test("LineEditor.feed() erases the line with Ctrl-U and discards it with Ctrl-C", () => {
  const erased = type("wrong\x15right\r");
  assertEquals(erased.lines, ["right"]);
  assertEquals(erased.echo, "wrong" + "\b \b".repeat(5) + "right\n");
  const cancelled = type("halt\x03help\r");
  assertEquals(cancelled.events, ["cancelled", "line"]);
  assertEquals(cancelled.lines, ["help"]);
  assertEquals(cancelled.echo, "halt^C\nhelp\n");
});

Deno.test("LineEditor.feed() ignores escape sequences and other control bytes", () => {
  // Up arrow (CSI A), F1 (SS3 P), a CSI with parameters, tab, Ctrl-D, NUL, bell.
  const typed = type("\x1b[Ahe\x1bOPl\x1b[1;5Dp\t\x04\x00\x07\r");
  assertEquals(typed.lines, ["help"]);
  assertEquals(typed.echo, "help\n");
});

Deno.test("LineEditor.feed() lets a control byte end an unfinished escape sequence", () => {
  assertEquals(type("ab\x1b[\rcd\r").lines, ["ab", "cd"]);
});

Deno.test("LineEditor.feed() keeps the first bytes of a long line, counts the rest, rings once", () => {
  const typed = type("abcdefghij\r", 4);
  assertEquals(typed.lines, ["abcd"]);
  assertEquals(typed.editor.overflowBytes, 6);
  assertEquals(typed.echo, "abcd\x07\n");
  // The next line starts clean.
  const echoed: number[] = [];
  const editor = new LineEditor(new Uint32Array(4), new Uint8Array(4), (b) => echoed.push(b));
  for (const byte of new TextEncoder().encode("abcdef\rxy\r")) editor.feed(byte);
  assertEquals(new TextDecoder().decode(editor.line()), "xy");
  assertEquals(editor.overflowBytes, 0);
});

Deno.test("LineEditor.feed() erases unstored bytes of a long line first, without echo", () => {
  const typed = type("abcdef\x7f\x7f\x7fX\r", 4);
  // f and e were never stored; the third backspace erases d.
  assertEquals(typed.lines, ["abcX"]);
  assertEquals(typed.editor.overflowBytes, 0);
  assertEquals(typed.echo, "abcd\x07\b \bX\n");
});

Deno.test("LineEditor keeps its state in the memory it was given", () => {
  const state = new Uint32Array(4);
  const buffer = new Uint8Array(16);
  const editor = new LineEditor(state, buffer, () => {});
  for (const byte of new TextEncoder().encode("hi")) editor.feed(byte);
  assertEquals(state[0], 2);
  assertEquals(new TextDecoder().decode(buffer.subarray(0, 2)), "hi");
  // A corrupt length (a stray write) is clamped, not trusted.
  state[0] = 0xffff_ffff;
  editor.feed(0x15); // Ctrl-U
  assertEquals(editor.lengthBytes, 0);
});
