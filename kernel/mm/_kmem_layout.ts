/**
 * The RAM layout of the kmem heap: byte offsets of every field the heap keeps
 * in simulated RAM, the magic numbers that label its structures, and the
 * size-class table (constant configuration, like a table compiled into a real
 * kernel). Each structure's offsets are given in bytes and, with a `_W`
 * suffix, in 32-bit words, the unit `memory.u32` is indexed in.
 *
 * ```
 * root descriptor (1+ contiguous frames, taken at create)
 *   0x000  header: magic "KMEM", counters (see ROOT_*)
 *   0x080  24 size-class records, 32 bytes each (see CLASS_*)
 *   0x380  TLSF second-level bitmaps, one u32 per first-level index
 *   0x400  TLSF free-list heads, u64 physical addresses, [fl][sl]
 *   0xe00  owner-table directory: per 4 MiB of physical space,
 *          [leaf frame + 1, frames owned in that leaf]
 * owner-table leaf (1 frame): 1024 u32 entries, one per frame of its 4 MiB:
 *          0 = not the heap's, else head frame + 1 of the slab or arena
 * slab (1, 2, 4 or 8 frames): header, then objects of one size class
 *   0x00 magic "SLAB", class, free count, free-list head (offset),
 *        bump offset, next / prev slab (frame + 1), frame count
 *   0x20 live-start bitmap: bit i set = a live object starts at byte 16 * i
 *   free object: u32 offset of the next free object (0 = end)
 * arena (16+ contiguous frames): header, bitmap, boundary-tag blocks
 *   0x00 magic "AREN", frame count, first block offset, live blocks, capacity
 *   0x40 live-start bitmap: bit i set = a live block header is at byte 16 * i
 *   block: size | in-use bit, previous block's size, magic "BLOK",
 *          requested bytes; payload from +16; a free block holds its TLSF
 *          links (u64 next, u64 prev) at +16 and +24
 *   sentinel (last 16 bytes): size 0, in use, previous block's size
 * ```
 *
 * @module
 */

/** Size of a frame, in bytes. */
export const FRAME_BYTES = 4096;
/** Words (u32) per frame. */
export const FRAME_WORDS = FRAME_BYTES / 4;
/** Every allocation is aligned to this many bytes, and sized in multiples of it. */
export const GRANULE_BYTES = 16;

/** "KMEM" read as a little-endian u32: labels the root descriptor. */
export const ROOT_MAGIC = 0x4d454d4b;
/** "SLAB" read as a little-endian u32: labels a slab header. */
export const SLAB_MAGIC = 0x42414c53;
/** "AREN" read as a little-endian u32: labels an arena header. */
export const ARENA_MAGIC = 0x4e455241;
/** "BLOK" read as a little-endian u32: labels a block header inside an arena. */
export const BLOCK_MAGIC = 0x4b4f4c42;

/** Byte written over freed memory in debug mode (Linux's POISON_FREE). */
export const POISON_FREE = 0x6b;
/** Byte written over freshly allocated memory in debug mode (Linux's POISON_INUSE). */
export const POISON_ALLOC = 0x5a;

// Root descriptor header, word offsets.
/** Root: magic "KMEM". */
export const ROOT_MAGIC_W = 0;
/** Root: frames in the root descriptor. */
export const ROOT_FRAME_COUNT_W = 1;
/** Root: entries in the owner-table directory. */
export const ROOT_DIRECTORY_ENTRIES_W = 2;
/** Root: every frame the heap holds (root, leaves, slabs, arenas). */
export const ROOT_FRAMES_HELD_W = 3;
/** Root: frames holding owner-table leaves. */
export const ROOT_LEAF_FRAMES_W = 4;
/** Root: live allocations. */
export const ROOT_LIVE_W = 5;
/** Root: successful allocations since creation, u64 (low word first). */
export const ROOT_ALLOCATIONS_W = 6;
/** Root: frees since creation, u64 (low word first). */
export const ROOT_FREES_W = 8;
/** Root: usable bytes of live large blocks, u64 (low word first). */
export const ROOT_LARGE_BYTES_W = 10;
/** Root: live large blocks. */
export const ROOT_LARGE_LIVE_W = 12;
/** Root: the cached empty arena, head frame + 1 (0 = none). */
export const ROOT_CACHED_ARENA_W = 13;
/** Root: arenas held (including the cached one). */
export const ROOT_ARENA_COUNT_W = 14;
/** Root: frames in arenas. */
export const ROOT_ARENA_FRAMES_W = 15;
/** Root: frames in slabs. */
export const ROOT_SLAB_FRAMES_W = 16;
/** Root: TLSF first-level bitmap (bit fl set = some list of row fl is non-empty). */
export const ROOT_TLSF_FL_BITMAP_W = 17;
/** Root: debug flags the heap was created with (ROOT_FLAG_*), for handles attached later. */
export const ROOT_FLAGS_W = 18;
/** Root flag: freed and fresh memory is poisoned (debug). */
export const ROOT_FLAG_POISON = 1;

