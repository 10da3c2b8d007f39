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
 * | `-2` ({@linkcode FRAME_CACHED}) | free, kept in a CPU's per-CPU cache of free frames (several CPUs only) |
 * | `-1` ({@linkcode FRAME_UNUSABLE}) | never allocatable: reserved, or in no pool |
 * | `0` ({@linkcode FRAME_UNUSED}) | allocatable and held by no page handle: free, or allocated raw through `FrameSource` |
 * | `n >= 1` | held by `n` page handles (`Page` / `ContigPages`) |
 *
 * Unused (0) and in-use (>= 1) are distinct, so a stale handle that releases
 * a frame a second time finds 0 and is reported as a refcount underflow
 * instead of silently freeing someone else's frame. A frame a per-CPU cache
 * keeps is marked cached (-2): the allocator's bitmap counts it allocated,
 * but freeing it again, or handing it to a page handle, is caught.
 *
 * ## Costing nothing until a frame is used
 *
 * Zero, the value of fresh RAM, is the common state, and the array is not
 * written at boot: a 64 GiB machine's 64 MiB of metadata would otherwise be
 * resident before anything runs. Instead the array is split into pages of
 * {@linkcode FRAMES_PER_METADATA_PAGE} frames (one 4 KiB page of words), with
 * a state word per page kept beside the array (the frame allocator puts them
 * in its state block). An untouched page reads as all unused, whatever RAM
 * holds there, and a page marked unusable as a whole (a hole between pools,
 * a reserved range) reads as all unusable; a page's words are written, and so
 * become resident, only the first time one of them must differ from the
 * page's common value (taking the first reference, or reserving part of the
 * page). Stale RAM contents can never be mistaken for reference counts.
 *
 * Page states: untouched (0), being initialised (1), ready (2), unusable (3).
 * Untouched and unusable pages become ready through being initialised, by
 * compare-exchange, so when CPUs on several Workers touch a page at once
 * exactly one writes it and the others wait for ready; a ready page stays
 * ready. A page read as ready with a plain load has its words written before
 * it was marked (typed-array stores keep their program order in V8, and
 * x86-64 keeps stores and loads in order).
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
/** Metadata value of a free frame kept in a per-CPU cache (several CPUs only). */
export const FRAME_CACHED: number = -2;
/** The largest reference count a frame can hold. */
export const MAX_REFCOUNT = 0x7fff_ffff;
/** Bytes of metadata per frame. */
export const FRAME_METADATA_BYTES = 4;
/** Frames whose metadata fills one 4 KiB page: the unit of lazy initialisation. */
export const FRAMES_PER_METADATA_PAGE = 1024;
/** log2 of FRAMES_PER_METADATA_PAGE: frame >>> this is the frame's metadata page. */
const PAGE_SHIFT = 10;
// Metadata page states (see the module comment).
const PAGE_UNTOUCHED = 0;
const PAGE_INITIALISING = 1;
const PAGE_READY = 2;
const PAGE_UNUSABLE = 3;

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
  /**
   * Where the page states live: {@linkcode FrameMetadata.pageStatesSizeBytes}
   * bytes, 4-byte aligned, in RAM. Default: right after the array (the caller
   * then reserves that much more than {@linkcode FrameMetadata.sizeBytes}).
   */
  readonly pageStatesBase?: PhysAddr;
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
  /** The state of each metadata page, in RAM (see FrameMetadataOptions.pageStatesBase). */
  readonly #pageStates: Int32Array;
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
   * Bytes the page states need for `frameCount` frames: a word per
   * {@linkcode FRAMES_PER_METADATA_PAGE} frames.
   *
   * @param frameCount The number of frames covered.
   * @returns The size in bytes.
   */
  static pageStatesSizeBytes(frameCount: number): number {
    return pageCountFor(frameCount) * FRAME_METADATA_BYTES;
  }

  /**
   * Wraps the array at `base`; does not initialise it (the frame allocator
   * calls {@linkcode FrameMetadata.reset}).
   *
   * @param memory The RAM holding the array.
   * @param base Physical address of frame 0's word, 4-byte aligned.
   * @param frameCount The number of frames covered.
   * @param options Debug options and where the page states are.
   * @throws {RangeError} If the array or the page states are misaligned or not entirely in RAM.
   */
  constructor(
    memory: PhysicalMemory,
    base: PhysAddr,
    frameCount: number,
    options: FrameMetadataOptions = {},
  ) {
    const statesBase = options.pageStatesBase ??
      base + FrameMetadata.sizeBytes(frameCount);
    if (
      base % 4 !== 0 || !memory.isRam(base, FrameMetadata.sizeBytes(frameCount)) ||
      statesBase % 4 !== 0 ||
      !memory.isRam(statesBase, FrameMetadata.pageStatesSizeBytes(frameCount))
    ) {
      throw new RangeError(
        `Frame metadata at ${hex(base)} for ${frameCount} frames is misaligned or not in RAM`,
      );
    }
    this.memory = memory;
    this.base = base;
    this.frameCount = frameCount;
    this.#words = new Int32Array(memory.buffer, base, frameCount);
    this.#pageStates = new Int32Array(memory.buffer, statesBase, pageCountFor(frameCount));
    this.#sites = options.trackAllocationSites ? new Map() : undefined;
  }

  /**
   * Marks every frame unused by resetting the page states only: a few bytes
   * per 4 MiB of RAM are written, the array itself is not touched.
   */
  reset(): void {
    this.#pageStates.fill(PAGE_UNTOUCHED);
    this.#sites?.clear();
  }

  /**
   * How many metadata pages have been written (on first use); every other
   * page, untouched or unusable as a whole, is RAM the array has never touched.
   */
  get touchedPageCount(): number {
    let count = 0;
    for (const state of this.#pageStates) {
      if (state === PAGE_READY || state === PAGE_INITIALISING) count++;
    }
    return count;
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
    return this.#read(this.#slot(frame, "read metadata of"));
  }

  /**
   * Sets the words of a run of frames (initialisation and reservation).
   *
   * @param firstFrame The first frame.
   * @param frameCount How many frames.
   * @param value The word to store.
   */
  fill(firstFrame: number, frameCount: number, value: number): void {
    const end = firstFrame + frameCount;
    for (let start = firstFrame; start < end;) {
      const page = start >>> PAGE_SHIFT;
      const pageEnd = Math.min(end, (page + 1) << PAGE_SHIFT);
      // A whole page of one common value is a page state, not words.
      const isWholePage = start === page << PAGE_SHIFT &&
        (pageEnd === (page + 1) << PAGE_SHIFT || pageEnd === this.frameCount);
      const state = value === FRAME_UNUSED
        ? PAGE_UNTOUCHED
        : value === FRAME_UNUSABLE
        ? PAGE_UNUSABLE
        : PAGE_READY;
      if (!(isWholePage && state !== PAGE_READY && this.#setCommonState(page, state))) {
        this.#touch(page);
        this.#words.fill(value, start, pageEnd);
      }
      start = pageEnd;
    }
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
    // Checked before the touch, so that a bad frame in an unusable page does
    // not make the page resident.
    let seen = this.#read(slot);
    if (seen === FRAME_UNUSED) {
      this.#touch(slot >>> PAGE_SHIFT);
      seen = Atomics.compareExchange(this.#words, slot, FRAME_UNUSED, 1);
    }
    if (seen !== FRAME_UNUSED) {
      throw new KernelError(
        "FrameInUse",
        `Cannot acquire frame ${hex(frame)}: ${describe(seen)}, expected unused`,
      );
    }
  }

  /**
   * Marks a frame freed into a per-CPU cache: unused (0) becomes cached (-2).
   *
   * @param frame The frame.
   * @throws {KernelError} `DoubleFree` if it is cached already; `FrameInUse`
   *   if a page handle holds it; `InvalidFrame` if it is unusable.
   */
  markCached(frame: FrameNumber): void {
    const slot = this.#slot(frame, "cache");
    let seen = this.#read(slot);
    if (seen === FRAME_UNUSED) {
      this.#touch(slot >>> PAGE_SHIFT);
      seen = Atomics.compareExchange(this.#words, slot, FRAME_UNUSED, FRAME_CACHED);
    }
    if (seen === FRAME_UNUSED) return;
    const reason = `Cannot free frame ${hex(frame)}: ${describe(seen)}`;
    throw new KernelError(
      seen === FRAME_CACHED
        ? "DoubleFree"
        : seen === FRAME_UNUSABLE
        ? "InvalidFrame"
        : "FrameInUse",
      reason,
    );
  }

  /**
   * Takes a frame out of a per-CPU cache: cached (-2) becomes unused (0).
   *
   * @param frame The frame.
   * @throws {KernelError} `FrameInUse` if the frame is not marked cached (a
   *   cache holding a frame it should not: its state is corrupt).
   */
  unmarkCached(frame: FrameNumber): void {
    const slot = this.#slot(frame, "uncache");
    // A cached frame's page was touched when it was marked: its word is in RAM.
    if (
      this.#pageStates[slot >>> PAGE_SHIFT] !== PAGE_READY ||
      Atomics.compareExchange(this.#words, slot, FRAME_CACHED, FRAME_UNUSED) !== FRAME_CACHED
    ) {
      throw new KernelError(
        "FrameInUse",
        `Cannot take frame ${hex(frame)} from a per-CPU cache: ${describe(this.#read(slot))}`,
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
      const count = this.#read(slot);
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
      const count = this.#read(slot);
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
      if (this.#pageStates[slot >>> PAGE_SHIFT] !== PAGE_READY) {
        slot = (((slot >>> PAGE_SHIFT) + 1) << PAGE_SHIFT) - 1; // skip the untouched page
        continue;
      }
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

  /**
   * The frames marked cached (in a per-CPU cache), lowest first. Scans the
   * written pages of the array, so it is meant for invariant checks.
   *
   * @returns The frames.
   */
  cachedFrames(): FrameNumber[] {
    const words = this.#words;
    const cached: FrameNumber[] = [];
    for (let page = 0; page < this.#pageStates.length; page++) {
      if (this.#pageStates[page] !== PAGE_READY) continue;
      const end = Math.min(words.length, (page + 1) << PAGE_SHIFT);
      for (let slot = page << PAGE_SHIFT; slot < end; slot++) {
        if (words[slot] === FRAME_CACHED) cached.push(slot as FrameNumber);
      }
    }
    return cached;
  }

  /**
   * The word of the frame at `slot`: from RAM if its page is ready, else the
   * page's common value. A plain load: a 32-bit word is never torn, and every
   * update of it is a compare-exchange that checks what it read.
   */
  #read(slot: number): number {
    const state = this.#pageStates[slot >>> PAGE_SHIFT];
    if (state === PAGE_READY) return this.#words[slot];
    return state === PAGE_UNUSABLE ? FRAME_UNUSABLE : FRAME_UNUSED;
  }

  /**
   * Makes page `page`, not yet written, read as all `state` (untouched or
   * unusable) without writing its words. Returns false if the page is already
   * written or being written (the caller then writes the words).
   */
  #setCommonState(page: number, state: number): boolean {
    const states = this.#pageStates;
    // Another CPU may be touching the page: the state word has concurrent writers.
    for (;;) {
      const old = states[page];
      if (old !== PAGE_UNTOUCHED && old !== PAGE_UNUSABLE) return false;
      if (Atomics.compareExchange(states, page, old, state) === old) return true;
    }
  }

  /**
   * Makes the metadata page `page` ready to be written: the first time, its
   * words get the page's common value (0, or -1 for an unusable page). The
   * CPU that wins the compare-exchange writes them; any other waits.
   */
  #touch(page: number): void {
    const states = this.#pageStates;
    if (states[page] === PAGE_READY) return;
    // Another CPU may be touching the same page, or setting its common state:
    // the state word has concurrent writers.
    for (;;) {
      const old = Atomics.load(states, page);
      if (old === PAGE_READY) return;
      if (old === PAGE_INITIALISING) continue; // another CPU is writing the words (microseconds)
      if (Atomics.compareExchange(states, page, old, PAGE_INITIALISING) === old) {
        const first = page << PAGE_SHIFT;
        const value = old === PAGE_UNUSABLE ? FRAME_UNUSABLE : FRAME_UNUSED;
        this.#words.fill(value, first, Math.min(this.frameCount, first + FRAMES_PER_METADATA_PAGE));
        Atomics.store(states, page, PAGE_READY);
        return;
      }
    }
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

/** Metadata pages (and so page-state words) for `frameCount` frames. */
function pageCountFor(frameCount: number): number {
  return Math.ceil(frameCount / FRAMES_PER_METADATA_PAGE);
}

function describe(value: number): string {
  if (value === FRAME_CACHED) return "frame is free, in a per-CPU cache";
  if (value === FRAME_UNUSABLE) return "frame is reserved or outside every pool";
  if (value === FRAME_UNUSED) return "reference count is already 0";
  return `held by ${plural(value, "page handle")}`;
}
