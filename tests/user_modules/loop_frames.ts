/**
 * A broken `--frames` module for the tests: the stock allocator, except that
 * `allocate()` never returns once the kernel has booted far enough to build
 * its heap (its third call), so the watchdog must stop it.
 *
 * @module
 */

import { withOverrides } from "../../lib/mod.ts";
import { createStockFrameProvider, type FrameProviderFactory } from "../../sdk/mod.ts";

const LOOPING_CALL = 3;

const createLoopingFrames: FrameProviderFactory = (env) => {
  const stock = createStockFrameProvider(env);
  let calls = 0;
  return withOverrides(stock, {
    allocate() {
      calls++;
      while (calls >= LOOPING_CALL) {
        // Never returns: the bug the watchdog is for.
      }
      return stock.allocate();
    },
  });
};
export default createLoopingFrames;
