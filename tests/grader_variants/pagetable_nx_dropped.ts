/**
 * Broken on purpose: the stock mapper, except that map() drops
 * PAGE_NO_EXECUTE, so no page it maps has XD (bit 63) set.
 *
 * @module
 */

import { createStockPageMapper, PAGE_NO_EXECUTE, type PageMapperFactory } from "../../sdk/mod.ts";

const createMapper: PageMapperFactory = (env) => {
  const stock = createStockPageMapper(env);
  return {
    get pml4Addr() {
      return stock.pml4Addr;
    },
    map: (va, pa, flags, size) => stock.map(va, pa, flags & ~PAGE_NO_EXECUTE, size),
    unmap: (va, size) => stock.unmap(va, size),
    protect: (va, flags, size) => stock.protect(va, flags, size),
    translate: (va) => stock.translate(va),
    [Symbol.dispose]: () => stock[Symbol.dispose](),
  };
};
export default createMapper;
