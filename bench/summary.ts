/**
 * `deno task bench`: runs every bench file with `deno bench --json`, one
 * process per file, prints each bench's time per operation, then the summary
 * table of bench/_figures.ts (figure, ns/op, ratio to the floor measured in the
 * same file, target, met) and the whole-process boot figures of a 64 GiB
 * machine beside a 128 MiB one. docs/benchmarks.md defines the workloads.
 *
 * The summary uses each bench's fastest iteration (Deno.bench's `min`), for
 * the floor and the figures alike: on a machine shared with other jobs, the
 * fastest iteration is the least disturbed one, and the average moves with
 * the neighbours' load (a latency-bound floor slows down less than the
 * figures do, which skews averaged ratios). The per-file tables show the
 * average too.
 *
 * With bench file paths as arguments it runs only those and skips the boot
 * figures. Exits 1 if a bench failed (a wrong result or checksum), 0
 * otherwise: targets are figures on a shared machine, not tests.
 *
 * Run: `deno task bench` or
 * `deno run --allow-read --allow-run bench/summary.ts [bench/FILE_bench.ts ...]`
 *
 * @module
 */

import { type Figure, FIGURES } from "./_figures.ts";

const BENCH_DIR = new URL(".", import.meta.url).pathname;
const BOOT_PROBE = new URL("./boot_probe.ts", import.meta.url).pathname;
/** Counted boot runs of each size, after one uncounted warm-up each. */
const BOOT_RUNS = 5;
/** The machine sizes the boot figures compare (the CLI's --memory syntax). */
const BOOT_LARGE = "64G";
const BOOT_SMALL = "128M";
/** Target: the 64 GiB boot's peak resident memory. */
const BOOT_RSS_LIMIT_BYTES = 60 * 2 ** 20;
/** Target: the 64 GiB boot's whole-process time over the 128 MiB boot's. */
const BOOT_TIME_RATIO_LIMIT = 1.5;
const MIB = 2 ** 20;

/** One bench's result in `deno bench --json` output (the fields used here). */
interface BenchRecord {
  readonly origin: string;
  readonly name: string;
  readonly results: readonly {
    readonly ok?: { readonly avg: number; readonly min: number };
    readonly failed?: { readonly message?: string };
  }[];
}

/** What one bench file measured: fastest and average ns per iteration by bench name, and failures. */
interface FileResult {
  readonly file: string;
  /** The fastest iteration, which the summary uses. */
  readonly nsPerIteration: Map<string, number>;
  /** The average iteration, shown beside it. */
  readonly avgNsPerIteration: Map<string, number>;
  readonly failures: string[];
}

/** One row of the summary table. */
interface SummaryRow {
  readonly figure: string;
  readonly value: string;
  readonly floorRatio: string;
  readonly target: string;
  readonly met: string;
}

const figureByName = new Map<string, Figure>(
  Object.values(FIGURES).map((figure) => [figure.name, figure]),
);

/** Runs one bench file in its own `deno bench` process and parses its JSON. */
async function runBenchFile(file: string): Promise<FileResult> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["bench", "--json", "--allow-read", file],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  // Anything a bench file logs comes before the JSON document.
  const start = text.search(/^\{$/m);
  if (start < 0) {
    return {
      file,
      nsPerIteration: new Map(),
      avgNsPerIteration: new Map(),
      failures: [`${file}: no JSON output`],
    };
  }
  if (start > 0) console.log(text.slice(0, start).trimEnd());
  const report = JSON.parse(text.slice(start)) as { benches: readonly BenchRecord[] };
  const nsPerIteration = new Map<string, number>();
  const avgNsPerIteration = new Map<string, number>();
  const failures: string[] = [];
  for (const bench of report.benches) {
    for (const result of bench.results) {
      if (result.ok !== undefined) {
        nsPerIteration.set(bench.name, result.ok.min);
        avgNsPerIteration.set(bench.name, result.ok.avg);
      } else {
        failures.push(`${bench.name}: ${result.failed?.message ?? "failed"}`);
      }
    }
  }
  return { file, nsPerIteration, avgNsPerIteration, failures };
}

