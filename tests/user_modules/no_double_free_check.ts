/**
 * A broken `--frames` module for the tests: the stock allocator, except that
 * `free()` of a frame that is already free is silently accepted, so the
 * kernel's self-test "frames: double free is detected" must fail.
 *
 * @module
 */

import {
  createStockFrameProvider,
  type FrameNumber,
  type FrameProviderFactory,
} from "../../sdk/mod.ts";

const createForgivingFrames: FrameProviderFactory = (env) => {
  const stock = createStockFrameProvider(env);
  return new Proxy(stock, {
    get(target, property) {
      if (property === "free") {
        return (frame: FrameNumber) => {
          if (target.stateOf(frame) !== "free") target.free(frame);
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
};
export default createForgivingFrames;
