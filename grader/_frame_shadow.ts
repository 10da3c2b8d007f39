/**
 * The frame lab's reference model: what every frame of the test machine is
 * (usable and free, handed out to the grader, reserved, outside usable RAM)
 * and what each call should therefore do. One byte per frame, in a typed
 * array; the grader's own bookkeeping, independent of the student's part.
 *
 * @module
 */

/** A frame of usable RAM that the model says is free. */
export const SHADOW_FREE = 0;
/** A frame of usable RAM that the grader holds (handed out by the part). */
export const SHADOW_HELD = 1;
/** A frame of usable RAM that must never be handed out (a reservation, the part's own state). */
export const SHADOW_RESERVED = 2;
/** A frame outside usable RAM (a hole, past the end, a partial frame). */
export const SHADOW_OUTSIDE = 3;
/** A reserved or outside frame the part handed out anyway (held by the grader until cleanup). */
export const SHADOW_STRAY = 4;

/** What taking a frame the part handed out meant. */
export type TakeResult = "taken" | "twice" | "stray";

/** The reference model of the frame lab's machine. */
export class FrameShadow {
  /** One past the last frame modelled. */
  readonly endFrame: number;
  /** Frames of usable RAM the part may hand out, lowest first. */
  readonly available: readonly number[];
  readonly #states: Uint8Array;
  /** What the frame was before a stray hand-out (reserved or outside). */
  readonly #strayOrigin = new Map<number, number>();
  #freeCount: number;
  #heldCount = 0;
  /** Lowest frame that may be free (every frame below it is not). */
  #lowestHint = 0;

  /**
   * Builds the model.
   *
   * @param endFrame One past the last frame modelled.
   * @param availableRuns Frames the part may hand out, as `[first, end)` runs.
   * @param reservedRuns Frames of usable RAM never to hand out, as runs.
   */
  constructor(
    endFrame: number,
    availableRuns: readonly { firstFrame: number; endFrame: number }[],
    reservedRuns: readonly { firstFrame: number; endFrame: number }[],
  ) {
    this.endFrame = endFrame;
    this.#states = new Uint8Array(endFrame).fill(SHADOW_OUTSIDE);
    for (const run of reservedRuns) {
      this.#states.fill(SHADOW_RESERVED, run.firstFrame, run.endFrame);
    }
    const available: number[] = [];
    for (const run of availableRuns) {
      this.#states.fill(SHADOW_FREE, run.firstFrame, run.endFrame);
      for (let frame = run.firstFrame; frame < run.endFrame; frame++) available.push(frame);
    }
    this.available = available;
    this.#freeCount = available.length;
  }

  /** Frames the model says are free. */
  get freeCount(): number {
    return this.#freeCount;
  }

  /** Frames of usable RAM the grader holds (strays not included). */
  get heldCount(): number {
    return this.#heldCount;
  }

  /** Every frame the grader holds: usable ones and strays. */
  get handedOutCount(): number {
    return this.#heldCount + this.#strayOrigin.size;
  }

  /**
   * The model's state of a frame ({@linkcode SHADOW_FREE} ...); frames past
   * the end are outside.
   */
  stateOf(frame: number): number {
    return frame >= 0 && frame < this.endFrame && Number.isInteger(frame)
      ? this.#states[frame]
      : SHADOW_OUTSIDE;
  }

  /**
   * What a frame is by nature, whatever the grader holds: free (usable),
   * reserved or outside.
   */
  kindOf(frame: number): number {
    const state = this.stateOf(frame);
    if (state === SHADOW_HELD) return SHADOW_FREE;
    if (state === SHADOW_STRAY) return this.#strayOrigin.get(frame) ?? SHADOW_OUTSIDE;
    return state;
  }

  /**
   * Records that the part handed out `frame`.
   *
   * @returns `taken` for a free frame; `twice` if the grader already holds
   *   it; `stray` for a reserved or outside frame (now held until cleanup).
   */
  take(frame: number): TakeResult {
    const state = this.stateOf(frame);
    if (state === SHADOW_FREE) {
      this.#states[frame] = SHADOW_HELD;
      this.#freeCount--;
      this.#heldCount++;
      return "taken";
    }
    if (state === SHADOW_HELD || state === SHADOW_STRAY) return "twice";
    if (frame >= 0 && frame < this.endFrame && Number.isInteger(frame)) {
      this.#strayOrigin.set(frame, state);
      this.#states[frame] = SHADOW_STRAY;
    }
    return "stray";
  }

  /** Records that the grader gave `frame` back (a held frame or a stray). */
  release(frame: number): void {
    const state = this.stateOf(frame);
    if (state === SHADOW_HELD) {
      this.#states[frame] = SHADOW_FREE;
      this.#freeCount++;
      this.#heldCount--;
      if (frame < this.#lowestHint) this.#lowestHint = frame;
    } else if (state === SHADOW_STRAY) {
      this.#states[frame] = this.#strayOrigin.get(frame) ?? SHADOW_OUTSIDE;
      this.#strayOrigin.delete(frame);
    }
  }

  /** Every frame the grader holds, strays included, lowest first. */
  heldFrames(): number[] {
    const held: number[] = [];
    for (let frame = 0; frame < this.endFrame; frame++) {
      const state = this.#states[frame];
      if (state === SHADOW_HELD || state === SHADOW_STRAY) held.push(frame);
    }
    return held;
  }

  /** The lowest free frame, or -1. */
  lowestFree(): number {
    const states = this.#states;
    for (let frame = this.#lowestHint; frame < this.endFrame; frame++) {
      if (states[frame] === SHADOW_FREE) {
        this.#lowestHint = frame;
        return frame;
      }
    }
    this.#lowestHint = this.endFrame;
    return -1;
  }

  /**
   * Whether some run of `frameCount` free frames starts at a multiple of
   * `alignFrames`.
   */
  hasRun(frameCount: number, alignFrames: number): boolean {
    const states = this.#states;
    for (let start = 0; start + frameCount <= this.endFrame; start += alignFrames) {
      let length = 0;
      while (length < frameCount && states[start + length] === SHADOW_FREE) length++;
      if (length === frameCount) return true;
      // Skip the aligned starts the used frame rules out.
      start = Math.floor((start + length) / alignFrames) * alignFrames;
    }
    return false;
  }
}
