/**
 * Monitor commands for the TLB: `tlb` lists the cached translations, `tlb
 * flush [global]` and `invlpg VA` invalidate them the ways the kernel can
 * (a MOV to CR3, a CR4.PGE toggle, INVLPG). With `poke!` into a page-table
 * entry they finish the stale-TLB lesson: after the poke, `peek` still
 * reads the old frame through the cached entry while `translate` walks the
 * tables to the new one, until `invlpg` drops the entry.
 *
 * @module
 */

import { CR4_PGE, hex, type TlbEntry, type VirtAddr } from "../../hal/mod.ts";
import { formatBytes } from "../boot/mod.ts";
import { parseInteger, parseVirtAddr } from "./_args.ts";
import { formatFlags } from "./_flags.ts";
import { formatVa, plural } from "./_format.ts";
import { type Command, type CommandContext, CommandError } from "./command.ts";

/** The most TLB entries `tlb` lists. */
export const TLB_LIST_MAX = 32;

/** The TLB commands, in help order. */
export const tlbCommands: readonly Command[] = [
  {
    name: "tlb",
    usage: "[CPU|flush [global]]",
    summary: "the TLB's entries and hit rate; flush drops non-global entries, global all",
    details: [
      "tlb                 list the entries (VA, PA, page size, flags) and the counters",
      "tlb CPU             the same for CPU (another CPU writes its entries when asked)",
      "tlb flush           reload CR3 (MOV to CR3): every entry but the global ones goes",
      "tlb flush global    toggle CR4.PGE: every entry goes, global ones too",
    ],
    arity: [0, 2],
    completions: [["flush"], ["global"]],
    run(args, context) {
      const cpu = context.kernel.machine.cpu;
      const tlb = cpu.tlb;
      const [action, scope] = args.words;
      if (action !== undefined && /^(0x)?[0-9a-f]+$/i.test(action)) {
        if (scope !== undefined) {
          throw new CommandError(`expected tlb CPU, got "tlb ${args.rest.trim()}"`);
        }
        printOtherTlb(context, action);
        return;
      }
      if (action === undefined) {
        const { hits, misses, flushes } = tlb.stats;
        const lookups = hits + misses;
        const rate = lookups === 0
          ? "no lookups yet"
          : `${(100 * hits / lookups).toFixed(1)}% hits`;
        const entries = tlb.entries();
        context.print(
          `tlb: ${entries.length} of ${plural(tlb.capacity, "entry", "entries")} in use; ` +
            `${plural(hits, "hit")}, ${plural(misses, "miss", "misses")} (${rate}); ` +
            plural(flushes, "flush", "flushes"),
        );
        for (const entry of entries.slice(0, TLB_LIST_MAX)) {
          context.print(`  ${formatTlbEntry(entry)}`);
        }
        if (entries.length > TLB_LIST_MAX) {
          context.print(
            `  ... and ${plural(entries.length - TLB_LIST_MAX, "more entry", "more entries")}`,
          );
        }
        return;
      }
      if (action !== "flush" || (scope !== undefined && scope !== "global")) {
        throw new CommandError(
          `expected tlb, tlb flush or tlb flush global, got "tlb ${args.rest.trim()}"`,
        );
      }
      const before = tlb.size;
      if (scope === "global" && (cpu.cr4 & CR4_PGE) !== 0) {
        cpu.writeCr4(cpu.cr4 & ~CR4_PGE);
        cpu.writeCr4(cpu.cr4 | CR4_PGE);
        context.print(
          `tlb: toggled CR4.PGE: ${entryCount(before - tlb.size)} flushed, global ones included`,
        );
        return;
      }
      cpu.writeCr3(cpu.cr3);
      context.print(
        `tlb: reloaded CR3 (${hex(cpu.cr3)}): ${entryCount(before - tlb.size)} flushed, ` +
          `${plural(tlb.size, "global entry", "global entries")} kept`,
      );
    },
  },
  {
    name: "invlpg",
    usage: "VA",
    summary: "INVLPG: drop the TLB's entries for the page containing VA (any page size)",
    arity: [1, 1],
    run(args, context) {
      const va = parseVirtAddr(args.words[0]);
      const cpu = context.kernel.machine.cpu;
      const covering = cpu.tlb.entries().filter((entry) => covers(entry, va));
      cpu.invlpg(va);
      context.print(
        `invlpg: ${formatVa(va)}: ${entryCount(covering.length)} removed` +
          (covering.length === 0
            ? " (none cached it)"
            : ` (${covering.map(formatTlbEntry).join("; ")})`),
      );
    },
  },
];

/** `tlb CPU`: another CPU's entries and counters (or this one's). */
function printOtherTlb(context: CommandContext, text: string): void {
  const smp = context.kernel.smp;
  const cpu = parseInteger(text, "a CPU", 0, (smp?.cpuCount ?? 1) - 1);
  let entries: TlbEntry[];
  let stats: { hits: number; misses: number; flushes: number };
  if (smp === undefined) {
    entries = context.kernel.machine.cpu.tlb.entries();
    stats = context.kernel.machine.cpu.tlb.stats;
  } else {
    try {
      entries = smp.tlbEntries(cpu);
    } catch (error) {
      throw new CommandError(error instanceof Error ? error.message : String(error));
    }
    stats = smp.cpus()[cpu].tlb;
  }
  const lookups = stats.hits + stats.misses;
  const rate = lookups === 0
    ? "no lookups yet"
    : `${(100 * stats.hits / lookups).toFixed(1)}% hits`;
  context.print(
    `tlb of CPU ${cpu}: ${plural(entries.length, "entry", "entries")} listed; ` +
      `${plural(stats.hits, "hit")}, ${plural(stats.misses, "miss", "misses")} (${rate}); ` +
      plural(stats.flushes, "flush", "flushes"),
  );
  for (const entry of entries.slice(0, TLB_LIST_MAX)) context.print(`  ${formatTlbEntry(entry)}`);
}

/** `0xffff800000100000 -> 0x000000100000    4 KiB  RW -- NX G A D`. */
function formatTlbEntry(entry: TlbEntry): string {
  // The walker sets A in every entry it uses before the TLB caches the translation (SDM 4.8).
  const flags = formatFlags({
    writable: entry.writable,
    user: entry.user,
    noExecute: !entry.executable,
    global: entry.global,
    accessed: true,
    dirty: entry.dirty,
  });
  return `${formatVa(entry.virtAddr)} -> ${hex(entry.physAddr, 12)}  ` +
    `${formatBytes(entry.pageSizeBytes).padStart(7)}  ${flags}`;
}

function entryCount(count: number): string {
  return plural(count, "entry", "entries");
}

function covers(entry: TlbEntry, va: VirtAddr): boolean {
  return va >= entry.virtAddr && va < entry.virtAddr + entry.pageSizeBytes;
}
