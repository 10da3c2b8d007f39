/**
 * The kmem heap: `kmalloc`, `kzalloc`, `kfree` and `krealloc` for the kernel,
 * over frames taken from a {@linkcode FrameSource}, with every header, free
 * list and counter in simulated RAM.
 *
 * - Requests up to 2048 bytes come from slab caches, one per size class
 *   (16 to 2048 bytes): O(1) allocation and free (`_slab.ts`).
 * - Larger requests, and those aligned to 4096, come from arenas of
 *   contiguous frames split into boundary-tagged blocks that merge with free
 *   neighbours, indexed by a two-level segregated fit: O(1) too
 *   (`_large_blocks.ts`, `_tlsf_index.ts`).
 * - An owner table in RAM maps every frame the heap holds to its slab or
 *   arena, so `kfree` finds the header of any pointer in O(1) and rejects a
 *   pointer into memory the heap does not own without reading past its own
 *   structures (`_heap_frames.ts`).
 * - The heap grows by taking frames and gives back slabs and arenas that
 *   empty, keeping at most one empty slab per class and one empty arena
 *   cached against thrashing; {@linkcode KmemHeap.shrink} gives those back.
 *
 * The heap works on physical addresses and hands out kernel virtual
 * addresses: physical address + `directMapOffset` (0 before paging, the
 * direct-map base once the kernel runs in the higher half). The RAM layout
 * of every structure is in `_kmem_layout.ts`.
 *
 * Zero-size requests are an InvalidSize error rather than Linux's
 * ZERO_SIZE_PTR: no caller of this kernel needs an empty allocation, and an
 * error finds the bug where it happens.
 *
 * @module
 */

import {
  formatVirtAddr,
  type FrameNumber,
  hex,
  type PhysAddr,
  type PhysicalMemory,
  type Tracer,
  VIRT_ADDR_LIMIT,
  type VirtAddr,
} from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";
import { plural } from "../plural.ts";
import type { FrameSource } from "./frame_source.ts";
import { HeapCorruption } from "./_heap_corruption.ts";
import { HeapFrames } from "./_heap_frames.ts";
import {
  ALREADY_FREE,
  ARENA_FRAME_COUNT_W,
  ARENA_MAGIC,
  CLASS_CAPACITY,
  CLASS_COUNT,
  CLASS_FOR_GRANULES,
  CLASS_OBJECT_BYTES,
  CLASS_SLAB_FRAMES,
  DIRECTORY_ENTRY_WORDS,
  DIRECTORY_OFFSET,
  FRAME_BYTES,
  FRAME_WORDS,
  FRAMES_PER_LEAF,
  GRANULE_BYTES,
  NOT_ALLOCATED,
  readU64,
  ROOT_ALLOCATIONS_W,
  ROOT_ARENA_FRAMES_W,
  ROOT_CACHED_ARENA_W,
  ROOT_DIRECTORY_ENTRIES_W,
  ROOT_FLAG_POISON,
  ROOT_FLAGS_W,
  ROOT_FRAME_COUNT_W,
  ROOT_FRAMES_HELD_W,
  ROOT_FREES_W,
  ROOT_LARGE_LIVE_W,
  ROOT_LEAF_FRAMES_W,
  ROOT_LIVE_W,
  ROOT_MAGIC,
  ROOT_MAGIC_W,
  ROOT_SLAB_FRAMES_W,
  SLAB_FRAME_COUNT_W,
  SLAB_MAGIC,
  SLAB_MAX_OBJECT_BYTES,
} from "./_kmem_layout.ts";
import { type ArenaInfo, LargeBlocks } from "./_large_blocks.ts";
import { SlabCaches, type SlabInfo } from "./_slab.ts";

export { HeapCorruption } from "./_heap_corruption.ts";

/** The largest request the heap accepts: 64 MiB. */
export const KMALLOC_MAX_BYTES = 64 * 2 ** 20;
/** Every allocation is aligned to at least this many bytes. */
export const KMALLOC_MIN_ALIGN_BYTES: number = GRANULE_BYTES;
/** The largest alignment a request may ask for: one 4 KiB page. */
export const KMALLOC_MAX_ALIGN_BYTES: number = FRAME_BYTES;

/** Options for {@linkcode KmemHeap.create}. */
export interface KmemHeapOptions {
  /**
   * Added to a physical address to form the virtual address handed out: 0
   * (identity, before paging; the default) or the direct-map base, 2^47.
   * A multiple of 4096 such that every RAM address maps below 2^48.
   */
  readonly directMapOffset?: number;
  /** Debug checks that cost time. */
  readonly debug?: {
    /**
     * Fill freed memory with 0x6b and fresh allocations with 0x5a (Linux's
     * poison bytes), and have {@linkcode KmemHeap.checkInvariants} verify
     * that nothing wrote to freed memory.
     */
    readonly poison?: boolean;
  };
}

