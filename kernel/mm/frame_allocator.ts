/**
 * The physical frame allocator: one pool per usable memory-map region, each a
 * hierarchical bitmap in RAM, so finding a free frame costs O(levels) however
 * large or fragmented memory is.
 *
 * Everything that changes lives in simulated RAM, in a state block the
 * allocator takes from the early allocator at boot; the JavaScript object only
 * caches layout numbers that never change (where a pool's bitmap starts, how
 * many words each level has). The layout, in 32-bit little-endian words:
 *
 * ```
 * state block (physical address: FrameAllocator.stateAddr)
 *   header   [0] magic 0x4c415246 ("FRAL" in a byte dump)  [1] pool count
 *            [2] frame metadata address, low 32 bits  [3] high 32 bits
 *            [4] frames covered by the metadata  [5] debug flags (1 poison, 2 sites)
 *            [6] word offset of the metadata page states in this block  [7] zero
 *   pool i   16 words at 8 + 16 * i:
 *            [0] base frame  [1] frame count  [2] free frames  [3] reserved frames
 *            [4] hint frame  [5] hint frame count  [6] hint alignment (frames)
 *            [7] level count  [8] bitmap address, low 32 bits  [9] high 32 bits
 *            [10] first free word: no level-0 word below it has a free frame
 *            [11] level 0's first word, as a word index into this state block
 *            [12..15] zero
 *   bitmaps  per pool, in pool order:
 *            level 0:  one word per 32 frames; bit b of word w is frame
 *                      base + 32 * w + b; 0 = free, 1 = allocated or reserved
 *                      (or past the pool's end), so zero RAM reads as free
 *            level 1:  one bit per level-0 word: 1 = that word has a free frame
 *            level k:  one bit per level k-1 word: 1 = that word is not zero
 *            ...       up to a single top word
 *            reserved: one word per 32 frames, like level 0; 1 = reserved
 *            reserved summary: one bit per reserved word: 1 = that word is not
 *                      zero; a word whose bit is 0 is zero whatever RAM holds
 *                      there, so the reserved words need no initialisation
 *   metadata page states: one word per 1024 frames (see frame_metadata.ts)
 * ```
 *
 * A frame is in exactly one state: free, reserved (reserved bit set) or
 * allocated. The algorithms below work on free bits (1 = free); level 0 keeps
 * them inverted in RAM, which makes a new pool's level 0, megabytes on a large
 * machine, the zero RAM already holds: booting reads it and writes only words
 * that are not zero. Bits past the end of a pool are free bits of zero in
 * every level. Reservations are never undone, and they cluster (the first
 * MiB, the kernel image), so freeing a frame reads its reserved word only
 * when the small reserved summary says the word has a reserved frame: the hot
 * path touches one word per 32 frames, which keeps it in cache on large
 * machines.
 *
 * Allocating the lowest free frame starts from the first-free-word hint in
 * the pool descriptor, as a bitmap allocator with a next-free hint does: the
 * hint word usually has a free frame, so an allocation reads one word and
 * takes its lowest set bit; only when that word empties does it climb the
 * summaries to the next one. Freeing a frame below the hint moves it down.
 *
 * The contiguous-run search uses a second hint kept in the pool descriptor: no run
 * of `hint frame count` free frames aligned to `hint alignment` starts below
 * `hint frame`. A search for a run at least as long and as aligned starts
 * there; freeing a frame moves the hint down to the lowest start its run could
 * now have. Together with word-parallel run detection this keeps repeated
 * aligned allocations on fragmented memory linear over the whole sequence
 * instead of quadratic.
 *
 * @module
 */

import {
  type FrameNumber,
  frameStart,
  hex,
  PAGE_SIZE_4K,
  type PhysAddr,
  type PhysicalMemory,
  type Tracer,
} from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";
import { KernelPanic } from "../panic.ts";
import {
  EarlyFrameAllocator,
  framesInside,
  framesTouching,
  type PhysRange,
} from "./early_allocator.ts";
import { FRAME_CACHED, FRAME_UNUSABLE, FRAME_UNUSED, FrameMetadata } from "./frame_metadata.ts";
import type { FrameSource } from "./frame_source.ts";

/** Byte written over a frame when it is freed, in poison mode ("dead, freed"). */
export const FREE_POISON_BYTE = 0xdf;
/** Byte written over a frame when it is allocated, in poison mode. */
export const ALLOC_POISON_BYTE = 0xa5;
/** The state block's first word: the bytes "FRAL" read as a little-endian u32. */
export const FRAME_ALLOCATOR_MAGIC = 0x4c41_5246;

// Header and pool descriptor word offsets (see the module comment).
const H_MAGIC = 0;
const H_POOL_COUNT = 1;
const H_METADATA_LO = 2;
const H_METADATA_HI = 3;
const H_METADATA_FRAMES = 4;
const H_FLAGS = 5;
const H_PAGE_STATES = 6;
const HEADER_WORDS = 8;
const P_BASE_FRAME = 0;
const P_FRAME_COUNT = 1;
const P_FREE = 2;
const P_RESERVED = 3;
const P_HINT_FRAME = 4;
const P_HINT_COUNT = 5;
const P_HINT_ALIGN = 6;
const P_LEVEL_COUNT = 7;
const P_BITMAP_LO = 8;
const P_BITMAP_HI = 9;
const P_FIRST_FREE_WORD = 10;
const P_LEVEL0_WORD = 11;
const POOL_WORDS = 16;
const FLAG_POISON = 1;
const FLAG_SITES = 2;
/** Pools are limited to 2^31 frames so that bit arithmetic stays in int32. */
const MAX_FRAME_NUMBER = 2 ** 31;
/** The largest alignment accepted by allocateContiguous, in frames. */
const MAX_ALIGN_FRAMES = 2 ** 30;

/** Debug switches of the frame allocator. */
export interface FrameAllocatorDebugOptions {
  /** Fill freed frames with {@linkcode FREE_POISON_BYTE} and allocated ones with {@linkcode ALLOC_POISON_BYTE}. */
  readonly poison?: boolean;
  /** Record where page handles were allocated, for leak reports. */
  readonly trackAllocationSites?: boolean;
}

/** How to build a frame allocator. */
export interface FrameAllocatorOptions {
  /** The usable (available RAM) regions of the memory map, in bytes; one pool each. */
  readonly usableRegions: readonly PhysRange[];
  /** Ranges never to hand out: the first 1 MiB, the kernel image, the boot information, modules. */
  readonly exclusions?: readonly PhysRange[];
  /** Debug switches. */
  readonly debug?: FrameAllocatorDebugOptions;
}

/** Statistics of one pool. */
export interface PoolStats {
  /** Physical address of the pool's first frame. */
  readonly base: PhysAddr;
  /** Frames in the pool. */
  readonly frameCount: number;
  /** Frames free to allocate. */
  readonly freeFrames: number;
  /** Frames reserved (never allocatable). */
  readonly reservedFrames: number;
  /** Frames allocated: frameCount - freeFrames - reservedFrames. */
  readonly allocatedFrames: number;
}

/** Statistics of the whole allocator: sums over the pools, and each pool. */
export interface FrameStats {
  /** Frames in all pools. */
  readonly totalFrames: number;
  /** Frames free to allocate. */
  readonly freeFrames: number;
  /** Frames reserved. */
  readonly reservedFrames: number;
  /** Frames allocated. */
  readonly allocatedFrames: number;
  /** Per pool, in address order. */
  readonly pools: readonly PoolStats[];
}

/** The state of one frame, as {@linkcode FrameAllocator.stateOf} reports it. */
export type FrameState = "free" | "allocated" | "reserved" | "outside";

