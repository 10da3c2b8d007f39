/**
 * The figures `deno task bench` reports, in one place: the name of the
 * Deno.bench that measures each, how many operations one iteration of it
 * does, and its target. The bench files name their benches from here and
 * bench/summary.ts turns the measurements into the summary table, so a name
 * or an operation count cannot drift apart between the two.
 *
 * Targets are ratios to the floor (bench/_floor.ts) measured in the same
 * `deno bench` process, so they hold on any machine; docs/benchmarks.md
 * defines every workload.
 *
 * @module
 */

/** What a figure is held to. */
export type FigureTarget =
  /** At most `max` times the floor of the same bench file. */
  | { readonly kind: "floor"; readonly max: number }
  /** At most `max` times another figure of the same run (flatness in memory size). */
  | { readonly kind: "relative"; readonly to: string; readonly max: number }
  /** No target: shown for context. */
  | { readonly kind: "none" };

/** One reported figure. */
export interface Figure {
  /** The Deno.bench name (unique over all bench files). */
  readonly name: string;
  /** Short label for the summary table. */
  readonly label: string;
  /** Operations per bench iteration: ns/op = reported time per iteration / ops. */
  readonly ops: number;
  /** The target. */
  readonly target: FigureTarget;
}

/** Operations per iteration of the floor and of every per-operation MMU and paging loop. */
export const LOOP_OPS = 4096;
/** Frames of one pool in the 1 GiB frame-allocator workloads. */
export const FRAMES_1G = 262_144;
/** Frames of one pool in the 16 GiB frame-allocator workloads. */
export const FRAMES_16G = 4_194_304;
/** W1 churn operations per run (each a free and an allocation). */
export const W1_OPS = 500_000;
/** 4 KiB entries that one mapRange of 1 GiB writes. */
export const RANGE_ENTRIES = 262_144;
/** Pages the 4-level-walk loop cycles over (more than four times the TLB's capacity). */
export const WALK_PAGES = 2048;
/** Operations of one W4 heap run. */
export const W4_OPS = 200_000;
/** Frame allocate+free pairs each CPU does in one churn iteration. */
export const CHURN_PAIRS = 100_000;
/** TLB shootdown round trips per iteration. */
export const SHOOTDOWN_ROUNDS = 200;
/** Device reads per iteration of the mailbox round trip. */
export const MAILBOX_READS = 2000;

const none = { kind: "none" } as const;

