/**
 * The watchdog over a {@linkcode UserCallStatus}: on the thread that does
 * not run the user's code, it looks at the shared status and notices an
 * outermost call into user code that has not returned within a timeout.
 * `main.ts` (a run that loads user modules) and `deno task grade` both stop
 * their worker when it fires.
 *
 * An outermost call is told apart by the status's entry count: the clock
 * starts when the watchdog first sees a call in progress with a new count,
 * and restarts whenever the count changes or no call is in progress. Nested
 * calls do not restart it, so a loop inside one call into the user's code
 * is caught however many calls it makes back into other user code.
 *
 * @module
 */

import type { UserCallStatus } from "./user_call_status.ts";

/** How often {@linkcode UserCallWatchdog.start} looks at the status by default, in ms. */
export const DEFAULT_WATCHDOG_POLL_MS = 20;

/** A call into user code that did not return in time. */
export interface UserCallOverrun {
  /** The innermost call in progress, e.g. `examples/x.ts: allocate()`. */
  readonly call: string;
  /** One line for the user: `examples/x.ts: allocate() did not return within 5 s`. */
  readonly message: string;
}

/** Watches a {@linkcode UserCallStatus} for an outermost call that runs longer than a timeout. */
export class UserCallWatchdog {
  /** How long one outermost call into user code may run, in ms. */
  readonly timeoutMs: number;
  readonly #status: UserCallStatus;
  /** The entry count of the call being timed, or -1 when none is. */
  #watchedEntry = -1;
  #watchedSinceMs = 0;

  /**
   * Creates a watchdog over `status` (a view of the buffer the other thread writes).
   *
   * @param status The shared call status.
   * @param timeoutMs How long one outermost call may run, in ms.
   */
  constructor(status: UserCallStatus, timeoutMs: number) {
    this.#status = status;
    this.timeoutMs = timeoutMs;
  }

  /**
   * Looks at the status once.
   *
   * @param nowMs The time now, in ms, on any clock that only moves forward.
   * @returns The call that has been running for `timeoutMs` or longer since
   *   the watchdog first saw it, or undefined.
   */
  poll(nowMs: number): UserCallOverrun | undefined {
    const snapshot = this.#status.snapshot();
    if (snapshot.depth === 0 || snapshot.entries !== this.#watchedEntry) {
      this.#watchedEntry = snapshot.depth === 0 ? -1 : snapshot.entries;
      this.#watchedSinceMs = nowMs;
      return undefined;
    }
    if (nowMs - this.#watchedSinceMs < this.timeoutMs) return undefined;
    return {
      call: snapshot.call,
      message: `${snapshot.call} did not return within ${this.timeoutMs / 1000} s`,
    };
  }

  /**
   * Polls every `pollMs` on a timer until stopped. At the first overrun it
   * stops and calls `onOverrun` once.
   *
   * @param onOverrun What to do about a call that did not return in time.
   * @param pollMs How often to look at the status, in ms.
   * @returns A function that stops the watchdog (it may be called more than once).
   */
  start(
    onOverrun: (overrun: UserCallOverrun) => void,
    pollMs: number = DEFAULT_WATCHDOG_POLL_MS,
  ): () => void {
    const stop = () => clearInterval(timer);
    const timer = setInterval(() => {
      const overrun = this.poll(performance.now());
      if (overrun === undefined) return;
      stop();
      onOverrun(overrun);
    }, pollMs);
    return stop;
  }
}
