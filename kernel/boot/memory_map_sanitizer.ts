/**
 * Sanitizing the firmware memory map before anything trusts it, as Linux's
 * e820 code does (`e820__update_table`): firmware and boot loaders hand over
 * maps with overlapping, unsorted, empty or impossible entries, and the frame
 * allocator, the direct map and the boot reservations all need a map whose
 * regions are sorted, disjoint and real.
 *
 * {@linkcode sanitizeMemoryMap}, in order:
 * 1. keeps at most {@linkcode MAX_MEMORY_MAP_ENTRIES} entries (Linux's e820
 *    table is bounded the same way) and drops empty ones;
 * 2. clips every entry to the CPU's physical address width (MAXPHYADDR):
 *    nothing above it can be addressed;
 * 3. resolves overlaps toward the more restrictive type, ranked
 *    available < ACPI reclaimable < ACPI NVS < reserved (and unknown types)
 *    < bad RAM, so memory one entry calls reserved is never handed out
 *    because another calls it available;
 * 4. merges adjacent regions of the same type;
 * 5. clips RAM regions (available, ACPI reclaimable, NVS) to the RAM the
 *    machine backs, as the memory controller reports it: a region the
 *    firmware calls RAM where there is none would fault on first use.
 *
 * Each correction is one line in `corrections`, addresses in hex, for the
 * boot log's warnings; the boot goes on with the sanitized map. Multiboot2
 * memory map facts: `docs/multiboot2.md`.
 *
 * @module
 */

import { alignDown, alignUp, hex, PAGE_SIZE_4K } from "../../hal/mod.ts";
import { memoryTypeName } from "./memory_map_table.ts";
import type { BootInfoMemoryRegion } from "./multiboot2_parser.ts";

/** Most memory map entries the kernel uses; later ones are ignored with a warning. */
export const MAX_MEMORY_MAP_ENTRIES = 1024;

/** What the machine can back, as the kernel learns it from the hardware. */
export interface MemoryMapLimits {
  /** The physical ranges populated with RAM: sorted, disjoint (`PhysicalMemory.ranges`). */
  readonly ramRanges: readonly { readonly base: number; readonly sizeBytes: number }[];
  /** MAXPHYADDR: the physical address bits the CPU implements (32 to 52). */
  readonly physAddrBits: number;
}

/** The result of {@linkcode sanitizeMemoryMap}. */
export interface SanitizedMemoryMap {
  /** Sorted, disjoint, non-empty regions, adjacent ones of one type merged. */
  readonly regions: readonly BootInfoMemoryRegion[];
  /** One line per correction made, in the order made. */
  readonly corrections: readonly string[];
}

// Multiboot2 memory types (docs/multiboot2.md, "Memory map").
const TYPE_AVAILABLE = 1;
const TYPE_RESERVED = 2;
const TYPE_ACPI_RECLAIMABLE = 3;
const TYPE_NVS = 4;
const TYPE_BADRAM = 5;

/** How restrictive each type is: the higher rank wins an overlap. Unknown types rank as reserved. */
const RANK: Record<number, number> = {
  [TYPE_AVAILABLE]: 0,
  [TYPE_ACPI_RECLAIMABLE]: 1,
  [TYPE_NVS]: 2,
  [TYPE_RESERVED]: 3,
  [TYPE_BADRAM]: 4,
};
const RESERVED_RANK = RANK[TYPE_RESERVED];

/** Types backed by RAM: available, ACPI reclaimable, ACPI NVS. */
const RAM_TYPES: readonly number[] = [TYPE_AVAILABLE, TYPE_ACPI_RECLAIMABLE, TYPE_NVS];

interface Entry {
  readonly index: number;
  readonly start: number;
  readonly end: number;
  readonly type: number;
}

interface Segment {
  start: number;
  end: number;
  type: number;
}

