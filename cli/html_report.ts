/**
 * `--report html FILE`: one self-contained HTML page that shows the physical
 * memory of the booted machine as a picture. No scripts, fonts, images or
 * style sheets are loaded from anywhere: the CSS and the SVG are inline, and
 * tooltips are SVG `<title>` elements, which every browser shows on hover.
 *
 * The page has a header with the totals (RAM, frames, heap, paging), a bar
 * of what the RAM is used for, the memory as a grid of cells (one row per
 * fixed span of physical addresses, holes without RAM folded into a band),
 * the first 16 MiB frame by frame on large machines, a legend, and tables:
 * what is where, the firmware memory map, the allocator's pools and the
 * heap's size classes.
 *
 * Rendering is linear in the number of cells (at most about 10,000 whatever
 * the RAM size): a 64 GiB machine renders in a few milliseconds.
 *
 * @module
 */

import { formatVirtAddr, type VirtAddr } from "../hal/mod.ts";
import { formatBytes, memoryTypeName } from "../kernel/boot/mod.ts";
import { plural } from "../kernel/mod.ts";
import {
  type HtmlReportData,
  type LabelledRange,
  MEMORY_CATEGORIES,
  MEMORY_CATEGORY_COUNT,
  type MemoryCategory,
  type MemoryGridData,
} from "./html_report_data.ts";

export type { HtmlReportData } from "./html_report_data.ts";

/** How a category looks and what the legend calls it. */
export interface CategoryStyle {
  /** Legend text. */
  readonly label: string;
  /** Fill colour (or an SVG paint). */
  readonly fill: string;
  /** Swatch CSS background for the legend and tables. */
  readonly swatch: string;
  /** One sentence for the legend's tooltip. */
  readonly description: string;
}

const HATCH = "repeating-linear-gradient(45deg,#e9ecef 0 3px,#ced4da 3px 4px)";

/** The look of every category. */
export const CATEGORY_STYLES: Readonly<Record<MemoryCategory, CategoryStyle>> = {
  free: {
    label: "free",
    fill: "#c9ecd1",
    swatch: "#c9ecd1",
    description: "Free frames the allocator can hand out",
  },
  allocated: {
    label: "allocated",
    fill: "#74c0fc",
    swatch: "#74c0fc",
    description: "Allocated frames not otherwise identified",
  },
  heapSlab: {
    label: "heap slabs",
    fill: "#fab005",
    swatch: "#fab005",
    description: "kmem heap slab caches (objects up to 2 KiB)",
  },
  heapArena: {
    label: "heap arenas",
    fill: "#fd7e14",
    swatch: "#fd7e14",
    description: "kmem heap arenas (large blocks)",
  },
  heapMeta: {
    label: "heap metadata",
    fill: "#a0522d",
    swatch: "#a0522d",
    description: "kmem heap root descriptor and owner table",
  },
  pageTable: {
    label: "page tables",
    fill: "#e03131",
    swatch: "#e03131",
    description: "Frames holding PML4, PDPT, PD and PT tables",
  },
  allocator: {
    label: "allocator metadata",
    fill: "#0ca678",
    swatch: "#0ca678",
    description: "The frame allocator's bitmaps, pool descriptors and per-frame reference counts",
  },
  kernel: {
    label: "kernel image",
    fill: "#1864ab",
    swatch: "#1864ab",
    description: "The kernel image the boot loader loaded at 1 MiB",
  },
  module: {
    label: "modules",
    fill: "#7048e8",
    swatch: "#7048e8",
    description: "Multiboot2 modules",
  },
  mbi: {
    label: "multiboot2 info",
    fill: "#e64980",
    swatch: "#e64980",
    description: "The boot information structure (MBI)",
  },
  firmware: {
    label: "first 1 MiB",
    fill: "#495057",
    swatch: "#495057",
    description: "BIOS and real-mode area, never handed out",
  },
  reserved: {
    label: "reserved",
    fill: "#adb5bd",
    swatch: "#adb5bd",
    description: "Reserved frames not otherwise identified (early boot allocations)",
  },
  unmanaged: {
    label: "RAM outside the pools",
    fill: "#e9ecef",
    swatch: "#e9ecef",
    description: "RAM the allocator does not manage (ACPI tables, partial frames)",
  },
  hole: {
    label: "no RAM",
    fill: "url(#hatch)",
    swatch: HATCH,
    description: "Addresses without RAM: the legacy hole below 1 MiB, the PCI hole",
  },
};

/** Legend order: what a person looks for first. */
const LEGEND_ORDER: readonly MemoryCategory[] = [
  "free",
  "allocated",
  "heapSlab",
  "heapArena",
  "heapMeta",
  "pageTable",
  "allocator",
  "kernel",
  "module",
  "mbi",
  "firmware",
  "reserved",
  "unmanaged",
  "hole",
];

