/**
 * Event tracing (`--trace mm,mmu,uart,irq`): components that hold a
 * {@linkcode Tracer} write one line per event to a sink, for example
 *
 * ```
 * [    0.001234] mm: alloc frame 0x1234 (pa 0x1234000)
 * [    0.001301] mmu: page fault at 0xffff800000001000: not-present supervisor write (error code 0x2)
 * [    0.001302] mmu: tlb fill 0xffff800000000000 -> 0x0 (1 GiB, W G NX)
 * [    0.002000] irq: deliver IRQ 4
 * ```
 *
 * Tracing must cost nothing measurable when it is off, because the hooks sit
 * in the hottest paths (every TLB fill, every frame allocation). So a
 * component keeps an optional tracer and a hook is one test before anything
 * else happens:
 *
 * ```ts ignore
 * const tracer = this.#tracer;
 * if (tracer !== undefined && tracer.mm) tracer.emit("mm", `alloc frame ${hex(frame)}`);
 * ```
 *
 * The template string is built only after the test passes, so an untraced
 * run builds no string, creates no closure and allocates nothing. Each
 * category is a plain boolean field (one property load) and the enabled set
 * is also a bitmask ({@linkcode Tracer.mask}) for code that tests several.
 *
 * @module
 */

/** A trace category: what kind of event a line describes. */
export type TraceCategory = "mm" | "mmu" | "uart" | "irq";

/** Bit of {@linkcode Tracer.mask}: frame allocator and kmem heap events. */
export const TRACE_MM = 1 << 0;
/** Bit of {@linkcode Tracer.mask}: page faults, TLB fills and flushes. */
export const TRACE_MMU = 1 << 1;
/** Bit of {@linkcode Tracer.mask}: UART bytes and interrupt line changes. */
export const TRACE_UART = 1 << 2;
/** Bit of {@linkcode Tracer.mask}: interrupt delivery to the CPU. */
export const TRACE_IRQ = 1 << 3;
/** Every category's bit. */
export const TRACE_ALL = TRACE_MM | TRACE_MMU | TRACE_UART | TRACE_IRQ;

/** Every category, in the order `--help` lists them, with what each traces. */
export const TRACE_CATEGORIES: readonly {
  readonly name: TraceCategory;
  readonly bit: number;
  readonly what: string;
}[] = [
  { name: "mm", bit: TRACE_MM, what: "frame allocations and frees, kmalloc and kfree" },
  { name: "mmu", bit: TRACE_MMU, what: "page faults, TLB fills and flushes" },
  { name: "uart", bit: TRACE_UART, what: "UART bytes sent and received, IRQ line changes" },
  { name: "irq", bit: TRACE_IRQ, what: "interrupts delivered to the CPU" },
];

/** Receives each trace line, newline included (one call per line). */
export type TraceSink = (line: string) => void;

/** How to build a {@linkcode Tracer}. */
export interface TracerOptions {
  /** The categories to trace: a bitmask of TRACE_* bits or a list of names. */
  readonly categories: number | readonly TraceCategory[];
  /** Where lines go. */
  readonly sink: TraceSink;
  /** The machine time for timestamps, in ns (default: always 0). */
  readonly nowNs?: () => number;
}

/**
 * Parses a `--trace` value: category names separated by commas (spaces
 * around them allowed), or `all`.
 *
 * @param text For example `"mm,mmu"`.
 * @returns The bitmask of TRACE_* bits.
 * @throws {RangeError} For an empty list or an unknown name, listing the accepted ones.
 * @example
 * ```ts
 * import { parseTraceCategories, TRACE_MM, TRACE_MMU } from "./trace.ts";
 * console.assert(parseTraceCategories("mm,mmu") === (TRACE_MM | TRACE_MMU));
 * ```
 */
