/**
 * The kernel's Multiboot2 boot information parser. It reads the MBI from
 * RAM, as a kernel does through EBX, and trusts nothing: every size, offset,
 * count and string is checked before use, and any inconsistency is a
 * {@linkcode KernelError} `InvalidBootInfo` whose one-line message names the
 * tag and its physical address. It never reads outside the MBI.
 *
 * The protocol facts it relies on are in `docs/multiboot2.md`. Decisions
 * where the spec leaves room:
 * - The header's reserved field must be 0, but the spec tells the OS to
 *   ignore it: a non-zero value is a warning, not an error.
 * - Unknown tag types are skipped by their size, listed in `mbi.tagTypes`,
 *   and noted in `warnings`.
 * - Tags other than modules (3) may appear once; a second copy is rejected as
 *   ambiguous.
 * - Fixed-size tags must have exactly their size; tags that end in variable
 *   data (framebuffer, RSDP copies, ...) must be at least their minimum, since
 *   C loaders write `sizeof` of structures that may carry tail padding.
 * - 64-bit values must be below 2^53 so they are exact as numbers.
 * - Strings are decoded as UTF-8, invalid sequences becoming U+FFFD.
 * - Module ranges are checked for order only: whether they lie in RAM is for
 *   whoever reserves and reads them.
 *
 * The tag numbers here are the kernel's own copy of the spec (its
 * `multiboot2.h`), independent of the boot loader's, so tests written with
 * the loader's MbiWriter cross-check the two.
 *
 * @module
 */

import { alignUp, hex, type PhysAddr, type PhysicalMemory } from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";

/** One boot module: its physical range and string. */
export interface BootInfoModule {
  /** First byte of the module. */
  readonly start: PhysAddr;
  /** One past the last byte (GRUB's mod_end). */
  readonly end: PhysAddr;
  /** The module's string, usually its command line. */
  readonly string: string;
}

/** One memory map region. */
export interface BootInfoMemoryRegion {
  /** First byte of the region. */
  readonly base: number;
  /** Length in bytes. */
  readonly length: number;
  /** 1 available, 3 ACPI reclaimable, 4 NVS, 5 bad RAM, anything else reserved. */
  readonly type: number;
}

/** Basic memory information (tag 4). */
export interface BootInfoBasicMemInfo {
  /** KiB of lower memory from address 0. */
  readonly memLowerKiB: number;
  /** KiB of upper memory from 1 MiB to the first hole. */
  readonly memUpperKiB: number;
}

/** The BIOS boot device (tag 5); unused fields are 0xFFFFFFFF. */
export interface BootInfoBootDevice {
  /** BIOS drive number. */
  readonly biosDevice: number;
  /** Top-level partition. */
  readonly partition: number;
  /** Sub-partition. */
  readonly subPartition: number;
}

/** VBE information (tag 7). */
export interface BootInfoVbe {
  /** Current VBE mode. */
  readonly mode: number;
  /** Protected-mode interface segment. */
  readonly interfaceSegment: number;
  /** Protected-mode interface offset. */
  readonly interfaceOffset: number;
  /** Protected-mode interface length. */
  readonly interfaceLength: number;
  /** VBE controller information, 512 bytes. */
  readonly controlInfo: Uint8Array;
  /** VBE mode information, 256 bytes. */
  readonly modeInfo: Uint8Array;
}

/** A palette entry of an indexed framebuffer. */
export interface BootInfoPaletteColor {
  /** Red, 0..255. */
  readonly red: number;
  /** Green, 0..255. */
  readonly green: number;
  /** Blue, 0..255. */
  readonly blue: number;
}

/** Colour information of a framebuffer, by its type (0, 1 or 2). */
export type BootInfoFramebufferColorInfo =
  | { readonly kind: "indexed"; readonly palette: readonly BootInfoPaletteColor[] }
  | {
    readonly kind: "rgb";
    readonly redPosition: number;
    readonly redMaskSize: number;
    readonly greenPosition: number;
    readonly greenMaskSize: number;
    readonly bluePosition: number;
    readonly blueMaskSize: number;
  }
  | { readonly kind: "egaText" };

