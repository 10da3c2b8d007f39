/**
 * Monitor commands that look at the machine as a debugger does: `regs`
 * (control registers decoded), `xp` (physical memory), `dump` (physical
 * memory to a host file) and `vmmap` (an address space as merged ranges,
 * like QEMU's `info mem` with NX and what each range is for).
 *
 * @module
 */

import {
  CR0_PG,
  hex,
  HIGHER_HALF_START,
  PAGE_SIZE_4K,
  VIRT_ADDR_LIMIT,
  type VirtAddr,
} from "../../hal/mod.ts";
import { formatBytes } from "../boot/mod.ts";
import {
  type AddressSpaceLike,
  type LazyRegion,
  type Mapping,
  PAGE_COPY_ON_WRITE,
  RECURSIVE_MAP_BASE,
  RECURSIVE_PML4_INDEX,
} from "../mm/mod.ts";
import { parseInteger, parsePhysAddr } from "./_args.ts";
import { formatFlags, pageFlagBits } from "./_flags.ts";
import { formatPa, formatVa, formatVaRange, hexDump, plural } from "./_format.ts";
import { CR0_BITS, CR3_BITS, CR4_BITS, EFER_BITS, setBitNames } from "./_registers.ts";
import { MAX_ADDRESS_SPACES } from "./address_space_table.ts";
import { type Command, type CommandContext, CommandError } from "./command.ts";
import {
  type KernelMapping,
  kernelMappings,
  type KernelStructure,
  kernelStructures,
  structuresIn,
} from "./kernel_structures.ts";
import { PEEK_DEFAULT_BYTES, peekLength } from "./paging_commands.ts";
import { ramDumpChunks, ramDumpHoleBytes } from "./ram_dump.ts";

/** Bytes of one PML4 slot: 512 GiB. */
const PML4_SLOT_BYTES = 2 ** 39;