/** Categories that colour a cell whenever present, largest first (the others go by majority). */
const LABEL_CATEGORIES: ReadonlySet<MemoryCategory> = new Set<MemoryCategory>([
  "firmware",
  "kernel",
  "mbi",
  "module",
  "allocator",
  "pageTable",
  "heapMeta",
  "heapSlab",
  "heapArena",
]);

const FRAME_BYTES = 4096;

// Grid geometry, in SVG user units (pixels at 100%).
const CELL_PITCH_X = 7;
const CELL_PITCH_Y = 9;
const CELL_GAP = 1;
const ADDRESS_WIDTH = 92;
const NOTES_WIDTH = 290;
/** Rows between address labels. */
const ROWS_PER_LABEL = 4;
const HOLE_BAND_HEIGHT = 20;
const NOTE_LINE_HEIGHT = 12;

/**
 * Renders the report as one HTML document.
 *
 * @param data What {@linkcode collectHtmlReportData} gathered.
 * @returns The page, starting with `<!DOCTYPE html>`.
 */
export function renderHtmlReport(data: HtmlReportData): string {
  const parts: string[] = [];
  parts.push(
    "<!DOCTYPE html>\n",
    '<html lang="en">\n<head>\n<meta charset="utf-8">\n',
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
    `<title>${escapeHtml(data.title)}: physical memory</title>\n`,
    `<style>${STYLE}</style>\n</head>\n<body>\n`,
  );
  parts.push(renderHeader(data));
  parts.push("<main>\n");
  parts.push(renderSummary(data));
  parts.push(renderUsageBar(data));
  parts.push(renderLegend(data));
  for (const grid of data.grids) parts.push(renderGrid(data, grid));
  parts.push(renderRegionsTable(data));
  parts.push(renderMemoryMapTable(data));
  parts.push(renderMmioTable(data));
  parts.push(renderPoolsTable(data));
  parts.push(renderHeapTable(data));
  parts.push(
    "</main>\n<footer>Every number on this page was read back from the kernel's own structures ",
    "in simulated RAM: allocator bitmaps, heap owner table, page tables.</footer>\n",
    "</body>\n</html>\n",
  );
  return parts.join("");
}

function renderHeader(data: HtmlReportData): string {
  const facts = [
    `${formatBytes(data.ramBytes)} RAM`,
    data.bootloaderName === "" ? "" : `booted by ${escapeHtml(data.bootloaderName)}`,
    `cmdline <code>${data.cmdline === "" ? "(empty)" : escapeHtml(data.cmdline)}</code>`,
  ].filter((fact) => fact !== "");
  return `<header><h1>${escapeHtml(data.title)} <span>physical memory</span></h1>` +
    `<p>${facts.join(" · ")}</p></header>\n`;
}

function renderSummary(data: HtmlReportData): string {
  const { frames, heap, paging } = data;
  const cards: string[] = [];
  cards.push(card("Memory", formatBytes(data.ramBytes), [
    ["usable", formatBytes(data.usableBytes)],
    ["highest address", hexAddress(data.ramEndBytes - 1, data.ramEndBytes)],
    ["RAM ranges", String(data.ramRanges.length)],
  ]));
  const total = Math.max(1, frames.totalFrames);
  const bar = `<div class="minibar" title="free / allocated / reserved">` +
    `<i style="width:${
      cssPct(frames.freeFrames / total)
    };background:${CATEGORY_STYLES.free.fill}"></i>` +
    `<i style="width:${
      cssPct(frames.allocatedFrames / total)
    };background:${CATEGORY_STYLES.allocated.fill}"></i>` +
    `<i style="width:${
      cssPct(frames.reservedFrames / total)
    };background:${CATEGORY_STYLES.reserved.fill}"></i>` +
    `</div>`;
  cards.push(card("Frames", `${formatCount(frames.freeFrames)} free`, [
    [
      "total",
      `${formatCount(frames.totalFrames)} (${formatBytes(frames.totalFrames * FRAME_BYTES)})`,
    ],
    [
      "allocated",
      `${formatCount(frames.allocatedFrames)} (${
        formatBytes(frames.allocatedFrames * FRAME_BYTES)
      })`,
    ],
    [
      "reserved",
      `${formatCount(frames.reservedFrames)} (${formatBytes(frames.reservedFrames * FRAME_BYTES)})`,
    ],
    ["pools", String(frames.pools.length)],
  ], bar));
  cards.push(card("Heap", `${formatBytes(heap.bytesInUse)} in use`, [
    ["mapped", `${formatBytes(heap.bytesMapped)} (${countOf(heap.framesMapped, "frame")})`],
    ["free inside", formatBytes(heap.bytesFree)],
    ["live allocations", formatCount(heap.liveAllocations)],
    ["kmalloc / kfree", `${formatCount(heap.allocations)} / ${formatCount(heap.frees)}`],
  ]));
  if (paging === undefined) {
    cards.push(card("Paging", "no page tables", [["CR3", "0"]]));
  } else {
    const lookups = paging.tlb.hits + paging.tlb.misses;
    const sizes = [
      [paging.pages4K, "4K"],
      [paging.pages2M, "2M"],
      [paging.pages1G, "1G"],
    ] as const;
    cards.push(card("Paging", `${formatBytes(paging.mappedBytes)} mapped`, [
      ["paging (CR0.PG)", paging.isEnabled ? "on" : "off"],
      ["page tables", countOf(paging.tableFrames, "frame")],
      ["per level", paging.tablesPerLevel.join(" / ")],
      [
        "pages",
        sizes.filter(([n]) => n > 0).map(([n, size]) => `${formatCount(n)}×${size}`).join(" ") ||
        "none",
      ],
      [
        "TLB hits",
        lookups === 0
          ? "no lookups yet"
          : `${pct(paging.tlb.hits / lookups)} of ${formatCount(lookups)}`,
      ],
      ["walks / faults", `${formatCount(paging.walks)} / ${formatCount(paging.pageFaults)}`],
    ]));
  }
  return `<section class="cards">${cards.join("")}</section>\n`;
}