/** How many frames of a range are in each state, from {@linkcode FrameAllocator.countStates}. */
export interface FrameStateCounts {
  /** Free frames. */
  readonly free: number;
  /** Allocated frames. */
  readonly allocated: number;
  /** Reserved frames. */
  readonly reserved: number;
  /** Frames outside every pool. */
  readonly outside: number;
}

/** A physical range the allocator keeps its own state in, from {@linkcode FrameAllocator.metadataRanges}. */
export interface AllocatorMetadataRange {
  /** First byte. */
  readonly base: PhysAddr;
  /** Length in bytes (whole frames). */
  readonly length: number;
  /** What it holds. */
  readonly what: string;
}

/** Immutable layout of one pool; its state is in RAM. */
class Pool {
  /** First frame number. */
  readonly baseFrame: number;
  /** Number of frames. */
  readonly frameCount: number;
  /** One past the last frame number. */
  readonly endFrame: number;
  /** Index into the state view of the pool descriptor. */
  readonly desc: number;
  /** Index into the state view of each free-bit level; level 0 has a bit per frame. */
  readonly levels: readonly number[];
  /** levels[0], for the allocation fast path. */
  readonly level0: number;
  /** Words in each level. */
  readonly levelWords: readonly number[];
  /** Index into the state view of the reserved bits (a word per level-0 word). */
  readonly reserved: number;
  /** Index into the state view of the reserved summary (a bit per reserved word). */
  readonly reservedSummary: number;
  /** Index of the top level (a single word). */
  readonly top: number;

  constructor(baseFrame: number, frameCount: number, desc: number, bitmapIndex: number) {
    this.baseFrame = baseFrame;
    this.frameCount = frameCount;
    this.endFrame = baseFrame + frameCount;
    this.desc = desc;
    const levelWords = levelSizes(frameCount);
    const levels: number[] = [];
    let index = bitmapIndex;
    for (let k = 0; k < levelWords.length; k++) {
      levels.push(index);
      index += levelWords[k];
    }
    this.reserved = index;
    this.reservedSummary = index + levelWords[0];
    this.levels = levels;
    this.level0 = levels[0];
    this.levelWords = levelWords;
    this.top = levelWords.length - 1;
  }

  /** Total 32-bit words of all the pool's bitmap levels. */
  static bitmapWords(frameCount: number): number {
    const sizes = levelSizes(frameCount);
    return sizes.reduce((sum, words) => sum + words, sizes[0] + Math.ceil(sizes[0] / 32));
  }
}

/**
 * The physical frame allocator. It implements {@linkcode FrameSource} and
 * adds specific-frame allocation, reservation, statistics and a debug
 * invariant check.
 *
 * @example
 * ```ts
 * import { PhysicalMemory } from "../../hal/mod.ts";
 * import { FrameAllocator } from "./frame_allocator.ts";
 * const memory = PhysicalMemory.contiguous(64 * 2 ** 20);
 * const frames = FrameAllocator.create(memory, {
 *   usableRegions: [{ base: 0, length: 64 * 2 ** 20 }],
 *   exclusions: [{ base: 0, length: 2 ** 20 }],
 * });
 * const frame = frames.allocate(); // 0x100, the lowest free frame
 * frames.free(frame);
 * ```
 */
export class FrameAllocator implements FrameSource {
  /** The RAM the allocator manages and keeps its state in. */
  readonly memory: PhysicalMemory;
  /** The per-frame reference counts behind page handles. */
  readonly metadata: FrameMetadata;
  /** Physical address of the state block (header, pool descriptors, bitmaps). */
  readonly stateAddr: PhysAddr;
  /** Whether freed and allocated frames are poisoned (debug). */
  readonly isPoisoning: boolean;
  /**
   * A view of the state block: the same RAM bytes as `memory.u32`, indexed
   * from the block's start. V8 compiles typed-array accesses with int32
   * indices to a few instructions but falls back to a generic path (about
   * 45 ns) for indices of 2^31 and up, which `memory.u32` needs above 8 GiB.
   */
  readonly #state: Uint32Array;
  readonly #pools: readonly Pool[];
  readonly #poolCount: number;
  /** Frames of the state block. */
  readonly #stateFrames: number;
  /** Event tracing (`--trace mm`); undefined when off. */
  #tracer: Tracer | undefined;
  /** Whether poisoning or tracing is on: the hot paths test this one field. */
  #hasHooks: boolean;

  private constructor(
    memory: PhysicalMemory,
    metadata: FrameMetadata,
    state: Uint32Array,
    pools: readonly Pool[],
    isPoisoning: boolean,
  ) {
    this.memory = memory;
    this.metadata = metadata;
    this.stateAddr = state.byteOffset as PhysAddr;
    this.#state = state;
    this.#pools = pools;
    this.#poolCount = pools.length;
    this.#stateFrames = state.length / (PAGE_SIZE_4K / 4);
    this.isPoisoning = isPoisoning;
    this.#hasHooks = isPoisoning;
  }

  /**
   * Whether `value` is a FrameAllocator as {@linkcode FrameAllocator.create}
   * makes one: not a subclass, not a proxy of one. Its `stateOf` and
   * `countStates` then agree by construction.
   *
   * @param value Anything.
   * @returns Whether it is a stock frame allocator.
   */
  static isStock(value: unknown): value is FrameAllocator {
    return typeof value === "object" && value !== null && #state in value &&
      Object.getPrototypeOf(value) === FrameAllocator.prototype;
  }

  /**
   * Sets (or with `undefined` removes) the tracer that receives `mm` events:
   * one line per allocation and free.
   *
   * @param tracer The tracer.
   */
  setTracer(tracer: Tracer | undefined): void {
    this.#tracer = tracer;
    this.#hasHooks = this.isPoisoning || tracer !== undefined;
  }

  /**
   * Boots a frame allocator: runs an early allocator over the usable regions
   * minus the exclusions, places the allocator's state and the frame metadata
   * with it, reserves the exclusions and every early frame, and retires it.
   *
   * @param memory The machine's RAM.
   * @param options The memory map's usable regions, exclusions and debug switches.
   * @returns The running allocator.
   * @throws {RangeError} If usable regions overlap or are not RAM.
   * @throws {KernelError} `OutOfMemory` if the state does not fit in usable memory.
   */
  static create(memory: PhysicalMemory, options: FrameAllocatorOptions): FrameAllocator {
    const early = new EarlyFrameAllocator(options.usableRegions, options.exclusions ?? []);
    return FrameAllocator.fromEarlyAllocator(memory, early, options.debug ?? {});
  }

