/**
 * The kmem heap on several CPUs: one CPU's handle to the shared heap (a
 * {@linkcode KmemHeap} attached to the one root descriptor in RAM), with the
 * heap's spinlock held around every call. The heap takes its frames through
 * this CPU's frame handle (its per-CPU cache), so the lock order is heap,
 * then frames.
 *
 * @module
 */

import type { PhysAddr, Tracer, VirtAddr } from "../../hal/mod.ts";
import type { HeapStats, KernelHeap, KmallocOptions, KmemFrameRange, KmemHeap } from "../mm/mod.ts";
import type { SpinLock } from "./spinlock.ts";

/** One CPU's handle to the shared kmem heap, serialised by the heap's spinlock. */
export class SmpKernelHeap implements KernelHeap {
  /** What the heap adds to a physical address to form the address it hands out. */
  readonly directMapOffset: number;
  /** Physical address of the heap's root descriptor. */
  readonly rootAddress: PhysAddr;
  readonly #heap: KmemHeap;
  readonly #lock: SpinLock;

  /** Wraps this CPU's handle to the heap with the heap's lock. */
  constructor(heap: KmemHeap, lock: SpinLock) {
    this.#heap = heap;
    this.#lock = lock;
    this.directMapOffset = heap.directMapOffset;
    this.rootAddress = heap.rootAddress;
  }

  /** {@linkcode KmemHeap.kmalloc} under the lock. */
  kmalloc(sizeBytes: number, options?: KmallocOptions): VirtAddr {
    return this.#lock.hold(() => this.#heap.kmalloc(sizeBytes, options));
  }

  /** {@linkcode KmemHeap.kzalloc} under the lock. */
  kzalloc(sizeBytes: number, options?: KmallocOptions): VirtAddr {
    return this.#lock.hold(() => this.#heap.kzalloc(sizeBytes, options));
  }

  /** {@linkcode KmemHeap.kfree} under the lock. */
  kfree(va: VirtAddr): void {
    this.#lock.hold(() => this.#heap.kfree(va));
  }

  /** {@linkcode KmemHeap.usableSize} under the lock. */
  usableSize(va: VirtAddr): number {
    return this.#lock.hold(() => this.#heap.usableSize(va));
  }

  /** {@linkcode KmemHeap.stats} under the lock. */
  stats(): HeapStats {
    return this.#lock.hold(() => this.#heap.stats());
  }

  /** {@linkcode KmemHeap.frameRanges} under the lock. */
  frameRanges(): KmemFrameRange[] {
    return this.#lock.hold(() => this.#heap.frameRanges());
  }

  /** {@linkcode KmemHeap.dump} under the lock. */
  dump(): string {
    return this.#lock.hold(() => this.#heap.dump());
  }

  /** {@linkcode KmemHeap.checkInvariants} under the lock. */
  checkInvariants(): void {
    this.#lock.hold(() => this.#heap.checkInvariants());
  }

  /** Hands the tracer to this CPU's handle. */
  setTracer(tracer: Tracer | undefined): void {
    this.#heap.setTracer(tracer);
  }
}
