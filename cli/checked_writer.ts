/**
 * Host output streams whose write failures name the stream: a full disk
 * behind stdout becomes one line, `Cannot write standard output: no space
 * left on device`, and the documented exit status, not an internal error.
 *
 * @module
 */

import type { SyncWriter } from "./byte_writer.ts";
import { describeOsError } from "./_os_error.ts";

/** Writing to an output stream or file failed. */
export class OutputWriteError extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "OutputWriteError";

  /**
   * Creates the error and its one-line message.
   *
   * @param what The output in words: `standard output`, `"out.html"`.
   * @param cause The host error.
   */
  constructor(what: string, cause: unknown) {
    super(`Cannot write ${what}: ${describeOsError(cause)}`, { cause });
  }
}

/** A stream whose write errors are {@linkcode OutputWriteError}s naming it. */
export class CheckedWriter implements SyncWriter {
  readonly #stream: SyncWriter;
  readonly #what: string;

  /**
   * Wraps `stream`.
   *
   * @param stream The host stream.
   * @param what The output in words, for messages: `standard output`.
   */
  constructor(stream: SyncWriter, what: string) {
    this.#stream = stream;
    this.#what = what;
  }

  /** Writes some of `bytes`; throws OutputWriteError (its cause: the host error) on failure. */
  writeSync(bytes: Uint8Array): number {
    try {
      return this.#stream.writeSync(bytes);
    } catch (error) {
      throw new OutputWriteError(this.#what, error);
    }
  }
}
