/**
 * The heap's frames: taking them from the FrameSource, giving them back, and
 * the owner table that says, for any physical address, whether the heap owns
 * its frame and which slab or arena it belongs to.
 *
 * The owner table is a two-level radix table in RAM. The directory (in the
 * root descriptor) has one entry per 4 MiB of physical address space; a leaf
 * is one frame holding a u32 per frame of its 4 MiB: 0 when the heap does not
 * own the frame, else the head frame + 1 of its slab or arena. Leaves are
 * taken on demand and given back when they empty, so the table costs a frame
 * per 4 MiB the heap actually uses. A lookup reads two words and never leaves
 * the directory or a leaf, whatever address it is given.
 *
 * @module
 */

import type { FrameNumber, PhysicalMemory } from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";
import type { FrameSource } from "./frame_source.ts";
import { HeapCorruption } from "./_heap_corruption.ts";
import {
  DIRECTORY_ENTRY_WORDS,
  DIRECTORY_OFFSET,
  FRAME_BYTES,
  FRAME_WORDS,
  FRAMES_PER_LEAF,
  ROOT_FRAMES_HELD_W,
  ROOT_LEAF_FRAMES_W,
} from "./_kmem_layout.ts";

/** Frames the heap holds, with their owners recorded in RAM. */
export class HeapFrames {
  readonly #u32: Uint32Array;
  readonly #source: FrameSource;
  readonly #rootWord: number;
  readonly #directoryWord: number;
  readonly #entryCount: number;

  /**
   * Wraps the owner table of the root descriptor at `rootAddress`.
   *
   * @param memory The RAM the table lives in.
   * @param source Where frames come from and go back to.
   * @param rootAddress Physical address of the root descriptor.
   * @param entryCount Directory entries: one per 4 MiB up to the end of RAM.
   */
  constructor(
    memory: PhysicalMemory,
    source: FrameSource,
    rootAddress: number,
    entryCount: number,
  ) {
    this.#u32 = memory.u32;
    this.#source = source;
    this.#rootWord = rootAddress / 4;
    this.#directoryWord = (rootAddress + DIRECTORY_OFFSET) / 4;
    this.#entryCount = entryCount;
  }

  /**
   * The owner of the frame holding `address`.
   *
   * @param address A physical address below the end of RAM.
   * @returns The head frame + 1 of the slab or arena owning it, or 0.
   */
  ownerOf(address: number): number {
    const frame = (address / FRAME_BYTES) | 0;
    const leaf = this.#u32[this.#directoryWord + (frame >>> 10) * DIRECTORY_ENTRY_WORDS];
    if (leaf === 0) return 0;
    return this.#u32[(leaf - 1) * FRAME_WORDS + (frame & (FRAMES_PER_LEAF - 1))];
  }

  /**
   * Takes `frameCount` contiguous frames from the frame source and records
   * the heap as their owner, the first frame as head.
   *
   * @param frameCount Frames to take, at least 1.
   * @returns The first frame, or -1 when the frame source is out of memory.
   * @throws {KernelError} Any frame-source error other than OutOfMemory.
   */
  acquire(frameCount: number): number {
    const first = this.#take(frameCount);
    if (first < 0) return -1;
    if (!this.#ensureLeaves(first, frameCount)) {
      this.#give(first, frameCount);
      return -1;
    }
    this.#record(first, frameCount, first + 1);
    this.#u32[this.#rootWord + ROOT_FRAMES_HELD_W] += frameCount;
    return first;
  }

  /**
   * Forgets the heap's ownership of `frameCount` frames from `first` and gives
   * them back to the frame source, with any leaf left empty.
   *
   * @param first The head frame of a slab or arena.
   * @param frameCount Its frame count.
   */
  release(first: number, frameCount: number): void {
    this.#record(first, frameCount, 0);
    this.#give(first, frameCount);
    this.#u32[this.#rootWord + ROOT_FRAMES_HELD_W] -= frameCount;
  }

