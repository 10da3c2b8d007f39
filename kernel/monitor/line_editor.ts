/**
 * The monitor's line discipline: turns received bytes into lines the way a
 * tty in canonical mode with echo does, plus the editing keys of a shell, in
 * the kernel, not in the host's terminal.
 *
 * - Printable bytes (0x20 to 0x7e, and 0x80 and up for UTF-8) are inserted
 *   at the cursor and echoed.
 * - Enter ends the line: CR, LF or CR LF (one line, not two); the echo is LF
 *   (a terminal's output processing adds the CR).
 * - Backspace (BS 0x08 or DEL 0x7f) erases the character before the cursor,
 *   a whole UTF-8 sequence; at the end of the line it echoes `"\b \b"`.
 * - Left and Right (also Ctrl-B, Ctrl-F), Home and End (also Ctrl-A,
 *   Ctrl-E) move the cursor; Delete erases the character under it; Ctrl-K
 *   erases from the cursor to the end.
 * - Up and Down (also Ctrl-P, Ctrl-N) walk the history of earlier lines.
 * - Tab completes the word before the cursor with the completer's words: the
 *   only match, or the longest common prefix, or a list of the matches.
 * - Ctrl-U erases the whole line; Ctrl-C discards it (echo `^C` and a new
 *   line); Ctrl-R reprints the prompt and the line (echo `^R` first).
 * - Other escape sequences (function keys) and control bytes are ignored.
 * - A line longer than the buffer keeps its first bytes; the rest are counted,
 *   not stored or echoed, and the terminal bell rings once, so the caller can
 *   reject the line with a clear message instead of running a truncated one.
 *
 * The echo uses only printable bytes, spaces and BS (which moves a terminal's
 * cursor left), so it works on any terminal, `TERM=dumb` included: a change
 * in the middle of the line reprints the rest of it and steps back.
 *
 * The line and the editor's state live in memory the caller provides (a
 * kernel frame); the object holds views of it. Feeding a byte allocates
 * nothing, except for Tab (the completer builds its list).
 *
 * State words:
 *
 * ```
 * word 0  bytes in the line
 * word 1  bytes beyond the buffer (not stored)
 * word 2  escape-sequence state: 0 none, 1 after ESC, 2 in ESC [, 3 after ESC O
 * word 3  flags: bit 0 the last byte was CR, bit 1 the line is complete
 * word 4  cursor: byte offset in the line
 * word 5  the number parameter of the escape sequence being read (ESC [ 3 ~)
 * word 6  history position: 0 the line being typed, n the n-th newest entry
 * word 7  zero
 * ```
 *
 * @module
 */

import type { LineHistory } from "./line_history.ts";

/** Words of state a {@linkcode LineEditor} keeps. */
export const LINE_EDITOR_STATE_WORDS = 8;

/** What feeding one byte did. */
export type LineEvent = "pending" | "line" | "cancelled";

/** Receives the bytes the editor echoes. */
export type EchoSink = (byte: number) => void;

/**
 * Completes a word: given the line's text before the cursor, returns the
 * words the last word (after the last space) may complete to.
 */
export type Completer = (textBeforeCursor: string) => readonly string[];

/** Optional parts of a {@linkcode LineEditor}. */
export interface LineEditorOptions {
  /** Earlier lines for Up and Down; each completed line is added to it. */
  readonly history?: LineHistory;
  /** Tab completion. */
  readonly complete?: Completer;
  /** The prompt, reprinted by Ctrl-R and after a list of completions. */
  readonly prompt?: string;
}

const W_LENGTH = 0;
const W_OVERFLOW = 1;
const W_ESCAPE = 2;
const W_FLAGS = 3;
const W_CURSOR = 4;
const W_PARAMETER = 5;
const W_HISTORY = 6;

const ESCAPE_NONE = 0;
const ESCAPE_AFTER_ESC = 1;
const ESCAPE_CSI = 2;
const ESCAPE_SS3 = 3;

