/**
 * The frame allocator on several CPUs (docs/smp.md, "Frames"): one CPU's
 * handle to the shared allocator, which takes the allocator's spinlock
 * around every call, with a per-CPU cache of free frames in front of it, as
 * Linux's per-CPU page lists: the common allocation and free touch only this
 * CPU's cache, in its per-CPU area in RAM, and take no lock. An empty cache
 * refills a batch from the allocator under the lock; a full one gives a batch
 * back.
 *
 * A cached frame is allocated in the allocator's bitmap and marked cached
 * (-2) in the frame metadata: `stats()` counts it free, a second free of it
 * is a `DoubleFree`, and handing it to a page handle is caught.
 *
 * With one CPU the kernel does not use this layer at all: the allocator is
 * called directly and still returns the lowest free frame.
 *
 * @module
 */

import { type FrameNumber, hex, type PhysicalMemory, type Tracer } from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";
import {
  type AllocatorMetadataRange,
  FRAME_CACHED,
  type FrameMetadata,
  type FrameProvider,
  type FrameProviderStats,
  type FrameState,
  type FrameStateCounts,
  type PoolStats,
} from "../mm/mod.ts";
import {
  C_CACHE_COUNT,
  C_CACHE_DRAINS,
  C_CACHE_FRAMES,
  C_CACHE_HITS,
  C_CACHE_REFILLS,
  PER_CPU_CACHE_MAX,
  type SmpArea,
} from "./smp_area.ts";
import type { SpinLock } from "./spinlock.ts";

/** Frames a per-CPU cache takes from the allocator, or gives back, at once (Linux's pcp batch). */
export const FRAME_CACHE_BATCH = 32;

/** One CPU's handle to the shared frame allocator; see the module documentation. */
export class SmpFrameProvider implements FrameProvider {
  /** The RAM. */
  readonly memory: PhysicalMemory;
  /** The per-frame reference counts (shared by every CPU). */
  readonly metadata: FrameMetadata;
  /** The CPU this handle belongs to. */
  readonly cpuIndex: number;
  readonly #allocator: FrameProvider;
  readonly #lock: SpinLock;
  readonly #area: SmpArea;
  readonly #words: Int32Array;
  /** Index into `#words` of this CPU's area. */
  readonly #base: number;
  readonly #batch: number;
  /** A cache holds at most two batches: a refill never finds it full. */
  readonly #capacity: number;
  /** Whether this CPU is giving a batch back (see {@linkcode drainCache}). */
  #isDraining = false;
  /** Whether an interrupt asked for a drain meanwhile. */
  #isDrainAsked = false;

  /**
   * CPU `cpuIndex`'s handle to `allocator`, whose calls `lock` serialises.
   *
   * @param allocator The shared allocator (this CPU's handle to it).
   * @param lock The allocator's spinlock, held by this CPU.
   * @param area The SMP area (the per-CPU caches live there).
   * @param cpuIndex This CPU.
   */
  constructor(allocator: FrameProvider, lock: SpinLock, area: SmpArea, cpuIndex: number) {
    this.#allocator = allocator;
    this.#lock = lock;
    this.#area = area;
    this.#words = area.words;
    this.#base = area.cpuWord(cpuIndex);
    this.#batch = Math.max(1, Math.min(area.cacheBatch, PER_CPU_CACHE_MAX >>> 1));
    this.#capacity = 2 * this.#batch;
    this.cpuIndex = cpuIndex;
    this.memory = allocator.memory;
    this.metadata = allocator.metadata;
  }