  /**
   * Head frames of every slab and arena, in address order (not a hot path).
   *
   * @returns The head frames, ascending.
   */
  heads(): number[] {
    const u32 = this.#u32;
    const heads: number[] = [];
    for (let d = 0; d < this.#entryCount; d++) {
      const leaf = u32[this.#directoryWord + d * DIRECTORY_ENTRY_WORDS];
      if (leaf === 0) continue;
      for (let i = 0; i < FRAMES_PER_LEAF; i++) {
        const frame = d * FRAMES_PER_LEAF + i;
        if (u32[(leaf - 1) * FRAME_WORDS + i] === frame + 1) heads.push(frame);
      }
    }
    return heads;
  }

  /**
   * Frames holding owner-table leaves, in address order (not a hot path).
   *
   * @returns The leaf frames, ascending.
   */
  leafFrames(): number[] {
    const u32 = this.#u32;
    const leaves: number[] = [];
    for (let d = 0; d < this.#entryCount; d++) {
      const leaf = u32[this.#directoryWord + d * DIRECTORY_ENTRY_WORDS];
      if (leaf !== 0) leaves.push(leaf - 1);
    }
    return leaves.sort((a, b) => a - b);
  }

  /**
   * Checks the table: every directory count matches its leaf, every entry
   * names a head that owns itself, and a head's run of frames matches the
   * frame count `frameCountOf` reads from its header.
   *
   * @param frameCountOf Frame count of the slab or arena at a head frame.
   * @returns Frames owned through the table.
   * @throws {HeapCorruption} On the first inconsistency.
   */
  check(frameCountOf: (head: number) => number): number {
    const u32 = this.#u32;
    let owned = 0;
    let leafFrames = 0;
    let expectedHead = -1;
    let runEnd = 0;
    for (let d = 0; d < this.#entryCount; d++) {
      const entryWord = this.#directoryWord + d * DIRECTORY_ENTRY_WORDS;
      const leaf = u32[entryWord];
      if (leaf === 0) {
        if (u32[entryWord + 1] !== 0) corrupt(entryWord * 4, "empty directory entry has a count");
        if (runEnd > d * FRAMES_PER_LEAF) corrupt(entryWord * 4, "run crosses a missing leaf");
        continue;
      }
      leafFrames++;
      let count = 0;
      for (let i = 0; i < FRAMES_PER_LEAF; i++) {
        const frame = d * FRAMES_PER_LEAF + i;
        const owner = u32[(leaf - 1) * FRAME_WORDS + i];
        if (frame < runEnd) {
          if (owner !== expectedHead + 1) {
            corrupt(frame * FRAME_BYTES, "frame missing from its run");
          }
          count++;
        } else if (owner === frame + 1) {
          expectedHead = frame;
          runEnd = frame + frameCountOf(frame);
          count++;
        } else if (owner !== 0) {
          corrupt(frame * FRAME_BYTES, "owner entry names a frame that is not a head");
        }
      }
      if (count !== u32[entryWord + 1]) corrupt(entryWord * 4, "directory count is wrong");
      owned += count;
    }
    if (leafFrames !== u32[this.#rootWord + ROOT_LEAF_FRAMES_W]) {
      corrupt(this.#rootWord * 4, "leaf frame count is wrong");
    }
    return owned;
  }

  /** Takes frames from the source; -1 when it is out of memory. */
  #take(frameCount: number): number {
    try {
      return frameCount === 1
        ? this.#source.allocate()
        : this.#source.allocateContiguous(frameCount, 1);
    } catch (error) {
      if (error instanceof KernelError && error.code === "OutOfMemory") return -1;
      throw error;
    }
  }

  /** Gives frames back to the source. */
  #give(first: number, frameCount: number): void {
    if (frameCount === 1) this.#source.free(first as FrameNumber);
    else this.#source.freeContiguous(first as FrameNumber, frameCount);
  }

  /** Makes sure every leaf covering the frames exists; false when out of memory. */
  #ensureLeaves(first: number, frameCount: number): boolean {
    const u32 = this.#u32;
    const lastEntry = (first + frameCount - 1) >>> 10;
    for (let d = first >>> 10; d <= lastEntry; d++) {
      const entryWord = this.#directoryWord + d * DIRECTORY_ENTRY_WORDS;
      if (u32[entryWord] !== 0) continue;
      const leaf = this.#take(1);
      if (leaf < 0) {
        this.#dropEmptyLeaves(first >>> 10, d);
        return false;
      }
      u32.fill(0, leaf * FRAME_WORDS, (leaf + 1) * FRAME_WORDS);
      u32[entryWord] = leaf + 1;
      u32[this.#rootWord + ROOT_LEAF_FRAMES_W]++;
      u32[this.#rootWord + ROOT_FRAMES_HELD_W]++;
    }
    return true;
  }

  /** Writes `owner` into the entries of the frames and keeps leaf counts; frees emptied leaves. */
  #record(first: number, frameCount: number, owner: number): void {
    const u32 = this.#u32;
    const delta = owner === 0 ? -1 : 1;
    let frame = first;
    const end = first + frameCount;
    while (frame < end) {
      const d = frame >>> 10;
      const entryWord = this.#directoryWord + d * DIRECTORY_ENTRY_WORDS;
      const leafWord = (u32[entryWord] - 1) * FRAME_WORDS;
      const stop = Math.min(end, (d + 1) * FRAMES_PER_LEAF);
      u32.fill(
        owner,
        leafWord + (frame & (FRAMES_PER_LEAF - 1)),
        leafWord + (stop - d * FRAMES_PER_LEAF),
      );
      u32[entryWord + 1] += delta * (stop - frame);
      frame = stop;
    }
    if (owner === 0) this.#dropEmptyLeaves(first >>> 10, (end - 1) >>> 10);
  }

  /** Gives back the leaves of directory entries `from` to `to` (inclusive) that own no frame. */
  #dropEmptyLeaves(from: number, to: number): void {
    const u32 = this.#u32;
    for (let d = from; d <= to; d++) {
      const entryWord = this.#directoryWord + d * DIRECTORY_ENTRY_WORDS;
      const leaf = u32[entryWord];
      if (leaf === 0 || u32[entryWord + 1] !== 0) continue;
      u32[entryWord] = 0;
      this.#give(leaf - 1, 1);
      u32[this.#rootWord + ROOT_LEAF_FRAMES_W]--;
      u32[this.#rootWord + ROOT_FRAMES_HELD_W]--;
    }
  }
}

/** Throws a HeapCorruption found while checking the owner table. */
function corrupt(address: number, reason: string): never {
  throw new HeapCorruption("checkInvariants", address, reason);
}
