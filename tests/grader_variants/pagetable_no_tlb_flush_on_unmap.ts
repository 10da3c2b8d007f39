/**
 * Broken on purpose: the stock mapper, except that unmap() never executes
 * INVLPG, so the TLB keeps translating an unmapped page.
 *
 * @module
 */

import { createStockPageMapper, type PageMapperFactory } from "../../sdk/mod.ts";

const createMapper: PageMapperFactory = (env) => {
  let isUnmapping = false;
  const cpu = new Proxy(env.cpu, {
    get(target, property) {
      if (property === "invlpg") {
        return (va: Parameters<typeof target.invlpg>[0]) => {
          if (!isUnmapping) target.invlpg(va);
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const stock = createStockPageMapper({ ...env, cpu });
  return {
    get pml4Addr() {
      return stock.pml4Addr;
    },
    map: (va, pa, flags, size) => stock.map(va, pa, flags, size),
    unmap(va, size) {
      isUnmapping = true;
      try {
        return stock.unmap(va, size);
      } finally {
        isUnmapping = false;
      }
    },
    protect: (va, flags, size) => stock.protect(va, flags, size),
    translate: (va) => stock.translate(va),
    [Symbol.dispose]: () => stock[Symbol.dispose](),
  };
};
export default createMapper;