  /**
   * Boots a frame allocator from an early allocator the kernel has already
   * been using: every frame it handed out, before or now, stays reserved.
   *
   * @param memory The machine's RAM.
   * @param early The early allocator (not yet retired); it is retired on return.
   * @param debug Debug switches.
   * @returns The running allocator.
   * @throws {RangeError} If usable regions overlap or are not RAM.
   * @throws {KernelError} `OutOfMemory` if the state does not fit in usable memory.
   */
  static fromEarlyAllocator(
    memory: PhysicalMemory,
    early: EarlyFrameAllocator,
    debug: FrameAllocatorDebugOptions = {},
  ): FrameAllocator {
    const regions = poolRegions(memory, early.usableRegions);
    const metadataFrames = regions.reduce((end, r) => Math.max(end, r.endFrame), 0);
    const bitmapWords = regions.map((r) => Pool.bitmapWords(r.endFrame - r.firstFrame));
    const pageStatesWord = HEADER_WORDS + POOL_WORDS * regions.length +
      bitmapWords.reduce((sum, words) => sum + words, 0);
    const stateWords = pageStatesWord + FrameMetadata.pageStatesSizeBytes(metadataFrames) / 4;
    const stateFrames = framesFor(stateWords * 4);
    const stateAddr = frameStart(early.allocate(stateFrames));
    const metadataAddr = frameStart(
      early.allocate(Math.max(1, framesFor(FrameMetadata.sizeBytes(metadataFrames)))),
    );
    const metadata = new FrameMetadata(memory, metadataAddr, metadataFrames, {
      trackAllocationSites: debug.trackAllocationSites,
      pageStatesBase: (stateAddr + pageStatesWord * 4) as PhysAddr,
    });
    // Every frame unused, without writing the array (see frame_metadata.ts).
    metadata.reset();

    // The header starts the state block, so its word offsets are view indices.
    const u32 = new Uint32Array(memory.buffer, stateAddr, stateFrames * (PAGE_SIZE_4K / 4));
    u32.fill(0, 0, HEADER_WORDS + POOL_WORDS * regions.length);
    u32[H_MAGIC] = FRAME_ALLOCATOR_MAGIC;
    u32[H_POOL_COUNT] = regions.length;
    u32[H_METADATA_LO] = metadataAddr % 2 ** 32;
    u32[H_METADATA_HI] = Math.floor(metadataAddr / 2 ** 32);
    u32[H_METADATA_FRAMES] = metadataFrames;
    u32[H_FLAGS] = (debug.poison ? FLAG_POISON : 0) | (debug.trackAllocationSites ? FLAG_SITES : 0);
    u32[H_PAGE_STATES] = pageStatesWord;

    const pools: Pool[] = [];
    let bitmapIndex = HEADER_WORDS + POOL_WORDS * regions.length;
    let poolEnd = 0;
    for (let i = 0; i < regions.length; i++) {
      const { firstFrame, endFrame } = regions[i];
      const pool = new Pool(
        firstFrame,
        endFrame - firstFrame,
        HEADER_WORDS + POOL_WORDS * i,
        bitmapIndex,
      );
      initPool(u32, pool, stateAddr + bitmapIndex * 4);
      // Frames between pools are unusable; pool frames start unused (reset did that).
      metadata.fill(poolEnd, firstFrame - poolEnd, FRAME_UNUSABLE);
      poolEnd = endFrame;
      pools.push(pool);
      bitmapIndex += bitmapWords[i];
    }

    const allocator = new FrameAllocator(memory, metadata, u32, pools, debug.poison ?? false);
    for (const range of early.exclusions) allocator.reserveRange(range.base, range.length);
    for (const range of early.retire()) allocator.reserveRange(range.base, range.length);
    return allocator;
  }

  /**
   * Attaches to an allocator that is already running, from its state block
   * in RAM: what another CPU (a Worker over the same RAM) does to use the
   * allocator the boot CPU built. Everything but the layout is read from
   * RAM at each use, so both handles see one allocator; callers on several
   * CPUs must serialise their calls (a lock, as the kernel's SMP layer takes).
   *
   * @param memory The machine's RAM.
   * @param stateAddr Physical address of the state block ({@linkcode FrameAllocator.stateAddr}).
   * @returns A handle to the same allocator.
   * @throws {KernelError} `InvalidAddress` if no state block is there.
   */
  static attach(memory: PhysicalMemory, stateAddr: PhysAddr): FrameAllocator {
    if (!memory.isRam(stateAddr, HEADER_WORDS * 4) || stateAddr % PAGE_SIZE_4K !== 0) {
      throw new KernelError("InvalidAddress", `No frame allocator state at ${hex(stateAddr)}`);
    }
    const header = new Uint32Array(memory.buffer, stateAddr, HEADER_WORDS);
    if (header[H_MAGIC] !== FRAME_ALLOCATOR_MAGIC) {
      throw new KernelError(
        "InvalidAddress",
        `No frame allocator state at ${hex(stateAddr)}: its magic is ${hex(header[H_MAGIC])}`,
      );
    }
    const metadataAddr = header[H_METADATA_LO] + header[H_METADATA_HI] * 2 ** 32;
    const metadataFrames = header[H_METADATA_FRAMES];
    const flags = header[H_FLAGS];
    const pageStatesWord = header[H_PAGE_STATES];
    const stateWords = pageStatesWord + FrameMetadata.pageStatesSizeBytes(metadataFrames) / 4;
    const stateFrames = framesFor(stateWords * 4);
    const u32 = new Uint32Array(memory.buffer, stateAddr, stateFrames * (PAGE_SIZE_4K / 4));
    const metadata = new FrameMetadata(memory, metadataAddr as PhysAddr, metadataFrames, {
      trackAllocationSites: (flags & FLAG_SITES) !== 0,
      pageStatesBase: (stateAddr + pageStatesWord * 4) as PhysAddr,
    });
    const pools: Pool[] = [];
    for (let i = 0, desc = HEADER_WORDS; i < header[H_POOL_COUNT]; i++, desc += POOL_WORDS) {
      pools.push(
        new Pool(
          u32[desc + P_BASE_FRAME],
          u32[desc + P_FRAME_COUNT],
          desc,
          u32[desc + P_LEVEL0_WORD],
        ),
      );
    }
    return new FrameAllocator(memory, metadata, u32, pools, (flags & FLAG_POISON) !== 0);
  }