/** Byte offset of the size-class records in the root. */
export const CLASS_TABLE_OFFSET = 0x80;
/** Words per size-class record. */
export const CLASS_RECORD_WORDS = 8;
/** Class record: first slab of the partial list, frame + 1 (0 = empty list). */
export const CLASS_PARTIAL_W = 0;
/** Class record: the cached empty slab, frame + 1 (0 = none). */
export const CLASS_CACHED_W = 1;
/** Class record: slabs held (partial, full and cached). */
export const CLASS_SLAB_COUNT_W = 2;
/** Class record: live objects. */
export const CLASS_IN_USE_W = 3;

/** Byte offset of the TLSF second-level bitmaps in the root. */
export const TLSF_SL_BITMAPS_OFFSET = 0x380;
/** Byte offset of the TLSF list heads (u64 each) in the root. */
export const TLSF_HEADS_OFFSET = 0x400;
/** Byte offset of the owner-table directory (8 bytes per entry) in the root. */
export const DIRECTORY_OFFSET = 0xe00;
/** Words per directory entry: leaf frame + 1, frames owned in the leaf. */
export const DIRECTORY_ENTRY_WORDS = 2;
/** Frames one owner-table leaf covers (one u32 entry each). */
export const FRAMES_PER_LEAF = FRAME_WORDS;

// Slab header, word offsets from the slab's first byte.
/** Slab: magic "SLAB". */
export const SLAB_MAGIC_W = 0;
/** Slab: size-class index. */
export const SLAB_CLASS_W = 1;
/** Slab: free objects (on the free list or never handed out). */
export const SLAB_FREE_COUNT_W = 2;
/** Slab: byte offset of the first free-list object (0 = empty list). */
export const SLAB_FREE_HEAD_W = 3;
/** Slab: byte offset of the first object never handed out. */
export const SLAB_BUMP_W = 4;
/** Slab: next slab on the class's partial list, frame + 1. */
export const SLAB_NEXT_W = 5;
/** Slab: previous slab on the class's partial list, frame + 1. */
export const SLAB_PREV_W = 6;
/** Slab: frames in the slab. */
export const SLAB_FRAME_COUNT_W = 7;
/** Slab: first word of the live-start bitmap. */
export const SLAB_BITMAP_W = 8;

// Arena header, word offsets from the arena's first byte.
/** Arena: magic "AREN". */
export const ARENA_MAGIC_W = 0;
/** Arena: frames in the arena. */
export const ARENA_FRAME_COUNT_W = 1;
/** Arena: byte offset of the first block. */
export const ARENA_FIRST_BLOCK_W = 2;
/** Arena: live blocks. */
export const ARENA_LIVE_BLOCKS_W = 3;
/** Arena: bytes from the first block to the sentinel. */
export const ARENA_CAPACITY_W = 4;
/** Arena: first word of the live-start bitmap. */
export const ARENA_BITMAP_W = 16;
/** Frames in an ordinary arena; larger requests get an arena of their own size. */
export const ARENA_DEFAULT_FRAMES = 16;

// Block header, word offsets from the block's first byte.
/** Block: size in bytes (header included), ORed with BLOCK_IN_USE. */
export const BLOCK_SIZE_W = 0;
/** Block: size of the block just before (0 for the first block). */
export const BLOCK_PREV_SIZE_W = 1;
/** Block: magic "BLOK". */
export const BLOCK_MAGIC_W = 2;
/** Block: bytes the caller asked for (0 while free). */
export const BLOCK_REQUESTED_W = 3;
/** Free block: TLSF next link, u64 physical address of a block (0 = end). */
export const BLOCK_NEXT_W = 4;
/** Free block: TLSF previous link, u64 physical address of a block (0 = none). */
export const BLOCK_PREV_W = 6;
/** In-use bit of a block's size word. */
export const BLOCK_IN_USE = 1;
/** Bytes of a block header; the payload follows it. */
export const BLOCK_HEADER_BYTES = 16;
/** Smallest block: a header and the two TLSF links. */
export const BLOCK_MIN_BYTES = 32;

