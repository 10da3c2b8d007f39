/**
 * Large blocks: the heap's allocations above 2048 bytes (or aligned to 4096),
 * carved out of arenas with boundary tags.
 *
 * An arena is 16 or more contiguous frames. Its blocks tile it from the first
 * block to a sentinel; each block header holds the block's size with an
 * in-use bit and the size of the block before it, so both neighbours of a
 * block are found in O(1) and a freed block merges with a free neighbour on
 * either side (Knuth's boundary tags, with the previous size kept in the next
 * header as in dlmalloc). Two free blocks are never adjacent. Free blocks are
 * indexed by size in a TLSF index, so allocation is O(1) too.
 *
 * A bitmap in the arena header has a bit per 16-byte granule, set where a
 * live block's header starts: a free checks it, so no pointer but a live
 * block's is ever freed. Telling a double free from a stray pointer is best
 * effort: a freed block's header, left in RAM after merging, says "free" and
 * gives ALREADY_FREE; once overwritten, the answer is NOT_ALLOCATED. A request too big for an
 * ordinary arena gets an arena of its own size. An arena that empties is
 * kept as the heap's one cached arena if there is none (and it is of the
 * ordinary size), and given back to the frame source otherwise.
 *
 * @module
 */

import type { PhysicalMemory } from "../../hal/mod.ts";
import { HeapCorruption } from "./_heap_corruption.ts";
import type { HeapFrames } from "./_heap_frames.ts";
import {
  addU64,
  ALREADY_FREE,
  ARENA_BITMAP_W,
  ARENA_CAPACITY_W,
  ARENA_DEFAULT_FRAMES,
  ARENA_FIRST_BLOCK_W,
  ARENA_FRAME_COUNT_W,
  ARENA_LIVE_BLOCKS_W,
  ARENA_MAGIC,
  ARENA_MAGIC_W,
  BLOCK_HEADER_BYTES,
  BLOCK_IN_USE,
  BLOCK_MAGIC,
  BLOCK_MAGIC_W,
  BLOCK_MIN_BYTES,
  BLOCK_PREV_SIZE_W,
  BLOCK_REQUESTED_W,
  BLOCK_SIZE_W,
  FRAME_BYTES,
  FRAME_WORDS,
  GRANULE_BYTES,
  NOT_ALLOCATED,
  POISON_ALLOC,
  POISON_FREE,
  ROOT_ARENA_COUNT_W,
  ROOT_ARENA_FRAMES_W,
  ROOT_CACHED_ARENA_W,
  ROOT_LARGE_BYTES_W,
  ROOT_LARGE_LIVE_W,
} from "./_kmem_layout.ts";
import { TlsfIndex } from "./_tlsf_index.ts";

/** Bytes of the arena header before its bitmap. */
const ARENA_HEADER_BYTES = ARENA_BITMAP_W * 4;
/** Bitmap bytes per arena frame: a bit per 16-byte granule. */
const BITMAP_BYTES_PER_FRAME = FRAME_BYTES / GRANULE_BYTES / 8;

/** One block of an arena, as the dump sees it. */
export interface BlockInfo {
  /** Physical address of the block header. */
  readonly address: number;
  /** Block size in bytes, header included. */
  readonly sizeBytes: number;
  /** Whether the block is allocated. */
  readonly isInUse: boolean;
  /** Bytes the caller asked for (0 for a free block). */
  readonly requestedBytes: number;
}

/** One arena, as the dump and the invariant check see it. */
export interface ArenaInfo {
  /** Frames in the arena. */
  readonly frameCount: number;
  /** Bytes from the first block to the sentinel. */
  readonly capacityBytes: number;
  /** Whether this is the heap's cached empty arena. */
  readonly isCached: boolean;
  /** The blocks, in address order. */
  readonly blocks: readonly BlockInfo[];
}

/** The arenas of one heap, all state in RAM. */
export class LargeBlocks {
  readonly #u8: Uint8Array;
  readonly #u32: Uint32Array;
  readonly #frames: HeapFrames;
  readonly #index: TlsfIndex;
  readonly #rootWord: number;
  readonly #isPoisoning: boolean;