const FLAG_AFTER_CR = 1;
const FLAG_COMPLETE = 2;

const CTRL_A = 0x01;
const CTRL_B = 0x02;
const CTRL_C = 0x03;
const CTRL_E = 0x05;
const CTRL_F = 0x06;
const BEL = 0x07;
const BS = 0x08;
const TAB = 0x09;
const LF = 0x0a;
const CTRL_K = 0x0b;
const CR = 0x0d;
const CTRL_N = 0x0e;
const CTRL_P = 0x10;
const CTRL_R = 0x12;
const CTRL_U = 0x15;
const ESC = 0x1b;
const SPACE = 0x20;
const DEL = 0x7f;
/** Final bytes of cursor-key sequences (ESC [ x and ESC O x, ECMA-48 / VT100). */
const KEY_UP = 0x41; // A
const KEY_DOWN = 0x42; // B
const KEY_RIGHT = 0x43; // C
const KEY_LEFT = 0x44; // D
const KEY_END = 0x46; // F
const KEY_HOME = 0x48; // H
/** ESC [ n ~ (VT220 editing keys): 1 or 7 Home, 3 Delete, 4 or 8 End. */
const KEY_TILDE = 0x7e;
const TILDE_HOME = [1, 7];
const TILDE_DELETE = 3;
const TILDE_END = [4, 8];
/** The largest escape parameter kept; longer numbers are no key this editor knows. */
const MAX_PARAMETER = 9999;
/** The parameter of a sequence with more than one number or other parameter bytes. */
const UNKNOWN_PARAMETER = MAX_PARAMETER + 1;

/**
 * A line editor over caller-provided memory.
 *
 * @example
 * ```ts
 * import { LineEditor } from "./line_editor.ts";
 *
 * const echoed: number[] = [];
 * const editor = new LineEditor(new Uint32Array(8), new Uint8Array(80), (b) => echoed.push(b));
 * for (const byte of new TextEncoder().encode("hepl\x7f\x7flp\r")) editor.feed(byte);
 * console.assert(new TextDecoder().decode(editor.line()) === "help");
 * ```
 */
export class LineEditor {
  /** The longest line the editor stores, in bytes. */
  readonly capacityBytes: number;
  readonly #state: Uint32Array;
  readonly #buffer: Uint8Array;
  readonly #echo: EchoSink;
  readonly #history: LineHistory | undefined;
  readonly #complete: Completer | undefined;
  readonly #prompt: Uint8Array;

  /**
   * Creates an editor with an empty line over `state`
   * ({@linkcode LINE_EDITOR_STATE_WORDS} words) and `buffer`.
   *
   * @throws {RangeError} If `state` is too short or `buffer` is empty.
   */
  constructor(
    state: Uint32Array,
    buffer: Uint8Array,
    echo: EchoSink,
    options: LineEditorOptions = {},
  ) {
    if (state.length < LINE_EDITOR_STATE_WORDS) {
      throw new RangeError(
        `Invalid line editor state: ${state.length} words, expected ${LINE_EDITOR_STATE_WORDS}`,
      );
    }
    if (buffer.length === 0) throw new RangeError("Invalid line buffer: no room for a byte");
    this.#state = state;
    this.#buffer = buffer;
    this.#echo = echo;
    this.#history = options.history;
    this.#complete = options.complete;
    this.#prompt = new TextEncoder().encode(options.prompt ?? "");
    this.capacityBytes = buffer.length;
    state.fill(0, 0, LINE_EDITOR_STATE_WORDS);
  }

  /** Bytes stored in the current line. */
  get lengthBytes(): number {
    return this.#state[W_LENGTH];
  }

  /** Bytes of the current line that did not fit and were not stored. */
  get overflowBytes(): number {
    return this.#state[W_OVERFLOW];
  }

  /** The cursor's byte offset in the line. */
  get cursorBytes(): number {
    return this.#state[W_CURSOR];
  }

