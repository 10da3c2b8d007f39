/**
 * RAII handles to physical frames, modelled on Asterinas's `Frame` /
 * `Segment` and KeOS's `Page`: {@linkcode Page} owns one frame,
 * {@linkcode ContigPages} a run of contiguous frames.
 *
 * A handle is a JavaScript object holding a frame number; the reference
 * count it stands for lives in the frame metadata array in RAM
 * ({@linkcode FrameMetadata}). `clone()` adds a reference, disposing drops
 * one, and the frame goes back to the allocator when the last reference is
 * dropped, so `using page = Page.alloc(frames)` frees at scope end. A run's
 * frames are counted one by one, so `ContigPages.split()` can hand each frame
 * to its own `Page`. `intoRaw()` / `fromRaw()` pass ownership through a plain
 * physical address (a page-table entry, a device register) without touching
 * the count.
 *
 * Every method of a disposed handle throws `UseAfterDispose`; dropping a
 * reference the count does not have throws `RefcountUnderflow`.
 *
 * @module
 */

import { type FrameNumber, frameStart, hex, PAGE_SIZE_4K, type PhysAddr } from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";
import type { FrameProvider } from "./frame_provider.ts";
import type { HeldFrame } from "./frame_metadata.ts";

/** Options of {@linkcode Page.alloc}. */
export interface PageAllocOptions {
  /** Fill the memory with zeros (the default); `false` leaves it as it was. */
  readonly zeroed?: boolean;
}

/** Options of {@linkcode ContigPages.alloc}. */
export interface ContigPagesAllocOptions extends PageAllocOptions {
  /** The first frame number is a multiple of this power of two (default 1). */
  readonly alignFrames?: number;
}

/** Creates a Page around a reference its caller already owns (set in Page's static block). */
let adoptPage: (allocator: FrameProvider, frame: number) => Page;

/** A counted reference to one physical frame, freed with the last reference. */
export class Page implements Disposable {
  readonly #allocator: FrameProvider;
  readonly #frame: number;
  #isDisposed = false;

  static {
    adoptPage = (allocator, frame) => new Page(allocator, frame);
  }

  private constructor(allocator: FrameProvider, frame: number) {
    this.#allocator = allocator;
    this.#frame = frame;
  }

  /**
   * Allocates a frame and returns the only handle to it.
   *
   * @param allocator The frame allocator.
   * @param options `zeroed` (default true).
   * @returns The new handle; the frame's count is 1.
   * @throws {KernelError} `OutOfMemory` if no frame is free.
   *
   * @example
   * ```ts
   * import { PhysicalMemory } from "../../hal/mod.ts";
   * import { FrameAllocator } from "./frame_allocator.ts";
   * import { Page } from "./page.ts";
   * const memory = PhysicalMemory.contiguous(16 * 2 ** 20);
   * const frames = FrameAllocator.create(memory, {
   *   usableRegions: [{ base: 0, length: 16 * 2 ** 20 }],
   * });
   * {
   *   using page = Page.alloc(frames);
   *   page.bytes()[0] = 0x42;
   * } // freed here
   * ```
   */
  static alloc(allocator: FrameProvider, options: PageAllocOptions = {}): Page {
    const frame = allocator.allocate();
    takeFreshFrames(allocator, frame, 1, options.zeroed ?? true);
    return new Page(allocator, frame);
  }

  /**
   * Takes back a reference given away by {@linkcode Page.intoRaw}.
   *
   * @param allocator The allocator the frame came from.
   * @param pa The physical address `intoRaw()` returned.
   * @returns A handle owning that reference (the count is unchanged).
   * @throws {KernelError} `InvalidFrame` if `pa` is not a frame start or no
   *   handle holds the frame.
   */
  static fromRaw(allocator: FrameProvider, pa: PhysAddr): Page {
    const frame = checkRaw(allocator, pa, 1);
    return new Page(allocator, frame);
  }

  /** Whether this handle has been disposed or consumed (by `intoRaw`). */
  get isDisposed(): boolean {
    return this.#isDisposed;
  }

