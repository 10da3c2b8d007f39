/**
 * Broken on purpose: the stock mapper, except that map() sets US on every
 * page, so user mode can reach kernel pages.
 *
 * @module
 */

import { createStockPageMapper, PAGE_USER, type PageMapperFactory } from "../../sdk/mod.ts";

const createMapper: PageMapperFactory = (env) => {
  const stock = createStockPageMapper(env);
  return {
    get pml4Addr() {
      return stock.pml4Addr;
    },
    map: (va, pa, flags, size) => stock.map(va, pa, flags | PAGE_USER, size),
    unmap: (va, size) => stock.unmap(va, size),
    protect: (va, flags, size) => stock.protect(va, flags, size),
    translate: (va) => stock.translate(va),
    [Symbol.dispose]: () => stock[Symbol.dispose](),
  };
};
export default createMapper;
