/**
 * The frame-allocator lab (`--frames`): checks a {@linkcode FrameProvider}
 * against a reference model of a small PC-like machine: RAM below 640 KiB,
 * 1 MiB to 24 MiB, a hole, then 32 MiB to 36 MiB whose last frame is only
 * partly usable; reservations for the first MiB, a kernel image, the boot
 * information and a module in the middle of usable RAM.
 *
 * Each check owns one property. Where a check meets a frame that another
 * check owns (a reserved frame handed out during the random operations), it
 * records it and goes on, so a bug costs the points of its own property.
 *
 * @module
 */

import { hex, PAGE_SIZE_4K, type PhysAddr, PhysicalMemory } from "../hal/mod.ts";
import {
  availableFrameRuns,
  ContigPages,
  EarlyFrameAllocator,
  FRAME_UNUSABLE,
  FRAME_UNUSED,
  type FrameNumber,
  type FrameProvider,
  type FrameProviderFactory,
  framesInside,
  type FrameState,
  framesTouching,
  Page,
  type PhysRange,
} from "../sdk/mod.ts";
import { type BootReservation, describeThrown } from "../kernel/mod.ts";
import type { Xorshift32 } from "../lib/mod.ts";
import {
  attempt,
  counted,
  describeError,
  describeValue,
  expectKernelError,
  expectRangeError,
  expectSuccess,
  type Outcome,
} from "./_calls.ts";
import { FrameShadow, SHADOW_FREE, SHADOW_HELD, SHADOW_RESERVED } from "./_frame_shadow.ts";
import { type Check, type CheckContext, expect, fail } from "./check.ts";

/** How the lab says `allocate()` must choose a frame. */
export type FrameOrder = "any" | "lowest";

const KIB = 1024;
const MIB = 1024 * KIB;

/** The machine's RAM: three ranges with holes between them. */
const RAM_RANGES = [
  { base: 0 as PhysAddr, sizeBytes: 636 * KIB },
  { base: (1 * MIB) as PhysAddr, sizeBytes: 23 * MIB },
  { base: (32 * MIB) as PhysAddr, sizeBytes: 4 * MIB },
];
/** The firmware memory map's available regions (bytes; the last one ends inside a frame). */
const USABLE_REGIONS: readonly PhysRange[] = [
  { base: 0, length: 639 * KIB },
  { base: 1 * MIB, length: 23 * MIB },
  { base: 32 * MIB, length: 4 * MIB - 2 * KIB },
];
/** Where the reservations come from, as their `source` says. */
const LAB_LAYOUT = "the frames lab's machine";
/** Ranges inside usable RAM that must never be handed out. */
const RESERVATIONS: readonly BootReservation[] = [
  { base: 0, length: 1 * MIB, what: "first 1 MiB (BIOS, real-mode area)", source: LAB_LAYOUT },
  { base: 1 * MIB, length: 360 * KIB, what: "kernel image", source: LAB_LAYOUT },
  {
    base: 1 * MIB + 360 * KIB + 0x10,
    length: 0x1230,
    what: "multiboot2 boot information",
    source: LAB_LAYOUT,
  },
  { base: 8 * MIB, length: 194 * KIB, what: "module initrd", source: LAB_LAYOUT },
];
/** Frames scanned: all of RAM and a little beyond. */
const SCAN_END_FRAME = (36 * MIB) / PAGE_SIZE_4K + 64;
/** Frames in the middle of the hole and far beyond RAM: never the part's. */
const OUTSIDE_FRAMES = [(28 * MIB) / PAGE_SIZE_4K, (48 * MIB) / PAGE_SIZE_4K, 2 ** 24];

/** The machine of one check, the part, and the model. */
interface FramesBench {
  /** The part, each call counted against the budget. */
  readonly part: FrameProvider;
  /** The model. */
  readonly shadow: FrameShadow;
  /** What each reserved frame is (a reservation's name, or the part's own state). */
  readonly reservedWhat: ReadonlyMap<number, string>;
}

/**
 * Builds a fresh machine and the part, runs `body`, gives back every frame
 * the grader holds, and counts what is left allocated (a leak).
 */
