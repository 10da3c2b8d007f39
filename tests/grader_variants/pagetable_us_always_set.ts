/**
 * Broken on purpose: the stock mapper, except that map() sets US on every
 * page, so user mode can reach kernel pages.
 *
 * @module
 */

import { withOverrides } from "../../lib/mod.ts";
import { createStockPageMapper, PAGE_USER, type PageMapperFactory } from "../../sdk/mod.ts";

const createMapper: PageMapperFactory = (env) => {
  const stock = createStockPageMapper(env);
  return withOverrides(stock, {
    map: (va, pa, flags, size) => stock.map(va, pa, flags | PAGE_USER, size),
  });
};
export default createMapper;