/** A time in ns with three significant digits and a unit. */
function formatNs(ns: number): string {
  if (ns >= 1e6) return `${(ns / 1e6).toPrecision(3)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toPrecision(3)} µs`;
  return `${ns.toPrecision(3)} ns`;
}

/** A markdown table with padded columns. */
function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** The median of a non-empty list. */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** One whole-process boot of `memory`: wall time and the probe's report. */
async function bootOnce(memory: string): Promise<{ ms: number; peakRssBytes: number }> {
  const started = performance.now();
  const output = await new Deno.Command(Deno.execPath(), {
    // --allow-all: the probe reads /proc/self/status (see bench/boot_probe.ts).
    args: ["run", "--allow-all", BOOT_PROBE, "--memory", memory, "--no-console", "--quiet"],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const ms = performance.now() - started;
  const report = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    status: number;
    peakRssBytes: number;
  };
  if (!output.success || report.status !== 0) {
    throw new Error(`Boot with --memory ${memory} exited with status ${report.status}`);
  }
  return { ms, peakRssBytes: report.peakRssBytes };
}

/** The boot figures: alternating runs of both sizes, medians and the peak memory. */
async function bootRows(): Promise<SummaryRow[]> {
  await bootOnce(BOOT_LARGE);
  await bootOnce(BOOT_SMALL);
  const large: { ms: number; peakRssBytes: number }[] = [];
  const small: { ms: number; peakRssBytes: number }[] = [];
  for (let run = 0; run < BOOT_RUNS; run++) {
    large.push(await bootOnce(BOOT_LARGE));
    small.push(await bootOnce(BOOT_SMALL));
  }
  const peakBytes = Math.max(...large.map((r) => r.peakRssBytes));
  const smallPeakBytes = Math.max(...small.map((r) => r.peakRssBytes));
  const largeMs = median(large.map((r) => r.ms));
  const smallMs = median(small.map((r) => r.ms));
  const ratio = median(large.map((r, i) => r.ms / small[i].ms));
  return [
    {
      figure: `${BOOT_LARGE}iB boot, peak resident memory (${BOOT_SMALL}iB: ${
        (smallPeakBytes / MIB).toFixed(1)
      } MiB)`,
      value: `${(peakBytes / MIB).toFixed(1)} MiB`,
      floorRatio: "",
      target: `≤ ${BOOT_RSS_LIMIT_BYTES / MIB} MiB`,
      met: peakBytes <= BOOT_RSS_LIMIT_BYTES ? "yes" : "no",
    },
    {
      figure: `${BOOT_LARGE}iB boot, whole-process time (${BOOT_SMALL}iB: ${
        smallMs.toFixed(0)
      } ms)`,
      value: `${largeMs.toFixed(0)} ms`,
      floorRatio: "",
      target: `≤ ${BOOT_TIME_RATIO_LIMIT}x the ${BOOT_SMALL}iB boot`,
      met: `${ratio <= BOOT_TIME_RATIO_LIMIT ? "yes" : "no"} (${ratio.toFixed(2)}x)`,
    },
  ];
}

/** The summary rows of every figure that was measured. */
function figureRows(results: readonly FileResult[]): SummaryRow[] {
  const nsPerOp = new Map<string, number>();
  const floorNs = new Map<string, number>();
  for (const { nsPerIteration } of results) {
    const floor = nsPerIteration.get(FIGURES.floor.name);
    for (const [name, ns] of nsPerIteration) {
      const figure = figureByName.get(name);
      if (figure === undefined || floor === undefined) continue;
      nsPerOp.set(name, ns / figure.ops);
      floorNs.set(name, floor / FIGURES.floor.ops);
    }
  }
  const floors = results.flatMap(({ nsPerIteration }) => {
    const ns = nsPerIteration.get(FIGURES.floor.name);
    return ns === undefined ? [] : [ns / FIGURES.floor.ops];
  });
  const rows: SummaryRow[] = [];
  if (floors.length > 0) {
    const low = Math.min(...floors);
    const high = Math.max(...floors);
    rows.push({
      figure: `${FIGURES.floor.label} (lowest to highest of ${floors.length} files)`,
      value: low === high ? formatNs(low) : `${formatNs(low)} to ${formatNs(high)}`,
      floorRatio: "1.00x",
      target: "",
      met: "",
    });
  }
  for (const figure of Object.values(FIGURES) as Figure[]) {
    if (figure === FIGURES.floor) continue;
    const ns = nsPerOp.get(figure.name);
    const floor = floorNs.get(figure.name);
    if (ns === undefined || floor === undefined) continue;
    const floorRatio = ns / floor;
    const target = figure.target;
    let targetText = "";
    let met = "";
    if (target.kind === "floor") {
      targetText = `≤ ${target.max}x floor`;
      met = floorRatio <= target.max ? "yes" : "no";
    } else if (target.kind === "relative") {
      const other = (FIGURES as Record<string, Figure>)[target.to];
      const otherNs = nsPerOp.get(other.name);
      targetText = `≤ ${target.max}x ${other.label}`;
      if (otherNs !== undefined) {
        const ratio = ns / otherNs;
        met = `${ratio <= target.max ? "yes" : "no"} (${ratio.toFixed(2)}x)`;
      }
    }
    rows.push({
      figure: figure.label,
      value: formatNs(ns),
      floorRatio: `${floorRatio.toFixed(2)}x`,
      target: targetText,
      met,
    });
  }
  return rows;
}

/** Every `*_bench.ts` file in bench/, by name. */
function benchFiles(): string[] {
  return [...Deno.readDirSync(BENCH_DIR)]
    .filter((entry) => entry.isFile && entry.name.endsWith("_bench.ts"))
    .map((entry) => BENCH_DIR + entry.name)
    .sort();
}

/**
 * Operations per iteration of a bench: its figure's count, else the first
 * number in the parentheses that end its name ("... (1000 ops)"), else 1.
 */
function opsOf(name: string): number {
  const figure = figureByName.get(name);
  if (figure !== undefined) return figure.ops;
  const match = /\((\d+)[^()]*\)$/.exec(name);
  return match === null ? 1 : Number(match[1]);
}

async function main(args: readonly string[]): Promise<number> {
  const files = args.length > 0 ? [...args] : benchFiles();
  const results: FileResult[] = [];
  for (const file of files) {
    const result = await runBenchFile(file);
    results.push(result);
    const floor = result.nsPerIteration.get(FIGURES.floor.name);
    const rows = [...result.nsPerIteration].map(([name, ns]) => {
      const ops = opsOf(name);
      const perOp = ns / ops;
      return [
        name,
        formatNs((result.avgNsPerIteration.get(name) ?? ns) / ops),
        formatNs(perOp),
        floor === undefined ? "" : `${(perOp / (floor / FIGURES.floor.ops)).toFixed(2)}x`,
      ];
    });
    console.log(`\n${file}\n`);
    console.log(formatTable(["bench", "ns/op (avg)", "ns/op (fastest)", "x floor"], rows));
    for (const failure of result.failures) console.log(`FAILED ${failure}`);
  }
  const rows = figureRows(results);
  if (args.length === 0) rows.push(...await bootRows());
  console.log(
    "\nSummary: fastest iteration per op; ratios against the floor measured in the same file\n",
  );
  console.log(
    formatTable(
      ["figure", "ns/op", "x floor", "target", "met"],
      rows.map((r) => [r.figure, r.value, r.floorRatio, r.target, r.met]),
    ),
  );
  const targets = rows.filter((r) => r.target !== "");
  const met = targets.filter((r) => r.met.startsWith("yes")).length;
  console.log(`\n${met} of ${targets.length} targets met`);
  const failures = results.flatMap((r) => r.failures);
  return failures.length > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
