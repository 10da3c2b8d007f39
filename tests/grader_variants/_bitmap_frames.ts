/**
 * A small student-style frame allocator for the grader's tests: one bitmap
 * in RAM (1 = free), a next-fit cursor, counters in a header. Without a bug
 * it meets the whole contract (the grader gives it 100% when the lab lets
 * `allocate()` pick any free frame). Each variant module in this folder
 * builds it with one deliberate bug, the kind students write, to prove that
 * the grader takes the points of exactly the property the bug breaks.
 *
 * @module
 */

import {
  type AllocatorMetadataRange,
  availableFrameRuns,
  createFrameMetadata,
  FRAME_UNUSABLE,
  FRAME_UNUSED,
  type FrameMetadata,
  type FrameNumber,
  type FrameProvider,
  type FrameProviderEnv,
  type FrameProviderFactory,
  type FrameProviderStats,
  frameStart,
  type FrameState,
  hex,
  KernelError,
  PAGE_SIZE_4K,
  type PhysAddr,
  type PhysicalMemory,
} from "../../sdk/mod.ts";

/** The deliberate bugs a variant can have. */
export type FramesBug =
  | "none"
  /** Rounds each usable region's end up: the last, partly usable frame is handed out. */
  | "off-by-one-pool-end"
  /** free() does not check that the frame is allocated. */
  | "no-double-free-check"
  /** allocateContiguous() ignores the alignment. */
  | "contiguous-unaligned"
  /** Forgets the boot reservations (kernel image, first MiB ...): they start free. */
  | "reserved-handed-out"
  /** freeContiguous() frees every frame of the run but the last. */
  | "leak-on-free"
  /** freeContiguous() of more than eight frames reads a record that does not exist (a TypeError). */
  | "throws-in-free-contiguous";

const W_FRAMES = 0;
const W_FREE = 1;
const W_RESERVED = 2;
const W_CURSOR = 3;
const HEADER_WORDS = 4;

class BitmapFrames implements FrameProvider {
  readonly memory: PhysicalMemory;
  readonly metadata: FrameMetadata;
  readonly #words: Uint32Array;
  readonly #frameCount: number;
  readonly #bug: FramesBug;

