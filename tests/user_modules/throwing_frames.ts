/**
 * A broken `--frames` module for the tests: the stock allocator, except that
 * `allocate()` reads a property of undefined on its third call (while the page tables are built),
 * so the kernel panics naming the module and the call.
 *
 * @module
 */

import { withOverrides } from "../../lib/mod.ts";
import {
  createStockFrameProvider,
  type FrameNumber,
  type FrameProviderFactory,
} from "../../sdk/mod.ts";

const FAILING_CALL = 3;

const createThrowingFrames: FrameProviderFactory = (env) => {
  const stock = createStockFrameProvider(env);
  let calls = 0;
  const missing: { cursor?: { frame: FrameNumber } } = {};
  return withOverrides(stock, {
    allocate() {
      if (++calls === FAILING_CALL) return missing.cursor!.frame; // TypeError
      return stock.allocate();
    },
  });
};
export default createThrowingFrames;
