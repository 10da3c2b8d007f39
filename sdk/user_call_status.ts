/**
 * Which call into user code is running, in a small `SharedArrayBuffer`, so
 * that a watchdog on another thread can see a call that never returns and
 * say which one it is.
 *
 * Layout, in 32-bit words, then bytes:
 *
 * ```
 * word 0   depth: user calls in progress (nested calls count each)
 * word 1   entries: incremented each time depth goes from 0 to 1
 * word 2   the innermost call's name index (0: a call whose name did not fit)
 * word 3   names interned so far (index 0 is reserved)
 * word 4   name bytes used
 * word 8 + 2 * i   name i: byte offset, byte length (i < MAX_NAMES)
 * byte NAMES_OFFSET ...  name bytes, UTF-8
 * ```
 *
 * The writer (the thread running the machine) owns words 0 to 4 and the
 * names; a name is written before its index is ever stored in word 2, and
 * word 2 with `Atomics.store`, so a reader that sees the index sees the
 * name.
 *
 * @module
 */

const W_DEPTH = 0;
const W_ENTRIES = 1;
const W_CURRENT = 2;
const W_NAME_COUNT = 3;
const W_NAME_BYTES = 4;
const NAME_TABLE_WORD = 8;
/** The most distinct call names recorded; later ones are shown with a generic name. */
const MAX_NAMES = 1024;
const NAMES_OFFSET = (NAME_TABLE_WORD + 2 * MAX_NAMES) * 4;
const NAME_AREA_BYTES = 48 * 1024;
/** Size of the status buffer in bytes. */
export const USER_CALL_STATUS_BYTES: number = NAMES_OFFSET + NAME_AREA_BYTES;
/** The name shown when the table is full. */
const OVERFLOW_NAME = "(a call into user code)";

/** A snapshot of the status, as the watchdog reads it. */
export interface UserCallSnapshot {
  /** User calls in progress. */
  readonly depth: number;
  /** Outermost entries into user code so far. */
  readonly entries: number;
  /** The innermost call in progress, e.g. `examples/x.ts: allocate()`, or "" when none. */
  readonly call: string;
}

/** The shared status of calls into user code. */
export class UserCallStatus {
  /** The shared buffer, to hand to the watchdog's thread. */
  readonly buffer: SharedArrayBuffer;
  readonly #words: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #indexes = new Map<string, number>();
  readonly #encoder = new TextEncoder();

  /**
   * Wraps a status buffer, or creates one.
   *
   * @param buffer A buffer of {@linkcode USER_CALL_STATUS_BYTES} from another thread.
   * @throws {RangeError} If the buffer has the wrong size.
   */
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(USER_CALL_STATUS_BYTES)) {
    if (buffer.byteLength !== USER_CALL_STATUS_BYTES) {
      throw new RangeError(
        `User call status buffer is ${buffer.byteLength} bytes, expected ${USER_CALL_STATUS_BYTES}`,
      );
    }
    this.buffer = buffer;
    this.#words = new Int32Array(buffer, 0, NAMES_OFFSET / 4);
    this.#bytes = new Uint8Array(buffer, NAMES_OFFSET, NAME_AREA_BYTES);
  }

  /**
   * The index of a call's name, interning it on first use (writer side).
   *
   * @param name E.g. `examples/x.ts: allocate()`.
   * @returns The index to pass to {@linkcode UserCallStatus.enter}.
   */
  intern(name: string): number {
    const known = this.#indexes.get(name);
    if (known !== undefined) return known;
    const words = this.#words;
    const index = Math.max(1, words[W_NAME_COUNT]);
    const encoded = this.#encoder.encode(name);
    const offset = words[W_NAME_BYTES];
    // A full table names the call generically (index 0) rather than failing.
    if (index >= MAX_NAMES || offset + encoded.length > NAME_AREA_BYTES) return 0;
    this.#bytes.set(encoded, offset);
    words[NAME_TABLE_WORD + 2 * index] = offset;
    words[NAME_TABLE_WORD + 2 * index + 1] = encoded.length;
    words[W_NAME_BYTES] = offset + encoded.length;
    Atomics.store(words, W_NAME_COUNT, index + 1);
    this.#indexes.set(name, index);
    return index;
  }

  /**
   * Records that the call `index` starts (writer side).
   *
   * @returns The index of the call it interrupts, for {@linkcode UserCallStatus.leave}.
   */
  enter(index: number): number {
    const words = this.#words;
    const previous = words[W_CURRENT];
    Atomics.store(words, W_CURRENT, index);
    if (Atomics.add(words, W_DEPTH, 1) === 0) Atomics.add(words, W_ENTRIES, 1);
    return previous;
  }

  /**
   * Records that the innermost call returned (or threw), writer side.
   *
   * @param previous What {@linkcode UserCallStatus.enter} returned.
   */
  leave(previous: number): void {
    const words = this.#words;
    Atomics.sub(words, W_DEPTH, 1);
    Atomics.store(words, W_CURRENT, previous);
  }

  /** Reads the status (either side). */
  snapshot(): UserCallSnapshot {
    const words = this.#words;
    const depth = Atomics.load(words, W_DEPTH);
    const entries = Atomics.load(words, W_ENTRIES);
    const index = Atomics.load(words, W_CURRENT);
    return { depth, entries, call: depth > 0 ? this.#name(index) : "" };
  }

  #name(index: number): string {
    if (index <= 0 || index >= Atomics.load(this.#words, W_NAME_COUNT)) return OVERFLOW_NAME;
    const offset = this.#words[NAME_TABLE_WORD + 2 * index];
    const length = this.#words[NAME_TABLE_WORD + 2 * index + 1];
    return new TextDecoder().decode(this.#bytes.slice(offset, offset + length));
  }
}
