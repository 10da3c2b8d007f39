/**
 * The `--report html` page as a person sees it: rendered by headless
 * Chromium (Debian's `chromium` package), checked as a screenshot (size,
 * not blank, the legend's colours really on screen) and as the DOM the
 * browser built (the SVG cells and legend are there). Without Chromium the
 * same DOM checks run on the page's source, and the browser steps are
 * reported as ignored, with the reason in their names.
 *
 * @module
 */

import { assert, assertEquals } from "../testing/mod.ts";
import { CATEGORY_STYLES, renderHtmlReport } from "../cli/html_report.ts";
import { collectHtmlReportData, type HtmlReportData } from "../cli/html_report_data.ts";
import { bootTestKernel } from "./_boot_kernel.ts";
import { countColor, decodePng, hasPngSignature, readPngHeader } from "./_png.ts";

const CHROMIUM_CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const WINDOW = { width: 1280, height: 1024 };
const BROWSER_TIMEOUT_MS = 90_000;

function findChromium(): string | undefined {
  for (const path of CHROMIUM_CANDIDATES) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // Not there; try the next one.
    }
  }
  return undefined;
}

/** A report of a 128 MiB machine with modules, a busy heap and some allocated frames. */
function reportData(): HtmlReportData {
  const { kernel } = bootTestKernel({
    memoryBytes: 128 * 2 ** 20,
    cmdline: "console=ttyS0",
    modules: [
      { name: "initrd.img", bytes: new Uint8Array(300_000).fill(1), string: "initrd.img" },
      { name: "config", bytes: new Uint8Array(5000), string: "config" },
    ],
  });
  for (let i = 0; i < 200; i++) kernel.heap.kmalloc(16 + (i * 37) % 3000);
  for (let i = 0; i < 10; i++) kernel.heap.kmalloc(20_000 + i * 1000);
  for (let i = 0; i < 500; i++) kernel.frames.allocate();
  return collectHtmlReportData(kernel);
}

/** Flags that keep headless Chromium off the network and out of the user's profile. */
function chromiumArgs(profileDir: string): string[] {
  return [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    `--user-data-dir=${profileDir}`,
  ];
}

async function runChromium(chromium: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(chromium, {
    args,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    signal: AbortSignal.timeout(BROWSER_TIMEOUT_MS),
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  assertEquals(output.code, 0, `chromium failed: ${new TextDecoder().decode(output.stderr)}`);
  return stdout;
}

/** The DOM checks, on the page source or on the DOM Chromium dumped. */
function checkDom(dom: string, data: HtmlReportData): void {
  const svgs = [...dom.matchAll(/<svg class="memgrid"[^>]*data-runs="(\d+)"[^>]*>/g)];
  assertEquals(svgs.length, data.grids.length, "one SVG per grid");
  const expectedRuns = svgs.reduce((sum, match) => sum + Number(match[1]), 0);
  const rects = dom.match(/<rect class="c-[a-zA-Z]+"/g) ?? [];
  assertEquals(rects.length, expectedRuns, "one <rect> per run of cells");
  assert(expectedRuns > 50, `${expectedRuns} runs`);
  for (const category of ["free", "kernel", "module", "mbi", "heapSlab", "allocator"]) {
    assert(dom.includes(`<rect class="c-${category}"`), `cells of ${category}`);
  }
  const legendItems = dom.match(/<ul class="legend">.*?<\/ul>/s)?.[0].match(/<li /g) ?? [];
  assert(legendItems.length >= 10, `${legendItems.length} legend entries`);
  const titles = dom.match(/<title>/g) ?? [];
  assert(titles.length > expectedRuns, "tooltips on the cells and notes");
  const mmapRows = dom.match(/<tr class="mmap">/g) ?? [];
  assertEquals(mmapRows.length, data.memoryMap.length);
}

const chromium = findChromium();

Deno.test("The --report html page renders in headless Chromium as a picture of memory", async (t) => {
  const data = reportData();
  const html = renderHtmlReport(data);
  const dir = await Deno.makeTempDir({ prefix: "kernelsim-report-" });
  try {
    const page = `${dir}/report.html`;
    await Deno.writeTextFile(page, html);

    await t.step("its source has the SVG cells, legend and memory map (static DOM check)", () => {
      checkDom(html, data);
    });

    const reason = `no Chromium at ${CHROMIUM_CANDIDATES.join(" or ")} (apt-get install chromium)`;
    const skipReason = chromium === undefined ? ` (skipped: ${reason})` : "";
    if (chromium === undefined) {
      console.warn(`html report browser test: screenshot and browser DOM steps skipped: ${reason}`);
    }

    await t.step({
      name: `a 1280x1024 screenshot shows the legend's colours${skipReason}`,
      ignore: chromium === undefined,
      fn: async () => {
        const profile = await Deno.makeTempDir({ dir, prefix: "profile-" });
        const shot = `${dir}/shot.png`;
        await runChromium(chromium!, [
          ...chromiumArgs(profile),
          `--screenshot=${shot}`,
          `--window-size=${WINDOW.width},${WINDOW.height}`,
          `file://${page}`,
        ]);
        const png = await Deno.readFile(shot);
        assert(hasPngSignature(png), "PNG signature");
        const header = readPngHeader(png);
        assertEquals([header.width, header.height], [WINDOW.width, WINDOW.height]);
        const image = await decodePng(png);
        // Not blank: many colours, and the picture's own colours are on screen.
        const colors = new Set<number>();
        for (let i = 0; i < image.rgba.length; i += 4 * 7) {
          colors.add((image.rgba[i] << 16) | (image.rgba[i + 1] << 8) | image.rgba[i + 2]);
        }
        assert(colors.size > 50, `${colors.size} colours`);
        const pixels = WINDOW.width * WINDOW.height;
        const free = countColor(image, CATEGORY_STYLES.free.fill);
        assert(free > pixels * 0.05, `free cells cover ${free} pixels`);
        for (const category of ["kernel", "module", "heapSlab", "heapArena", "firmware"] as const) {
          const count = countColor(image, CATEGORY_STYLES[category].fill);
          assert(count > 50, `${category} cells cover ${count} pixels`);
        }
      },
    });

    await t.step({
      name: `the DOM Chromium builds has the SVG cells, legend and memory map${skipReason}`,
      ignore: chromium === undefined,
      fn: async () => {
        const profile = await Deno.makeTempDir({ dir, prefix: "profile-" });
        const dom = await runChromium(chromium!, [
          ...chromiumArgs(profile),
          "--dump-dom",
          `file://${page}`,
        ]);
        checkDom(dom, data);
      },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
