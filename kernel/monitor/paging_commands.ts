/**
 * Monitor commands for virtual memory: `map`, `unmap`, `protect`,
 * `translate`, `pt`, `peek` (and its alias `x`) and `poke`.
 *
 * `map`, `unmap` and `protect` edit the current {@linkcode AddressSpace};
 * `pt` shows what the MMU's walk reads, with the address split into its
 * indexes and the kernel's software bits labelled as such; `peek` and `poke`
 * go through the MMU like any kernel access, so a bad address faults exactly
 * as it would on the processor (the monitor prints the fault and carries
 * on). Before paging is on, virtual addresses are physical.
 *
 * `unmap` and `poke` refuse to change a structure the kernel owns (its page
 * tables, the direct map, the kernel image, the allocator's and the heap's
 * metadata, the console ring) and say what it is; `unmap!` and `poke!` do it
 * anyway. `map` warns when the frame is a kernel structure, free, or not RAM.
 *
 * @module
 */

import {
  CR0_PG,
  describePageFaultCode,
  entryFrameAddr,
  entryIndex,
  entryTableAddr,
  formatEntry,
  formatVirtAddr,
  type FrameNumber,
  GeneralProtection,
  hex,
  HIGHER_HALF_START,
  isLeaf,
  isPresent,
  leafPageSize,
  type Mmu,
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  type PageSizeBytes,
  PAGING_LEVEL_NAMES,
  type PagingLevel,
  type PhysAddr,
  PTE_PAT,
  PTE_PAT_HUGE,
  PTE_PCD,
  PTE_PS,
  PTE_PWT,
  VIRT_ADDR_LIMIT,
  type VirtAddr,
} from "../../hal/mod.ts";
import { formatBytes } from "../boot/mod.ts";
import {
  type AddressSpaceLike,
  countFrameStates,
  type Mapping,
  PAGE_COPY_ON_WRITE,
  PAGE_GLOBAL,
  PAGE_WRITABLE,
  pageFlags,
  PTE_HIGH_SW_COUNT_MASK,
  PTE_HIGH_SW_COUNT_SHIFT,
  PTE_SW_COW,
  PTE_SW_FOREIGN,
  PTE_SW_OWNED,
} from "../mm/mod.ts";
import {
  parseFlagLetters,
  parseInteger,
  parsePhysAddr,
  parseU64,
  parseVirtAddr,
  type U64,
} from "./_args.ts";
import { entryFlagBits, formatFlags, pageFlagBits } from "./_flags.ts";
import { formatPa, formatVa, formatVaRange, hexDump, plural } from "./_format.ts";
import { type Command, type CommandContext, CommandError } from "./command.ts";
import {
  describeMapping,
  describeStructure,
  kernelMappingAt,
  kernelStructures,
  structuresIn,
} from "./kernel_structures.ts";

/** The most bytes one `peek` shows. */
export const PEEK_MAX_BYTES = 4096;
/** Bytes `peek` shows when no length is given. */
export const PEEK_DEFAULT_BYTES = 16;

/**
 * The LEN of `peek` and `xp`: the word typed, from 1 to
 * {@linkcode PEEK_MAX_BYTES}, or {@linkcode PEEK_DEFAULT_BYTES} when none was.
 *
 * @throws {CommandError} If the word is not such a length.
 */
export function peekLength(word: string | undefined): number {
  return word === undefined
    ? PEEK_DEFAULT_BYTES
    : parseInteger(word, "a length in bytes", 1, PEEK_MAX_BYTES);
}
/** The most pages one `map VA zero N` declares: 1 GiB worth. */
export const MAP_ZERO_MAX_PAGES = PAGE_SIZE_1G / PAGE_SIZE_4K;
/** Page sizes `map` accepts, as typed. */
const PAGE_SIZE_WORDS: Readonly<Record<string, PageSizeBytes>> = {
  "4k": PAGE_SIZE_4K,
  "2m": PAGE_SIZE_2M,
  "1g": PAGE_SIZE_1G,
};
/** Paging levels, root first. */
const LEVELS: readonly PagingLevel[] = [4, 3, 2, 1];
/** Virtual-address bits each level's index comes from. */
const INDEX_BITS: Readonly<Record<PagingLevel, string>> = {
  4: "47:39",
  3: "38:30",
  2: "29:21",
  1: "20:12",
};