/** Every figure, in the order of the summary table. */
export const FIGURES = {
  floor: {
    name: `floor: xorshift32 index, load from a 4 KiB Uint32Array (${LOOP_OPS} ops)`,
    label: "floor: xorshift32 index + L1 load",
    ops: LOOP_OPS,
    target: none,
  },
  translateHit4K: {
    name: `Mmu.translate() TLB hit, 4 KiB page (${LOOP_OPS} ops)`,
    label: "translate, TLB hit, 4 KiB page",
    ops: LOOP_OPS,
    target: { kind: "floor", max: 3 },
  },
  translateHit2M: {
    name: `Mmu.translate() TLB hit, 2 MiB page (${LOOP_OPS} ops)`,
    label: "translate, TLB hit, 2 MiB page",
    ops: LOOP_OPS,
    target: none,
  },
  translateHit1G: {
    name: `Mmu.translate() TLB hit, 1 GiB page (${LOOP_OPS} ops)`,
    label: "translate, TLB hit, 1 GiB page",
    ops: LOOP_OPS,
    target: none,
  },
  readVirt32: {
    name: `Mmu.readVirt32() TLB hit (${LOOP_OPS} ops)`,
    label: "readVirt32, TLB hit",
    ops: LOOP_OPS,
    target: { kind: "floor", max: 4 },
  },
  writeVirt32: {
    name: `Mmu.writeVirt32() TLB hit (${LOOP_OPS} ops)`,
    label: "writeVirt32, TLB hit",
    ops: LOOP_OPS,
    target: { kind: "floor", max: 4 },
  },
  walk: {
    name: `Mmu.translate() TLB miss, 4-level walk (${WALK_PAGES} ops)`,
    label: "translate, TLB miss, 4-level walk",
    ops: WALK_PAGES,
    target: { kind: "floor", max: 30 },
  },
  mapUnmap: {
    name: `map+unmap one 4 KiB page, tables present (${LOOP_OPS} ops)`,
    label: "map+unmap 4 KiB page, tables present",
    ops: LOOP_OPS,
    target: { kind: "floor", max: 20 },
  },
  mapUnmapCold: {
    name: `map+unmap one 4 KiB page, 3 tables made and freed (${LOOP_OPS} ops)`,
    label: "map+unmap 4 KiB page, 3 tables made and freed",
    ops: LOOP_OPS,
    target: none,
  },
  mapRange: {
    name: `mapRange 1 GiB as 4 KiB pages (${RANGE_ENTRIES} entries)`,
    label: "mapRange of 4 KiB pages, per entry",
    ops: RANGE_ENTRIES,
    target: { kind: "floor", max: 3 },
  },
  unmapRange: {
    name: `unmapRange 1 GiB of 4 KiB pages, tables freed (${RANGE_ENTRIES} entries)`,
    label: "unmapRange of 4 KiB pages, per entry",
    ops: RANGE_ENTRIES,
    target: none,
  },
  w1Small: {
    name: `W1 churn 1 GiB (${W1_OPS} frees + allocations)`,
    label: "W1 churn, 1 GiB",
    ops: 2 * W1_OPS,
    target: none,
  },
  w1Large: {
    name: `W1 churn 16 GiB (${W1_OPS} frees + allocations)`,
    label: "W1 churn, 16 GiB",
    ops: 2 * W1_OPS,
    target: { kind: "relative", to: "w1Small", max: 1.5 },
  },
  w2Small: {
    name: `W2 fragmented refill 1 GiB (${FRAMES_1G / 2} allocations)`,
    label: "W2 fragmented refill, 1 GiB",
    ops: FRAMES_1G / 2,
    target: { kind: "floor", max: 3 },
  },
  w2Large: {
    name: `W2 fragmented refill 16 GiB (${FRAMES_16G / 2} allocations)`,
    label: "W2 fragmented refill, 16 GiB",
    ops: FRAMES_16G / 2,
    target: { kind: "floor", max: 3 },
  },
  w3: {
    name: "W3 contiguous 8 aligned 8, 1 GiB (128 attempts)",
    label: "W3 contiguous 8 aligned 8, 1 GiB",
    ops: 128,
    target: none,
  },
  init64G: {
    name: "frame allocator init, 64 GiB machine (1 op)",
    label: "frame allocator init, 64 GiB",
    ops: 1,
    target: none,
  },
  w4: {
    name: `W4 heap (${W4_OPS} ops, at most 200 live, 8..512 bytes)`,
    label: "W4 heap",
    ops: W4_OPS,
    target: none,
  },
  kmallocPair: {
    name: `kmalloc + kfree of 64 bytes (${LOOP_OPS} pairs)`,
    label: "kmalloc + kfree of 64 bytes",
    ops: LOOP_OPS,
    target: none,
  },
  churn1Cached: {
    name: `SMP frame allocate+free, 1 CPU, per-CPU caches on (${CHURN_PAIRS} pairs)`,
    label: "SMP frame alloc+free pair, 1 CPU, caches on",
    ops: CHURN_PAIRS,
    target: none,
  },
  churn1Locked: {
    name: `SMP frame allocate+free, 1 CPU, per-CPU caches off (${CHURN_PAIRS} pairs)`,
    label: "SMP frame alloc+free pair, 1 CPU, caches off",
    ops: CHURN_PAIRS,
    target: none,
  },
  churn2Cached: {
    name: `SMP frame allocate+free, 2 CPUs, per-CPU caches on (${2 * CHURN_PAIRS} pairs)`,
    label: "SMP frame alloc+free pair, 2 CPUs, caches on",
    ops: 2 * CHURN_PAIRS,
    target: none,
  },
  churn2Locked: {
    name: `SMP frame allocate+free, 2 CPUs, per-CPU caches off (${2 * CHURN_PAIRS} pairs)`,
    label: "SMP frame alloc+free pair, 2 CPUs, caches off",
    ops: 2 * CHURN_PAIRS,
    target: none,
  },
  shootdown: {
    name: `TLB shootdown round trip to 1 other CPU (${SHOOTDOWN_ROUNDS} rounds)`,
    label: "TLB shootdown round trip, 1 other CPU",
    ops: SHOOTDOWN_ROUNDS,
    target: none,
  },
  mailbox: {
    name: `device mailbox round trip from an AP (${MAILBOX_READS} port reads)`,
    label: "device mailbox round trip (AP port read)",
    ops: MAILBOX_READS,
    target: none,
  },
  smpBoot16: {
    name: "boot with --smp 16, until every CPU is online (1 op)",
    label: "boot of 16 CPUs (kernel up, in-process)",
    ops: 1,
    target: none,
  },
} as const satisfies Record<string, Figure>;

/** The key of a figure in {@linkcode FIGURES}. */
export type FigureId = keyof typeof FIGURES;
