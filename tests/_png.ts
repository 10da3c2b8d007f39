/**
 * A minimal PNG reader for screenshot checks: the signature, the IHDR
 * fields, and the pixels of 8-bit RGB or RGBA images (what Chromium writes),
 * inflated with the platform's DecompressionStream and unfiltered per
 * scanline (PNG spec, sections 5, 9 and 11.2.2).
 *
 * @module
 */

/** The eight bytes every PNG file starts with. */
export const PNG_SIGNATURE: readonly number[] = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The image header (IHDR). */
export interface PngHeader {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** Bits per sample. */
  readonly bitDepth: number;
  /** 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA. */
  readonly colorType: number;
  /** 0 or 1 (Adam7). */
  readonly interlace: number;
}

/** A decoded image: RGBA bytes, row by row. */
export interface PngImage extends PngHeader {
  /** width * height * 4 bytes. */
  readonly rgba: Uint8Array;
}

/** Whether `bytes` starts with the PNG signature. */
export function hasPngSignature(bytes: Uint8Array): boolean {
  return PNG_SIGNATURE.every((byte, i) => bytes[i] === byte);
}

/** Reads the IHDR chunk, which must come first. Throws if the file is not a PNG. */
export function readPngHeader(bytes: Uint8Array): PngHeader {
  if (!hasPngSignature(bytes)) throw new Error("Not a PNG file: bad signature");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = String.fromCharCode(...bytes.subarray(12, 16));
  if (type !== "IHDR") throw new Error(`Not a PNG file: first chunk is ${type}`);
  return {
    width: view.getUint32(16),
    height: view.getUint32(20),
    bitDepth: bytes[24],
    colorType: bytes[25],
    interlace: bytes[28],
  };
}

/** Decodes an 8-bit, non-interlaced RGB or RGBA PNG. */
export async function decodePng(bytes: Uint8Array): Promise<PngImage> {
  const header = readPngHeader(bytes);
  const channels = header.colorType === 6 ? 4 : header.colorType === 2 ? 3 : 0;
  if (channels === 0 || header.bitDepth !== 8 || header.interlace !== 0) {
    throw new Error(
      `Unsupported PNG: color type ${header.colorType}, depth ${header.bitDepth}, ` +
        `interlace ${header.interlace}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const idat: Uint8Array<ArrayBuffer>[] = [];
  for (let offset = 8; offset + 8 <= bytes.length;) {
    const length = view.getUint32(offset);
    const type = String.fromCharCode(...bytes.subarray(offset + 4, offset + 8));
    if (type === "IDAT") idat.push(bytes.slice(offset + 8, offset + 8 + length));
    if (type === "IEND") break;
    offset += 12 + length;
  }
  const stream = new Blob(idat).stream().pipeThrough(new DecompressionStream("deflate"));
  const raw = new Uint8Array(await new Response(stream).arrayBuffer());
  const { width, height } = header;
  const stride = width * channels;
  if (raw.length < height * (stride + 1)) throw new Error("PNG image data is truncated");
  const rgba = new Uint8Array(width * height * 4);
  let previous = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const current = new Uint8Array(stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? current[i - channels] : 0;
      const b = previous[i];
      const c = i >= channels ? previous[i - channels] : 0;
      let predictor = 0;
      if (filter === 1) predictor = a;
      else if (filter === 2) predictor = b;
      else if (filter === 3) predictor = (a + b) >>> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      current[i] = (line[i] + predictor) & 0xff;
    }
    for (let x = 0; x < width; x++) {
      const out = (y * width + x) * 4;
      rgba[out] = current[x * channels];
      rgba[out + 1] = current[x * channels + 1];
      rgba[out + 2] = current[x * channels + 2];
      rgba[out + 3] = channels === 4 ? current[x * channels + 3] : 255;
    }
    previous = current;
  }
  return { ...header, rgba };
}

/** How many pixels have exactly the colour `#rrggbb`. */
export function countColor(image: PngImage, hexColor: string): number {
  const value = parseInt(hexColor.slice(1), 16);
  const r = value >>> 16;
  const g = (value >>> 8) & 0xff;
  const b = value & 0xff;
  let count = 0;
  const { rgba } = image;
  for (let i = 0; i < rgba.length; i += 4) {
    if (rgba[i] === r && rgba[i + 1] === g && rgba[i + 2] === b) count++;
  }
  return count;
}
