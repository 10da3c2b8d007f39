/**
 * Slab caches: the heap's small objects (up to 2048 bytes), one cache per
 * size class.
 *
 * A slab is 1 to 8 contiguous frames with a header at its start (see
 * `_kmem_layout.ts`). Free objects are linked through their first word; the
 * objects never handed out yet sit past a bump offset, so a new slab needs no
 * free list built. A bitmap in the header has a bit per 16-byte granule, set
 * where a live object starts: freeing checks that bit, which catches a double
 * free, an interior pointer and a pointer into the header exactly, in O(1).
 *
 * Each class keeps its partial slabs (some objects live, some free) on a
 * doubly linked list through the slab headers; a full slab is on no list. A
 * slab that empties is kept as the class's cached slab if it has none, so an
 * allocate/free pair does not take and give back a frame each time, and is
 * given back to the frame source otherwise. Every step is O(1).
 *
 * @module
 */

import type { PhysicalMemory } from "../../hal/mod.ts";
import { HeapCorruption } from "./_heap_corruption.ts";
import type { HeapFrames } from "./_heap_frames.ts";
import {
  ALREADY_FREE,
  CLASS_CACHED_W,
  CLASS_CAPACITY,
  CLASS_COUNT,
  CLASS_FIRST_OFFSET,
  CLASS_IN_USE_W,
  CLASS_OBJECT_BYTES,
  CLASS_PARTIAL_W,
  CLASS_RECORD_WORDS,
  CLASS_SLAB_COUNT_W,
  CLASS_SLAB_FRAMES,
  CLASS_TABLE_OFFSET,
  FRAME_BYTES,
  FRAME_WORDS,
  NOT_ALLOCATED,
  POISON_ALLOC,
  POISON_FREE,
  ROOT_SLAB_FRAMES_W,
  SLAB_BITMAP_W,
  SLAB_BUMP_W,
  SLAB_CLASS_W,
  SLAB_FRAME_COUNT_W,
  SLAB_FREE_COUNT_W,
  SLAB_FREE_HEAD_W,
  SLAB_MAGIC,
  SLAB_MAGIC_W,
  SLAB_NEXT_W,
  SLAB_PREV_W,
} from "./_kmem_layout.ts";

/** One slab as the dump and the invariant check see it. */
export interface SlabInfo {
  /** Size class index. */
  readonly classIndex: number;
  /** Frames in the slab. */
  readonly frameCount: number;
  /** Live objects. */
  readonly inUse: number;
  /** Objects the slab holds. */
  readonly capacity: number;
  /** Where the slab sits: on the partial list, full, or the class's cached empty slab. */
  readonly state: "partial" | "full" | "cached";
}

/** The size-class caches of one heap, all state in RAM. */
export class SlabCaches {
  readonly #u8: Uint8Array;
  readonly #u32: Uint32Array;
  readonly #frames: HeapFrames;
  readonly #rootWord: number;
  readonly #classWord: number;
  readonly #isPoisoning: boolean;

