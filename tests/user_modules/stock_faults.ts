/**
 * The stock page-fault policy as a `--faults` module, for the tests: the
 * kernel then reaches it only through the loader's guard, as it would a
 * user's policy.
 *
 * @module
 */

import { createStockPageFaultPolicy } from "../../sdk/mod.ts";

export default createStockPageFaultPolicy;
