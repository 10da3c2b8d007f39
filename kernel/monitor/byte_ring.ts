/**
 * A byte queue in RAM between an interrupt handler (the producer) and the
 * kernel's main loop (the consumer), as a tty driver's flip buffer: the
 * serial IRQ handler pushes each received byte, the main loop takes them out
 * in order. Its counters and data live in the memory it is given (a region
 * of a kernel frame), so a RAM dump shows the queue; the object holds views.
 *
 * Layout of the state words:
 *
 * ```
 * word 0  head: index of the oldest byte
 * word 1  count: bytes queued
 * word 2  bytes dropped because the queue was full
 * word 3  zero
 * ```
 *
 * @module
 */

/**
 * A ring whose state in memory is inconsistent (a count or head out of
 * range: a stray write). Which bytes were queued is lost, so the ring cannot
 * be repaired; the kernel panics naming the broken invariant.
 */
export class ByteRingCorrupt extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "ByteRingCorrupt";
  /** The broken invariant in words, e.g. `head 2048 is outside the 2048-byte ring`. */
  readonly invariant: string;

  /** Creates the error for `invariant`. */
  constructor(invariant: string) {
    super(`Byte ring state is corrupt: ${invariant}`);
    this.invariant = invariant;
  }
}

/** Words of state a {@linkcode ByteRing} keeps. */
export const BYTE_RING_STATE_WORDS = 4;

const W_HEAD = 0;
const W_COUNT = 1;
const W_DROPPED = 2;

/**
 * A fixed-capacity FIFO of bytes over caller-provided memory. Neither
 * {@linkcode ByteRing.push} nor {@linkcode ByteRing.shift} allocates.
 *
 * @example
 * ```ts
 * import { ByteRing } from "./byte_ring.ts";
 *
 * const ring = new ByteRing(new Uint32Array(4), new Uint8Array(8));
 * ring.push(0x41);
 * ring.push(0x42);
 * console.assert(ring.shift() === 0x41 && ring.length === 1);
 * ```
 */
export class ByteRing {
  /** How many bytes the ring holds. */
  readonly capacityBytes: number;
  readonly #state: Uint32Array;
  readonly #data: Uint8Array;

  /**
   * Creates an empty ring over `state` ({@linkcode BYTE_RING_STATE_WORDS}
   * words) and `data` (its capacity), clearing the state.
   *
   * @throws {RangeError} If `state` is too short or `data` is empty.
   */
  constructor(state: Uint32Array, data: Uint8Array) {
    if (state.length < BYTE_RING_STATE_WORDS) {
      throw new RangeError(
        `Invalid ring state: ${state.length} words, expected ${BYTE_RING_STATE_WORDS}`,
      );
    }
    if (data.length === 0) throw new RangeError("Invalid ring data: no room for a byte");
    this.#state = state;
    this.#data = data;
    this.capacityBytes = data.length;
    state.fill(0, 0, BYTE_RING_STATE_WORDS);
  }

  /** Bytes queued. */
  get length(): number {
    return this.#state[W_COUNT];
  }

  /** Bytes refused because the ring was full, since creation. */
  get droppedBytes(): number {
    return this.#state[W_DROPPED];
  }

  /**
   * Checks the state in memory: the head inside the ring, the count at most
   * the capacity.
   *
   * @returns The first broken invariant in words, or undefined if none is.
   */
  check(): string | undefined {
    const head = this.#state[W_HEAD];
    const count = this.#state[W_COUNT];
    if (head >= this.capacityBytes) {
      return `head ${head} is outside the ${this.capacityBytes}-byte ring`;
    }
    if (count > this.capacityBytes) {
      return `count ${count} exceeds the ${this.capacityBytes}-byte ring`;
    }
    return undefined;
  }

  /**
   * Appends `byte`. A full ring keeps what it has and counts the byte as
   * dropped, as a tty's flip buffer does when the reader falls behind. A
   * corrupt ring takes nothing either (the producer runs in interrupt
   * context and must not fail); {@linkcode ByteRing.shift} reports it.
   *
   * @returns Whether the byte was queued.
   */
  push(byte: number): boolean {
    const state = this.#state;
    const count = state[W_COUNT];
    if (count >= this.capacityBytes || state[W_HEAD] >= this.capacityBytes) {
      state[W_DROPPED]++;
      return false;
    }
    let tail = state[W_HEAD] + count;
    if (tail >= this.capacityBytes) tail -= this.capacityBytes;
    this.#data[tail] = byte;
    state[W_COUNT] = count + 1;
    return true;
  }

  /**
   * Removes and returns the oldest byte. The state is checked first on every
   * call, an empty ring included.
   *
   * @returns The byte, or -1 when the ring is empty.
   * @throws {ByteRingCorrupt} If the state in memory is inconsistent (a
   *   stray write, e.g. a monitor `poke!`); nothing is changed.
   */
  shift(): number {
    const state = this.#state;
    const count = state[W_COUNT];
    const head = state[W_HEAD];
    if (count > this.capacityBytes || head >= this.capacityBytes) {
      throw new ByteRingCorrupt(this.check() ?? "state out of range");
    }
    if (count === 0) return -1;
    const byte = this.#data[head];
    state[W_HEAD] = head + 1 === this.capacityBytes ? 0 : head + 1;
    state[W_COUNT] = count - 1;
    return byte;
  }
}