  /**
   * Wraps the arena state of the root descriptor at `rootAddress`.
   *
   * @param memory The RAM the arenas live in.
   * @param frames Where arenas get and give back frames.
   * @param rootAddress Physical address of the root descriptor (zeroed at creation).
   * @param isPoisoning Whether to fill freed and fresh blocks with poison bytes.
   */
  constructor(
    memory: PhysicalMemory,
    frames: HeapFrames,
    rootAddress: number,
    isPoisoning: boolean,
  ) {
    this.#u8 = memory.u8;
    this.#u32 = memory.u32;
    this.#frames = frames;
    this.#index = new TlsfIndex(memory, rootAddress);
    this.#rootWord = rootAddress / 4;
    this.#isPoisoning = isPoisoning;
  }

  /**
   * Allocates a block with at least `sizeBytes` of payload aligned to `alignBytes`.
   *
   * @param sizeBytes Payload bytes, at least 1.
   * @param alignBytes A power of two from 16 to 4096.
   * @returns The payload's physical address, or 0 when no frame is left.
   */
  allocate(sizeBytes: number, alignBytes: number): number {
    const u32 = this.#u32;
    const blockBytes = Math.ceil(sizeBytes / GRANULE_BYTES) * GRANULE_BYTES + BLOCK_HEADER_BYTES;
    // Room to slide the payload to its alignment, leaving a whole free block in front.
    const searchBytes = alignBytes <= GRANULE_BYTES
      ? blockBytes
      : blockBytes + alignBytes + GRANULE_BYTES;
    let block = this.#index.takeAtLeast(searchBytes);
    if (block === 0) {
      block = this.#grow(searchBytes);
      if (block === 0) return 0;
    }
    let size = u32[block / 4 + BLOCK_SIZE_W];
    if (alignBytes > GRANULE_BYTES) {
      let front = Math.ceil((block + BLOCK_HEADER_BYTES) / alignBytes) * alignBytes -
        BLOCK_HEADER_BYTES - block;
      if (front !== 0 && front < BLOCK_MIN_BYTES) front += alignBytes;
      if (front !== 0) {
        // The block's left neighbour is in use (free blocks never touch), so
        // the front piece stays a free block of its own.
        this.#split(block, front, size);
        this.#index.insert(block, front);
        block += front;
        size -= front;
      }
    }
    if (size - blockBytes >= BLOCK_MIN_BYTES) {
      // Likewise the right neighbour is in use: the tail needs no merging.
      this.#split(block, blockBytes, size);
      this.#index.insert(block + blockBytes, size - blockBytes);
      size = blockBytes;
    }
    const blockWord = block / 4;
    u32[blockWord + BLOCK_SIZE_W] = size | BLOCK_IN_USE;
    u32[blockWord + BLOCK_REQUESTED_W] = sizeBytes;
    const head = this.#frames.ownerOf(block) - 1;
    this.#markLive(head, block);
    u32[head * FRAME_WORDS + ARENA_LIVE_BLOCKS_W]++;
    u32[this.#rootWord + ROOT_LARGE_LIVE_W]++;
    addU64(u32, this.#rootWord + ROOT_LARGE_BYTES_W, size - BLOCK_HEADER_BYTES);
    const payload = block + BLOCK_HEADER_BYTES;
    if (this.#isPoisoning) this.#u8.fill(POISON_ALLOC, payload, block + size);
    return payload;
  }

  /**
   * Frees the block whose payload starts at `address`, merging it with free
   * neighbours, and caches or gives back the arena if it empties.
   *
   * @param head The arena's head frame (from the owner table).
   * @param address A 16-aligned physical address inside the arena.
   * @returns The freed payload's size in bytes, NOT_ALLOCATED or ALREADY_FREE.
   * @throws {HeapCorruption} If the block header is broken.
   */
  free(head: number, address: number): number {
    const u32 = this.#u32;
    let block = address - BLOCK_HEADER_BYTES;
    const liveBefore = this.#checkLive(head, block);
    if (liveBefore < 0) return liveBefore;
    this.#markFree(head, block);
    let size = u32[block / 4 + BLOCK_SIZE_W] & ~BLOCK_IN_USE;
    const freedBytes = size - BLOCK_HEADER_BYTES;
    u32[head * FRAME_WORDS + ARENA_LIVE_BLOCKS_W]--;
    u32[this.#rootWord + ROOT_LARGE_LIVE_W]--;
    addU64(u32, this.#rootWord + ROOT_LARGE_BYTES_W, -freedBytes);
    u32[block / 4 + BLOCK_REQUESTED_W] = 0;
    const right = block + size;
    const rightSize = u32[right / 4 + BLOCK_SIZE_W];
    if ((rightSize & BLOCK_IN_USE) === 0) {
      this.#index.remove(right, rightSize);
      size += rightSize;
    }
    const leftSize = u32[block / 4 + BLOCK_PREV_SIZE_W];
    if (leftSize !== 0 && (u32[(block - leftSize) / 4 + BLOCK_SIZE_W] & BLOCK_IN_USE) === 0) {
      this.#index.remove(block - leftSize, leftSize);
      block -= leftSize;
      size += leftSize;
    }
    u32[block / 4 + BLOCK_SIZE_W] = size;
    u32[(block + size) / 4 + BLOCK_PREV_SIZE_W] = size;
    if (this.#isPoisoning) {
      this.#u8.fill(POISON_FREE, block + BLOCK_HEADER_BYTES, block + size);
    }
    const arenaWord = head * FRAME_WORDS;
    if (u32[arenaWord + ARENA_LIVE_BLOCKS_W] === 0) this.#retire(head);
    else this.#index.insert(block, size);
    return freedBytes;
  }

  /**
   * The usable size of the live block whose payload starts at `address`.
   *
   * @param head The arena's head frame.
   * @param address A 16-aligned physical address inside the arena.
   * @returns The payload size, NOT_ALLOCATED or ALREADY_FREE.
   */
  usableSize(head: number, address: number): number {
    const block = address - BLOCK_HEADER_BYTES;
    const live = this.#checkLive(head, block);
    if (live < 0) return live;
    return (this.#u32[block / 4 + BLOCK_SIZE_W] & ~BLOCK_IN_USE) - BLOCK_HEADER_BYTES;
  }

  /**
   * Resizes the live block whose payload starts at `address` without moving
   * it: shrinking splits off a free tail, growing takes from a free right
   * neighbour.
   *
   * @param address The payload's physical address (a live block's, checked by the caller).
   * @param sizeBytes The new payload size in bytes.
   * @returns Whether the block now holds `sizeBytes`; false leaves it unchanged.
   */
  resizeInPlace(address: number, sizeBytes: number): boolean {
    const u32 = this.#u32;
    const block = address - BLOCK_HEADER_BYTES;
    const blockWord = block / 4;
    const size = u32[blockWord + BLOCK_SIZE_W] & ~BLOCK_IN_USE;
    const needBytes = Math.ceil(sizeBytes / GRANULE_BYTES) * GRANULE_BYTES + BLOCK_HEADER_BYTES;
    const right = block + size;
    const rightSize = u32[right / 4 + BLOCK_SIZE_W];
    const isRightFree = (rightSize & BLOCK_IN_USE) === 0;
    const available = isRightFree ? size + rightSize : size;
    if (needBytes > available) return false;
    if (isRightFree) this.#index.remove(right, rightSize);
    let newSize = available;
    if (available - needBytes >= BLOCK_MIN_BYTES) {
      this.#split(block, needBytes, available);
      const tail = block + needBytes;
      if (this.#isPoisoning) {
        this.#u8.fill(POISON_FREE, tail + BLOCK_HEADER_BYTES, block + available);
      }
      this.#index.insert(tail, available - needBytes);
      newSize = needBytes;
    } else {
      u32[(block + available) / 4 + BLOCK_PREV_SIZE_W] = available;
    }
    u32[blockWord + BLOCK_SIZE_W] = newSize | BLOCK_IN_USE;
    u32[blockWord + BLOCK_REQUESTED_W] = sizeBytes;
    addU64(u32, this.#rootWord + ROOT_LARGE_BYTES_W, newSize - size);
    if (this.#isPoisoning && newSize > size) {
      this.#u8.fill(POISON_ALLOC, block + size, block + newSize);
    }
    return true;
  }

  /**
   * Gives the cached empty arena, if any, back to the frame source.
   *
   * @returns Frames given back.
   */
  shrink(): number {
    const cached = this.#u32[this.#rootWord + ROOT_CACHED_ARENA_W];
    if (cached === 0) return 0;
    this.#u32[this.#rootWord + ROOT_CACHED_ARENA_W] = 0;
    return this.#release(cached - 1);
  }

  /**
   * Gives an arena back to the frame source whatever it holds (for destroy).
   *
   * @param head The arena's head frame.
   */
  discard(head: number): void {
    this.#release(head);
  }

  /**
   * Describes the arena at `head`, walking its blocks (not a hot path).
   *
   * @param head A head frame whose header carries the arena magic.
   * @returns The arena and its blocks.
   */
  describe(head: number): ArenaInfo {
    const u32 = this.#u32;
    const arenaWord = head * FRAME_WORDS;
    const base = head * FRAME_BYTES;
    const frameCount = u32[arenaWord + ARENA_FRAME_COUNT_W];
    const end = base + frameCount * FRAME_BYTES - BLOCK_HEADER_BYTES;
    const blocks: BlockInfo[] = [];
    let block = base + u32[arenaWord + ARENA_FIRST_BLOCK_W];
    while (block < end) {
      const sizeWord = u32[block / 4 + BLOCK_SIZE_W];
      const sizeBytes = sizeWord & ~BLOCK_IN_USE;
      if (
        sizeBytes < BLOCK_MIN_BYTES || sizeBytes % GRANULE_BYTES !== 0 || block + sizeBytes > end
      ) {
        corrupt(block, "block size is invalid");
      }
      blocks.push({
        address: block,
        sizeBytes,
        isInUse: (sizeWord & BLOCK_IN_USE) !== 0,
        requestedBytes: u32[block / 4 + BLOCK_REQUESTED_W],
      });
      block += sizeBytes;
    }
    return {
      frameCount,
      capacityBytes: u32[arenaWord + ARENA_CAPACITY_W],
      isCached: u32[this.#rootWord + ROOT_CACHED_ARENA_W] === head + 1,
      blocks,
    };
  }

  /**
   * Checks one arena completely: header, block tiling, boundary tags, magic,
   * no two free neighbours, the live bitmap, and (when poisoning) the poison
   * of free blocks. Adds its indexed free blocks to `freeBlocks`.
   *
   * @param head A head frame whose header carries the arena magic.
   * @param freeBlocks Collects the size of every free block the index should hold.
   * @returns The arena's description.
   * @throws {HeapCorruption} On the first inconsistency.
   */
  checkArena(head: number, freeBlocks: Map<number, number>): ArenaInfo {
    const u32 = this.#u32;
    const arenaWord = head * FRAME_WORDS;
    const base = head * FRAME_BYTES;
    const info = this.describe(head);
    const first = firstBlockOffset(info.frameCount);
    if (u32[arenaWord + ARENA_FIRST_BLOCK_W] !== first) {
      corrupt(base, "arena first block offset is wrong");
    }
    if (info.capacityBytes !== capacityOf(info.frameCount)) {
      corrupt(base, "arena capacity is wrong");
    }
    const sentinel = base + info.frameCount * FRAME_BYTES - BLOCK_HEADER_BYTES;
    let previousSize = 0;
    let wasPreviousFree = false;
    let live = 0;
    let block = base + first;
    for (const b of info.blocks) {
      const word = b.address / 4;
      if (u32[word + BLOCK_MAGIC_W] !== BLOCK_MAGIC) corrupt(b.address, "block magic is wrong");
      if (u32[word + BLOCK_PREV_SIZE_W] !== previousSize) {
        corrupt(b.address, "boundary tag is wrong");
      }
      if (this.#isLiveBitSet(head, b.address) !== b.isInUse) {
        corrupt(b.address, "live bit disagrees with the block");
      }
      if (b.isInUse) {
        live++;
        wasPreviousFree = false;
      } else {
        if (wasPreviousFree) corrupt(b.address, "two free blocks are adjacent");
        wasPreviousFree = true;
        if (!info.isCached) freeBlocks.set(b.address, b.sizeBytes);
        if (this.#isPoisoning) {
          for (let a = b.address + 32; a < b.address + b.sizeBytes; a++) {
            if (this.#u8[a] !== POISON_FREE) corrupt(a, "free block was written after being freed");
          }
        }
      }
      previousSize = b.sizeBytes;
      block += b.sizeBytes;
    }
    if (block !== sentinel) corrupt(block, "blocks do not tile the arena");
    if (u32[sentinel / 4 + BLOCK_SIZE_W] !== BLOCK_IN_USE) {
      corrupt(sentinel, "arena sentinel is broken");
    }
    if (u32[sentinel / 4 + BLOCK_PREV_SIZE_W] !== previousSize) {
      corrupt(sentinel, "sentinel boundary tag is wrong");
    }
    // Every set bit must belong to a live block found by the walk.
    let bits = 0;
    for (let w = 0; w < info.frameCount * (BITMAP_BYTES_PER_FRAME / 4); w++) {
      let word = u32[arenaWord + ARENA_BITMAP_W + w];
      while (word !== 0) {
        bits++;
        word &= word - 1;
      }
    }
    if (bits !== live) corrupt(base, "live bitmap has stray bits");
    if (live !== u32[arenaWord + ARENA_LIVE_BLOCKS_W]) {
      corrupt(base, "arena live block count is wrong");
    }
    if (info.isCached && (live !== 0 || info.blocks.length !== 1)) {
      corrupt(base, "cached arena is not empty");
    }
    if (!info.isCached && live === 0) corrupt(base, "empty arena is neither cached nor given back");
    return info;
  }

  /**
   * Checks the free-block index and the root's large-block counters.
   *
   * @param freeBlocks Every indexed free block found by checkArena, with its size.
   * @param arenas Every arena found in the owner table.
   * @throws {HeapCorruption} On the first inconsistency.
   */
  checkTotals(freeBlocks: ReadonlyMap<number, number>, arenas: readonly ArenaInfo[]): void {
    const u32 = this.#u32;
    this.#index.check(freeBlocks);
    let live = 0;
    let liveBytes = 0;
    let frameCount = 0;
    for (const arena of arenas) {
      frameCount += arena.frameCount;
      for (const b of arena.blocks) {
        if (!b.isInUse) continue;
        live++;
        liveBytes += b.sizeBytes - BLOCK_HEADER_BYTES;
      }
    }
    const rootAddress = this.#rootWord * 4;
    if (live !== u32[this.#rootWord + ROOT_LARGE_LIVE_W]) {
      corrupt(rootAddress, "live large block count is wrong");
    }
    if (liveBytes !== this.liveBytes()) corrupt(rootAddress, "live large block bytes are wrong");
    if (arenas.length !== u32[this.#rootWord + ROOT_ARENA_COUNT_W]) {
      corrupt(rootAddress, "arena count is wrong");
    }
    if (frameCount !== u32[this.#rootWord + ROOT_ARENA_FRAMES_W]) {
      corrupt(rootAddress, "arena frame count is wrong");
    }
  }

  /**
   * Usable bytes of all live large blocks.
   *
   * @returns The counter kept in the root descriptor.
   */
  liveBytes(): number {
    return this.#u32[this.#rootWord + ROOT_LARGE_BYTES_W] +
      this.#u32[this.#rootWord + ROOT_LARGE_BYTES_W + 1] * 0x1_0000_0000;
  }

  /** Whether `block` is a live block of the arena: 0, or NOT_ALLOCATED / ALREADY_FREE. */
  #checkLive(head: number, block: number): number {
    const u32 = this.#u32;
    const relative = block - head * FRAME_BYTES;
    if (relative < u32[head * FRAME_WORDS + ARENA_FIRST_BLOCK_W]) return NOT_ALLOCATED;
    if (!this.#isLiveBitSet(head, block)) {
      // A stale header with the magic and the in-use bit clear is what a
      // freed block leaves; anything else is not a block start at all.
      const word = block / 4;
      const isStaleFreeBlock = u32[word + BLOCK_MAGIC_W] === BLOCK_MAGIC &&
        (u32[word + BLOCK_SIZE_W] & BLOCK_IN_USE) === 0 && u32[word + BLOCK_SIZE_W] !== 0;
      return isStaleFreeBlock ? ALREADY_FREE : NOT_ALLOCATED;
    }
    const sizeWord = u32[block / 4 + BLOCK_SIZE_W];
    if (u32[block / 4 + BLOCK_MAGIC_W] !== BLOCK_MAGIC || (sizeWord & BLOCK_IN_USE) === 0) {
      throw new HeapCorruption("kfree", block, "live block header is overwritten");
    }
    return 0;
  }

  /** Whether the live bit of the granule at `address` is set. */
  #isLiveBitSet(head: number, address: number): boolean {
    const granule = (address - head * FRAME_BYTES) / GRANULE_BYTES;
    return (this.#u32[head * FRAME_WORDS + ARENA_BITMAP_W + (granule >>> 5)] &
      (1 << (granule & 31))) !== 0;
  }

  /** Sets the live bit of the block header at `block`. */
  #markLive(head: number, block: number): void {
    const granule = (block - head * FRAME_BYTES) / GRANULE_BYTES;
    this.#u32[head * FRAME_WORDS + ARENA_BITMAP_W + (granule >>> 5)] |= 1 << (granule & 31);
  }

  /** Clears the live bit of the block header at `block`. */
  #markFree(head: number, block: number): void {
    const granule = (block - head * FRAME_BYTES) / GRANULE_BYTES;
    this.#u32[head * FRAME_WORDS + ARENA_BITMAP_W + (granule >>> 5)] &= ~(1 << (granule & 31));
  }

  /**
   * Splits the block at `block` of `sizeBytes` into `firstBytes` and the
   * rest, writing both headers (free) and the boundary tag after them.
   */
  #split(block: number, firstBytes: number, sizeBytes: number): void {
    const u32 = this.#u32;
    const second = block + firstBytes;
    const secondWord = second / 4;
    u32[block / 4 + BLOCK_SIZE_W] = firstBytes;
    u32[secondWord + BLOCK_SIZE_W] = sizeBytes - firstBytes;
    u32[secondWord + BLOCK_PREV_SIZE_W] = firstBytes;
    u32[secondWord + BLOCK_MAGIC_W] = BLOCK_MAGIC;
    u32[secondWord + BLOCK_REQUESTED_W] = 0;
    u32[(block + sizeBytes) / 4 + BLOCK_PREV_SIZE_W] = sizeBytes - firstBytes;
  }

  /** A free block of `searchBytes` or more, from the cached arena or a new one; 0 if no frame. */
  #grow(searchBytes: number): number {
    const u32 = this.#u32;
    const cached = u32[this.#rootWord + ROOT_CACHED_ARENA_W];
    if (cached !== 0 && u32[(cached - 1) * FRAME_WORDS + ARENA_CAPACITY_W] >= searchBytes) {
      u32[this.#rootWord + ROOT_CACHED_ARENA_W] = 0;
      return (cached - 1) * FRAME_BYTES + u32[(cached - 1) * FRAME_WORDS + ARENA_FIRST_BLOCK_W];
    }
    // Solves capacityOf(n) >= searchBytes for n, the bitmap growing with n.
    const frameCount = Math.max(
      ARENA_DEFAULT_FRAMES,
      Math.ceil(
        (searchBytes + ARENA_HEADER_BYTES + BLOCK_HEADER_BYTES) /
          (FRAME_BYTES - BITMAP_BYTES_PER_FRAME),
      ),
    );
    const head = this.#frames.acquire(frameCount);
    if (head < 0) return 0;
    const arenaWord = head * FRAME_WORDS;
    const base = head * FRAME_BYTES;
    const first = firstBlockOffset(frameCount);
    const capacity = capacityOf(frameCount);
    u32[arenaWord + ARENA_MAGIC_W] = ARENA_MAGIC;
    u32[arenaWord + ARENA_FRAME_COUNT_W] = frameCount;
    u32[arenaWord + ARENA_FIRST_BLOCK_W] = first;
    u32[arenaWord + ARENA_LIVE_BLOCKS_W] = 0;
    u32[arenaWord + ARENA_CAPACITY_W] = capacity;
    u32.fill(0, arenaWord + ARENA_CAPACITY_W + 1, arenaWord + first / 4);
    const block = base + first;
    const sentinel = block + capacity;
    writeHeader(u32, block, capacity, 0);
    writeHeader(u32, sentinel, BLOCK_IN_USE, capacity);
    if (this.#isPoisoning) this.#u8.fill(POISON_FREE, block + BLOCK_HEADER_BYTES, sentinel);
    u32[this.#rootWord + ROOT_ARENA_COUNT_W]++;
    u32[this.#rootWord + ROOT_ARENA_FRAMES_W] += frameCount;
    return block;
  }

  /** An empty arena: cached if the heap has none and it is ordinary-sized, else given back. */
  #retire(head: number): void {
    const u32 = this.#u32;
    const isOrdinary = u32[head * FRAME_WORDS + ARENA_FRAME_COUNT_W] === ARENA_DEFAULT_FRAMES;
    if (isOrdinary && u32[this.#rootWord + ROOT_CACHED_ARENA_W] === 0) {
      u32[this.#rootWord + ROOT_CACHED_ARENA_W] = head + 1;
    } else {
      this.#release(head);
    }
  }

  /** Gives an arena's frames back to the frame source; returns the frame count. */
  #release(head: number): number {
    const u32 = this.#u32;
    const frameCount = u32[head * FRAME_WORDS + ARENA_FRAME_COUNT_W];
    // Clear the magic while the frame is still ours.
    u32[head * FRAME_WORDS + ARENA_MAGIC_W] = 0;
    u32[this.#rootWord + ROOT_ARENA_COUNT_W]--;
    u32[this.#rootWord + ROOT_ARENA_FRAMES_W] -= frameCount;
    this.#frames.release(head, frameCount);
    return frameCount;
  }
}

/** Byte offset of the first block in an arena of `frameCount` frames: after header and bitmap. */
function firstBlockOffset(frameCount: number): number {
  return ARENA_HEADER_BYTES + frameCount * BITMAP_BYTES_PER_FRAME;
}

/** Bytes from the first block to the sentinel in an arena of `frameCount` frames. */
function capacityOf(frameCount: number): number {
  return frameCount * FRAME_BYTES - firstBlockOffset(frameCount) - BLOCK_HEADER_BYTES;
}

/** Writes a whole block header: size word, previous size, magic, nothing requested. */
function writeHeader(
  u32: Uint32Array,
  block: number,
  sizeWord: number,
  prevSizeBytes: number,
): void {
  const word = block / 4;
  u32[word + BLOCK_SIZE_W] = sizeWord;
  u32[word + BLOCK_PREV_SIZE_W] = prevSizeBytes;
  u32[word + BLOCK_MAGIC_W] = BLOCK_MAGIC;
  u32[word + BLOCK_REQUESTED_W] = 0;
}

/** Throws a HeapCorruption found while checking arenas. */
function corrupt(address: number, reason: string): never {
  throw new HeapCorruption("checkInvariants", address, reason);
}