  /**
   * Allocates the lowest free frame of the lowest pool that has one.
   *
   * @returns The frame. Its contents are whatever was there (or the allocation poison).
   * @throws {KernelError} `OutOfMemory` if every frame is allocated or reserved.
   */
  allocate(): FrameNumber {
    // The common case, kept small so that V8 inlines it into its callers:
    // the first pool has a free frame in its first non-empty level-0 word
    // (the hint) or, when that one is used up, in the next (a sequential
    // refill). Anything else (another pool, the summaries to search, tracing
    // or poisoning on, corrupted state) is #allocateFrom's.
    const u32 = this.#state;
    const desc = HEADER_WORDS;
    const freeFrames = u32[desc + P_FREE];
    if (freeFrames !== 0 && this.#poolCount !== 0 && !this.#hasHooks) {
      const level0 = u32[desc + P_LEVEL0_WORD];
      const frameCount = u32[desc + P_FRAME_COUNT];
      let w = u32[desc + P_FIRST_FREE_WORD];
      let word = ~u32[level0 + w]; // the free bits
      if (word === 0) {
        w++;
        word = w << 5 < frameCount ? ~u32[level0 + w] : 0;
      }
      const rest = word & (word - 1); // without the lowest
      const offset = (w << 5) | (31 - Math.clz32(word ^ rest));
      // (A frame past the pool would mean corrupted state: #allocateFrom reports it.)
      if (word !== 0 && offset >>> 0 < frameCount) {
        u32[desc + P_FIRST_FREE_WORD] = w;
        u32[level0 + w] = ~rest;
        if (rest === 0) clearSummaries(u32, this.#pools[0], w);
        u32[desc + P_FREE] = freeFrames - 1;
        return (u32[desc + P_BASE_FRAME] + offset) as FrameNumber;
      }
    }
    return this.#allocateFrom(0);
  }

  /**
   * allocate() for every case: the lowest free frame of the lowest pool
   * from pool `first` on that has one. One method, the descent through the
   * summaries included, so that it stays above V8's inlining limit for one
   * function (460 bytes of bytecode): allocate() then stays small enough for
   * its callers to inline even after a workload has made this path hot.
   */
  #allocateFrom(first: number): FrameNumber {
    const u32 = this.#state;
    // The fast path reads only the state block (pool descriptors and level 0);
    // the Pool objects are for the rare climb through the summaries.
    const poolCount = this.#poolCount;
    for (
      let i = first, desc = HEADER_WORDS + first * POOL_WORDS;
      i < poolCount;
      i++, desc += POOL_WORDS
    ) {
      const freeFrames = u32[desc + P_FREE];
      if (freeFrames === 0) continue;
      const level0 = u32[desc + P_LEVEL0_WORD];
      // Every word below the hint is empty, so the hint word's lowest set bit
      // is the lowest free frame; if the word is empty, the summaries lead to
      // the next non-empty one (there is one: the pool has a free frame).
      const hint = u32[desc + P_FIRST_FREE_WORD];
      let w = hint;
      let word = ~u32[level0 + w]; // the free bits
      if (word === 0) {
        // Every word up to the hint is empty, so the next non-empty word is
        // the lowest: the word after the hint when it has a free frame (a
        // sequential refill), else the one the summaries name from the top.
        if ((hint + 1) << 5 < u32[desc + P_FRAME_COUNT] && ~u32[level0 + hint + 1] !== 0) {
          w = hint + 1;
        } else {
          // Down the summaries from the top: each names its lowest non-empty
          // word below. (Corrupted, they may name an empty word or one past
          // the pool: the check below catches it.)
          const pool = this.#pools[i];
          w = 0;
          for (let k = pool.top; k > 0; k--) w = (w << 5) | ctz(u32[pool.levels[k] + w]);
        }
        word = ~u32[level0 + w];
      }
      const bit = word & -word;
      const offset = (w << 5) | (31 - Math.clz32(bit));
      // State corrupted behind the allocator's back (a stray write, as the
      // monitor's poke! can make) may lead outside the pool: never hand out
      // such a frame, and change nothing.
      if (offset >>> 0 >= u32[desc + P_FRAME_COUNT]) throw summaryCorrupt(this.#pools[i], offset);
      if (w !== hint) u32[desc + P_FIRST_FREE_WORD] = w;
      const rest = word ^ bit;
      u32[level0 + w] = ~rest;
      if (rest === 0) clearSummaries(u32, this.#pools[i], w);
      u32[desc + P_FREE] = freeFrames - 1;
      const frame = u32[desc + P_BASE_FRAME] + offset;
      if (this.#hasHooks) this.#allocated(frame, 1, "alloc");
      return frame as FrameNumber;
    }
    throw new KernelError("OutOfMemory", "Cannot allocate a frame: out of memory");
  }

  /**
   * Allocates one particular frame, for example a DMA buffer a device requires.
   *
   * @param frame The frame.
   * @returns The same frame.
   * @throws {KernelError} `FrameInUse` if it is allocated; `InvalidFrame` if it
   *   is reserved or outside every pool.
   */
  allocateSpecific(frame: FrameNumber): FrameNumber {
    const pool = this.#poolOf(frame);
    if (pool === undefined) throw outside("allocate", frame);
    const u32 = this.#state;
    const offset = frame - pool.baseFrame;
    if ((freeWord(u32, pool, offset >>> 5) & (1 << (offset & 31))) === 0) {
      if (isReserved(u32, pool, offset)) throw reserved("allocate", frame);
      throw new KernelError("FrameInUse", `Cannot allocate frame ${hex(frame)}: already in use`);
    }
    clearFree(u32, pool, offset);
    u32[pool.desc + P_FREE]--;
    if (this.isPoisoning) this.#poison(frame, 1, ALLOC_POISON_BYTE);
    const tracer = this.#tracer;
    if (tracer !== undefined && tracer.mm) {
      tracer.emit("mm", `alloc specific ${describeFrames(frame, 1)}`);
    }
    return frame;
  }

  /**
   * Allocates the lowest run of `frameCount` free frames whose first frame
   * number is a multiple of `alignFrames`.
   *
   * @param frameCount How many frames, at least 1.
   * @param alignFrames Alignment of the first frame number: a power of two.
   * @returns The first frame of the run.
   * @throws {KernelError} `OutOfMemory` if no pool has such a run.
   * @throws {RangeError} If `frameCount` is not a positive integer or
   *   `alignFrames` not a power of two up to 2^30.
   */
  allocateContiguous(frameCount: number, alignFrames = 1): FrameNumber {
    if (!Number.isSafeInteger(frameCount) || frameCount < 1) {
      throw new RangeError(`Invalid frame count ${frameCount}: must be a positive integer`);
    }
    if (
      !Number.isInteger(alignFrames) || alignFrames < 1 || alignFrames > MAX_ALIGN_FRAMES ||
      (alignFrames & (alignFrames - 1)) !== 0
    ) {
      throw new RangeError(`Invalid alignment ${alignFrames} frames: must be a power of two`);
    }
    if (frameCount === 1 && alignFrames === 1) return this.allocate();
    const u32 = this.#state;
    const pools = this.#pools;
    for (let i = 0; i < pools.length; i++) {
      const pool = pools[i];
      if (u32[pool.desc + P_FREE] < frameCount) continue;
      const offset = findRun(u32, pool, frameCount, alignFrames);
      if (offset < 0) continue;
      changeRange(u32, pool, offset, frameCount, "allocate");
      u32[pool.desc + P_FREE] -= frameCount;
      const frame = pool.baseFrame + offset;
      if (this.isPoisoning) this.#poison(frame, frameCount, ALLOC_POISON_BYTE);
      const tracer = this.#tracer;
      if (tracer !== undefined && tracer.mm) {
        tracer.emit("mm", `alloc ${describeFrames(frame, frameCount)}, align ${alignFrames}`);
      }
      return frame as FrameNumber;
    }
    throw new KernelError(
      "OutOfMemory",
      `Cannot allocate ${frameCount} contiguous frames aligned to ${alignFrames}: out of memory`,
    );
  }

  /**
   * Frees one allocated frame.
   *
   * @param frame The frame.
   * @throws {KernelError} `DoubleFree` if it is already free; `InvalidFrame` if
   *   it is reserved or outside every pool; `FrameInUse` if a page handle
   *   still references it (dispose the handles instead).
   */
  free(frame: FrameNumber): void {
    const pool = this.#poolOf(frame);
    if (pool === undefined) throw outside("free", frame);
    const references = this.metadata.refcount(frame);
    if (references > 0) throw referenced(frame, references);
    const u32 = this.#state;
    const offset = frame - pool.baseFrame;
    const i = pool.levels[0] + (offset >>> 5);
    const bit = 1 << (offset & 31);
    const freeBits = ~u32[i];
    if ((freeBits & bit) !== 0) throw doubleFree(frame);
    if (isReserved(u32, pool, offset)) throw reserved("free", frame);
    if (this.isPoisoning) this.#poison(frame, 1, FREE_POISON_BYTE);
    u32[i] = ~(freeBits | bit);
    // Propagate "has a free frame" upward while a word goes from empty to non-empty.
    if (freeBits === 0) setSummaries(u32, pool, offset >>> 5);
    const desc = pool.desc;
    u32[desc + P_FREE]++;
    if (offset >>> 5 < u32[desc + P_FIRST_FREE_WORD]) u32[desc + P_FIRST_FREE_WORD] = offset >>> 5;
    lowerHint(u32, desc, offset);
    const tracer = this.#tracer;
    if (tracer !== undefined && tracer.mm) tracer.emit("mm", `free ${describeFrames(frame, 1)}`);
  }

  /**
   * Frees `frameCount` allocated frames starting at `frame`. Checks every
   * frame first, so on error nothing has changed.
   *
   * @param frame The first frame.
   * @param frameCount How many frames, at least 1; the run must lie in one pool.
   * @throws {KernelError} `DoubleFree` if one is already free; `InvalidFrame` if
   *   one is reserved or the run leaves its pool; `FrameInUse` if a page
   *   handle still references one.
   * @throws {RangeError} If `frameCount` is not a positive integer.
   */
  freeContiguous(frame: FrameNumber, frameCount: number): void {
    if (!Number.isSafeInteger(frameCount) || frameCount < 1) {
      throw new RangeError(`Invalid frame count ${frameCount}: must be a positive integer`);
    }
    const pool = this.#poolOf(frame);
    if (pool === undefined) throw outside("free", frame);
    if (frame + frameCount > pool.endFrame) {
      throw outside("free", pool.endFrame);
    }
    const u32 = this.#state;
    const offset = frame - pool.baseFrame;
    const firstFree = firstInRange(u32, pool, offset, frameCount, "free");
    if (firstFree >= 0) throw doubleFree((pool.baseFrame + firstFree) as FrameNumber);
    const firstReserved = firstInRange(u32, pool, offset, frameCount, "reserved");
    if (firstReserved >= 0) throw reserved("free", (pool.baseFrame + firstReserved) as FrameNumber);
    for (let f = frame; f < frame + frameCount; f++) {
      const references = this.metadata.refcount(f as FrameNumber);
      if (references > 0) throw referenced(f, references);
    }
    if (this.isPoisoning) this.#poison(frame, frameCount, FREE_POISON_BYTE);
    changeRange(u32, pool, offset, frameCount, "free");
    u32[pool.desc + P_FREE] += frameCount;
    if (offset >>> 5 < u32[pool.desc + P_FIRST_FREE_WORD]) {
      u32[pool.desc + P_FIRST_FREE_WORD] = offset >>> 5;
    }
    lowerHint(u32, pool.desc, offset);
    const tracer = this.#tracer;
    if (tracer !== undefined && tracer.mm) {
      tracer.emit("mm", `free ${describeFrames(frame, frameCount)}`);
    }
  }

  /**
   * Reserves every frame that `[pa, pa + sizeBytes)` touches, so it is never
   * allocated: firmware tables, MMIO windows, the kernel image. Frames outside
   * every pool or already reserved are skipped. Checks first, so on error
   * nothing has changed.
   *
   * @param pa The first byte of the range.
   * @param sizeBytes The length of the range in bytes.
   * @returns How many frames became reserved.
   * @throws {KernelError} `FrameInUse` if a frame in the range is allocated.
   * @throws {RangeError} If the range is not made of non-negative safe integers.
   */
  reserveRange(pa: number, sizeBytes: number): number {
    if (!Number.isSafeInteger(pa) || pa < 0 || !Number.isSafeInteger(sizeBytes) || sizeBytes < 0) {
      throw new RangeError(`Invalid range ${String(pa)}+${String(sizeBytes)} to reserve`);
    }
    if (sizeBytes === 0) return 0;
    const { firstFrame, endFrame } = framesTouching({ base: pa, length: sizeBytes });
    const u32 = this.#state;
    for (const pool of this.#pools) {
      const from = Math.max(firstFrame, pool.baseFrame);
      const to = Math.min(endFrame, pool.endFrame);
      if (from >= to) continue;
      const allocated = firstInRange(u32, pool, from - pool.baseFrame, to - from, "allocated");
      if (allocated >= 0) {
        throw new KernelError(
          "FrameInUse",
          `Cannot reserve frame ${hex(pool.baseFrame + allocated)}: in use`,
        );
      }
    }
    let reservedCount = 0;
    for (const pool of this.#pools) {
      const from = Math.max(firstFrame, pool.baseFrame);
      const to = Math.min(endFrame, pool.endFrame);
      if (from >= to) continue;
      const count = changeRange(u32, pool, from - pool.baseFrame, to - from, "reserve");
      u32[pool.desc + P_FREE] -= count;
      u32[pool.desc + P_RESERVED] += count;
      this.metadata.fill(from, to - from, FRAME_UNUSABLE);
      reservedCount += count;
    }
    return reservedCount;
  }

  /**
   * Tells what state a frame is in.
   *
   * @param frame The frame.
   * @returns `"free"`, `"allocated"`, `"reserved"`, or `"outside"` every pool.
   */
  stateOf(frame: FrameNumber): FrameState {
    const pool = this.#poolOf(frame);
    if (pool === undefined) return "outside";
    const offset = frame - pool.baseFrame;
    const u32 = this.#state;
    if ((freeWord(u32, pool, offset >>> 5) & (1 << (offset & 31))) !== 0) return "free";
    return isReserved(u32, pool, offset) ? "reserved" : "allocated";
  }

  /**
   * Counts the frames of a range in each state, 32 frames per step (for
   * reports and pictures of memory: a 64 GiB machine in a few milliseconds).
   *
   * @param firstFrame The first frame of the range.
   * @param frameCount How many frames; the range may cross pools and holes.
   * @returns The counts, which sum to `frameCount`.
   * @throws {RangeError} If the range is not made of non-negative safe integers.
   */
  countStates(firstFrame: number, frameCount: number): FrameStateCounts {
    if (
      !Number.isSafeInteger(firstFrame) || firstFrame < 0 || !Number.isSafeInteger(frameCount) ||
      frameCount < 0
    ) {
      throw new RangeError(`Invalid frame range ${String(firstFrame)}+${String(frameCount)}`);
    }
    const u32 = this.#state;
    const endFrame = firstFrame + frameCount;
    let free = 0;
    let reservedCount = 0;
    let inPools = 0;
    for (const pool of this.#pools) {
      const from = Math.max(firstFrame, pool.baseFrame) - pool.baseFrame;
      const to = Math.min(endFrame, pool.endFrame) - pool.baseFrame;
      if (from >= to) continue;
      inPools += to - from;
      for (let w = from >>> 5; w << 5 < to; w++) {
        const mask = rangeMask(w, from, to);
        free += popcount(freeWord(u32, pool, w) & mask);
        reservedCount += popcount(reservedWord(u32, pool, w) & mask);
      }
    }
    return {
      free,
      allocated: inPools - free - reservedCount,
      reserved: reservedCount,
      outside: frameCount - inPools,
    };
  }

  /**
   * Where the allocator keeps its own state: the state block (header, pool
   * descriptors, bitmaps) and the per-frame metadata array. Both are
   * reserved frames.
   *
   * @returns The two ranges, in address order.
   */
  metadataRanges(): AllocatorMetadataRange[] {
    const metadataBytes = Math.ceil(
      FrameMetadata.sizeBytes(this.metadata.frameCount) / PAGE_SIZE_4K,
    ) * PAGE_SIZE_4K;
    const ranges: AllocatorMetadataRange[] = [
      {
        base: this.stateAddr,
        length: this.#stateFrames * PAGE_SIZE_4K,
        what: "frame allocator state (pool descriptors, bitmaps)",
      },
      {
        base: this.metadata.base,
        length: Math.max(PAGE_SIZE_4K, metadataBytes),
        what: "frame metadata (reference counts)",
      },
    ];
    return ranges.sort((a, b) => a.base - b.base);
  }

  /**
   * Reads the counters from RAM.
   *
   * @returns Totals and per-pool statistics.
   */
  stats(): FrameStats {
    const u32 = this.#state;
    const pools = this.#pools.map((pool): PoolStats => {
      const freeFrames = u32[pool.desc + P_FREE];
      const reservedFrames = u32[pool.desc + P_RESERVED];
      return {
        base: frameStart(pool.baseFrame as FrameNumber),
        frameCount: pool.frameCount,
        freeFrames,
        reservedFrames,
        allocatedFrames: pool.frameCount - freeFrames - reservedFrames,
      };
    });
    const sum = (pick: (pool: PoolStats) => number) => pools.reduce((s, p) => s + pick(p), 0);
    return {
      totalFrames: sum((p) => p.frameCount),
      freeFrames: sum((p) => p.freeFrames),
      reservedFrames: sum((p) => p.reservedFrames),
      allocatedFrames: sum((p) => p.allocatedFrames),
      pools,
    };
  }

  /**
   * Debug check of every invariant against RAM: counters equal the bitmaps,
   * no frame is both free and reserved, every summary bit matches the word
   * below it, bits past a pool's end are clear, the contiguous-search hint
   * holds, and the frame metadata agrees (free frames 0, reserved and
   * non-pool frames -1, held frames allocated). Costs O(frames).
   *
   * @throws {Error} Naming the first broken invariant.
   */
  checkInvariants(): void {
    const u32 = this.#state;
    const fail = (what: string): never => {
      throw new Error(`FrameAllocator.checkInvariants: ${what}`);
    };
    if (u32[H_MAGIC] !== FRAME_ALLOCATOR_MAGIC) fail("state block magic is corrupt");
    if (u32[H_POOL_COUNT] !== this.#pools.length) fail("pool count is corrupt");
    const metadata = this.metadata;
    let nextFrame = 0;
    for (const pool of this.#pools) {
      const where = `pool at frame ${hex(pool.baseFrame)}`;
      const desc = pool.desc;
      if (
        u32[desc + P_BASE_FRAME] !== pool.baseFrame || u32[desc + P_FRAME_COUNT] !== pool.frameCount
      ) {
        fail(`${where}: descriptor is corrupt`);
      }
      for (; nextFrame < pool.baseFrame; nextFrame++) {
        if (metadata.refcount(nextFrame as FrameNumber) !== FRAME_UNUSABLE) {
          fail(`frame ${hex(nextFrame)} is in no pool but its metadata is not -1`);
        }
      }
      let freeCount = 0;
      let reservedCount = 0;
      const words0 = pool.levelWords[0];
      for (let w = 0; w < words0; w++) {
        const free = freeWord(u32, pool, w);
        const summarised = (u32[pool.reservedSummary + (w >>> 5)] & (1 << (w & 31))) !== 0;
        const res = reservedWord(u32, pool, w);
        if (summarised && res === 0) fail(`${where}: reserved summary bit ${w} is stale`);
        if (w < u32[desc + P_FIRST_FREE_WORD] && free !== 0) {
          fail(`${where}: word ${w} has a free frame below the first-free-word hint`);
        }
        if ((free & res) !== 0) fail(`${where}: a frame in word ${w} is both free and reserved`);
        const valid = validMask(pool.frameCount - 32 * w);
        if (((free | res) & ~valid) !== 0) fail(`${where}: bits past the pool end are set`);
        freeCount += popcount(free);
        reservedCount += popcount(res);
      }
      if (freeCount !== u32[desc + P_FREE]) {
        fail(`${where}: free counter says ${u32[desc + P_FREE]}, bitmap has ${freeCount}`);
      }
      if (reservedCount !== u32[desc + P_RESERVED]) {
        fail(
          `${where}: reserved counter says ${u32[desc + P_RESERVED]}, bitmap has ${reservedCount}`,
        );
      }
      for (let k = 1; k <= pool.top; k++) {
        const children = pool.levelWords[k - 1];
        for (let w = 0; w < pool.levelWords[k]; w++) {
          let expected = 0;
          for (let b = 0; b < 32 && 32 * w + b < children; b++) {
            if (levelWord(u32, pool, k - 1, 32 * w + b) !== 0) expected |= 1 << b;
          }
          if (u32[pool.levels[k] + w] !== expected >>> 0) {
            fail(`${where}: summary level ${k} word ${w} is stale`);
          }
        }
      }
      this.#checkHint(pool, fail);
      for (let offset = 0; offset < pool.frameCount; offset++, nextFrame++) {
        const state = this.stateOf(nextFrame as FrameNumber);
        const count = metadata.refcount(nextFrame as FrameNumber);
        const ok = state === "free"
          ? count === FRAME_UNUSED
          : state === "reserved"
          ? count === FRAME_UNUSABLE
          : count >= FRAME_UNUSED || count === FRAME_CACHED; // cached: free in a per-CPU cache
        if (!ok) fail(`frame ${hex(nextFrame)} is ${state} but its metadata is ${count}`);
      }
    }
  }

  /** Verifies that no run the hint rules out is actually free. */
  #checkHint(pool: Pool, fail: (what: string) => never): void {
    const u32 = this.#state;
    const hintFrame = u32[pool.desc + P_HINT_FRAME];
    const hintCount = u32[pool.desc + P_HINT_COUNT];
    const hintAlign = u32[pool.desc + P_HINT_ALIGN];
    let run = 0;
    for (let offset = 0; offset < pool.frameCount; offset++) {
      const free = (freeWord(u32, pool, offset >>> 5) & (1 << (offset & 31))) !== 0;
      run = free ? run + 1 : 0;
      const start = offset - hintCount + 1;
      if (start >= hintFrame) break;
      if (run >= hintCount && (pool.baseFrame + start) % hintAlign === 0) {
        fail(
          `pool at frame ${hex(pool.baseFrame)}: hint ${hex(hintFrame)} skips a free run at ${
            hex(start)
          }`,
        );
      }
    }
  }

  /** Poisons and traces `frameCount` frames just allocated (debug and tracing only). */
  #allocated(frame: number, frameCount: number, what: string): void {
    if (this.isPoisoning) this.#poison(frame, frameCount, ALLOC_POISON_BYTE);
    const tracer = this.#tracer;
    if (tracer !== undefined && tracer.mm) {
      tracer.emit("mm", `${what} ${describeFrames(frame, frameCount)}`);
    }
  }

