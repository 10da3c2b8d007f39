/**
 * The heap lab (`--heap`): checks a {@linkcode KernelHeap} on a 64 MiB
 * machine with paging on and all of RAM in a direct map at 2^47, as in the
 * booted kernel. The grader writes a pattern into every block through the
 * MMU's direct map and checks it later (corruption), keeps the live blocks
 * in address order (overlap), and watches every frame the heap takes from
 * and gives back to the frame provider (frames it does not own, reuse,
 * fragmentation, statistics).
 *
 * @module
 */

import { withOverrides } from "../lib/mod.ts";
import {
  type FrameNumber,
  hex,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  type PhysAddr,
  type VirtAddr,
} from "../hal/mod.ts";
import {
  AddressSpace,
  type FrameProvider,
  type KernelErrorCode,
  type KernelHeap,
  type KernelHeapFactory,
  PAGE_NO_EXECUTE,
  PAGE_WRITABLE,
} from "../sdk/mod.ts";
import {
  attempt,
  counted,
  describeError,
  describeValue,
  describeVirtAddr as v,
  expectKernelError,
  expectSuccess,
} from "./_calls.ts";
import {
  allocatedFrames,
  graderFrame,
  type LabMachine,
  newLabMachine,
  pagingOff,
  releaseGraderFrames,
  reportFrameLeaks,
  takeFramesUntil,
} from "./_lab_machine.ts";
import { type Check, type CheckContext, expect, fail } from "./check.ts";

const RAM_BYTES = 64 * 2 ** 20;
/** Where the direct map starts, as in the booted kernel. */
const DIRECT_MAP_OFFSET = 2 ** 47;
const MIB = 2 ** 20;
/** The largest size a kmalloc may be asked for. */
const MAX_KMALLOC_BYTES = 64 * MIB;
/** Pattern bytes: block content is PATTERN[tag .. tag + size), i.e. (tag + i) & 0xff. */
const PATTERN = Uint8Array.from({ length: 256 + 2 * MIB }, (_, i) => i & 0xff);
/** The largest block whose whole pattern is written; above it, the first and last 64 KiB. */
const FULL_PATTERN_BYTES = 2 * MIB;
const EDGE_BYTES = 64 * 1024;

/** A live block the grader holds. */
interface Block {
  readonly va: number;
  readonly sizeBytes: number;
  readonly usableBytes: number;
  readonly tag: number;
}

/** The machine of one check, the heap, and the frames it holds. */
interface HeapBench {
  readonly lab: LabMachine;
  /** The heap, each call counted against the budget. */
  readonly heap: KernelHeap;
  /** Frames the heap took from the provider and has not given back. */
  readonly heldFrames: ReadonlySet<number>;
  /** Blocks the grader holds, by address. */
  readonly live: Map<number, Block>;
  /**
   * What the grader does with the blocks' contents: nothing, write a pattern
   * into each new block, or also check it before each free. Only the checks
   * that own usability, overlap and corruption touch contents, so that such
   * a bug (which may wreck the heap's own free lists) costs their points alone.
   */
  patterns: "off" | "write" | "verify";
}

/** A frame provider that records the frames the heap holds. */
function watchedFrames(frames: FrameProvider, held: Set<number>): FrameProvider {
  const take = (first: number, count: number) => {
    for (let frame = first; frame < first + count; frame++) held.add(frame);
  };
  const give = (first: number, count: number) => {
    for (let frame = first; frame < first + count; frame++) held.delete(frame);
  };
  return withOverrides(frames, {
    allocate: () => {
      const frame = frames.allocate();
      take(frame, 1);
      return frame;
    },
    allocateSpecific: (frame: FrameNumber) => {
      const got = frames.allocateSpecific(frame);
      take(got, 1);
      return got;
    },
    allocateContiguous: (count: number, align: number) => {
      const first = frames.allocateContiguous(count, align);
      take(first, count);
      return first;
    },
    free: (frame: FrameNumber) => {
      frames.free(frame);
      give(frame, 1);
    },
    freeContiguous: (frame: FrameNumber, count: number) => {
      frames.freeContiguous(frame, count);
      give(frame, count);
    },
  });
}

