import { assert, assertEquals, assertMatch, assertStringIncludes } from "../testing/mod.ts";
import {
  encodeEntryHigh,
  encodeEntryLow,
  frameStart,
  type PhysAddr,
  PTE_P,
  PTE_PS,
  PTE_RW,
  writeEntry,
} from "../hal/mod.ts";
import { bootTestKernel, type TestBoot } from "../tests/_boot_kernel.ts";
import { escapeHtml, renderHtmlReport } from "./html_report.ts";
import {
  collectHtmlReportData,
  type HtmlReportData,
  MEMORY_CATEGORIES,
  MEMORY_CATEGORY_COUNT,
} from "./html_report_data.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

function bootWithModules(memoryBytes = 128 * MiB): TestBoot {
  return bootTestKernel({
    memoryBytes,
    cmdline: "console=ttyS0 <b>&",
    modules: [
      { name: "initrd.img", bytes: new Uint8Array(300_000).fill(1), string: "initrd.img" },
      { name: "config", bytes: new Uint8Array(5000), string: "config --verbose" },
    ],
  });
}

const VOID_ELEMENTS = new Set(["meta", "br", "hr", "img", "input", "link", "wbr"]);

/**
 * Checks that every element is closed in order (void elements and `/>`
 * excepted) and returns the element names in document order.
 */
function checkWellFormed(html: string): string[] {
  const stack: string[] = [];
  const names: string[] = [];
  const body = html.replace(/^<!DOCTYPE html>\n/, "").replace(
    /<style>[^<]*<\/style>/,
    "<style></style>",
  );
  for (const match of body.matchAll(/<(\/?)([a-zA-Z][\w-]*)([^<>]*)>/g)) {
    const [, closing, name, rest] = match;
    if (closing === "/") {
      const open = stack.pop();
      assertEquals(open, name, `</${name}> closes <${open}> at offset ${match.index}`);
      continue;
    }
    names.push(name);
    if (VOID_ELEMENTS.has(name) || rest.endsWith("/")) continue;
    stack.push(name);
  }
  assertEquals(stack, [], "unclosed elements");
  // Nothing but whitespace may sit outside tags where a stray `<` or `>` would show.
  assert(!/<(?![\/a-zA-Z!])/.test(body), "a stray < in the text");
  return names;
}

function render(boot: TestBoot): { data: HtmlReportData; html: string } {
  const data = collectHtmlReportData(boot.kernel);
  return { data, html: renderHtmlReport(data) };
}

