/**
 * Gathers what `--report html` draws from a booted kernel, as plain data:
 * the firmware memory map, the labelled ranges (first MiB, kernel image,
 * MBI, modules, allocator state, heap, page tables), the allocator, heap and
 * paging statistics, and the physical memory as grids of cells, each cell
 * counting how many of its frames fall in each {@linkcode MemoryCategory}.
 *
 * Everything is read from the kernel's own structures in RAM: frame states
 * from the allocator's bitmaps (32 frames per step, so a 64 GiB machine takes
 * milliseconds), heap frames from its owner table, page tables by walking the
 * tree CR3 points to. The renderer (`html_report.ts`) needs nothing else.
 *
 * @module
 */

import { type Machine, PAGE_SIZE_4K, type PhysicalMemory } from "../hal/mod.ts";
import { type BootInfo, type BootMemory, usableBytes } from "../kernel/boot/mod.ts";
import {
  countFrameStates,
  type FrameProvider,
  type HeapStats,
  type KernelHeap,
} from "../kernel/mm/mod.ts";
import { type PageTableScan, scanPageTables } from "./page_table_scan.ts";

/**
 * What a frame is used for, as the picture colours it. The first five come
 * from the allocator's state alone; the others are labels that claim frames
 * from it.
 */
export type MemoryCategory =
  | "hole"
  | "unmanaged"
  | "free"
  | "allocated"
  | "reserved"
  | "firmware"
  | "kernel"
  | "mbi"
  | "module"
  | "allocator"
  | "pageTable"
  | "heapMeta"
  | "heapSlab"
  | "heapArena";

/** Every category, in the order of {@linkcode MemoryGridData.counts}. */
export const MEMORY_CATEGORIES: readonly MemoryCategory[] = [
  "hole",
  "unmanaged",
  "free",
  "allocated",
  "reserved",
  "firmware",
  "kernel",
  "mbi",
  "module",
  "allocator",
  "pageTable",
  "heapMeta",
  "heapSlab",
  "heapArena",
];

/** Number of categories: the stride of {@linkcode MemoryGridData.counts}. */
export const MEMORY_CATEGORY_COUNT = MEMORY_CATEGORIES.length;

const INDEX: Readonly<Record<MemoryCategory, number>> = Object.fromEntries(
  MEMORY_CATEGORIES.map((category, index) => [category, index]),
) as Record<MemoryCategory, number>;

/** A grid of cells over a run of physical frames. */
export interface MemoryGridData {
  /** Heading shown above the grid. */
  readonly title: string;
  /** The first frame of the first cell. */
  readonly firstFrame: number;
  /** Frames per cell (a power of two). */
  readonly bucketFrames: number;
  /** Cells per row. */
  readonly columns: number;
  /** Number of cells; the last may cover fewer frames. */
  readonly cellCount: number;
  /** Frames the grid covers. */
  readonly frameCount: number;
  /**
   * Frames per category per cell: `counts[cell * MEMORY_CATEGORY_COUNT + c]`
   * is the number of frames of cell `cell` in `MEMORY_CATEGORIES[c]`.
   */
  readonly counts: readonly number[];
}

/** A named physical range: a reservation, the allocator's state, the heap root, page tables. */
export interface LabelledRange {
  /** First byte. */
  readonly base: number;
  /** Length in bytes. */
  readonly length: number;
  /** What it is, e.g. `kernel image`. */
  readonly what: string;
  /** Its colour in the picture. */
  readonly category: MemoryCategory;
}

/** The heap's counters, as both reports show them. */
export interface HeapReportData {
  readonly bytesInUse: number;
  readonly bytesMapped: number;
  readonly bytesFree: number;
  readonly allocations: number;
  readonly frees: number;
  readonly liveAllocations: number;
  readonly framesMapped: number;
  readonly metadataFrames: number;
  readonly slabFrames: number;
  readonly arenaFrames: number;
  readonly cachedFrames: number;
  readonly largeBytesInUse: number;
  /** Counters particular to a heap that is not the stock one. */
  readonly details?: Readonly<Record<string, number>>;
  /** The size classes that hold slabs or objects. */
  readonly sizeClasses: readonly {
    readonly objectSizeBytes: number;
    readonly slabCount: number;
    readonly objectsInUse: number;
    readonly objectsFree: number;
  }[];
}

