/**
 * Per-frame metadata: one signed 32-bit word per physical frame, in RAM.
 *
 * The array starts at a physical address the frame allocator obtained from
 * the early allocator and is indexed by frame number, from frame 0 up to the
 * end of the highest pool (holes between pools included, like Linux's flat
 * `mem_map`). Every update goes through `Atomics`, so simulated CPUs running
 * on other Workers over the same `SharedArrayBuffer` can share the counts.
 *
 * Encoding of a frame's word:
 *
 * | value | meaning |
 * |---|---|
 * | `-1` ({@linkcode FRAME_UNUSABLE}) | never allocatable: reserved, or in no pool |
 * | `0` ({@linkcode FRAME_UNUSED}) | allocatable and held by no page handle: free, or allocated raw through `FrameSource` |
 * | `n >= 1` | held by `n` page handles (`Page` / `ContigPages`) |
 *
 * Unused (0) and in-use (>= 1) are distinct, so a stale handle that releases
 * a frame a second time finds 0 and is reported as a refcount underflow
 * instead of silently freeing someone else's frame.
 *
 * @module
 */

import { type FrameNumber, frameStart, hex, type PhysAddr } from "../../hal/mod.ts";
import type { PhysicalMemory } from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";
import { plural } from "../plural.ts";

/** Metadata value of a frame that no allocation may hand out: reserved, or in no pool. */
export const FRAME_UNUSABLE: number = -1;
/** Metadata value of an allocatable frame that no page handle holds. */
export const FRAME_UNUSED = 0;
/** The largest reference count a frame can hold. */
export const MAX_REFCOUNT = 0x7fff_ffff;
/** Bytes of metadata per frame. */
export const FRAME_METADATA_BYTES = 4;

/** A frame held by page handles, as listed by {@linkcode FrameMetadata.heldFrames}. */
export interface HeldFrame {
  /** The frame number. */
  readonly frame: FrameNumber;
  /** The frame's physical address. */
  readonly physAddr: PhysAddr;
  /** How many page handles hold it. */
  readonly refcount: number;
  /** Where the first handle was allocated (a stack line), when sites are tracked. */
  readonly allocationSite?: string;
}

/** Options of {@linkcode FrameMetadata}. */
export interface FrameMetadataOptions {
  /** Record where each page handle's frame was allocated, for leak reports (debug). */
  readonly trackAllocationSites?: boolean;
}

/** The per-frame reference-count array in RAM. */
export class FrameMetadata {
  /** The RAM holding the array. */
  readonly memory: PhysicalMemory;
  /** Physical address of frame 0's word. */
  readonly base: PhysAddr;
  /** How many frames the array covers (frames 0 to frameCount - 1). */
  readonly frameCount: number;
  /**
   * A view of the array: the same RAM bytes as `memory.i32`, indexed by frame
   * number. V8 compiles accesses with int32 indices far better than those of
   * 2^31 and up, which `memory.i32` needs above 8 GiB.
   */
  readonly #words: Int32Array;
  /** Allocation sites by frame; debug information only, never the source of truth. */
  readonly #sites: Map<number, string> | undefined;

  /**
   * Bytes the array needs for `frameCount` frames.
   *
   * @param frameCount The number of frames covered.
   * @returns The array's size in bytes.
   */
  static sizeBytes(frameCount: number): number {
    return frameCount * FRAME_METADATA_BYTES;
  }

  /**
   * Wraps the array at `base`; does not initialise it (the frame allocator does).
   *
   * @param memory The RAM holding the array.
   * @param base Physical address of frame 0's word, 4-byte aligned.
   * @param frameCount The number of frames covered.
   * @param options Debug options.
   * @throws {RangeError} If the array is misaligned or not entirely in RAM.
   */
  constructor(
    memory: PhysicalMemory,
    base: PhysAddr,
    frameCount: number,
    options: FrameMetadataOptions = {},
  ) {
    if (base % 4 !== 0 || !memory.isRam(base, FrameMetadata.sizeBytes(frameCount))) {
      throw new RangeError(
        `Frame metadata at ${hex(base)} for ${frameCount} frames is misaligned or not in RAM`,
      );
    }
    this.memory = memory;
    this.base = base;
    this.frameCount = frameCount;
    this.#words = new Int32Array(memory.buffer, base, frameCount);
    this.#sites = options.trackAllocationSites ? new Map() : undefined;
  }

  /** Whether allocation sites are recorded (debug). */
  get tracksAllocationSites(): boolean {
    return this.#sites !== undefined;
  }