function card(
  title: string,
  headline: string,
  rows: readonly [string, string][],
  extra = "",
): string {
  const dl = rows.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join("");
  return `<div class="card"><h2>${escapeHtml(title)}</h2><p class="big">${
    escapeHtml(headline)
  }</p>` +
    `${extra}<dl>${dl}</dl></div>`;
}

/** One bar: what the machine's RAM is used for, proportionally. */
function renderUsageBar(data: HtmlReportData): string {
  const ramFrames = MEMORY_CATEGORIES.filter((c) => c !== "hole")
    .reduce((sum, c) => sum + data.categoryFrames[c], 0);
  if (ramFrames === 0) return "";
  const segments = LEGEND_ORDER.filter((c) => c !== "hole" && data.categoryFrames[c] > 0).map(
    (c) => {
      const frames = data.categoryFrames[c];
      const style = CATEGORY_STYLES[c];
      // Tiny shares stay visible as a sliver.
      const width = Math.max(frames / ramFrames * 100, 0.25);
      return `<i style="flex-grow:${width.toFixed(3)};background:${style.swatch}" title="${
        escapeHtml(
          `${style.label}: ${formatBytes(frames * FRAME_BYTES)} (${
            pct(frames / ramFrames)
          } of RAM)`,
        )
      }"></i>`;
    },
  );
  const shares = LEGEND_ORDER.filter((c) => c !== "hole" && data.categoryFrames[c] > 0)
    .sort((a, b) => data.categoryFrames[b] - data.categoryFrames[a])
    .slice(0, 6)
    .map((c) =>
      `<span><span class="sw" style="background:${CATEGORY_STYLES[c].swatch}"></span> ${
        escapeHtml(CATEGORY_STYLES[c].label)
      } ${escapeHtml(pct(data.categoryFrames[c] / ramFrames))}</span>`
    );
  return `<section class="panel"><h2>What the RAM holds</h2><div class="usage">${
    segments.join("")
  }</div><p class="shares">${shares.join("")}</p></section>\n`;
}

function renderLegend(data: HtmlReportData): string {
  const items = LEGEND_ORDER.filter((c) => data.categoryFrames[c] > 0 || c === "free").map((c) => {
    const style = CATEGORY_STYLES[c];
    const frames = data.categoryFrames[c];
    return `<li title="${
      escapeHtml(style.description)
    }"><span class="sw" style="background:${style.swatch}"></span>` +
      `<b>${escapeHtml(style.label)}</b> <small>${formatBytes(frames * FRAME_BYTES)} · ${
        countOf(frames, "frame")
      }</small></li>`;
  });
  return `<section class="panel"><h2>Legend</h2><ul class="legend">${
    items.join("")
  }</ul></section>\n`;
}

/** The colour of a cell: a labelled thing if any is there (the largest), else the majority. */
function cellCategory(counts: readonly number[], cell: number): number {
  const at = cell * MEMORY_CATEGORY_COUNT;
  let best = -1;
  let bestCount = 0;
  for (let c = 0; c < MEMORY_CATEGORY_COUNT; c++) {
    const n = counts[at + c];
    if (n > bestCount && LABEL_CATEGORIES.has(MEMORY_CATEGORIES[c])) {
      best = c;
      bestCount = n;
    }
  }
  if (best >= 0) return best;
  for (let c = 0; c < MEMORY_CATEGORY_COUNT; c++) {
    const n = counts[at + c];
    if (n > bestCount) {
      best = c;
      bestCount = n;
    }
  }
  return best < 0 ? 0 : best;
}