const peek: Command = {
  name: "peek",
  usage: "VA [LEN]",
  summary: `dump LEN bytes (default ${PEEK_DEFAULT_BYTES}) at virtual address VA, through the MMU`,
  arity: [1, 2],
  run(args, context) {
    const va = parseVirtAddr(args.words[0]);
    const bytes = context.kernel.machine.mmu.readVirtBytes(va, peekLength(args.words[1]));
    for (const line of hexDump(va, bytes)) context.print(line);
  },
};

/** The paging commands, in help order. */
export const pagingCommands: readonly Command[] = [
  {
    name: "map",
    usage: "VA PA|zero ...",
    summary: "map VA to the frame at PA (FLAGS: r w x u g; SIZE: 4k 2m 1g), or N demand-zero pages",
    details: [
      "map VA PA FLAGS [4k|2m|1g]   map one page of that size (default 4k) to the frame at PA",
      "map VA zero [N] [FLAGS]      declare N pages (default 1) demand-zero: each frame appears",
      "                             on the first touch; FLAGS default rw, plus u in the lower half",
      "FLAGS: r read (always), w write, x execute (else NX), u user, g global; e.g. rw or rwxu",
    ],
    arity: [2, 4],
    completions: [[], ["zero"], [], ["4k", "2m", "1g"]],
    run(args, context) {
      const space = requireAddressSpace(context);
      const va = parseVirtAddr(args.words[0]);
      requireOwnHalf(context, va);
      if (args.words[1].toLowerCase() === "zero") mapZero(context, space, va, args.words.slice(2));
      else mapFrame(context, space, va, args.words.slice(1));
    },
  },
  {
    name: "unmap",
    usage: "VA",
    summary: "remove the page (any size) that starts at VA",
    arity: [1, 1],
    isForceable: true,
    run(args, context) {
      const space = requireAddressSpace(context);
      const va = parseVirtAddr(args.words[0]);
      requireOwnHalf(context, va);
      const leaf = leafStartingAt(context, space, va, "unmap");
      const kernelMapping = kernelMappingAt(context, va);
      if (kernelMapping !== undefined && !args.force) {
        throw new CommandError(
          `${formatVa(va)} is in ${describeMapping(kernelMapping)}: the kernel reaches that ` +
            `memory through it; unmap! ${args.rest.trim()} removes it anyway`,
        );
      }
      const pa = space.unmap(va, leaf.pageSizeBytes);
      context.print(
        `unmap: ${formatVa(va)} no longer maps ${hex(pa)} (${
          formatBytes(leaf.pageSizeBytes)
        } page` +
          `${
            leaf.isOwned ? `; its reference dropped, refcount now ${refcountOf(context, pa)}` : ""
          })`,
      );
    },
  },
  {
    name: "protect",
    usage: "VA FLAGS",
    summary: "change the permissions of the page that starts at VA (FLAGS as for map)",
    arity: [2, 2],
    run(args, context) {
      const space = requireAddressSpace(context);
      const va = parseVirtAddr(args.words[0]);
      requireOwnHalf(context, va);
      const flags = pageFlags(parseFlagLetters(args.words[1]));
      const leaf = leafStartingAt(context, space, va, "protect");
      if ((leaf.flags & PAGE_COPY_ON_WRITE) !== 0 && (flags & PAGE_WRITABLE) !== 0) {
        throw new CommandError(
          `${formatVa(va)} is copy-on-write (frame ${hex(leaf.physAddr)}, refcount ` +
            `${refcountOf(context, leaf.physAddr)}): making it writable would let every sharer ` +
            "write one frame; write to it instead and the fault handler gives the writer a copy",
        );
      }
      space.protect(va, flags, leaf.pageSizeBytes);
      const after = space.mapping(va) as Mapping;
      context.print(
        `protect: ${formatVa(va)} (${formatBytes(leaf.pageSizeBytes)} page) was ` +
          `${formatFlags(pageFlagBits(leaf.flags))}, now ${
            formatFlags(pageFlagBits(after.flags))
          }` +
          (space.isActive || (leaf.flags & PAGE_GLOBAL) !== 0
            ? "; its TLB entries invalidated (INVLPG)"
            : ""),
      );
    },
  },
  {
    name: "translate",
    usage: "VA",
    summary: "the physical address VA maps to in the page tables, with the page's size and flags",
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
      context.print(
        `translate: ${formatVa(va)} -> ${hex(mapping.physAddr + offset)} ` +
          `(${formatBytes(mapping.pageSizeBytes)} page, ${formatFlags(mappingFlagBits(mapping))}` +
          `${softwareWords(mapping)})`,
      );
    },
  },
  {
    name: "pt",
    usage: "VA",
    summary: "the page-table walk for VA: the address split into indexes, each entry decoded",
    arity: [1, 1],
    run(args, context) {
      const va = parseVirtAddr(args.words[0]);
      const walk = context.kernel.machine.mmu.probe(va);
      if (walk.kind === "unpaged") {
        context.print(`pt: paging is off (CR0.PG clear): ${formatVa(va)} is physical ${hex(va)}`);
        return;
      }
      const cr3 = context.kernel.machine.cpu.cr3;
      const slot = context.spaces.indexOfPml4(cr3);
      context.print(
        `pt: ${formatVa(va)} in ${slot < 0 ? "the address space" : `address space ${slot}`}, ` +
          `PML4 at ${hex(cr3 - (cr3 % PAGE_SIZE_4K))} (CR3)`,
      );
      const split = LEVELS.map((level) =>
        `${PAGING_LEVEL_NAMES[level]} ${entryIndex(va, level)} (bits ${INDEX_BITS[level]})`
      );
      context.print(`  index: ${split.join(", ")}, offset ${hex(va % PAGE_SIZE_4K)} (bits 11:0)`);
      for (const step of walk.steps) {
        const name = `${PAGING_LEVEL_NAMES[step.level]}[${entryIndex(va, step.level)}]`;
        context.print(
          `  ${name.padEnd(9)} at ${formatPa(step.entryAddr)} = ` +
            `${formatEntry(step.low32, step.high32)}  ${describeWalkEntry(step)}`,
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
        `  -> ${hex(walk.physAddr)} (${formatBytes(walk.pageSizeBytes)} page; ` +
          "the MMU combines the levels: " +
          `${
            formatFlags({
              writable: walk.writable,
              user: walk.user,
              noExecute: !walk.executable,
              global: walk.global,
            })
          })`,
      );
    },
  },
  peek,
  { ...peek, name: "x", summary: "the same as peek (as in GDB and QEMU)" },
  {
    name: "poke",
    usage: "VA VALUE [WIDTH]",
    summary: "write VALUE at virtual address VA as WIDTH bytes: 1 (default), 2, 4 or 8",
    arity: [2, 3],
    isForceable: true,
    run(args, context) {
      const va = parseVirtAddr(args.words[0]);
      const widthBytes = args.words.length > 2 ? parseWidth(args.words[2]) : 1;
      const mmu = context.kernel.machine.mmu;
      let write: () => string;
      if (widthBytes === 8) {
        const value = parseU64(args.words[1], "an 8-byte value");
        write = () => {
          writeVirtU64(mmu, va, value);
          return hex(value.high32, 8) + value.low32.toString(16).padStart(8, "0");
        };
      } else {
        const max = 2 ** (8 * widthBytes) - 1;
        const value = parseInteger(args.words[1], `a ${widthBytes}-byte value`, 0, max);
        write = () => {
          if (widthBytes === 1) mmu.writeVirt8(va, value);
          else if (widthBytes === 2) mmu.writeVirt16(va, value);
          else mmu.writeVirt32(va, value);
          return hex(value, widthBytes * 2);
        };
      }
      if (!args.force) refuseKernelTarget(context, va, widthBytes, args.rest.trim());
      const shown = write();
      context.print(`poke: wrote ${shown} at ${formatVa(va)}`);
    },
  },
];

