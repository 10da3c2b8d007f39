/**
 * The kernel's own "binary": the image it ships to the boot loader. Its code
 * runs as TypeScript, so the image is a stand-in of realistic size that
 * starts with a real Multiboot2 OS header, the part a boot loader checks.
 *
 * ```
 * offset 0    u32 magic 0xe85250d6, u32 architecture 0 (i386),
 *             u32 header_length, u32 checksum (the four sum to 0 mod 2^32)
 * offset 16   information request tag: u16 type 1, u16 flags 0 (required),
 *             u32 size, u32 MBI tag types wanted (padded to 8 bytes)
 * then        end tag: u16 type 0, u16 flags 0, u32 size 8
 * then        a deterministic filler pattern standing in for code and data
 * ```
 *
 * The numbers are the kernel's own copy of the spec (as a real kernel has its
 * own `multiboot2.h`), so tests cross-check them against the loader's.
 *
 * @module
 */

/** Default size of the kernel image: 512 KiB. */
export const KERNEL_IMAGE_SIZE_BYTES = 512 * 1024;

const HEADER_MAGIC = 0xe85250d6;
const ARCHITECTURE_I386 = 0;
const HEADER_TAG_INFORMATION_REQUEST = 1;
const HEADER_TAG_END = 0;
const HEADER_TAG_ALIGN = 8;
/** MBI tags the kernel asks for: cmdline, basic meminfo, memory map, ACPI old RSDP. */
const REQUESTED_TAG_TYPES = [1, 4, 6, 14];
const SIGNATURE = "kernelsim kernel image";
/** The filler's period: (i * 167 + 13) & 0xff depends on i modulo 256 only. */
const FILLER_PERIOD_BYTES = 256;

/**
 * Builds the kernel image: a Multiboot2 header at offset 0 requesting the
 * command line, basic memory information, memory map and ACPI RSDP tags,
 * then a signature string and a deterministic filler.
 *
 * @param sizeBytes Image size: an integer large enough for the header and
 *   signature (default {@linkcode KERNEL_IMAGE_SIZE_BYTES}).
 * @returns The image bytes.
 * @throws {RangeError} If `sizeBytes` is too small or not an integer.
 * @example
 * ```ts
 * import { buildKernelImage } from "./image.ts";
 * const image = buildKernelImage();
 * console.assert(new DataView(image.buffer).getUint32(0, true) === 0xe85250d6);
 * ```
 */
export function buildKernelImage(sizeBytes: number = KERNEL_IMAGE_SIZE_BYTES): Uint8Array {
  const requestBytes = 8 + 4 * REQUESTED_TAG_TYPES.length;
  const requestPaddedBytes = Math.ceil(requestBytes / HEADER_TAG_ALIGN) * HEADER_TAG_ALIGN;
  const headerLengthBytes = 16 + requestPaddedBytes + 8;
  const signatureAt = headerLengthBytes;
  const minimumBytes = signatureAt + SIGNATURE.length + 1;
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < minimumBytes) {
    throw new RangeError(
      `Invalid kernel image size ${
        String(sizeBytes)
      }: must be an integer of at least ${minimumBytes}`,
    );
  }
  const image = new Uint8Array(sizeBytes);
  // The filler byte at i is (i * 167 + 13) & 0xff, which repeats every 256
  // bytes: one period written byte by byte, the rest copied in doubling
  // blocks. (Half a million steps of a JavaScript loop would have V8 compile
  // it with both optimizing compilers during every boot, which costs the
  // process megabytes of resident memory.)
  const periodEnd = Math.min(sizeBytes, headerLengthBytes + FILLER_PERIOD_BYTES);
  for (let i = headerLengthBytes; i < periodEnd; i++) image[i] = (i * 167 + 13) & 0xff;
  for (let filled = periodEnd - headerLengthBytes; headerLengthBytes + filled < sizeBytes;) {
    image.copyWithin(headerLengthBytes + filled, headerLengthBytes, headerLengthBytes + filled);
    filled *= 2;
  }
  const view = new DataView(image.buffer);
  view.setUint32(0, HEADER_MAGIC, true);
  view.setUint32(4, ARCHITECTURE_I386, true);
  view.setUint32(8, headerLengthBytes, true);
  view.setUint32(12, -(HEADER_MAGIC + ARCHITECTURE_I386 + headerLengthBytes) >>> 0, true);
  view.setUint16(16, HEADER_TAG_INFORMATION_REQUEST, true);
  view.setUint16(18, 0, true); // flags: bit 0 clear, the tags are required
  view.setUint32(20, requestBytes, true);
  REQUESTED_TAG_TYPES.forEach((type, index) => view.setUint32(24 + 4 * index, type, true));
  const endTagAt = 16 + requestPaddedBytes;
  view.setUint16(endTagAt, HEADER_TAG_END, true);
  view.setUint16(endTagAt + 2, 0, true);
  view.setUint32(endTagAt + 4, 8, true);
  image.set(new TextEncoder().encode(SIGNATURE), signatureAt);
  image[signatureAt + SIGNATURE.length] = 0;
  return image;
}
