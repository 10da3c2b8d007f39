/**
 * Kernel self-tests, run at boot with `--selftest`: each exercises a memory
 * subsystem on the live kernel and checks that it leaves no trace (free
 * counts and heap statistics back where they started).
 *
 * @module
 */

import {
  type CpuContext,
  type FrameNumber,
  hex,
  type Mmu,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  type VirtAddr,
} from "../hal/mod.ts";
import { Xorshift32 } from "../lib/mod.ts";
import { KernelError } from "./errors.ts";
import { plural } from "./plural.ts";
import {
  AddressSpace,
  type AddressSpaceFactory,
  type AddressSpaceLike,
  ContigPages,
  type FrameProvider,
  type KernelAddressSpace,
  type KernelHeap,
  Page,
  type PageFaultPolicy,
} from "./mm/mod.ts";

/** What the self-tests need from the kernel. */
export interface SelftestContext {
  /** The physical frame allocator. */
  readonly frames: FrameProvider;
  /** The kernel heap. */
  readonly heap: KernelHeap;
  /** The MMU, through which the tests touch heap memory at its virtual addresses. */
  readonly mmu: Mmu;
}

/** What the paging self-tests need from the kernel. */
export interface PagingSelftestContext {
  /** The physical frame allocator. */
  readonly frames: FrameProvider;
  /** Creates the scratch address spaces (default {@linkcode AddressSpace.create}). */
  readonly createAddressSpace?: AddressSpaceFactory;
  /** The MMU the accesses go through. */
  readonly mmu: Mmu;
  /** The CPU whose CR3 the tests switch. */
  readonly cpu: CpuContext;
  /** The kernel's address space, restored after each test. */
  readonly kernelSpace: KernelAddressSpace;
  /** The kernel's page-fault handler. */
  readonly pageFaults: PageFaultPolicy;
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
  /** The error class name, shown in messages. */
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
        try {
          for (let i = 0; i < 1000; i++) {
            const frame = frames.allocate();
            check(!taken.has(frame), `frame ${hex(frame)} handed out twice`);
            taken.add(frame);
          }
          check(frames.stats().freeFrames === before - 1000, "free count after allocating");
        } finally {
          for (const frame of taken) frames.free(frame);
        }
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
        let copy: Page | undefined;
        try {
          check(page.bytes().every((byte) => byte === 0), "new page is not zeroed");
          copy = page.clone();
          check(page.refcount === 2, `refcount ${page.refcount} after clone, expected 2`);
          page[Symbol.dispose]();
          check(copy.refcount === 1, `refcount ${copy.refcount} after one drop, expected 1`);
          check(frames.stats().freeFrames === before - 1, "frame freed while still held");
          copy[Symbol.dispose]();
          check(frames.stats().freeFrames === before, "frame not freed at refcount 0");
        } finally {
          disposeAll([page, copy]);
        }
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
        const split = ContigPages.alloc(frames, 4, { alignFrames: 4 }).split();
        disposeAll(split);
        check(frames.stats().freeFrames === before, "frames lost by contiguous runs");
      },
    },
    {
      name: "heap: 20000 random kmalloc/kfree keep contents and stats",
      run() {
        const rng = new Xorshift32(0x5eed1234);
        const start = heap.stats();
        const live: { va: VirtAddr; sizeBytes: number; tag: number }[] = [];
        try {
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
          heap.checkInvariants?.();
        } finally {
          for (const block of live) heap.kfree(block.va);
        }
        const end = heap.stats();
        check(end.bytesInUse === start.bytesInUse, "bytes in use not back to the start");
        check(end.liveAllocations === start.liveAllocations, "live allocations not back");
      },
    },
  ];
}

/** A user-half address the paging self-tests map in their scratch spaces. */
const SCRATCH_VA = 0x4000_0000 as VirtAddr;

/**
 * Paging self-tests. Each builds scratch address spaces, switches CR3 to
 * them, and always switches back to the kernel's and frees everything.
 */
