/**
 * The stock kmem heap as a `--heap` module, for the tests: the kernel then
 * reaches it only through the loader's guard, as it would a user's heap.
 *
 * @module
 */

import { createStockKernelHeap } from "../../sdk/mod.ts";

export default createStockKernelHeap;
