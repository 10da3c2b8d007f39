/**
 * Broken on purpose: examples/bitmap_frames.ts, except that
 * freeContiguous() frees every frame of the run but the last.
 *
 * @module
 */

import { withOverrides } from "../../lib/mod.ts";
import type { FrameNumber, FrameProviderFactory } from "../../sdk/mod.ts";
import createBitmapFrames from "../../examples/bitmap_frames.ts";

const createFrames: FrameProviderFactory = (env) => {
  const frames = createBitmapFrames(env);
  return withOverrides(frames, {
    freeContiguous(frame: FrameNumber, frameCount: number) {
      frames.freeContiguous(frame, frameCount);
      // The bug: the last frame stays taken.
      frames.allocateSpecific((frame + frameCount - 1) as FrameNumber);
    },
  });
};
export default createFrames;