function onFreshMachine(
  factory: FrameProviderFactory,
  context: CheckContext,
  body: (bench: FramesBench) => void,
): void {
  const memory = new PhysicalMemory(RAM_RANGES);
  const early = new EarlyFrameAllocator(USABLE_REGIONS, RESERVATIONS);
  const raw = factory({
    memory,
    usableRegions: USABLE_REGIONS,
    reservations: RESERVATIONS,
    early,
    debug: false,
  });
  const ownState = early.isRetired ? early.allocatedRanges : early.retire();
  const excluded = [...RESERVATIONS, ...ownState];
  const usableRuns = USABLE_REGIONS.map(framesInside);
  const reservedRuns = excluded.map(framesTouching).map((run) => clipToUsable(run, usableRuns))
    .flat();
  const shadow = new FrameShadow(
    SCAN_END_FRAME,
    availableFrameRuns(USABLE_REGIONS, excluded),
    reservedRuns,
  );
  const reservedWhat = new Map<number, string>();
  for (const range of ownState) describeRun(reservedWhat, range, "the allocator's own state");
  for (const range of RESERVATIONS) describeRun(reservedWhat, range, range.what);
  const freeAtStart = raw.stats().freeFrames;
  try {
    body({ part: counted(raw, context), shadow, reservedWhat });
  } finally {
    for (const frame of shadow.heldFrames()) {
      try {
        raw.free(frame as FrameNumber);
      } catch {
        // What the part refuses to take back is counted below.
      }
      shadow.release(frame);
    }
    countLeaks(raw, freeAtStart, context);
  }
}

/** The frames of `run` that lie in usable RAM. */
function clipToUsable(
  run: { firstFrame: number; endFrame: number },
  usableRuns: readonly { firstFrame: number; endFrame: number }[],
): { firstFrame: number; endFrame: number }[] {
  return usableRuns.map((usable) => ({
    firstFrame: Math.max(run.firstFrame, usable.firstFrame),
    endFrame: Math.min(run.endFrame, usable.endFrame),
  })).filter((clipped) => clipped.endFrame > clipped.firstFrame);
}

function describeRun(into: Map<number, string>, range: PhysRange, what: string): void {
  const { firstFrame, endFrame } = framesTouching(range);
  for (let frame = firstFrame; frame < endFrame; frame++) {
    if (!into.has(frame)) into.set(frame, what);
  }
}

/** After a check: every frame the grader gave back must be free again. */
function countLeaks(part: FrameProvider, freeAtStart: number, context: CheckContext): void {
  try {
    const leaked: number[] = [];
    for (let frame = 0; frame < SCAN_END_FRAME; frame++) {
      if (part.stateOf(frame as FrameNumber) === "allocated") leaked.push(frame);
    }
    if (leaked.length > 0) {
      context.reportLeak(`leaked ${countOf(leaked.length, "frame")} (${listFrames(leaked)})`);
      return;
    }
    const freeAtEnd = part.stats().freeFrames;
    if (freeAtEnd !== freeAtStart) {
      context.reportLeak(
        `stats().freeFrames is ${freeAtEnd} after the check, ${freeAtStart} before it`,
      );
    }
  } catch (error) {
    context.reportLeak(`could not count frames after the check: ${describeThrown(error)}`);
  }
}

/**
 * Takes the frames the part handed out (`frameCount` from `first`) into the
 * model; a frame handed out twice fails.
 */
function takeOrFail(shadow: FrameShadow, first: number, call: string, frameCount = 1): void {
  for (let frame = first; frame < first + frameCount; frame++) {
    if (shadow.take(frame) === "twice") {
      fail(
        `${call} to hand out a free frame`,
        `it handed out frame ${hex(frame)}, already allocated`,
      );
    }
  }
}

/** Takes a free frame with allocateSpecific() (`call` in words), expecting that very frame. */
function allocateSpecificOrFail(
  part: FrameProvider,
  shadow: FrameShadow,
  frame: number,
  call: string,
): void {
  const got = expectSuccess(call, () => part.allocateSpecific(frame as FrameNumber));
  expect(
    got === frame,
    `${call} to return ${hex(frame)}`,
    () => `it returned ${describeValue(got)}`,
  );
  takeOrFail(shadow, frame, call);
}

