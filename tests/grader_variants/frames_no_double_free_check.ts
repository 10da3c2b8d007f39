/**
 * Broken on purpose: free() does not check that the frame is allocated, so a double free counts a frame free twice.
 *
 * @module
 */

import { bitmapFrames } from "./_bitmap_frames.ts";

export default bitmapFrames("no-double-free-check");