/** `map VA PA FLAGS [SIZE]`. */
function mapFrame(
  context: CommandContext,
  space: AddressSpaceLike,
  va: VirtAddr,
  words: readonly string[],
): void {
  if (words.length < 2) {
    throw new CommandError("expected VA PA FLAGS [4k|2m|1g] or VA zero [N] [FLAGS] (see help map)");
  }
  const pa = parsePhysAddr(words[0]);
  const flags = pageFlags(parseFlagLetters(words[1]));
  const sizeWord = words[2]?.toLowerCase() ?? "4k";
  const pageSizeBytes = PAGE_SIZE_WORDS[sizeWord];
  if (pageSizeBytes === undefined) {
    throw new CommandError(`expected a page size of 4k, 2m or 1g, got "${words[2]}"`);
  }
  checkAligned("virtual", va, pageSizeBytes);
  checkAligned("physical", pa, pageSizeBytes);
  const held = pageSizeBytes === PAGE_SIZE_4K ? context.pages.get(pa) : undefined;
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
    space.map(va, pa, flags, pageSizeBytes);
  }
  const mapping = space.mapping(va) as Mapping;
  context.print(
    `map: ${formatVa(va)} -> ${hex(pa)} (${formatBytes(pageSizeBytes)} page, ` +
      `${formatFlags(mappingFlagBits(mapping))}) ` +
      (held === undefined
        ? "(the mapping owns no reference)"
        : `(the mapping holds a reference: refcount ${held.refcount})`),
  );
  for (const warning of frameWarnings(context, va, pa, pageSizeBytes)) {
    context.print(`map: warning: ${warning}`);
  }
}

