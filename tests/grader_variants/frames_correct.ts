/**
 * A correct bitmap frame allocator (next fit): the grader's positive control.
 *
 * @module
 */

import { bitmapFrames } from "./_bitmap_frames.ts";

export default bitmapFrames("none");