/** Fails unless allocateSpecific() of an allocated frame (`call` in words) throws FrameInUse. */
function expectFrameInUse(part: FrameProvider, frame: number, call: string): void {
  expectKernelError(
    call,
    "FrameInUse",
    () => part.allocateSpecific(frame as FrameNumber),
    "the frame is allocated",
  );
}

/** Frees a frame the grader holds, expecting success, and gives it back in the model. */
function freeOrFail(part: FrameProvider, shadow: FrameShadow, frame: number, when = ""): void {
  expectSuccess(`free(${hex(frame)})${when}`, () => part.free(frame as FrameNumber));
  shadow.release(frame);
}

/**
 * What a call returned, or undefined if it threw OutOfMemory where the model
 * says it may run out.
 *
 * @throws {CheckFailure} If it threw anything else, or ran out where it need not.
 */
function unlessOutOfMemory<T>(
  outcome: Outcome<T>,
  mayRunOut: boolean,
  expected: string,
): T | undefined {
  if (outcome.ok) return outcome.value;
  expect(
    outcome.error.code === "OutOfMemory" && mayRunOut,
    expected,
    `it threw ${describeError(outcome.error)}`,
  );
  return undefined;
}

/** Fails unless `stateOf(frame)` is `want`; `expected` says so in words. */
function expectState(part: FrameProvider, frame: number, want: FrameState, expected: string): void {
  const state = part.stateOf(frame as FrameNumber);
  expect(state === want, expected, () => `it is ${JSON.stringify(state)}`);
}

/** Fails unless `method` refuses every frame outside usable RAM with InvalidFrame. */
function expectOutsideFramesRefused(
  part: FrameProvider,
  method: "allocateSpecific" | "free",
): void {
  for (const frame of OUTSIDE_FRAMES) {
    expectKernelError(
      `${method}(${hex(frame)})`,
      "InvalidFrame",
      () => part[method](frame as FrameNumber),
      "the frame is outside usable RAM",
    );
  }
}

/** Fails unless stats() still counts `freeFrames` free frames `when`. */
function expectFreeFrames(part: FrameProvider, freeFrames: number, when: string): void {
  const now = part.stats().freeFrames;
  expect(now === freeFrames, `stats().freeFrames to stay ${freeFrames} ${when}`, `it is ${now}`);
}

/** Removes and returns a random element of `held` (the last one takes its place). */
function removeRandom(held: number[], rng: Xorshift32): number {
  const index = rng.below(held.length);
  const frame = held[index];
  held[index] = held[held.length - 1];
  held.pop();
  return frame;
}

/** The frame lab's checks, for the allocation order the lab states. */
export function framesChecks(order: FrameOrder): Check<FrameProviderFactory>[] {
  const checks: Check<FrameProviderFactory>[] = [
    poolCheck,
    reservedCheck,
    statsCheck,
    randomCheck,
    specificCheck,
    contiguousCheck,
    doubleFreeCheck,
    outOfMemoryCheck,
    refcountCheck,
  ];
  return order === "lowest" ? [...checks.slice(0, 3), orderCheck, ...checks.slice(3)] : checks;
}

const poolCheck: Check<FrameProviderFactory> = {
  id: "frames.pool",
  title: "Every usable frame starts free, and no frame outside usable RAM is ever free",
  points: 10,
  budget: 20_000,
  run(factory, context) {
    onFreshMachine(factory, context, ({ part, shadow }) => {
      const wrong: string[] = [];
      for (let frame = 0; frame < SCAN_END_FRAME; frame++) {
        const kind = shadow.kindOf(frame);
        if (kind === SHADOW_RESERVED) continue; // frames.reserved
        const state = part.stateOf(frame as FrameNumber);
        const isRight = kind === SHADOW_FREE
          ? state === "free"
          : state === "outside" || state === "reserved";
        if (!isRight) wrong.push(`stateOf(${hex(frame)}) is ${JSON.stringify(state)}`);
      }
      expect(
        wrong.length === 0,
        "every frame of usable RAM free, every frame outside it (holes, past the end, a " +
          "partly usable frame) outside or reserved",
        () => `${wrong.slice(0, 3).join(", ")}${more(wrong.length, 3)}`,
      );
      expectOutsideFramesRefused(part, "allocateSpecific");
    });
  },
};