/** Framebuffer information (tag 8). */
export interface BootInfoFramebuffer {
  /** Physical address of the framebuffer. */
  readonly address: number;
  /** Bytes per line. */
  readonly pitchBytes: number;
  /** Width in pixels (characters for EGA text). */
  readonly width: number;
  /** Height in pixels (characters for EGA text). */
  readonly height: number;
  /** Bits per pixel. */
  readonly bitsPerPixel: number;
  /** The framebuffer type and its colours. */
  readonly colorInfo: BootInfoFramebufferColorInfo;
}

/** ELF section headers (tag 9). */
export interface BootInfoElfSections {
  /** Number of section headers. */
  readonly sectionCount: number;
  /** Bytes per section header. */
  readonly entrySizeBytes: number;
  /** Index of the section-name string table. */
  readonly stringTableIndex: number;
  /** The headers, `sectionCount * entrySizeBytes` bytes. */
  readonly headers: Uint8Array;
}

/** The APM BIOS interface (tag 10). */
export interface BootInfoApm {
  /** APM version. */
  readonly version: number;
  /** 32-bit code segment. */
  readonly codeSegment: number;
  /** Entry point offset. */
  readonly offset: number;
  /** 16-bit code segment. */
  readonly codeSegment16: number;
  /** Data segment. */
  readonly dataSegment: number;
  /** Flags. */
  readonly flags: number;
  /** 32-bit code segment length. */
  readonly codeSegmentLength: number;
  /** 16-bit code segment length. */
  readonly codeSegment16Length: number;
  /** Data segment length. */
  readonly dataSegmentLength: number;
}

/** SMBIOS tables (tag 13). */
export interface BootInfoSmbios {
  /** Major version. */
  readonly major: number;
  /** Minor version. */
  readonly minor: number;
  /** The tables. */
  readonly tables: Uint8Array;
}

/** Network information (tag 16). */
export interface BootInfoNetwork {
  /** The DHCP ACK packet. */
  readonly dhcpAck: Uint8Array;
}

/** The EFI memory map (tag 17), descriptors left raw. */
export interface BootInfoEfiMemoryMap {
  /** Bytes per descriptor (at least 40). */
  readonly descriptorSizeBytes: number;
  /** Descriptor version. */
  readonly descriptorVersion: number;
  /** The descriptors, a whole number of them. */
  readonly descriptors: Uint8Array;
}

/** Everything the boot information says, validated. */
export interface BootInfo {
  /** The MBI itself: where it is, its size, and the tag types in order (end tag excluded). */
  readonly mbi: {
    readonly address: PhysAddr;
    readonly totalSize: number;
    readonly tagTypes: readonly number[];
  };
  /** Things that are odd but allowed (a non-zero reserved field, unknown tags). */
  readonly warnings: readonly string[];
  /** Boot loader name (tag 2). */
  readonly bootloaderName?: string;
  /** Kernel command line (tag 1). */
  readonly cmdline?: string;
  /** Boot modules (tags 3), in order. */
  readonly modules: readonly BootInfoModule[];
  /** Basic memory information (tag 4). */
  readonly basicMemInfo?: BootInfoBasicMemInfo;
  /** BIOS boot device (tag 5). */
  readonly bootDevice?: BootInfoBootDevice;
  /** Memory map (tag 6); empty if there is none. */
  readonly memoryMap: readonly BootInfoMemoryRegion[];
  /** VBE information (tag 7). */
  readonly vbe?: BootInfoVbe;
  /** Framebuffer information (tag 8). */
  readonly framebuffer?: BootInfoFramebuffer;
  /** ELF section headers (tag 9). */
  readonly elfSections?: BootInfoElfSections;
  /** APM table (tag 10). */
  readonly apm?: BootInfoApm;
  /** Physical address of the EFI 32-bit system table (tag 11). */
  readonly efi32?: number;
  /** Physical address of the EFI 64-bit system table (tag 12). */
  readonly efi64?: number;
  /** SMBIOS tables (tag 13). */
  readonly smbios?: BootInfoSmbios;
  /** Copy of the ACPI 1.0 RSDP (tag 14), at least 20 bytes. */
  readonly rsdpV1?: Uint8Array;
  /** Copy of the ACPI 2.0+ RSDP (tag 15), at least 36 bytes. */
  readonly rsdpV2?: Uint8Array;
  /** Network information (tag 16). */
  readonly network?: BootInfoNetwork;
  /** EFI memory map (tag 17). */
  readonly efiMemoryMap?: BootInfoEfiMemoryMap;
  /** Whether EFI boot services are still running (tag 18 present). */
  readonly efiBootServicesNotTerminated: boolean;
  /** EFI 32-bit image handle (tag 19). */
  readonly efi32ImageHandle?: number;
  /** EFI 64-bit image handle (tag 20). */
  readonly efi64ImageHandle?: number;
  /** Physical address the kernel image was loaded at (tag 21). */
  readonly loadBaseAddr?: PhysAddr;
}

