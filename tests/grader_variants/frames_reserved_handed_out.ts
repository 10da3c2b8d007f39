/**
 * Broken on purpose: examples/bitmap_frames.ts without the boot reservations
 * (first MiB, kernel image, boot information, module), so they start free.
 *
 * @module
 */

import type { FrameProviderFactory } from "../../sdk/mod.ts";
import createBitmapFrames from "../../examples/bitmap_frames.ts";

const createFrames: FrameProviderFactory = (env) =>
  createBitmapFrames({ ...env, reservations: [] });
export default createFrames;