/** A row of the grid as drawn: cells, or a folded band of rows without RAM. */
type GridRow =
  | { kind: "cells"; row: number }
  | { kind: "hole"; firstRow: number; rowCount: number };

function renderGrid(data: HtmlReportData, grid: MemoryGridData): string {
  const { columns, bucketFrames, cellCount, counts } = grid;
  const holeIndex = MEMORY_CATEGORIES.indexOf("hole");
  const rowCount = Math.ceil(cellCount / columns);
  const rowFrames = columns * bucketFrames;
  // Fold rows whose every frame is a hole.
  const rows: GridRow[] = [];
  for (let row = 0; row < rowCount; row++) {
    let isHole = true;
    for (let cell = row * columns; cell < Math.min(cellCount, (row + 1) * columns); cell++) {
      const cellFrames = Math.min(bucketFrames, grid.frameCount - cell * bucketFrames);
      if (counts[cell * MEMORY_CATEGORY_COUNT + holeIndex] !== cellFrames) {
        isHole = false;
        break;
      }
    }
    const last = rows.at(-1);
    if (isHole && last?.kind === "hole") last.rowCount++;
    else if (isHole) rows.push({ kind: "hole", firstRow: row, rowCount: 1 });
    else rows.push({ kind: "cells", row });
  }

  const gridWidth = columns * CELL_PITCH_X;
  const addressEnd = (grid.firstFrame + grid.frameCount) * FRAME_BYTES;
  const body: string[] = [];
  const rowY: number[] = new Array(rowCount).fill(0);
  let y = 0;
  let cellsDrawn = 0;
  for (const entry of rows) {
    if (entry.kind === "hole") {
      const start = (grid.firstFrame + entry.firstRow * rowFrames) * FRAME_BYTES;
      const end = Math.min(
        (grid.firstFrame + (entry.firstRow + entry.rowCount) * rowFrames) * FRAME_BYTES,
        addressEnd,
      );
      for (let r = entry.firstRow; r < entry.firstRow + entry.rowCount; r++) rowY[r] = y;
      const mid = y + HOLE_BAND_HEIGHT / 2;
      body.push(
        `<g class="holeband"><title>${
          escapeHtml(`No RAM: ${hexRange(start, end, addressEnd)} (${formatBytes(end - start)})`)
        }</title>` +
          `<rect x="${ADDRESS_WIDTH}" y="${y + 3}" width="${gridWidth - CELL_GAP}" height="${
            HOLE_BAND_HEIGHT - 6
          }" fill="url(#hatch)"/>` +
          `<text x="${ADDRESS_WIDTH + gridWidth / 2}" y="${
            mid + 3.5
          }" text-anchor="middle" class="holetext">` +
          `${
            escapeHtml(
              `no RAM · ${hexAddress(start, addressEnd)} – ${hexAddress(end - 1, addressEnd)} · ${
                formatBytes(end - start)
              }`,
            )
          }</text>` +
          `<text x="${ADDRESS_WIDTH - 6}" y="${mid + 3}" text-anchor="end" class="addr">${
            hexAddress(start, addressEnd)
          }</text></g>`,
      );
      y += HOLE_BAND_HEIGHT;
      continue;
    }
    const row = entry.row;
    rowY[row] = y;
    const rowStartCell = row * columns;
    const rowEndCell = Math.min(cellCount, rowStartCell + columns);
    const rowAddress = (grid.firstFrame + rowStartCell * bucketFrames) * FRAME_BYTES;
    const isAfterHole = rows.some((r) => r.kind === "hole" && r.firstRow + r.rowCount === row);
    if (row % ROWS_PER_LABEL === 0 || isAfterHole || row === rowCount - 1) {
      body.push(
        `<text x="${ADDRESS_WIDTH - 6}" y="${
          y + CELL_PITCH_Y - 2
        }" text-anchor="end" class="addr">${hexAddress(rowAddress, addressEnd)}</text>`,
      );
    }
    // Runs of cells with the same colour become one rect with one tooltip.
    let runStart = rowStartCell;
    let runCategory = cellCategory(counts, runStart);
    for (let cell = rowStartCell + 1; cell <= rowEndCell; cell++) {
      const category = cell < rowEndCell ? cellCategory(counts, cell) : -1;
      if (category === runCategory) continue;
      body.push(renderRun(data, grid, runStart, cell, runCategory, y, addressEnd));
      cellsDrawn++;
      runStart = cell;
      runCategory = category;
    }
    y += CELL_PITCH_Y;
  }

  // Notes to the right: where each named range is, with a leader line to its row.
  const notes = gridNotes(data.regions, grid);
  const noteParts: string[] = [];
  let nextFreeY = 0;
  const noteX = ADDRESS_WIDTH + gridWidth + 16;
  for (const note of notes) {
    const rowIndex = Math.min(rowCount - 1, Math.floor((note.frame - grid.firstFrame) / rowFrames));
    const targetY = rowY[rowIndex] + CELL_PITCH_Y / 2;
    const cellX = ADDRESS_WIDTH +
      (Math.floor((note.frame - grid.firstFrame) / bucketFrames) % columns) * CELL_PITCH_X +
      (CELL_PITCH_X - CELL_GAP) / 2;
    const textY = Math.max(targetY, nextFreeY);
    nextFreeY = textY + NOTE_LINE_HEIGHT;
    const style = CATEGORY_STYLES[note.category];
    noteParts.push(
      `<g class="note"><title>${escapeHtml(note.tooltip)}</title>` +
        `<polyline points="${ADDRESS_WIDTH + gridWidth + 1},${targetY} ${
          ADDRESS_WIDTH + gridWidth + 6
        },${targetY} ${noteX - 3},${textY}" />` +
        `<circle cx="${cellX}" cy="${
          targetY - 0.5
        }" r="2.4" fill="#fff" stroke="#212529" stroke-width="1.1"/>` +
        `<rect x="${noteX}" y="${textY - 4}" width="8" height="8" rx="1.5" fill="${style.fill}"/>` +
        `<text x="${noteX + 12}" y="${textY + 3.5}">${escapeHtml(note.text)}</text></g>`,
    );
  }
  const height = Math.max(y, nextFreeY) + 4;
  const width = ADDRESS_WIDTH + gridWidth + NOTES_WIDTH;
  const cellBytes = bucketFrames * FRAME_BYTES;
  const caption = `1 cell = ${formatBytes(cellBytes)}${` (${countOf(bucketFrames, "frame")})`}` +
    ` · 1 row = ${formatBytes(rowFrames * FRAME_BYTES)} · ${
      hexAddress(grid.firstFrame * FRAME_BYTES, addressEnd)
    } – ${hexAddress(addressEnd - 1, addressEnd)}` +
    (bucketFrames > 1 ? " · a cell shows the largest labelled thing in it, else its majority" : "");
  return `<section class="panel grid"><h2>${escapeHtml(grid.title)}</h2><p class="caption">${
    escapeHtml(caption)
  }</p>` +
    `<svg class="memgrid" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" ` +
    `aria-label="${escapeHtml(grid.title)}" data-cells="${cellCount}" data-runs="${cellsDrawn}">` +
    `<defs><pattern id="hatch" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">` +
    `<rect width="4" height="4" fill="#f1f3f5"/><rect width="1.2" height="4" fill="#ced4da"/></pattern></defs>` +
    body.join("") + noteParts.join("") + `</svg></section>\n`;
}