/** The inspection commands, in help order. */
export const inspectCommands: readonly Command[] = [
  {
    name: "regs",
    usage: "",
    summary: "CR0, CR2, CR3, CR4, EFER and RFLAGS.IF decoded, and the CPL",
    arity: [0, 0],
    run(_args, context) {
      const cpu = context.kernel.machine.cpu;
      context.print(
        `regs: CPL ${cpu.cpl} (${cpu.cpl === 0 ? "kernel" : "user"} mode), RFLAGS.IF ` +
          `${cpu.interruptsEnabled ? "1 (interrupts enabled)" : "0 (interrupts disabled)"}`,
      );
      const cr0 = cpu.cr0 >>> 0;
      context.print(`  CR0   ${hex(cr0, 16)}  ${setBitNames(cr0, CR0_BITS).join(" ")}`);
      context.print(
        `  CR2   ${formatVa(cpu.cr2 as VirtAddr)}  the last page-fault address`,
      );
      const pml4 = cpu.cr3 - (cpu.cr3 % PAGE_SIZE_4K);
      const slot = context.spaces.indexOfPml4(cpu.cr3);
      const flags = setBitNames(cpu.cr3 % PAGE_SIZE_4K, CR3_BITS);
      context.print(
        `  CR3   ${hex(cpu.cr3, 16)}  PML4 at ${hex(pml4)}` +
          (slot < 0 ? "" : ` (address space ${slot})`) +
          (flags.length > 0 ? `, ${flags.join(" ")}` : ""),
      );
      const cr4 = cpu.cr4 >>> 0;
      context.print(`  CR4   ${hex(cr4, 16)}  ${setBitNames(cr4, CR4_BITS).join(" ")}`);
      const efer = cpu.efer >>> 0;
      context.print(`  EFER  ${hex(efer, 16)}  ${setBitNames(efer, EFER_BITS).join(" ")}`);
    },
  },
  {
    name: "xp",
    usage: "PA [LEN]",
    summary: `dump LEN bytes (default ${PEEK_DEFAULT_BYTES}) of physical memory at PA`,
    arity: [1, 2],
    run(args, context) {
      const pa = parsePhysAddr(args.words[0]);
      const bytes = context.kernel.machine.memory.readBytes(pa, peekLength(args.words[1]));
      for (const line of hexDump(pa, bytes, "physical")) context.print(line);
    },
  },
  {
    name: "dump",
    usage: "PA LEN FILE",
    summary: "write LEN bytes of physical memory at PA to the host file FILE (holes as zeros)",
    arity: [3, 3],
    run(args, context) {
      const memory = context.kernel.machine.memory;
      const pa = parsePhysAddr(args.words[0]);
      const lengthBytes = parseInteger(args.words[1], "a length in bytes", 1, memory.endBytes);
      const path = args.words[2];
      if (pa + lengthBytes > memory.endBytes) {
        throw new CommandError(
          `${formatPa(pa)}+${hex(lengthBytes)} runs past the end of physical memory ` +
            `(${hex(memory.endBytes - 1)} is the last byte)`,
        );
      }
      if (context.host === undefined) {
        throw new CommandError("this session has no host file access");
      }
      const holes = ramDumpHoleBytes(memory, pa, lengthBytes);
      try {
        context.host.writeFile(path, ramDumpChunks(memory, pa, lengthBytes));
      } catch (error) {
        throw new CommandError(
          `cannot write "${path}": ${error instanceof Error ? error.message : String(error)}`,
        );
      }
      context.print(
        `dump: wrote ${hex(pa)}-${hex(pa + lengthBytes - 1)} (${formatBytes(lengthBytes)}) to ` +
          `"${path}"` + (holes > 0 ? `, ${formatBytes(holes)} of it holes written as zeros` : ""),
      );
    },
  },
  {
    name: "vmmap",
    usage: "[N]",
    summary: "address space N (default: the current one) as merged ranges, with what each is",
    arity: [0, 1],
    run(args, context) {
      if ((context.kernel.machine.cpu.cr0 & CR0_PG) === 0) {
        throw new CommandError("paging is off: every address is physical");
      }
      const slot = args.words.length > 0
        ? context.spaces.get(
          parseInteger(args.words[0], "an address space", 0, MAX_ADDRESS_SPACES - 1),
        )
        : context.spaces.current;
      if (slot === undefined) {
        throw new CommandError("CR3 points at no address space the monitor knows");
      }
      const space = slot.space;
      context.print(
        `vmmap: address space ${slot.index} (PML4 at ${hex(space.pml4Addr)}` +
          `${slot.index === 0 ? ", the kernel's" : ""}${space.isActive ? ", in CR3" : ""})`,
      );
      context.print(
        `${"first".padEnd(18)} ${"last".padEnd(18)} ${"size".padStart(9)}  page     ` +
          `${"flags".padEnd(10)}  use`,
      );
      for (const row of vmmapRows(context, slot.index, space)) context.print(row);
      for (const line of lazyRegionLines(context, space)) context.print(line);
    },
  },
];

/** A run of leaves that merge into one `vmmap` line. */
interface Run {
  first: number;
  nextVa: number;
  nextPa: number;
  readonly pageSizeBytes: number;
  readonly flags: number;
  readonly use: string;
}

