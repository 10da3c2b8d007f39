/**
 * Broken on purpose: rounds each usable region's end up, so the last, partly usable frame is handed out.
 *
 * @module
 */

import { bitmapFrames } from "./_bitmap_frames.ts";

export default bitmapFrames("off-by-one-pool-end");