/** One run of same-coloured cells in a row, with its tooltip. */
function renderRun(
  data: HtmlReportData,
  grid: MemoryGridData,
  firstCell: number,
  endCell: number,
  category: number,
  y: number,
  addressEnd: number,
): string {
  const { columns, bucketFrames, counts } = grid;
  const sums = new Array<number>(MEMORY_CATEGORY_COUNT).fill(0);
  for (let cell = firstCell; cell < endCell; cell++) {
    for (let c = 0; c < MEMORY_CATEGORY_COUNT; c++) {
      sums[c] += counts[cell * MEMORY_CATEGORY_COUNT + c];
    }
  }
  const startFrame = grid.firstFrame + firstCell * bucketFrames;
  const endFrame = Math.min(
    grid.firstFrame + endCell * bucketFrames,
    grid.firstFrame + grid.frameCount,
  );
  const start = startFrame * FRAME_BYTES;
  const end = endFrame * FRAME_BYTES;
  const parts = LEGEND_ORDER.map((c) => [c, sums[MEMORY_CATEGORIES.indexOf(c)]] as const)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([c, n]) =>
      `${CATEGORY_STYLES[c].label} ${formatCount(n)} (${formatBytes(n * FRAME_BYTES)})`
    );
  const names = data.regions.filter((r) => r.base < end && r.base + r.length > start).map((r) =>
    r.what
  );
  const tooltip =
    `${hexRange(start, end, addressEnd)} · ${formatBytes(end - start)}\n${parts.join("\n")}` +
    (names.length > 0
      ? `\n— ${names.slice(0, 8).join("\n— ")}${
        names.length > 8 ? `\n— and ${names.length - 8} more` : ""
      }`
      : "");
  const name = MEMORY_CATEGORIES[category];
  const x = ADDRESS_WIDTH + (firstCell % columns) * CELL_PITCH_X;
  const w = (endCell - firstCell) * CELL_PITCH_X - CELL_GAP;
  return `<rect class="c-${name}" x="${x}" y="${y}" width="${w}" height="${
    CELL_PITCH_Y - CELL_GAP - 1
  }" ` +
    `fill="${CATEGORY_STYLES[name].fill}"><title>${escapeHtml(tooltip)}</title></rect>`;
}

