/**
 * A broken `--frames` module for the tests: the stock allocator, except that
 * `free()` of a frame that is already free is silently accepted, so the
 * kernel's self-test "frames: double free is detected" must fail.
 *
 * @module
 */

import { withOverrides } from "../../lib/mod.ts";
import {
  createStockFrameProvider,
  type FrameNumber,
  type FrameProviderFactory,
} from "../../sdk/mod.ts";

const createForgivingFrames: FrameProviderFactory = (env) => {
  const stock = createStockFrameProvider(env);
  return withOverrides(stock, {
    free(frame: FrameNumber) {
      if (stock.stateOf(frame) !== "free") stock.free(frame);
    },
  });
};
export default createForgivingFrames;
