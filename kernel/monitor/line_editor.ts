/**
 * The monitor's line discipline: turns received bytes into lines the way a
 * tty in canonical mode with echo does, in the kernel, not in the host's
 * terminal.
 *
 * - Printable bytes (0x20 to 0x7e, and 0x80 and up for UTF-8) are stored and
 *   echoed.
 * - Enter ends the line: CR, LF or CR LF (one line, not two); the echo is LF
 *   (a terminal's output processing adds the CR).
 * - Backspace (BS 0x08 or DEL 0x7f) erases the last character, a whole UTF-8
 *   sequence, and echoes `"\b \b"`; at the start of a line it does nothing.
 * - Ctrl-U erases the whole line; Ctrl-C discards it (echo `^C` and a new
 *   line).
 * - Escape sequences (ESC [ ... final, ESC O x: arrow and function keys) and
 *   every other control byte are ignored.
 * - A line longer than the buffer keeps its first bytes; the rest are counted,
 *   not stored or echoed, and the terminal bell rings once, so the caller can
 *   reject the line with a clear message instead of running a truncated one.
 *
 * The line and the editor's state live in memory the caller provides (a
 * kernel frame); the object holds views of it. Feeding a byte allocates
 * nothing.
 *
 * State words:
 *
 * ```
 * word 0  bytes in the line
 * word 1  bytes beyond the buffer (not stored)
 * word 2  escape-sequence state: 0 none, 1 after ESC, 2 in ESC [, 3 after ESC O
 * word 3  flags: bit 0 the last byte was CR, bit 1 the line is complete
 * ```
 *
 * @module
 */

/** Words of state a {@linkcode LineEditor} keeps. */
export const LINE_EDITOR_STATE_WORDS = 4;

/** What feeding one byte did. */
export type LineEvent = "pending" | "line" | "cancelled";

/** Receives the bytes the editor echoes. */
export type EchoSink = (byte: number) => void;

const W_LENGTH = 0;
const W_OVERFLOW = 1;
const W_ESCAPE = 2;
const W_FLAGS = 3;

const ESCAPE_NONE = 0;
const ESCAPE_AFTER_ESC = 1;
const ESCAPE_CSI = 2;
const ESCAPE_SS3 = 3;

const FLAG_AFTER_CR = 1;
const FLAG_COMPLETE = 2;

const BS = 0x08;
const BEL = 0x07;
const LF = 0x0a;
const CR = 0x0d;
const ESC = 0x1b;
const SPACE = 0x20;
const DEL = 0x7f;
const CTRL_C = 0x03;
const CTRL_U = 0x15;

/**
 * A line editor over caller-provided memory.
 *
 * @example
 * ```ts
 * import { LineEditor } from "./line_editor.ts";
 *
 * const echoed: number[] = [];
 * const editor = new LineEditor(new Uint32Array(4), new Uint8Array(80), (b) => echoed.push(b));
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

  /**
   * Creates an editor with an empty line over `state`
   * ({@linkcode LINE_EDITOR_STATE_WORDS} words) and `buffer`.
   *
   * @throws {RangeError} If `state` is too short or `buffer` is empty.
   */
  constructor(state: Uint32Array, buffer: Uint8Array, echo: EchoSink) {
    if (state.length < LINE_EDITOR_STATE_WORDS) {
      throw new RangeError(
        `Invalid line editor state: ${state.length} words, expected ${LINE_EDITOR_STATE_WORDS}`,
      );
    }
    if (buffer.length === 0) throw new RangeError("Invalid line buffer: no room for a byte");
    this.#state = state;
    this.#buffer = buffer;
    this.#echo = echo;
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

  /**
   * The current line's stored bytes (a view of the buffer, valid until the
   * next {@linkcode LineEditor.feed}). After a `"line"` event this is the
   * complete line, without its line ending.
   */
  line(): Uint8Array {
    return this.#buffer.subarray(0, this.#state[W_LENGTH]);
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
    // A length beyond the buffer can only come from a stray write to RAM: clamp it.
    if (state[W_LENGTH] > this.capacityBytes) state[W_LENGTH] = this.capacityBytes;
    if ((flags & FLAG_COMPLETE) !== 0) {
      state[W_LENGTH] = 0;
      state[W_OVERFLOW] = 0;
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
      this.#echo(LF);
      state[W_FLAGS] = FLAG_COMPLETE | (byte === CR ? FLAG_AFTER_CR : 0);
      return "line";
    }
    if (byte >= SPACE && byte !== DEL) {
      this.#insert(byte);
      return "pending";
    }
    switch (byte) {
      case BS:
      case DEL:
        this.#eraseCharacter();
        break;
      case CTRL_U:
        state[W_OVERFLOW] = 0; // never echoed, so nothing to erase on screen
        while (state[W_LENGTH] > 0) this.#eraseCharacter();
        break;
      case CTRL_C:
        this.#echo(0x5e); // ^
        this.#echo(0x43); // C
        this.#echo(LF);
        state[W_LENGTH] = 0;
        state[W_OVERFLOW] = 0;
        return "cancelled";
      case ESC:
        state[W_ESCAPE] = ESCAPE_AFTER_ESC;
        break;
      default:
        // Other control bytes (tab, Ctrl-D, NUL ...) are ignored.
        break;
    }
    return "pending";
  }

  #insert(byte: number): void {
    const state = this.#state;
    const length = state[W_LENGTH];
    if (length < this.capacityBytes && state[W_OVERFLOW] === 0) {
      this.#buffer[length] = byte;
      state[W_LENGTH] = length + 1;
      this.#echo(byte);
      return;
    }
    if (state[W_OVERFLOW] === 0) this.#echo(BEL);
    state[W_OVERFLOW]++;
  }

  /** Erases the last character: an unstored overflow byte, or a stored UTF-8 sequence. */
  #eraseCharacter(): void {
    const state = this.#state;
    if (state[W_OVERFLOW] > 0) {
      state[W_OVERFLOW]--;
      return;
    }
    let length = state[W_LENGTH];
    if (length === 0) return;
    // Drop continuation bytes (10xxxxxx) back to the sequence's first byte.
    do length--; while (length > 0 && (this.#buffer[length] & 0xc0) === 0x80);
    state[W_LENGTH] = length;
    this.#echo(BS);
    this.#echo(SPACE);
    this.#echo(BS);
  }

  #escape(byte: number): void {
    const state = this.#state;
    switch (state[W_ESCAPE]) {
      case ESCAPE_AFTER_ESC:
        state[W_ESCAPE] = byte === 0x5b ? ESCAPE_CSI : byte === 0x4f ? ESCAPE_SS3 : ESCAPE_NONE;
        return;
      case ESCAPE_CSI:
        // Parameter and intermediate bytes continue; a final byte (0x40 to 0x7e) ends it.
        if (byte >= 0x40 && byte <= 0x7e) state[W_ESCAPE] = ESCAPE_NONE;
        return;
      default:
        state[W_ESCAPE] = ESCAPE_NONE;
    }
  }
}