export function parseTraceCategories(text: string): number {
  const accepted = `${TRACE_CATEGORIES.map((c) => c.name).join(", ")} or all`;
  const names = text.split(",").map((name) => name.trim()).filter((name) => name !== "");
  if (names.length === 0) {
    throw new RangeError(`Invalid trace categories "${text}": expected one or more of ${accepted}`);
  }
  let mask = 0;
  for (const name of names) {
    const lower = name.toLowerCase();
    if (lower === "all") {
      mask |= TRACE_ALL;
      continue;
    }
    const category = TRACE_CATEGORIES.find((c) => c.name === lower);
    if (category === undefined) {
      throw new RangeError(`Unknown trace category "${name}": expected ${accepted}`);
    }
    mask |= category.bit;
  }
  return mask;
}

/** The TRACE_* bit of a category. */
function bitOf(category: TraceCategory): number {
  return category === "mm"
    ? TRACE_MM
    : category === "mmu"
    ? TRACE_MMU
    : category === "uart"
    ? TRACE_UART
    : TRACE_IRQ;
}

/**
 * Writes timestamped trace lines for the enabled categories. See the module
 * documentation for how hooks use it.
 *
 * @example
 * ```ts
 * import { Tracer } from "./trace.ts";
 * const lines: string[] = [];
 * const tracer = new Tracer({ categories: ["mm"], sink: (line) => lines.push(line) });
 * if (tracer.mm) tracer.emit("mm", "alloc frame 0x100 (pa 0x100000)");
 * if (tracer.irq) tracer.emit("irq", "deliver IRQ 0"); // off: nothing is built or written
 * console.assert(lines[0] === "[    0.000000] mm: alloc frame 0x100 (pa 0x100000)\n");
 * ```
 */
export class Tracer {
  /** Frame allocator and heap events are traced. */
  mm = false;
  /** Page faults, TLB fills and flushes are traced. */
  mmu = false;
  /** UART bytes and IRQ line changes are traced. */
  uart = false;
  /** Interrupt delivery is traced. */
  irq = false;
  /** Lines written since creation. */
  lineCount = 0;
  #mask = 0;
  readonly #sink: TraceSink;
  readonly #nowNs: () => number;

  /** Creates a tracer; see {@linkcode TracerOptions}. */
  constructor(options: TracerOptions) {
    this.#sink = options.sink;
    this.#nowNs = options.nowNs ?? (() => 0);
    const { categories } = options;
    this.setMask(
      typeof categories === "number"
        ? categories
        : categories.reduce((mask, name) => mask | bitOf(name), 0),
    );
  }

  /** The enabled categories as TRACE_* bits. */
  get mask(): number {
    return this.#mask;
  }

  /**
   * Changes the enabled categories (for example from the kernel monitor).
   *
   * @param mask TRACE_* bits; bits outside {@linkcode TRACE_ALL} are ignored.
   */
  setMask(mask: number): void {
    this.#mask = mask & TRACE_ALL;
    this.mm = (this.#mask & TRACE_MM) !== 0;
    this.mmu = (this.#mask & TRACE_MMU) !== 0;
    this.uart = (this.#mask & TRACE_UART) !== 0;
    this.irq = (this.#mask & TRACE_IRQ) !== 0;
  }

  /**
   * Whether `category` is traced. Hooks on hot paths read the boolean field
   * (`tracer.mm`) instead, which is one property load.
   */
  isOn(category: TraceCategory): boolean {
    return (this.#mask & bitOf(category)) !== 0;
  }

  /**
   * Writes `[   seconds] category: text` and a newline to the sink, if the
   * category is on. Callers test the category first so that `text` is not
   * built for nothing.
   *
   * @param category The event's category.
   * @param text The event, without timestamp, category or newline.
   */
  emit(category: TraceCategory, text: string): void {
    if ((this.#mask & bitOf(category)) === 0) return;
    const seconds = this.#nowNs() / 1e9;
    this.lineCount++;
    this.#sink(`[${seconds.toFixed(6).padStart(12)}] ${category}: ${text}\n`);
  }
}