  #poolOf(frame: number): Pool | undefined {
    const pools = this.#pools;
    for (let i = 0; i < pools.length; i++) {
      const pool = pools[i];
      if (frame >= pool.baseFrame && frame < pool.endFrame) {
        return Number.isInteger(frame) ? pool : undefined;
      }
    }
    return undefined;
  }

  #poison(frame: number, frameCount: number, byte: number): void {
    const pa = frame * PAGE_SIZE_4K;
    this.memory.u8.fill(byte, pa, pa + frameCount * PAGE_SIZE_4K);
  }
}

// ---------------------------------------------------------------------------
// Bitmap algorithms. They read and write RAM only through `u32`, the view of
// the state block; a Pool gives them the layout. Offsets are frame numbers
// relative to the pool's base.

/** Index of the lowest set bit of a non-zero word. */
function ctz(word: number): number {
  return 31 - Math.clz32(word & -word);
}

/** Number of set bits. */
function popcount(word: number): number {
  let x = word - ((word >>> 1) & 0x5555_5555);
  x = (x & 0x3333_3333) + ((x >>> 2) & 0x3333_3333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f_0f0f, 0x0101_0101) >>> 24;
}

/** A word with the low `bitCount` bits set (all 32 if bitCount >= 32). */
function validMask(bitCount: number): number {
  return bitCount >= 32 ? -1 : (1 << bitCount) - 1;
}

