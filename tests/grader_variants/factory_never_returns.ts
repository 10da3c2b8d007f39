/**
 * Broken on purpose: a `--frames` module whose factory never returns, so
 * the grader cannot even load it: one line and exit status 2.
 *
 * @module
 */

import type { FrameProviderFactory } from "../../sdk/mod.ts";

const createFrames: FrameProviderFactory = () => {
  for (;;) {
    // The bug: nothing ever ends this loop.
  }
};
export default createFrames;
