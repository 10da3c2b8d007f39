/**
 * Where the kernel image lies in physical memory, taken from what the boot
 * information says about the kernel that was booted (docs/multiboot2.md,
 * "Where the kernel image is"):
 *
 * - the base is the load base address tag (21), else the lowest allocated
 *   ELF section of the ELF sections tag (9), else the kernel's link address
 *   (1 MiB);
 * - the end is the highest allocated ELF section's end (tag 9: code, data
 *   and .bss, which the loader zeroed, stack included), else the lowest MBI
 *   or module address above the base (a loader places those after the
 *   image), never more than the kernel's own linked size from the base.
 *
 * ELF sections that are not allocated but have an address are copies the
 * loader made (GRUB copies the symbol and string tables after the image):
 * they are listed so they can be reserved too.
 *
 * @module
 */

import { hex, KERNEL_LOAD_ADDRESS } from "../../hal/mod.ts";
import type { BootInfo } from "./multiboot2_parser.ts";

/** A section copy the loader placed in memory, to be reserved. */
export interface ElfSectionCopy {
  /** First byte of the copy. */
  readonly base: number;
  /** Length in bytes. */
  readonly length: number;
  /** What it is, e.g. `ELF section 5 copy (symbol table)`. */
  readonly what: string;
}

/** The kernel image's physical extent and where each bound came from. */
export interface KernelImageExtent {
  /** First byte of the image. */
  readonly base: number;
  /** One past the last byte. */
  readonly end: number;
  /** Where the base came from, e.g. `the load base address tag (21)`. */
  readonly baseSource: string;
  /** Where the end came from, e.g. `the ELF sections tag (9)`. */
  readonly endSource: string;
  /** Section copies outside the image (non-allocated sections with an address). */
  readonly sectionCopies: readonly ElfSectionCopy[];
  /** Things in the ELF sections tag the kernel could not use, one line each. */
  readonly warnings: readonly string[];
}

/** ELF section header flag: the section occupies memory at run time (ELF spec, sh_flags). */
const SHF_ALLOC = 0x2;
/** ELF section type 0: an unused header. */
const SHT_NULL = 0;
/** Section header sizes: ELF32 and ELF64 (ELF spec, Elf32_Shdr and Elf64_Shdr). */
const ELF32_SECTION_HEADER_BYTES = 40;
const ELF64_SECTION_HEADER_BYTES = 64;
/** The kernel's higher-half image window: virtual 0xffffffff80000000 + physical (as 32-bit halves). */
const KERNEL_WINDOW_HIGH = 0xffffffff;
const KERNEL_WINDOW_LOW_BASE = 0x80000000;
const SECTION_TYPE_NAMES: Record<number, string> = {
  1: "program data",
  2: "symbol table",
  3: "string table",
  4: "relocations",
  8: "bss",
};

interface ElfSection {
  readonly index: number;
  readonly type: number;
  readonly isAllocated: boolean;
  readonly base: number;
  readonly length: number;
}

/**
 * Computes the kernel image's extent from the boot information.
 *
 * @param bootInfo The parsed boot information.
 * @param ownSizeBytes The kernel's own linked size: the most the image can
 *   span when only the MBI or module addresses bound it.
 * @returns The extent, the section copies and any warnings.
 * @example
 * ```ts
 * import type { PhysAddr } from "../../hal/mod.ts";
 * import type { BootInfo } from "./multiboot2_parser.ts";
 * import { kernelImageExtent } from "./kernel_image_extent.ts";
 * const bootInfo = {
 *   mbi: { address: 0x104720 as PhysAddr, totalSize: 1600, tagTypes: [21] },
 *   warnings: [], modules: [], memoryMap: [], efiBootServicesNotTerminated: false,
 *   loadBaseAddr: 0x100000 as PhysAddr,
 * } satisfies BootInfo;
 * const extent = kernelImageExtent(bootInfo, 512 * 1024);
 * console.assert(extent.base === 0x100000 && extent.end === 0x104720);
 * ```
 */