  /**
   * One free frame: from this CPU's cache without a lock, else a batch
   * from the allocator under its lock.
   *
   * @throws {KernelError} `OutOfMemory` if no frame is free anywhere but in other CPUs' caches.
   */
  allocate(): FrameNumber {
    if (!this.#area.switches.frameCaches) return this.#locked(() => this.#allocator.allocate());
    const words = this.#words;
    const base = this.#base;
    const count = words[base + C_CACHE_COUNT];
    if (count === 0) return this.#refill();
    const frame = words[base + C_CACHE_FRAMES + count - 1] as FrameNumber;
    words[base + C_CACHE_COUNT] = count - 1;
    words[base + C_CACHE_HITS]++;
    this.metadata.unmarkCached(frame);
    return frame;
  }

  /**
   * Frees an allocated frame into this CPU's cache (a full cache gives a
   * batch back to the allocator first).
   *
   * @throws {KernelError} `DoubleFree`, `InvalidFrame` or `FrameInUse`, as the allocator's `free`.
   */
  free(frame: FrameNumber): void {
    if (!this.#area.switches.frameCaches) {
      this.#locked(() => this.#allocator.free(frame));
      return;
    }
    this.#checkFreeable(frame);
    const words = this.#words;
    const base = this.#base;
    if (words[base + C_CACHE_COUNT] >= this.#capacity) this.#drain(this.#batch);
    // Catches a concurrent second free of the same frame (0 -> -2 once only).
    this.metadata.markCached(frame);
    const count = words[base + C_CACHE_COUNT];
    words[base + C_CACHE_FRAMES + count] = frame;
    words[base + C_CACHE_COUNT] = count + 1;
  }

  /** The allocator's `allocateSpecific`, under its lock (a frame in a cache is in use). */
  allocateSpecific(frame: FrameNumber): FrameNumber {
    return this.#locked(() => this.#allocator.allocateSpecific(frame));
  }

  /** The allocator's `allocateContiguous`, under its lock. */
  allocateContiguous(frameCount: number, alignFrames = 1): FrameNumber {
    return this.#locked(() => this.#allocator.allocateContiguous(frameCount, alignFrames));
  }

  /** The allocator's `freeContiguous`, under its lock (the frames bypass the cache). */
  freeContiguous(frame: FrameNumber, frameCount: number): void {
    if (frameCount === 1) {
      this.free(frame);
      return;
    }
    this.#locked(() => this.#allocator.freeContiguous(frame, frameCount));
  }

  /**
   * Gives every frame of this CPU's cache back to the allocator. Asked in
   * an interrupt (a cross-CPU call) that arrived while this CPU was already
   * giving a batch back (waiting for the lock), it drains right after that.
   */
  drainCache(): void {
    if (this.#isDraining) {
      this.#isDrainAsked = true;
      return;
    }
    const count = this.#words[this.#base + C_CACHE_COUNT];
    if (count > 0) this.#drain(count);
  }

  /** The allocator's counters, with cached frames counted free. */
  stats(): FrameProviderStats {
    const stats = this.#allocator.stats();
    const cached = this.#cachedFrames();
    const inPool = (pool: PoolStats, frame: number) =>
      frame >= pool.base / 4096 && frame < pool.base / 4096 + pool.frameCount;
    const pools = stats.pools.map((pool) => {
      const count = cached.filter((frame) => inPool(pool, frame)).length;
      return {
        ...pool,
        freeFrames: pool.freeFrames + count,
        allocatedFrames: pool.allocatedFrames - count,
      };
    });
    let hits = 0;
    let refills = 0;
    let drains = 0;
    for (let cpu = 0; cpu < this.#area.cpuCount; cpu++) {
      const base = this.#area.cpuWord(cpu);
      hits += this.#words[base + C_CACHE_HITS] >>> 0;
      refills += this.#words[base + C_CACHE_REFILLS] >>> 0;
      drains += this.#words[base + C_CACHE_DRAINS] >>> 0;
    }
    return {
      ...stats,
      freeFrames: stats.freeFrames + cached.length,
      allocatedFrames: stats.allocatedFrames - cached.length,
      pools,
      details: {
        ...stats.details,
        perCpuCachedFrames: cached.length,
        perCpuCacheHits: hits,
        perCpuCacheRefills: refills,
        perCpuCacheDrains: drains,
      },
    };
  }

  /** A frame's state; a cached frame is free. */
  stateOf(frame: FrameNumber): FrameState {
    if (
      Number.isInteger(frame) && frame >= 0 && frame < this.metadata.frameCount &&
      this.metadata.refcount(frame) === FRAME_CACHED
    ) {
      return "free";
    }
    return this.#allocator.stateOf(frame);
  }

  /** The allocator's counts of a range, with cached frames counted free. */
  countStates(firstFrame: number, frameCount: number): FrameStateCounts {
    const counts = this.#allocator.countStates?.(firstFrame, frameCount) ??
      countByState(this.#allocator, firstFrame, frameCount);
    const cached =
      this.#cachedFrames().filter((frame) => frame >= firstFrame && frame < firstFrame + frameCount)
        .length;
    return { ...counts, free: counts.free + cached, allocated: counts.allocated - cached };
  }

  /** The allocator's own state. */
  metadataRanges(): readonly AllocatorMetadataRange[] {
    return this.#allocator.metadataRanges();
  }

  /** Hands the tracer to the allocator. */
  setTracer(tracer: Tracer | undefined): void {
    this.#allocator.setTracer?.(tracer);
  }

  /**
   * The allocator's invariants, and the caches': every cached frame is
   * allocated in the bitmap and marked cached, no frame is in two caches,
   * and no other frame is marked cached. Meant for a quiet machine (the
   * other CPUs' caches must not change meanwhile).
   *
   * @throws {Error} Naming the first broken invariant.
   */
  checkInvariants(): void {
    this.#locked(() => this.#allocator.checkInvariants?.());
    const seen = new Set<number>();
    for (let cpu = 0; cpu < this.#area.cpuCount; cpu++) {
      const base = this.#area.cpuWord(cpu);
      const count = this.#words[base + C_CACHE_COUNT];
      if (count < 0 || count > PER_CPU_CACHE_MAX) {
        throw new Error(`Per-CPU frame cache of CPU ${cpu}: count ${count} is out of range`);
      }
      for (let i = 0; i < count; i++) {
        const frame = this.#words[base + C_CACHE_FRAMES + i];
        const where = `Per-CPU frame cache of CPU ${cpu}: frame ${hex(frame)}`;
        if (seen.has(frame)) throw new Error(`${where} is in two caches`);
        seen.add(frame);
        if (this.#allocator.stateOf(frame as FrameNumber) !== "allocated") {
          throw new Error(`${where} is not allocated in the bitmap`);
        }
        if (this.metadata.refcount(frame as FrameNumber) !== FRAME_CACHED) {
          throw new Error(`${where} is not marked cached in the frame metadata`);
        }
      }
    }
    const marked = this.metadata.cachedFrames();
    const stray = marked.find((frame) => !seen.has(frame));
    if (stray !== undefined) {
      throw new Error(`Frame ${hex(stray)} is marked cached but is in no per-CPU cache`);
    }
  }

  /** Fills the empty cache with a batch and returns one frame of it. */
  #refill(): FrameNumber {
    const words = this.#words;
    const base = this.#base;
    const taken: number[] = [];
    this.#lock.hold(() => {
      for (let i = 0; i < this.#batch; i++) {
        try {
          taken.push(this.#allocator.allocate());
        } catch (error) {
          if (error instanceof KernelError && error.code === "OutOfMemory" && taken.length > 0) {
            break;
          }
          throw error;
        }
      }
    });
    words[base + C_CACHE_REFILLS]++;
    // Hand out the lowest frame; cache the rest, highest first, so the
    // next allocations come lowest first too.
    for (let i = taken.length - 1; i >= 1; i--) {
      this.metadata.markCached(taken[i] as FrameNumber);
      words[base + C_CACHE_FRAMES + taken.length - 1 - i] = taken[i];
    }
    words[base + C_CACHE_COUNT] = taken.length - 1;
    return taken[0] as FrameNumber;
  }

  /**
   * Gives the oldest `frameCount` cached frames back to the allocator. The
   * wait for the lock takes interrupts: one asking for a drain meanwhile is
   * served after this one (the cache must not change under it).
   */
  #drain(frameCount: number): void {
    const words = this.#words;
    const base = this.#base;
    const count = words[base + C_CACHE_COUNT];
    const first = base + C_CACHE_FRAMES;
    this.#isDraining = true;
    try {
      for (let i = 0; i < frameCount; i++) {
        this.metadata.unmarkCached(words[first + i] as FrameNumber);
      }
      this.#lock.hold(() => {
        for (let i = 0; i < frameCount; i++) this.#allocator.free(words[first + i] as FrameNumber);
      });
      words.copyWithin(first, first + frameCount, first + count);
      words[base + C_CACHE_COUNT] = count - frameCount;
      words[base + C_CACHE_DRAINS]++;
    } finally {
      this.#isDraining = false;
    }
    if (this.#isDrainAsked) {
      this.#isDrainAsked = false;
      this.drainCache();
    }
  }

  /**
   * The checks of the allocator's `free` that a free into the cache must
   * make itself, without the lock: the frame is allocated and no handle
   * holds it. Its bitmap bit belongs to the caller, so reading it unlocked
   * is safe.
   */
  #checkFreeable(frame: FrameNumber): void {
    const state = Number.isInteger(frame) && frame >= 0 && frame < this.metadata.frameCount
      ? this.stateOf(frame)
      : "outside";
    if (state === "free") {
      throw new KernelError("DoubleFree", `Cannot free frame ${hex(frame)}: already free`);
    }
    if (state !== "allocated") {
      throw new KernelError(
        "InvalidFrame",
        `Cannot free frame ${hex(frame)}: ${
          state === "reserved" ? "reserved" : "outside every pool"
        }`,
      );
    }
    const references = this.metadata.refcount(frame);
    if (references > 0) {
      throw new KernelError(
        "FrameInUse",
        `Cannot free frame ${hex(frame)}: ${references} page ${
          references === 1 ? "handle references" : "handles reference"
        } it`,
      );
    }
  }

  /** Every CPU's cached frames (a racy snapshot of the others'). */
  #cachedFrames(): number[] {
    const frames: number[] = [];
    for (let cpu = 0; cpu < this.#area.cpuCount; cpu++) {
      const base = this.#area.cpuWord(cpu);
      const count = Math.min(this.#words[base + C_CACHE_COUNT], PER_CPU_CACHE_MAX);
      for (let i = 0; i < count; i++) frames.push(this.#words[base + C_CACHE_FRAMES + i]);
    }
    return frames;
  }

  #locked<T>(body: () => T): T {
    return this.#lock.hold(body);
  }
}

/** Counts a range's states with `stateOf`, for an allocator without `countStates`. */
function countByState(
  allocator: FrameProvider,
  firstFrame: number,
  frameCount: number,
): FrameStateCounts {
  const counts = { free: 0, allocated: 0, reserved: 0, outside: 0 };
  for (let frame = firstFrame; frame < firstFrame + frameCount; frame++) {
    counts[allocator.stateOf(frame as FrameNumber)]++;
  }
  return counts;
}