/** Words per level for a pool of `frameCount` frames, level 0 first, ending with 1. */
function levelSizes(frameCount: number): number[] {
  const sizes = [Math.max(1, Math.ceil(frameCount / 32))];
  while (sizes[sizes.length - 1] > 1) sizes.push(Math.ceil(sizes[sizes.length - 1] / 32));
  return sizes;
}

/** Word `w` of free-bit level `k`. */
function levelWord(u32: Uint32Array, pool: Pool, k: number, w: number): number {
  return k === 0 ? ~u32[pool.level0 + w] : u32[pool.levels[k] + w];
}

/** The free bits (1 = free) of level-0 word `w`, which RAM holds inverted. */
function freeWord(u32: Uint32Array, pool: Pool, w: number): number {
  return ~u32[pool.level0 + w];
}

/** Reserved word `w`: zero when its summary bit is clear, whatever RAM holds there. */
function reservedWord(u32: Uint32Array, pool: Pool, w: number): number {
  return (u32[pool.reservedSummary + (w >>> 5)] & (1 << (w & 31))) !== 0
    ? u32[pool.reserved + w]
    : 0;
}

/** Whether the frame at `offset` is reserved; reads its word only if the summary says so. */
function isReserved(u32: Uint32Array, pool: Pool, offset: number): boolean {
  const w = offset >>> 5;
  return (u32[pool.reservedSummary + (w >>> 5)] & (1 << (w & 31))) !== 0 &&
    (u32[pool.reserved + w] & (1 << (offset & 31))) !== 0;
}