/** The heap's counters from its statistics, size classes in use only. */
export function heapReportData(stats: HeapStats): HeapReportData {
  // A heap other than the stock one may report only the five required counters.
  return {
    bytesInUse: stats.bytesInUse,
    bytesMapped: stats.bytesMapped,
    bytesFree: stats.bytesFree ?? 0,
    allocations: stats.allocations,
    frees: stats.frees,
    liveAllocations: stats.liveAllocations,
    framesMapped: Math.ceil(stats.bytesMapped / PAGE_SIZE_4K),
    metadataFrames: stats.metadataFrames ?? 0,
    slabFrames: stats.slabFrames ?? 0,
    arenaFrames: stats.arenaFrames ?? 0,
    cachedFrames: stats.cachedFrames ?? 0,
    largeBytesInUse: stats.largeBytesInUse ?? 0,
    ...(stats.details === undefined ? {} : { details: { ...stats.details } }),
    sizeClasses: (stats.sizeClasses ?? [])
      .filter((c) => c.slabCount > 0 || c.objectsInUse > 0)
      .map(({ objectSizeBytes, slabCount, objectsInUse, objectsFree }) => ({
        objectSizeBytes,
        slabCount,
        objectsInUse,
        objectsFree,
      })),
  };
}

/** Paging statistics, from the page tables in RAM and the MMU's counters. */
export interface PagingReportData {
  /** CR0.PG. */
  readonly isEnabled: boolean;
  /** Physical address of the PML4 the scan started from. */
  readonly rootAddress: number;
  /** Frames holding page tables. */
  readonly tableFrames: number;
  /** Tables per level: `[PML4, PDPT, PD, PT]`. */
  readonly tablesPerLevel: readonly number[];
  /** Leaf mappings by page size. */
  readonly pages4K: number;
  /** Leaf mappings of 2 MiB pages. */
  readonly pages2M: number;
  /** Leaf mappings of 1 GiB pages. */
  readonly pages1G: number;
  /** Bytes the leaves map. */
  readonly mappedBytes: number;
  /** Page walks done by the MMU. */
  readonly walks: number;
  /** Page faults raised. */
  readonly pageFaults: number;
  /** TLB hits, misses, flushes and entries held. */
  readonly tlb: {
    readonly hits: number;
    readonly misses: number;
    readonly flushes: number;
    readonly entries: number;
  };
}

/** Everything the HTML report shows, as plain JSON-able data. */
export interface HtmlReportData {
  /** Page title, e.g. `kernelsim 0.1.0`. */
  readonly title: string;
  /** Boot loader name from the MBI. */
  readonly bootloaderName: string;
  /** Kernel command line. */
  readonly cmdline: string;
  /** Bytes of RAM the machine has. */
  readonly ramBytes: number;
  /** Bytes of available memory in the memory map. */
  readonly usableBytes: number;
  /** One past the highest RAM byte. */
  readonly ramEndBytes: number;
  /** The RAM ranges of the machine. */
  readonly ramRanges: readonly { readonly base: number; readonly sizeBytes: number }[];
  /** The firmware memory map. */
  readonly memoryMap: readonly {
    readonly base: number;
    readonly length: number;
    readonly type: number;
  }[];
  /** Named ranges, in address order. */
  readonly regions: readonly LabelledRange[];
  /** Frame allocator counters. */
  readonly frames: {
    readonly totalFrames: number;
    readonly freeFrames: number;
    readonly reservedFrames: number;
    readonly allocatedFrames: number;
    readonly pools: readonly {
      readonly base: number;
      readonly frameCount: number;
      readonly freeFrames: number;
      readonly reservedFrames: number;
      readonly allocatedFrames: number;
    }[];
  };
  /** Heap counters. */
  readonly heap: HeapReportData;
  /** Paging statistics, when page tables exist. */
  readonly paging?: PagingReportData;
  /** Frames per category over the whole machine. */
  readonly categoryFrames: Readonly<Record<MemoryCategory, number>>;
  /** The grids to draw: the whole machine, then (on large machines) the first 16 MiB in detail. */
  readonly grids: readonly MemoryGridData[];
  /** Device register ranges (MMIO), lowest first, and where the kernel mapped them. */
  readonly mmioRanges: readonly MmioRangeData[];
}