/** Result of a free or size query: no live allocation starts at the address, nor ever did. */
export const NOT_ALLOCATED = -1;
/** Result of a free or size query: an allocation started at the address, but it is free. */
export const ALREADY_FREE = -2;

/** Largest request served from a slab, in bytes. */
export const SLAB_MAX_OBJECT_BYTES = 2048;

/** Object sizes of the size classes, in bytes (each a multiple of 16). */
const CLASS_SIZES = [
  16,
  32,
  48,
  64,
  80,
  96,
  112,
  128,
  160,
  192,
  224,
  256, //
  320,
  384,
  448,
  512,
  640,
  768,
  896,
  1024,
  1280,
  1536,
  1792,
  2048,
];
/** Number of size classes. */
export const CLASS_COUNT = CLASS_SIZES.length;
/** Object size of each class, in bytes. */
export const CLASS_OBJECT_BYTES: Uint32Array = new Uint32Array(CLASS_SIZES);
/** Frames per slab of each class. */
export const CLASS_SLAB_FRAMES: Uint32Array = new Uint32Array(CLASS_COUNT);
/** Byte offset of the first object in a slab of each class. */
export const CLASS_FIRST_OFFSET: Uint32Array = new Uint32Array(CLASS_COUNT);
/** Objects per slab of each class. */
export const CLASS_CAPACITY: Uint32Array = new Uint32Array(CLASS_COUNT);
/** Size class for a request of `16 * i - 15` to `16 * i` bytes, at index i. */
export const CLASS_FOR_GRANULES: Uint8Array = new Uint8Array(
  SLAB_MAX_OBJECT_BYTES / GRANULE_BYTES + 1,
);

/**
 * Chooses each class's slab geometry: the smallest slab of 1, 2, 4 or 8 frames
 * that holds at least 4 objects and wastes at most 1/16 of itself. Objects are
 * naturally aligned to the largest power of two dividing their size, so a
 * 2048-byte object is 2048-aligned and aligned requests can pick a class.
 */
function initClasses(): void {
  for (let c = 0; c < CLASS_COUNT; c++) {
    const objectBytes = CLASS_SIZES[c];
    const naturalAlignBytes = objectBytes & -objectBytes;
    for (let frameCount = 1;; frameCount *= 2) {
      const slabBytes = frameCount * FRAME_BYTES;
      const headerBytes = SLAB_BITMAP_W * 4 + slabBytes / 128;
      const first = Math.ceil(headerBytes / naturalAlignBytes) * naturalAlignBytes;
      const capacity = Math.floor((slabBytes - first) / objectBytes);
      const wasteBytes = slabBytes - capacity * objectBytes;
      if ((capacity >= 4 && wasteBytes * 16 <= slabBytes) || frameCount === 8) {
        CLASS_SLAB_FRAMES[c] = frameCount;
        CLASS_FIRST_OFFSET[c] = first;
        CLASS_CAPACITY[c] = capacity;
        break;
      }
    }
  }
  let c = 0;
  for (let granules = 0; granules < CLASS_FOR_GRANULES.length; granules++) {
    while (CLASS_SIZES[c] < granules * GRANULE_BYTES) c++;
    CLASS_FOR_GRANULES[granules] = c;
  }
}
initClasses();

/** Reads a u64 stored as two little-endian u32 words at word index `word`. */
export function readU64(u32: Uint32Array, word: number): number {
  return u32[word] + u32[word + 1] * 0x1_0000_0000;
}

/** Writes a non-negative safe integer as a u64 (two u32 words) at word index `word`. */
export function writeU64(u32: Uint32Array, word: number, value: number): void {
  // A Uint32Array store keeps the value modulo 2^32 and drops any fraction.
  u32[word] = value;
  u32[word + 1] = value / 0x1_0000_0000;
}

/** Adds `delta` (may be negative) to the u64 at word index `word`. */
export function addU64(u32: Uint32Array, word: number, delta: number): void {
  writeU64(u32, word, readU64(u32, word) + delta);
}
