import { assert, assertEquals, assertMatch, Xorshift32 } from "../../testing/mod.ts";
import { pcMemoryMap, ramRangesFor } from "../../hal/mod.ts";
import {
  MAX_MEMORY_MAP_ENTRIES,
  type MemoryMapLimits,
  sanitizeMemoryMap,
  usableBytes,
} from "./memory_map_sanitizer.ts";
import type { BootInfoMemoryRegion } from "./multiboot2_parser.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const FRAME = 4096;

/** A machine with RAM from 0 to `ramEndBytes` (whole frames) and a 46-bit CPU. */
function limits(ramEndBytes = 128 * MiB, physAddrBits = 46): MemoryMapLimits {
  return { ramRanges: [{ base: 0, sizeBytes: ramEndBytes }], physAddrBits };
}

/** Rank of a type in the sanitizer's order, for the reference below. */
function rank(type: number): number {
  return ({ 1: 0, 3: 1, 4: 2, 2: 3, 5: 4 } as Record<number, number>)[type] ?? 3;
}

/**
 * Everything a sanitized map must satisfy, checked against the input by
 * brute force at every boundary: sorted, disjoint, non-empty regions; below
 * the address width; each byte of the type of the most restrictive input
 * entry covering it (or absent only if nothing covers it, it is above the
 * width, or it is a RAM type in a whole frame the machine does not back);
 * whole RAM frames all backed. Returns the violations, one line each.
 */
function violations(
  input: readonly BootInfoMemoryRegion[],
  output: readonly BootInfoMemoryRegion[],
  machine: MemoryMapLimits,
): string[] {
  const found: string[] = [];
  const width = 2 ** machine.physAddrBits;
  const isBacked = (pa: number) =>
    machine.ramRanges.some((r) => pa >= r.base && pa < r.base + r.sizeBytes);
  const isRamType = (type: number) => type === 1 || type === 3 || type === 4;
  output.forEach((region, i) => {
    if (region.length <= 0) found.push(`region ${i} is empty`);
    if (region.base + region.length > width) found.push(`region ${i} ends above the width`);
    const previous = output[i - 1];
    if (previous !== undefined && previous.base + previous.length > region.base) {
      found.push(`region ${i} overlaps or is out of order`);
    }
  });
  const kept = input.slice(0, MAX_MEMORY_MAP_ENTRIES).filter((e) => e.length > 0);
  const points = new Set<number>();
  for (const e of [...kept, ...output]) {
    for (const p of [e.base, e.base + e.length]) {
      points.add(p);
      if (p > 0) points.add(p - 1);
      points.add(Math.floor(p / FRAME) * FRAME);
    }
  }
  for (const p of points) {
    const covering = kept.filter((e) => e.base <= p && p < e.base + e.length);
    const expected = covering.reduce<number | undefined>(
      (best, e) =>
        best === undefined || rank(e.type) > rank(best) ||
          (rank(e.type) === rank(best) && e.type > best)
          ? e.type
          : best,
      undefined,
    );
    const got = output.find((r) => r.base <= p && p < r.base + r.length)?.type;
    if (got === expected) continue;
    const frame = Math.floor(p / FRAME) * FRAME;
    const frameIsWhole = covering.some((e) =>
      e.base <= frame && frame + FRAME <= e.base + e.length
    );
    const mayBeLeftOut = p >= width ||
      (expected !== undefined && isRamType(expected) && !isBacked(p) && frameIsWhole);
    if (!(got === undefined && mayBeLeftOut)) {
      found.push(`at 0x${p.toString(16)}: type ${got}, expected ${expected}`);
    }
  }
  for (const region of output) {
    if (!isRamType(region.type)) continue;
    const first = Math.ceil(region.base / FRAME) * FRAME;
    for (let frame = first; frame + FRAME <= region.base + region.length; frame += FRAME) {
      if (!isBacked(frame)) {
        found.push(`whole RAM frame 0x${frame.toString(16)} is not backed`);
        break;
      }
    }
  }
  return found;
}

Deno.test("sanitizeMemoryMap() merges overlapping available entries with one warning", () => {
  const input = [
    { base: 0, length: 0x9fc00, type: 1 },
    { base: 0x100000, length: 0x7f00000, type: 1 },
    { base: 0x200000, length: 0x1000000, type: 1 },
  ];
  const { regions, corrections } = sanitizeMemoryMap(input, limits());
  assertEquals(regions, [
    { base: 0, length: 0x9fc00, type: 1 },
    { base: 0x100000, length: 0x7f00000, type: 1 },
  ]);
  assertEquals(corrections, [
    "memory map: available 0x200000..0x1200000 overlaps another available entry",
  ]);
});

