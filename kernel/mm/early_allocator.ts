/**
 * The early (bump) frame allocator: the first allocator the kernel has, used
 * only until the frame allocator has placed its own metadata in RAM.
 *
 * Like gopher-os's boot memory allocator and Asterinas's early allocator it
 * keeps no per-frame state: it walks the usable memory-map regions, skips the
 * excluded ranges (the first 1 MiB, the kernel image, the multiboot2 boot
 * information, modules), and bumps a cursor. It hands out frames top-down,
 * from the end of the highest usable region, as Linux's memblock does, so that
 * low memory (which legacy DMA and the AP start-up trampoline need) stays
 * free. Freeing is not possible; once the frame allocator is running the early
 * allocator is retired, and everything it handed out stays reserved.
 *
 * @module
 */

import { type FrameNumber, PAGE_SIZE_4K } from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";

/** A range of physical addresses: `length` bytes starting at byte `base`. */
export interface PhysRange {
  /** First byte of the range. */
  readonly base: number;
  /** Length of the range in bytes. */
  readonly length: number;
}

/** One stretch of whole frames the early allocator may still hand out. */
interface FreeSpan {
  /** First frame of the span. */
  readonly startFrame: number;
  /** One past the last frame not yet handed out (the bump cursor). */
  endFrame: number;
}

/**
 * A bump allocator over usable memory minus excluded ranges. Usable regions
 * are rounded inward to whole frames and exclusions outward, so a partially
 * usable frame is never handed out.
 *
 * @example
 * ```ts
 * import { EarlyFrameAllocator } from "./early_allocator.ts";
 * const early = new EarlyFrameAllocator(
 *   [{ base: 0, length: 64 * 2 ** 20 }],
 *   [{ base: 0, length: 2 ** 20 }],
 * );
 * const frame = early.allocate(4, 1); // 4 frames at the top of the 64 MiB
 * const handedOut = early.retire(); // [{ base: frame * 4096, length: 16384 }]
 * ```
 */
export class EarlyFrameAllocator {
  /** The usable memory-map regions this allocator was built over, as given. */
  readonly usableRegions: readonly PhysRange[];
  /** The ranges it never hands out (and the frame allocator keeps reserved), as given. */
  readonly exclusions: readonly PhysRange[];
  /** Free spans, highest first; the cursor consumes them from the end downward. */
  readonly #spans: FreeSpan[];
  /** Index into #spans of the span being consumed. */
  #spanIndex = 0;
  /** Ranges handed out, in order, with adjacent ones merged. */
  readonly #handedOut: { base: number; length: number }[] = [];
  #isRetired = false;

  /**
   * Creates an early allocator.
   *
   * @param usableRegions The usable (available RAM) regions of the memory map, in bytes.
   * @param exclusions Ranges inside usable regions that must never be handed out.
   * @throws {RangeError} If a range has a negative or non-integer base or length.
   */
  constructor(usableRegions: readonly PhysRange[], exclusions: readonly PhysRange[] = []) {
    for (const range of [...usableRegions, ...exclusions]) checkRange(range);
    this.usableRegions = usableRegions.map(({ base, length }) => ({ base, length }));
    this.exclusions = exclusions.map(({ base, length }) => ({ base, length }));
    this.#spans = freeSpans(this.usableRegions, this.exclusions);
  }

  /** Whether {@linkcode EarlyFrameAllocator.retire} has been called. */
  get isRetired(): boolean {
    return this.#isRetired;
  }

  /** The number of frames handed out so far. */
  get allocatedFrameCount(): number {
    return this.#handedOut.reduce((sum, range) => sum + range.length / PAGE_SIZE_4K, 0);
  }

  /** The ranges handed out so far (whole frames, adjacent ones merged), highest first. */
  get allocatedRanges(): readonly PhysRange[] {
    return this.#handedOut.map(({ base, length }) => ({ base, length }));
  }