const BOOT_MAGIC = 0x36d76289;
const MULTIBOOT1_BOOT_MAGIC = 0x2badb002;
const TAG_ALIGN = 8;
const MIN_TOTAL_SIZE = 16;
const MMAP_MIN_ENTRY_SIZE = 24;
const EFI_MIN_DESCRIPTOR_SIZE = 40;

// Tag types (docs/multiboot2.md, "The boot information").
const TAG_END = 0;
const TAG_CMDLINE = 1;
const TAG_BOOT_LOADER_NAME = 2;
const TAG_MODULE = 3;
const TAG_BASIC_MEMINFO = 4;
const TAG_BOOTDEV = 5;
const TAG_MMAP = 6;
const TAG_VBE = 7;
const TAG_FRAMEBUFFER = 8;
const TAG_ELF_SECTIONS = 9;
const TAG_APM = 10;
const TAG_EFI32 = 11;
const TAG_EFI64 = 12;
const TAG_SMBIOS = 13;
const TAG_ACPI_OLD = 14;
const TAG_ACPI_NEW = 15;
const TAG_NETWORK = 16;
const TAG_EFI_MMAP = 17;
const TAG_EFI_BS = 18;
const TAG_EFI32_IH = 19;
const TAG_EFI64_IH = 20;
const TAG_LOAD_BASE_ADDR = 21;

const TAG_NAMES: readonly string[] = [
  "end tag",
  "command line tag",
  "boot loader name tag",
  "module tag",
  "basic memory information tag",
  "boot device tag",
  "memory map tag",
  "VBE tag",
  "framebuffer tag",
  "ELF sections tag",
  "APM tag",
  "EFI 32-bit system table tag",
  "EFI 64-bit system table tag",
  "SMBIOS tag",
  "ACPI old RSDP tag",
  "ACPI new RSDP tag",
  "network tag",
  "EFI memory map tag",
  "EFI boot services tag",
  "EFI 32-bit image handle tag",
  "EFI 64-bit image handle tag",
  "load base address tag",
];

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Checks EAX at kernel entry.
 *
 * @param magic The value the boot loader left in EAX.
 * @throws {KernelError} `InvalidBootMagic` unless it is 0x36d76289.
 */
export function checkBootMagic(magic: number): void {
  if (magic === BOOT_MAGIC) return;
  const hint = magic === MULTIBOOT1_BOOT_MAGIC ? " (0x2badb002 is the multiboot1 magic)" : "";
  throw new KernelError(
    "InvalidBootMagic",
    `Invalid boot magic ${hex(magic >>> 0)}: expected multiboot2 ${hex(BOOT_MAGIC)}${hint}`,
  );
}

