/**
 * A broken `--frames` module for the tests: the stock allocator, except that
 * `allocate()` never returns once the kernel has booted far enough to build
 * its heap (its third call), so the watchdog must stop it.
 *
 * @module
 */

import { createStockFrameProvider, type FrameProviderFactory } from "../../sdk/mod.ts";

const LOOPING_CALL = 3;

const createLoopingFrames: FrameProviderFactory = (env) => {
  const stock = createStockFrameProvider(env);
  let calls = 0;
  return new Proxy(stock, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (property !== "allocate" || typeof value !== "function") {
        return typeof value === "function" ? value.bind(target) : value;
      }
      return () => {
        calls++;
        while (calls >= LOOPING_CALL) {
          // Never returns: the bug the watchdog is for.
        }
        return value.call(target);
      };
    },
  });
};
export default createLoopingFrames;
