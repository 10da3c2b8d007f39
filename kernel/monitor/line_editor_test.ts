import { assert, assertEquals, Xorshift32 } from "../../testing/mod.ts";
import { type Completer, LineEditor, type LineEvent } from "./line_editor.ts";
import { LineHistory } from "./line_history.ts";

interface Typed {
  readonly lines: string[];
  readonly events: LineEvent[];
  readonly echo: string;
  readonly editor: LineEditor;
}

/** Types `text` into a fresh editor with a `capacity`-byte buffer. */
function type(
  text: string,
  capacity = 64,
  options: { history?: LineHistory; complete?: Completer } = {},
): Typed {
  const echoed: number[] = [];
  const editor = new LineEditor(
    new Uint32Array(8),
    new Uint8Array(capacity),
    (byte) => echoed.push(byte),
    { prompt: "> ", ...options },
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

Deno.test("LineEditor.feed() ignores unknown escape sequences and other control bytes", () => {
  // Up arrow with no history, F1 (SS3 P), Ctrl-Left (CSI 1;5D), F5 (CSI 15~),
  // Ctrl-D, NUL, bell.
  const typed = type("\x1b[Ahe\x1bOPl\x1b[1;5Dp\x1b[15~\x04\x00\x07\r");
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
  const editor = new LineEditor(new Uint32Array(8), new Uint8Array(4), (b) => echoed.push(b));
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
  const state = new Uint32Array(8);
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

Deno.test("LineEditor moves the cursor with Left, Right, Home and End and edits in the middle", () => {
  // "cho hi", Home, "e", End, "!": echo "e", then the rest reprinted and stepped back over.
  const typed = type("cho hi\x1b[He\x1b[F!\r");
  assertEquals(typed.lines, ["echo hi!"]);
  assertEquals(typed.echo, "cho hi" + "\b".repeat(6) + "echo hi" + "\b".repeat(6) + "cho hi!\n");
  // Left twice, insert; Right over "l"; the SS3 and VT220 forms and the Ctrl keys agree.
  assertEquals(type("wrd\x1b[D\x1b[Do\r").lines, ["word"]);
  assertEquals(type("ab\x1bOD\x1bOH>\x1bOF<\r").lines, [">ab<"]);
  assertEquals(type("ab\x1b[1~>\x1b[4~<\x1b[7~[\x1b[8~]\r").lines, ["[>ab<]"]);
  assertEquals(type("bc\x01a\x05d\x02\x02\x06X\r").lines, ["abcXd"]);
  // Cursor keys stop at the ends of the line and never leave it.
  assertEquals(type("\x1b[Dab\x1b[C\x1b[C\x1b[D\x1b[D\x1b[D\x1b[Dx\r").lines, ["xab"]);
});

Deno.test("LineEditor erases before and under the cursor, and to the end with Ctrl-K", () => {
  // Backspace in the middle: step back, reprint the rest, blank the last column.
  const back = type("abcd\x1b[D\x1b[D\x7f\r");
  assertEquals(back.lines, ["acd"]);
  assertEquals(back.echo, "abcd\b\b" + "\bcd \b\b\b" + "cd\n");
  const del = type("abcd\x1b[H\x1b[3~\r");
  assertEquals(del.lines, ["bcd"]);
  assertEquals(type("abcd\x1b[D\x1b[D\x0b!\r").lines, ["ab!"]);
  // A whole UTF-8 character at a time, in the middle too.
  assertEquals(type("aéb\x1b[D\x7f\r").lines, ["ab"]);
  assertEquals(type("ab\x1b[Dé\r").lines, ["aéb"]);
  assertEquals(type("aéb\x1b[D\x1b[D\x1b[3~\r").lines, ["ab"]);
});

Deno.test("LineEditor recalls earlier lines with Up and Down", () => {
  const history = new LineHistory(new Uint32Array(4), new Uint8Array(256));
  const typed = type("alloc 1\rmeminfo\r\x1b[A\x1b[A\r\x1b[A\x1b[A\x1b[A\x1b[B!\r", 64, {
    history,
  });
  // Up Up recalls "alloc 1"; then Up Up Up Down lands on "meminfo", to which "!" is added.
  assertEquals(typed.lines, ["alloc 1", "meminfo", "alloc 1", "meminfo!"]);
  // Up past the oldest rings; Down past the newest gives an empty line.
  const edges = type("a\r\x1b[A\x1b[A\x1b[B\x1b[Bb\r", 64, {
    history: new LineHistory(new Uint32Array(4), new Uint8Array(256)),
  });
  assertEquals(edges.lines, ["a", "b"]);
  assertEquals(edges.echo, "a\n" + "a\x07" + "\b \b" + "\x07" + "b\n");
  // Ctrl-P and Ctrl-N are Up and Down.
  assertEquals(
    type("x\r\x10\r", 64, { history: new LineHistory(new Uint32Array(4), new Uint8Array(64)) })
      .lines,
    [
      "x",
      "x",
    ],
  );
});

Deno.test("LineEditor completes the word before the cursor with Tab", () => {
  const names = ["help", "halt", "heap", "meminfo"];
  const complete: Completer = (before) => before.includes(" ") ? [] : names;
  // One match: completed with a space.
  assertEquals(type("me\tx\r", 64, { complete }).lines, ["meminfo x"]);
  // Several: the common prefix, then a list and the line reprinted.
  const listed = type("h\tea\t\r", 64, { complete });
  assertEquals(listed.lines, ["heap "]);
  assertEquals(listed.echo, "h" + "\nhelp  halt  heap\n> h" + "ea" + "p " + "\n");
  assertEquals(type("he\tl\t\r", 64, { complete }).lines, ["help "]);
  // No match rings the bell.
  assertEquals(type("zz\t\r", 64, { complete }).echo, "zz\x07\n");
  assertEquals(type("q\t\r").echo, "q\x07\n", "no completer: the bell");
});

Deno.test("LineEditor reprints the prompt and the line on Ctrl-R, cursor in place", () => {
  const typed = type("abc\x1b[D\x12X\r");
  assertEquals(typed.lines, ["abXc"]);
  assertEquals(typed.echo, "abc\b" + "^R\n> abc\b" + "Xc\b" + "c\n");
});

Deno.test("LineEditor keeps the cursor within the line over 20,000 random keys", () => {
  const rng = new Xorshift32(0xed17);
  const keys = [
    "a",
    "é",
    " ",
    "\x7f",
    "\x1b[D",
    "\x1b[C",
    "\x1b[H",
    "\x1b[F",
    "\x1b[3~",
    "\x0b",
    "\x15",
    "\x1b[A",
    "\x1b[B",
    "\r",
  ];
  const history = new LineHistory(new Uint32Array(4), new Uint8Array(128));
  const state = new Uint32Array(8);
  const editor = new LineEditor(state, new Uint8Array(24), () => {}, { history });
  const encoder = new TextEncoder();
  for (let i = 0; i < 20_000; i++) {
    for (const byte of encoder.encode(keys[rng.below(keys.length)])) editor.feed(byte);
    assertEquals(editor.check(), undefined);
    assertEquals(history.check(), undefined);
    // The stored line is always whole UTF-8: decoding never needs a replacement character.
    assert(!new TextDecoder().decode(editor.line()).includes("\ufffd"), `step ${i}`);
  }
});
