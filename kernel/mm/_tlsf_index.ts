/**
 * The index of free large blocks: two-level segregated fit (TLSF, Masmano et
 * al., 2004). Free blocks sit on doubly linked lists, one per size range; the
 * first level splits sizes by power of two, the second splits each power of
 * two into 16 equal steps. A bitmap per level says which lists are non-empty,
 * so finding a block that fits is a couple of bit scans: O(1), whatever the
 * number of blocks. Sizes below 256 bytes get one list per 16-byte size.
 *
 * The bitmaps and list heads live in the root descriptor; the links live in
 * the free blocks themselves (u64 physical addresses, see `_kmem_layout.ts`).
 *
 * @module
 */

import type { PhysicalMemory } from "../../hal/mod.ts";
import { HeapCorruption } from "./_heap_corruption.ts";
import {
  BLOCK_NEXT_W,
  BLOCK_PREV_W,
  readU64,
  ROOT_TLSF_FL_BITMAP_W,
  TLSF_HEADS_OFFSET,
  TLSF_SL_BITMAPS_OFFSET,
  writeU64,
} from "./_kmem_layout.ts";

/** Second-level lists per power of two, as a power of two. */
const SL_LOG2 = 4;
/** Second-level lists per power of two. */
const SL_COUNT = 1 << SL_LOG2;
/** Blocks below this size (fl 0) get one list per 16 bytes. */
const SMALL_BLOCK_BYTES = 256;
/** First-level rows: enough for blocks below 2^27 bytes (128 MiB). */
export const TLSF_FL_COUNT = 20;
/** Blocks must be smaller than this to be indexed. */
export const TLSF_MAX_BLOCK_BYTES = 2 ** 27;

/** The TLSF free-block index of one heap, all state in RAM. */
export class TlsfIndex {
  readonly #u32: Uint32Array;
  readonly #flBitmapWord: number;
  readonly #slBitmapWord: number;
  readonly #headsWord: number;

  /**
   * Wraps the TLSF bitmaps and heads of the root descriptor at `rootAddress`.
   *
   * @param memory The RAM the index lives in.
   * @param rootAddress Physical address of the root descriptor (zeroed at creation).
   */
  constructor(memory: PhysicalMemory, rootAddress: number) {
    this.#u32 = memory.u32;
    this.#flBitmapWord = rootAddress / 4 + ROOT_TLSF_FL_BITMAP_W;
    this.#slBitmapWord = (rootAddress + TLSF_SL_BITMAPS_OFFSET) / 4;
    this.#headsWord = (rootAddress + TLSF_HEADS_OFFSET) / 4;
  }

