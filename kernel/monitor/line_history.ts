/**
 * The monitor's command history: the lines typed before, oldest first, in
 * memory the caller provides (a kernel frame), so a RAM dump shows them. Up
 * and Down in the line editor walk it.
 *
 * Layout: four state words, then the entries packed one after the other,
 * each a 16-bit little-endian length and the line's bytes:
 *
 * ```
 * word 0  magic "KHIS"
 * word 1  entries held
 * word 2  bytes of the data area in use
 * word 3  zero
 * data    [len lo][len hi][bytes...] [len lo][len hi][bytes...] ...
 * ```
 *
 * When a new line does not fit, the oldest entries are dropped to make room.
 *
 * @module
 */

/** Words of state a {@linkcode LineHistory} keeps. */
export const LINE_HISTORY_STATE_WORDS = 4;
/** The state's first word: "KHIS" as a little-endian u32, to find the history in a dump. */
export const LINE_HISTORY_MAGIC = 0x5349_484b;

const W_MAGIC = 0;
const W_COUNT = 1;
const W_USED = 2;
/** Bytes of an entry's length prefix. */
const LENGTH_BYTES = 2;

/**
 * A bounded list of lines over caller-provided memory.
 *
 * @example
 * ```ts
 * import { LineHistory } from "./line_history.ts";
 *
 * const history = new LineHistory(new Uint32Array(4), new Uint8Array(64));
 * history.add(new TextEncoder().encode("meminfo"));
 * history.add(new TextEncoder().encode("alloc 1"));
 * console.assert(new TextDecoder().decode(history.entry(1)) === "alloc 1");
 * ```
 */
export class LineHistory {
  /** Bytes the entries may use. */
  readonly capacityBytes: number;
  readonly #state: Uint32Array;
  readonly #data: Uint8Array;

  /**
   * Creates an empty history over `state` ({@linkcode LINE_HISTORY_STATE_WORDS}
   * words) and `data`.
   *
   * @throws {RangeError} If `state` is too short or `data` cannot hold a line.
   */
  constructor(state: Uint32Array, data: Uint8Array) {
    if (state.length < LINE_HISTORY_STATE_WORDS) {
      throw new RangeError(
        `Invalid history state: ${state.length} words, expected ${LINE_HISTORY_STATE_WORDS}`,
      );
    }
    if (data.length <= LENGTH_BYTES) {
      throw new RangeError("Invalid history data: no room for a line");
    }
    this.#state = state;
    this.#data = data;
    this.capacityBytes = data.length;
    state.fill(0, 0, LINE_HISTORY_STATE_WORDS);
    state[W_MAGIC] = LINE_HISTORY_MAGIC;
  }

  /** Entries held. */
  get count(): number {
    return this.#state[W_COUNT];
  }

  /**
   * Appends `line` as the newest entry, unless it is empty, equal to the
   * newest entry, or too long to fit at all. Drops the oldest entries to
   * make room. Allocates nothing.
   */
  add(line: Uint8Array): void {
    const length = line.length;
    const needed = LENGTH_BYTES + length;
    if (length === 0 || needed > this.capacityBytes || this.check() !== undefined) return;
    if (this.count > 0 && sameBytes(this.entry(1), line)) return;
    const state = this.#state;
    const data = this.#data;
    while (state[W_USED] + needed > this.capacityBytes) {
      const oldest = LENGTH_BYTES + (data[0] | (data[1] << 8));
      data.copyWithin(0, oldest, state[W_USED]);
      state[W_USED] -= oldest;
      state[W_COUNT]--;
    }
    const at = state[W_USED];
    data[at] = length & 0xff;
    data[at + 1] = length >>> 8;
    data.set(line, at + LENGTH_BYTES);
    state[W_USED] = at + needed;
    state[W_COUNT]++;
  }

  /**
   * The entry `back` places from the end: 1 is the newest, `count` the
   * oldest (a view of the history's memory, valid until the next `add`).
   *
   * @throws {RangeError} If there is no such entry or the history is corrupt.
   */
  entry(back: number): Uint8Array {
    const problem = this.check();
    if (problem !== undefined) throw new RangeError(`Invalid history: ${problem}`);
    const count = this.count;
    if (!Number.isInteger(back) || back < 1 || back > count) {
      throw new RangeError(`Invalid history entry ${back}: ${count} entries held`);
    }
    const data = this.#data;
    let at = 0;
    for (let skip = count - back; skip > 0; skip--) at += LENGTH_BYTES + readLength(data, at);
    return data.subarray(at + LENGTH_BYTES, at + LENGTH_BYTES + readLength(data, at));
  }

  /**
   * Checks the state in memory: the magic, the bytes in use, and that the
   * entries tile exactly the bytes in use.
   *
   * @returns The first broken invariant in words, or undefined if none is.
   */
  check(): string | undefined {
    const state = this.#state;
    if (state[W_MAGIC] !== LINE_HISTORY_MAGIC) {
      return `magic is 0x${state[W_MAGIC].toString(16)}, not "KHIS"`;
    }
    const used = state[W_USED];
    if (used > this.capacityBytes) {
      return `${used} bytes in use in a ${this.capacityBytes}-byte area`;
    }
    let at = 0;
    let entries = 0;
    while (at < used) {
      if (at + LENGTH_BYTES > used) return `entry ${entries + 1} runs past the bytes in use`;
      at += LENGTH_BYTES + readLength(this.#data, at);
      entries++;
    }
    if (at !== used) return `entry ${entries} runs past the bytes in use`;
    if (entries !== state[W_COUNT]) {
      return `${state[W_COUNT]} entries counted, ${entries} stored`;
    }
    return undefined;
  }
}

function readLength(data: Uint8Array, at: number): number {
  return data[at] | (data[at + 1] << 8);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