/** `map VA zero [N] [FLAGS]`. */
function mapZero(
  context: CommandContext,
  space: AddressSpaceLike,
  va: VirtAddr,
  words: readonly string[],
): void {
  checkAligned("virtual", va, PAGE_SIZE_4K);
  let pageCount = 1;
  let flagWords = words;
  if (words.length > 0 && /^(0x)?[0-9a-f_]+$/i.test(words[0])) {
    pageCount = parseInteger(words[0], "a page count", 1, MAP_ZERO_MAX_PAGES);
    flagWords = words.slice(1);
  }
  if (flagWords.length > 1) throw new CommandError("expected VA zero [N] [FLAGS] (see help map)");
  const isLowerHalf = va < HIGHER_HALF_START;
  const flags = pageFlags(
    flagWords.length > 0 ? parseFlagLetters(flagWords[0]) : {
      writable: true,
      user: isLowerHalf,
    },
  );
  const sizeBytes = pageCount * PAGE_SIZE_4K;
  const last = va + sizeBytes - 1;
  if (last >= (isLowerHalf ? HIGHER_HALF_START : VIRT_ADDR_LIMIT)) {
    throw new CommandError(
      `${formatVa(va)}+${plural(pageCount, "page")} runs past the end of the ` +
        `${isLowerHalf ? "lower" : "higher"} half`,
    );
  }
  const faults = context.kernel.pageFaults;
  const overlap = faults.lazyRegions(space).find((region) =>
    va < region.end && region.start <= last
  );
  if (overlap !== undefined) {
    throw new CommandError(
      `${formatVaRange(va, last)} overlaps the demand-zero region ` +
        `${formatVaRange(overlap.start, overlap.end - 1)}`,
    );
  }
  faults.declareLazy(space, va, sizeBytes, flags);
  const present = space.mappings(va, sizeBytes).length;
  context.print(
    `map: ${formatVaRange(va, last)} demand-zero, ${plural(pageCount, "page")} ` +
      `${formatFlags(pageFlagBits(flags))}: each frame appears on its first touch` +
      (present > 0 ? ` (${present} already mapped ${present === 1 ? "stays" : "stay"} as is)` : ""),
  );
}