  /**
   * Adds a free block to the front of its list.
   *
   * @param block Physical address of the block header.
   * @param sizeBytes The block's size, a multiple of 16 below TLSF_MAX_BLOCK_BYTES.
   */
  insert(block: number, sizeBytes: number): void {
    const u32 = this.#u32;
    const list = listOf(sizeBytes);
    const headWord = this.#headsWord + list * 2;
    const first = readU64(u32, headWord);
    const blockWord = block / 4;
    writeU64(u32, blockWord + BLOCK_NEXT_W, first);
    writeU64(u32, blockWord + BLOCK_PREV_W, 0);
    if (first !== 0) writeU64(u32, first / 4 + BLOCK_PREV_W, block);
    writeU64(u32, headWord, block);
    const fl = list >>> SL_LOG2;
    u32[this.#slBitmapWord + fl] |= 1 << (list & (SL_COUNT - 1));
    u32[this.#flBitmapWord] |= 1 << fl;
  }

  /**
   * Takes a free block off its list.
   *
   * @param block Physical address of the block header.
   * @param sizeBytes The block's size (selects the list).
   */
  remove(block: number, sizeBytes: number): void {
    const u32 = this.#u32;
    const blockWord = block / 4;
    const next = readU64(u32, blockWord + BLOCK_NEXT_W);
    const prev = readU64(u32, blockWord + BLOCK_PREV_W);
    if (next !== 0) writeU64(u32, next / 4 + BLOCK_PREV_W, prev);
    if (prev !== 0) {
      writeU64(u32, prev / 4 + BLOCK_NEXT_W, next);
      return;
    }
    const list = listOf(sizeBytes);
    writeU64(u32, this.#headsWord + list * 2, next);
    if (next !== 0) return;
    const fl = list >>> SL_LOG2;
    const slBits = u32[this.#slBitmapWord + fl] & ~(1 << (list & (SL_COUNT - 1)));
    u32[this.#slBitmapWord + fl] = slBits;
    if (slBits === 0) u32[this.#flBitmapWord] &= ~(1 << fl);
  }

  /**
   * Takes a free block of at least `sizeBytes` off its list (good fit: the
   * first block of the smallest non-empty list whose every block fits).
   *
   * @param sizeBytes The size needed, a multiple of 16.
   * @returns Physical address of the block header, or 0 when none fits.
   */
  takeAtLeast(sizeBytes: number): number {
    if (sizeBytes >= TLSF_MAX_BLOCK_BYTES) return 0;
    const u32 = this.#u32;
    // Round up to the next list boundary so that any block found fits.
    const rounded = sizeBytes < SMALL_BLOCK_BYTES
      ? sizeBytes
      : sizeBytes + (1 << (31 - Math.clz32(sizeBytes) - SL_LOG2)) - 1;
    const list = listOf(rounded);
    let fl = list >>> SL_LOG2;
    if (fl >= TLSF_FL_COUNT) return 0;
    let slBits = u32[this.#slBitmapWord + fl] & (~0 << (list & (SL_COUNT - 1)));
    if (slBits === 0) {
      const flBits = u32[this.#flBitmapWord] & (~0 << (fl + 1));
      if (flBits === 0) return 0;
      fl = lowestBit(flBits);
      slBits = u32[this.#slBitmapWord + fl];
    }
    const found = (fl << SL_LOG2) + lowestBit(slBits);
    const block = readU64(u32, this.#headsWord + found * 2);
    // The block is its list's head: unlink it from the front.
    const next = readU64(u32, block / 4 + BLOCK_NEXT_W);
    writeU64(u32, this.#headsWord + found * 2, next);
    if (next !== 0) {
      writeU64(u32, next / 4 + BLOCK_PREV_W, 0);
    } else {
      const remaining = u32[this.#slBitmapWord + fl] & ~(1 << (found & (SL_COUNT - 1)));
      u32[this.#slBitmapWord + fl] = remaining;
      if (remaining === 0) u32[this.#flBitmapWord] &= ~(1 << fl);
    }
    return block;
  }

  /**
   * Checks every list against the free blocks found by walking the arenas:
   * each listed block is one of them, on the list its size selects, with a
   * correct back link; every one of them is listed; the bitmaps match.
   *
   * @param freeBlocks Size of every free block that should be indexed, by address.
   * @throws {HeapCorruption} On the first inconsistency.
   */
  check(freeBlocks: ReadonlyMap<number, number>): void {
    const u32 = this.#u32;
    let listed = 0;
    let expectedFlBits = 0;
    for (let fl = 0; fl < TLSF_FL_COUNT; fl++) {
      let expectedSlBits = 0;
      for (let sl = 0; sl < SL_COUNT; sl++) {
        const list = (fl << SL_LOG2) + sl;
        let previous = 0;
        let block = readU64(u32, this.#headsWord + list * 2);
        if (block !== 0) expectedSlBits |= 1 << sl;
        while (block !== 0) {
          const sizeBytes = freeBlocks.get(block);
          if (sizeBytes === undefined) corrupt(block, "free list holds a block that is not free");
          if (listOf(sizeBytes) !== list) corrupt(block, "free block is on the wrong list");
          if (readU64(u32, block / 4 + BLOCK_PREV_W) !== previous) {
            corrupt(block, "free list back link is wrong");
          }
          if (++listed > freeBlocks.size) corrupt(block, "free list has a cycle");
          previous = block;
          block = readU64(u32, block / 4 + BLOCK_NEXT_W);
        }
      }
      if (u32[this.#slBitmapWord + fl] !== expectedSlBits >>> 0) {
        corrupt(this.#slBitmapWord * 4 + fl * 4, "second-level bitmap is wrong");
      }
      if (expectedSlBits !== 0) expectedFlBits |= 1 << fl;
    }
    if (u32[this.#flBitmapWord] !== expectedFlBits >>> 0) {
      corrupt(this.#flBitmapWord * 4, "first-level bitmap is wrong");
    }
    if (listed !== freeBlocks.size) {
      corrupt(this.#headsWord * 4, "a free block is missing from the lists");
    }
  }
}

/** The list (fl * 16 + sl) a block of `sizeBytes` belongs on. */
function listOf(sizeBytes: number): number {
  if (sizeBytes < SMALL_BLOCK_BYTES) return sizeBytes >>> 4;
  const log2 = 31 - Math.clz32(sizeBytes);
  return ((log2 - 7) << SL_LOG2) + ((sizeBytes >>> (log2 - SL_LOG2)) - SL_COUNT);
}

/** Index of the lowest set bit of a non-zero 32-bit value. */
function lowestBit(bits: number): number {
  return 31 - Math.clz32(bits & -bits);
}

/** Throws a HeapCorruption found while checking the index. */
function corrupt(address: number, reason: string): never {
  throw new HeapCorruption("checkInvariants", address, reason);
}
