/**
 * Broken on purpose: the stock heap, except that blocks of 100 to 256 bytes
 * are handed out 16 bytes below where they start (unless that would leave
 * their page), so a block overlaps the end of the one before it. Sizes and
 * statistics stay consistent: only the addresses are wrong.
 *
 * @module
 */

import { withOverrides } from "../../lib/mod.ts";
import { createStockKernelHeap, type KernelHeapFactory, type VirtAddr } from "../../sdk/mod.ts";

const SHIFT_BYTES = 16;
const PAGE_BYTES = 4096;

const createHeap: KernelHeapFactory = (env) => {
  const stock = createStockKernelHeap(env);
  /** Handed-out address -> the stock heap's address. */
  const real = new Map<number, number>();
  const toReal = (va: VirtAddr) => (real.get(va) ?? va) as VirtAddr;
  return withOverrides(stock, {
    kmalloc(sizeBytes, options) {
      const va = stock.kmalloc(sizeBytes, options);
      if (options !== undefined || sizeBytes < 100 || sizeBytes > 256) return va;
      if (va % PAGE_BYTES === 0) return va;
      const shifted = va - SHIFT_BYTES;
      real.set(shifted, va);
      return shifted as VirtAddr;
    },
    kfree(va) {
      stock.kfree(toReal(va));
      real.delete(va);
    },
    usableSize: (va) => stock.usableSize(toReal(va)),
  });
};
export default createHeap;
