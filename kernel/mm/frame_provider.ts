/**
 * The physical frame allocator as a replaceable part: the
 * {@linkcode FrameProvider} interface every consumer (`Page`, `ContigPages`,
 * address spaces, the heap, the page-fault policy, the monitor and the
 * reports) is written against, the factory a module's default export must be
 * for `--frames`, and the boot step that calls it.
 *
 * The stock {@linkcode FrameAllocator} is one provider. A user's provider
 * keeps its state in simulated RAM like the stock one: it takes the frames
 * for its bitmaps or lists from the early allocator it is given, builds the
 * per-frame reference counts with {@linkcode createFrameMetadata}, and must
 * report every frame it took for itself as `reserved`. The contract, with
 * every method's errors, is in `docs/sdk.md`.
 *
 * @module
 */

import {
  type FrameNumber,
  frameStart,
  hex,
  PAGE_SIZE_4K,
  type PhysicalMemory,
  type Tracer,
} from "../../hal/mod.ts";
import type { BootInfoMemoryRegion, BootReservation } from "../boot/mod.ts";
import { KernelError } from "../errors.ts";
import {
  EarlyFrameAllocator,
  framesInside,
  framesTouching,
  type PhysRange,
} from "./early_allocator.ts";
import {
  type AllocatorMetadataRange,
  FrameAllocator,
  type FrameState,
  type FrameStateCounts,
  type FrameStats,
} from "./frame_allocator.ts";
import { FRAME_UNUSABLE, FrameMetadata } from "./frame_metadata.ts";
import type { FrameSource } from "./frame_source.ts";

/** The multiboot2 memory type of available RAM. */
const MEMORY_AVAILABLE = 1;

/** Statistics a provider reports: the stock counters, plus any of its own. */
export interface FrameProviderStats extends FrameStats {
  /**
   * Counters particular to this provider (`searches`, `cursorFrame` ...),
   * shown as they are in `--report json` under `frames.details`.
   */
  readonly details?: Readonly<Record<string, number>>;
}

/**
 * A physical frame allocator. Frame numbers are physical address / 4096.
 * Every failure a caller may handle is a {@linkcode KernelError} with the
 * code named below; anything else a provider throws is a bug in it.
 */
export interface FrameProvider extends FrameSource {
  /** The RAM it manages and keeps its own state in (the `memory` it was given). */
  readonly memory: PhysicalMemory;
  /**
   * The per-frame reference counts behind `Page` handles, in RAM
   * ({@linkcode createFrameMetadata} builds one). A frame the provider may
   * hand out reads 0 while free; every other frame reads -1.
   */
  readonly metadata: FrameMetadata;
  /**
   * Allocates one free frame; which one is the provider's policy (the stock
   * allocator takes the lowest).
   *
   * @throws {KernelError} `OutOfMemory` if no frame is free.
   */
  allocate(): FrameNumber;
  /**
   * Allocates the given frame.
   *
   * @returns The same frame.
   * @throws {KernelError} `FrameInUse` if it is allocated; `InvalidFrame` if it
   *   is reserved or not managed by the provider.
   */
  allocateSpecific(frame: FrameNumber): FrameNumber;
  /**
   * Allocates `frameCount` contiguous free frames whose first frame number is
   * a multiple of `alignFrames` (a power of two).
   *
   * @throws {KernelError} `OutOfMemory` if no such run is free.
   * @throws {RangeError} If `frameCount` is not a positive integer or
   *   `alignFrames` not a power of two.
   */
  allocateContiguous(frameCount: number, alignFrames: number): FrameNumber;
  /**
   * Frees one allocated frame.
   *
   * @throws {KernelError} `DoubleFree` if it is free; `InvalidFrame` if it is
   *   reserved or not managed by the provider. Nothing changes on error.
   */
  free(frame: FrameNumber): void;
  /**
   * Frees `frameCount` allocated frames starting at `frame`.
   *
   * @throws {KernelError} `DoubleFree` or `InvalidFrame` as `free`, for the
   *   first bad frame; nothing changes on error.
   * @throws {RangeError} If `frameCount` is not a positive integer.
   */
  freeContiguous(frame: FrameNumber, frameCount: number): void;
  /** Counters read from the provider's state in RAM: totals and per pool. */
  stats(): FrameProviderStats;
  /** The state of one frame: `free`, `allocated`, `reserved`, or `outside` what it manages. */
  stateOf(frame: FrameNumber): FrameState;
  /** Where the provider keeps its own state (reserved frames), for the reports. */
  metadataRanges(): readonly AllocatorMetadataRange[];
  /**
   * Optional: counts the states of a run of frames quickly (the HTML report
   * pictures all of RAM with it). Without it the report calls `stateOf` per frame.
   */
  countStates?(firstFrame: number, frameCount: number): FrameStateCounts;
  /** Optional: receives the `--trace mm` tracer. */
  setTracer?(tracer: Tracer | undefined): void;
  /** Optional: checks every invariant of the state in RAM; throws naming the broken one. */
  checkInvariants?(): void;
}

