/**
 * A broken `--frames` module for the tests: the stock allocator, except that
 * `allocate()` reads a property of undefined on its third call (while the page tables are built),
 * so the kernel panics naming the module and the call.
 *
 * @module
 */

import { createStockFrameProvider, type FrameProviderFactory } from "../../sdk/mod.ts";

const FAILING_CALL = 3;

const createThrowingFrames: FrameProviderFactory = (env) => {
  const stock = createStockFrameProvider(env);
  let calls = 0;
  const missing: { cursor?: { frame: number } } = {};
  return new Proxy(stock, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (property !== "allocate" || typeof value !== "function") {
        return typeof value === "function" ? value.bind(target) : value;
      }
      return () => {
        if (++calls === FAILING_CALL) return missing.cursor!.frame; // TypeError
        return value.call(target);
      };
    },
  });
};
export default createThrowingFrames;
