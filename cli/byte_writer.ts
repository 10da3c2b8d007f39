/**
 * Buffered byte output to a host stream: bytes are collected and written a
 * line at a time. (The serial console, whose output must also keep order
 * with trace lines, goes through `ConsoleOutput`.)
 *
 * @module
 */

/** A synchronous host stream such as `Deno.stdout`. */
export interface SyncWriter {
  /** Writes some of `bytes`; returns how many were written. */
  writeSync(bytes: Uint8Array): number;
}

/** Collects bytes and writes them to a stream at each newline or when full. */
export class ByteWriter {
  readonly #stream: SyncWriter | undefined;
  readonly #buffer = new Uint8Array(8192);
  #length = 0;

  /** Creates a writer to `stream`; with no stream, bytes are dropped (`--quiet`). */
  constructor(stream: SyncWriter | undefined) {
    this.#stream = stream;
  }

  /** Appends one byte, flushing at a newline or a full buffer. */
  writeByte(byte: number): void {
    if (this.#stream === undefined) return;
    this.#buffer[this.#length++] = byte;
    if (byte === 0x0a || this.#length === this.#buffer.length) this.flush();
  }

  /** Writes out everything buffered. */
  flush(): void {
    if (this.#stream === undefined) return;
    let offset = 0;
    while (offset < this.#length) {
      offset += this.#stream.writeSync(this.#buffer.subarray(offset, this.#length));
    }
    this.#length = 0;
  }
}
