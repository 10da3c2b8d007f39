/**
 * Broken on purpose: when the policy copies a shared page for a writer, it
 * never drops the writer's reference to the shared frame, so that frame's
 * count stays one too high and the frame is never freed.
 *
 * @module
 */

import { type FrameNumber, PAGE_SIZE_4K } from "../../sdk/mod.ts";
import { wrappedPolicy } from "./_wrapped_policy.ts";

export default wrappedPolicy((env) => {
  let sharedFrame = -1;
  return {
    before(fault, space) {
      sharedFrame = space?.mapping(fault.address)?.physAddr ?? -1;
      return undefined;
    },
    after(_fault, _space, copied) {
      // The stock policy dropped the reference after its copy: take it again.
      if (copied && sharedFrame >= 0) {
        env.frames.metadata.retain((sharedFrame / PAGE_SIZE_4K) as FrameNumber);
      }
    },
  };
});