  constructor(env: FrameProviderEnv, bug: FramesBug) {
    this.#bug = bug;
    this.memory = env.memory;
    this.metadata = createFrameMetadata(env);
    this.#frameCount = this.metadata.frameCount + (bug === "off-by-one-pool-end" ? 1 : 0);
    const stateFrames = Math.ceil(
      (HEADER_WORDS + Math.ceil(this.#frameCount / 32)) * 4 / PAGE_SIZE_4K,
    );
    const stateAddr = frameStart(env.early.allocate(stateFrames));
    this.#words = new Uint32Array(env.memory.buffer, stateAddr, stateFrames * PAGE_SIZE_4K / 4);
    this.#words.fill(0);
    this.#words[W_FRAMES] = this.#frameCount;
    const ownState = env.early.retire();
    const usable = bug === "off-by-one-pool-end"
      ? env.usableRegions.map(({ base, length }) => ({
        base,
        length: Math.ceil((base + length) / PAGE_SIZE_4K) * PAGE_SIZE_4K - base,
      }))
      : env.usableRegions;
    const excluded = bug === "reserved-handed-out" ? ownState : [...env.reservations, ...ownState];
    let free = 0;
    for (const run of availableFrameRuns(usable, excluded)) {
      for (let frame = run.firstFrame; frame < run.endFrame; frame++) this.#setFree(frame);
      const inMetadata = Math.min(run.endFrame, this.metadata.frameCount) - run.firstFrame;
      this.metadata.fill(run.firstFrame, inMetadata, FRAME_UNUSED);
      free += run.endFrame - run.firstFrame;
    }
    this.#words[W_FREE] = free;
    this.#words[W_RESERVED] = this.#frameCount - free;
  }

  allocate(): FrameNumber {
    const words = this.#words;
    if (words[W_FREE] === 0) throw outOfMemory("a frame");
    for (let i = 0; i < this.#frameCount; i++) {
      const frame = (words[W_CURSOR] + i) % this.#frameCount;
      if (!this.#isFree(frame)) continue;
      this.#take(frame);
      words[W_CURSOR] = (frame + 1) % this.#frameCount;
      return frame as FrameNumber;
    }
    throw outOfMemory("a frame");
  }

  allocateSpecific(frame: FrameNumber): FrameNumber {
    if (!this.#isFree(frame)) {
      throw this.stateOf(frame) === "allocated"
        ? new KernelError("FrameInUse", `Cannot allocate frame ${hex(frame)}: already in use`)
        : new KernelError("InvalidFrame", `Cannot allocate frame ${hex(frame)}: not ours`);
    }
    this.#take(frame);
    return frame;
  }

  allocateContiguous(frameCount: number, alignFrames: number): FrameNumber {
    checkRun(frameCount, alignFrames);
    const step = this.#bug === "contiguous-unaligned" ? 1 : alignFrames;
    for (let start = 0; start + frameCount <= this.#frameCount;) {
      let used = -1;
      for (let frame = start; frame < start + frameCount; frame++) {
        if (!this.#isFree(frame)) {
          used = frame;
          break;
        }
      }
      if (used < 0) {
        for (let frame = start; frame < start + frameCount; frame++) this.#take(frame);
        return start as FrameNumber;
      }
      start = Math.ceil((used + 1) / step) * step;
    }
    throw outOfMemory(`${frameCount} frames aligned to ${alignFrames}`);
  }

  free(frame: FrameNumber): void {
    if (this.#bug !== "no-double-free-check") this.#checkAllocated(frame);
    else if (this.stateOf(frame) !== "allocated" && this.stateOf(frame) !== "free") {
      this.#checkAllocated(frame);
    }
    this.#setFree(frame);
    this.#words[W_FREE]++;
  }

  freeContiguous(frame: FrameNumber, frameCount: number): void {
    checkRun(frameCount, 1);
    if (this.#bug === "throws-in-free-contiguous" && frameCount > 8) {
      const runs: { first: number }[] = [];
      return void runs[frameCount].first; // TypeError: the bug
    }
    for (let f = frame; f < frame + frameCount; f++) this.#checkAllocated(f);
    const freed = this.#bug === "leak-on-free" ? frameCount - 1 : frameCount;
    for (let f = frame; f < frame + freed; f++) this.#setFree(f);
    this.#words[W_FREE] += freed;
  }

  stats(): FrameProviderStats {
    const free = this.#words[W_FREE];
    const reserved = this.#words[W_RESERVED];
    const allocated = this.#frameCount - free - reserved;
    const pool = {
      base: 0 as PhysAddr,
      frameCount: this.#frameCount,
      freeFrames: free,
      reservedFrames: reserved,
      allocatedFrames: allocated,
    };
    return {
      totalFrames: this.#frameCount,
      freeFrames: free,
      reservedFrames: reserved,
      allocatedFrames: allocated,
      pools: [pool],
    };
  }

  stateOf(frame: FrameNumber): FrameState {
    if (!Number.isInteger(frame) || frame < 0 || frame >= this.#frameCount) return "outside";
    if (this.#isFree(frame)) return "free";
    return frame < this.metadata.frameCount && this.metadata.refcount(frame) === FRAME_UNUSABLE
      ? "reserved"
      : "allocated";
  }

  metadataRanges(): AllocatorMetadataRange[] {
    return [{
      base: this.#words.byteOffset as PhysAddr,
      length: this.#words.byteLength,
      what: "bitmap",
    }];
  }

  #isFree(frame: number): boolean {
    if (!Number.isInteger(frame) || frame < 0 || frame >= this.#frameCount) return false;
    return (this.#words[HEADER_WORDS + (frame >>> 5)] & (1 << (frame & 31))) !== 0;
  }

  #setFree(frame: number): void {
    this.#words[HEADER_WORDS + (frame >>> 5)] |= 1 << (frame & 31);
  }

  #take(frame: number): void {
    this.#words[HEADER_WORDS + (frame >>> 5)] &= ~(1 << (frame & 31));
    this.#words[W_FREE]--;
  }

  #checkAllocated(frame: number): void {
    const state = this.stateOf(frame as FrameNumber);
    if (state === "free") {
      throw new KernelError("DoubleFree", `Cannot free frame ${hex(frame)}: already free`);
    }
    if (state !== "allocated") {
      throw new KernelError("InvalidFrame", `Cannot free frame ${hex(frame)}: ${state}`);
    }
  }
}

function outOfMemory(what: string): KernelError {
  return new KernelError("OutOfMemory", `Cannot allocate ${what}: no free frames left`);
}

function checkRun(frameCount: number, alignFrames: number): void {
  if (!Number.isSafeInteger(frameCount) || frameCount < 1) {
    throw new RangeError(`Invalid frame count ${frameCount}: must be a positive integer`);
  }
  if (
    !Number.isSafeInteger(alignFrames) || alignFrames < 1 ||
    (alignFrames & (alignFrames - 1)) !== 0
  ) {
    throw new RangeError(`Invalid alignment ${alignFrames} frames: must be a power of two`);
  }
}

/**
 * The allocator's factory, with `bug` in it.
 *
 * @param bug The deliberate bug ("none" for a correct allocator).
 * @returns A `--frames` module's default export.
 */
export function bitmapFrames(bug: FramesBug): FrameProviderFactory {
  return (env) => new BitmapFrames(env, bug);
}