Deno.test("renderHtmlReport() writes one well-formed, self-contained page", () => {
  const { html } = render(bootWithModules());
  assert(html.startsWith("<!DOCTYPE html>\n<html"), "starts with the doctype and <html>");
  const names = checkWellFormed(html);
  for (const single of ["html", "head", "body", "style", "main", "header"]) {
    assertEquals(names.filter((n) => n === single).length, 1, `one <${single}>`);
  }
  // Nothing is loaded from anywhere: no URLs, no src or href, no scripts, no external CSS.
  assert(!/https?:/i.test(html), "no http(s) URL");
  assert(!/\s(src|href|xlink:href)\s*=/i.test(html), "no src or href attribute");
  assert(!/<script|<link|<img|<iframe|@import/i.test(html), "no script, link, img or import");
  assert(!/url\((?!#)/.test(html), "CSS url() only to in-page SVG patterns");
});

Deno.test("renderHtmlReport() shows the legend, the memory map rows and the labelled ranges", () => {
  const boot = bootWithModules();
  const { html, data } = render(boot);
  for (const entry of ["free", "kernel image", "modules", "multiboot2 info", "first 1 MiB"]) {
    assertMatch(html, new RegExp(`<li title="[^"]*"><span class="sw"[^>]*></span><b>${entry}</b>`));
  }
  assertStringIncludes(html, "<b>allocator metadata</b>");
  assertStringIncludes(html, "<b>heap metadata</b>");
  const mmapRows = html.match(/<tr class="mmap">/g) ?? [];
  assertEquals(mmapRows.length, boot.kernel.bootInfo.memoryMap.length);
  for (const type of ["available", "reserved", "ACPI reclaimable"]) {
    assertStringIncludes(html, `<td>${type}</td>`);
  }
  for (
    const what of [
      "kernel image",
      "multiboot2 info",
      'module 0 "initrd.img"',
      'module 1 "config --verbose"',
      "first 1 MiB (BIOS, real-mode area)",
      "frame metadata (reference counts)",
      "kmem heap root descriptor",
    ]
  ) {
    assertStringIncludes(html, `<td>${escapeHtml(what)}</td>`);
    assert(data.regions.some((r) => r.what === what), `region ${what}`);
  }
  // The grid notes name the kernel image, the MBI and the modules beside the picture.
  assertMatch(html, /<g class="note"><title>kernel image\n/);
  assertMatch(html, /<g class="note"><title>multiboot2 info\n/);
  assertMatch(html, /<g class="note"><title>module 0 &quot;initrd.img&quot;\n/);
  // User text is escaped.
  assertStringIncludes(html, "console=ttyS0 &lt;b&gt;&amp;");
});

Deno.test("renderHtmlReport() draws cells as SVG rects with tooltips, runs merged", () => {
  const { html, data } = render(bootWithModules());
  const svgs = html.match(/<svg class="memgrid"[^>]*>/g) ?? [];
  assertEquals(svgs.length, data.grids.length);
  assertEquals(data.grids.length, 2, "a 128 MiB machine gets a detail grid of its first 16 MiB");
  for (const svg of svgs) {
    const cells = Number(svg.match(/data-cells="(\d+)"/)![1]);
    const runs = Number(svg.match(/data-runs="(\d+)"/)![1]);
    assert(runs > 0 && runs < cells, `${runs} runs for ${cells} cells`);
  }
  const rects = html.match(/<rect class="c-[a-zA-Z]+"[^>]*><title>[^<]+<\/title><\/rect>/g) ?? [];
  const runTotal = svgs.reduce((sum, svg) => sum + Number(svg.match(/data-runs="(\d+)"/)![1]), 0);
  assertEquals(rects.length, runTotal, "every run is one rect with a title");
  assertMatch(html, /<rect class="c-kernel"[^>]*><title>0x00100000 – 0x0017ffff · 512 KiB\n/);
  assertMatch(html, /<rect class="c-free"/);
  assertMatch(html, /<rect class="c-mbi"/);
});

Deno.test("collectHtmlReportData() accounts for every frame, matching the allocator and heap", () => {
  const boot = bootWithModules();
  const { kernel } = boot;
  const before = collectHtmlReportData(kernel).categoryFrames;
  const vas = Array.from({ length: 50 }, (_, i) => kernel.heap.kmalloc(32 + i * 100));
  for (let i = 0; i < 20; i++) kernel.frames.allocate();
  const data = collectHtmlReportData(kernel);
  const stats = kernel.frames.stats();
  const f = data.categoryFrames;
  assertEquals(f.free, stats.freeFrames);
  const used = MEMORY_CATEGORIES.filter((c) => !["hole", "unmanaged", "free"].includes(c))
    .reduce((sum, c) => sum + f[c], 0);
  assertEquals(used, stats.allocatedFrames + stats.reservedFrames);
  assertEquals(f.allocated, before.allocated + 20, "the 20 frames nobody labelled");
  assertEquals(f.heapMeta + f.heapSlab + f.heapArena, kernel.heap.stats().bytesMapped / 4096);
  assertEquals(f.pageTable, data.paging?.tableFrames ?? 0);
  assertEquals(f.kernel, 128);
  assertEquals(f.module, Math.ceil(300_000 / 4096) + Math.ceil(5000 / 4096));
  assertEquals(f.mbi, 1);
  const endFrame = kernel.machine.memory.endBytes / 4096;
  for (const grid of data.grids) {
    let sum = 0;
    for (const n of grid.counts) {
      assert(n >= 0);
      sum += n;
    }
    assertEquals(sum, grid.frameCount);
    assertEquals(grid.counts.length, grid.cellCount * MEMORY_CATEGORY_COUNT);
  }
  assertEquals(data.grids[0].frameCount, endFrame);
  const ramFrames = MEMORY_CATEGORIES.filter((c) => c !== "hole").reduce((s, c) => s + f[c], 0);
  assertEquals(ramFrames, kernel.machine.memory.sizeBytes / 4096);
  for (const va of vas) kernel.heap.kfree(va);
  assertEquals(JSON.parse(JSON.stringify(data)), data, "plain JSON-able data");
});

Deno.test("collectHtmlReportData() finds page tables by walking from CR3", () => {
  const { kernel } = bootTestKernel({ memoryBytes: 64 * MiB });
  const memory = kernel.machine.memory;
  const pml4 = frameStart(kernel.frames.allocate());
  const pdpt = frameStart(kernel.frames.allocate());
  memory.u8.fill(0, pml4, pml4 + 8192);
  memory.u8.fill(0, pdpt, pdpt + 4096);
  // PML4[256] -> PDPT, whose entry 0 maps 1 GiB; PML4[510] points back at the PML4.
  writeEntry(memory, (pml4 + 256 * 8) as PhysAddr, encodeEntryLow(pdpt, PTE_P | PTE_RW), 0);
  writeEntry(memory, (pml4 + 510 * 8) as PhysAddr, encodeEntryLow(pml4, PTE_P | PTE_RW), 0);
  writeEntry(
    memory,
    pdpt,
    encodeEntryLow(0 as PhysAddr, PTE_P | PTE_RW | PTE_PS),
    encodeEntryHigh(0 as PhysAddr),
  );
  kernel.machine.cpu.cr3 = pml4;
  const data = collectHtmlReportData(kernel);
  assertEquals(data.categoryFrames.pageTable, 2);
  assertEquals(data.paging?.tableFrames, 2);
  assertEquals(data.paging?.tablesPerLevel, [1, 1, 0, 0]);
  assertEquals(data.paging?.pages1G, 1);
  assertEquals(data.paging?.mappedBytes, GiB);
  const html = renderHtmlReport(data);
  assertStringIncludes(html, "<b>page tables</b>");
  assertMatch(html, /<g class="note"><title>2 page-table frames/);
});

Deno.test("renderHtmlReport() draws a 16 MiB machine frame by frame in one grid", () => {
  const { data, html } = render(bootTestKernel({ memoryBytes: 16 * MiB }));
  assertEquals(data.grids.length, 1);
  assertEquals(data.grids[0].bucketFrames, 1);
  assertStringIncludes(html, "1 cell = 4 KiB (1 frame)");
});

Deno.test("collectHtmlReportData() and renderHtmlReport() stay small for 64 GiB", () => {
  const boot = bootTestKernel({ memoryBytes: 64 * GiB });
  const data = collectHtmlReportData(boot.kernel);
  const html = renderHtmlReport(data);
  const overview = data.grids[0];
  assert(overview.cellCount <= 128 * 80, `${overview.cellCount} cells`);
  assertEquals(overview.bucketFrames, 2048, "8 MiB cells, 1 GiB rows");
  assert(html.length < 500_000, `${html.length} bytes`);
  assertEquals(data.categoryFrames.free, boot.kernel.frames.stats().freeFrames);
  // The PCI hole (3.5 to 4 GiB) is half a row: hatched cells, not a folded band.
  assertMatch(html, /<rect class="c-hole"[^>]*><title>0x00e0000000 – 0x00ffffffff · 512 MiB\n/);
});

Deno.test("renderHtmlReport() folds rows without RAM into one band", () => {
  // A 4 GiB PC has RAM to 3.5 GiB and from 4 to 4.5 GiB: 1 GiB rows do not fold,
  // but with 4-cell rows (8 MiB each) the 512 MiB PCI hole is 64 whole rows.
  const boot = bootTestKernel({ memoryBytes: 4 * GiB });
  const data = collectHtmlReportData(boot.kernel, { columns: 4, maxRows: 1000 });
  const html = renderHtmlReport(data);
  const bands = html.match(/<g class="holeband"><title>[^<]*/g) ?? [];
  assertEquals(bands, [
    '<g class="holeband"><title>No RAM: 0x0e0000000 – 0x0ffffffff (512 MiB)',
    // The detail grid (one frame per cell, 16 KiB rows) folds the legacy hole below 1 MiB.
    '<g class="holeband"><title>No RAM: 0x000a0000 – 0x000fffff (384 KiB)',
  ]);
  assertStringIncludes(html, "no RAM · 0x0e0000000 – 0x0ffffffff · 512 MiB");
});