function onFreshMachine(
  factory: KernelHeapFactory,
  context: CheckContext,
  body: (bench: HeapBench) => void,
): void {
  const lab = newLabMachine(RAM_BYTES);
  const cpu = lab.machine.cpu;
  const directMap = AddressSpace.create(lab.frames, cpu);
  directMap.mapRange(
    DIRECT_MAP_OFFSET as VirtAddr,
    0 as PhysAddr,
    RAM_BYTES,
    PAGE_WRITABLE | PAGE_NO_EXECUTE,
    PAGE_SIZE_2M,
  );
  directMap.enablePaging();
  const before = allocatedFrames(lab);
  const held = new Set<number>();
  const live = new Map<number, Block>();
  let heap: KernelHeap | undefined;
  let inUseAtStart = 0;
  try {
    context.step();
    const raw = factory({
      memory: lab.memory,
      frames: watchedFrames(lab.frames, held),
      directMapOffset: DIRECT_MAP_OFFSET,
      debug: false,
    });
    heap = raw;
    inUseAtStart = raw.stats().bytesInUse;
    body({ lab, heap: counted(raw, context), heldFrames: held, live, patterns: "off" });
  } finally {
    if (heap !== undefined) {
      for (const block of live.values()) {
        try {
          heap.kfree(block.va as VirtAddr);
        } catch {
          // Counted below.
        }
      }
      try {
        const inUse = heap.stats().bytesInUse;
        if (inUse !== inUseAtStart) {
          context.reportLeak(
            `stats().bytesInUse is ${inUse} after every block was freed, ${inUseAtStart} before`,
          );
        }
      } catch {
        // A heap whose stats() throws has failed its checks already.
      }
    }
    pagingOff(lab);
    directMap[Symbol.dispose]();
    releaseGraderFrames(lab);
    // The frames the heap still holds are its cache (reuse and fragmentation judge them).
    reportFrameLeaks(lab, before, context, held);
  }
}

/** Allocates through the heap and checks the block: aligned, in the direct map, usable. */
function allocate(
  bench: HeapBench,
  context: CheckContext,
  sizeBytes: number,
  alignBytes?: number,
): Block {
  const call = `kmalloc(${sizeBytes}${
    alignBytes === undefined ? "" : `, { alignBytes: ${alignBytes} }`
  })`;
  const va = expectSuccess(
    call,
    () =>
      alignBytes === undefined
        ? bench.heap.kmalloc(sizeBytes)
        : bench.heap.kmalloc(sizeBytes, { alignBytes }),
  );
  const align = Math.max(16, alignBytes ?? 16);
  expect(
    Number.isSafeInteger(va) && va % align === 0,
    `${call} to return an address aligned to ${align} bytes`,
    () => `it returned ${describeValue(va)}`,
  );
  expect(
    va >= DIRECT_MAP_OFFSET && va + sizeBytes <= DIRECT_MAP_OFFSET + RAM_BYTES,
    `${call} to return an address in the direct map (physical address + ${v(DIRECT_MAP_OFFSET)})`,
    () => `it returned ${v(va)}`,
  );
  const usable = expectSuccess(`usableSize(${v(va)})`, () => bench.heap.usableSize(va));
  expect(
    Number.isSafeInteger(usable) && usable >= sizeBytes,
    `usableSize(${v(va)}) to be at least the ${sizeBytes} bytes asked for`,
    () => `it is ${describeValue(usable)}`,
  );
  const block: Block = { va, sizeBytes, usableBytes: usable, tag: context.rng.below(256) };
  if (bench.patterns !== "off") writePattern(bench, block);
  bench.live.set(va, block);
  return block;
}

/** Frees a block the grader holds (checking its pattern first, when the check owns that). */
function release(bench: HeapBench, block: Block, when: string): void {
  if (bench.patterns === "verify") expectPattern(bench, block, when);
  expectSuccess(`kfree(${v(block.va)})`, () => bench.heap.kfree(block.va as VirtAddr));
  bench.live.delete(block.va);
}