/** One MMIO range of the machine. */
export interface MmioRangeData {
  /** First physical address. */
  readonly base: number;
  /** One past the last. */
  readonly end: number;
  /** The device. */
  readonly name: string;
  /** `bus` for a device on the system bus, `cpu` for the local APIC page. */
  readonly decodedBy: "bus" | "cpu";
  /** The kernel's virtual address for it (uncached), or undefined when it did not map it. */
  readonly virtAddr: number | undefined;
}

/** What {@linkcode collectHtmlReportData} reads: a booted `Kernel` fits. */
export interface HtmlReportSource {
  /** The hardware: RAM, CPU (CR3, TLB), MMU counters. */
  readonly machine: Machine;
  /** The parsed boot information. */
  readonly bootInfo: BootInfo;
  /** The kernel's boot memory plan: sanitized map and reservations. */
  readonly bootMemory: BootMemory;
  /** The frame allocator. */
  readonly frames: FrameProvider;
  /** The kmem heap. */
  readonly heap: KernelHeap;
  /** The kernel's settings (for the version in the title). */
  readonly config?: { readonly version?: string };
  /** Where the kernel mapped device registers, if it did. */
  readonly interrupts?: {
    readonly mmio:
      | { readonly regions: readonly { physAddr: number; virtAddr: number }[] }
      | undefined;
  };
}

/** Options for {@linkcode collectHtmlReportData}. */
export interface CollectHtmlReportOptions {
  /**
   * Physical address of the root page table to draw the page tables of
   * (default: CR3, when it is not 0).
   */
  readonly pageTableRoot?: number;
  /** Cells per grid row (default 128). */
  readonly columns?: number;
  /** Most rows of the whole-machine grid (default 80); the cell size grows to fit. */
  readonly maxRows?: number;
}

/** Frames shown one per cell in the detail grid of a large machine: 16 MiB. */
const DETAIL_FRAMES = 4096;

/** Which allocator states a label may claim frames from. */
type Claim = "reserved" | "allocated" | "both";

/** A label over whole frames. */
interface FrameLabel {
  firstFrame: number;
  endFrame: number;
  category: MemoryCategory;
  claim: Claim;
}

/**
 * Labels that win over others where ranges share a frame, first first: the
 * small things a person looks for come before the large ones around them.
 */
const LABEL_PRIORITY: readonly MemoryCategory[] = [
  "mbi",
  "module",
  "kernel",
  "pageTable",
  "allocator",
  "heapMeta",
  "heapSlab",
  "heapArena",
  "firmware",
  "reserved",
];

/**
 * Reads a booted kernel into {@linkcode HtmlReportData}.
 *
 * @param kernel The kernel (or anything with its machine, boot info, allocator and heap).
 * @param options Page-table root and grid shape.
 * @returns Plain data for {@linkcode renderHtmlReport}.
 */
