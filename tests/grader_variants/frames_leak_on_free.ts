/**
 * Broken on purpose: freeContiguous() frees every frame of the run but the last.
 *
 * @module
 */

import { bitmapFrames } from "./_bitmap_frames.ts";

export default bitmapFrames("leak-on-free");
