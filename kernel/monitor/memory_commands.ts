/**
 * Monitor commands for physical memory and the heap: `meminfo`, `mmap`,
 * `alloc`, `free`, `pages`, `heap`, `kmalloc` and `kfree`.
 *
 * Frames from `alloc` are {@linkcode Page} handles the monitor holds until
 * `free`; heap blocks from `kmalloc` are remembered so that `kfree` can
 * refuse to free a block the kernel itself uses.
 *
 * @module
 */

import {
  type FrameNumber,
  hex,
  HIGHER_HALF_START,
  PAGE_SIZE_4K,
  type PhysAddr,
  type VirtAddr,
} from "../../hal/mod.ts";
import { formatBytes, formatMemoryMap } from "../boot/mod.ts";
import { heldFrames, KMALLOC_MAX_BYTES, Page, PAGE_COPY_ON_WRITE } from "../mm/mod.ts";
import { parseInteger, parsePhysAddr, parseVirtAddr } from "./_args.ts";
import { formatFrameRuns, formatRange, formatVa, plural } from "./_format.ts";
import { type Command, type CommandContext, CommandError } from "./command.ts";

/** The most frames one `alloc` hands out: 4 GiB worth. */
export const ALLOC_MAX_FRAMES = 1_048_576;
/** The most frames `leaks` lists. */
const LEAKS_LIST_MAX = 64;
/** Up to this many frames, `alloc` lists each address; above, runs. */
const ALLOC_LIST_FRAMES = 16;