export function collectHtmlReportData(
  kernel: HtmlReportSource,
  options: CollectHtmlReportOptions = {},
): HtmlReportData {
  const { machine, bootInfo, frames, heap } = kernel;
  const memory = machine.memory;
  const columns = options.columns ?? 128;
  const maxRows = options.maxRows ?? 80;

  const regions: LabelledRange[] = [];
  const labels: FrameLabel[] = [];
  const addLabel = (
    base: number,
    length: number,
    what: string,
    category: MemoryCategory,
    claim: Claim,
    isListed = true,
  ) => {
    if (length <= 0) return;
    if (isListed) regions.push({ base, length, what, category });
    labels.push({
      firstFrame: Math.floor(base / PAGE_SIZE_4K),
      endFrame: Math.ceil((base + length) / PAGE_SIZE_4K),
      category,
      claim,
    });
  };

  for (const reservation of kernel.bootMemory.reservations) {
    addLabel(
      reservation.base,
      reservation.length,
      reservation.what,
      reservationCategory(reservation.what),
      "reserved",
    );
  }
  for (const range of frames.metadataRanges()) {
    addLabel(range.base, range.length, range.what, "allocator", "reserved");
  }
  for (const range of heap.frameRanges?.() ?? []) {
    const base = range.firstFrame * PAGE_SIZE_4K;
    const length = range.frameCount * PAGE_SIZE_4K;
    if (range.kind === "root") {
      addLabel(base, length, "kmem heap root descriptor", "heapMeta", "allocated");
    } else if (range.kind === "owner-table") {
      addLabel(base, length, "kmem heap owner table", "heapMeta", "allocated", false);
    } else {
      addLabel(
        base,
        length,
        range.kind,
        range.kind === "slab" ? "heapSlab" : "heapArena",
        "allocated",
        false,
      );
    }
  }

  const pageTableRoot = options.pageTableRoot ?? machine.cpu.cr3;
  const scan = pageTableRoot === 0 ? undefined : scanPageTables(memory, pageTableRoot);
  if (scan !== undefined) {
    for (const run of frameRuns(scan.tableFrames)) {
      addLabel(
        run.firstFrame * PAGE_SIZE_4K,
        run.frameCount * PAGE_SIZE_4K,
        run.frameCount === 1 ? "page table" : `page tables (${run.frameCount})`,
        "pageTable",
        "both",
      );
    }
  }

  const disjoint = disjointLabels(labels);
  const endFrame = Math.ceil(memory.endBytes / PAGE_SIZE_4K);
  let bucketFrames = 1;
  while (Math.ceil(endFrame / bucketFrames / columns) > maxRows) bucketFrames *= 2;
  const grids = [
    buildGrid(memory, frames, disjoint, {
      title: "Physical memory",
      firstFrame: 0,
      frameCount: endFrame,
      bucketFrames,
      columns,
    }),
  ];
  if (bucketFrames > 1) {
    grids.push(buildGrid(memory, frames, disjoint, {
      title: "Low memory in detail",
      firstFrame: 0,
      frameCount: Math.min(endFrame, DETAIL_FRAMES),
      bucketFrames: 1,
      columns,
    }));
  }
  const categoryFrames = Object.fromEntries(MEMORY_CATEGORIES.map((c) => [c, 0])) as Record<
    MemoryCategory,
    number
  >;
  const overview = grids[0];
  for (let cell = 0; cell < overview.cellCount; cell++) {
    for (let c = 0; c < MEMORY_CATEGORY_COUNT; c++) {
      categoryFrames[MEMORY_CATEGORIES[c]] += overview.counts[cell * MEMORY_CATEGORY_COUNT + c];
    }
  }

  const frameStats = frames.stats();
  const heapStats = heap.stats();
  const mmioRegions = kernel.interrupts?.mmio?.regions ?? [];
  const mmioRanges: MmioRangeData[] = machine.bus.mmioClaims.map((claim) => ({
    base: claim.base,
    end: claim.end,
    name: claim.device.name,
    decodedBy: "bus" as const,
    virtAddr: undefined,
  }));
  const apic = machine.cpu.localApic;
  if (apic !== undefined) {
    const end = apic.mmioBase + apic.mmioSizeBytes;
    mmioRanges.push({
      base: apic.mmioBase,
      end,
      name: apic.name,
      decodedBy: "cpu",
      virtAddr: undefined,
    });
  }
  return {
    mmioRanges: mmioRanges.sort((a, b) => a.base - b.base).map((range) => ({
      ...range,
      virtAddr: mmioRegions.find((r) => r.physAddr >= range.base && r.physAddr < range.end)
        ?.virtAddr,
    })),
    title: `kernelsim ${kernel.config?.version ?? ""}`.trim(),
    bootloaderName: bootInfo.bootloaderName ?? "",
    cmdline: bootInfo.cmdline ?? "",
    ramBytes: memory.sizeBytes,
    usableBytes: usableBytes(kernel.bootMemory.memoryMap),
    ramEndBytes: memory.endBytes,
    ramRanges: memory.ranges.map(({ base, sizeBytes }) => ({ base, sizeBytes })),
    memoryMap: bootInfo.memoryMap.map(({ base, length, type }) => ({ base, length, type })),
    regions: regions.sort((a, b) => a.base - b.base),
    frames: {
      totalFrames: frameStats.totalFrames,
      freeFrames: frameStats.freeFrames,
      reservedFrames: frameStats.reservedFrames,
      allocatedFrames: frameStats.allocatedFrames,
      pools: frameStats.pools.map((pool) => ({ ...pool })),
    },
    heap: heapReportData(heapStats),
    paging: scan === undefined ? undefined : pagingData(machine, scan),
    categoryFrames,
    grids,
  };
}

