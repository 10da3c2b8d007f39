/**
 * Broken on purpose: forgets the boot reservations (first MiB, kernel image, boot information, module), so they start free.
 *
 * @module
 */

import { bitmapFrames } from "./_bitmap_frames.ts";

export default bitmapFrames("reserved-handed-out");
