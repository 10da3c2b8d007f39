/**
 * A simple physical frame allocator for the stock kernel: one flat bitmap,
 * one bit per frame from frame 0 to the end of usable RAM (1 = free), and a
 * next-fit cursor. Every byte of its state is in simulated RAM, in frames
 * it takes from the early allocator at boot:
 *
 * ```
 * word 0  magic "BMAP"        word 4  next-fit cursor (a frame number)
 * word 1  frames covered      word 5  bitmap words scanned (a statistic)
 * word 2  free frames         word 6  allocations (a statistic)
 * word 3  reserved frames     word 7  zero
 * word 8  the bitmap: bit b of word w is frame 32 * w + b
 * ```
 *
 * A frame whose bit is clear is allocated if its reference-count word (the
 * kernel's `FrameMetadata`) is 0 or more, reserved if it is -1: the
 * metadata array already says which frames were never ours to hand out.
 *
 *     deno task boot -- --frames examples/bitmap_frames.ts --selftest --report json
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
} from "../sdk/mod.ts";

/** "BMAP" as a little-endian u32, to find the state in a memory dump. */
const MAGIC = 0x50414d42;
const W_MAGIC = 0;
const W_FRAMES = 1;
const W_FREE = 2;
const W_RESERVED = 3;
const W_CURSOR = 4;
const W_SCANNED = 5;
const W_ALLOCATIONS = 6;
const HEADER_WORDS = 8;

class BitmapFrames implements FrameProvider {
  readonly memory: PhysicalMemory;
  readonly metadata: FrameMetadata;
  /** The state block, header then bitmap: a view of RAM, not a copy. */
  readonly #words: Uint32Array;
  readonly #frameCount: number;

  constructor(env: FrameProviderEnv) {
    this.memory = env.memory;
    // The reference counts (all -1 to start with), then our own state, from the early allocator.
    this.metadata = createFrameMetadata(env);
    this.#frameCount = this.metadata.frameCount;
    const stateBytes = (HEADER_WORDS + Math.ceil(this.#frameCount / 32)) * 4;
    const stateFrames = Math.ceil(stateBytes / PAGE_SIZE_4K);
    const stateAddr = frameStart(env.early.allocate(stateFrames));
    this.#words = new Uint32Array(env.memory.buffer, stateAddr, stateFrames * PAGE_SIZE_4K / 4);
    this.#words.fill(0);
    this.#words[W_MAGIC] = MAGIC;
    this.#words[W_FRAMES] = this.#frameCount;
    // Retiring the early allocator tells us what it handed out; everything else usable is free.
    const taken = env.early.retire();
    let free = 0;
    for (const run of availableFrameRuns(env.usableRegions, [...env.reservations, ...taken])) {
      for (let frame = run.firstFrame; frame < run.endFrame; frame++) this.#setFree(frame);
      this.metadata.fill(run.firstFrame, run.endFrame - run.firstFrame, FRAME_UNUSED);
      free += run.endFrame - run.firstFrame;
    }
    this.#words[W_FREE] = free;
    this.#words[W_RESERVED] = this.#frameCount - free;
  }

  allocate(): FrameNumber {
    const words = this.#words;
    if (words[W_FREE] === 0) throw outOfMemory("a frame");
    const wordCount = Math.ceil(this.#frameCount / 32);
    const start = words[W_CURSOR] >>> 5;
    // Next fit: scan the bitmap from the cursor's word, wrapping around once.
    for (let i = 0; i <= wordCount; i++) {
      const w = (start + i) % wordCount;
      words[W_SCANNED]++;
      const bits = words[HEADER_WORDS + w];
      if (bits === 0) continue;
      const frame = 32 * w + (31 - Math.clz32(bits & -bits)); // lowest set bit
      this.#take(frame);
      words[W_CURSOR] = frame + 1 < this.#frameCount ? frame + 1 : 0;
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
    // Try aligned starts in order; on a used frame, jump to the next aligned start past it.
    let start = 0;
    while (start + frameCount <= this.#frameCount) {
      const used = this.#firstNotFree(start, frameCount);
      if (used < 0) {
        for (let frame = start; frame < start + frameCount; frame++) this.#take(frame);
        return start as FrameNumber;
      }
      start = Math.ceil((used + 1) / alignFrames) * alignFrames;
    }
    throw outOfMemory(`${frameCount} frames aligned to ${alignFrames}`);
  }

  free(frame: FrameNumber): void {
    this.#checkAllocated(frame);
    this.#setFree(frame);
    this.#words[W_FREE]++;
  }

  freeContiguous(frame: FrameNumber, frameCount: number): void {
    checkRun(frameCount, 1);
    // Check every frame first, so that an error changes nothing.
    for (let f = frame; f < frame + frameCount; f++) this.#checkAllocated(f);
    for (let f = frame; f < frame + frameCount; f++) this.#setFree(f);
    this.#words[W_FREE] += frameCount;
  }

  stats(): FrameProviderStats {
    const words = this.#words;
    const free = words[W_FREE];
    const reserved = words[W_RESERVED];
    const pool = {
      base: frameStart(0 as FrameNumber),
      frameCount: this.#frameCount,
      freeFrames: free,
      reservedFrames: reserved,
      allocatedFrames: this.#frameCount - free - reserved,
    };
    return {
      totalFrames: pool.frameCount,
      freeFrames: free,
      reservedFrames: reserved,
      allocatedFrames: pool.allocatedFrames,
      pools: [pool],
      details: {
        nextFitCursor: words[W_CURSOR],
        bitmapWordsScanned: words[W_SCANNED],
        allocations: words[W_ALLOCATIONS],
      },
    };
  }

  stateOf(frame: FrameNumber): FrameState {
    if (!Number.isInteger(frame) || frame < 0 || frame >= this.#frameCount) return "outside";
    if (this.#isFree(frame)) return "free";
    return this.metadata.refcount(frame) === FRAME_UNUSABLE ? "reserved" : "allocated";
  }

  metadataRanges(): AllocatorMetadataRange[] {
    const state = this.#words;
    return [
      {
        base: this.metadata.base,
        length: Math.ceil((this.#frameCount * 4) / PAGE_SIZE_4K) * PAGE_SIZE_4K,
        what: "reference counts",
      },
      {
        base: state.byteOffset as PhysAddr,
        length: state.byteLength,
        what: "bitmap allocator state",
      },
    ];
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
    this.#words[W_ALLOCATIONS]++;
  }

  #firstNotFree(start: number, frameCount: number): number {
    for (let frame = start; frame < start + frameCount; frame++) {
      if (!this.#isFree(frame)) return frame;
    }
    return -1;
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
    (alignFrames & -alignFrames) !== alignFrames
  ) {
    throw new RangeError(`Invalid alignment ${alignFrames} frames: must be a power of two`);
  }
}

/** The module's default export: the factory `--frames` calls at boot. */
const createBitmapFrames: FrameProviderFactory = (env) => new BitmapFrames(env);
export default createBitmapFrames;