/** A note beside the grid. */
interface GridNote {
  frame: number;
  text: string;
  tooltip: string;
  category: MemoryCategory;
}

/** The named ranges worth a note beside `grid`: reservations, allocator state, heap root, first page table. */
function gridNotes(regions: readonly LabelledRange[], grid: MemoryGridData): GridNote[] {
  const firstByte = grid.firstFrame * FRAME_BYTES;
  const endByte = (grid.firstFrame + grid.frameCount) * FRAME_BYTES;
  const notes: GridNote[] = [];
  let pageTableRuns = 0;
  let pageTableFrames = 0;
  let firstPageTable: LabelledRange | undefined;
  for (const region of regions) {
    if (region.base >= endByte || region.base + region.length <= firstByte) continue;
    if (region.category === "pageTable") {
      pageTableRuns++;
      pageTableFrames += region.length / FRAME_BYTES;
      firstPageTable ??= region;
      continue;
    }
    notes.push({
      frame: Math.floor(Math.max(region.base, firstByte) / FRAME_BYTES),
      text: shorten(`${region.what} · ${formatBytes(region.length)}`, 46),
      tooltip: `${region.what}\n${hexRange(region.base, region.base + region.length, endByte)} (${
        formatBytes(region.length)
      })`,
      category: region.category,
    });
  }
  if (firstPageTable !== undefined) {
    notes.push({
      frame: Math.floor(firstPageTable.base / FRAME_BYTES),
      text: `page tables · ${countOf(pageTableFrames, "frame")}${
        pageTableRuns > 1 ? ` in ${pageTableRuns} runs` : ""
      }`,
      tooltip: `${countOf(pageTableFrames, "page-table frame")}; the first at ${
        hexAddress(firstPageTable.base, endByte)
      }`,
      category: "pageTable",
    });
  }
  return notes.sort((a, b) => a.frame - b.frame);
}

function renderRegionsTable(data: HtmlReportData): string {
  const end = data.ramEndBytes;
  const rows = data.regions.map((r) =>
    `<tr><td><span class="sw" style="background:${
      CATEGORY_STYLES[r.category].swatch
    }"></span></td>` +
    `<td class="mono">${hexAddress(r.base, end)}</td><td class="mono">${
      hexAddress(r.base + r.length - 1, end)
    }</td>` +
    `<td class="num">${formatBytes(r.length)}</td><td>${escapeHtml(r.what)}</td></tr>`
  );
  return `<section class="panel"><h2>What is where</h2><table class="regions"><thead><tr><th></th><th>start</th><th>end</th>` +
    `<th class="num">size</th><th>what</th></tr></thead><tbody>${
      rows.join("")
    }</tbody></table></section>\n`;
}

const MEMORY_TYPE_SWATCH: Readonly<Record<number, string>> = {
  1: CATEGORY_STYLES.free.swatch,
  3: CATEGORY_STYLES.unmanaged.swatch,
  4: CATEGORY_STYLES.unmanaged.swatch,
};

function renderMemoryMapTable(data: HtmlReportData): string {
  const end = Math.max(data.ramEndBytes, ...data.memoryMap.map((r) => r.base + r.length));
  const rows = data.memoryMap.map((r) =>
    `<tr class="mmap"><td><span class="sw" style="background:${
      MEMORY_TYPE_SWATCH[r.type] ?? CATEGORY_STYLES.reserved.swatch
    }"></span></td>` +
    `<td class="mono">${hexAddress(r.base, end)}</td><td class="mono">${
      hexAddress(r.base + Math.max(r.length, 1) - 1, end)
    }</td>` +
    `<td class="num">${formatBytes(r.length)}</td><td>${
      escapeHtml(memoryTypeName(r.type))
    }</td></tr>`
  );
  return `<section class="panel half"><h2>Firmware memory map</h2><table><thead><tr><th></th><th>base</th><th>end</th>` +
    `<th class="num">size</th><th>type</th></tr></thead><tbody>${
      rows.join("")
    }</tbody></table></section>\n`;
}

