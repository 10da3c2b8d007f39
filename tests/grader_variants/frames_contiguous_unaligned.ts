/**
 * Broken on purpose: examples/bitmap_frames.ts, except that
 * allocateContiguous() ignores the alignment it is asked for (a bad one is
 * still refused).
 *
 * @module
 */

import { withOverrides } from "../../lib/mod.ts";
import type { FrameProviderFactory } from "../../sdk/mod.ts";
import createBitmapFrames from "../../examples/bitmap_frames.ts";

const createFrames: FrameProviderFactory = (env) => {
  const frames = createBitmapFrames(env);
  return withOverrides(frames, {
    allocateContiguous(frameCount: number, alignFrames: number) {
      const isPowerOfTwo = Number.isSafeInteger(alignFrames) && alignFrames > 0 &&
        (alignFrames & (alignFrames - 1)) === 0;
      return frames.allocateContiguous(frameCount, isPowerOfTwo ? 1 : alignFrames);
    },
  });
};
export default createFrames;
