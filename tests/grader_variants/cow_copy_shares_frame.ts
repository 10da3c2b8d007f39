/**
 * Broken on purpose: on a write to a shared copy-on-write page, the policy
 * makes the page writable in place instead of copying it, so the writer
 * keeps sharing the frame and the other side sees its writes. It counts
 * those as reuses (what it did).
 *
 * @module
 */

import {
  type FrameNumber,
  PAGE_COPY_ON_WRITE,
  PAGE_SIZE_4K,
  PAGE_WRITABLE,
  PF_PRESENT,
  PF_WRITE,
} from "../../sdk/mod.ts";
import { wrappedPolicy } from "./_wrapped_policy.ts";

export default wrappedPolicy((env) => {
  let inPlace = 0;
  return {
    before(fault, space) {
      if ((fault.errorCode & (PF_PRESENT | PF_WRITE)) !== (PF_PRESENT | PF_WRITE)) return undefined;
      const leaf = space?.mapping(fault.address);
      if (space === undefined || leaf === undefined || (leaf.flags & PAGE_COPY_ON_WRITE) === 0) {
        return undefined;
      }
      if (env.frames.metadata.refcount((leaf.physAddr / PAGE_SIZE_4K) as FrameNumber) < 2) {
        return undefined;
      }
      space.protect(leaf.virtAddr, (leaf.flags | PAGE_WRITABLE) & ~PAGE_COPY_ON_WRITE);
      inPlace++;
      return "retry";
    },
    counts: (stock) => ({ ...stock, copyOnWriteReuses: stock.copyOnWriteReuses + inPlace }),
  };
});
