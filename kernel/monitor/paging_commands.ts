/**
 * Monitor commands for virtual memory: `map`, `unmap`, `translate`, `pt`,
 * `peek`, `poke` and `tlb`.
 *
 * `map`, `unmap` and `translate` edit and read the kernel's
 * {@linkcode AddressSpace}; `pt` shows what the MMU's walk reads; `peek` and
 * `poke` go through the MMU like any kernel access, so a bad address faults
 * exactly as it would on the processor (the monitor prints the fault and
 * carries on). Before paging is on, virtual addresses are physical.
 *
 * @module
 */

import {
  CR0_PG,
  describeEntry,
  describePageFaultCode,
  entryIndex,
  formatEntry,
  formatVirtAddr,
  GeneralProtection,
  hex,
  HIGHER_HALF_START,
  type Mmu,
  PAGE_SIZE_4K,
  PAGING_LEVEL_NAMES,
  VIRT_ADDR_LIMIT,
  type VirtAddr,
} from "../../hal/mod.ts";
import { formatBytes } from "../boot/mod.ts";
import { type AddressSpaceLike, formatPageFlags, type Mapping } from "../mm/mod.ts";
import {
  parseFlagLetters,
  parseInteger,
  parsePhysAddr,
  parseU64,
  parseVirtAddr,
  type U64,
} from "./_args.ts";
import { formatVa, hexDump } from "./_format.ts";
import { type Command, type CommandContext, CommandError } from "./command.ts";

/** The most bytes one `peek` shows. */
export const PEEK_MAX_BYTES = 4096;
/** Bytes `peek` shows when no length is given. */
export const PEEK_DEFAULT_BYTES = 16;
/** The most TLB entries `tlb` lists. */
const TLB_LIST_MAX = 32;