/** Writes the block's pattern through the MMU (the direct map), then into RAM. */
function writePattern(bench: HeapBench, block: Block): void {
  const { mmu } = bench.lab.machine;
  const pa = mmu.translate(block.va as VirtAddr, "write");
  const last = mmu.translate((block.va + block.sizeBytes - 1) as VirtAddr, "write");
  expect(
    last - pa === block.sizeBytes - 1,
    `block ${v(block.va)} to be contiguous in the direct map`,
    "it is not",
  );
  for (const [start, end] of patternSpans(block.sizeBytes)) {
    const from = (block.tag + start) & 0xff; // the pattern repeats every 256 bytes
    bench.lab.memory.u8.set(PATTERN.subarray(from, from + end - start), pa + start);
  }
}

/** Checks that the block still holds its pattern (nothing wrote over it). */
function expectPattern(bench: HeapBench, block: Block, when: string): void {
  const u8 = bench.lab.memory.u8;
  const pa = block.va - DIRECT_MAP_OFFSET;
  for (const [start, end] of patternSpans(block.sizeBytes)) {
    for (let i = start; i < end; i++) {
      if (u8[pa + i] === ((block.tag + i) & 0xff)) continue;
      fail(
        `block ${v(block.va)} (${block.sizeBytes} bytes) to keep what was written to it ${when}`,
        `byte ${i} (${v(block.va + i)}) is ${hex(u8[pa + i])}, written as ${
          hex((block.tag + i) & 0xff)
        }: ` +
          "another block or the heap's own data overlaps it",
      );
    }
  }
}

/** The byte ranges of a block that carry the pattern. */
function patternSpans(sizeBytes: number): [number, number][] {
  if (sizeBytes <= FULL_PATTERN_BYTES) return [[0, sizeBytes]];
  return [[0, EDGE_BYTES], [sizeBytes - EDGE_BYTES, sizeBytes]];
}

/** Fails if a live block overlaps another (by usable size). */
function expectNoOverlap(live: ReadonlyMap<number, Block>, when: string): void {
  const blocks = [...live.values()].sort((a, b) => a.va - b.va);
  for (let i = 1; i < blocks.length; i++) {
    const previous = blocks[i - 1];
    const block = blocks[i];
    expect(
      previous.va + previous.usableBytes <= block.va,
      `live blocks never to overlap ${when}`,
      () =>
        `block ${v(previous.va)} (${previous.usableBytes} usable bytes) overlaps block ` +
        `${v(block.va)} (${block.usableBytes} usable bytes)`,
    );
  }
}

/** A random block size: mostly small, some medium, a few large. */
function randomSize(context: CheckContext): number {
  const dice = context.rng.below(100);
  if (dice < 70) return 1 + context.rng.below(256);
  if (dice < 95) return 257 + context.rng.below(4096 - 256);
  return 4097 + context.rng.below(65536 - 4096);
}

/** A random live block. */
function randomBlock(bench: HeapBench, context: CheckContext): Block {
  const blocks = [...bench.live.values()];
  return blocks[context.rng.below(blocks.length)];
}

const basicCheck: Check<KernelHeapFactory> = {
  id: "heap.basic",
  title:
    "kmalloc() returns 16-byte aligned, usable blocks in the direct map; kfree() takes them back",
  points: 10,
  budget: 500,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const sizes = [
        1,
        8,
        15,
        16,
        17,
        64,
        100,
        255,
        256,
        1000,
        2048,
        4000,
        4096,
        4097,
        10000,
        65536,
        100000,
        MIB,
      ];
      bench.patterns = "write";
      const start = bench.heap.stats();
      const blocks = sizes.map((size) => {
        const block = allocate(bench, context, size);
        expectPattern(bench, block, "right after it was written");
        return block;
      });
      const during = bench.heap.stats();
      expect(
        during.liveAllocations === start.liveAllocations + sizes.length,
        `stats().liveAllocations to grow by ${sizes.length}`,
        () => `it went from ${start.liveAllocations} to ${during.liveAllocations}`,
      );
      for (const block of blocks.reverse()) release(bench, block, "until it is freed");
      const end = bench.heap.stats();
      expect(
        end.liveAllocations === start.liveAllocations && end.bytesInUse === start.bytesInUse,
        "stats().liveAllocations and bytesInUse to be back where they started after every kfree()",
        () =>
          `they went from ${start.liveAllocations} and ${start.bytesInUse} to ` +
          `${end.liveAllocations} and ${end.bytesInUse}`,
      );
    });
  },
};