/**
 * Sanitizes a firmware memory map (see the module comment for the steps).
 *
 * @param regions The map as the boot information gives it, in any order.
 * @param limits The RAM the machine backs and the physical address width.
 * @returns The sanitized regions and one line per correction.
 * @example
 * ```ts
 * import { sanitizeMemoryMap } from "./memory_map_sanitizer.ts";
 * const { regions, corrections } = sanitizeMemoryMap(
 *   [
 *     { base: 0x100000, length: 0x700000, type: 1 },
 *     { base: 0x200000, length: 0x100000, type: 2 },
 *   ],
 *   { ramRanges: [{ base: 0, sizeBytes: 0x800000 }], physAddrBits: 46 },
 * );
 * console.assert(regions.length === 3 && regions[1].type === 2);
 * console.assert(corrections.length === 1);
 * ```
 */
export function sanitizeMemoryMap(
  regions: readonly BootInfoMemoryRegion[],
  limits: MemoryMapLimits,
): SanitizedMemoryMap {
  const corrections: string[] = [];
  if (regions.length > MAX_MEMORY_MAP_ENTRIES) {
    corrections.push(
      `memory map has ${regions.length} entries, more than the ${MAX_MEMORY_MAP_ENTRIES} ` +
        `this kernel keeps: the last ${regions.length - MAX_MEMORY_MAP_ENTRIES} ignored`,
    );
  }
  const entries = clipToAddressWidth(
    regions.slice(0, MAX_MEMORY_MAP_ENTRIES),
    limits.physAddrBits,
    corrections,
  );
  const resolved = resolveOverlaps(entries, corrections);
  const merged = mergeAdjacent(resolved);
  const backed = clipRamToBacking(merged, limits.ramRanges, corrections);
  return {
    regions: backed.map((s) => ({ base: s.start, length: s.end - s.start, type: s.type })),
    corrections,
  };
}

/**
 * Bytes of available (type 1) memory in a memory map, each byte counted once
 * even where entries overlap.
 *
 * @param regions A memory map, sanitized or not.
 * @returns The available bytes.
 */
export function usableBytes(regions: readonly BootInfoMemoryRegion[]): number {
  const available = regions
    .filter((region) => region.type === TYPE_AVAILABLE && region.length > 0)
    .map((region) => ({ start: region.base, end: region.base + region.length }))
    .sort((a, b) => a.start - b.start);
  let total = 0;
  let coveredTo = 0;
  for (const { start, end } of available) {
    const from = Math.max(start, coveredTo);
    if (end > from) total += end - from;
    coveredTo = Math.max(coveredTo, end);
  }
  return total;
}

function describe(type: number, start: number, end: number): string {
  return `${memoryTypeName(type)} ${hex(start)}..${hex(end)}`;
}

/** Drops empty entries and clips the rest below 2^physAddrBits. */
function clipToAddressWidth(
  regions: readonly BootInfoMemoryRegion[],
  physAddrBits: number,
  corrections: string[],
): Entry[] {
  const limit = 2 ** physAddrBits;
  const entries: Entry[] = [];
  regions.forEach((region, index) => {
    const start = region.base;
    const end = region.base + region.length;
    if (region.length === 0) {
      corrections.push(
        `memory map: ${memoryTypeName(region.type)} entry at ${hex(start)} is empty, ignored`,
      );
    } else if (start >= limit) {
      corrections.push(
        `memory map: ${describe(region.type, start, end)} lies above the ` +
          `${physAddrBits}-bit physical address width, left out`,
      );
    } else {
      if (end > limit) {
        corrections.push(
          `memory map: ${describe(region.type, start, end)} crosses the ${physAddrBits}-bit ` +
            `physical address width: ${hex(limit)}..${hex(end)} left out`,
        );
      }
      entries.push({ index, start, end: Math.min(end, limit), type: region.type });
    }
  });
  return entries;
}

function rankOf(type: number): number {
  return RANK[type] ?? RESERVED_RANK;
}

/** Whether type `a` wins an overlap with type `b` (ties between unknown types: the higher number). */
function beats(a: number, b: number): boolean {
  const rankA = rankOf(a);
  const rankB = rankOf(b);
  return rankA > rankB || (rankA === rankB && a > b);
}

/**
 * Splits the entries at every boundary and gives each piece the most
 * restrictive type covering it. Warns once for each entry that lost part of
 * itself to a more restrictive one, and once for each entry that repeats part
 * of an earlier entry of its own type.
 */
