/**
 * The check the monitor runs after every command: a cheap look at the
 * kernel's own state that turns silent corruption (a `poke!` into a kernel
 * structure) into a `KERNEL PANIC: <structure>: <invariant>` line at once,
 * instead of a wrong result or a hang later.
 *
 * What it checks, each in time proportional to the structure's summary, not
 * to memory:
 *
 * - the frame allocator: its state block's magic, and each pool's free and
 *   reserved counters against the bitmaps they count (32 frames a step);
 * - the kmem heap: every invariant of its structures in RAM (root
 *   descriptor, owner table, slabs, arenas, counters);
 * - the page-fault handler's state frame: magic and region count;
 * - the monitor's console: the input ring, the line editor, the history and
 *   the monitor's own words;
 * - the address space table: slots, CR3, shared kernel-half entries.
 *
 * @module
 */

import { hex, PAGE_SIZE_4K, type PhysAddr } from "../../hal/mod.ts";
import type { Kernel } from "../kernel.ts";
import {
  countFrameStates,
  FRAME_ALLOCATOR_MAGIC,
  FrameAllocator,
  HeapCorruption,
  KernelPageFaultHandler,
  MAX_LAZY_REGIONS,
  PAGE_FAULT_STATE_MAGIC,
} from "../mm/mod.ts";
import type { AddressSpaceTable } from "./address_space_table.ts";
import type { ByteRing } from "./byte_ring.ts";
import type { LineEditor } from "./line_editor.ts";
import type { LineHistory } from "./line_history.ts";

/** The monitor's own structures the check covers. */
export interface MonitorStructures {
  /** The console's input ring. */
  readonly ring: ByteRing;
  /** The line editor. */
  readonly editor: LineEditor;
  /** The command history. */
  readonly history: LineHistory;
  /** The address space table. */
  readonly spaces: AddressSpaceTable;
  /** Checks the monitor's own words (magic); undefined if they are fine. */
  readonly checkWords: () => string | undefined;
}

/** Word 1 of the page-fault handler's state frame: the lazy-region count. */
const FAULT_STATE_REGION_COUNT_WORD = 1;

/**
 * Checks the kernel's state (see the module comment).
 *
 * @returns `<structure>: <invariant>` for the first problem found, or undefined.
 */
export function checkKernelIntegrity(
  kernel: Kernel,
  monitor: MonitorStructures,
): string | undefined {
  return checkFrameAllocator(kernel) ?? checkHeap(kernel) ?? checkFaultHandler(kernel) ??
    named("console input ring", monitor.ring.check()) ??
    named("console line editor", monitor.editor.check()) ??
    named("console history", monitor.history.check()) ??
    named("monitor", monitor.checkWords()) ??
    named("address space table", monitor.spaces.check());
}

function named(structure: string, problem: string | undefined): string | undefined {
  return problem === undefined ? undefined : `${structure}: ${problem}`;
}

function checkFrameAllocator(kernel: Kernel): string | undefined {
  const frames = kernel.frames;
  const memory = kernel.machine.memory;
  if (frames instanceof FrameAllocator) {
    const magic = memory.read32(frames.stateAddr);
    if (magic !== FRAME_ALLOCATOR_MAGIC) {
      return `frame allocator: state block magic at ${hex(frames.stateAddr)} is ${hex(magic)}, ` +
        `not "FRAL"`;
    }
  } else if (frames.countStates === undefined) {
    // A user's provider without a fast count: its own check, if it has one (stateOf per
    // frame after every command would cost O(RAM)).
    return checkedBy("frame allocator", () => frames.checkInvariants?.());
  }
  for (const pool of frames.stats().pools) {
    const last = pool.base + pool.frameCount * PAGE_SIZE_4K - 1;
    const where = `frame allocator: pool ${hex(pool.base)}-${hex(last)}`;
    if (pool.freeFrames + pool.reservedFrames > pool.frameCount) {
      return `${where}: ${pool.freeFrames} free and ${pool.reservedFrames} reserved frames ` +
        `counted in a pool of ${pool.frameCount}`;
    }
    const bitmap = countFrameStates(frames, pool.base / PAGE_SIZE_4K, pool.frameCount);
    if (bitmap.free !== pool.freeFrames) {
      return `${where}: the free counter says ${pool.freeFrames}, the bitmap has ${bitmap.free}`;
    }
    if (bitmap.reserved !== pool.reservedFrames) {
      return `${where}: the reserved counter says ${pool.reservedFrames}, the bitmap has ` +
        `${bitmap.reserved}`;
    }
  }
  return undefined;
}

/** Runs a part's own invariant check; its failure in one line, or undefined. */
function checkedBy(structure: string, check: () => void): string | undefined {
  try {
    check();
    return undefined;
  } catch (error) {
    return `${structure}: ${error instanceof Error ? error.message : String(error)}`;
  }
}

function checkHeap(kernel: Kernel): string | undefined {
  try {
    kernel.heap.checkInvariants?.();
    return undefined;
  } catch (error) {
    if (error instanceof HeapCorruption) return `kmem heap: ${error.message}`;
    // A structure so broken that reading it goes outside RAM.
    return `kmem heap: ${error instanceof Error ? error.message : String(error)}`;
  }
}

function checkFaultHandler(kernel: Kernel): string | undefined {
  // The state frame's layout is the stock policy's; another policy has its own.
  if (!(kernel.pageFaults instanceof KernelPageFaultHandler)) return undefined;
  const stateAddr = kernel.pageFaults.stateAddr;
  const memory = kernel.machine.memory;
  const magic = memory.read32(stateAddr);
  if (magic !== PAGE_FAULT_STATE_MAGIC) {
    return `page-fault handler: state magic at ${hex(stateAddr)} is ${hex(magic)}, not "PFLT"`;
  }
  const regions = memory.read32((stateAddr + 4 * FAULT_STATE_REGION_COUNT_WORD) as PhysAddr);
  if (regions > MAX_LAZY_REGIONS) {
    return `page-fault handler: ${regions} lazy regions counted, the table holds ` +
      `${MAX_LAZY_REGIONS}`;
  }
  return undefined;
}
