/**
 * The kernel heap (kmalloc/kfree) as a replaceable part: the
 * {@linkcode KernelHeap} interface the kernel, the self-tests, the monitor
 * and the reports use, and the factory a `--heap` module's default export
 * must be. The stock {@linkcode KmemHeap} (slab caches and a two-level
 * segregated fit, all in RAM) is one provider.
 *
 * A heap takes whole frames from the frame provider and keeps every header,
 * free list and counter in them; it hands out kernel virtual addresses,
 * physical address + `directMapOffset` (the direct map once paging is on).
 * The contract is in `docs/sdk.md`.
 *
 * @module
 */

import type { PhysAddr, PhysicalMemory, Tracer, VirtAddr } from "../../hal/mod.ts";
import type { FrameProvider } from "./frame_provider.ts";
import {
  type KmallocOptions,
  type KmemFrameRange,
  KmemHeap,
  type KmemSizeClassStats,
} from "./kmem_heap.ts";

/** Heap counters every provider reports, read from its state in RAM. */
export interface HeapStats {
  /** Usable bytes of all live allocations. */
  readonly bytesInUse: number;
  /** Bytes of every frame the heap holds (its blocks and its own structures). */
  readonly bytesMapped: number;
  /** Successful allocations since creation. */
  readonly allocations: number;
  /** Frees since creation. */
  readonly frees: number;
  /** Allocations live now. */
  readonly liveAllocations: number;
  /** Optional: bytes inside held frames free to allocate without taking a frame. */
  readonly bytesFree?: number;
  /** Optional: frames of the heap's own structures. */
  readonly metadataFrames?: number;
  /** Optional: frames in slabs. */
  readonly slabFrames?: number;
  /** Optional: frames in arenas. */
  readonly arenaFrames?: number;
  /** Optional: frames held only as a cache. */
  readonly cachedFrames?: number;
  /** Optional: usable bytes of large live allocations. */
  readonly largeBytesInUse?: number;
  /** Optional: per size class, smallest first. */
  readonly sizeClasses?: readonly KmemSizeClassStats[];
  /** Counters particular to this heap, shown in `--report json` under `heap.details`. */
  readonly details?: Readonly<Record<string, number>>;
}

/**
 * A kernel heap. Failures a caller may handle are {@linkcode KernelError}s
 * with the codes named below.
 */
export interface KernelHeap {
  /** What the heap adds to a physical address to form the virtual address it hands out. */
  readonly directMapOffset: number;
  /**
   * Allocates `sizeBytes` bytes, aligned to 16 or to `options.alignBytes`
   * when larger. The memory is not cleared.
   *
   * @returns The virtual address of the block.
   * @throws {KernelError} `InvalidSize` for a size of 0, above 64 MiB or not
   *   a whole number; `InvalidAlignment` for an alignment that is not a power
   *   of two up to 4096; `OutOfMemory` when no frame is left for it.
   */
  kmalloc(sizeBytes: number, options?: KmallocOptions): VirtAddr;
  /**
   * Frees a block `kmalloc` returned.
   *
   * @throws {KernelError} `InvalidFree` for an address that is not a live
   *   block's (never allocated, already freed, or inside a block); nothing
   *   changes on error.
   */
  kfree(va: VirtAddr): void;
  /**
   * The usable size of a live block: at least what was asked for.
   *
   * @throws {KernelError} `InvalidFree` for an address that is not a live block's.
   */
  usableSize(va: VirtAddr): number;
  /** Counters read from RAM. */
  stats(): HeapStats;
  /** Optional: physical address of the heap's root structure, for the boot log. */
  readonly rootAddress?: PhysAddr;
  /** Optional: allocates and zeroes (the kernel falls back to kmalloc + zeroing). */
  kzalloc?(sizeBytes: number, options?: KmallocOptions): VirtAddr;
  /** Optional: the frames the heap holds and what they hold, for the HTML report. */
  frameRanges?(): KmemFrameRange[];
  /** Optional: a human-readable listing of the heap's frames, for the monitor's `heap` command. */
  dump?(): string;
  /** Optional: checks every invariant of the state in RAM; throws naming the broken one. */
  checkInvariants?(): void;
  /** Optional: receives the `--trace mm` tracer. */
  setTracer?(tracer: Tracer | undefined): void;
}

/** What a {@linkcode KernelHeapFactory} is given at boot. */
export interface KernelHeapEnv {
  /** The machine's RAM. */
  readonly memory: PhysicalMemory;
  /** Where the heap takes frames from and gives them back to. */
  readonly frames: FrameProvider;
  /**
   * Added to a physical address to form the virtual address handed out:
   * the direct-map base (2^47) in the booted kernel, 0 in identity tests.
   */
  readonly directMapOffset: number;
  /** `--debug`: poison freed memory (a heap may ignore it). */
  readonly debug: boolean;
}

/** The default export of a `--heap` module: builds the heap once, at boot, after paging is on. */
export type KernelHeapFactory = (env: KernelHeapEnv) => KernelHeap;

/** The stock heap: {@linkcode KmemHeap}. */
export const createStockKernelHeap: KernelHeapFactory = (env): KmemHeap =>
  KmemHeap.create(env.memory, env.frames, {
    directMapOffset: env.directMapOffset,
    debug: env.debug ? { poison: true } : undefined,
  });