function resolveOverlaps(entries: readonly Entry[], corrections: string[]): Segment[] {
  const points = [...new Set(entries.flatMap((e) => [e.start, e.end]))].sort((a, b) => a - b);
  const byStart = [...entries].sort((a, b) => a.start - b.start);
  const active: Entry[] = [];
  const segments: Segment[] = [];
  const lost = new Map<Entry, Segment[]>();
  const repeats = new Set<Entry>();
  let next = 0;
  for (let p = 0; p + 1 < points.length; p++) {
    const start = points[p];
    const end = points[p + 1];
    for (let i = active.length - 1; i >= 0; i--) if (active[i].end <= start) active.splice(i, 1);
    while (next < byStart.length && byStart[next].start <= start) active.push(byStart[next++]);
    if (active.length === 0) continue;
    let winner = active[0];
    for (const entry of active) if (beats(entry.type, winner.type)) winner = entry;
    segments.push({ start, end, type: winner.type });
    if (active.length === 1) continue;
    let firstOfWinnerType = winner;
    for (const entry of active) {
      if (entry.type !== winner.type) {
        const pieces = lost.get(entry) ?? [];
        const last = pieces.at(-1);
        if (last !== undefined && last.end === start && last.type === winner.type) last.end = end;
        else pieces.push({ start, end, type: winner.type });
        lost.set(entry, pieces);
      } else if (entry.index < firstOfWinnerType.index) {
        firstOfWinnerType = entry;
      }
    }
    for (const entry of active) {
      if (entry.type === winner.type && entry !== firstOfWinnerType) repeats.add(entry);
    }
  }
  for (const entry of entries) {
    const where = describe(entry.type, entry.start, entry.end);
    const pieces = lost.get(entry);
    if (pieces !== undefined) {
      const kept = pieces.map((s) => `${hex(s.start)}..${hex(s.end)} is ${memoryTypeName(s.type)}`);
      corrections.push(
        `memory map: ${where} overlaps more restrictive entries: ${kept.join(", ")}`,
      );
    } else if (repeats.has(entry)) {
      corrections.push(`memory map: ${where} overlaps another ${memoryTypeName(entry.type)} entry`);
    }
  }
  return segments;
}

function mergeAdjacent(segments: readonly Segment[]): Segment[] {
  const merged: Segment[] = [];
  for (const segment of segments) {
    const last = merged.at(-1);
    if (last !== undefined && last.end === segment.start && last.type === segment.type) {
      last.end = segment.end;
    } else {
      merged.push({ ...segment });
    }
  }
  return merged;
}

/**
 * Cuts the whole frames of RAM-typed segments that the machine does not back
 * out of the map; one warning per piece left out. Memory is backed (and used)
 * in whole frames, so the partial frames at a region's unaligned ends are
 * left as the firmware gave them: nothing allocates or maps them.
 */
function clipRamToBacking(
  segments: readonly Segment[],
  ramRanges: MemoryMapLimits["ramRanges"],
  corrections: string[],
): Segment[] {
  const result: Segment[] = [];
  for (const segment of segments) {
    const innerStart = alignUp(segment.start, PAGE_SIZE_4K);
    const innerEnd = alignDown(segment.end, PAGE_SIZE_4K);
    if (!RAM_TYPES.includes(segment.type) || innerEnd <= innerStart) {
      result.push(segment);
      continue;
    }
    // Walk the frames [innerStart, innerEnd) against the backed ranges.
    let keptFrom = segment.start;
    let cursor = innerStart;
    const leaveOut = (from: number, to: number) => {
      if (from > keptFrom) result.push({ start: keptFrom, end: from, type: segment.type });
      reportUnbacked(segment.type, from, to, corrections);
      keptFrom = to;
    };
    for (const range of ramRanges) {
      const from = Math.max(cursor, range.base);
      const to = Math.min(innerEnd, range.base + range.sizeBytes);
      if (to <= from) continue;
      if (from > cursor) leaveOut(cursor, from);
      cursor = to;
    }
    if (cursor < innerEnd) leaveOut(cursor, innerEnd);
    if (segment.end > keptFrom) {
      result.push({ start: keptFrom, end: segment.end, type: segment.type });
    }
  }
  return result;
}

function reportUnbacked(type: number, start: number, end: number, corrections: string[]): void {
  corrections.push(`memory map: ${describe(type, start, end)} has no RAM behind it, left out`);
}