const noOverlapCheck: Check<KernelHeapFactory> = {
  id: "heap.no-overlap",
  title:
    "5000 seeded random calls: live blocks never overlap, and each keeps what was written to it",
  points: 20,
  budget: 15_000,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      bench.patterns = "verify";
      for (let op = 0; op < 5000; op++) {
        const when = `(operation ${op})`;
        if (bench.live.size > 0 && (bench.live.size >= 400 || context.rng.below(2) === 0)) {
          release(bench, randomBlock(bench, context), `until it is freed ${when}`);
        } else {
          const align = context.rng.below(10) === 0 ? 2 ** (4 + context.rng.below(5)) : undefined;
          const block = allocate(bench, context, randomSize(context), align);
          const neighbours = [...bench.live.values()].filter((other) =>
            other !== block && other.va < block.va + block.usableBytes &&
            block.va < other.va + other.usableBytes
          );
          expect(
            neighbours.length === 0,
            `the new block to overlap no live block ${when}`,
            () =>
              `block ${v(block.va)} (${block.usableBytes} usable bytes) overlaps block ` +
              `${v(neighbours[0].va)} (${neighbours[0].usableBytes} usable bytes)`,
          );
        }
        if (op % 1000 === 999) {
          for (const block of bench.live.values()) expectPattern(bench, block, `at ${when}`);
        }
      }
      expectNoOverlap(bench.live, "at the end");
    });
  },
};

const alignmentCheck: Check<KernelHeapFactory> = {
  id: "heap.alignment",
  title: "kmalloc() honours alignBytes from 1 to 4096 and refuses other alignments",
  points: 10,
  budget: 1_000,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const blocks: Block[] = [];
      for (let align = 1; align <= 4096; align *= 2) {
        for (const size of [1, 24, align, align + 1, 3 * align]) {
          blocks.push(allocate(bench, context, size, align));
        }
      }
      for (const block of blocks) release(bench, block, "until it is freed");
      for (const align of [3, 24, 8192, 0]) {
        expectKernelError(
          `kmalloc(64, { alignBytes: ${align} })`,
          "InvalidAlignment",
          () => bench.heap.kmalloc(64, { alignBytes: align }),
          "not a power of two up to 4096",
        );
      }
    });
  },
};

const sizesCheck: Check<KernelHeapFactory> = {
  id: "heap.sizes",
  title: "Sizes of 0, fractions, negatives and above 64 MiB are refused; blocks of megabytes work",
  points: 5,
  budget: 200,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      for (const size of [0, -1, 1.5, Number.NaN, MAX_KMALLOC_BYTES + 1]) {
        expectKernelError(
          `kmalloc(${size})`,
          "InvalidSize",
          () => bench.heap.kmalloc(size),
          "not a whole size from 1 to 64 MiB",
        );
      }
      bench.patterns = "write";
      const blocks = [2 * MIB, 5 * MIB + 123, 65535].map((size) => {
        const block = allocate(bench, context, size);
        expectPattern(bench, block, "right after it was written");
        return block;
      });
      for (const block of blocks) release(bench, block, "until it is freed");
    });
  },
};