  /**
   * The frame number.
   *
   * @throws {KernelError} `UseAfterDispose` if the handle is disposed.
   */
  get frame(): FrameNumber {
    return this.#live("read") as FrameNumber;
  }

  /**
   * The frame's physical address.
   *
   * @throws {KernelError} `UseAfterDispose` if the handle is disposed.
   */
  get physAddr(): PhysAddr {
    return frameStart(this.#live("read") as FrameNumber);
  }

  /**
   * How many handles share the frame (read from RAM).
   *
   * @throws {KernelError} `UseAfterDispose` if the handle is disposed.
   */
  get refcount(): number {
    return this.#allocator.metadata.refcount(this.#live("read") as FrameNumber);
  }

  /**
   * Returns another handle to the same frame and adds a reference.
   *
   * @returns The new handle.
   * @throws {KernelError} `UseAfterDispose` if this handle (or, stale, the
   *   frame) has already been released.
   */
  clone(): Page {
    const frame = this.#live("clone");
    this.#allocator.metadata.retain(frame as FrameNumber);
    return new Page(this.#allocator, frame);
  }

  /**
   * A byte view of the frame's 4096 bytes of RAM (no copy).
   *
   * @returns A Uint8Array over the shared buffer; do not use it after disposing.
   * @throws {KernelError} `UseAfterDispose` if the handle is disposed.
   */
  bytes(): Uint8Array {
    const pa = this.#live("view") * PAGE_SIZE_4K;
    return this.#allocator.memory.u8.subarray(pa, pa + PAGE_SIZE_4K);
  }

  /**
   * Gives up this handle without dropping its reference, for storing the
   * frame as a raw address; {@linkcode Page.fromRaw} takes it back.
   *
   * @returns The frame's physical address.
   * @throws {KernelError} `UseAfterDispose` if the handle is disposed.
   */
  intoRaw(): PhysAddr {
    const frame = this.#live("give up");
    this.#isDisposed = true;
    return frameStart(frame as FrameNumber);
  }

  /**
   * Drops this handle's reference; the last one frees the frame.
   *
   * @throws {KernelError} `UseAfterDispose` if already disposed;
   *   `RefcountUnderflow` if the frame has no reference left to drop.
   */
  [Symbol.dispose](): void {
    const frame = this.#live("dispose");
    this.#isDisposed = true;
    releaseFrames(this.#allocator, frame, 1);
  }

  #live(action: string): number {
    if (this.#isDisposed) {
      throw new KernelError(
        "UseAfterDispose",
        `Cannot ${action} page at frame ${hex(this.#frame)}: handle already disposed`,
      );
    }
    return this.#frame;
  }
}

/** A counted reference to each frame of a contiguous run. */
export class ContigPages implements Disposable {
  /** Number of frames in the run. */
  readonly frameCount: number;
  readonly #allocator: FrameProvider;
  readonly #frame: number;
  #isDisposed = false;

  private constructor(allocator: FrameProvider, frame: number, frameCount: number) {
    this.#allocator = allocator;
    this.#frame = frame;
    this.frameCount = frameCount;
  }

  /**
   * Allocates `frameCount` contiguous frames and returns the only handle to them.
   *
   * @param allocator The frame allocator.
   * @param frameCount How many frames, at least 1.
   * @param options `alignFrames` (a power of two, default 1) and `zeroed` (default true).
   * @returns The new handle; each frame's count is 1.
   * @throws {KernelError} `OutOfMemory` if no suitable run is free.
   * @throws {RangeError} If `frameCount` or `alignFrames` is invalid.
   */
  static alloc(
    allocator: FrameProvider,
    frameCount: number,
    options: ContigPagesAllocOptions = {},
  ): ContigPages {
    const frame = allocator.allocateContiguous(frameCount, options.alignFrames ?? 1);
    takeFreshFrames(allocator, frame, frameCount, options.zeroed ?? true);
    return new ContigPages(allocator, frame, frameCount);
  }

  /**
   * Takes back the references given away by {@linkcode ContigPages.intoRaw}.
   *
   * @param allocator The allocator the frames came from.
   * @param pa The physical address `intoRaw()` returned.
   * @param frameCount The run's length in frames.
   * @returns A handle owning one reference to each frame (counts unchanged).
   * @throws {KernelError} `InvalidFrame` if `pa` is not a frame start or a
   *   frame of the run is held by no handle.
   */
  static fromRaw(allocator: FrameProvider, pa: PhysAddr, frameCount: number): ContigPages {
    const frame = checkRaw(allocator, pa, frameCount);
    return new ContigPages(allocator, frame, frameCount);
  }

  /** Whether this handle has been disposed or consumed (by `intoRaw` or `split`). */
  get isDisposed(): boolean {
    return this.#isDisposed;
  }

  /**
   * The first frame number.
   *
   * @throws {KernelError} `UseAfterDispose` if the handle is disposed.
   */
  get frame(): FrameNumber {
    return this.#live("read") as FrameNumber;
  }

  /**
   * The physical address of the first frame.
   *
   * @throws {KernelError} `UseAfterDispose` if the handle is disposed.
   */
  get physAddr(): PhysAddr {
    return frameStart(this.#live("read") as FrameNumber);
  }

  /** Size of the run in bytes. */
  get sizeBytes(): number {
    return this.frameCount * PAGE_SIZE_4K;
  }

  /**
   * Returns another handle to the same run and adds a reference to each frame.
   *
   * @returns The new handle.
   * @throws {KernelError} `UseAfterDispose` if this handle (or, stale, a frame)
   *   has already been released.
   */
  clone(): ContigPages {
    const first = this.#live("clone");
    const metadata = this.#allocator.metadata;
    // Check every frame before changing any count, so a failure changes nothing:
    // retain() throws UseAfterDispose for a frame no handle holds.
    for (let frame = first; frame < first + this.frameCount; frame++) {
      if (metadata.refcount(frame as FrameNumber) < 1) metadata.retain(frame as FrameNumber);
    }
    for (let frame = first; frame < first + this.frameCount; frame++) {
      metadata.retain(frame as FrameNumber);
    }
    return new ContigPages(this.#allocator, first, this.frameCount);
  }

  /**
   * Consumes this handle and returns one {@linkcode Page} per frame, each
   * owning this handle's reference to its frame.
   *
   * @returns The pages, lowest frame first.
   * @throws {KernelError} `UseAfterDispose` if the handle is disposed.
   */
  split(): Page[] {
    const first = this.#live("split");
    this.#isDisposed = true;
    const pages: Page[] = [];
    for (let i = 0; i < this.frameCount; i++) pages.push(adoptPage(this.#allocator, first + i));
    return pages;
  }

  /**
   * A byte view of the whole run (no copy).
   *
   * @returns A Uint8Array of {@linkcode ContigPages.sizeBytes} over the shared buffer.
   * @throws {KernelError} `UseAfterDispose` if the handle is disposed.
   */
  bytes(): Uint8Array {
    const pa = this.#live("view") * PAGE_SIZE_4K;
    return this.#allocator.memory.u8.subarray(pa, pa + this.sizeBytes);
  }

  /**
   * Gives up this handle without dropping its references;
   * {@linkcode ContigPages.fromRaw} takes them back.
   *
   * @returns The first frame's physical address.
   * @throws {KernelError} `UseAfterDispose` if the handle is disposed.
   */
  intoRaw(): PhysAddr {
    const frame = this.#live("give up");
    this.#isDisposed = true;
    return frameStart(frame as FrameNumber);
  }

  /**
   * Drops this handle's reference to each frame; frames whose last reference
   * this was go back to the allocator.
   *
   * @throws {KernelError} `UseAfterDispose` if already disposed;
   *   `RefcountUnderflow` if a frame has no reference left to drop.
   */
  [Symbol.dispose](): void {
    const frame = this.#live("dispose");
    this.#isDisposed = true;
    releaseFrames(this.#allocator, frame, this.frameCount);
  }

  #live(action: string): number {
    if (this.#isDisposed) {
      throw new KernelError(
        "UseAfterDispose",
        `Cannot ${action} pages at frame ${hex(this.#frame)}: handle already disposed`,
      );
    }
    return this.#frame;
  }
}

/**
 * The leak report: frames still held by page handles, lowest first, with
 * their allocation sites when the allocator tracks them (debug option
 * `trackAllocationSites`). Scans the metadata array, so it is meant for
 * shutdown and tests.
 *
 * @param allocator The frame allocator.
 * @returns One entry per held frame.
 */
export function heldFrames(allocator: FrameProvider): HeldFrame[] {
  return allocator.metadata.heldFrames();
}

/** Gives fresh frames their first reference, zeroes them, and records the site. */
function takeFreshFrames(
  allocator: FrameProvider,
  frame: number,
  frameCount: number,
  isZeroed: boolean,
): void {
  const metadata = allocator.metadata;
  // SAFETY: the allocator just handed these frames out, so no handle holds
  // them; acquireUnused throws FrameInUse if that invariant is broken.
  for (let i = 0; i < frameCount; i++) metadata.acquireUnused((frame + i) as FrameNumber);
  if (isZeroed) {
    const pa = frame * PAGE_SIZE_4K;
    allocator.memory.u8.fill(0, pa, pa + frameCount * PAGE_SIZE_4K);
  }
  if (metadata.tracksAllocationSites) {
    const site = callerSite();
    for (let i = 0; i < frameCount; i++) metadata.recordSite((frame + i) as FrameNumber, site);
  }
}

/** Drops one reference to each frame of a run and frees, in runs, those that reach 0. */
function releaseFrames(allocator: FrameProvider, first: number, frameCount: number): void {
  const metadata = allocator.metadata;
  // Check every frame before changing any count, so an underflow changes nothing:
  // release() throws RefcountUnderflow for a frame no handle holds.
  for (let frame = first; frame < first + frameCount; frame++) {
    if (metadata.refcount(frame as FrameNumber) < 1) metadata.release(frame as FrameNumber);
  }
  let runStart = -1;
  for (let frame = first; frame < first + frameCount; frame++) {
    const isLast = metadata.release(frame as FrameNumber) === 0;
    if (isLast && runStart < 0) runStart = frame;
    if (!isLast && runStart >= 0) {
      allocator.freeContiguous(runStart as FrameNumber, frame - runStart);
      runStart = -1;
    }
  }
  if (runStart >= 0) {
    allocator.freeContiguous(runStart as FrameNumber, first + frameCount - runStart);
  }
}

/** Validates a raw address handed back to fromRaw; returns its frame. */
function checkRaw(allocator: FrameProvider, pa: PhysAddr, frameCount: number): number {
  if (!Number.isSafeInteger(pa) || pa < 0 || pa % PAGE_SIZE_4K !== 0) {
    throw new KernelError(
      "InvalidFrame",
      `Cannot adopt physical address ${hex(pa)}: not the start of a frame`,
    );
  }
  if (!Number.isSafeInteger(frameCount) || frameCount < 1) {
    throw new RangeError(`Invalid frame count ${frameCount}: must be a positive integer`);
  }
  const first = pa / PAGE_SIZE_4K;
  for (let frame = first; frame < first + frameCount; frame++) {
    if (
      frame >= allocator.metadata.frameCount ||
      allocator.metadata.refcount(frame as FrameNumber) < 1
    ) {
      throw new KernelError(
        "InvalidFrame",
        `Cannot adopt frame ${hex(frame)}: not held by any page handle`,
      );
    }
  }
  return first;
}

/** The first stack line outside this module: where a handle was allocated. */
function callerSite(): string {
  const lines = (new Error().stack ?? "").split("\n").slice(1);
  const outside = lines.find((line) => !line.includes(import.meta.url));
  return (outside ?? "unknown").trim().replace(/^at /, "");
}