const reservedCheck: Check<FrameProviderFactory> = {
  id: "frames.reserved",
  title: "Reserved frames (reservations, the allocator's own state) are never handed out",
  points: 10,
  budget: 20_000,
  run(factory, context) {
    onFreshMachine(factory, context, ({ part, shadow, reservedWhat }) => {
      const reserved = [...reservedWhat.keys()].filter((frame) =>
        shadow.kindOf(frame) === SHADOW_RESERVED
      ).sort((a, b) => a - b);
      for (const frame of reserved) {
        const state = part.stateOf(frame as FrameNumber);
        expect(
          state === "reserved",
          `frame ${hex(frame)} (${reservedWhat.get(frame)}) to be reserved`,
          () => `stateOf(${hex(frame)}) is ${JSON.stringify(state)}`,
        );
        const refcount = part.metadata.refcount(frame as FrameNumber);
        expect(
          refcount === FRAME_UNUSABLE,
          `the reference count of reserved frame ${hex(frame)} to read ${FRAME_UNUSABLE}`,
          () => `metadata.refcount(${hex(frame)}) is ${refcount}`,
        );
      }
      for (const frame of reserved) {
        const call = `allocateSpecific(${hex(frame)})`;
        const outcome = attempt(() => part.allocateSpecific(frame as FrameNumber));
        if (outcome.ok) shadow.take(frame);
        expect(
          !outcome.ok && outcome.error.code === "InvalidFrame",
          `${call} to throw KernelError InvalidFrame (${reservedWhat.get(frame)})`,
          () => outcome.ok ? "it handed the frame out" : `it threw ${describeError(outcome.error)}`,
        );
        expectKernelError(
          `free(${hex(frame)})`,
          "InvalidFrame",
          () => part.free(frame as FrameNumber),
          `the frame is reserved: ${reservedWhat.get(frame)}`,
        );
      }
      // Take every frame: none may be reserved. Duplicates are frames.out-of-memory's to judge.
      for (let handedOut = 0; handedOut < SCAN_END_FRAME; handedOut++) {
        const outcome = attempt(() => part.allocate());
        if (!outcome.ok) break;
        const frame = outcome.value;
        if (shadow.kindOf(frame) === SHADOW_RESERVED) {
          shadow.take(frame);
          fail(
            "allocate() never to hand out a reserved frame",
            `it handed out frame ${hex(frame)} (${reservedWhat.get(frame)})`,
          );
        }
        if (shadow.take(frame) === "twice") break;
      }
    });
  },
};

const statsCheck: Check<FrameProviderFactory> = {
  id: "frames.stats",
  title: "stats() agrees with the frames' states, before and after allocations",
  points: 10,
  budget: 40_000,
  run(factory, context) {
    onFreshMachine(factory, context, ({ part, shadow }) => {
      compareStats(part, shadow, "at the start");
      for (let i = 0; i < 100; i++) {
        takeOrFail(shadow, expectSuccess("allocate()", () => part.allocate()), "allocate()");
      }
      const run = expectSuccess(
        "allocateContiguous(16, 16)",
        () => part.allocateContiguous(16, 16),
      );
      takeOrFail(shadow, run, "allocateContiguous()", 16);
      compareStats(part, shadow, "after 116 frames were allocated");
      const held = shadow.heldFrames();
      for (let i = 0; i < held.length; i += 2) freeOrFail(part, shadow, held[i]);
      compareStats(part, shadow, "after half of them were freed");
    });
  },
};