  /**
   * Reads a frame's word.
   *
   * @param frame The frame.
   * @returns {@linkcode FRAME_UNUSABLE}, {@linkcode FRAME_UNUSED} or the reference count.
   * @throws {KernelError} `InvalidFrame` if the array does not cover the frame.
   */
  refcount(frame: FrameNumber): number {
    return Atomics.load(this.#words, this.#slot(frame, "read metadata of"));
  }

  /**
   * Sets the words of a run of frames (initialisation and reservation).
   *
   * @param firstFrame The first frame.
   * @param frameCount How many frames.
   * @param value The word to store.
   */
  fill(firstFrame: number, frameCount: number, value: number): void {
    this.#words.fill(value, firstFrame, firstFrame + frameCount);
  }

  /**
   * Takes the first reference to a frame fresh from the allocator: 0 becomes 1.
   *
   * @param frame The frame.
   * @throws {KernelError} `FrameInUse` if the frame is already held or unusable
   *   (the allocator handed out a frame it should not have).
   */
  acquireUnused(frame: FrameNumber): void {
    const slot = this.#slot(frame, "acquire");
    const seen = Atomics.compareExchange(this.#words, slot, FRAME_UNUSED, 1);
    if (seen !== FRAME_UNUSED) {
      throw new KernelError(
        "FrameInUse",
        `Cannot acquire frame ${hex(frame)}: ${describe(seen)}, expected unused`,
      );
    }
  }

  /**
   * Adds a reference to a held frame.
   *
   * @param frame The frame.
   * @returns The new reference count.
   * @throws {KernelError} `UseAfterDispose` if no handle holds the frame (a stale handle).
   * @throws {RangeError} If the count would exceed {@linkcode MAX_REFCOUNT}.
   */
  retain(frame: FrameNumber): number {
    const words = this.#words;
    const slot = this.#slot(frame, "retain");
    for (;;) {
      const count = Atomics.load(words, slot);
      if (count < 1) {
        throw new KernelError(
          "UseAfterDispose",
          `Cannot retain frame ${hex(frame)}: ${describe(count)}`,
        );
      }
      if (count === MAX_REFCOUNT) {
        throw new RangeError(`Cannot retain frame ${hex(frame)}: reference count overflow`);
      }
      if (Atomics.compareExchange(words, slot, count, count + 1) === count) return count + 1;
    }
  }

  /**
   * Drops a reference to a held frame. The caller frees the frame when the
   * result is 0.
   *
   * @param frame The frame.
   * @returns The new reference count.
   * @throws {KernelError} `RefcountUnderflow` if the count is already 0 (or the frame is unusable).
   */
  release(frame: FrameNumber): number {
    const words = this.#words;
    const slot = this.#slot(frame, "release");
    for (;;) {
      const count = Atomics.load(words, slot);
      if (count < 1) {
        throw new KernelError(
          "RefcountUnderflow",
          `Cannot release frame ${hex(frame)}: ${describe(count)}`,
        );
      }
      if (Atomics.compareExchange(words, slot, count, count - 1) === count) {
        if (count === 1) this.#sites?.delete(frame);
        return count - 1;
      }
    }
  }

  /**
   * Records where a frame's first handle was allocated (no-op unless tracking).
   *
   * @param frame The frame.
   * @param site A description of the allocation site, such as a stack line.
   */
  recordSite(frame: FrameNumber, site: string): void {
    this.#sites?.set(frame, site);
  }

  /**
   * The frames that page handles still hold, lowest first: the leak report.
   * Scans the whole array, so it is meant for shutdown and tests.
   *
   * @returns One entry per held frame, with its allocation site when tracked.
   */
  heldFrames(): HeldFrame[] {
    const words = this.#words;
    const held: HeldFrame[] = [];
    for (let slot = 0; slot < words.length; slot++) {
      const count = words[slot];
      if (count < 1) continue;
      const frame = slot as FrameNumber;
      const site = this.#sites?.get(frame);
      held.push({
        frame,
        physAddr: frameStart(frame),
        refcount: count,
        ...(site === undefined ? {} : { allocationSite: site }),
      });
    }
    return held;
  }

  #slot(frame: FrameNumber, action: string): number {
    if (!Number.isInteger(frame) || frame < 0 || frame >= this.frameCount) {
      throw new KernelError(
        "InvalidFrame",
        `Cannot ${action} frame ${hex(frame)}: outside the frame metadata array`,
      );
    }
    return frame;
  }
}

function describe(value: number): string {
  if (value === FRAME_UNUSABLE) return "frame is reserved or outside every pool";
  if (value === FRAME_UNUSED) return "reference count is already 0";
  return `held by ${plural(value, "page handle")}`;
}
