/**
 * Broken on purpose: examples/bitmap_frames.ts given each usable region's
 * end rounded up, so the last, partly usable frame is handed out.
 *
 * @module
 */

import { type FrameProviderFactory, PAGE_SIZE_4K } from "../../sdk/mod.ts";
import createBitmapFrames from "../../examples/bitmap_frames.ts";

const createFrames: FrameProviderFactory = (env) =>
  createBitmapFrames({
    ...env,
    usableRegions: env.usableRegions.map(({ base, length }) => ({
      base,
      length: Math.ceil((base + length) / PAGE_SIZE_4K) * PAGE_SIZE_4K - base,
    })),
  });
export default createFrames;