const invalidFreeCheck: Check<KernelHeapFactory> = {
  id: "heap.invalid-free",
  title:
    "kfree() refuses addresses it did not hand out (twice, inside a block, elsewhere) and changes nothing",
  points: 10,
  budget: 200,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const small = allocate(bench, context, 64);
      const medium = allocate(bench, context, 3000);
      const large = allocate(bench, context, 100_000);
      const gone = allocate(bench, context, 48);
      release(bench, gone, "until it is freed");
      const foreign = DIRECT_MAP_OFFSET + graderFrame(bench.lab);
      const before = bench.heap.stats();
      const refusals: [string, number][] = [
        [`a block freed already (${v(gone.va)})`, gone.va],
        [`an address inside a block (${v(medium.va + 8)})`, medium.va + 8],
        [
          `an address a page into a large block (${v(large.va + PAGE_SIZE_4K)})`,
          large.va + PAGE_SIZE_4K,
        ],
        [`a frame the heap never had (${v(foreign)})`, foreign],
        ["address 0", 0],
      ];
      for (const [what, va] of refusals) {
        // A second kfree may also be called a DoubleFree (the stock heap's word for it).
        const codes: KernelErrorCode[] = va === gone.va
          ? ["InvalidFree", "DoubleFree"]
          : ["InvalidFree"];
        expectKernelError(`kfree(${v(va)})`, codes, () => bench.heap.kfree(va as VirtAddr), what);
        const after = bench.heap.stats();
        expect(
          after.liveAllocations === before.liveAllocations &&
            after.bytesInUse === before.bytesInUse &&
            after.frees === before.frees,
          `the refused kfree of ${what} to change no statistic`,
          () =>
            `liveAllocations, bytesInUse, frees went from ${before.liveAllocations}, ${before.bytesInUse}, ${before.frees} to ${after.liveAllocations}, ${after.bytesInUse}, ${after.frees}`,
        );
      }
      // The stock heap calls this one InvalidAddress; the contract, InvalidFree.
      expectKernelError(
        `usableSize(${v(gone.va)})`,
        ["InvalidFree", "InvalidAddress"],
        () => bench.heap.usableSize(gone.va as VirtAddr),
        "the block was freed",
      );
      for (const block of [small, medium, large]) release(bench, block, "after the refused frees");
    });
  },
};

const reuseCheck: Check<KernelHeapFactory> = {
  id: "heap.reuse",
  title: "Freed memory is reused: repeating the same workload five times does not grow the heap",
  points: 10,
  budget: 10_000,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const heldAfter: number[] = [];
      for (let round = 0; round < 5; round++) {
        const blocks: Block[] = [];
        for (let i = 0; i < 500; i++) {
          // The same sizes every round.
          const size = 1 + ((i * 2654435761) >>> 0) % (i % 10 === 0 ? 32768 : 2048);
          blocks.push(allocate(bench, context, size));
        }
        for (let i = blocks.length - 1; i > 0; i--) {
          const j = context.rng.below(i + 1);
          [blocks[i], blocks[j]] = [blocks[j], blocks[i]];
        }
        for (const block of blocks) release(bench, block, `until it is freed (round ${round + 1})`);
        heldAfter.push(bench.heldFrames.size);
      }
      expect(
        heldAfter.every((frames) => frames <= heldAfter[0]),
        "the heap to hold no more frames after rounds 2 to 5 than after round 1",
        () => `it held ${heldAfter.join(", ")} frames after each round`,
      );
    });
  },
};

const fragmentationCheck: Check<KernelHeapFactory> = {
  id: "heap.fragmentation",
  title:
    "Holes are filled: after freeing every other block, as many new blocks fit without new frames",
  points: 5,
  budget: 10_000,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      for (const size of [64, 1000]) {
        const blocks: Block[] = [];
        for (let i = 0; i < 1000; i++) blocks.push(allocate(bench, context, size));
        for (let i = 0; i < blocks.length; i += 2) release(bench, blocks[i], "until it is freed");
        const heldBefore = bench.heldFrames.size;
        for (let i = 0; i < 500; i++) allocate(bench, context, size);
        const heldAfter = bench.heldFrames.size;
        expect(
          heldAfter <= heldBefore,
          `500 new ${size}-byte blocks to fit in the holes 500 freed ones left`,
          () => `the heap took ${heldAfter - heldBefore} more frames`,
        );
        for (const block of [...bench.live.values()]) release(bench, block, "until it is freed");
      }
    });
  },
};