/** What a {@linkcode FrameProviderFactory} is given at boot. */
export interface FrameProviderEnv {
  /** The machine's RAM: the frames to manage and the place for the provider's state. */
  readonly memory: PhysicalMemory;
  /** The available regions of the firmware memory map, in bytes (not frame-aligned). */
  readonly usableRegions: readonly PhysRange[];
  /**
   * Ranges inside them that must never be handed out (the first MiB, the
   * kernel image, the boot information, modules), each named.
   */
  readonly reservations: readonly BootReservation[];
  /**
   * A bump allocator over the usable regions minus the reservations, for
   * the provider's own state. Retire it before returning (its
   * `retire()` lists what it handed out); every frame it handed out must
   * then be `reserved` in the provider. The kernel retires it if the
   * factory did not, and checks.
   */
  readonly early: EarlyFrameAllocator;
  /** `--debug`: poison freed frames, record allocation sites (a provider may ignore it). */
  readonly debug: boolean;
}

/**
 * The default export of a `--frames` module: builds the provider once, at
 * boot, before paging is on.
 *
 * @example
 * ```ts ignore
 * const createFrames: FrameProviderFactory = (env) => new MyAllocator(env);
 * export default createFrames;
 * ```
 */
export type FrameProviderFactory = (env: FrameProviderEnv) => FrameProvider;

/**
 * The stock provider: {@linkcode FrameAllocator}, a hierarchical bitmap per
 * usable region, lowest free frame first.
 */
export const createStockFrameProvider: FrameProviderFactory = (env): FrameAllocator =>
  FrameAllocator.fromEarlyAllocator(
    env.memory,
    env.early,
    env.debug ? { poison: true, trackAllocationSites: true } : {},
  );

/**
 * The usable regions of a memory map: every available (type 1) region.
 *
 * @param memoryMap The kernel's (sanitized) memory map.
 * @returns The regions, in map order.
 */
export function usableRegionsOf(memoryMap: readonly BootInfoMemoryRegion[]): PhysRange[] {
  return memoryMap
    .filter((region) => region.type === MEMORY_AVAILABLE)
    .map(({ base, length }) => ({ base, length }));
}

/**
 * Boots a frame provider: builds its environment from the memory map and
 * the reservations, calls `factory`, retires the early allocator if the factory did not, and
 * checks that every frame the early allocator and the reservations cover is
 * reserved (`stateOf`; for the stock allocator, its `countStates`), so the
 * provider can never hand out its own state or the kernel image.
 *
 * @param factory The provider's factory (the stock one, or a user's).
 * @param memory The machine's RAM.
 * @param memoryMap The kernel's (sanitized) memory map.
 * @param reservations The ranges never to hand out.
 * @param debug The `--debug` switch.
 * @returns The running provider.
 * @throws {KernelError} `InvalidPart` naming the first frame of its state
 *   or of a reservation the provider reports as free.
 */
export function bootFrameProvider(
  factory: FrameProviderFactory,
  memory: PhysicalMemory,
  memoryMap: readonly BootInfoMemoryRegion[],
  reservations: readonly BootReservation[],
  debug: boolean,
): FrameProvider {
  const usableRegions = usableRegionsOf(memoryMap);
  const early = new EarlyFrameAllocator(usableRegions, reservations);
  const provider = factory({ memory, usableRegions, reservations, early, debug });
  const handedOut = early.isRetired ? early.allocatedRanges : early.retire();
  for (const range of handedOut) checkNeverFree(provider, range, "its own state");
  for (const range of reservations) checkNeverFree(provider, range, range.what);
  return provider;
}

