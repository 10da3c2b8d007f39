/**
 * Opens the CLI's output files (`--report html FILE`, `--trace-file FILE`)
 * before the boot, so that a path that cannot be written is reported at once
 * and not after a long run. `/dev/stdout` and `/dev/stderr` are the process's
 * own streams (Deno's permissions do not let a program open them by name);
 * `/dev/null`, named pipes and regular files are opened.
 *
 * @module
 */

import type { SyncWriter } from "./byte_writer.ts";
import { describeFileError } from "./_os_error.ts";

/** A file the CLI writes to. */
export interface WritableFile extends SyncWriter {
  /** Whether this is stdout or stderr (`/dev/stdout`), shared with the console. */
  readonly isStandardStream?: boolean;
  /** Closes the file; see {@linkcode OutputFile.close}. */
  close(): void;
}

/**
 * When an existing regular file loses its old contents: at once (a trace,
 * written while the machine runs) or at the first write (a report, written
 * after the boot, so a boot that fails leaves the old report in place).
 */
export type TruncateWhen = "at-open" | "at-first-write";

/** An output path that cannot be opened, with the one line that says why. */
export class OutputFileError extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "OutputFileError";
  /** The path as given. */
  readonly path: string;
  /** Why it cannot be written, in a few words: `is a directory`. */
  readonly reason: string;

  /**
   * Creates the error and its one-line message.
   *
   * @param path The path as given.
   * @param reason Why it cannot be written, in a few words.
   */
  constructor(path: string, reason: string) {
    super(`Cannot write "${path}": ${reason}`);
    this.path = path;
    this.reason = reason;
  }
}

/** The process's standard streams, which `/dev/stdout` and `/dev/stderr` name. */
export interface StandardStreams {
  /** Standard output. */
  readonly stdout: SyncWriter;
  /** Standard error. */
  readonly stderr: SyncWriter;
}

/** Paths that name a standard stream, and which one. */
const STANDARD_STREAM_PATHS: Record<string, keyof StandardStreams> = {
  "/dev/stdout": "stdout",
  "/dev/stderr": "stderr",
  "/dev/fd/1": "stdout",
  "/dev/fd/2": "stderr",
  "/proc/self/fd/1": "stdout",
  "/proc/self/fd/2": "stderr",
};

/** An output file opened for writing. */
export class OutputFile implements WritableFile {
  /** Whether this is stdout or stderr (`/dev/stdout`), shared with the console. */
  readonly isStandardStream: boolean;
  readonly #path: string;
  readonly #target: SyncWriter;
  readonly #file: Deno.FsFile | undefined;
  /** A report file this run created: removed again if nothing is written to it. */
  readonly #isRemovedUnwritten: boolean;
  #isTruncatePending: boolean;
  #hasWritten = false;

  private constructor(
    path: string,
    target: SyncWriter,
    file: Deno.FsFile | undefined,
    facts: { isRemovedUnwritten: boolean; isTruncatePending: boolean },
  ) {
    this.isStandardStream = file === undefined;
    this.#path = path;
    this.#target = target;
    this.#file = file;
    this.#isRemovedUnwritten = facts.isRemovedUnwritten;
    this.#isTruncatePending = facts.isTruncatePending;
  }

  /**
   * Opens `path` for writing, creating it if it does not exist.
   *
   * @param path The host path; `/dev/stdout` and `/dev/stderr` are `streams`.
   * @param truncate When an existing regular file is emptied.
   * @param streams The process's standard streams.
   * @returns The open file.
   * @throws {OutputFileError} If the path cannot be written.
   */
  static open(path: string, truncate: TruncateWhen, streams: StandardStreams): OutputFile {
    const stream = STANDARD_STREAM_PATHS[path];
    if (stream !== undefined) {
      const facts = { isRemovedUnwritten: false, isTruncatePending: false };
      return new OutputFile(path, streams[stream], undefined, facts);
    }
    let file: Deno.FsFile;
    let wasCreated = true;
    try {
      try {
        file = Deno.openSync(path, { write: true, createNew: true });
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        wasCreated = false;
        file = Deno.openSync(path, { write: true });
      }
    } catch (error) {
      throw new OutputFileError(path, describeFileError(error, "write", path));
    }
    try {
      const isRegular = file.statSync().isFile;
      if (isRegular && truncate === "at-open") file.truncateSync(0);
      const isDeferred = isRegular && truncate === "at-first-write";
      return new OutputFile(path, file, file, {
        isRemovedUnwritten: isDeferred && wasCreated,
        isTruncatePending: isDeferred && !wasCreated,
      });
    } catch (error) {
      file.close();
      throw new OutputFileError(path, describeFileError(error, "write", path));
    }
  }

  /** Writes some of `bytes` (emptying an old file first); returns how many were written. */
  writeSync(bytes: Uint8Array): number {
    if (this.#isTruncatePending) {
      this.#file?.truncateSync(0);
      this.#isTruncatePending = false;
    }
    this.#hasWritten = true;
    return this.#target.writeSync(bytes);
  }

  /**
   * Closes the file. A report file this run created and never wrote to (the
   * boot failed before the report) is removed again; a standard stream stays
   * open.
   */
  close(): void {
    if (this.#file === undefined) return;
    this.#file.close();
    if (this.#isRemovedUnwritten && !this.#hasWritten) {
      try {
        Deno.removeSync(this.#path);
      } catch {
        // Already gone or not removable: an empty file is all that is left.
      }
    }
  }
}