const statsCheck: Check<KernelHeapFactory> = {
  id: "heap.stats",
  title:
    "stats() agrees with the blocks: live allocations, bytes in use, allocations, frees, frames held",
  points: 10,
  budget: 10_000,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const start = bench.heap.stats();
      let allocations = 0;
      let frees = 0;
      for (let op = 0; op < 2000; op++) {
        if (bench.live.size > 0 && context.rng.below(2) === 0) {
          release(bench, randomBlock(bench, context), "until it is freed");
          frees++;
        } else {
          allocate(bench, context, randomSize(context));
          allocations++;
        }
        if (op % 200 !== 199) continue;
        const stats = bench.heap.stats();
        const usable = [...bench.live.values()].reduce((sum, block) => sum + block.usableBytes, 0);
        const pairs: [string, number, number][] = [
          ["liveAllocations", stats.liveAllocations, start.liveAllocations + bench.live.size],
          ["bytesInUse", stats.bytesInUse, start.bytesInUse + usable],
          ["allocations", stats.allocations, start.allocations + allocations],
          ["frees", stats.frees, start.frees + frees],
          ["bytesMapped", stats.bytesMapped, bench.heldFrames.size * PAGE_SIZE_4K],
        ];
        for (const [field, reported, wanted] of pairs) {
          expect(
            reported === wanted,
            `stats().${field} to be ${wanted} after operation ${op}`,
            `it is ${reported}`,
          );
        }
      }
    });
  },
};

const framesCheck: Check<KernelHeapFactory> = {
  id: "heap.frames",
  title: "Every block lies in frames the heap took from the frame provider and still holds",
  points: 10,
  budget: 10_000,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const expectOwned = (block: Block, when: string) => {
        const first = Math.floor((block.va - DIRECT_MAP_OFFSET) / PAGE_SIZE_4K);
        const last = Math.floor(
          (block.va - DIRECT_MAP_OFFSET + block.usableBytes - 1) / PAGE_SIZE_4K,
        );
        for (let frame = first; frame <= last; frame++) {
          expect(
            bench.heldFrames.has(frame),
            `block ${
              v(block.va)
            } (${block.usableBytes} usable bytes) to lie in frames the heap holds ${when}`,
            () =>
              `frame ${hex(frame)} is not one it took from the frame provider (or it gave it back)`,
          );
        }
      };
      for (let op = 0; op < 2000; op++) {
        if (bench.live.size > 0 && context.rng.below(2) === 0) {
          release(bench, randomBlock(bench, context), "until it is freed");
        } else {
          expectOwned(allocate(bench, context, randomSize(context)), `(operation ${op})`);
        }
        if (op % 250 === 249) {
          for (const block of bench.live.values()) expectOwned(block, `after operation ${op}`);
        }
      }
    });
  },
};

const outOfMemoryCheck: Check<KernelHeapFactory> = {
  id: "heap.out-of-memory",
  title: "When frames run out, kmalloc() throws OutOfMemory, and the heap works again after frees",
  points: 10,
  budget: 1_000,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const lab = bench.lab;
      takeFramesUntil(lab, 64);
      let failed = false;
      for (let i = 0; i < 100 && !failed; i++) {
        const outcome = attempt(() => bench.heap.kmalloc(64 * 1024));
        if (outcome.ok) {
          bench.live.set(outcome.value, {
            va: outcome.value,
            sizeBytes: 0,
            usableBytes: 0,
            tag: 0,
          });
          continue;
        }
        expect(
          outcome.error.code === "OutOfMemory",
          "kmalloc(65536) to throw KernelError OutOfMemory when no frame is left",
          `it threw ${describeError(outcome.error)}`,
        );
        failed = true;
      }
      expect(
        failed,
        "kmalloc(65536) to run out within 100 calls with 64 frames free",
        "it never did",
      );
      for (const block of [...bench.live.values()]) release(bench, block, "after memory ran out");
      releaseGraderFrames(lab);
      const again = allocate(bench, context, 64 * 1024);
      release(bench, again, "after memory came back");
    });
  },
};

/** The heap lab's checks, in order. */
export const HEAP_CHECKS: readonly Check<KernelHeapFactory>[] = [
  basicCheck,
  noOverlapCheck,
  alignmentCheck,
  sizesCheck,
  invalidFreeCheck,
  reuseCheck,
  fragmentationCheck,
  statsCheck,
  framesCheck,
  outOfMemoryCheck,
];
