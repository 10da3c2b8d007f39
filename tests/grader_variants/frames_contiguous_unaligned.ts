/**
 * Broken on purpose: allocateContiguous() ignores the alignment it is asked for.
 *
 * @module
 */

import { bitmapFrames } from "./_bitmap_frames.ts";

export default bitmapFrames("contiguous-unaligned");
