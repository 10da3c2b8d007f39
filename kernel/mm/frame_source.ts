/**
 * The contract between the physical frame allocator and its clients (the
 * kmem heap, page tables), so each can be built and tested on its own.
 *
 * @module
 */

import type { FrameNumber } from "../../hal/mod.ts";

/** Hands out and takes back physical frames. Every method may throw a KernelError. */
export interface FrameSource {
  /** Allocates one frame (the lowest free one); throws OutOfMemory. */
  allocate(): FrameNumber;
  /**
   * Allocates `frameCount` contiguous frames whose first frame number is a
   * multiple of `alignFrames`; throws OutOfMemory.
   */
  allocateContiguous(frameCount: number, alignFrames: number): FrameNumber;
  /** Frees one frame; throws DoubleFree or InvalidFrame. */
  free(frame: FrameNumber): void;
  /** Frees `frameCount` frames starting at `frame`; throws DoubleFree or InvalidFrame. */
  freeContiguous(frame: FrameNumber, frameCount: number): void;
}