/** Options for one allocation. */
export interface KmallocOptions {
  /** Alignment of the returned address: a power of two from 1 to 4096; default 16. */
  readonly alignBytes?: number;
}

/** Statistics of one size class. */
export interface KmemSizeClassStats {
  /** Object size of the class, in bytes. */
  readonly objectSizeBytes: number;
  /** Frames per slab. */
  readonly framesPerSlab: number;
  /** Objects per slab. */
  readonly objectsPerSlab: number;
  /** Slabs held, including a cached empty one. */
  readonly slabCount: number;
  /** Live objects. */
  readonly objectsInUse: number;
  /** Free objects in the class's slabs. */
  readonly objectsFree: number;
}

/** Heap statistics, all read from RAM. */
export interface KmemHeapStats {
  /** Usable bytes of all live allocations: the sum of their `usableSize`. */
  readonly bytesInUse: number;
  /** Bytes of every frame the heap holds (slabs, arenas, root descriptor, owner-table leaves). */
  readonly bytesMapped: number;
  /** Successful allocations since creation (kmalloc, kzalloc, and krealloc when it moves). */
  readonly allocations: number;
  /** Frees since creation (kfree, and krealloc when it moves). */
  readonly frees: number;
  /** Allocations live now. */
  readonly liveAllocations: number;
  /** Bytes in the heap's slabs and arenas that are free to allocate without taking a frame. */
  readonly bytesFree: number;
  /** Frames the heap holds: bytesMapped / 4096. */
  readonly framesMapped: number;
  /** Frames of the root descriptor and the owner-table leaves. */
  readonly metadataFrames: number;
  /** Frames in slabs. */
  readonly slabFrames: number;
  /** Frames in arenas. */
  readonly arenaFrames: number;
  /**
   * Frames held only as cache (empty slabs and the empty arena);
   * {@linkcode KmemHeap.shrink} gives them back.
   */
  readonly cachedFrames: number;
  /** Usable bytes of live allocations above 2048 bytes (in arenas). */
  readonly largeBytesInUse: number;
  /** Per size class, smallest first. */
  readonly sizeClasses: readonly KmemSizeClassStats[];
}

/** What a run of heap frames holds, from {@linkcode KmemHeap.frameRanges}. */
export type KmemFrameKind = "root" | "owner-table" | "slab" | "arena";

/** A run of frames the heap holds. */
export interface KmemFrameRange {
  /** The first frame. */
  readonly firstFrame: FrameNumber;
  /** How many frames. */
  readonly frameCount: number;
  /** What the frames hold: the root descriptor, an owner-table leaf, a slab or an arena. */
  readonly kind: KmemFrameKind;
  /** For a slab, its object size in bytes. */
  readonly objectSizeBytes?: number;
}

/**
 * A kernel heap whose state lives in simulated RAM; see the module documentation.
 *
 * @example
 * ```ts
 * import { PhysicalMemory } from "../../hal/mod.ts";
 * import { FrameAllocator } from "./frame_allocator.ts";
 * import { KmemHeap } from "./kmem_heap.ts";
 * const memory = PhysicalMemory.contiguous(64 * 2 ** 20);
 * const frames = FrameAllocator.create(memory, {
 *   usableRegions: [{ base: 0, length: 64 * 2 ** 20 }],
 *   exclusions: [{ base: 0, length: 2 ** 20 }],
 * });
 * const heap = KmemHeap.create(memory, frames, { directMapOffset: 2 ** 47 });
 * const va = heap.kmalloc(100); // 0xffff8000...: 112 usable bytes, 16-aligned
 * heap.kfree(va);
 * heap.stats().bytesMapped; // 12288: root descriptor, owner-table leaf, one cached slab
 * ```
 */
export class KmemHeap {
  /** Physical address of the heap's root descriptor. */
  readonly rootAddress: PhysAddr;
  /** What the heap adds to a physical address to form the virtual address it hands out. */
  readonly directMapOffset: number;
  readonly #memory: PhysicalMemory;
  readonly #u32: Uint32Array;
  readonly #rootWord: number;
  readonly #ramEndBytes: number;
  readonly #source: FrameSource;
  readonly #frames: HeapFrames;
  readonly #slabs: SlabCaches;
  readonly #large: LargeBlocks;
  /** Event tracing (`--trace mm`); undefined when off. */
  #tracer: Tracer | undefined;