/** Compares stats() with the states `stateOf` reports and the frames the grader holds. */
function compareStats(part: FrameProvider, shadow: FrameShadow, when: string): void {
  const counts: Record<FrameState, number> = { free: 0, allocated: 0, reserved: 0, outside: 0 };
  for (let frame = 0; frame < SCAN_END_FRAME; frame++) counts[part.stateOf(frame as FrameNumber)]++;
  const stats = part.stats();
  const pairs: [string, number, number][] = [
    ["freeFrames", stats.freeFrames, counts.free],
    ["allocatedFrames", stats.allocatedFrames, counts.allocated],
    ["reservedFrames", stats.reservedFrames, counts.reserved],
    ["totalFrames", stats.totalFrames, counts.free + counts.allocated + counts.reserved],
  ];
  for (const [field, reported, counted] of pairs) {
    expect(
      reported === counted,
      `stats().${field} ${when} to equal what stateOf() reports (${counted})`,
      () => `it is ${reported}`,
    );
  }
  expect(
    stats.allocatedFrames === shadow.handedOutCount,
    `stats().allocatedFrames ${when} to equal the frames handed out (${shadow.handedOutCount})`,
    () => `it is ${stats.allocatedFrames}`,
  );
  const pools = stats.pools;
  const sums = { frameCount: 0, freeFrames: 0, reservedFrames: 0, allocatedFrames: 0 };
  for (const pool of pools) {
    expect(
      pool.frameCount === pool.freeFrames + pool.reservedFrames + pool.allocatedFrames,
      `each pool's frameCount ${when} to be its free + reserved + allocated frames`,
      () =>
        `pool at ${hex(pool.base)} has ${pool.frameCount} frames but ${pool.freeFrames} + ` +
        `${pool.reservedFrames} + ${pool.allocatedFrames}`,
    );
    sums.frameCount += pool.frameCount;
    sums.freeFrames += pool.freeFrames;
    sums.reservedFrames += pool.reservedFrames;
    sums.allocatedFrames += pool.allocatedFrames;
  }
  expect(
    sums.frameCount === stats.totalFrames && sums.freeFrames === stats.freeFrames &&
      sums.reservedFrames === stats.reservedFrames &&
      sums.allocatedFrames === stats.allocatedFrames,
    `the pools ${when} to add up to the totals`,
    () =>
      `pools sum to ${sums.frameCount} total, ${sums.freeFrames} free, ${sums.reservedFrames} ` +
      `reserved, ${sums.allocatedFrames} allocated; totals are ${stats.totalFrames}, ` +
      `${stats.freeFrames}, ${stats.reservedFrames}, ${stats.allocatedFrames}`,
  );
}

const orderCheck: Check<FrameProviderFactory> = {
  id: "frames.order",
  title: "allocate() always returns the lowest free frame (the lab's order)",
  points: 10,
  budget: 5_000,
  run(factory, context) {
    onFreshMachine(factory, context, ({ part, shadow }) => {
      const held: number[] = [];
      for (let op = 0; op < 3000; op++) {
        if (held.length > 0 && context.rng.below(100) < 40) {
          freeOrFail(part, shadow, removeRandom(held, context.rng));
          continue;
        }
        const lowest = shadow.lowestFree();
        const frame = expectSuccess("allocate()", () => part.allocate());
        shadow.take(frame);
        held.push(frame);
        expect(
          frame === lowest,
          `allocate() to return the lowest free frame, ${hex(lowest)} (operation ${op})`,
          () => `it returned ${hex(frame)}`,
        );
      }
    });
  },
};