  /**
   * The current line's stored bytes (a view of the buffer, valid until the
   * next {@linkcode LineEditor.feed}). After a `"line"` event this is the
   * complete line, without its line ending.
   */
  line(): Uint8Array {
    return this.#buffer.subarray(0, this.#state[W_LENGTH]);
  }

  /**
   * Checks the state in memory against the buffer it describes.
   *
   * @returns The first broken invariant in words, or undefined if none is.
   */
  check(): string | undefined {
    const state = this.#state;
    if (state[W_LENGTH] > this.capacityBytes) {
      return `line length ${state[W_LENGTH]} exceeds the ${this.capacityBytes}-byte buffer`;
    }
    if (state[W_CURSOR] > state[W_LENGTH]) {
      return `cursor ${state[W_CURSOR]} is past the end of the ${state[W_LENGTH]}-byte line`;
    }
    if (state[W_ESCAPE] > ESCAPE_SS3) return `escape state ${state[W_ESCAPE]} is unknown`;
    return undefined;
  }

  /**
   * Processes one received byte: edits the line and echoes.
   *
   * @returns `"line"` when the byte ended a line (read it with
   *   {@linkcode LineEditor.line}; the next byte starts a new one),
   *   `"cancelled"` when Ctrl-C discarded the line, else `"pending"`.
   */
  feed(byte: number): LineEvent {
    const state = this.#state;
    const flags = state[W_FLAGS];
    // A length or cursor beyond the buffer can only come from a stray write to RAM: clamp it.
    if (state[W_LENGTH] > this.capacityBytes) state[W_LENGTH] = this.capacityBytes;
    if (state[W_CURSOR] > state[W_LENGTH]) state[W_CURSOR] = state[W_LENGTH];
    if ((flags & FLAG_COMPLETE) !== 0) {
      state[W_LENGTH] = 0;
      state[W_OVERFLOW] = 0;
      state[W_CURSOR] = 0;
    }
    state[W_FLAGS] = 0;
    if (state[W_ESCAPE] !== ESCAPE_NONE) {
      // A control byte cuts a sequence short and is then handled as itself.
      if (byte >= SPACE) {
        this.#escape(byte);
        return "pending";
      }
      state[W_ESCAPE] = ESCAPE_NONE;
    }
    if (byte === CR || byte === LF) {
      // The LF of a CR LF pair belongs to the line the CR ended.
      if (byte === LF && (flags & FLAG_AFTER_CR) !== 0) return "pending";
      this.#moveToEnd();
      this.#echo(LF);
      state[W_FLAGS] = FLAG_COMPLETE | (byte === CR ? FLAG_AFTER_CR : 0);
      state[W_HISTORY] = 0;
      if (state[W_OVERFLOW] === 0) this.#history?.add(this.line());
      return "line";
    }
    if (byte >= SPACE && byte !== DEL) {
      this.#insert(byte);
      return "pending";
    }
    switch (byte) {
      case BS:
      case DEL:
        this.#eraseBack();
        break;
      case CTRL_U:
        this.#eraseLine();
        break;
      case CTRL_C:
        this.#echo(0x5e); // ^
        this.#echo(0x43); // C
        this.#echo(LF);
        state[W_LENGTH] = 0;
        state[W_OVERFLOW] = 0;
        state[W_CURSOR] = 0;
        state[W_HISTORY] = 0;
        return "cancelled";
      case CTRL_A:
        this.#moveHome();
        break;
      case CTRL_E:
        this.#moveToEnd();
        break;
      case CTRL_B:
        this.#moveLeft();
        break;
      case CTRL_F:
        this.#moveRight();
        break;
      case CTRL_K:
        this.#eraseToEnd();
        break;
      case CTRL_P:
        this.#recall(1);
        break;
      case CTRL_N:
        this.#recall(-1);
        break;
      case CTRL_R:
        this.#echo(0x5e); // ^
        this.#echo(0x52); // R
        this.#redraw();
        break;
      case TAB:
        this.#completeWord();
        break;
      case ESC:
        state[W_ESCAPE] = ESCAPE_AFTER_ESC;
        state[W_PARAMETER] = 0;
        break;
      default:
        // Other control bytes (Ctrl-D, NUL ...) are ignored.
        break;
    }
    return "pending";
  }

