/**
 * Broken on purpose: the stock mapper, except that unmap() never executes
 * INVLPG, so the TLB keeps translating an unmapped page.
 *
 * @module
 */

import { withOverrides } from "../../lib/mod.ts";
import { createStockPageMapper, type PageMapperFactory } from "../../sdk/mod.ts";

const createMapper: PageMapperFactory = (env) => {
  let isUnmapping = false;
  const cpu = withOverrides(env.cpu, {
    invlpg(va) {
      if (!isUnmapping) env.cpu.invlpg(va);
    },
  });
  const stock = createStockPageMapper({ ...env, cpu });
  return withOverrides(stock, {
    unmap(va, size) {
      isUnmapping = true;
      try {
        return stock.unmap(va, size);
      } finally {
        isUnmapping = false;
      }
    },
  });
};
export default createMapper;