const randomCheck: Check<FrameProviderFactory> = {
  id: "frames.random",
  title: "4000 seeded random calls: no frame handed out twice, each result as the model says",
  points: 20,
  budget: 12_000,
  run(factory, context) {
    onFreshMachine(factory, context, ({ part, shadow }) => {
      const rng = context.rng;
      const held: number[] = [];
      const give = (frame: number) => {
        if (shadow.stateOf(frame) === SHADOW_HELD) held.push(frame);
      };
      for (let op = 0; op < 4000; op++) {
        const dice = rng.below(100);
        if (dice < 45) {
          const frame = unlessOutOfMemory(
            attempt(() => part.allocate()),
            shadow.freeCount === 0,
            `allocate() to succeed (operation ${op}, ${shadow.freeCount} frames free)`,
          );
          if (frame === undefined) continue;
          takeOrFail(shadow, frame, `allocate() (operation ${op})`);
          give(frame);
        } else if (dice < 75) {
          if (held.length === 0) continue;
          freeOrFail(part, shadow, removeRandom(held, rng), ` (operation ${op})`);
        } else if (dice < 85) {
          const frame = shadow.available[rng.below(shadow.available.length)];
          const call = `allocateSpecific(${hex(frame)}) (operation ${op})`;
          if (shadow.stateOf(frame) === SHADOW_FREE) {
            allocateSpecificOrFail(part, shadow, frame, call);
            give(frame);
          } else {
            expectFrameInUse(part, frame, call);
          }
        } else if (dice < 95) {
          const count = 1 + rng.below(8);
          const call = `allocateContiguous(${count}, 1) (operation ${op})`;
          const first = unlessOutOfMemory(
            attempt(() => part.allocateContiguous(count, 1)),
            !shadow.hasRun(count, 1),
            `${call} to succeed (such a run is free)`,
          );
          if (first === undefined) continue;
          takeOrFail(shadow, first, call, count);
          for (let frame = first; frame < first + count; frame++) give(frame);
        } else {
          const stats = part.stats();
          expect(
            stats.allocatedFrames === shadow.handedOutCount,
            `stats().allocatedFrames to be ${shadow.handedOutCount} (operation ${op})`,
            `it is ${stats.allocatedFrames}`,
          );
          if (held.length > 0) {
            const frame = held[rng.below(held.length)];
            expectState(
              part,
              frame,
              "allocated",
              `stateOf(${hex(frame)}) to be "allocated" (operation ${op})`,
            );
          }
        }
      }
    });
  },
};

const specificCheck: Check<FrameProviderFactory> = {
  id: "frames.specific",
  title: "allocateSpecific() takes the frame asked for, or refuses with the right error",
  points: 5,
  budget: 200,
  run(factory, context) {
    onFreshMachine(factory, context, ({ part, shadow }) => {
      const available = shadow.available;
      const picks = [available[0], available[available.length - 1]];
      for (let i = 0; i < 6; i++) picks.push(available[context.rng.below(available.length)]);
      for (const frame of new Set(picks)) {
        const call = `allocateSpecific(${hex(frame)})`;
        allocateSpecificOrFail(part, shadow, frame, call);
        expectState(part, frame, "allocated", `stateOf(${hex(frame)}) to be "allocated"`);
        expectFrameInUse(part, frame, call);
      }
      expectOutsideFramesRefused(part, "allocateSpecific");
    });
  },
};