  // -------------------------------------------------------------------------
  // Editing

  /** Inserts `byte` at the cursor, or counts it as overflow at the end of a full line. */
  #insert(byte: number): void {
    const state = this.#state;
    const length = state[W_LENGTH];
    const cursor = state[W_CURSOR];
    if (length < this.capacityBytes && state[W_OVERFLOW] === 0) {
      const buffer = this.#buffer;
      buffer.copyWithin(cursor + 1, cursor, length);
      buffer[cursor] = byte;
      state[W_LENGTH] = length + 1;
      state[W_CURSOR] = cursor + 1;
      if (cursor === length) {
        this.#echo(byte);
      } else if (isCharacterComplete(buffer, cursor + 1)) {
        // In the middle of the line: show the character and the rest once it is whole.
        const start = characterStart(buffer, cursor);
        this.#echoBytes(start, length + 1);
        this.#echoBackspaces(countCharacters(buffer, cursor + 1, length + 1));
      }
      return;
    }
    if (cursor !== length) {
      this.#echo(BEL); // a full line takes no insertion in the middle
      return;
    }
    if (state[W_OVERFLOW] === 0) this.#echo(BEL);
    state[W_OVERFLOW]++;
  }

  /** Erases the character before the cursor: an unstored overflow byte, or a stored UTF-8 sequence. */
  #eraseBack(): void {
    const state = this.#state;
    if (state[W_OVERFLOW] > 0) {
      state[W_OVERFLOW]--;
      return;
    }
    const cursor = state[W_CURSOR];
    if (cursor === 0) return;
    const start = characterStart(this.#buffer, cursor - 1);
    this.#echo(BS);
    this.#remove(start, cursor);
  }

  /** Erases the character under the cursor (the Delete key). */
  #eraseForward(): void {
    const state = this.#state;
    const cursor = state[W_CURSOR];
    if (cursor === state[W_LENGTH]) return;
    this.#remove(cursor, characterEnd(this.#buffer, cursor, state[W_LENGTH]));
  }

  /**
   * Removes bytes [from, to) of the line with the terminal's cursor at
   * `from`: reprints the rest, blanks the freed columns and steps back.
   */
  #remove(from: number, to: number): void {
    const state = this.#state;
    const buffer = this.#buffer;
    const length = state[W_LENGTH];
    buffer.copyWithin(from, to, length);
    const newLength = length - (to - from);
    state[W_LENGTH] = newLength;
    state[W_CURSOR] = from;
    this.#echoBytes(from, newLength);
    this.#echo(SPACE);
    this.#echoBackspaces(countCharacters(buffer, from, newLength) + 1);
  }

  /** Erases from the cursor to the end of the line (Ctrl-K). */
  #eraseToEnd(): void {
    const state = this.#state;
    const cursor = state[W_CURSOR];
    const tail = countCharacters(this.#buffer, cursor, state[W_LENGTH]);
    for (let i = 0; i < tail; i++) this.#echo(SPACE);
    this.#echoBackspaces(tail);
    state[W_LENGTH] = cursor;
    state[W_OVERFLOW] = 0;
  }

  /** Erases the whole line (Ctrl-U): `"\b \b"` for each character, from the end. */
  #eraseLine(): void {
    const state = this.#state;
    state[W_OVERFLOW] = 0; // never echoed, so nothing to erase on screen
    this.#moveToEnd();
    const count = countCharacters(this.#buffer, 0, state[W_LENGTH]);
    for (let i = 0; i < count; i++) {
      this.#echo(BS);
      this.#echo(SPACE);
      this.#echo(BS);
    }
    state[W_LENGTH] = 0;
    state[W_CURSOR] = 0;
  }

  /** Replaces the line with `bytes` (a history entry), cursor at the end. */
  #replaceLine(bytes: Uint8Array): void {
    this.#eraseLine();
    const length = Math.min(bytes.length, this.capacityBytes);
    this.#buffer.set(bytes.subarray(0, length));
    this.#state[W_LENGTH] = length;
    this.#state[W_CURSOR] = length;
    this.#echoBytes(0, length);
  }

  // -------------------------------------------------------------------------
  // Cursor

  #moveLeft(): void {
    const state = this.#state;
    const cursor = state[W_CURSOR];
    if (cursor === 0) return;
    state[W_CURSOR] = characterStart(this.#buffer, cursor - 1);
    this.#echo(BS);
  }

  #moveRight(): void {
    const state = this.#state;
    const cursor = state[W_CURSOR];
    if (cursor === state[W_LENGTH]) return;
    const end = characterEnd(this.#buffer, cursor, state[W_LENGTH]);
    this.#echoBytes(cursor, end);
    state[W_CURSOR] = end;
  }

  #moveHome(): void {
    const state = this.#state;
    this.#echoBackspaces(countCharacters(this.#buffer, 0, state[W_CURSOR]));
    state[W_CURSOR] = 0;
  }

  #moveToEnd(): void {
    const state = this.#state;
    this.#echoBytes(state[W_CURSOR], state[W_LENGTH]);
    state[W_CURSOR] = state[W_LENGTH];
  }

  // -------------------------------------------------------------------------
  // History, completion, redraw

  /** Moves `step` entries back (1: older, -1: newer) in the history. */
  #recall(step: 1 | -1): void {
    const history = this.#history;
    const state = this.#state;
    if (history === undefined) return;
    const position = state[W_HISTORY] + step;
    if (position < 0 || position > history.count) {
      this.#echo(BEL);
      return;
    }
    state[W_HISTORY] = position;
    state[W_OVERFLOW] = 0;
    if (position === 0) this.#replaceLine(this.#buffer.subarray(0, 0));
    else this.#replaceLine(history.entry(position));
  }

  /** Completes the word before the cursor (Tab). */
  #completeWord(): void {
    const complete = this.#complete;
    const state = this.#state;
    if (complete === undefined || state[W_OVERFLOW] > 0) {
      this.#echo(BEL);
      return;
    }
    const decoder = new TextDecoder();
    const before = decoder.decode(this.#buffer.subarray(0, state[W_CURSOR]));
    const word = before.slice(before.lastIndexOf(" ") + 1);
    const matches = complete(before).filter((candidate) => candidate.startsWith(word));
    if (matches.length === 0) {
      this.#echo(BEL);
      return;
    }
    const common = commonPrefix(matches);
    const addition = matches.length === 1
      ? `${common.slice(word.length)} `
      : common.slice(word.length);
    if (addition !== "") {
      for (const byte of new TextEncoder().encode(addition)) this.#insert(byte);
      return;
    }
    // Nothing to add: list the matches under the line and reprint it.
    this.#echo(LF);
    for (const byte of new TextEncoder().encode(matches.join("  "))) this.#echo(byte);
    this.#redraw();
  }

  /** Echoes a new line, the prompt and the line, and puts the terminal's cursor back. */
  #redraw(): void {
    const state = this.#state;
    this.#echo(LF);
    for (const byte of this.#prompt) this.#echo(byte);
    this.#echoBytes(0, state[W_LENGTH]);
    this.#echoBackspaces(countCharacters(this.#buffer, state[W_CURSOR], state[W_LENGTH]));
  }

  // -------------------------------------------------------------------------
  // Escape sequences

  #escape(byte: number): void {
    const state = this.#state;
    switch (state[W_ESCAPE]) {
      case ESCAPE_AFTER_ESC:
        state[W_ESCAPE] = byte === 0x5b ? ESCAPE_CSI : byte === 0x4f ? ESCAPE_SS3 : ESCAPE_NONE;
        return;
      case ESCAPE_CSI:
        if (byte >= 0x30 && byte <= 0x39) {
          const parameter = state[W_PARAMETER];
          if (parameter !== UNKNOWN_PARAMETER) {
            state[W_PARAMETER] = Math.min(MAX_PARAMETER, parameter * 10 + byte - 0x30);
          }
          return;
        }
        // Other parameter and intermediate bytes (`;` of a modifier: Ctrl-Left is
        // ESC [ 1 ; 5 D) make it a key this editor does not know; a final byte
        // (0x40 to 0x7e) ends the sequence.
        if (byte < 0x40) {
          state[W_PARAMETER] = UNKNOWN_PARAMETER;
        } else if (byte <= 0x7e) {
          state[W_ESCAPE] = ESCAPE_NONE;
          this.#key(byte, state[W_PARAMETER]);
        }
        return;
      case ESCAPE_SS3:
        state[W_ESCAPE] = ESCAPE_NONE;
        this.#key(byte, 0);
        return;
      default:
        state[W_ESCAPE] = ESCAPE_NONE;
    }
  }

  /** Acts on a key sequence's final byte (and number parameter); unknown keys do nothing. */
  #key(final: number, parameter: number): void {
    // Cursor keys carry no parameter; `~` keys carry exactly one.
    if ((final === KEY_TILDE) === (parameter === 0) || parameter === UNKNOWN_PARAMETER) return;
    switch (final) {
      case KEY_UP:
        this.#recall(1);
        return;
      case KEY_DOWN:
        this.#recall(-1);
        return;
      case KEY_RIGHT:
        this.#moveRight();
        return;
      case KEY_LEFT:
        this.#moveLeft();
        return;
      case KEY_HOME:
        this.#moveHome();
        return;
      case KEY_END:
        this.#moveToEnd();
        return;
      case KEY_TILDE:
        if (TILDE_HOME.includes(parameter)) this.#moveHome();
        else if (TILDE_END.includes(parameter)) this.#moveToEnd();
        else if (parameter === TILDE_DELETE) this.#eraseForward();
        return;
    }
  }

  // -------------------------------------------------------------------------
  // Echo helpers

  #echoBytes(from: number, to: number): void {
    const buffer = this.#buffer;
    for (let i = from; i < to; i++) this.#echo(buffer[i]);
  }

  #echoBackspaces(count: number): void {
    for (let i = 0; i < count; i++) this.#echo(BS);
  }
}