/** The paging commands, in help order. */
export const pagingCommands: readonly Command[] = [
  {
    name: "map",
    usage: "VA PA FLAGS",
    summary: "map the 4 KiB page at VA to the frame at PA; FLAGS: r w x u g, e.g. rw",
    arity: [3, 3],
    run(args, context) {
      const space = requireAddressSpace(context);
      const va = parseVirtAddr(args.words[0]);
      const pa = parsePhysAddr(args.words[1]);
      const flags = parseFlagLetters(args.words[2]);
      checkPageAligned("virtual", va);
      checkPageAligned("physical", pa);
      const held = context.pages.get(pa);
      if (held !== undefined) {
        // A frame the monitor holds is mapped with a reference of its own.
        const reference = held.clone();
        try {
          space.mapPage(va, reference, flags);
        } catch (error) {
          reference[Symbol.dispose]();
          throw error;
        }
      } else {
        space.map(va, pa, flags);
      }
      const mapping = space.mapping(va) as Mapping;
      context.print(
        `map: ${formatVa(va)} -> ${hex(pa)} ${formatPageFlags(mapping.flags)}` +
          (held === undefined
            ? " (the mapping owns no reference)"
            : ` (the mapping holds a reference: refcount ${held.refcount})`),
      );
    },
  },
  {
    name: "unmap",
    usage: "VA",
    summary: "remove the 4 KiB mapping at VA",
    arity: [1, 1],
    run(args, context) {
      const space = requireAddressSpace(context);
      const va = parseVirtAddr(args.words[0]);
      checkPageAligned("virtual", va);
      const pa = space.unmap(va);
      const held = context.pages.get(pa);
      context.print(
        `unmap: ${formatVa(va)} no longer maps ${hex(pa)}` +
          (held === undefined ? "" : ` (refcount now ${held.refcount})`),
      );
    },
  },
  {
    name: "translate",
    usage: "VA",
    summary: "the physical address VA maps to, with the page's size and flags",
    arity: [1, 1],
    run(args, context) {
      const va = parseVirtAddr(args.words[0]);
      const space = context.addressSpace;
      if (space === undefined || !isPaging(context)) {
        context.print(`translate: ${formatVa(va)} -> ${hex(va)} (paging is off: identity)`);
        return;
      }
      const mapping = space.mapping(va);
      if (mapping === undefined) {
        context.print(`translate: ${formatVa(va)} is not mapped`);
        return;
      }
      const offset = va - mapping.virtAddr;
      const words = [formatBytes(mapping.pageSizeBytes) + " page", formatPageFlags(mapping.flags)];
      if (mapping.isOwned) words.push("owned");
      if (mapping.isAccessed) words.push("accessed");
      if (mapping.isDirty) words.push("dirty");
      context.print(
        `translate: ${formatVa(va)} -> ${hex(mapping.physAddr + offset)} (${words.join(", ")})`,
      );
    },
  },
  {
    name: "pt",
    usage: "VA",
    summary: "the page-table walk for VA: the entry at each of the 4 levels, decoded",
    arity: [1, 1],
    run(args, context) {
      const va = parseVirtAddr(args.words[0]);
      const walk = context.kernel.machine.mmu.probe(va);
      if (walk.kind === "unpaged") {
        context.print(`pt: paging is off (CR0.PG clear): ${formatVa(va)} is physical ${hex(va)}`);
        return;
      }
      context.print(`pt: ${formatVa(va)}, PML4 at ${hex(context.kernel.machine.cpu.cr3)}`);
      for (const step of walk.steps) {
        const name = `${PAGING_LEVEL_NAMES[step.level]}[${entryIndex(va, step.level)}]`;
        context.print(
          `  ${name.padEnd(9)} at ${hex(step.entryAddr, 12)} = ${
            formatEntry(step.low32, step.high32)
          }  ${describeEntry(step.low32, step.high32, step.level)}`,
        );
      }
      if (walk.kind === "fault") {
        context.print(
          `  a read faults: ${describePageFaultCode(walk.errorCode)} ` +
            `(error code ${hex(walk.errorCode)})`,
        );
        return;
      }
      context.print(
        `  -> ${hex(walk.physAddr)} (${formatBytes(walk.pageSizeBytes)} page, ` +
          `${walk.writable ? "RW" : "RO"} ${walk.executable ? "X" : "NX"}` +
          `${walk.user ? " US" : ""}${walk.global ? " G" : ""})`,
      );
    },
  },
  {
    name: "peek",
    usage: "ADDR [LEN]",
    summary: `dump LEN bytes (default ${PEEK_DEFAULT_BYTES}) at virtual address ADDR`,
    arity: [1, 2],
    run(args, context) {
      const va = parseVirtAddr(args.words[0]);
      const lengthBytes = args.words.length > 1
        ? parseInteger(args.words[1], "a length in bytes", 1, PEEK_MAX_BYTES)
        : PEEK_DEFAULT_BYTES;
      const bytes = context.kernel.machine.mmu.readVirtBytes(va, lengthBytes);
      for (const line of hexDump(va, bytes)) context.print(line);
    },
  },
  {
    name: "poke",
    usage: "ADDR VALUE [WIDTH]",
    summary: "write VALUE at virtual address ADDR as WIDTH bytes: 1 (default), 2, 4 or 8",
    arity: [2, 3],
    run(args, context) {
      const va = parseVirtAddr(args.words[0]);
      const widthBytes = args.words.length > 2 ? parseWidth(args.words[2]) : 1;
      const mmu = context.kernel.machine.mmu;
      let shown: string;
      if (widthBytes === 8) {
        const value = parseU64(args.words[1], "an 8-byte value");
        writeVirtU64(mmu, va, value);
        shown = hex(value.high32, 8) + value.low32.toString(16).padStart(8, "0");
      } else {
        const max = 2 ** (8 * widthBytes) - 1;
        const value = parseInteger(args.words[1], `a ${widthBytes}-byte value`, 0, max);
        if (widthBytes === 1) mmu.writeVirt8(va, value);
        else if (widthBytes === 2) mmu.writeVirt16(va, value);
        else mmu.writeVirt32(va, value);
        shown = hex(value, widthBytes * 2);
      }
      context.print(`poke: wrote ${shown} at ${formatVa(va)}`);
    },
  },
  {
    name: "tlb",
    usage: "",
    summary: "the TLB's entries and hit rate",
    arity: [0, 0],
    run(_args, context) {
      const tlb = context.kernel.machine.mmu.tlb;
      const { hits, misses, flushes } = tlb.stats;
      const lookups = hits + misses;
      const rate = lookups === 0 ? "no lookups yet" : `${(100 * hits / lookups).toFixed(1)}% hits`;
      const entries = tlb.entries();
      context.print(
        `tlb: ${entries.length} of ${tlb.capacity} entries in use; ${hits} hits, ${misses} misses ` +
          `(${rate}); ${flushes} flushes`,
      );
      for (const entry of entries.slice(0, TLB_LIST_MAX)) {
        const flags = [entry.writable ? "RW" : "RO", entry.executable ? "X" : "NX"];
        if (entry.user) flags.push("US");
        if (entry.global) flags.push("G");
        if (entry.dirty) flags.push("D");
        context.print(
          `  ${formatVa(entry.virtAddr)} -> ${hex(entry.physAddr, 12)}  ` +
            `${formatBytes(entry.pageSizeBytes).padStart(7)}  ${flags.join(" ")}`,
        );
      }
      if (entries.length > TLB_LIST_MAX) {
        context.print(`  ... and ${entries.length - TLB_LIST_MAX} more`);
      }
    },
  },
];

