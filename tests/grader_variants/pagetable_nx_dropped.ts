/**
 * Broken on purpose: the stock mapper, except that map() drops
 * PAGE_NO_EXECUTE, so no page it maps has XD (bit 63) set.
 *
 * @module
 */

import { withOverrides } from "../../lib/mod.ts";
import { createStockPageMapper, PAGE_NO_EXECUTE, type PageMapperFactory } from "../../sdk/mod.ts";

const createMapper: PageMapperFactory = (env) => {
  const stock = createStockPageMapper(env);
  return withOverrides(stock, {
    map: (va, pa, flags, size) => stock.map(va, pa, flags & ~PAGE_NO_EXECUTE, size),
  });
};
export default createMapper;