/** Frames needed to hold `sizeBytes`. */
function framesFor(sizeBytes: number): number {
  return Math.ceil(sizeBytes / PAGE_SIZE_4K);
}

/** The pools' frame ranges: usable regions rounded inward, sorted, checked. */
function poolRegions(
  memory: PhysicalMemory,
  usable: readonly PhysRange[],
): { firstFrame: number; endFrame: number }[] {
  const regions = usable.map(framesInside).filter((r) => r.endFrame > r.firstFrame)
    .sort((a, b) => a.firstFrame - b.firstFrame);
  for (let i = 0; i < regions.length; i++) {
    const { firstFrame, endFrame } = regions[i];
    const base = firstFrame * PAGE_SIZE_4K;
    if (i > 0 && firstFrame < regions[i - 1].endFrame) {
      throw new RangeError(`Usable region at ${hex(base)} overlaps another`);
    }
    if (
      endFrame > MAX_FRAME_NUMBER || !memory.isRam(base, (endFrame - firstFrame) * PAGE_SIZE_4K)
    ) {
      throw new RangeError(
        `Usable region ${hex(base)}+${hex((endFrame - firstFrame) * PAGE_SIZE_4K)} is not RAM`,
      );
    }
  }
  return regions;
}

/** Writes a pool's descriptor and marks all its frames free. */
function initPool(u32: Uint32Array, pool: Pool, bitmapAddr: number): void {
  const desc = pool.desc;
  u32[desc + P_BASE_FRAME] = pool.baseFrame;
  u32[desc + P_FRAME_COUNT] = pool.frameCount;
  u32[desc + P_FREE] = pool.frameCount;
  u32[desc + P_RESERVED] = 0;
  u32[desc + P_HINT_FRAME] = 0;
  u32[desc + P_HINT_COUNT] = 1;
  u32[desc + P_HINT_ALIGN] = 1;
  u32[desc + P_LEVEL_COUNT] = pool.top + 1;
  u32[desc + P_BITMAP_LO] = bitmapAddr % 2 ** 32;
  u32[desc + P_BITMAP_HI] = Math.floor(bitmapAddr / 2 ** 32);
  u32[desc + P_FIRST_FREE_WORD] = 0;
  u32[desc + P_LEVEL0_WORD] = pool.level0;
  // Level 0: every frame free. Nothing reserved yet: clearing the reserved
  // summary is enough (the reserved words themselves are read only under a
  // summary bit), which leaves megabytes of RAM untouched on a large machine.
  const words0 = pool.levelWords[0];
  const level0 = pool.levels[0];
  // Zero is free: read the words and write only those that are not zero
  // already, which on fresh RAM leaves them all untouched (not resident).
  // The scan is a builtin's (findIndex with the builtin Boolean): on a large
  // machine a JavaScript loop over the words would have V8 compile it with
  // its optimizing compilers during every boot, which costs the process
  // megabytes of resident memory.
  const bitmap = u32.subarray(level0, level0 + words0);
  for (let i = bitmap.findIndex(Boolean); i >= 0;) {
    bitmap[i] = 0;
    const next = bitmap.subarray(i + 1).findIndex(Boolean);
    i = next < 0 ? -1 : i + 1 + next;
  }
  u32[level0 + words0 - 1] = ~validMask(pool.frameCount - 32 * (words0 - 1));
  u32.fill(0, pool.reservedSummary, pool.reservedSummary + Math.ceil(words0 / 32));
  // Summaries: every word below is non-empty.
  for (let k = 1; k <= pool.top; k++) {
    const words = pool.levelWords[k];
    u32.fill(0xffff_ffff, pool.levels[k], pool.levels[k] + words);
    u32[pool.levels[k] + words - 1] = validMask(pool.levelWords[k - 1] - 32 * (words - 1));
  }
}

/** Clears a free bit and propagates emptiness up the summaries. */
function clearFree(u32: Uint32Array, pool: Pool, offset: number): void {
  const w = offset >>> 5;
  const i = pool.level0 + w;
  const word = ~u32[i] & ~(1 << (offset & 31));
  u32[i] = ~word;
  if (word === 0) clearSummaries(u32, pool, w);
}

/** Clears summary bits above level-0 word `w`, which just became empty, while words empty. */
function clearSummaries(u32: Uint32Array, pool: Pool, w: number): void {
  let word = 0;
  for (let k = 1; word === 0 && k <= pool.top; k++) {
    const bit = w & 31;
    w >>>= 5;
    const i = pool.levels[k] + w;
    word = u32[i] & ~(1 << bit);
    u32[i] = word;
  }
}

/** Sets summary bits above level-0 word `w`, which just became non-empty. */
function setSummaries(u32: Uint32Array, pool: Pool, w: number): void {
  for (let k = 1; k <= pool.top; k++) {
    const bit = 1 << (w & 31);
    w >>>= 5;
    const i = pool.levels[k] + w;
    const old = u32[i];
    u32[i] = old | bit;
    if (old !== 0) return;
  }
}

/** After freeing at `offset`, lowers the hint to the lowest start a run could now have. */
function lowerHint(u32: Uint32Array, desc: number, offset: number): void {
  const lowestStart = offset - u32[desc + P_HINT_COUNT] + 1;
  if (lowestStart < u32[desc + P_HINT_FRAME]) u32[desc + P_HINT_FRAME] = Math.max(0, lowestStart);
}

/** Recomputes the summary bits above level-0 words [firstWord, lastWord]. */
function refreshSummaries(u32: Uint32Array, pool: Pool, firstWord: number, lastWord: number): void {
  for (let k = 1; k <= pool.top; k++) {
    for (let w = firstWord; w <= lastWord; w++) {
      const i = pool.levels[k] + (w >>> 5);
      const bit = 1 << (w & 31);
      u32[i] = levelWord(u32, pool, k - 1, w) !== 0 ? u32[i] | bit : u32[i] & ~bit;
    }
    firstWord >>>= 5;
    lastWord >>>= 5;
  }
}

/**
 * The first offset in [offset, offset + count) that is free / reserved /
 * allocated, or -1.
 */
function firstInRange(
  u32: Uint32Array,
  pool: Pool,
  offset: number,
  count: number,
  state: "free" | "reserved" | "allocated",
): number {
  const end = offset + count;
  for (let w = offset >>> 5; w << 5 < end; w++) {
    const mask = rangeMask(w, offset, end);
    const free = freeWord(u32, pool, w);
    const res = reservedWord(u32, pool, w);
    const hits = (state === "free" ? free : state === "reserved" ? res : ~(free | res)) & mask;
    if (hits !== 0) return (w << 5) | ctz(hits);
  }
  return -1;
}

/** The bits of level-0 word `w` that fall in [offset, end). */
function rangeMask(w: number, offset: number, end: number): number {
  const low = Math.max(offset - (w << 5), 0);
  const high = Math.min(end - (w << 5), 32);
  return validMask(high) & (-1 << low);
}

/**
 * Moves every frame of [offset, offset + count) to a new state, word by word,
 * then refreshes the summaries. The caller has checked the old states.
 *
 * @returns How many frames were free before (those a reservation takes).
 */