function isPaging(context: CommandContext): boolean {
  return (context.kernel.machine.cpu.cr0 & CR0_PG) !== 0;
}

function requireAddressSpace(context: CommandContext): AddressSpaceLike {
  const space = context.addressSpace;
  if (space === undefined || !isPaging(context)) {
    throw new CommandError("paging is off: the kernel has no address space to change yet");
  }
  return space;
}

function checkPageAligned(kind: "virtual" | "physical", address: number): void {
  if (address % PAGE_SIZE_4K === 0) return;
  const shown = kind === "virtual" ? formatVirtAddr(address as VirtAddr) : hex(address);
  throw new CommandError(`${kind} address ${shown} is not 4 KiB aligned`);
}

/**
 * Writes a 64-bit value at `va` as two 32-bit halves. Like the processor's
 * 8-byte store it writes nothing if any byte would fault: both ends are
 * translated first, and running from the lower half into the non-canonical
 * hole is a #GP.
 */
function writeVirtU64(mmu: Mmu, va: VirtAddr, value: U64): void {
  const lastVa = va + 7;
  if (va < HIGHER_HALF_START && lastVa >= HIGHER_HALF_START) {
    throw new GeneralProtection(
      `Access at ${formatVirtAddr(va)} runs into non-canonical address ${hex(HIGHER_HALF_START)}`,
    );
  }
  mmu.translate(va, "write");
  // The fault names the first byte of the next page, as CR2 would (SDM 4.7).
  const lastPage = lastVa - (lastVa % PAGE_SIZE_4K);
  if (lastPage > va) mmu.translate((lastPage % VIRT_ADDR_LIMIT) as VirtAddr, "write");
  mmu.writeVirt32(va, value.low32);
  mmu.writeVirt32(((va + 4) % VIRT_ADDR_LIMIT) as VirtAddr, value.high32);
}

function parseWidth(text: string): 1 | 2 | 4 | 8 {
  switch (text) {
    case "1":
      return 1;
    case "2":
      return 2;
    case "4":
      return 4;
    case "8":
      return 8;
    default:
      throw new CommandError(`expected a width of 1, 2, 4 or 8 bytes, got "${text}"`);
  }
}