/**
 * Parses and validates the Multiboot2 boot information at `mbiAddress`,
 * reading only from RAM.
 *
 * @param memory The machine's RAM.
 * @param mbiAddress Physical address of the MBI (EBX at entry).
 * @returns The boot information.
 * @throws {KernelError} `InvalidBootInfo`, naming what is wrong and where: a
 *   misaligned or non-RAM address; a total_size below 16, not a multiple of 8
 *   or running past RAM; a tag under 8 bytes, running past total_size or of
 *   the wrong size for its type; a missing end tag or one not last; a bad
 *   memory map entry_size or count; a string without its NUL; a module whose
 *   start is after its end; a 64-bit value of 2^53 or more; a repeated tag.
 * @example
 * ```ts
 * import { PhysicalMemory } from "../../hal/mod.ts";
 * import { parseMultiboot2 } from "./multiboot2_parser.ts";
 * import type { PhysAddr } from "../../hal/mod.ts";
 * const memory = PhysicalMemory.contiguous(16 * 2 ** 20);
 * memory.write32(0x10000 as PhysAddr, 16); // total_size: header + end tag
 * memory.write32(0x1000c as PhysAddr, 8); // end tag: type 0, size 8
 * const info = parseMultiboot2(memory, 0x10000 as PhysAddr);
 * console.assert(info.mbi.totalSize === 16 && info.memoryMap.length === 0);
 * ```
 */
export function parseMultiboot2(memory: PhysicalMemory, mbiAddress: PhysAddr): BootInfo {
  if (!Number.isSafeInteger(mbiAddress) || mbiAddress < 0) {
    throw invalid(`MBI address ${String(mbiAddress)} is not a physical address`);
  }
  if (mbiAddress % TAG_ALIGN !== 0) {
    throw invalid(`MBI address ${hex(mbiAddress)} is not 8-byte aligned`);
  }
  if (!memory.isRam(mbiAddress, 8)) {
    throw invalid(`MBI address ${hex(mbiAddress)} is not in RAM`);
  }
  const totalSize = memory.read32(mbiAddress);
  const reserved = memory.read32((mbiAddress + 4) as PhysAddr);
  const mbiEnd = mbiAddress + totalSize;
  const where = `MBI at ${hex(mbiAddress)}`;
  if (totalSize < MIN_TOTAL_SIZE) {
    throw invalid(`${where} has total_size ${totalSize}, below the minimum 16`);
  }
  if (totalSize % TAG_ALIGN !== 0) {
    throw invalid(`${where} has total_size ${totalSize}, not a multiple of 8`);
  }
  if (!memory.isRam(mbiAddress, totalSize)) {
    throw invalid(`${where} has total_size ${totalSize}, running past RAM to ${hex(mbiEnd)}`);
  }

  const tagTypes: number[] = [];
  const warnings: string[] = [];
  if (reserved !== 0) warnings.push(`${where} has reserved field ${hex(reserved)}, not 0`);
  const info: Mutable<BootInfo> = {
    mbi: { address: mbiAddress, totalSize, tagTypes },
    warnings,
    modules: [],
    memoryMap: [],
    efiBootServicesNotTerminated: false,
  };
  const firstSeenAt = new Map<number, number>();

  for (
    let at = mbiAddress + 8;;
    at = alignUp(at + memory.read32((at + 4) as PhysAddr), TAG_ALIGN)
  ) {
    if (at + 8 > mbiEnd) {
      throw invalid(
        at >= mbiEnd
          ? `${where} has no end tag within its total_size ${totalSize}`
          : `tag header at ${hex(at)} runs past the MBI end ${
            hex(mbiEnd)
          } (total_size ${totalSize})`,
      );
    }
    const tag = new Tag(memory, at as PhysAddr);
    if (tag.size < 8) {
      throw invalid(`${tag.description} has size ${tag.size}, below the minimum 8`);
    }
    if (at + tag.size > mbiEnd) {
      throw invalid(
        `${tag.description} has size ${tag.size}, running past the MBI end ${hex(mbiEnd)} ` +
          `(total_size ${totalSize})`,
      );
    }
    if (tag.type === TAG_END) {
      tag.requireSize(8);
      if (at + 8 !== mbiEnd) {
        throw invalid(
          `${tag.description} is not last: total_size ${totalSize} leaves ` +
            `${mbiEnd - at - 8} bytes after it`,
        );
      }
      return info;
    }
    tagTypes.push(tag.type);
    const isSingleton = tag.type !== TAG_MODULE && tag.type <= TAG_LOAD_BASE_ADDR;
    const previousAt = firstSeenAt.get(tag.type);
    if (isSingleton && previousAt !== undefined) {
      throw invalid(`${tag.description} repeats the one at ${hex(previousAt)}`);
    }
    firstSeenAt.set(tag.type, at);
    parseTag(tag, info, warnings);
  }
}