/** Whether `byte` continues a UTF-8 sequence (10xxxxxx). */
function isContinuation(byte: number): boolean {
  return (byte & 0xc0) === 0x80;
}

/** The first byte of the character containing offset `at`. */
function characterStart(buffer: Uint8Array, at: number): number {
  let start = at;
  while (start > 0 && isContinuation(buffer[start])) start--;
  return start;
}

/** One past the last byte of the character starting at `at`, within `length`. */
function characterEnd(buffer: Uint8Array, at: number, length: number): number {
  let end = at + 1;
  while (end < length && isContinuation(buffer[end])) end++;
  return end;
}

/** Characters (UTF-8 sequences, one terminal column each) in bytes [from, to). */
function countCharacters(buffer: Uint8Array, from: number, to: number): number {
  let count = 0;
  for (let i = from; i < to; i++) if (!isContinuation(buffer[i])) count++;
  return count;
}

/** Whether the character ending at byte offset `end` (exclusive) has all its bytes. */
function isCharacterComplete(buffer: Uint8Array, end: number): boolean {
  const start = characterStart(buffer, end - 1);
  const lead = buffer[start];
  const expected = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return end - start >= expected;
}

function commonPrefix(words: readonly string[]): string {
  let prefix = words[0];
  for (const word of words) {
    while (!word.startsWith(prefix)) prefix = prefix.slice(0, -1);
  }
  return prefix;
}