/** Paging statistics from a scan and the MMU's counters. */
export function pagingData(machine: Machine, scan: PageTableScan): PagingReportData {
  const tlb = machine.cpu.tlb;
  const stats = tlb.stats;
  return {
    isEnabled: (machine.cpu.cr0 & (1 << 31)) !== 0,
    rootAddress: scan.rootAddress,
    tableFrames: scan.tableFrames.length,
    tablesPerLevel: [...scan.tablesPerLevel],
    pages4K: scan.pages4K,
    pages2M: scan.pages2M,
    pages1G: scan.pages1G,
    mappedBytes: scan.mappedBytes,
    walks: machine.mmu.walks,
    pageFaults: machine.mmu.pageFaults,
    tlb: { hits: stats.hits, misses: stats.misses, flushes: stats.flushes, entries: tlb.size },
  };
}

/** The category of a boot reservation, from its description. */
function reservationCategory(what: string): MemoryCategory {
  if (what.startsWith("first")) return "firmware";
  if (what.startsWith("kernel image")) return "kernel";
  if (what.startsWith("multiboot2")) return "mbi";
  if (what.startsWith("module")) return "module";
  return "reserved";
}

/** Sorted frame numbers as runs of consecutive frames. */
function frameRuns(sortedFrames: readonly number[]): { firstFrame: number; frameCount: number }[] {
  const runs: { firstFrame: number; frameCount: number }[] = [];
  for (const frame of sortedFrames) {
    const last = runs.at(-1);
    if (last !== undefined && last.firstFrame + last.frameCount === frame) last.frameCount++;
    else runs.push({ firstFrame: frame, frameCount: 1 });
  }
  return runs;
}

/**
 * The labels cut so no two share a frame: a label keeps only the frames no
 * label before it in {@linkcode LABEL_PRIORITY} order took. Sorted by first frame.
 */