/** Decodes one tag (not the end tag) into `info`. */
function parseTag(tag: Tag, info: Mutable<BootInfo>, warnings: string[]): void {
  switch (tag.type) {
    case TAG_CMDLINE:
      info.cmdline = tag.string(8);
      return;
    case TAG_BOOT_LOADER_NAME:
      info.bootloaderName = tag.string(8);
      return;
    case TAG_MODULE:
      info.modules = [...info.modules, parseModule(tag)];
      return;
    case TAG_BASIC_MEMINFO:
      tag.requireSize(16);
      info.basicMemInfo = { memLowerKiB: tag.u32(8), memUpperKiB: tag.u32(12) };
      return;
    case TAG_BOOTDEV:
      tag.requireSize(20);
      info.bootDevice = {
        biosDevice: tag.u32(8),
        partition: tag.u32(12),
        subPartition: tag.u32(16),
      };
      return;
    case TAG_MMAP:
      info.memoryMap = parseMemoryMap(tag, warnings);
      return;
    case TAG_VBE:
      tag.requireSize(784);
      info.vbe = {
        mode: tag.u16(8),
        interfaceSegment: tag.u16(10),
        interfaceOffset: tag.u16(12),
        interfaceLength: tag.u16(14),
        controlInfo: tag.bytes(16, 512),
        modeInfo: tag.bytes(528, 256),
      };
      return;
    case TAG_FRAMEBUFFER:
      info.framebuffer = parseFramebuffer(tag);
      return;
    case TAG_ELF_SECTIONS:
      info.elfSections = parseElfSections(tag);
      return;
    case TAG_APM:
      tag.requireSize(28);
      info.apm = {
        version: tag.u16(8),
        codeSegment: tag.u16(10),
        offset: tag.u32(12),
        codeSegment16: tag.u16(16),
        dataSegment: tag.u16(18),
        flags: tag.u16(20),
        codeSegmentLength: tag.u16(22),
        codeSegment16Length: tag.u16(24),
        dataSegmentLength: tag.u16(26),
      };
      return;
    case TAG_EFI32:
      tag.requireSize(12);
      info.efi32 = tag.u32(8);
      return;
    case TAG_EFI64:
      tag.requireSize(16);
      info.efi64 = tag.u64(8, "pointer");
      return;
    case TAG_SMBIOS:
      tag.requireMinSize(16);
      info.smbios = { major: tag.u8(8), minor: tag.u8(9), tables: tag.bytes(16, tag.size - 16) };
      return;
    case TAG_ACPI_OLD:
      tag.requireMinSize(8 + 20);
      info.rsdpV1 = tag.bytes(8, tag.size - 8);
      return;
    case TAG_ACPI_NEW:
      tag.requireMinSize(8 + 36);
      info.rsdpV2 = tag.bytes(8, tag.size - 8);
      return;
    case TAG_NETWORK:
      info.network = { dhcpAck: tag.bytes(8, tag.size - 8) };
      return;
    case TAG_EFI_MMAP:
      info.efiMemoryMap = parseEfiMemoryMap(tag);
      return;
    case TAG_EFI_BS:
      tag.requireSize(8);
      info.efiBootServicesNotTerminated = true;
      return;
    case TAG_EFI32_IH:
      tag.requireSize(12);
      info.efi32ImageHandle = tag.u32(8);
      return;
    case TAG_EFI64_IH:
      tag.requireSize(16);
      info.efi64ImageHandle = tag.u64(8, "pointer");
      return;
    case TAG_LOAD_BASE_ADDR:
      tag.requireSize(12);
      info.loadBaseAddr = tag.u32(8) as PhysAddr;
      return;
    default:
      warnings.push(`Skipped ${tag.description} (${tag.size} bytes)`);
  }
}

