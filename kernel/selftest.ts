/**
 * Kernel self-tests, run at boot with `--selftest`: each exercises a memory
 * subsystem on the live kernel and checks that it leaves no trace (free
 * counts and heap statistics back where they started).
 *
 * @module
 */

import type { FrameNumber, Mmu, VirtAddr } from "../hal/mod.ts";
import { Xorshift32 } from "../testing/xorshift32.ts";
import { KernelError } from "./errors.ts";
import { ContigPages, type FrameAllocator, type KmemHeap, Page } from "./mm/mod.ts";

/** What the self-tests need from the kernel. */
export interface SelftestContext {
  /** The physical frame allocator. */
  readonly frames: FrameAllocator;
  /** The kernel heap. */
  readonly heap: KmemHeap;
  /** The MMU, through which the tests touch heap memory at its virtual addresses. */
  readonly mmu: Mmu;
  /** Extra tests from subsystems that come up later (paging). */
  readonly extraTests?: readonly Selftest[];
}

/** One named self-test: throws on failure. */
export interface Selftest {
  /** Short name shown in the summary. */
  readonly name: string;
  /** Runs the test; any exception is a failure. */
  readonly run: () => void;
}

/** The outcome of one self-test. */
export interface SelftestResult {
  /** The test's name. */
  readonly name: string;
  /** Whether it passed. */
  readonly passed: boolean;
  /** Why it failed (empty when it passed). */
  readonly detail: string;
}

/** Thrown by a self-test check that does not hold. */
class SelftestFailure extends Error {
  override readonly name = "SelftestFailure";
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new SelftestFailure(message);
}

/** The standard memory self-tests over `context`. */
export function memorySelftests(context: SelftestContext): Selftest[] {
  const { frames, heap, mmu } = context;
  return [
    {
      name: "frames: allocate and free 1000 frames",
      run() {
        const before = frames.stats().freeFrames;
        const taken = new Set<FrameNumber>();
        for (let i = 0; i < 1000; i++) {
          const frame = frames.allocate();
          check(!taken.has(frame), `frame ${frame} handed out twice`);
          taken.add(frame);
        }
        check(frames.stats().freeFrames === before - 1000, "free count after allocating");
        for (const frame of taken) frames.free(frame);
        check(frames.stats().freeFrames === before, "free count after freeing");
      },
    },
    {
      name: "frames: double free is detected",
      run() {
        const frame = frames.allocate();
        frames.free(frame);
        try {
          frames.free(frame);
        } catch (error) {
          check(error instanceof KernelError && error.code === "DoubleFree", String(error));
          return;
        }
        throw new SelftestFailure("second free was accepted");
      },
    },
    {
      name: "pages: clone and drop keep the refcount",
      run() {
        const before = frames.stats().freeFrames;
        const page = Page.alloc(frames);
        check(page.bytes().every((byte) => byte === 0), "new page is not zeroed");
        const copy = page.clone();
        check(page.refcount === 2, `refcount ${page.refcount} after clone, expected 2`);
        page[Symbol.dispose]();
        check(copy.refcount === 1, `refcount ${copy.refcount} after one drop, expected 1`);
        check(frames.stats().freeFrames === before - 1, "frame freed while still held");
        copy[Symbol.dispose]();
        check(frames.stats().freeFrames === before, "frame not freed at refcount 0");
      },
    },
    {
      name: "pages: contiguous and aligned allocation",
      run() {
        const before = frames.stats().freeFrames;
        for (const [count, align] of [[8, 8], [16, 16], [3, 1], [64, 512]]) {
          using run = ContigPages.alloc(frames, count, { alignFrames: align });
          check(run.frame % align === 0, `run at frame ${run.frame} not aligned to ${align}`);
          check(run.frameCount === count, "wrong frame count");
        }
        const run = ContigPages.alloc(frames, 4, { alignFrames: 4 });
        for (const page of run.split()) page[Symbol.dispose]();
        check(frames.stats().freeFrames === before, "frames lost by contiguous runs");
      },
    },
    {
      name: "heap: 20000 random kmalloc/kfree keep contents and stats",
      run() {
        const rng = new Xorshift32(0x5eed1234);
        const start = heap.stats();
        const live: { va: VirtAddr; sizeBytes: number; tag: number }[] = [];
        for (let op = 0; op < 20000; op++) {
          if (live.length > 0 && (live.length >= 300 || (rng.next() & 1) === 1)) {
            const index = rng.below(live.length);
            const block = live[index];
            const contents = mmu.readVirtBytes(block.va, block.sizeBytes);
            check(contents.every((byte, i) => byte === ((block.tag + i) & 0xff)), "corrupted");
            heap.kfree(block.va);
            live[index] = live[live.length - 1];
            live.pop();
          } else {
            const sizeBytes = 1 + rng.below(rng.below(8) === 0 ? 8192 : 256);
            const va = heap.kmalloc(sizeBytes);
            const tag = rng.next() & 0xff;
            mmu.writeVirtBytes(va, patternBytes(sizeBytes, tag));
            live.push({ va, sizeBytes, tag });
          }
        }
        heap.checkInvariants();
        for (const block of live) heap.kfree(block.va);
        const end = heap.stats();
        check(end.bytesInUse === start.bytesInUse, "bytes in use not back to the start");
        check(end.liveAllocations === start.liveAllocations, "live allocations not back");
      },
    },
    ...(context.extraTests ?? []),
  ];
}

function patternBytes(sizeBytes: number, tag: number): Uint8Array {
  const bytes = new Uint8Array(sizeBytes);
  for (let i = 0; i < sizeBytes; i++) bytes[i] = (tag + i) & 0xff;
  return bytes;
}

/** Runs `tests`, never throwing: each failure is recorded with its reason. */
export function runSelftests(tests: readonly Selftest[]): SelftestResult[] {
  return tests.map((test) => {
    try {
      test.run();
      return { name: test.name, passed: true, detail: "" };
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      return { name: test.name, passed: false, detail };
    }
  });
}
