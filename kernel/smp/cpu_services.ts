/**
 * What kernel code on any CPU uses on a machine of several CPUs: that CPU's
 * handles to the shared frame allocator, heap and kernel address space, its
 * shootdown and cross-CPU calls, and the functions every CPU runs when
 * another asks (the statistics the monitor shows, its TLB's entries, its
 * frame cache). The boot CPU builds its set during boot; each application
 * processor builds its own from RAM when it starts.
 *
 * @module
 */

import { type Hardware, hex, type PhysAddr, type TlbEntry } from "../../hal/mod.ts";
import type { SmpAddressSpace } from "./smp_address_space.ts";
import { SMP_FUNCTIONS, type SmpCalls } from "./smp_call.ts";
import type { SmpCpu } from "./smp_cpu.ts";
import type { SmpFrameProvider } from "./smp_frames.ts";
import type { SmpKernelHeap } from "./smp_heap.ts";
import type { TlbShootdown } from "./tlb_shootdown.ts";

/** One CPU's kernel services; see the module documentation. */
export interface CpuServices {
  /** The CPU. */
  readonly smp: SmpCpu;
  /** Its hardware. */
  readonly hw: Hardware;
  /** Its handle to the frame allocator (with its per-CPU cache). */
  readonly frames: SmpFrameProvider;
  /** Its handle to the kmem heap. */
  readonly heap: SmpKernelHeap;
  /** Its handle to the kernel's address space. */
  readonly kernelSpace: SmpAddressSpace;
  /** Its side of the TLB shootdown. */
  readonly shootdown: TlbShootdown;
  /** Its side of cross-CPU calls. */
  readonly calls: SmpCalls;
}

/** The most TLB entries {@linkcode SMP_FUNCTIONS.dumpTlb} writes. */
export const TLB_DUMP_MAX = 32;
/** Words per TLB entry in a dump: VA low, VA high, PA low, PA high, size, flags. */
const DUMP_ENTRY_WORDS = 6;
/** The dump's first word: how many entries follow. */
const DUMP_COUNT_WORD = 0;
/** Dump flag bits, in this order: writable, user, executable, global, dirty. */
const DUMP_FLAGS = ["writable", "user", "executable", "global", "dirty"] as const;

/**
 * Registers the functions every CPU runs when another asks, except the
 * stress (registered where the stress is).
 */
export function registerCpuFunctions(services: CpuServices): void {
  const { calls, smp, frames, hw } = services;
  calls.register(SMP_FUNCTIONS.publishStats, () => smp.publishStats());
  calls.register(SMP_FUNCTIONS.drainFrameCache, () => frames.drainCache());
  calls.register(SMP_FUNCTIONS.flushTlb, () => hw.cpu.writeCr3(hw.cpu.cr3));
  calls.register(
    SMP_FUNCTIONS.dumpTlb,
    (page) => writeTlbDump(hw, page as PhysAddr, hw.cpu.tlb.entries()),
  );
}

/** Writes up to {@linkcode TLB_DUMP_MAX} TLB entries at `page` (a frame the caller owns). */
export function writeTlbDump(hw: Hardware, page: PhysAddr, entries: readonly TlbEntry[]): void {
  const words = new Uint32Array(hw.memory.buffer, page, 1 + TLB_DUMP_MAX * DUMP_ENTRY_WORDS);
  const count = Math.min(entries.length, TLB_DUMP_MAX);
  for (let i = 0; i < count; i++) {
    const entry = entries[i];
    const w = 1 + i * DUMP_ENTRY_WORDS;
    words[w] = entry.virtAddr % 2 ** 32;
    words[w + 1] = Math.floor(entry.virtAddr / 2 ** 32);
    words[w + 2] = entry.physAddr % 2 ** 32;
    words[w + 3] = Math.floor(entry.physAddr / 2 ** 32);
    words[w + 4] = entry.pageSizeBytes;
    words[w + 5] = DUMP_FLAGS.reduce(
      (bits, flag, bit) => entry[flag] ? bits | (1 << bit) : bits,
      0,
    );
  }
  words[DUMP_COUNT_WORD] = count;
}

/**
 * Reads a TLB dump written by {@linkcode writeTlbDump}.
 *
 * @throws {RangeError} If the count is not a dump's.
 */
export function readTlbDump(hw: Hardware, page: PhysAddr): TlbEntry[] {
  const words = new Uint32Array(hw.memory.buffer, page, 1 + TLB_DUMP_MAX * DUMP_ENTRY_WORDS);
  const count = words[DUMP_COUNT_WORD];
  if (count > TLB_DUMP_MAX) throw new RangeError(`No TLB dump at ${hex(page)}`);
  const entries: TlbEntry[] = [];
  for (let i = 0; i < count; i++) {
    const w = 1 + i * DUMP_ENTRY_WORDS;
    const flags = words[w + 5];
    const has = (flag: (typeof DUMP_FLAGS)[number]) =>
      (flags & (1 << DUMP_FLAGS.indexOf(flag))) !== 0;
    entries.push({
      slot: i,
      virtAddr: (words[w] + words[w + 1] * 2 ** 32) as TlbEntry["virtAddr"],
      physAddr: (words[w + 2] + words[w + 3] * 2 ** 32) as PhysAddr,
      pageSizeBytes: words[w + 4] as TlbEntry["pageSizeBytes"],
      writable: has("writable"),
      user: has("user"),
      executable: has("executable"),
      global: has("global"),
      dirty: has("dirty"),
    });
  }
  return entries;
}