/** The table rows of `vmmap`: merged mappings and the PML4 slots not walked. */
function vmmapRows(context: CommandContext, index: number, space: AddressSpaceLike): string[] {
  const rows: { first: number; text: string }[] = [];
  let run: Run | undefined;
  const flush = () => {
    if (run === undefined) return;
    const last = run.nextVa - 1;
    rows.push({
      first: run.first,
      text: `${formatVaRange(run.first, last)} ${formatBytes(last - run.first + 1).padStart(9)}  ` +
        `${formatBytes(run.pageSizeBytes).padEnd(7)}  ${formatFlags(pageFlagBits(run.flags))}  ` +
        run.use,
    });
    run = undefined;
  };
  const known: KnownRanges = {
    structures: kernelStructures(context),
    mappings: kernelMappings(context),
    lazyRegions: context.kernel.pageFaults.lazyRegions(space),
  };
  for (const leaf of space.mappings(0 as VirtAddr, VIRT_ADDR_LIMIT)) {
    const use = useOf(context, leaf, known);
    if (
      run !== undefined && leaf.virtAddr === run.nextVa && leaf.physAddr === run.nextPa &&
      leaf.pageSizeBytes === run.pageSizeBytes && leaf.flags === run.flags && use === run.use
    ) {
      run.nextVa += leaf.pageSizeBytes;
      run.nextPa += leaf.pageSizeBytes;
      continue;
    }
    flush();
    run = {
      first: leaf.virtAddr,
      nextVa: leaf.virtAddr + leaf.pageSizeBytes,
      nextPa: leaf.physAddr + leaf.pageSizeBytes,
      pageSizeBytes: leaf.pageSizeBytes,
      flags: leaf.flags,
      use,
    };
  }
  flush();
  // The PML4 slots `mappings` does not walk: the recursive entry, the shared kernel half.
  const recursiveLast = RECURSIVE_MAP_BASE + PML4_SLOT_BYTES - 1;
  rows.push({
    first: RECURSIVE_MAP_BASE,
    text: `${formatVaRange(RECURSIVE_MAP_BASE, recursiveLast)} ${"512 GiB".padStart(9)}  ` +
      `${"-".padEnd(7)}  ${"".padEnd(10)}  the recursive entry PML4[${RECURSIVE_PML4_INDEX}]: ` +
      "this space's page tables",
  });
  if (index !== 0) {
    rows.push({
      first: HIGHER_HALF_START,
      text: `${formatVaRange(HIGHER_HALF_START, VIRT_ADDR_LIMIT - 1)} ${"128 TiB".padStart(9)}  ` +
        `${"-".padEnd(7)}  ${"".padEnd(10)}  the kernel half, shared with address space 0 ` +
        "(vmmap 0 shows it)",
    });
  }
  return rows.sort((a, b) => a.first - b.first).map((row) => row.text);
}

/** What `vmmap` names ranges after, read once per command. */
interface KnownRanges {
  readonly structures: readonly KernelStructure[];
  readonly mappings: readonly KernelMapping[];
  readonly lazyRegions: readonly LazyRegion[];
}

/** What a leaf is for, in a few words. */
function useOf(context: CommandContext, leaf: Mapping, known: KnownRanges): string {
  const va = leaf.virtAddr;
  const kernelMapping = known.mappings.find((mapping) => va >= mapping.first && va <= mapping.last);
  if (kernelMapping !== undefined) return kernelMapping.what;
  const isLazy = known.lazyRegions.some((region) => va >= region.start && va < region.end);
  const kind = isLazy ? "demand-zero page" : leaf.isOwned ? "owned page" : "raw mapping";
  const isCopyOnWrite = (leaf.flags & PAGE_COPY_ON_WRITE) !== 0;
  if (leaf.isOwned) return isCopyOnWrite ? `${kind}, copy-on-write` : kind;
  const last = leaf.physAddr + leaf.pageSizeBytes - 1;
  const targets = structuresIn(known.structures, leaf.physAddr, last);
  const what = targets.length === 0
    ? (context.kernel.machine.memory.isRam(leaf.physAddr, leaf.pageSizeBytes) ? "" : " (not RAM)")
    : ` (${targets[0].what}` +
      (targets.length > 1 ? ` and ${plural(targets.length - 1, "more kernel structure")})` : ")");
  return `${kind} of ${hex(leaf.physAddr)}${what}`;
}

/** One line per lazy region of `space`, with how many of its pages exist yet. */
function lazyRegionLines(context: CommandContext, space: AddressSpaceLike): string[] {
  return context.kernel.pageFaults.lazyRegions(space).map((region) => {
    const sizeBytes = region.end - region.start;
    const present = space.mappings(region.start, sizeBytes).length;
    return `demand-zero region ${formatVaRange(region.start, region.end - 1)} ` +
      `(${plural(sizeBytes / PAGE_SIZE_4K, "page")}, ${
        formatFlags(pageFlagBits(region.flags))
      }): ` +
      `${present} present, the rest appear on first touch`;
  });
}
