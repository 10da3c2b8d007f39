/**
 * Broken on purpose: the stock heap, except that kmalloc() never returns
 * when asked for an alignment of 1 KiB or more (a search loop that does not
 * advance), so the grader's watchdog must stop it.
 *
 * @module
 */

import { withOverrides } from "../../lib/mod.ts";
import { createStockKernelHeap, type KernelHeapFactory } from "../../sdk/mod.ts";

const LOOPING_ALIGN_BYTES = 1024;

const createHeap: KernelHeapFactory = (env) => {
  const stock = createStockKernelHeap(env);
  return withOverrides(stock, {
    kmalloc(sizeBytes, options) {
      let candidate = 0;
      while ((options?.alignBytes ?? 0) >= LOOPING_ALIGN_BYTES) {
        candidate += 0; // the bug: the candidate never moves
      }
      return stock.kmalloc(sizeBytes + candidate, options);
    },
  });
};
export default createHeap;