function disjointLabels(labels: readonly FrameLabel[]): FrameLabel[] {
  const rank = (label: FrameLabel) => {
    const index = LABEL_PRIORITY.indexOf(label.category);
    return index < 0 ? LABEL_PRIORITY.length : index;
  };
  const ordered = [...labels].sort((a, b) => rank(a) - rank(b) || a.firstFrame - b.firstFrame);
  // Taken intervals, sorted and disjoint.
  const taken: { first: number; end: number }[] = [];
  const result: FrameLabel[] = [];
  for (const label of ordered) {
    let start = label.firstFrame;
    const end = label.endFrame;
    const lo = lowerBound(taken, start);
    for (let i = lo; i < taken.length && start < end; i++) {
      const t = taken[i];
      if (t.first >= end) break;
      if (t.first > start) result.push({ ...label, firstFrame: start, endFrame: t.first });
      start = Math.max(start, t.end);
    }
    if (start < end) result.push({ ...label, firstFrame: start, endFrame: end });
    // Record the whole label as taken, merging with what it touches.
    let first = label.firstFrame;
    let last = label.endFrame;
    let i = lo;
    while (i < taken.length && taken[i].first <= last) {
      first = Math.min(first, taken[i].first);
      last = Math.max(last, taken[i].end);
      i++;
    }
    taken.splice(lo, i - lo, { first, end: last });
  }
  return result.sort((a, b) => a.firstFrame - b.firstFrame);
}

/** Index of the first interval whose end is beyond `frame`. */
function lowerBound(taken: readonly { first: number; end: number }[], frame: number): number {
  let lo = 0;
  let hi = taken.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (taken[mid].end < frame) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Fills one grid's cell counts from the allocator's state, RAM ranges and labels. */
function buildGrid(
  memory: PhysicalMemory,
  frames: FrameProvider,
  labels: readonly FrameLabel[],
  shape: {
    title: string;
    firstFrame: number;
    frameCount: number;
    bucketFrames: number;
    columns: number;
  },
): MemoryGridData {
  const { firstFrame, frameCount, bucketFrames } = shape;
  const endFrame = firstFrame + frameCount;
  const cellCount = Math.ceil(frameCount / bucketFrames);
  const counts = new Array<number>(cellCount * MEMORY_CATEGORY_COUNT).fill(0);
  const ramFrames = memory.ranges.map((r) => ({
    first: r.base / PAGE_SIZE_4K,
    end: (r.base + r.sizeBytes) / PAGE_SIZE_4K,
  }));
  for (let cell = 0; cell < cellCount; cell++) {
    const start = firstFrame + cell * bucketFrames;
    const count = Math.min(bucketFrames, endFrame - start);
    const states = countFrameStates(frames, start, count);
    let ram = 0;
    for (const r of ramFrames) {
      ram += Math.max(0, Math.min(r.end, start + count) - Math.max(r.first, start));
    }
    const inPools = count - states.outside;
    const at = cell * MEMORY_CATEGORY_COUNT;
    counts[at + INDEX.hole] = count - ram;
    counts[at + INDEX.unmanaged] = Math.max(0, ram - inPools);
    counts[at + INDEX.free] = states.free;
    counts[at + INDEX.allocated] = states.allocated;
    counts[at + INDEX.reserved] = states.reserved;
  }
  // Labels move frames from the reserved or allocated counts to their category.
  for (const label of labels) {
    const from = Math.max(label.firstFrame, firstFrame);
    const to = Math.min(label.endFrame, endFrame);
    if (from >= to) continue;
    const lastCell = Math.floor((to - 1 - firstFrame) / bucketFrames);
    for (let cell = Math.floor((from - firstFrame) / bucketFrames); cell <= lastCell; cell++) {
      const cellStart = firstFrame + cell * bucketFrames;
      const a = Math.max(from, cellStart);
      const b = Math.min(to, cellStart + bucketFrames);
      const states = countFrameStates(frames, a, b - a);
      const at = cell * MEMORY_CATEGORY_COUNT;
      const takeReserved = label.claim === "allocated"
        ? 0
        : Math.min(states.reserved, counts[at + INDEX.reserved]);
      const takeAllocated = label.claim === "reserved"
        ? 0
        : Math.min(states.allocated, counts[at + INDEX.allocated]);
      counts[at + INDEX.reserved] -= takeReserved;
      counts[at + INDEX.allocated] -= takeAllocated;
      counts[at + INDEX[label.category]] += takeReserved + takeAllocated;
    }
  }
  return {
    title: shape.title,
    firstFrame,
    bucketFrames,
    columns: shape.columns,
    cellCount,
    frameCount,
    counts,
  };
}