const contiguousCheck: Check<FrameProviderFactory> = {
  id: "frames.contiguous",
  title: "allocateContiguous() returns aligned runs of free frames; freeContiguous() frees them",
  points: 15,
  budget: 2_000,
  run(factory, context) {
    onFreshMachine(factory, context, ({ part, shadow }) => {
      const rng = context.rng;
      // Fragment part of memory: hold every third frame of a window.
      const window = shadow.available.slice(1200, 1200 + 600);
      for (let i = 0; i < window.length; i += 3) {
        const frame = window[i];
        const call = `allocateSpecific(${hex(frame)})`;
        expectSuccess(call, () => part.allocateSpecific(frame as FrameNumber));
        takeOrFail(shadow, frame, call);
      }
      const runs: { first: number; count: number }[] = [];
      for (let request = 0; request < 40; request++) {
        const count = 1 + rng.below(48);
        const align = 2 ** rng.below(10);
        const call = `allocateContiguous(${count}, ${align})`;
        const first = unlessOutOfMemory(
          attempt(() => part.allocateContiguous(count, align)),
          !shadow.hasRun(count, align),
          `${call} to succeed (such a run is free)`,
        );
        if (first === undefined) continue;
        expect(
          Number.isSafeInteger(first) && first % align === 0,
          `${call} to return a frame number that is a multiple of ${align}`,
          `it returned ${describeValue(first)}`,
        );
        takeOrFail(shadow, first, call, count);
        for (const frame of [first, first + count - 1]) {
          expectState(
            part,
            frame,
            "allocated",
            `stateOf(${hex(frame)}) to be "allocated" after ${call}`,
          );
        }
        runs.push({ first, count });
      }
      for (const { first, count } of runs) {
        expectSuccess(
          `freeContiguous(${hex(first)}, ${count})`,
          () => part.freeContiguous(first as FrameNumber, count),
        );
        for (let frame = first; frame < first + count; frame++) shadow.release(frame);
        for (const frame of [first, first + count - 1]) {
          expectState(
            part,
            frame,
            "free",
            `stateOf(${hex(frame)}) to be "free" after freeContiguous(${hex(first)}, ${count})`,
          );
        }
      }
      const tooMany = shadow.available.length + 1;
      expectKernelError(
        `allocateContiguous(${tooMany}, 1)`,
        "OutOfMemory",
        () => part.allocateContiguous(tooMany, 1),
        "more frames than the machine has",
      );
      const badArguments: [number, number, string][] = [
        [0, 1, "the count is 0"],
        [-1, 1, "the count is negative"],
        [1.5, 1, "the count is not whole"],
        [1, 0, "the alignment is 0"],
        [1, 3, "the alignment is not a power of two"],
        [2, 12, "the alignment is not a power of two"],
      ];
      for (const [count, align, why] of badArguments) {
        expectRangeError(
          `allocateContiguous(${count}, ${align})`,
          () => part.allocateContiguous(count, align),
          why,
        );
      }
    });
  },
};

const doubleFreeCheck: Check<FrameProviderFactory> = {
  id: "frames.double-free",
  title: "Freeing a free or outside frame is refused with the right error, and changes nothing",
  points: 10,
  budget: 200,
  run(factory, context) {
    onFreshMachine(factory, context, ({ part, shadow }) => {
      const frame = expectSuccess("allocate()", () => part.allocate());
      takeOrFail(shadow, frame, "allocate()");
      freeOrFail(part, shadow, frame);
      const freeBefore = part.stats().freeFrames;
      expectKernelError(
        `free(${hex(frame)}) a second time`,
        "DoubleFree",
        () => part.free(frame as FrameNumber),
        "the frame is free",
      );
      expectFreeFrames(part, freeBefore, "after the refused free");
      const untouched = shadow.available[1 + context.rng.below(shadow.available.length - 1)];
      expectKernelError(
        `free(${hex(untouched)})`,
        "DoubleFree",
        () => part.free(untouched as FrameNumber),
        "the frame was never allocated",
      );
      expectOutsideFramesRefused(part, "free");
      const first = expectSuccess("allocateContiguous(6, 1)", () => part.allocateContiguous(6, 1));
      takeOrFail(shadow, first, "allocateContiguous(6, 1)", 6);
      freeOrFail(part, shadow, first + 3);
      const freeBeforeRun = part.stats().freeFrames;
      expectKernelError(
        `freeContiguous(${hex(first)}, 6)`,
        "DoubleFree",
        () => part.freeContiguous(first as FrameNumber, 6),
        `frame ${hex(first + 3)} of the run is free`,
      );
      for (const f of [first, first + 1, first + 2, first + 4, first + 5]) {
        const state = part.stateOf(f as FrameNumber);
        expect(
          state === "allocated",
          `frame ${hex(f)} to stay allocated after the refused freeContiguous(${hex(first)}, 6)`,
          `stateOf(${hex(f)}) is "${state}"`,
        );
      }
      expectFreeFrames(part, freeBeforeRun, "after the refused freeContiguous");
    });
  },
};