  /**
   * Wraps the class records of the root descriptor at `rootAddress`.
   *
   * @param memory The RAM the slabs live in.
   * @param frames Where slabs get and give back frames.
   * @param rootAddress Physical address of the root descriptor (zeroed at creation).
   * @param isPoisoning Whether to fill freed and fresh objects with poison bytes.
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
    this.#rootWord = rootAddress / 4;
    this.#classWord = (rootAddress + CLASS_TABLE_OFFSET) / 4;
    this.#isPoisoning = isPoisoning;
  }

  /**
   * Allocates one object of class `classIndex`.
   *
   * @param classIndex The size class.
   * @returns The object's physical address, or 0 when no frame is left.
   * @throws {HeapCorruption} If the slab's free list is broken.
   */
  allocate(classIndex: number): number {
    const u32 = this.#u32;
    const record = this.#classWord + classIndex * CLASS_RECORD_WORDS;
    let slab = u32[record + CLASS_PARTIAL_W];
    if (slab === 0) {
      slab = this.#refill(classIndex, record);
      if (slab === 0) return 0;
    }
    const header = (slab - 1) * FRAME_WORDS;
    const objectBytes = CLASS_OBJECT_BYTES[classIndex];
    let offset = u32[header + SLAB_FREE_HEAD_W];
    if (offset !== 0) {
      const next = u32[header + (offset >>> 2)];
      // A used-after-free write can leave garbage in the link; catch it
      // before it sends a later allocation outside the slab.
      if (
        next !== 0 &&
        (next - CLASS_FIRST_OFFSET[classIndex]) >>> 0 >= CLASS_CAPACITY[classIndex] * objectBytes
      ) {
        throw new HeapCorruption("kmalloc", header * 4 + offset, "free-list link leaves its slab");
      }
      u32[header + SLAB_FREE_HEAD_W] = next;
    } else {
      offset = u32[header + SLAB_BUMP_W];
      u32[header + SLAB_BUMP_W] = offset + objectBytes;
    }
    const bitWord = header + SLAB_BITMAP_W + (offset >>> 9);
    const bit = 1 << ((offset >>> 4) & 31);
    const bits = u32[bitWord];
    if ((bits & bit) !== 0) {
      throw new HeapCorruption("kmalloc", header * 4 + offset, "free list holds a live object");
    }
    u32[bitWord] = bits | bit;
    const freeCount = u32[header + SLAB_FREE_COUNT_W] - 1;
    u32[header + SLAB_FREE_COUNT_W] = freeCount;
    // A full slab leaves the partial list; it is the list's head.
    if (freeCount === 0) this.#unlink(record, slab);
    u32[record + CLASS_IN_USE_W]++;
    const address = header * 4 + offset;
    if (this.#isPoisoning) this.#u8.fill(POISON_ALLOC, address, address + objectBytes);
    return address;
  }

  /**
   * Frees the object at `address` in the slab whose head frame is `head`.
   *
   * @param head The slab's head frame (from the owner table).
   * @param address A 16-aligned physical address inside the slab.
   * @returns The freed object's size in bytes, NOT_ALLOCATED or ALREADY_FREE.
   */
  free(head: number, address: number): number {
    const u32 = this.#u32;
    const header = head * FRAME_WORDS;
    const offset = address - header * 4;
    const bitWord = header + SLAB_BITMAP_W + (offset >>> 9);
    const bit = 1 << ((offset >>> 4) & 31);
    const bits = u32[bitWord];
    const classIndex = u32[header + SLAB_CLASS_W];
    if ((bits & bit) === 0) return this.#whyNotLive(header, classIndex, offset);
    u32[bitWord] = bits & ~bit;
    const objectBytes = CLASS_OBJECT_BYTES[classIndex];
    if (this.#isPoisoning) this.#u8.fill(POISON_FREE, address, address + objectBytes);
    u32[header + (offset >>> 2)] = u32[header + SLAB_FREE_HEAD_W];
    u32[header + SLAB_FREE_HEAD_W] = offset;
    const freeCount = u32[header + SLAB_FREE_COUNT_W] + 1;
    u32[header + SLAB_FREE_COUNT_W] = freeCount;
    const record = this.#classWord + classIndex * CLASS_RECORD_WORDS;
    u32[record + CLASS_IN_USE_W]--;
    // A full slab that gets a free object back rejoins the partial list.
    if (freeCount === 1) this.#push(record, head + 1);
    if (freeCount === CLASS_CAPACITY[classIndex]) this.#retire(record, head, classIndex);
    return objectBytes;
  }

  /**
   * The usable size of the live object at `address`.
   *
   * @param head The slab's head frame.
   * @param address A 16-aligned physical address inside the slab.
   * @returns The class's object size, NOT_ALLOCATED or ALREADY_FREE.
   */
  usableSize(head: number, address: number): number {
    const header = head * FRAME_WORDS;
    const offset = address - header * 4;
    const classIndex = this.#u32[header + SLAB_CLASS_W];
    const bits = this.#u32[header + SLAB_BITMAP_W + (offset >>> 9)];
    if ((bits & (1 << ((offset >>> 4) & 31))) === 0) {
      return this.#whyNotLive(header, classIndex, offset);
    }
    return CLASS_OBJECT_BYTES[classIndex];
  }

  /**
   * Gives every cached empty slab back to the frame source.
   *
   * @returns Frames given back.
   */
  shrink(): number {
    const u32 = this.#u32;
    let frameCount = 0;
    for (let c = 0; c < CLASS_COUNT; c++) {
      const record = this.#classWord + c * CLASS_RECORD_WORDS;
      const cached = u32[record + CLASS_CACHED_W];
      if (cached === 0) continue;
      u32[record + CLASS_CACHED_W] = 0;
      this.#release(record, cached - 1, c);
      frameCount += CLASS_SLAB_FRAMES[c];
    }
    return frameCount;
  }

  /**
   * Live objects and slabs of class `classIndex`.
   *
   * @param classIndex The size class.
   * @returns The class's counters from RAM.
   */
  classCounters(classIndex: number): { objectsInUse: number; slabCount: number } {
    const record = this.#classWord + classIndex * CLASS_RECORD_WORDS;
    return {
      objectsInUse: this.#u32[record + CLASS_IN_USE_W],
      slabCount: this.#u32[record + CLASS_SLAB_COUNT_W],
    };
  }

  /**
   * Describes the slab at `head` (for the dump; not a hot path).
   *
   * @param head A head frame whose header carries the slab magic.
   * @returns The slab's class, counts and state.
   */
  describe(head: number): SlabInfo {
    const u32 = this.#u32;
    const header = head * FRAME_WORDS;
    const classIndex = u32[header + SLAB_CLASS_W];
    const capacity = CLASS_CAPACITY[classIndex];
    const inUse = capacity - u32[header + SLAB_FREE_COUNT_W];
    const record = this.#classWord + classIndex * CLASS_RECORD_WORDS;
    const state = u32[record + CLASS_CACHED_W] === head + 1
      ? "cached"
      : inUse === capacity
      ? "full"
      : "partial";
    return { classIndex, frameCount: u32[header + SLAB_FRAME_COUNT_W], inUse, capacity, state };
  }

  /**
   * Checks one slab completely: header, bitmap against free list and bump
   * offset, and (when poisoning) the poison of every free-list object.
   *
   * @param head A head frame whose header carries the slab magic.
   * @returns The slab's description.
   * @throws {HeapCorruption} On the first inconsistency.
   */
  checkSlab(head: number): SlabInfo {
    const u32 = this.#u32;
    const header = head * FRAME_WORDS;
    const base = header * 4;
    const classIndex = u32[header + SLAB_CLASS_W];
    if (classIndex >= CLASS_COUNT) corrupt(base, "slab has an invalid class");
    const objectBytes = CLASS_OBJECT_BYTES[classIndex];
    const first = CLASS_FIRST_OFFSET[classIndex];
    const capacity = CLASS_CAPACITY[classIndex];
    const end = first + capacity * objectBytes;
    if (u32[header + SLAB_FRAME_COUNT_W] !== CLASS_SLAB_FRAMES[classIndex]) {
      corrupt(base, "slab frame count does not match its class");
    }
    const bump = u32[header + SLAB_BUMP_W];
    if (bump < first || bump > end || (bump - first) % objectBytes !== 0) {
      corrupt(base, "slab bump offset is invalid");
    }
    // Live objects: set bits, each at an object start below the bump offset.
    let live = 0;
    const granules = (CLASS_SLAB_FRAMES[classIndex] * FRAME_BYTES) / 16;
    for (let g = 0; g < granules; g++) {
      if ((u32[header + SLAB_BITMAP_W + (g >>> 5)] & (1 << (g & 31))) === 0) continue;
      const offset = g * 16;
      if (offset < first || offset >= bump || (offset - first) % objectBytes !== 0) {
        corrupt(base + offset, "live bit set where no object starts");
      }
      live++;
    }
    // Free objects: the free list, then everything past the bump offset.
    const seen = new Set<number>();
    for (
      let offset = u32[header + SLAB_FREE_HEAD_W];
      offset !== 0;
      offset = u32[header + offset / 4]
    ) {
      if (offset < first || offset >= bump || (offset - first) % objectBytes !== 0) {
        corrupt(base + offset, "free-list entry is not an object start");
      }
      if (seen.has(offset)) corrupt(base + offset, "free list has a cycle");
      if ((u32[header + SLAB_BITMAP_W + (offset >>> 9)] & (1 << ((offset >>> 4) & 31))) !== 0) {
        corrupt(base + offset, "free-list object is marked live");
      }
      if (this.#isPoisoning) {
        for (let i = 4; i < objectBytes; i++) {
          if (this.#u8[base + offset + i] !== POISON_FREE) {
            corrupt(base + offset + i, "free object was written after being freed");
          }
        }
      }
      seen.add(offset);
    }
    const freeCount = u32[header + SLAB_FREE_COUNT_W];
    if (live + freeCount !== capacity) corrupt(base, "slab live and free counts do not add up");
    if (seen.size + (end - bump) / objectBytes !== freeCount) {
      corrupt(base, "slab free list length is wrong");
    }
    return this.describe(head);
  }

  /**
   * Checks every class's partial list and counters against the slabs found
   * by walking the owner table.
   *
   * @param slabs The head frames of all slabs with their descriptions.
   * @returns Slab frames in total.
   * @throws {HeapCorruption} On the first inconsistency.
   */
  checkClasses(slabs: ReadonlyMap<number, SlabInfo>): number {
    const u32 = this.#u32;
    let frameCount = 0;
    for (let c = 0; c < CLASS_COUNT; c++) {
      const record = this.#classWord + c * CLASS_RECORD_WORDS;
      let slabCount = 0;
      let inUse = 0;
      let partial = 0;
      for (const [head, info] of slabs) {
        if (info.classIndex !== c) continue;
        slabCount++;
        inUse += info.inUse;
        frameCount += info.frameCount;
        if (info.state === "partial") partial++;
        if (info.state === "cached" && info.inUse !== 0) {
          corrupt(head * FRAME_BYTES, "cached slab is not empty");
        }
        if (info.state === "partial" && info.inUse === 0) {
          corrupt(head * FRAME_BYTES, "empty slab is neither cached nor given back");
        }
      }
      let walked = 0;
      let previous = 0;
      for (
        let slab = u32[record + CLASS_PARTIAL_W];
        slab !== 0;
        slab = u32[(slab - 1) * FRAME_WORDS + SLAB_NEXT_W]
      ) {
        const info = slabs.get(slab - 1);
        const address = (slab - 1) * FRAME_BYTES;
        if (info === undefined || info.classIndex !== c) {
          corrupt(address, "partial list holds a foreign slab");
        }
        if (info.state !== "partial") corrupt(address, `partial list holds a ${info.state} slab`);
        if (u32[(slab - 1) * FRAME_WORDS + SLAB_PREV_W] !== previous) {
          corrupt(address, "partial list back link is wrong");
        }
        if (++walked > partial) corrupt(address, "partial list is longer than the partial slabs");
        previous = slab;
      }
      if (walked !== partial) corrupt(record * 4, "a partial slab is missing from its list");
      if (slabCount !== u32[record + CLASS_SLAB_COUNT_W]) {
        corrupt(record * 4, "class slab count is wrong");
      }
      if (inUse !== u32[record + CLASS_IN_USE_W]) {
        corrupt(record * 4, "class live object count is wrong");
      }
    }
    if (frameCount !== u32[this.#rootWord + ROOT_SLAB_FRAMES_W]) {
      corrupt(this.#rootWord * 4, "slab frame count is wrong");
    }
    return frameCount;
  }

  /**
   * Gives a slab back to the frame source whatever it holds (for destroy).
   *
   * @param head The slab's head frame.
   */
  discard(head: number): void {
    const classIndex = this.#u32[head * FRAME_WORDS + SLAB_CLASS_W];
    this.#release(this.#classWord + classIndex * CLASS_RECORD_WORDS, head, classIndex);
  }

  /** Gives the class a slab to allocate from (its cached one or a new one); 0 if out of memory. */
  #refill(classIndex: number, record: number): number {
    const u32 = this.#u32;
    let slab = u32[record + CLASS_CACHED_W];
    if (slab !== 0) {
      u32[record + CLASS_CACHED_W] = 0;
    } else {
      const frameCount = CLASS_SLAB_FRAMES[classIndex];
      const head = this.#frames.acquire(frameCount);
      if (head < 0) return 0;
      const header = head * FRAME_WORDS;
      u32[header + SLAB_MAGIC_W] = SLAB_MAGIC;
      u32[header + SLAB_CLASS_W] = classIndex;
      u32[header + SLAB_FREE_COUNT_W] = CLASS_CAPACITY[classIndex];
      u32[header + SLAB_FREE_HEAD_W] = 0;
      u32[header + SLAB_BUMP_W] = CLASS_FIRST_OFFSET[classIndex];
      u32[header + SLAB_FRAME_COUNT_W] = frameCount;
      u32.fill(0, header + SLAB_BITMAP_W, header + SLAB_BITMAP_W + frameCount * 8);
      u32[record + CLASS_SLAB_COUNT_W]++;
      u32[this.#rootWord + ROOT_SLAB_FRAMES_W] += frameCount;
      slab = head + 1;
    }
    this.#push(record, slab);
    return slab;
  }

  /** An empty slab: cached if the class has none, else given back. */
  #retire(record: number, head: number, classIndex: number): void {
    this.#unlink(record, head + 1);
    if (this.#u32[record + CLASS_CACHED_W] === 0) this.#u32[record + CLASS_CACHED_W] = head + 1;
    else this.#release(record, head, classIndex);
  }

  /** Gives a slab's frames back to the frame source. */
  #release(record: number, head: number, classIndex: number): void {
    const frameCount = CLASS_SLAB_FRAMES[classIndex];
    // Clear the magic while the frame is still ours, so a stale copy of the
    // header cannot pass for a slab.
    this.#u32[head * FRAME_WORDS + SLAB_MAGIC_W] = 0;
    this.#u32[record + CLASS_SLAB_COUNT_W]--;
    this.#u32[this.#rootWord + ROOT_SLAB_FRAMES_W] -= frameCount;
    this.#frames.release(head, frameCount);
  }

  /** Pushes a slab (frame + 1) on the front of the class's partial list. */
  #push(record: number, slab: number): void {
    const u32 = this.#u32;
    const first = u32[record + CLASS_PARTIAL_W];
    const header = (slab - 1) * FRAME_WORDS;
    u32[header + SLAB_NEXT_W] = first;
    u32[header + SLAB_PREV_W] = 0;
    if (first !== 0) u32[(first - 1) * FRAME_WORDS + SLAB_PREV_W] = slab;
    u32[record + CLASS_PARTIAL_W] = slab;
  }

  /** Takes a slab (frame + 1) off the class's partial list. */
  #unlink(record: number, slab: number): void {
    const u32 = this.#u32;
    const header = (slab - 1) * FRAME_WORDS;
    const next = u32[header + SLAB_NEXT_W];
    const prev = u32[header + SLAB_PREV_W];
    if (prev === 0) u32[record + CLASS_PARTIAL_W] = next;
    else u32[(prev - 1) * FRAME_WORDS + SLAB_NEXT_W] = next;
    if (next !== 0) u32[(next - 1) * FRAME_WORDS + SLAB_PREV_W] = prev;
    u32[header + SLAB_NEXT_W] = 0;
    u32[header + SLAB_PREV_W] = 0;
  }

  /** Tells an object start that is free from an address no object starts at. */
  #whyNotLive(header: number, classIndex: number, offset: number): number {
    const relative = offset - CLASS_FIRST_OFFSET[classIndex];
    const isObjectStart = relative >= 0 && relative % CLASS_OBJECT_BYTES[classIndex] === 0 &&
      offset < this.#u32[header + SLAB_BUMP_W];
    return isObjectStart ? ALREADY_FREE : NOT_ALLOCATED;
  }
}

/** Throws a HeapCorruption found while checking slabs. */
function corrupt(address: number, reason: string): never {
  throw new HeapCorruption("checkInvariants", address, reason);
}
