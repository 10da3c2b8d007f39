/**
 * Broken on purpose: examples/bitmap_frames.ts, except that free() does not
 * check that the frame is allocated, so a double free is accepted and
 * counts a frame free twice (stats() reports one free frame too many).
 *
 * @module
 */

import { withOverrides } from "../../lib/mod.ts";
import type { FrameNumber, FrameProviderFactory } from "../../sdk/mod.ts";
import createBitmapFrames from "../../examples/bitmap_frames.ts";

const createFrames: FrameProviderFactory = (env) => {
  const frames = createBitmapFrames(env);
  let countedTwice = 0;
  return withOverrides(frames, {
    free(frame: FrameNumber) {
      if (frames.stateOf(frame) === "free") countedTwice++;
      else frames.free(frame);
    },
    stats() {
      const stats = frames.stats();
      return {
        ...stats,
        freeFrames: stats.freeFrames + countedTwice,
        allocatedFrames: stats.allocatedFrames - countedTwice,
      };
    },
  });
};
export default createFrames;