/** The memory commands, in help order. */
export const memoryCommands: readonly Command[] = [
  {
    name: "meminfo",
    usage: "",
    summary: "frames total/free/reserved per pool, and heap statistics",
    arity: [0, 0],
    run(_args, context) {
      const stats = context.kernel.frames.stats();
      context.print(
        `frames: ${stats.totalFrames} total, ${stats.freeFrames} free, ` +
          `${stats.reservedFrames} reserved, ${stats.allocatedFrames} allocated ` +
          `(${formatBytes(stats.freeFrames * PAGE_SIZE_4K)} free)`,
      );
      for (const pool of stats.pools) {
        context.print(
          `  pool ${hex(pool.base, 12)}: ${
            plural(pool.frameCount, "frame")
          }, ${pool.freeFrames} free, ` +
            `${pool.reservedFrames} reserved, ${pool.allocatedFrames} allocated`,
        );
      }
      for (const range of context.kernel.frames.metadataRanges()) {
        context.print(
          `  ${range.what} at ${formatRange(range.base, range.base + range.length - 1)}`,
        );
      }
      const heap = context.kernel.heap.stats();
      const heldFrameCount = Math.ceil(heap.bytesMapped / PAGE_SIZE_4K);
      context.print(
        `heap: ${heap.bytesInUse} bytes in use by ${plural(heap.liveAllocations, "allocation")}, ` +
          (heap.slabFrames === undefined
            ? `${plural(heldFrameCount, "frame")} held`
            : `${heap.bytesFree} bytes free, ${plural(heldFrameCount, "frame")} held ` +
              `(${heap.slabFrames} slab, ${heap.arenaFrames} arena, ${heap.metadataFrames} metadata)`),
      );
      context.print(
        `heap: ${plural(heap.allocations, "allocation")} and ${plural(heap.frees, "free")} ` +
          "since boot",
      );
      context.print(
        `monitor: ${plural(context.pages.size, "page handle")} held, ` +
          `${plural(context.allocations.size, "kmalloc block")}`,
      );
    },
  },
  {
    name: "mmap",
    usage: "",
    summary: "the firmware memory map from the multiboot2 information",
    arity: [0, 0],
    run(_args, context) {
      for (const line of formatMemoryMap(context.kernel.bootInfo.memoryMap)) context.print(line);
    },
  },
  {
    name: "alloc",
    usage: "N",
    summary: "allocate N frames as page handles the monitor holds",
    arity: [1, 1],
    run(args, context) {
      const frameCount = parseInteger(args.words[0], "a frame count", 1, ALLOC_MAX_FRAMES);
      const taken: Page[] = [];
      try {
        for (let i = 0; i < frameCount; i++) taken.push(Page.alloc(context.kernel.frames));
      } catch (error) {
        // All or nothing: give back what this command took.
        for (const page of taken) page[Symbol.dispose]();
        throw error;
      }
      const addresses = taken.map((page) => page.physAddr as number).sort((a, b) => a - b);
      for (const page of taken) context.pages.set(page.physAddr, page);
      const list = frameCount <= ALLOC_LIST_FRAMES
        ? addresses.map((pa) => hex(pa)).join(" ")
        : formatFrameRuns(addresses);
      context.print(`alloc: ${plural(frameCount, "frame")}: ${list}`);
    },
  },
  {
    name: "free",
    usage: "PA|all",
    summary: "drop the monitor's page handle for the frame at PA (or every handle)",
    arity: [1, 1],
    run(args, context) {
      if (args.words[0] === "all") {
        const count = context.pages.size;
        for (const page of context.pages.values()) page[Symbol.dispose]();
        context.pages.clear();
        context.print(`free: dropped ${plural(count, "page handle")}`);
        return;
      }
      const pa = parsePhysAddr(args.words[0]);
      const page = context.pages.get(pa);
      if (page === undefined) {
        throw new CommandError(`the monitor holds no page handle for ${hex(pa)} (see pages)`);
      }
      context.pages.delete(pa);
      page[Symbol.dispose]();
      const refcount = refcountOf(context, pa);
      context.print(
        `free: dropped the handle to ${hex(pa)}: ` +
          (refcount > 0
            ? `refcount now ${refcount}, still referenced`
            : "refcount 0, the frame is free again"),
      );
    },
  },
  {
    name: "pages",
    usage: "",
    summary:
      "page handles the monitor holds, and owned pages mapped in lower halves, with refcounts",
    arity: [0, 0],
    run(_args, context) {
      if (context.pages.size === 0) {
        context.print("pages: the monitor holds no page handles (alloc N makes some)");
      } else {
        context.print(`pages: ${plural(context.pages.size, "page handle")} held by the monitor`);
        const addresses = [...context.pages.keys()].sort((a, b) => a - b);
        for (const pa of addresses) {
          const page = context.pages.get(pa) as Page;
          context.print(
            `  ${hex(pa).padEnd(12)}  frame ${
              hex(page.frame).padEnd(8)
            }  refcount ${page.refcount}`,
          );
        }
      }
      const mapped = context.spaces.slots().flatMap(({ index, space }) =>
        space.mappings(0 as VirtAddr, HIGHER_HALF_START)
          .filter((leaf) => leaf.isOwned)
          .map((leaf) => ({ index, leaf }))
      );
      if (mapped.length === 0) return;
      context.print(
        `pages: ${plural(mapped.length, "owned page")} mapped in the lower halves ` +
          "(each mapping holds one reference)",
      );
      for (const { index, leaf } of mapped) {
        const cow = (leaf.flags & PAGE_COPY_ON_WRITE) !== 0 ? "  copy-on-write" : "";
        context.print(
          `  as ${String(index).padEnd(2)} ${formatVa(leaf.virtAddr)} -> ` +
            `${hex(leaf.physAddr).padEnd(10)} refcount ${refcountOf(context, leaf.physAddr)}${cow}`,
        );
      }
    },
  },
  {
    name: "leaks",
    usage: "",
    summary:
      "every frame held by a Page handle (page tables included), with where it was allocated",
    arity: [0, 0],
    run(_args, context) {
      const held = heldFrames(context.kernel.frames);
      context.print(`leaks: ${plural(held.length, "frame")} held by page handles`);
      for (const frame of held.slice(0, LEAKS_LIST_MAX)) {
        const site = frame.allocationSite ?? "(boot with --debug to record allocation sites)";
        context.print(`  ${hex(frame.physAddr).padEnd(12)}  refcount ${frame.refcount}  ${site}`);
      }
      if (held.length > LEAKS_LIST_MAX) {
        context.print(`  ... and ${plural(held.length - LEAKS_LIST_MAX, "more frame")}`);
      }
    },
  },
  {
    name: "heap",
    usage: "",
    summary: "the kmem heap's slabs, arenas and blocks",
    arity: [0, 0],
    run(_args, context) {
      const heap = context.kernel.heap;
      if (heap.dump === undefined) {
        throw new CommandError(`the heap (${context.kernel.parts.heap}) has no listing`);
      }
      for (const line of heap.dump().split("\n")) context.print(line);
    },
  },
  {
    name: "kmalloc",
    usage: "SIZE",
    summary: "allocate SIZE bytes from the kmem heap",
    arity: [1, 1],
    run(args, context) {
      const sizeBytes = parseInteger(args.words[0], "a size in bytes", 1, KMALLOC_MAX_BYTES);
      const heap = context.kernel.heap;
      const va = heap.kmalloc(sizeBytes);
      context.allocations.add(va);
      context.print(
        `kmalloc: ${formatVa(va)} (${plural(sizeBytes, "byte")} asked, ${
          heap.usableSize(va)
        } usable)`,
      );
    },
  },
  {
    name: "kfree",
    usage: "ADDR",
    summary: "free a block kmalloc returned",
    arity: [1, 1],
    run(args, context) {
      const va = parseVirtAddr(args.words[0]);
      const heap = context.kernel.heap;
      if (!context.allocations.has(va) && isLiveAllocation(context, va)) {
        throw new CommandError(
          `${formatVa(va)} is a block the kernel allocated, not the monitor: not freeing it`,
        );
      }
      // Anything else goes to the heap, which rejects invalid and double frees itself.
      const usableBytes = context.allocations.has(va) ? heap.usableSize(va) : 0;
      heap.kfree(va);
      context.allocations.delete(va);
      context.print(`kfree: freed ${formatVa(va)} (${usableBytes} bytes)`);
    },
  },
];

function isLiveAllocation(context: CommandContext, va: Parameters<typeof formatVa>[0]): boolean {
  try {
    context.kernel.heap.usableSize(va);
    return true;
  } catch {
    return false;
  }
}

function refcountOf(context: CommandContext, pa: PhysAddr): number {
  return Math.max(0, context.kernel.frames.metadata.refcount((pa / PAGE_SIZE_4K) as FrameNumber));
}