Deno.test("sanitizeMemoryMap() gives an overlap to the more restrictive type", () => {
  const input = [
    { base: 0x100000, length: 0x700000, type: 1 },
    { base: 0x300000, length: 0x100000, type: 2 },
    { base: 0x500000, length: 0x100000, type: 3 },
    { base: 0x580000, length: 0x100000, type: 5 },
  ];
  const { regions, corrections } = sanitizeMemoryMap(input, limits());
  assertEquals(regions, [
    { base: 0x100000, length: 0x200000, type: 1 },
    { base: 0x300000, length: 0x100000, type: 2 },
    { base: 0x400000, length: 0x100000, type: 1 },
    { base: 0x500000, length: 0x80000, type: 3 },
    { base: 0x580000, length: 0x100000, type: 5 },
    { base: 0x680000, length: 0x180000, type: 1 },
  ]);
  assertEquals(corrections, [
    "memory map: available 0x100000..0x800000 overlaps more restrictive entries: " +
    "0x300000..0x400000 is reserved, 0x500000..0x580000 is ACPI reclaimable, " +
    "0x580000..0x680000 is bad RAM",
    "memory map: ACPI reclaimable 0x500000..0x600000 overlaps more restrictive entries: " +
    "0x580000..0x600000 is bad RAM",
  ]);
});

Deno.test("sanitizeMemoryMap() ranks available < ACPI reclaimable < NVS < reserved < bad RAM", () => {
  const types = [1, 3, 4, 2, 5];
  for (let i = 0; i < types.length; i++) {
    for (let j = 0; j < types.length; j++) {
      const { regions } = sanitizeMemoryMap([
        { base: 0x100000, length: 0x100000, type: types[i] },
        { base: 0x100000, length: 0x100000, type: types[j] },
      ], limits());
      assertEquals(regions, [{ base: 0x100000, length: 0x100000, type: types[Math.max(i, j)] }]);
    }
  }
  // An unknown type counts as reserved; GRUB's 20 (EFI runtime code) beats 2 only by number.
  const { regions } = sanitizeMemoryMap([
    { base: 0x100000, length: 0x100000, type: 20 },
    { base: 0x100000, length: 0x100000, type: 1 },
  ], limits());
  assertEquals(regions, [{ base: 0x100000, length: 0x100000, type: 20 }]);
});

Deno.test("sanitizeMemoryMap() leaves out RAM the machine does not back, in hex, and boots on", () => {
  const input = [
    { base: 0, length: 0x9fc00, type: 1 },
    { base: 0x100000, length: 0x7f00000, type: 1 },
    { base: 0x20_0000_0000, length: 0x4000_0000, type: 1 },
  ];
  const { regions, corrections } = sanitizeMemoryMap(input, limits());
  assertEquals(regions, [
    { base: 0, length: 0x9fc00, type: 1 }, // the partial frame at 0x9f000 is left alone
    { base: 0x100000, length: 0x7f00000, type: 1 },
  ]);
  assertEquals(corrections, [
    "memory map: available 0x2000000000..0x2040000000 has no RAM behind it, left out",
  ]);
});

Deno.test("sanitizeMemoryMap() cuts holes where RAM is missing inside an available region", () => {
  const machine: MemoryMapLimits = {
    ramRanges: [{ base: 0, sizeBytes: 0x105000 }, { base: 0x106000, sizeBytes: 0x7efa000 }],
    physAddrBits: 46,
  };
  const { regions, corrections } = sanitizeMemoryMap(
    [{ base: 0x100000, length: 0x7f00000, type: 1 }],
    machine,
  );
  assertEquals(regions, [
    { base: 0x100000, length: 0x5000, type: 1 },
    { base: 0x106000, length: 0x7efa000, type: 1 },
  ]);
  assertEquals(corrections, [
    "memory map: available 0x105000..0x106000 has no RAM behind it, left out",
  ]);
});

Deno.test("sanitizeMemoryMap() clips entries to the CPU's physical address width", () => {
  const input = [
    { base: 0x100000, length: 0x7f00000, type: 1 },
    { base: 2 ** 50, length: 0x4000_0000, type: 1 },
    { base: 2 ** 36 - 0x1000, length: 0x2000, type: 2 },
  ];
  const { regions, corrections } = sanitizeMemoryMap(input, limits(128 * MiB, 36));
  assertEquals(regions, [
    { base: 0x100000, length: 0x7f00000, type: 1 },
    { base: 2 ** 36 - 0x1000, length: 0x1000, type: 2 },
  ]);
  assertEquals(corrections, [
    "memory map: available 0x4000000000000..0x4000040000000 lies above the 36-bit " +
    "physical address width, left out",
    "memory map: reserved 0xffffff000..0x1000001000 crosses the 36-bit physical address " +
    "width: 0x1000000000..0x1000001000 left out",
  ]);
});