/** Throws if the provider would hand out a frame of `range`. */
function checkNeverFree(provider: FrameProvider, range: PhysRange, what: string): void {
  const { firstFrame, endFrame } = framesTouching(range);
  // The stock allocator's counts agree with its stateOf by construction: one
  // count over the range (its bitmap words, not each frame) settles it. Any
  // other provider is asked frame by frame, as its stateOf is what counts.
  if (
    FrameAllocator.isStock(provider) &&
    provider.countStates(firstFrame, endFrame - firstFrame).free === 0
  ) {
    return;
  }
  for (let frame = firstFrame; frame < endFrame; frame++) {
    if (provider.stateOf(frame as FrameNumber) === "free") {
      throw new KernelError(
        "InvalidPart",
        `Frame provider reports frame ${hex(frame)} (${what}) as free: it must be reserved`,
      );
    }
  }
}

/**
 * Counts the states of a run of frames with the provider's `countStates`, or
 * one `stateOf` per frame when it has none.
 *
 * @param provider The frame provider.
 * @param firstFrame The first frame.
 * @param frameCount How many frames.
 * @returns The counts, which sum to `frameCount`.
 */
export function countFrameStates(
  provider: FrameProvider,
  firstFrame: number,
  frameCount: number,
): FrameStateCounts {
  if (provider.countStates !== undefined) return provider.countStates(firstFrame, frameCount);
  const counts = { free: 0, allocated: 0, reserved: 0, outside: 0 };
  for (let frame = firstFrame; frame < firstFrame + frameCount; frame++) {
    counts[provider.stateOf(frame as FrameNumber)]++;
  }
  return counts;
}

/**
 * Places the per-frame reference-count array a provider must expose as
 * `metadata`: one word per frame from frame 0 to the end of the highest
 * usable region, in frames taken from `env.early`, every word -1 (unusable).
 * The provider then sets the words of the frames it may hand out to 0
 * (`metadata.fill(first, count, FRAME_UNUSED)`).
 *
 * @param env The factory's environment (its `early` allocator must not be retired yet).
 * @returns The array; its frames are part of the provider's state.
 * @throws {KernelError} `OutOfMemory` if the early allocator cannot hold it.
 */
export function createFrameMetadata(env: FrameProviderEnv): FrameMetadata {
  const frameCount = env.usableRegions.reduce(
    (end, region) => Math.max(end, framesInside(region).endFrame),
    0,
  );
  // The array, then its page states (FrameMetadata's default place for them).
  const sizeBytes = FrameMetadata.sizeBytes(frameCount) +
    FrameMetadata.pageStatesSizeBytes(frameCount);
  const base = frameStart(env.early.allocate(Math.ceil(sizeBytes / PAGE_SIZE_4K)));
  const metadata = new FrameMetadata(env.memory, base, frameCount, {
    trackAllocationSites: env.debug,
  });
  metadata.reset();
  metadata.fill(0, frameCount, FRAME_UNUSABLE);
  return metadata;
}

/**
 * The frames a provider may hand out: the usable regions (rounded inward to
 * whole frames) minus every excluded range (rounded outward), as runs sorted
 * by address.
 *
 * @param usableRegions The usable regions, as `env.usableRegions`.
 * @param excluded What to leave out: `env.reservations` and what the early
 *   allocator handed out (`env.early.retire()`).
 * @returns Runs of frames `[firstFrame, endFrame)`, non-empty and disjoint.
 *
 * @example
 * ```ts
 * import { availableFrameRuns } from "./frame_provider.ts";
 * const runs = availableFrameRuns(
 *   [{ base: 0, length: 0x9f000 }, { base: 0x100000, length: 0x700000 }],
 *   [{ base: 0, length: 0x100000 }, { base: 0x7ff000, length: 0x1000 }],
 * );
 * // [{ firstFrame: 0x100, endFrame: 0x7ff }]
 * ```
 */
export function availableFrameRuns(
  usableRegions: readonly PhysRange[],
  excluded: readonly PhysRange[],
): { firstFrame: number; endFrame: number }[] {
  const cuts = excluded.map(framesTouching).filter((cut) => cut.endFrame > cut.firstFrame)
    .sort((a, b) => a.firstFrame - b.firstFrame);
  const runs: { firstFrame: number; endFrame: number }[] = [];
  const regions = usableRegions.map(framesInside).sort((a, b) => a.firstFrame - b.firstFrame);
  for (const region of regions) {
    let start = region.firstFrame;
    for (const cut of cuts) {
      if (cut.endFrame <= start || cut.firstFrame >= region.endFrame) continue;
      if (cut.firstFrame > start) runs.push({ firstFrame: start, endFrame: cut.firstFrame });
      start = Math.max(start, cut.endFrame);
    }
    if (region.endFrame > start) runs.push({ firstFrame: start, endFrame: region.endFrame });
  }
  return runs;
}
