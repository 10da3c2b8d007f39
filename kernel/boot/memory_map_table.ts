/**
 * Formats the firmware memory map as the table the boot log prints.
 *
 * @module
 */

import { hex } from "../../hal/mod.ts";
import type { BootInfoMemoryRegion } from "./multiboot2_parser.ts";

const TYPE_NAMES: Record<number, string> = {
  1: "available",
  2: "reserved",
  3: "ACPI reclaimable",
  4: "ACPI NVS",
  5: "bad RAM",
};

/** The name of a multiboot2 memory type, e.g. `available`. */
export function memoryTypeName(type: number): string {
  return TYPE_NAMES[type] ?? `reserved (type ${type})`;
}

/** Formats a byte count with a binary unit, e.g. `639 KiB`, `1.5 GiB`. */
export function formatBytes(sizeBytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let value = sizeBytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const text = unit === 0 || Number.isInteger(value) ? String(value) : value.toFixed(1);
  return `${text} ${units[unit]}`;
}

/** Formats the memory map as table lines: base, end (inclusive), size, type. */
export function formatMemoryMap(regions: readonly BootInfoMemoryRegion[]): string[] {
  const lines = [`${"base".padEnd(18)} ${"end".padEnd(18)} ${"size".padStart(10)}  type`];
  for (const region of regions) {
    const end = region.length === 0 ? region.base : region.base + region.length - 1;
    lines.push(
      `${hex(region.base, 16)} ${hex(end, 16)} ${formatBytes(region.length).padStart(10)}  ` +
        memoryTypeName(region.type),
    );
  }
  return lines;
}