  /**
   * Hands out `frameCount` contiguous frames, the highest that fit.
   *
   * @param frameCount How many frames, at least 1.
   * @param alignFrames The first frame number is a multiple of this (a positive integer).
   * @returns The first frame of the run.
   * @throws {KernelError} `OutOfMemory` if no remaining usable span holds the run;
   *   `UseAfterDispose` if the allocator has been retired.
   * @throws {RangeError} If `frameCount` or `alignFrames` is not a positive integer.
   */
  allocate(frameCount: number, alignFrames = 1): FrameNumber {
    if (this.#isRetired) {
      throw new KernelError(
        "UseAfterDispose",
        "Cannot allocate from the early frame allocator: already retired",
      );
    }
    if (!Number.isSafeInteger(frameCount) || frameCount < 1) {
      throw new RangeError(`Invalid frame count ${frameCount}: must be a positive integer`);
    }
    if (!Number.isSafeInteger(alignFrames) || alignFrames < 1) {
      throw new RangeError(`Invalid alignment ${alignFrames} frames: must be a positive integer`);
    }
    // A bump allocator never goes back: spans above the one that serves this
    // request are abandoned (their rest stays free for the frame allocator).
    // A request that nothing serves abandons nothing.
    for (let index = this.#spanIndex; index < this.#spans.length; index++) {
      const span = this.#spans[index];
      const startFrame = Math.floor((span.endFrame - frameCount) / alignFrames) * alignFrames;
      if (startFrame >= span.startFrame) {
        this.#spanIndex = index;
        span.endFrame = startFrame;
        this.#record(startFrame * PAGE_SIZE_4K, frameCount * PAGE_SIZE_4K);
        return startFrame as FrameNumber;
      }
    }
    throw new KernelError(
      "OutOfMemory",
      `Cannot allocate ${frameCount} early frames aligned to ${alignFrames}: no usable span left`,
    );
  }

  /**
   * Retires the allocator: every later {@linkcode EarlyFrameAllocator.allocate}
   * throws. The caller must keep the returned ranges reserved for good.
   *
   * @returns The ranges handed out, as {@linkcode EarlyFrameAllocator.allocatedRanges}.
   * @throws {KernelError} `UseAfterDispose` if it was already retired.
   */
  retire(): readonly PhysRange[] {
    if (this.#isRetired) {
      throw new KernelError("UseAfterDispose", "Cannot retire the early frame allocator twice");
    }
    this.#isRetired = true;
    return this.allocatedRanges;
  }

  #record(base: number, length: number): void {
    const last = this.#handedOut.at(-1);
    // Top-down bumping makes a new range end where the previous one starts.
    if (last !== undefined && base + length === last.base) {
      last.base = base;
      last.length += length;
    } else {
      this.#handedOut.push({ base, length });
    }
  }
}

/**
 * The whole frames inside a range (rounded inward), as usable memory is.
 *
 * @param range A physical range.
 * @returns Frames [firstFrame, endFrame); empty when endFrame <= firstFrame.
 */
export function framesInside(range: PhysRange): { firstFrame: number; endFrame: number } {
  return {
    firstFrame: Math.ceil(range.base / PAGE_SIZE_4K),
    endFrame: Math.floor((range.base + range.length) / PAGE_SIZE_4K),
  };
}

/**
 * Every frame a range touches (rounded outward), as reservations are.
 *
 * @param range A physical range.
 * @returns Frames [firstFrame, endFrame).
 */
export function framesTouching(range: PhysRange): { firstFrame: number; endFrame: number } {
  return {
    firstFrame: Math.floor(range.base / PAGE_SIZE_4K),
    endFrame: Math.ceil((range.base + range.length) / PAGE_SIZE_4K),
  };
}

function checkRange(range: PhysRange): void {
  if (
    !Number.isSafeInteger(range.base) || range.base < 0 ||
    !Number.isSafeInteger(range.length) || range.length < 0
  ) {
    throw new RangeError(
      `Invalid physical range base ${String(range.base)} length ${String(range.length)}`,
    );
  }
}

/** The usable frames minus excluded frames, as spans sorted highest first. */
function freeSpans(usable: readonly PhysRange[], exclusions: readonly PhysRange[]): FreeSpan[] {
  const excluded = exclusions.map(framesTouching).filter((r) => r.endFrame > r.firstFrame)
    .sort((a, b) => a.firstFrame - b.firstFrame);
  const spans: FreeSpan[] = [];
  for (const region of usable) {
    const { firstFrame, endFrame } = framesInside(region);
    let start = firstFrame;
    for (const cut of excluded) {
      if (cut.endFrame <= start || cut.firstFrame >= endFrame) continue;
      if (cut.firstFrame > start) spans.push({ startFrame: start, endFrame: cut.firstFrame });
      start = Math.max(start, cut.endFrame);
    }
    if (endFrame > start) spans.push({ startFrame: start, endFrame });
  }
  return spans.sort((a, b) => b.startFrame - a.startFrame);
}