export function pagingSelftests(context: PagingSelftestContext): Selftest[] {
  const { frames, mmu, cpu, kernelSpace, pageFaults } = context;
  const createAddressSpace = context.createAddressSpace ?? AddressSpace.create;
  /** Runs `body` with fresh address spaces, then restores CR3 and checks no frame leaked. */
  const withScratchSpaces = (count: number, body: (spaces: AddressSpaceLike[]) => void) => {
    const before = frames.stats().freeFrames;
    const spaces: AddressSpaceLike[] = [];
    try {
      for (let i = 0; i < count; i++) spaces.push(createAddressSpace(frames, cpu));
      body(spaces);
    } finally {
      kernelSpace.addressSpace.activate();
      for (const space of spaces) {
        pageFaults.detach(space);
        space[Symbol.dispose]();
      }
    }
    check(frames.stats().freeFrames === before, "frames leaked by the address spaces");
  };
  return [
    {
      name: "paging: map, translate and unmap every page size, no frame lost",
      run: () =>
        withScratchSpaces(1, ([space]) => {
          using data = ContigPages.alloc(frames, 512, { alignFrames: 512, zeroed: false });
          space.map(SCRATCH_VA, data.physAddr, { writable: true }, PAGE_SIZE_2M);
          const small = (SCRATCH_VA + 64 * PAGE_SIZE_2M) as VirtAddr;
          space.mapRange(small, data.physAddr, 16 * PAGE_SIZE_4K, { writable: true });
          check(
            space.translate((SCRATCH_VA + 0x1234) as VirtAddr) === data.physAddr + 0x1234,
            "2M",
          );
          check(space.translate((small + 0x5000) as VirtAddr) === data.physAddr + 0x5000, "4K");
          space.activate();
          mmu.writeVirt32((small + 0x10) as VirtAddr, 0xc0ffee);
          check(mmu.readVirt32((SCRATCH_VA + 0x10) as VirtAddr) === 0xc0ffee, "aliases differ");
          space.unmapRange(small, 16 * PAGE_SIZE_4K);
          check(space.translate(small) === undefined, "unmapped page still translates");
          space.unmap(SCRATCH_VA, PAGE_SIZE_2M);
        }),
    },
    {
      name: "paging: demand-zero pages appear on first touch",
      run: () =>
        withScratchSpaces(1, ([space]) => {
          pageFaults.declareLazy(space, SCRATCH_VA, 8 * PAGE_SIZE_4K, { writable: true });
          space.activate();
          check(mmu.readVirt32((SCRATCH_VA + 0x3000) as VirtAddr) === 0, "lazy page not zero");
          mmu.writeVirt32((SCRATCH_VA + 0x7ffc) as VirtAddr, 42);
          check(mmu.readVirt32((SCRATCH_VA + 0x7ffc) as VirtAddr) === 42, "write lost");
          check(space.stats().ownedPages === 2, "expected exactly two pages faulted in");
        }),
    },
    {
      name: "paging: copy-on-write keeps both sides' writes separate",
      run: () =>
        withScratchSpaces(2, ([parent, child]) => {
          parent.mapPage(SCRATCH_VA, Page.alloc(frames), { writable: true });
          parent.activate();
          mmu.writeVirt32(SCRATCH_VA, 1111);
          pageFaults.shareCopyOnWrite(parent, child, SCRATCH_VA, PAGE_SIZE_4K);
          check(parent.translate(SCRATCH_VA) === child.translate(SCRATCH_VA), "not shared");
          mmu.writeVirt32(SCRATCH_VA, 2222); // parent copies
          child.activate();
          check(mmu.readVirt32(SCRATCH_VA) === 1111, "child sees the parent's write");
          mmu.writeVirt32(SCRATCH_VA, 3333); // last reference: made writable in place
          parent.activate();
          check(mmu.readVirt32(SCRATCH_VA) === 2222, "parent sees the child's write");
          check(parent.translate(SCRATCH_VA) !== child.translate(SCRATCH_VA), "still shared");
        }),
    },
  ];
}

/** Disposes every handle not yet disposed, so a failed check leaves no frame held. */
function disposeAll(handles: readonly (Disposable & { isDisposed: boolean } | undefined)[]): void {
  for (const handle of handles) if (handle && !handle.isDisposed) handle[Symbol.dispose]();
}

function patternBytes(sizeBytes: number, tag: number): Uint8Array {
  const bytes = new Uint8Array(sizeBytes);
  for (let i = 0; i < sizeBytes; i++) bytes[i] = (tag + i) & 0xff;
  return bytes;
}

/** What the runner counts around each self-test to catch leaks (xv6's countfree). */
export interface SelftestAccounting {
  /** The frame allocator whose free count (with the heap's frames) must be the same after a test. */
  readonly frames: FrameProvider;
  /** The heap whose bytes in use must be the same after a test. */
  readonly heap: KernelHeap;
}

/**
 * Runs `tests`, never throwing: each failure is recorded with its reason.
 * With `accounting`, the free frames and heap bytes in use are counted before
 * and after each test, and a test that leaves a difference fails with the
 * leak in its detail, even if its own checks passed.
 */
export function runSelftests(
  tests: readonly Selftest[],
  accounting?: SelftestAccounting,
): SelftestResult[] {
  return tests.map((test) => {
    const before = accounting && countInUse(accounting);
    let detail = "";
    try {
      test.run();
    } catch (error) {
      detail = error instanceof Error ? error.message : String(error);
    }
    if (accounting && before) {
      const leak = describeLeak(before, countInUse(accounting));
      if (leak !== "") detail = detail === "" ? leak : `${detail}; ${leak}`;
    }
    return { name: test.name, passed: detail === "", detail };
  });
}

interface InUseCounts {
  readonly freeFrames: number;
  readonly heapBytes: number;
}

/**
 * Frames free or held by the heap (its slabs and arenas are a cache the heap
 * may keep after a test), and heap bytes in live allocations.
 */
function countInUse({ frames, heap }: SelftestAccounting): InUseCounts {
  const heapStats = heap.stats();
  return {
    freeFrames: frames.stats().freeFrames + Math.ceil(heapStats.bytesMapped / PAGE_SIZE_4K),
    heapBytes: heapStats.bytesInUse,
  };
}

/** The leak between two counts in words, or "" when there is none. */
function describeLeak(before: InUseCounts, after: InUseCounts): string {
  const leaks: string[] = [];
  const frames = before.freeFrames - after.freeFrames;
  const heapBytes = after.heapBytes - before.heapBytes;
  if (frames !== 0) {
    leaks.push(
      frames > 0
        ? `leaked ${plural(frames, "frame")}`
        : `freed ${plural(-frames, "frame")} it did not take`,
    );
  }
  if (heapBytes !== 0) {
    leaks.push(
      heapBytes > 0
        ? `leaked ${plural(heapBytes, "heap byte")}`
        : `freed ${plural(-heapBytes, "heap byte")} it did not take`,
    );
  }
  return leaks.join(", ");
}
