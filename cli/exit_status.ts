/**
 * The exit statuses of `main.ts`, in one place; the README and `--help`
 * list the same. 70 and 74 are the BSD `sysexits.h` codes EX_SOFTWARE and
 * EX_IOERR; 128 + N for signal N is the shells' convention.
 *
 * @module
 */

/** Exit statuses of `main.ts`. */
export const ExitStatus = {
  /** Booted, and the console (if any) ended: `halt`, end of input, or Ctrl-A x. */
  ok: 0,
  /** The kernel panicked, the boot loader refused the input, or the console stalled. */
  kernelFailure: 1,
  /** A bad command line or input file (unreadable, not a regular file, too large). */
  badInput: 2,
  /** The kernel booted but a `--selftest` self-test failed. */
  selftestFailure: 3,
  /** A monitor command or `expect` failed in a script or piped input (not with `--keep-going`). */
  monitorFailure: 4,
  /** An internal error: a bug in kernelsim (EX_SOFTWARE). */
  internalError: 70,
  /** An output could not be written, e.g. a full disk (EX_IOERR). */
  outputError: 74,
  /** A call into a user module did not return within `--user-timeout` (as `timeout(1)`). */
  userCodeStopped: 124,
} as const;

/** Signals that end an interactive session, with their numbers (POSIX, Linux x86). */
export const TERMINATION_SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

/** A signal that ends a session: `SIGHUP`, `SIGINT` or `SIGTERM`. */
export type TerminationSignal = keyof typeof TERMINATION_SIGNALS;

/**
 * The status after `signal`: 128 + its number (129 SIGHUP, 130 SIGINT,
 * 143 SIGTERM), as a shell reports a process killed by it.
 */
export function signalExitStatus(signal: TerminationSignal): number {
  return 128 + TERMINATION_SIGNALS[signal];
}
