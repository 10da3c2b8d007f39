/**
 * Broken on purpose: freeContiguous() of more than eight frames reads a record that does not exist and throws a TypeError.
 *
 * @module
 */

import { bitmapFrames } from "./_bitmap_frames.ts";

export default bitmapFrames("throws-in-free-contiguous");