function parseModule(tag: Tag): BootInfoModule {
  tag.requireMinSize(17);
  const start = tag.u32(8);
  const end = tag.u32(12);
  if (start > end) {
    throw invalid(`${tag.description} has mod_start ${hex(start)} after mod_end ${hex(end)}`);
  }
  return { start: start as PhysAddr, end: end as PhysAddr, string: tag.string(16) };
}

function parseMemoryMap(tag: Tag, warnings: string[]): BootInfoMemoryRegion[] {
  tag.requireMinSize(16);
  const entrySizeBytes = tag.u32(8);
  const entryVersion = tag.u32(12);
  if (entrySizeBytes < MMAP_MIN_ENTRY_SIZE || entrySizeBytes % 8 !== 0) {
    throw invalid(
      `${tag.description} has entry_size ${entrySizeBytes}: it must be at least 24 and a multiple of 8`,
    );
  }
  const entryBytes = tag.size - 16;
  if (entryBytes % entrySizeBytes !== 0) {
    throw invalid(
      `${tag.description} has ${entryBytes} bytes of entries, not a whole number of ` +
        `${entrySizeBytes}-byte entries`,
    );
  }
  if (entryVersion !== 0) {
    warnings.push(
      `${capitalize(tag.description)} has entry_version ${entryVersion}; read as version 0`,
    );
  }
  const regions: BootInfoMemoryRegion[] = [];
  for (let offset = 16; offset < tag.size; offset += entrySizeBytes) {
    const base = tag.u64(offset, "base_addr");
    const length = tag.u64(offset + 8, "length");
    if (base + length > 2 ** 53) {
      throw invalid(
        `${tag.description} has a region at ${hex(base)} of length ${
          hex(length)
        } ending beyond 2^53`,
      );
    }
    regions.push({ base, length, type: tag.u32(offset + 16) });
  }
  return regions;
}

function parseFramebuffer(tag: Tag): BootInfoFramebuffer {
  tag.requireMinSize(32);
  const common = {
    address: tag.u64(8, "framebuffer_addr"),
    pitchBytes: tag.u32(16),
    width: tag.u32(20),
    height: tag.u32(24),
    bitsPerPixel: tag.u8(28),
  };
  // Offset 29 is framebuffer_type; 30 is multiboot2.h's u16 reserved.
  const type = tag.u8(29);
  switch (type) {
    case 0: {
      tag.requireMinSize(34);
      const colorCount = tag.u16(32);
      if (tag.size < 34 + 3 * colorCount) {
        throw invalid(
          `${tag.description} has size ${tag.size}, too small for its ${colorCount}-colour palette ` +
            `(needs ${34 + 3 * colorCount})`,
        );
      }
      const palette: BootInfoPaletteColor[] = [];
      for (let i = 0; i < colorCount; i++) {
        const at = 34 + 3 * i;
        palette.push({ red: tag.u8(at), green: tag.u8(at + 1), blue: tag.u8(at + 2) });
      }
      return { ...common, colorInfo: { kind: "indexed", palette } };
    }
    case 1:
      tag.requireMinSize(38);
      return {
        ...common,
        colorInfo: {
          kind: "rgb",
          redPosition: tag.u8(32),
          redMaskSize: tag.u8(33),
          greenPosition: tag.u8(34),
          greenMaskSize: tag.u8(35),
          bluePosition: tag.u8(36),
          blueMaskSize: tag.u8(37),
        },
      };
    case 2:
      return { ...common, colorInfo: { kind: "egaText" } };
    default:
      throw invalid(`${tag.description} has unknown framebuffer_type ${type}`);
  }
}

function parseElfSections(tag: Tag): BootInfoElfSections {
  tag.requireMinSize(20);
  const sectionCount = tag.u32(8);
  const entrySizeBytes = tag.u32(12);
  const stringTableIndex = tag.u32(16);
  const headersBytes = sectionCount * entrySizeBytes;
  if (20 + headersBytes > tag.size) {
    throw invalid(
      `${tag.description} has size ${tag.size}, too small for ${sectionCount} section headers ` +
        `of ${entrySizeBytes} bytes`,
    );
  }
  if (sectionCount > 0 && stringTableIndex >= sectionCount) {
    throw invalid(
      `${tag.description} has shndx ${stringTableIndex}, not below its ${sectionCount} sections`,
    );
  }
  return { sectionCount, entrySizeBytes, stringTableIndex, headers: tag.bytes(20, headersBytes) };
}