const outOfMemoryCheck: Check<FrameProviderFactory> = {
  id: "frames.out-of-memory",
  title: "When every frame is taken, allocation fails with OutOfMemory; a freed frame comes back",
  points: 10,
  budget: 20_000,
  run(factory, context) {
    onFreshMachine(factory, context, ({ part, shadow }) => {
      let handedOut = 0;
      for (;;) {
        const outcome = attempt(() => part.allocate());
        if (!outcome.ok) {
          expect(
            outcome.error.code === "OutOfMemory",
            "allocate() to throw KernelError OutOfMemory when no frame is free",
            `it threw ${describeError(outcome.error)}`,
          );
          break;
        }
        takeOrFail(shadow, outcome.value, "allocate()");
        handedOut++;
        expect(
          handedOut <= SCAN_END_FRAME,
          `allocate() to run out after at most ${SCAN_END_FRAME} frames`,
          `it handed out ${handedOut} frames`,
        );
      }
      const stats = part.stats();
      expect(
        stats.freeFrames === 0,
        "stats().freeFrames to be 0 when allocate() runs out",
        `it is ${stats.freeFrames}`,
      );
      expectKernelError(
        "allocateContiguous(1, 1)",
        "OutOfMemory",
        () => part.allocateContiguous(1, 1),
        "no frame is free",
      );
      expectKernelError(
        "allocateContiguous(2, 1)",
        "OutOfMemory",
        () => part.allocateContiguous(2, 1),
        "no frame is free",
      );
      const held = shadow.heldFrames().filter((frame) => shadow.stateOf(frame) === SHADOW_HELD);
      const back = held[context.rng.below(held.length)];
      freeOrFail(part, shadow, back);
      const again = expectSuccess("allocate() after one frame was freed", () => part.allocate());
      expect(
        again === back,
        `allocate() to return the only free frame, ${hex(back)}`,
        `it returned ${describeValue(again)}`,
      );
      takeOrFail(shadow, again, "allocate()");
    });
  },
};

const refcountCheck: Check<FrameProviderFactory> = {
  id: "frames.refcounts",
  title: "The reference counts in RAM cover every frame and work with Page handles",
  points: 10,
  budget: 20_000,
  run(factory, context) {
    onFreshMachine(factory, context, ({ part }) => {
      const metadata = part.metadata;
      const lastUsable = Math.max(...USABLE_REGIONS.map((r) => framesInside(r).endFrame)) - 1;
      expect(
        metadata.frameCount > lastUsable,
        `metadata to cover frames 0 to ${hex(lastUsable)}`,
        `it covers ${metadata.frameCount} frames`,
      );
      for (let frame = 0; frame < metadata.frameCount; frame++) {
        if (part.stateOf(frame as FrameNumber) !== "free") continue;
        const refcount = metadata.refcount(frame as FrameNumber);
        expect(
          refcount === FRAME_UNUSED,
          `the reference count of free frame ${hex(frame)} to read ${FRAME_UNUSED}`,
          `it reads ${refcount}`,
        );
      }
      const page = Page.alloc(part);
      const frame = page.frame;
      const copy = page.clone();
      expect(
        page.refcount === 2,
        `a cloned Page to count 2 references`,
        `it counts ${page.refcount}`,
      );
      page[Symbol.dispose]();
      expectState(
        part,
        frame,
        "allocated",
        `frame ${hex(frame)} to stay allocated while a Page holds it`,
      );
      copy[Symbol.dispose]();
      expectState(
        part,
        frame,
        "free",
        `frame ${hex(frame)} to be free after the last Page is dropped`,
      );
      expect(
        metadata.refcount(frame) === FRAME_UNUSED,
        `its reference count to read 0 again`,
        `it reads ${metadata.refcount(frame)}`,
      );
      const run = ContigPages.alloc(part, 8, { alignFrames: 8 });
      const runFrame = run.frame;
      run[Symbol.dispose]();
      for (let f = runFrame; f < runFrame + 8; f++) {
        expectState(part, f, "free", `frame ${hex(f)} to be free after its ContigPages is dropped`);
      }
    });
  },
};

function more(total: number, shown: number): string {
  return total > shown ? ` and ${total - shown} more` : "";
}

function countOf(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function listFrames(frames: readonly number[]): string {
  return `${frames.slice(0, 4).map(hex).join(", ")}${more(frames.length, 4)}`;
}