function changeRange(
  u32: Uint32Array,
  pool: Pool,
  offset: number,
  count: number,
  action: "allocate" | "free" | "reserve",
): number {
  const end = offset + count;
  const firstWord = offset >>> 5;
  const lastWord = (end - 1) >>> 5;
  let wasFree = 0;
  for (let w = firstWord; w <= lastWord; w++) {
    const mask = rangeMask(w, offset, end);
    // Level 0 holds free bits inverted (1 = not free).
    const i = pool.levels[0] + w;
    if (action === "allocate") {
      u32[i] |= mask;
    } else if (action === "free") {
      u32[i] &= ~mask;
    } else {
      wasFree += popcount(~u32[i] & mask);
      u32[i] |= mask;
      u32[pool.reserved + w] = reservedWord(u32, pool, w) | mask;
      u32[pool.reservedSummary + (w >>> 5)] |= 1 << (w & 31);
    }
  }
  refreshSummaries(u32, pool, firstWord, lastWord);
  return wasFree;
}

/** The lowest free offset at or after `from`, or -1, in O(levels). */
function findFree(u32: Uint32Array, pool: Pool, from: number): number {
  if (from >= pool.frameCount) return -1;
  let index = from;
  let k = 0;
  // Climb until a word has a set bit at or after the position, ...
  for (;;) {
    const w = index >>> 5;
    if (w >= pool.levelWords[k]) return -1;
    const word = levelWord(u32, pool, k, w) & (-1 << (index & 31));
    if (word !== 0) {
      index = (w << 5) | ctz(word);
      break;
    }
    if (k === pool.top) return -1;
    index = w + 1;
    k++;
  }
  // ... then descend along the lowest set bits.
  while (k > 0) {
    k--;
    index = (index << 5) | ctz(levelWord(u32, pool, k, index));
  }
  return index;
}

/**
 * Finds the lowest run of `count` free frames whose absolute frame number is
 * a multiple of `align`, starting at the hint when it applies, and moves the
 * hint past the run (or to the pool end if there is none).
 *
 * @returns The run's first offset, or -1.
 */
function findRun(u32: Uint32Array, pool: Pool, count: number, align: number): number {
  const desc = pool.desc;
  // The hint rules out runs of at least its length and alignment (powers of two).
  const hintApplies = count >= u32[desc + P_HINT_COUNT] && align >= u32[desc + P_HINT_ALIGN];
  const start = findFree(u32, pool, hintApplies ? u32[desc + P_HINT_FRAME] : 0);
  const found = start < 0
    ? -1
    : count <= 32 && align <= 32
    ? findShortRun(u32, pool, start, count, align)
    : findLongRun(u32, pool, start, count, align);
  u32[desc + P_HINT_FRAME] = found < 0 ? pool.frameCount : found + count;
  u32[desc + P_HINT_COUNT] = count;
  u32[desc + P_HINT_ALIGN] = align;
  return found;
}

/**
 * Word-parallel search for runs of at most 32 frames aligned to at most 32:
 * for each level-0 word, AND it with shifted copies of itself (and of the next
 * word) so that bit b stays set only if frames b..b+count-1 are all free, then
 * keep the aligned bits. Words with no free frame are skipped via the summaries.
 */
function findShortRun(
  u32: Uint32Array,
  pool: Pool,
  start: number,
  count: number,
  align: number,
): number {
  // Aligned positions repeat every `align` bits because align divides 32.
  let aligned = 0;
  for (let b = (align - (pool.baseFrame % align)) % align; b < 32; b += align) aligned |= 1 << b;
  const l0 = pool.levels[0];
  const words = pool.levelWords[0];
  let w = start >>> 5;
  let allowed = -1 << (start & 31);
  while (w < words) {
    let lo = ~u32[l0 + w];
    if (lo === 0) {
      const next = findFree(u32, pool, (w + 1) << 5);
      if (next < 0) return -1;
      w = next >>> 5;
      allowed = -1;
      continue;
    }
    let hi = w + 1 < words ? ~u32[l0 + w + 1] : 0;
    // Invariant: bit b of lo is set iff frames b..b+len-1 (counted from word w) are free.
    for (let len = 1; len < count;) {
      const shift = Math.min(len, count - len);
      lo &= (lo >>> shift) | (hi << (32 - shift));
      hi &= hi >>> shift;
      len += shift;
    }
    const hits = lo & aligned & allowed;
    if (hits !== 0) return (w << 5) | ctz(hits);
    w++;
    allowed = -1;
  }
  return -1;
}

/**
 * Search for long or widely aligned runs: test an aligned candidate by
 * scanning its window backward for the highest non-free frame, then jump past
 * it to the next free frame (via the summaries) and align up again. Each jump
 * skips nearly a whole window, so the search is linear in words.
 */
function findLongRun(
  u32: Uint32Array,
  pool: Pool,
  start: number,
  count: number,
  align: number,
): number {
  const l0 = pool.levels[0];
  let candidate = alignOffset(pool, start, align);
  while (candidate + count <= pool.frameCount) {
    // Highest non-free frame in [candidate, candidate + count), scanning backward.
    const last = candidate + count - 1;
    const firstWord = candidate >>> 5;
    let blocker = -1;
    let mask = validMask((last & 31) + 1);
    for (let w = last >>> 5; w >= firstWord; w--) {
      if (w === firstWord) mask &= -1 << (candidate & 31);
      const used = u32[l0 + w] & mask;
      if (used !== 0) {
        blocker = (w << 5) | (31 - Math.clz32(used));
        break;
      }
      mask = -1;
    }
    if (blocker < 0) return candidate;
    const next = findFree(u32, pool, blocker + 1);
    if (next < 0) return -1;
    candidate = alignOffset(pool, next, align);
  }
  return -1;
}

/** The lowest offset at or after `offset` whose absolute frame number is a multiple of `align`. */
function alignOffset(pool: Pool, offset: number, align: number): number {
  return Math.ceil((pool.baseFrame + offset) / align) * align - pool.baseFrame;
}

/** A frame run for trace lines: `frame 0x1234 (pa 0x1234000)` or `8 frames 0x1234..0x123b (pa ...)`. */
function describeFrames(frame: number, frameCount: number): string {
  return frameCount === 1
    ? `frame ${hex(frame)} (pa ${hex(frame * PAGE_SIZE_4K)})`
    : `${frameCount} frames ${hex(frame)}..${hex(frame + frameCount - 1)} (pa ${
      hex(frame * PAGE_SIZE_4K)
    })`;
}

/** The panic for a summary bitmap that leads to `offset`, outside `pool`. */
function summaryCorrupt(pool: Pool, offset: number): KernelPanic {
  const first = frameStart(pool.baseFrame as FrameNumber);
  const last = frameStart((pool.endFrame - 1) as FrameNumber) + PAGE_SIZE_4K - 1;
  const frame = pool.baseFrame + offset;
  return new KernelPanic(
    `frame allocator: pool ${hex(first)}-${hex(last)}: its free-frame summary leads to ` +
      `${frame < 0 ? "a negative frame" : `frame ${hex(frame)}`}, outside the pool ` +
      `(a summary word or the first-free-word hint disagrees with the bitmap)`,
  );
}

function outside(action: string, frame: number): KernelError {
  return new KernelError(
    "InvalidFrame",
    `Cannot ${action} frame ${hex(frame)}: outside every pool`,
  );
}

function reserved(action: string, frame: number): KernelError {
  return new KernelError("InvalidFrame", `Cannot ${action} frame ${hex(frame)}: reserved`);
}

function referenced(frame: number, references: number): KernelError {
  return new KernelError(
    "FrameInUse",
    `Cannot free frame ${hex(frame)}: ${references} page ${
      references === 1 ? "handle references" : "handles reference"
    } it`,
  );
}

function doubleFree(frame: number): KernelError {
  return new KernelError("DoubleFree", `Cannot free frame ${hex(frame)}: already free`);
}
