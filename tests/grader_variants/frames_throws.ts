/**
 * Broken on purpose: examples/bitmap_frames.ts, except that freeContiguous()
 * of more than eight frames reads a record that does not exist and throws a
 * TypeError.
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
      if (frameCount > 8) {
        const runs: { first: number }[] = [];
        return void runs[frameCount].first; // TypeError: the bug
      }
      frames.freeContiguous(frame, frameCount);
    },
  });
};
export default createFrames;