/** The device register ranges (MMIO): not RAM, outside the grids, mapped uncached by the kernel. */
function renderMmioTable(data: HtmlReportData): string {
  const rows = data.mmioRanges.map((range) =>
    `<tr class="mmio"><td class="mono">${hexAddress(range.base, 2 ** 32)}</td>` +
    `<td class="mono">${hexAddress(range.end - 1, 2 ** 32)}</td>` +
    `<td class="num">${formatBytes(range.end - range.base)}</td><td>${
      escapeHtml(range.name)
    }</td>` +
    `<td>${range.decodedBy === "cpu" ? "in the CPU" : "system bus"}</td><td class="mono">${
      range.virtAddr === undefined
        ? "not mapped"
        : `${escapeHtml(formatVirtAddr(range.virtAddr as VirtAddr))} (uncached)`
    }</td></tr>`
  );
  return `<section class="panel half"><h2>MMIO ranges (device registers)</h2><table><thead><tr>` +
    `<th>base</th><th>end</th><th class="num">size</th><th>device</th><th>decoded by</th>` +
    `<th>kernel mapping</th></tr></thead><tbody>${rows.join("")}</tbody></table></section>\n`;
}

function renderPoolsTable(data: HtmlReportData): string {
  const end = data.ramEndBytes;
  const rows = data.frames.pools.map((p) => {
    const total = Math.max(1, p.frameCount);
    return `<tr><td class="mono">${hexAddress(p.base, end)}</td><td class="num">${
      formatCount(p.frameCount)
    }</td>` +
      `<td class="num">${formatCount(p.freeFrames)}</td><td class="num">${
        formatCount(p.allocatedFrames)
      }</td>` +
      `<td class="num">${formatCount(p.reservedFrames)}</td><td><div class="minibar">` +
      `<i style="width:${
        cssPct(p.freeFrames / total)
      };background:${CATEGORY_STYLES.free.fill}"></i>` +
      `<i style="width:${
        cssPct(p.allocatedFrames / total)
      };background:${CATEGORY_STYLES.allocated.fill}"></i>` +
      `<i style="width:${
        cssPct(p.reservedFrames / total)
      };background:${CATEGORY_STYLES.reserved.fill}"></i></div></td></tr>`;
  });
  return `<section class="panel half"><h2>Frame pools</h2><table><thead><tr><th>base</th><th class="num">frames</th>` +
    `<th class="num">free</th><th class="num">allocated</th><th class="num">reserved</th><th>use</th></tr></thead>` +
    `<tbody>${rows.join("")}</tbody></table></section>\n`;
}

function renderHeapTable(data: HtmlReportData): string {
  const { heap } = data;
  const items = heap.sizeClasses.map((c) => {
    const capacity = Math.max(1, c.objectsInUse + c.objectsFree);
    return `<li title="${
      escapeHtml(
        `${
          formatBytes(c.objectSizeBytes)
        } objects: ${c.objectsInUse} in use, ${c.objectsFree} free ` +
          `in ${countOf(c.slabCount, "slab")}`,
      )
    }"><b>${
      c.objectSizeBytes < 1024 ? `${c.objectSizeBytes} B` : formatBytes(c.objectSizeBytes)
    }</b><div class="minibar"><i style="width:${
      cssPct(c.objectsInUse / capacity)
    };background:${CATEGORY_STYLES.heapSlab.fill}"></i></div><small>${
      formatCount(c.objectsInUse)
    } / ${formatCount(capacity)}</small></li>`;
  });
  const body = items.length === 0
    ? `<p class="empty">No slab holds objects.</p>`
    : `<ul class="classes">${items.join("")}</ul>`;
  return `<section class="panel heap"><h2>Heap size classes</h2><p class="caption">` +
    `objects in use / slab capacity per size class · ${countOf(heap.slabFrames, "slab frame")}, ` +
    `${countOf(heap.arenaFrames, "arena frame")}, ${
      countOf(heap.metadataFrames, "metadata frame")
    }, ` +
    `${formatCount(heap.cachedFrames)} cached</p>${body}</section>\n`;
}

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (ch) =>
      ch === "&"
        ? "&amp;"
        : ch === "<"
        ? "&lt;"
        : ch === ">"
        ? "&gt;"
        : ch === '"'
        ? "&quot;"
        : "&#39;",
  );
}

/** An address in hex, padded to the digits the largest address of the page needs (8 at least). */
function hexAddress(address: number, maxAddress: number): string {
  const digits = Math.max(8, Math.max(0, maxAddress - 1).toString(16).length);
  return "0x" + address.toString(16).padStart(digits, "0");
}

