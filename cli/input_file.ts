/**
 * Reads the CLI's input files (`--module`, `--mbi`, `--script`) in bounded
 * memory. A file is looked at before it is opened, so that a device such as
 * `/dev/zero` (which never ends) or a directory is refused without reading a
 * byte, and read at most up to the limit that applies to it, so a file that
 * grows while it is read or a pipe that never ends cannot exhaust the host.
 *
 * @module
 */

import { describeFileError } from "./_os_error.ts";

/** A file the CLI cannot use as input, with the one line that says why. */
export class InputFileError extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "InputFileError";
  /** The path as given. */
  readonly path: string;

  /**
   * Creates the error and its one-line message.
   *
   * @param option The option that named the file (`--module`).
   * @param path The path as given.
   * @param reason Why it cannot be used, in a few words.
   */
  constructor(option: string, path: string, reason: string) {
    super(`Cannot read ${option} "${path}": ${reason}`);
    this.path = path;
  }
}

/** What an input file may be. */
export interface InputFileLimit {
  /** The option that names the file, for messages (`--module`). */
  readonly option: string;
  /** The largest accepted size in bytes. */
  readonly maxBytes: number;
  /** The limit in words, for the message: `the 128 MiB of RAM`. */
  readonly limitText: string;
  /** Whether a named pipe (FIFO) is accepted; it is read up to `maxBytes`. */
  readonly allowsPipe: boolean;
}

/** Bytes read at a time from a pipe, whose size is not known up front. */
const PIPE_CHUNK_BYTES = 64 * 1024;

/**
 * Reads a whole input file: a regular file (or, where `limit` allows, a
 * named pipe) of at most `limit.maxBytes`.
 *
 * @param path The host path.
 * @param limit What the file may be.
 * @returns The file's bytes.
 * @throws {InputFileError} If the file is missing, unreadable, not a regular
 *   file (or pipe), or larger than the limit; nothing more than the limit
 *   plus one byte is ever held.
 */
export function readInputFile(path: string, limit: InputFileLimit): Uint8Array {
  const fail = (reason: string) => new InputFileError(limit.option, path, reason);
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    throw fail(describeFileError(error, "read", path));
  }
  // Checked before opening: opening a device can have effects, and a pipe
  // that is not accepted would block until a writer appears.
  checkKind(info, limit, fail);
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (error) {
    throw fail(describeFileError(error, "read", path));
  }
  try {
    // The path may have been replaced since it was looked at: check what was opened.
    const opened = file.statSync();
    checkKind(opened, limit, fail);
    const bytes = readAtMost(file, opened.isFile ? opened.size : PIPE_CHUNK_BYTES, limit.maxBytes);
    if (bytes === undefined) throw fail(`larger than ${limit.limitText}`);
    return bytes;
  } catch (error) {
    if (error instanceof InputFileError) throw error;
    throw fail(describeFileError(error, "read", path));
  } finally {
    file.close();
  }
}

function checkKind(
  info: Deno.FileInfo,
  limit: InputFileLimit,
  fail: (reason: string) => InputFileError,
): void {
  if (info.isFile) {
    if (info.size > limit.maxBytes) {
      throw fail(`${info.size} bytes, larger than ${limit.limitText}`);
    }
    return;
  }
  if (info.isFifo && limit.allowsPipe) return;
  const accepted = limit.allowsPipe ? "a regular file or a named pipe" : "a regular file";
  throw fail(`${describeKind(info)}, not ${accepted}`);
}

/** What a file that is not a regular file is, in a few words. */
function describeKind(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a directory";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isFifo) return "a named pipe";
  if (info.isSocket) return "a socket";
  return "a special file";
}

/**
 * Reads `file` to its end into a buffer that starts at `expectedBytes` and
 * grows up to `maxBytes` plus one byte. Returns undefined when there is more
 * than `maxBytes`.
 */
function readAtMost(
  file: Deno.FsFile,
  expectedBytes: number,
  maxBytes: number,
): Uint8Array | undefined {
  // One byte over the expected size shows a file that grew while being read.
  let buffer = new Uint8Array(Math.min(expectedBytes, maxBytes) + 1);
  let length = 0;
  for (;;) {
    if (length === buffer.length) {
      if (length > maxBytes) return undefined;
      const grown = new Uint8Array(Math.min(maxBytes + 1, length * 2));
      grown.set(buffer);
      buffer = grown;
    }
    const count = file.readSync(buffer.subarray(length));
    if (count === null) break;
    length += count;
  }
  return length > maxBytes ? undefined : buffer.subarray(0, length);
}