export function kernelImageExtent(bootInfo: BootInfo, ownSizeBytes: number): KernelImageExtent {
  const warnings: string[] = [];
  const sections = readElfSections(bootInfo, warnings);
  const allocated = sections.filter((s) => s.isAllocated && s.length > 0);
  const sectionCopies = sections
    .filter((s) => !s.isAllocated && s.length > 0 && s.base !== 0)
    .map((s) => ({
      base: s.base,
      length: s.length,
      what: `ELF section ${s.index} copy (${SECTION_TYPE_NAMES[s.type] ?? `type ${s.type}`})`,
    }));
  const elfBase = allocated.length > 0 ? Math.min(...allocated.map((s) => s.base)) : undefined;
  const elfEnd = allocated.length > 0
    ? Math.max(...allocated.map((s) => s.base + s.length))
    : undefined;

  let base: number = KERNEL_LOAD_ADDRESS;
  let baseSource = `the kernel's link address ${hex(KERNEL_LOAD_ADDRESS)}`;
  if (bootInfo.loadBaseAddr !== undefined) {
    base = bootInfo.loadBaseAddr;
    baseSource = "the load base address tag (21)";
  }
  // An allocated section below that base still belongs to the image.
  if (elfBase !== undefined && (bootInfo.loadBaseAddr === undefined || elfBase < base)) {
    base = elfBase;
    baseSource = "the ELF sections tag (9)";
  }
  if (elfEnd !== undefined) {
    const endSource = "the ELF sections tag (9)";
    return { base, end: elfEnd, baseSource, endSource, sectionCopies, warnings };
  }
  const ownEnd = base + ownSizeBytes;
  const bounds = [
    { address: bootInfo.mbi.address as number, what: "the MBI" },
    ...bootInfo.modules.map((module, index) => ({
      address: module.start as number,
      what: `module ${index}`,
    })),
  ].filter((bound) => bound.address > base && bound.address <= ownEnd)
    .sort((a, b) => a.address - b.address);
  const bound = bounds[0];
  return bound === undefined
    ? {
      base,
      end: ownEnd,
      baseSource,
      endSource: `the kernel's own size (${ownSizeBytes} bytes)`,
      sectionCopies,
      warnings,
    }
    : {
      base,
      end: bound.address,
      baseSource,
      endSource: `the lowest MBI or module address (${bound.what} at ${hex(bound.address)})`,
      sectionCopies,
      warnings,
    };
}

/** The section headers of tag 9 that describe memory, or none (with a warning) if unusable. */
function readElfSections(bootInfo: BootInfo, warnings: string[]): ElfSection[] {
  const tag = bootInfo.elfSections;
  if (tag === undefined || tag.sectionCount === 0) return [];
  const is64 = tag.entrySizeBytes === ELF64_SECTION_HEADER_BYTES;
  if (!is64 && tag.entrySizeBytes !== ELF32_SECTION_HEADER_BYTES) {
    warnings.push(
      `ELF sections tag has entsize ${tag.entrySizeBytes}, neither ELF32's 40 nor ELF64's 64: ` +
        `its sections are not used`,
    );
    return [];
  }
  const view = new DataView(tag.headers.buffer, tag.headers.byteOffset, tag.headers.byteLength);
  const sections: ElfSection[] = [];
  for (let index = 0; index < tag.sectionCount; index++) {
    const at = index * tag.entrySizeBytes;
    const type = view.getUint32(at + 4, true);
    if (type === SHT_NULL) continue;
    // Elf32_Shdr: flags, addr, offset, size as u32 at 8, 12, 16, 20.
    // Elf64_Shdr: flags, addr, offset, size as u64 at 8, 16, 24, 32 (halves, no BigInt).
    const flags = view.getUint32(at + 8, true);
    const addrLow = view.getUint32(at + (is64 ? 16 : 12), true);
    const addrHigh = is64 ? view.getUint32(at + 20, true) : 0;
    const sizeLow = view.getUint32(at + (is64 ? 32 : 20), true);
    const sizeHigh = is64 ? view.getUint32(at + 36, true) : 0;
    const address = physicalAddress(addrLow, addrHigh);
    const where = `ELF section ${index} at ${hex64(addrLow, addrHigh)}`;
    if (address === undefined) {
      warnings.push(`${where} is not at a physical address the kernel can use: not used`);
    } else if (sizeHigh !== 0 || address + sizeLow > 2 ** 32) {
      warnings.push(`${where} has size ${hex64(sizeLow, sizeHigh)}, ending above 4 GiB: not used`);
    } else {
      sections.push({
        index,
        type,
        isAllocated: (flags & SHF_ALLOC) !== 0,
        base: address,
        length: sizeLow,
      });
    }
  }
  return sections;
}

/**
 * A section address as a physical address: below 4 GiB as is (the loader
 * loads a multiboot2 image there), or in the kernel's -2 GiB window
 * (0xffffffff80000000 + physical, as the kernel maps its image).
 */
function physicalAddress(low: number, high: number): number | undefined {
  if (high === 0) return low;
  if (high === KERNEL_WINDOW_HIGH && low >= KERNEL_WINDOW_LOW_BASE) {
    return low - KERNEL_WINDOW_LOW_BASE;
  }
  return undefined;
}

function hex64(low: number, high: number): string {
  return high === 0 ? hex(low) : `0x${high.toString(16)}${low.toString(16).padStart(8, "0")}`;
}