/** `start – end` (end exclusive given, shown inclusive). */
function hexRange(start: number, end: number, maxAddress: number): string {
  return `${hexAddress(start, maxAddress)} – ${hexAddress(Math.max(start, end - 1), maxAddress)}`;
}

function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

/** A count and a noun as {@linkcode plural} writes it, with thousands separators: `1,024 frames`. */
function countOf(n: number, noun: string): string {
  return plural(n, noun).replace(String(n), formatCount(n));
}

/** A fraction as a CSS percentage. */
function cssPct(fraction: number): string {
  return `${(fraction * 100).toFixed(2)}%`;
}

/** A fraction as a percentage for people: `96%`, `1.5%`, `<0.1%`. */
function pct(fraction: number): string {
  const value = fraction * 100;
  if (value > 0 && value < 0.1) return "<0.1%";
  return `${value >= 10 || value === 0 ? value.toFixed(0) : value.toFixed(1)}%`;
}

function shorten(text: string, maxLength: number): string {
  return text.length <= maxLength ? text : `${text.slice(0, maxLength - 1)}…`;
}

const STYLE = `
:root{--ink:#212529;--muted:#6c757d;--line:#e9ecef;--bg:#f4f5f7}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:#1b2330;color:#f8f9fa;padding:18px 28px}
header h1{margin:0;font-size:22px;font-weight:650;letter-spacing:.2px}
header h1 span{font-weight:400;color:#adb5bd}
header p{margin:4px 0 0;color:#ced4da}
header code{background:#2b3544;padding:1px 6px;border-radius:4px;color:#ffe8cc}
main{display:flex;flex-wrap:wrap;gap:16px;padding:18px 28px;max-width:1400px}
section{flex:1 1 100%}
.panel{background:#fff;border-radius:10px;box-shadow:0 1px 2px rgba(0,0,0,.06),0 1px 8px rgba(0,0,0,.04);padding:14px 18px}
.panel.half{flex:1 1 380px}
.classes{list-style:none;margin:0;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px 16px}
.classes li{display:grid;grid-template-columns:64px 1fr;align-items:center;gap:2px 8px;font-size:12.5px}
.classes b{font-variant-numeric:tabular-nums}
.classes small{grid-column:2;color:var(--muted);font-variant-numeric:tabular-nums}
h2{margin:0 0 8px;font-size:13px;text-transform:uppercase;letter-spacing:.08em;color:var(--muted);font-weight:650}
.cards{display:flex;gap:16px;flex-wrap:wrap}
.card{flex:1 1 220px;background:#fff;border-radius:10px;box-shadow:0 1px 2px rgba(0,0,0,.06),0 1px 8px rgba(0,0,0,.04);padding:14px 18px}
.card .big{font-size:22px;font-weight:650;margin:0 0 8px}
.card dl{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;margin:8px 0 0;font-size:12.5px}
.card dt{color:var(--muted)}
.card dd{margin:0;text-align:right;font-variant-numeric:tabular-nums}
.minibar{display:flex;height:8px;border-radius:4px;overflow:hidden;background:var(--line);min-width:80px}
.minibar i{display:block;height:100%}
.usage{display:flex;height:22px;border-radius:6px;overflow:hidden;gap:1px;background:#fff}
.usage i{display:block;min-width:2px}
.shares{margin:8px 0 0;display:flex;flex-wrap:wrap;gap:4px 18px;color:#495057;font-size:12.5px}
.legend{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:6px 18px}
.legend li{display:flex;align-items:center;gap:6px;white-space:nowrap}
.legend small{color:var(--muted)}
.sw{display:inline-block;width:12px;height:12px;border-radius:3px;vertical-align:-2px;box-shadow:inset 0 0 0 1px rgba(0,0,0,.12)}
.caption{margin:-4px 0 10px;color:var(--muted);font-size:12.5px}
.memgrid{display:block;max-width:100%;height:auto}
.memgrid .addr{font:9.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;fill:#868e96}
.memgrid rect:hover{stroke:#212529;stroke-width:1}
.memgrid .holetext{font:10px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;fill:#495057;paint-order:stroke;stroke:#f8f9fa;stroke-width:3px}
.memgrid .note text{font-size:10.5px;fill:#343a40}
.memgrid .note polyline{fill:none;stroke:#868e96;stroke-width:.8}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th{text-align:left;color:var(--muted);font-weight:600;border-bottom:1px solid var(--line);padding:4px 8px}
td{padding:3px 8px;border-bottom:1px solid var(--line)}
.num{text-align:right;font-variant-numeric:tabular-nums}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.empty{color:var(--muted);text-align:center}
td .minibar{width:140px}
footer{color:var(--muted);font-size:12px;padding:0 28px 24px}
`;
