/**
 * The fresh machine the page-table, heap and copy-on-write labs build for
 * each check: RAM, a CPU with its MMU and TLB, and the stock frame
 * allocator over all of RAM but the first MiB. The free frames the
 * allocator hands out first (it takes the lowest) are filled with a poison
 * pattern, so a part that forgets to zero a frame it takes shows it; the
 * rest of RAM is left untouched, so the host never has to commit it. After
 * the check, the frames still allocated that were free before it are the
 * leak.
 *
 * @module
 */

import {
  CR0_PG,
  type FrameNumber,
  hex,
  Machine,
  PAGE_SIZE_4K,
  type PhysAddr,
  PhysicalMemory,
  VirtualClock,
} from "../hal/mod.ts";
import { describeThrown } from "../kernel/mod.ts";
import { FrameAllocator } from "../sdk/mod.ts";
import type { CheckContext } from "./check.ts";

/** The byte free frames are filled with before a check. */
export const POISON_BYTE = 0xa5;
/** How many of the lowest free frames are poisoned (8 MiB: more than any check takes). */
const POISONED_FRAMES = 2048;
const FIRST_MIB_BYTES = 2 ** 20;

/** A fresh machine for one check. */
export interface LabMachine {
  /** Its RAM. */
  readonly memory: PhysicalMemory;
  /** The machine (CPU, MMU, TLB). */
  readonly machine: Machine;
  /** The stock frame allocator the part takes its frames from. */
  readonly frames: FrameAllocator;
  /** Frames the grader took for itself, to give back after the check. */
  readonly graderFrames: Set<number>;
}

/**
 * Builds a machine with `ramBytes` of RAM and poisons its lowest free frames.
 *
 * @param ramBytes RAM size.
 * @returns The machine and its frame allocator.
 */
export function newLabMachine(ramBytes: number): LabMachine {
  const memory = PhysicalMemory.contiguous(ramBytes);
  const machine = new Machine(memory, new VirtualClock());
  const frames = FrameAllocator.create(memory, {
    usableRegions: [{ base: 0, length: ramBytes }],
    exclusions: [{ base: 0, length: FIRST_MIB_BYTES }],
  });
  let poisoned = 0;
  for (let frame = 0; frame < ramBytes / PAGE_SIZE_4K && poisoned < POISONED_FRAMES; frame++) {
    if (frames.stateOf(frame as FrameNumber) !== "free") continue;
    memory.u8.fill(POISON_BYTE, frame * PAGE_SIZE_4K, (frame + 1) * PAGE_SIZE_4K);
    poisoned++;
  }
  return { memory, machine, frames, graderFrames: new Set() };
}

/**
 * Takes a frame for the grader's own use (a page to map), zeroed.
 *
 * @param lab The machine.
 * @returns The frame's physical address.
 */
export function graderFrame(lab: LabMachine): PhysAddr {
  const frame = lab.frames.allocate();
  lab.graderFrames.add(frame);
  const pa = frame * PAGE_SIZE_4K;
  lab.memory.u8.fill(0, pa, pa + PAGE_SIZE_4K);
  return pa as PhysAddr;
}

/**
 * Takes `frameCount` contiguous frames aligned to `alignFrames` for the grader.
 *
 * @returns The first frame's physical address.
 */
export function graderRun(lab: LabMachine, frameCount: number, alignFrames: number): PhysAddr {
  const first = lab.frames.allocateContiguous(frameCount, alignFrames);
  for (let frame = first; frame < first + frameCount; frame++) lab.graderFrames.add(frame);
  return (first * PAGE_SIZE_4K) as PhysAddr;
}

/**
 * Takes free frames for the grader until only `freeFrames` are left, to
 * put the part under memory pressure.
 */
export function takeFramesUntil(lab: LabMachine, freeFrames: number): void {
  while (lab.frames.stats().freeFrames > freeFrames) lab.graderFrames.add(lab.frames.allocate());
}

/** Gives back every frame the grader took. */
export function releaseGraderFrames(lab: LabMachine): void {
  for (const frame of lab.graderFrames) lab.frames.free(frame as FrameNumber);
  lab.graderFrames.clear();
}

/** Turns paging off and clears CR3, so that every address space can be disposed. */
export function pagingOff(lab: LabMachine): void {
  const cpu = lab.machine.cpu;
  if ((cpu.cr0 & CR0_PG) !== 0) cpu.writeCr0(cpu.cr0 & ~CR0_PG);
  cpu.writeCr3(0);
}

/** Which frames are allocated now: a snapshot to compare with after the check. */
export function allocatedFrames(lab: LabMachine): Set<number> {
  const allocated = new Set<number>();
  const frameCount = lab.memory.endBytes / PAGE_SIZE_4K;
  for (let frame = 0; frame < frameCount; frame++) {
    if (lab.frames.stateOf(frame as FrameNumber) === "allocated") allocated.add(frame);
  }
  return allocated;
}

/**
 * Reports the frames allocated now that were not before the check (the
 * grader has given back its own by then).
 *
 * @param lab The machine.
 * @param before What {@linkcode allocatedFrames} returned before the check.
 * @param context The check.
 * @param except Frames allowed to stay (a heap's cache), if any.
 */
export function reportFrameLeaks(
  lab: LabMachine,
  before: ReadonlySet<number>,
  context: CheckContext,
  except: ReadonlySet<number> = new Set(),
): void {
  try {
    const leaked = [...allocatedFrames(lab)].filter((frame) =>
      !before.has(frame) && !except.has(frame)
    );
    if (leaked.length > 0) {
      const shown = leaked.slice(0, 4).map((frame) => hex(frame)).join(", ");
      const rest = leaked.length > 4 ? ` and ${leaked.length - 4} more` : "";
      context.reportLeak(
        `leaked ${leaked.length} frame${leaked.length === 1 ? "" : "s"} (${shown}${rest})`,
      );
    }
  } catch (error) {
    context.reportLeak(`could not count frames after the check: ${describeThrown(error)}`);
  }
}