/** Warnings about the frames `[pa, pa + sizeBytes)` that `map` just mapped at `va`. */
function frameWarnings(
  context: CommandContext,
  va: VirtAddr,
  pa: PhysAddr,
  sizeBytes: number,
): string[] {
  const { frames, machine } = context.kernel;
  const last = pa + sizeBytes - 1;
  const warnings: string[] = [];
  if (!machine.memory.isRam(pa, sizeBytes)) {
    warnings.push(
      `${hex(pa)}-${hex(last)} is not all RAM (a hole, a device, or past the end of memory at ` +
        `${hex(machine.memory.endBytes)}): accesses there reach no RAM`,
    );
  }
  const structures = structuresIn(kernelStructures(context), pa, last);
  if (structures.length > 0) {
    warnings.push(
      `the frame${sizeBytes > PAGE_SIZE_4K ? "s hold" : " is"} ` +
        `${describeStructure(structures[0])}` +
        (structures.length > 1
          ? ` and ${plural(structures.length - 1, "more kernel structure")}`
          : "") +
        `: writes through ${formatVa(va)} change the kernel's own state`,
    );
  }
  const frameCount = sizeBytes / PAGE_SIZE_4K;
  const free = countFrameStates(frames, pa / PAGE_SIZE_4K, frameCount).free;
  if (free > 0) {
    const which = frameCount === 1
      ? "the frame is"
      : free === frameCount
      ? `all ${frameCount} frames are`
      : `${free} of the ${frameCount} frames are`;
    warnings.push(
      `${which} free: the allocator may hand ${free === 1 ? "it" : "them"} out to someone else ` +
        "while mapped here",
    );
  }
  return warnings;
}

/**
 * Throws unless a write of `widthBytes` at `va` leaves every kernel
 * structure alone (blocks the monitor allocated with `kmalloc` are the
 * monitor's to write).
 */
function refuseKernelTarget(
  context: CommandContext,
  va: VirtAddr,
  widthBytes: number,
  typed: string,
): void {
  // The bytes written, split at the page boundary they may cross.
  const firstPageEnd = va - (va % PAGE_SIZE_4K) + PAGE_SIZE_4K;
  const firstBytes = Math.min(widthBytes, firstPageEnd - va);
  const pieces: [number, number][] = [[va, firstBytes]];
  if (firstBytes < widthBytes) {
    pieces.push([firstPageEnd % VIRT_ADDR_LIMIT, widthBytes - firstBytes]);
  }
  const space = context.addressSpace;
  const heap = context.kernel.heap;
  const structures = kernelStructures(context);
  for (const [pieceVa, pieceBytes] of pieces) {
    const pa = space === undefined || !isPaging(context)
      ? pieceVa
      : space.translate(pieceVa as VirtAddr);
    if (pa === undefined) continue; // the write faults; the MMU says so
    const last = pa + pieceBytes - 1;
    const isMonitorBlock = [...context.allocations].some((block) => {
      const first = block - heap.directMapOffset;
      return pa >= first && last < first + heap.usableSize(block);
    });
    if (isMonitorBlock) continue;
    const target = structuresIn(structures, pa, last)[0];
    if (target !== undefined) {
      throw new CommandError(
        `${formatVa(pieceVa as VirtAddr)} is physical ${hex(pa)}, in ${
          describeStructure(target)
        }: ` +
          `poke! ${typed} writes it anyway`,
      );
    }
  }
}

/** The leaf that starts exactly at `va`, or a CommandError saying why there is none. */
function leafStartingAt(
  context: CommandContext,
  space: AddressSpaceLike,
  va: VirtAddr,
  action: string,
): Mapping {
  const leaf = space.mapping(va);
  if (leaf === undefined) {
    const isLazy = context.kernel.pageFaults.lazyRegions(space).some((region) =>
      va >= region.start && va < region.end
    );
    throw new CommandError(
      `${formatVa(va)} is not mapped` +
        (isLazy ? " (yet: it is a demand-zero page, mapped on its first touch)" : ""),
    );
  }
  if (leaf.virtAddr !== va) {
    throw new CommandError(
      `${formatVa(va)} is inside the ${formatBytes(leaf.pageSizeBytes)} page at ` +
        `${formatVa(leaf.virtAddr)}: ${action} its first address`,
    );
  }
  return leaf;
}