Deno.test("sanitizeMemoryMap() sorts, drops empty entries and merges adjacent ones of one type", () => {
  const { regions, corrections } = sanitizeMemoryMap([
    { base: 0x200000, length: 0x100000, type: 1 },
    { base: 0x100000, length: 0x100000, type: 1 },
    { base: 0x50000, length: 0, type: 1 },
    { base: 0x300000, length: 0x1000, type: 2 },
  ], limits());
  assertEquals(regions, [
    { base: 0x100000, length: 0x200000, type: 1 },
    { base: 0x300000, length: 0x1000, type: 2 },
  ]);
  assertEquals(corrections, ["memory map: available entry at 0x50000 is empty, ignored"]);
});

Deno.test("sanitizeMemoryMap() keeps at most MAX_MEMORY_MAP_ENTRIES entries", () => {
  const input = Array.from({ length: MAX_MEMORY_MAP_ENTRIES + 5 }, (_, i) => ({
    base: i * 2 * FRAME,
    length: FRAME,
    type: 1,
  }));
  const { regions, corrections } = sanitizeMemoryMap(input, limits(64 * MiB));
  assertEquals(regions.length, MAX_MEMORY_MAP_ENTRIES);
  assertEquals(corrections, [
    `memory map has ${MAX_MEMORY_MAP_ENTRIES + 5} entries, more than the ` +
    `${MAX_MEMORY_MAP_ENTRIES} this kernel keeps: the last 5 ignored`,
  ]);
});

Deno.test("sanitizeMemoryMap() changes nothing in a clean PC memory map", () => {
  for (const ramBytes of [16 * MiB, 128 * MiB, 5 * GiB, 64 * GiB]) {
    const map = pcMemoryMap(ramBytes);
    const ramRanges = ramRangesFor(map);
    const { regions, corrections } = sanitizeMemoryMap(map, { ramRanges, physAddrBits: 46 });
    assertEquals(regions, map);
    assertEquals(corrections, []);
  }
});

Deno.test("sanitizeMemoryMap() holds its invariants on random firmware maps", () => {
  const random = new Xorshift32(0x5a11);
  const types = [1, 1, 1, 2, 3, 4, 5, 20];
  for (let round = 0; round < 400; round++) {
    const count = 1 + random.below(12);
    const input = Array.from({ length: count }, () => {
      // Frame-aligned and unaligned bases, some far above RAM or the width.
      const far = random.below(10) === 0;
      const base = far ? random.below(2 ** 20) * 2 ** 28 : random.below(0x2000) * 0x800;
      return {
        base,
        length: random.below(0x1000) * 0x400,
        type: types[random.below(types.length)],
      };
    });
    const machine: MemoryMapLimits = {
      ramRanges: [
        { base: 0, sizeBytes: 0x9f000 },
        { base: 0x100000, sizeBytes: (1 + random.below(16)) * MiB },
      ],
      physAddrBits: 36 + random.below(17),
    };
    const { regions, corrections } = sanitizeMemoryMap(input, machine);
    assertEquals(violations(input, regions, machine), [], JSON.stringify(input));
    for (const line of corrections) assert(!/\b\d{5,}\b/.test(line), `decimal address: ${line}`);
    assert(usableBytes(regions) <= usableBytes(input));
  }
});

Deno.test("The sanitized-map checker catches a map that ignores an overlap", () => {
  const input = [
    { base: 0x100000, length: 0x700000, type: 1 },
    { base: 0x300000, length: 0x100000, type: 2 },
  ];
  // What the kernel did before sanitizing: use the entries as they are.
  const found = violations(input, input, limits());
  assert(found.length > 0);
  assertMatch(found[0], /overlaps or is out of order/);
  const reservedAsAvailable = [{ base: 0x100000, length: 0x700000, type: 1 }];
  assertMatch(violations(input, reservedAsAvailable, limits()).join("\n"), /expected 2/);
  const unbacked = [{ base: 0x100000, length: 256 * MiB, type: 1 }];
  assertMatch(violations(unbacked, unbacked, limits()).join("\n"), /not backed/);
});