  private constructor(
    memory: PhysicalMemory,
    source: FrameSource,
    rootAddress: number,
    directMapOffset: number,
    isPoisoning: boolean,
  ) {
    this.rootAddress = rootAddress as PhysAddr;
    this.directMapOffset = directMapOffset;
    this.#memory = memory;
    this.#u32 = memory.u32;
    this.#rootWord = rootAddress / 4;
    this.#ramEndBytes = memory.endBytes;
    this.#source = source;
    const entryCount = memory.u32[this.#rootWord + ROOT_DIRECTORY_ENTRIES_W];
    this.#frames = new HeapFrames(memory, source, rootAddress, entryCount);
    this.#slabs = new SlabCaches(memory, this.#frames, rootAddress, isPoisoning);
    this.#large = new LargeBlocks(memory, this.#frames, rootAddress, isPoisoning);
  }

  /**
   * Creates a heap: takes its root descriptor (one frame up to 256 MiB of
   * RAM, one more per 2 GiB above) from `frames` and initialises it. Slabs and arenas are taken
   * on demand.
   *
   * @param memory The machine's RAM.
   * @param frames Where the heap takes frames from and gives them back to.
   * @param options The direct-map offset and debug options.
   * @returns The new, empty heap.
   * @throws {RangeError} If `directMapOffset` is not a multiple of 4096 mapping RAM below 2^48.
   * @throws {KernelError} OutOfMemory if the frame source cannot give the root descriptor.
   */
  static create(
    memory: PhysicalMemory,
    frames: FrameSource,
    options: KmemHeapOptions = {},
  ): KmemHeap {
    const directMapOffset = options.directMapOffset ?? 0;
    if (
      !Number.isSafeInteger(directMapOffset) || directMapOffset < 0 ||
      directMapOffset % FRAME_BYTES !== 0 || directMapOffset + memory.endBytes > VIRT_ADDR_LIMIT
    ) {
      throw new RangeError(
        `Invalid direct-map offset ${String(directMapOffset)}: must be a multiple of 4096 ` +
          `that maps all RAM below 2^48`,
      );
    }
    const entryCount = Math.ceil(memory.endBytes / (FRAMES_PER_LEAF * FRAME_BYTES));
    const rootFrames = Math.ceil(
      (DIRECTORY_OFFSET + entryCount * DIRECTORY_ENTRY_WORDS * 4) / FRAME_BYTES,
    );
    let rootFrame: number;
    try {
      rootFrame = rootFrames === 1 ? frames.allocate() : frames.allocateContiguous(rootFrames, 1);
    } catch (error) {
      if (error instanceof KernelError && error.code === "OutOfMemory") {
        throw new KernelError(
          "OutOfMemory",
          `Cannot create the kmem heap: no ${rootFrames} free frames for its root descriptor`,
        );
      }
      throw error;
    }
    const rootAddress = rootFrame * FRAME_BYTES;
    const rootWord = rootFrame * FRAME_WORDS;
    const u32 = memory.u32;
    u32.fill(0, rootWord, rootWord + rootFrames * FRAME_WORDS);
    u32[rootWord + ROOT_MAGIC_W] = ROOT_MAGIC;
    u32[rootWord + ROOT_FRAME_COUNT_W] = rootFrames;
    u32[rootWord + ROOT_DIRECTORY_ENTRIES_W] = entryCount;
    u32[rootWord + ROOT_FRAMES_HELD_W] = rootFrames;
    u32[rootWord + ROOT_FLAGS_W] = options.debug?.poison ? ROOT_FLAG_POISON : 0;
    return new KmemHeap(
      memory,
      frames,
      rootAddress,
      directMapOffset,
      options.debug?.poison ?? false,
    );
  }

  /**
   * Attaches to a heap that is already running, from its root descriptor in
   * RAM: what another CPU (a Worker over the same RAM) does to use the heap
   * the boot CPU created. Every structure is read from RAM at each use, so
   * both handles see one heap; callers on several CPUs must serialise their
   * calls (a lock, as the kernel's SMP layer takes).
   *
   * @param memory The machine's RAM.
   * @param frames Where this handle takes frames from and gives them back to.
   * @param rootAddress Physical address of the root descriptor ({@linkcode KmemHeap.rootAddress}).
   * @param directMapOffset The offset the heap was created with.
   * @returns A handle to the same heap.
   * @throws {KernelError} `InvalidAddress` if no root descriptor is there.
   */
  static attach(
    memory: PhysicalMemory,
    frames: FrameSource,
    rootAddress: PhysAddr,
    directMapOffset: number,
  ): KmemHeap {
    const rootWord = rootAddress / 4;
    if (
      rootAddress % FRAME_BYTES !== 0 || !memory.isRam(rootAddress, FRAME_BYTES) ||
      memory.u32[rootWord + ROOT_MAGIC_W] !== ROOT_MAGIC
    ) {
      throw new KernelError(
        "InvalidAddress",
        `No kmem heap root descriptor at ${hex(rootAddress)}`,
      );
    }
    const isPoisoning = (memory.u32[rootWord + ROOT_FLAGS_W] & ROOT_FLAG_POISON) !== 0;
    return new KmemHeap(memory, frames, rootAddress, directMapOffset, isPoisoning);
  }

  /**
   * Sets (or with `undefined` removes) the tracer that receives `mm` events:
   * one line per kmalloc, kzalloc, krealloc and kfree.
   *
   * @param tracer The tracer.
   */
  setTracer(tracer: Tracer | undefined): void {
    this.#tracer = tracer;
  }

  /**
   * Allocates `sizeBytes` bytes. The memory is not cleared (see
   * {@linkcode KmemHeap.kzalloc}); the address is 16-aligned, or aligned to
   * `options.alignBytes` when larger.
   *
   * @param sizeBytes Bytes wanted: a whole number from 1 to 64 MiB.
   * @param options The alignment wanted.
   * @returns The allocation's virtual address.
   * @throws {KernelError} InvalidSize for a size of 0, above 64 MiB or not a
   * whole number; InvalidAlignment for an alignment that is not a power of two
   * from 1 to 4096; OutOfMemory when the frame source has no frame to give.
   */
  kmalloc(sizeBytes: number, options?: KmallocOptions): VirtAddr {
    const alignBytes = options?.alignBytes === undefined
      ? KMALLOC_MIN_ALIGN_BYTES
      : checkedAlignment(options.alignBytes);
    const va = (this.#allocate(sizeBytes, alignBytes) + this.directMapOffset) as VirtAddr;
    const tracer = this.#tracer;
    if (tracer !== undefined && tracer.mm) {
      tracer.emit("mm", `kmalloc ${plural(sizeBytes, "byte")} -> ${formatVirtAddr(va)}`);
    }
    return va;
  }

  /**
   * Allocates `sizeBytes` bytes as {@linkcode KmemHeap.kmalloc} does and
   * clears the whole usable size to zero.
   *
   * @param sizeBytes Bytes wanted: a whole number from 1 to 64 MiB.
   * @param options The alignment wanted.
   * @returns The allocation's virtual address.
   * @throws {KernelError} InvalidSize, InvalidAlignment or OutOfMemory, as kmalloc.
   */
  kzalloc(sizeBytes: number, options?: KmallocOptions): VirtAddr {
    const alignBytes = options?.alignBytes === undefined
      ? KMALLOC_MIN_ALIGN_BYTES
      : checkedAlignment(options.alignBytes);
    const address = this.#allocate(sizeBytes, alignBytes);
    const head = this.#frames.ownerOf(address) - 1;
    this.#memory.u8.fill(0, address, address + this.#usableAt(head, address));
    const va = (address + this.directMapOffset) as VirtAddr;
    const tracer = this.#tracer;
    if (tracer !== undefined && tracer.mm) {
      tracer.emit("mm", `kzalloc ${plural(sizeBytes, "byte")} -> ${formatVirtAddr(va)}`);
    }
    return va;
  }

  /**
   * Frees an allocation.
   *
   * @param va The virtual address kmalloc, kzalloc or krealloc returned.
   * @throws {KernelError} DoubleFree if the allocation was already freed;
   * InvalidFree if the heap never handed out `va` (outside the heap, inside an
   * allocation, or never allocated). Either way nothing is freed. A pointer
   * freed twice is reported as InvalidFree instead once its slab or arena has
   * gone back to the frame source, or (for a large block) once its stale
   * header has been overwritten.
   * @throws {HeapCorruption} If the heap's structures for `va` are broken.
   */
  kfree(va: VirtAddr): void {
    const result = this.#free(va - this.directMapOffset);
    if (result < 0) throw badPointer("free", va, result);
    const tracer = this.#tracer;
    if (tracer !== undefined && tracer.mm) {
      tracer.emit("mm", `kfree ${formatVirtAddr(va)} (${result} bytes)`);
    }
  }

  /**
   * Resizes an allocation, keeping its contents up to the smaller of the old
   * and new sizes. It stays in place when the new size fits and would not
   * halve its footprint, and when a large block can grow into a free
   * neighbour or shrink by splitting; otherwise it moves. On failure the old
   * allocation is left untouched.
   *
   * @param va A live allocation's virtual address.
   * @param newSizeBytes The new size: a whole number from 1 to 64 MiB (to resize to 0, kfree).
   * @param options The alignment the result needs (16 by default).
   * @returns The allocation's virtual address, which may differ from `va`.
   * @throws {KernelError} InvalidFree or DoubleFree for a `va` that is not
   * live; InvalidSize, InvalidAlignment or OutOfMemory as kmalloc.
   */
  krealloc(va: VirtAddr, newSizeBytes: number, options?: KmallocOptions): VirtAddr {
    const alignBytes = options?.alignBytes === undefined
      ? KMALLOC_MIN_ALIGN_BYTES
      : checkedAlignment(options.alignBytes);
    checkSize(newSizeBytes);
    const address = va - this.directMapOffset;
    const head = this.#headOf(address);
    const oldUsable = head < 0 ? NOT_ALLOCATED : this.#usableAt(head, address);
    if (oldUsable < 0) throw badPointer("reallocate", va, oldUsable);
    if (address % alignBytes === 0) {
      const isSlab = this.#u32[head * FRAME_WORDS] === SLAB_MAGIC;
      if (isSlab && newSizeBytes <= oldUsable) {
        const fittingBytes = CLASS_OBJECT_BYTES[CLASS_FOR_GRANULES[(newSizeBytes + 15) >>> 4]];
        if (fittingBytes * 2 > oldUsable) return this.#traceRealloc(va, newSizeBytes, va);
      }
      if (!isSlab && newSizeBytes > SLAB_MAX_OBJECT_BYTES) {
        if (this.#large.resizeInPlace(address, newSizeBytes)) {
          return this.#traceRealloc(va, newSizeBytes, va);
        }
      }
    }
    const newAddress = this.#allocate(newSizeBytes, alignBytes);
    this.#memory.u8.copyWithin(newAddress, address, address + Math.min(oldUsable, newSizeBytes));
    this.#free(address);
    return this.#traceRealloc(va, newSizeBytes, (newAddress + this.directMapOffset) as VirtAddr);
  }

  /** Traces a krealloc (when `mm` tracing is on) and returns its result. */
  #traceRealloc(va: VirtAddr, newSizeBytes: number, result: VirtAddr): VirtAddr {
    const tracer = this.#tracer;
    if (tracer !== undefined && tracer.mm) {
      tracer.emit(
        "mm",
        `krealloc ${formatVirtAddr(va)} to ${plural(newSizeBytes, "byte")} -> ${
          formatVirtAddr(result)
        }` +
          (result === va ? " (in place)" : ""),
      );
    }
    return result;
  }

  /**
   * The usable size of a live allocation: the bytes from `va` the caller may
   * use, at least what it asked for.
   *
   * @param va A live allocation's virtual address.
   * @returns The usable size in bytes.
   * @throws {KernelError} InvalidAddress if `va` is not a live allocation.
   */
  usableSize(va: VirtAddr): number {
    const address = va - this.directMapOffset;
    const head = this.#headOf(address);
    const usable = head < 0 ? NOT_ALLOCATED : this.#usableAt(head, address);
    if (usable < 0) throw badPointer("get the usable size of", va, usable);
    return usable;
  }

  /**
   * Gives the cached empty slabs and the cached empty arena back to the frame
   * source (as Linux's kmem_cache_shrink). After every allocation is freed,
   * this leaves the heap holding only its root descriptor.
   *
   * @returns Frames given back.
   */
  shrink(): number {
    return this.#slabs.shrink() + this.#large.shrink();
  }

  /**
   * Gives every frame the heap holds back to the frame source, live
   * allocations and the root descriptor included. The heap must not be used
   * afterwards.
   */
  destroy(): void {
    for (const head of this.#frames.heads()) {
      if (this.#u32[head * FRAME_WORDS] === SLAB_MAGIC) this.#slabs.discard(head);
      else this.#large.discard(head);
    }
    const rootFrames = this.#u32[this.#rootWord + ROOT_FRAME_COUNT_W];
    this.#u32[this.#rootWord + ROOT_MAGIC_W] = 0;
    const rootFrame = (this.#rootWord / FRAME_WORDS) as FrameNumber;
    if (rootFrames === 1) this.#source.free(rootFrame);
    else this.#source.freeContiguous(rootFrame, rootFrames);
  }

  /**
   * Every run of frames the heap holds, in address order: its root
   * descriptor, the owner-table leaves, and each slab and arena (not a hot
   * path; for reports and pictures of memory).
   *
   * @returns The runs; their frame counts sum to `stats().framesMapped`.
   */
  frameRanges(): KmemFrameRange[] {
    const u32 = this.#u32;
    const ranges: KmemFrameRange[] = [{
      firstFrame: (this.#rootWord / FRAME_WORDS) as FrameNumber,
      frameCount: u32[this.#rootWord + ROOT_FRAME_COUNT_W],
      kind: "root",
    }];
    for (const leaf of this.#frames.leafFrames()) {
      ranges.push({ firstFrame: leaf as FrameNumber, frameCount: 1, kind: "owner-table" });
    }
    for (const head of this.#frames.heads()) {
      const word = head * FRAME_WORDS;
      if (u32[word] === SLAB_MAGIC) {
        const slab = this.#slabs.describe(head);
        ranges.push({
          firstFrame: head as FrameNumber,
          frameCount: u32[word + SLAB_FRAME_COUNT_W],
          kind: "slab",
          objectSizeBytes: CLASS_OBJECT_BYTES[slab.classIndex],
        });
      } else {
        ranges.push({
          firstFrame: head as FrameNumber,
          frameCount: u32[word + ARENA_FRAME_COUNT_W],
          kind: "arena",
        });
      }
    }
    return ranges.sort((a, b) => a.firstFrame - b.firstFrame);
  }

  /**
   * Reads the heap's counters and walks its arenas for the free bytes.
   *
   * @returns Statistics for the boot report and the monitor.
   */
  stats(): KmemHeapStats {
    const u32 = this.#u32;
    const root = this.#rootWord;
    const sizeClasses: KmemSizeClassStats[] = [];
    let bytesInUse = this.#large.liveBytes();
    let bytesFree = 0;
    let cachedFrames = 0;
    for (let c = 0; c < CLASS_COUNT; c++) {
      const { objectsInUse, slabCount } = this.#slabs.classCounters(c);
      const objectsFree = slabCount * CLASS_CAPACITY[c] - objectsInUse;
      sizeClasses.push({
        objectSizeBytes: CLASS_OBJECT_BYTES[c],
        framesPerSlab: CLASS_SLAB_FRAMES[c],
        objectsPerSlab: CLASS_CAPACITY[c],
        slabCount,
        objectsInUse,
        objectsFree,
      });
      bytesInUse += objectsInUse * CLASS_OBJECT_BYTES[c];
      bytesFree += objectsFree * CLASS_OBJECT_BYTES[c];
    }
    for (const head of this.#frames.heads()) {
      if (u32[head * FRAME_WORDS] === SLAB_MAGIC) {
        const slab = this.#slabs.describe(head);
        if (slab.state === "cached") cachedFrames += slab.frameCount;
        continue;
      }
      const arena = this.#large.describe(head);
      if (arena.isCached) cachedFrames += arena.frameCount;
      for (const block of arena.blocks) {
        if (!block.isInUse) bytesFree += block.sizeBytes - 16;
      }
    }
    const framesMapped = u32[root + ROOT_FRAMES_HELD_W];
    return {
      bytesInUse,
      bytesMapped: framesMapped * FRAME_BYTES,
      allocations: readU64(u32, root + ROOT_ALLOCATIONS_W),
      frees: readU64(u32, root + ROOT_FREES_W),
      liveAllocations: u32[root + ROOT_LIVE_W],
      bytesFree,
      framesMapped,
      metadataFrames: u32[root + ROOT_FRAME_COUNT_W] + u32[root + ROOT_LEAF_FRAMES_W],
      slabFrames: u32[root + ROOT_SLAB_FRAMES_W],
      arenaFrames: u32[root + ROOT_ARENA_FRAMES_W],
      cachedFrames,
      largeBytesInUse: this.#large.liveBytes(),
      sizeClasses,
    };
  }

  /**
   * A table of the heap's layout, one row per slab and arena in address
   * order and one per block inside an arena, with a summary line (as the
   * kmem seed's print_table).
   *
   * @returns The table, lines separated by `\n`.
   */
  dump(): string {
    const stats = this.stats();
    const lines = [
      `kmem heap: ${plural(stats.framesMapped, "frame")} mapped (${stats.bytesMapped} bytes), ` +
      `${stats.bytesInUse} bytes in use by ${plural(stats.liveAllocations, "allocation")}, ` +
      `${stats.bytesFree} bytes free`,
      `root descriptor at ${hex(this.rootAddress)}, ` +
      `${plural(stats.metadataFrames, "metadata frame")}, ` +
      `${plural(stats.allocations, "allocation")} and ${plural(stats.frees, "free")} so far`,
      row("address", "kind", "frames", "size", "used/total", "state"),
    ];
    for (const head of this.#frames.heads()) {
      const va = this.#formatVa(head * FRAME_BYTES);
      if (this.#u32[head * FRAME_WORDS] === SLAB_MAGIC) {
        const slab = this.#slabs.describe(head);
        lines.push(row(
          va,
          "slab",
          String(slab.frameCount),
          `${CLASS_OBJECT_BYTES[slab.classIndex]} B`,
          `${slab.inUse}/${slab.capacity}`,
          slab.state,
        ));
        continue;
      }
      const arena = this.#large.describe(head);
      const used = arena.blocks.filter((block) => block.isInUse).length;
      lines.push(row(
        va,
        "arena",
        String(arena.frameCount),
        `${arena.capacityBytes} B`,
        `${used}/${arena.blocks.length}`,
        arena.isCached ? "cached" : "active",
      ));
      for (const block of arena.blocks) {
        lines.push(row(
          "  " + this.#formatVa(block.address),
          "block",
          "",
          `${block.sizeBytes} B`,
          "",
          block.isInUse ? `used (${block.requestedBytes} B asked)` : "free",
        ));
      }
    }
    return lines.join("\n");
  }

  /**
   * Walks every structure of the heap in RAM and checks it: the owner table,
   * every slab (bitmap, free list, counts), every class's partial list, every
   * arena (block tiling, boundary tags, no adjacent free blocks, live
   * bitmap), the free-block index, the counters, and the poison of freed
   * memory in debug mode. O(heap size); for tests and the monitor.
   *
   * @throws {HeapCorruption} On the first inconsistency found.
   */
  checkInvariants(): void {
    const u32 = this.#u32;
    const root = this.#rootWord;
    if (u32[root + ROOT_MAGIC_W] !== ROOT_MAGIC) {
      throw new HeapCorruption(
        "checkInvariants",
        this.rootAddress,
        "root descriptor magic is wrong",
      );
    }
    const ownedFrames = this.#frames.check((head) => {
      const magic = u32[head * FRAME_WORDS];
      if (magic === SLAB_MAGIC) return u32[head * FRAME_WORDS + SLAB_FRAME_COUNT_W];
      if (magic === ARENA_MAGIC) return u32[head * FRAME_WORDS + ARENA_FRAME_COUNT_W];
      throw new HeapCorruption(
        "checkInvariants",
        head * FRAME_BYTES,
        "owned frame has no slab or arena magic",
      );
    });
    const slabs = new Map<number, SlabInfo>();
    const arenas: ArenaInfo[] = [];
    const freeBlocks = new Map<number, number>();
    for (const head of this.#frames.heads()) {
      if (u32[head * FRAME_WORDS] === SLAB_MAGIC) slabs.set(head, this.#slabs.checkSlab(head));
      else arenas.push(this.#large.checkArena(head, freeBlocks));
    }
    const slabFrames = this.#slabs.checkClasses(slabs);
    this.#large.checkTotals(freeBlocks, arenas);
    const cachedArena = u32[root + ROOT_CACHED_ARENA_W];
    if (cachedArena !== 0 && u32[(cachedArena - 1) * FRAME_WORDS] !== ARENA_MAGIC) {
      throw new HeapCorruption(
        "checkInvariants",
        (cachedArena - 1) * FRAME_BYTES,
        "cached arena is not an arena",
      );
    }
    const arenaFrames = u32[root + ROOT_ARENA_FRAMES_W];
    if (ownedFrames !== slabFrames + arenaFrames) {
      throw new HeapCorruption(
        "checkInvariants",
        this.rootAddress,
        "owner table and frame counts disagree",
      );
    }
    const held = u32[root + ROOT_FRAME_COUNT_W] + u32[root + ROOT_LEAF_FRAMES_W] + ownedFrames;
    if (held !== u32[root + ROOT_FRAMES_HELD_W]) {
      throw new HeapCorruption("checkInvariants", this.rootAddress, "frames held count is wrong");
    }
    let live = u32[root + ROOT_LARGE_LIVE_W];
    for (const slab of slabs.values()) live += slab.inUse;
    if (live !== u32[root + ROOT_LIVE_W]) {
      throw new HeapCorruption(
        "checkInvariants",
        this.rootAddress,
        "live allocation count is wrong",
      );
    }
    const allocations = readU64(u32, root + ROOT_ALLOCATIONS_W);
    if (allocations - readU64(u32, root + ROOT_FREES_W) !== live) {
      throw new HeapCorruption(
        "checkInvariants",
        this.rootAddress,
        "allocations minus frees is not the live count",
      );
    }
  }

  /** Allocates after checking the size; returns the physical address. */
  #allocate(sizeBytes: number, alignBytes: number): number {
    checkSize(sizeBytes);
    let address: number;
    if (sizeBytes <= SLAB_MAX_OBJECT_BYTES && alignBytes <= KMALLOC_MIN_ALIGN_BYTES) {
      address = this.#slabs.allocate(CLASS_FOR_GRANULES[(sizeBytes + 15) >>> 4]);
    } else if (sizeBytes <= SLAB_MAX_OBJECT_BYTES && alignBytes <= SLAB_MAX_OBJECT_BYTES) {
      // Objects are aligned to the largest power of two dividing their size,
      // so the first class that is a multiple of the alignment serves.
      let c = CLASS_FOR_GRANULES[(Math.max(sizeBytes, alignBytes) + 15) >>> 4];
      while (CLASS_OBJECT_BYTES[c] % alignBytes !== 0) c++;
      address = this.#slabs.allocate(c);
    } else {
      address = this.#large.allocate(sizeBytes, alignBytes);
    }
    if (address === 0) {
      throw new KernelError(
        "OutOfMemory",
        `Cannot allocate ${sizeBytes} bytes: out of memory (the frame source has no free frames)`,
      );
    }
    const u32 = this.#u32;
    const root = this.#rootWord;
    u32[root + ROOT_LIVE_W]++;
    const allocations = (u32[root + ROOT_ALLOCATIONS_W] + 1) >>> 0;
    u32[root + ROOT_ALLOCATIONS_W] = allocations;
    if (allocations === 0) u32[root + ROOT_ALLOCATIONS_W + 1]++;
    return address;
  }

  /** Frees the allocation at physical `address`; returns its usable size or a negative result. */
  #free(address: number): number {
    const head = this.#headOf(address);
    if (head < 0) return NOT_ALLOCATED;
    const magic = this.#u32[head * FRAME_WORDS];
    let result: number;
    if (magic === SLAB_MAGIC) result = this.#slabs.free(head, address);
    else if (magic === ARENA_MAGIC) result = this.#large.free(head, address);
    else {throw new HeapCorruption(
        "kfree",
        head * FRAME_BYTES,
        "owned frame has no slab or arena magic",
      );}
    if (result >= 0) {
      const u32 = this.#u32;
      const root = this.#rootWord;
      u32[root + ROOT_LIVE_W]--;
      const frees = (u32[root + ROOT_FREES_W] + 1) >>> 0;
      u32[root + ROOT_FREES_W] = frees;
      if (frees === 0) u32[root + ROOT_FREES_W + 1]++;
    }
    return result;
  }

  /** The head frame owning physical `address` if it could be an allocation's start, else -1. */
  #headOf(address: number): number {
    if (!(address >= 0 && address < this.#ramEndBytes) || address % GRANULE_BYTES !== 0) return -1;
    return this.#frames.ownerOf(address) - 1;
  }

  /** Usable size of the allocation at `address` in slab or arena `head`, or a negative result. */
  #usableAt(head: number, address: number): number {
    const magic = this.#u32[head * FRAME_WORDS];
    if (magic === SLAB_MAGIC) return this.#slabs.usableSize(head, address);
    if (magic === ARENA_MAGIC) return this.#large.usableSize(head, address);
    throw new HeapCorruption("kmem", head * FRAME_BYTES, "owned frame has no slab or arena magic");
  }

  /** Formats a physical address as the virtual address the heap would hand out. */
  #formatVa(address: number): string {
    return formatVirtAddr((address + this.directMapOffset) as VirtAddr).padEnd(18);
  }
}

/** Throws InvalidSize unless `sizeBytes` is a whole number from 1 to KMALLOC_MAX_BYTES. */
function checkSize(sizeBytes: number): void {
  if (sizeBytes >= 1 && sizeBytes <= KMALLOC_MAX_BYTES && Number.isInteger(sizeBytes)) return;
  const reason = sizeBytes === 0
    ? "a zero-size allocation has no address to return"
    : sizeBytes > KMALLOC_MAX_BYTES
    ? `more than the heap's limit of ${KMALLOC_MAX_BYTES} bytes (64 MiB)`
    : "the size must be a whole number of bytes";
  throw new KernelError("InvalidSize", `Cannot allocate ${String(sizeBytes)} bytes: ${reason}`);
}

/** The alignment to use for `alignBytes` (at least 16); throws InvalidAlignment if not allowed. */
function checkedAlignment(alignBytes: number): number {
  if (
    Number.isInteger(alignBytes) && alignBytes >= 1 && alignBytes <= KMALLOC_MAX_ALIGN_BYTES &&
    (alignBytes & (alignBytes - 1)) === 0
  ) {
    return Math.max(alignBytes, KMALLOC_MIN_ALIGN_BYTES);
  }
  throw new KernelError(
    "InvalidAlignment",
    `Cannot align an allocation to ${String(alignBytes)} bytes: ` +
      `the alignment must be a power of two from 1 to ${KMALLOC_MAX_ALIGN_BYTES}`,
  );
}

/** The error for a pointer the heap did not hand out (NOT_ALLOCATED) or freed (ALREADY_FREE). */
function badPointer(action: string, va: number, result: number): KernelError {
  const where = Number.isSafeInteger(va) && va >= 0 && va < VIRT_ADDR_LIMIT
    ? formatVirtAddr(va as VirtAddr)
    : String(va);
  const isQuery = action === "get the usable size of";
  const code = isQuery ? "InvalidAddress" : result === ALREADY_FREE ? "DoubleFree" : "InvalidFree";
  const reason = result === ALREADY_FREE ? "already freed" : "not allocated by the heap";
  return new KernelError(code, `Cannot ${action} ${where}: ${reason}`);
}

/** One row of the dump table. */
function row(
  address: string,
  kind: string,
  frames: string,
  size: string,
  used: string,
  state: string,
): string {
  return `${address.padEnd(20)} ${kind.padEnd(6)} ${frames.padStart(6)}  ${size.padStart(9)}  ${
    used.padStart(10)
  }  ${state}`.trimEnd();
}