/** A leaf's permissions as the monitor prints them, accessed and dirty included. */
function mappingFlagBits(mapping: Mapping) {
  return pageFlagBits(mapping.flags, { accessed: mapping.isAccessed, dirty: mapping.isDirty });
}

/** `, sw: OWN COW` for a mapping's software bits, or nothing. */
function softwareWords(mapping: Mapping): string {
  const words: string[] = [];
  if (mapping.isOwned) words.push("OWN");
  if ((mapping.flags & PAGE_COPY_ON_WRITE) !== 0) words.push("COW");
  return words.length === 0 ? "" : `, sw: ${words.join(" ")}`;
}

/**
 * One step of a page walk in words: the flag columns, the rarer hardware
 * bits (PS, PWT, PCD, PAT), where it points, and the bits the kernel
 * defines, labelled `sw:` so no one reads them as hardware bits.
 */
function describeWalkEntry(
  step: { readonly level: PagingLevel; readonly low32: number; readonly high32: number },
): string {
  const { level, low32, high32 } = step;
  if (!isPresent(low32)) return "not present";
  const leaf = isLeaf(low32, level);
  const words = [formatFlags(entryFlagBits(low32, high32, leaf))];
  if (low32 & PTE_PWT) words.push("PWT");
  if (low32 & PTE_PCD) words.push("PCD");
  if (level !== 1 && (low32 & PTE_PS) !== 0) words.push("PS");
  if (
    (level === 1 && (low32 & PTE_PAT) !== 0) ||
    (level !== 1 && leaf && (low32 & PTE_PAT_HUGE) !== 0)
  ) {
    words.push("PAT");
  }
  const address = leaf
    ? entryFrameAddr(low32, high32, leafPageSize(level as 1 | 2 | 3))
    : entryTableAddr(low32, high32);
  words.push(leaf ? `-> frame ${hex(address)}` : `-> table ${hex(address)}`);
  const software: string[] = [];
  if (leaf) {
    if (low32 & PTE_SW_OWNED) software.push("bit 9 OWN (holds a reference)");
    if (low32 & PTE_SW_COW) software.push("bit 10 COW (copy-on-write)");
  } else {
    if (level === 4 && (low32 & PTE_SW_FOREIGN) !== 0) {
      software.push("bit 9 FOREIGN (not this space's table)");
    }
    const count = (high32 & PTE_HIGH_SW_COUNT_MASK) >>> PTE_HIGH_SW_COUNT_SHIFT;
    software.push(`bits 61:52 = ${plural(count, "live entry", "live entries")} below`);
  }
  if (software.length > 0) words.push(`sw: ${software.join(", ")}`);
  return words.join("  ");
}

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

/** Refuses a change to the kernel half from any address space but the kernel's. */
function requireOwnHalf(context: CommandContext, va: VirtAddr): void {
  const current = context.spaces.current;
  if (va >= HIGHER_HALF_START && current !== undefined && current.index !== 0) {
    throw new CommandError(
      `${formatVa(va)} is in the kernel half, which address space ${current.index} shares ` +
        "with address space 0: change it there (as switch 0)",
    );
  }
}

function checkAligned(kind: "virtual" | "physical", address: number, alignBytes: number): void {
  if (address % alignBytes === 0) return;
  const shown = kind === "virtual" ? formatVirtAddr(address as VirtAddr) : hex(address);
  throw new CommandError(`${kind} address ${shown} is not ${formatBytes(alignBytes)} aligned`);
}

function refcountOf(context: CommandContext, pa: number): number {
  return Math.max(0, context.kernel.frames.metadata.refcount((pa / PAGE_SIZE_4K) as FrameNumber));
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