function parseEfiMemoryMap(tag: Tag): BootInfoEfiMemoryMap {
  tag.requireMinSize(16);
  const descriptorSizeBytes = tag.u32(8);
  const descriptorBytes = tag.size - 16;
  if (descriptorSizeBytes < EFI_MIN_DESCRIPTOR_SIZE) {
    throw invalid(
      `${tag.description} has descr_size ${descriptorSizeBytes}, below the 40 of an EFI descriptor`,
    );
  }
  if (descriptorBytes % descriptorSizeBytes !== 0) {
    throw invalid(
      `${tag.description} has ${descriptorBytes} bytes of descriptors, not a whole number of ` +
        `${descriptorSizeBytes}-byte descriptors`,
    );
  }
  return {
    descriptorSizeBytes,
    descriptorVersion: tag.u32(12),
    descriptors: tag.bytes(16, descriptorBytes),
  };
}

/**
 * One tag in RAM, whose whole [at, at + size) the caller has checked lies
 * inside the MBI. Every read is bounds-checked against the tag's size, so a
 * field past the end is an InvalidBootInfo error, never a read beyond it.
 */
class Tag {
  readonly type: number;
  readonly size: number;
  readonly description: string;
  readonly #memory: PhysicalMemory;
  readonly #at: number;

  constructor(memory: PhysicalMemory, at: PhysAddr) {
    this.#memory = memory;
    this.#at = at;
    this.type = memory.read32(at);
    this.size = memory.read32((at + 4) as PhysAddr);
    this.description = `${TAG_NAMES[this.type] ?? "unknown tag"} (type ${this.type}) at ${hex(at)}`;
  }

  requireSize(sizeBytes: number): void {
    if (this.size !== sizeBytes) {
      throw invalid(`${this.description} has size ${this.size}, expected ${sizeBytes}`);
    }
  }

  requireMinSize(sizeBytes: number): void {
    if (this.size < sizeBytes) {
      throw invalid(`${this.description} has size ${this.size}, below the minimum ${sizeBytes}`);
    }
  }

  u8(offset: number): number {
    return this.#memory.read8(this.#field(offset, 1));
  }

  u16(offset: number): number {
    return this.#memory.read16(this.#field(offset, 2));
  }

  u32(offset: number): number {
    return this.#memory.read32(this.#field(offset, 4));
  }

  /** A u64 read as two halves; rejected unless below 2^53. */
  u64(offset: number, field: string): number {
    const low = this.u32(offset);
    const high = this.u32(offset + 4);
    if (high >= 2 ** 21) {
      const value = "0x" + high.toString(16) + low.toString(16).padStart(8, "0");
      throw invalid(`${this.description} has ${field} ${value}, not below 2^53`);
    }
    return high * 2 ** 32 + low;
  }

  bytes(offset: number, lengthBytes: number): Uint8Array {
    return this.#memory.readBytes(this.#field(offset, lengthBytes), lengthBytes);
  }

  /** The NUL-terminated UTF-8 string at `offset`; the NUL must lie inside the tag. */
  string(offset: number): string {
    const start = this.#field(offset, 0);
    const bytes = this.#memory.readBytes(start, this.size - offset);
    const nul = bytes.indexOf(0);
    if (nul < 0) {
      throw invalid(
        `${this.description} has a string not NUL-terminated within its ${this.size} bytes`,
      );
    }
    return new TextDecoder().decode(bytes.subarray(0, nul));
  }

  #field(offset: number, lengthBytes: number): PhysAddr {
    if (offset + lengthBytes > this.size) {
      throw invalid(
        `${this.description} has size ${this.size}, too small for a ${lengthBytes}-byte field ` +
          `at offset ${offset}`,
      );
    }
    return (this.#at + offset) as PhysAddr;
  }
}

function invalid(problem: string): KernelError {
  return new KernelError("InvalidBootInfo", `Invalid multiboot2 boot information: ${problem}`);
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
