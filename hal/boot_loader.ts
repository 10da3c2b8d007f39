/**
 * The machine's Multiboot2 boot loader, GRUB's part in a real boot.
 *
 * {@linkcode loadMultiboot2} checks the kernel image's Multiboot2 header,
 * copies the image to 1 MiB, the modules after it (each page aligned), and
 * writes the boot information (MBI) after the modules. It also plays the
 * firmware's part for ACPI: it writes an empty RSDT at the base of the
 * memory map's ACPI area and passes an RSDP v1 pointing at it in tag 14.
 *
 * {@linkcode loadRawMbi} instead replays a boot captured elsewhere (say from
 * GRUB): it places the MBI bytes unchanged and nothing else, since a capture
 * holds the boot information, not the kernel image or the module contents
 * it describes. {@linkcode ramRangesForRawMbi} decides, leniently, what RAM a
 * machine booting such an MBI has: the RAM of its memory map, except the
 * frames of its modules, whose bytes the replay does not have (so the kernel
 * finds no RAM there and reports the modules as not loaded, instead of
 * reading whatever lies there). The loader checks nothing inside a raw MBI:
 * validating it is the kernel's job. Multiboot2 facts: `docs/multiboot2.md`.
 *
 * Memory layout of a normal boot (page aligned, see `memory_layout.ts`):
 *
 * ```
 * 0x100000            kernel image
 * next page           module 0, module 1, ... (each on its own page)
 * next page           MBI (total_size bytes)
 * ```
 *
 * @module
 */

import { alignDown, alignUp, hex, PAGE_SIZE_4K, type PhysAddr } from "./address.ts";
import {
  KERNEL_LOAD_ADDRESS,
  pcMemoryMap,
  ramRangesFor,
  RAW_MBI_DEFAULT_ADDRESS,
} from "./memory_layout.ts";
import { RSDP_V2_SIZE_BYTES } from "./acpi_tables.ts";
import { MAX_BACKED_BYTES, type PhysicalMemory, type RamRange } from "./physical_memory.ts";
import {
  MBI_MMAP_ENTRY_SIZE_BYTES,
  MBI_TAG_END,
  MBI_TAG_LOAD_BASE_ADDR,
  MBI_TAG_MMAP,
  MBI_TAG_MODULE,
  MbiWriter,
  type MemoryMapEntry,
  MULTIBOOT2_ARCHITECTURE_I386,
  MULTIBOOT2_BOOTLOADER_MAGIC,
  MULTIBOOT2_HEADER_ALIGN,
  MULTIBOOT2_HEADER_MAGIC,
  MULTIBOOT2_HEADER_TAG_END,
  MULTIBOOT2_HEADER_TAG_INFORMATION_REQUEST,
  MULTIBOOT2_HEADER_TAG_OPTIONAL,
  MULTIBOOT2_HEADER_TAG_RELOCATABLE,
  MULTIBOOT2_MEMORY_ACPI_RECLAIMABLE,
  MULTIBOOT2_MEMORY_AVAILABLE,
  MULTIBOOT2_SEARCH_LIMIT_BYTES,
  MULTIBOOT2_TAG_ALIGN,
} from "./multiboot2.ts";

/** Why the boot loader refused to boot. */
export type BootLoaderErrorCode =
  /** The kernel image has no valid Multiboot2 header. */
  | "InvalidKernelImage"
  /** The image, a module, the MBI or the ACPI tables do not fit in RAM. */
  | "DoesNotFit"
  /** A caller-supplied value (an address, a size) is unusable. */
  | "InvalidArgument";

/** A boot failure, before the kernel ever runs. */
export class BootLoaderError extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "BootLoaderError";
  /** What went wrong, for matching. */
  readonly code: BootLoaderErrorCode;

  /** Creates an error with `code` and a one-line message. */
  constructor(code: BootLoaderErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** A module file to load alongside the kernel. */
export interface BootModuleFile {
  /** Name for messages, e.g. the file name. */
  readonly name: string;
  /** The module's contents. */
  readonly bytes: Uint8Array;
  /** The string the kernel sees in the module tag (usually a command line). */
  readonly string: string;
}

/** Where something was loaded: [start, end) in physical memory. */
export interface LoadedRange {
  /** First byte. */
  readonly start: PhysAddr;
  /** One past the last byte. */
  readonly end: PhysAddr;
}

/** A module as loaded, with the string passed in its tag. */
export interface LoadedModule extends LoadedRange {
  /** The module's string. */
  readonly string: string;
}

/** The machine state a Multiboot2 kernel starts with, plus where things went. */
export interface LoadedKernel {
  /** EAX at entry: {@linkcode MULTIBOOT2_BOOTLOADER_MAGIC}. */
  readonly magic: number;
  /** EBX at entry: physical address of the MBI (8-byte aligned, below 4 GiB). */
  readonly mbiAddress: PhysAddr;
  /** Bytes of MBI written. */
  readonly mbiSizeBytes: number;
  /** Where the kernel image was copied (empty if there was none). */
  readonly kernelImage: LoadedRange;
  /** The modules, in order. */
  readonly modules: readonly LoadedModule[];
}

/** What {@linkcode findMultiboot2Header} found in a kernel image. */
export interface Multiboot2ImageHeader {
  /** Offset of the header in the image (8-byte aligned, within 32 KiB). */
  readonly offsetBytes: number;
  /** The header's header_length field. */
  readonly headerLengthBytes: number;
  /** MBI tag types listed in information request tags. */
  readonly requestedTagTypes: readonly number[];
}

/** Options of {@linkcode loadMultiboot2}. */
export interface Multiboot2LoadOptions {
  /** The firmware memory map, passed to the kernel in tag 6 (see `pcMemoryMap`). */
  readonly memoryMap: readonly MemoryMapEntry[];
  /** Version for the boot loader name tag: `kernelsim <version>`. */
  readonly loaderVersion: string;
  /** Kernel command line (default empty). */
  readonly cmdline?: string;
  /** Modules to load after the kernel image (default none). */
  readonly modules?: readonly BootModuleFile[];
  /**
   * The firmware's RSDP: a v1 one (20 bytes) goes in tag 14; a v2 one (36
   * bytes, revision 2 or more) goes in tag 15, and its first 20 bytes (which
   * carry their own checksum) in tag 14 for kernels that only know ACPI 1.0.
   * By default the loader writes an empty RSDT at the base of the memory
   * map's first ACPI reclaimable region and builds an RSDP v1 pointing at
   * it; with no such region, the ACPI tags are left out.
   */
  readonly rsdp?: Uint8Array;
}

/** Options of {@linkcode loadRawMbi} and {@linkcode ramRangesForRawMbi}. */
export interface RawMbiOptions {
  /** Where to put the MBI: 8-byte aligned (default {@linkcode RAW_MBI_DEFAULT_ADDRESS}). */
  readonly mbiAddress?: number;
}

/** A module range a raw MBI names: [start, end) from its module tag. */
export interface RawMbiModuleRange {
  /** mod_start. */
  readonly start: number;
  /** mod_end (one past the last byte). */
  readonly end: number;
}

/** Size of an ACPI RSDP v1 structure in bytes. */
export const RSDP_V1_SIZE_BYTES = 20;
/** The OEM ID the simulated firmware writes into its ACPI tables. */
export const ACPI_OEM_ID = "KSIM  ";
/** RAM assumed for a raw MBI whose memory map is missing or unusable: 128 MiB. */
export const RAW_MBI_FALLBACK_RAM_BYTES = 128 * 2 ** 20;

const HEADER_FIELDS_BYTES = 16;
const HEADER_TAG_BYTES = 8;
const HIGHEST_HEADER_TAG = MULTIBOOT2_HEADER_TAG_RELOCATABLE;
const HIGHEST_MBI_TAG = MBI_TAG_LOAD_BASE_ADDR;
const RSDT_HEADER_BYTES = 36;
/** A module tag: header, mod_start, mod_end, and at least the string's NUL. */
const MODULE_TAG_MIN_BYTES = 17;
const U32_LIMIT = 2 ** 32;

/**
 * Finds and checks the Multiboot2 header of a kernel image, as GRUB does:
 * the first 8-byte aligned magic in the first 32 KiB whose four fields sum
 * to 0 mod 2^32, with architecture 0 (i386), a header_length that keeps the
 * header inside the image and the 32 KiB, and well-formed header tags ending
 * in an end tag. Required (non-optional) header tags and information requests
 * of types this loader does not know are refused, as the spec demands.
 *
 * @param image The kernel image.
 * @returns Where the header is and what it requests.
 * @throws {BootLoaderError} `InvalidKernelImage`, naming the problem and its offset.
 */
export function findMultiboot2Header(image: Uint8Array): Multiboot2ImageHeader {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const limit = Math.min(image.length, MULTIBOOT2_SEARCH_LIMIT_BYTES);
  let firstMagicAt = -1;
  let headerAt = -1;
  for (let at = 0; at + 4 <= limit && headerAt < 0; at += MULTIBOOT2_HEADER_ALIGN) {
    if (view.getUint32(at, true) !== MULTIBOOT2_HEADER_MAGIC) continue;
    if (firstMagicAt < 0) firstMagicAt = at;
    if (at + HEADER_FIELDS_BYTES <= limit && headerSum(view, at) === 0) headerAt = at;
  }
  if (headerAt < 0) {
    throw invalidImage(
      firstMagicAt < 0 ? explainMissingMagic(view) : explainBadHeader(view, firstMagicAt, limit),
    );
  }
  const architecture = view.getUint32(headerAt + 4, true);
  const headerLengthBytes = view.getUint32(headerAt + 8, true);
  if (architecture !== MULTIBOOT2_ARCHITECTURE_I386) {
    const where = `multiboot2 header at offset ${hex(headerAt)}`;
    throw invalidImage(`${where} has architecture ${architecture}, expected 0 (i386)`);
  }
  if (headerLengthBytes < HEADER_FIELDS_BYTES + HEADER_TAG_BYTES) {
    throw invalidImage(
      `multiboot2 header at offset ${hex(headerAt)} has header_length ${headerLengthBytes}, ` +
        `below the 24 bytes that hold the fields and an end tag`,
    );
  }
  if (headerAt + headerLengthBytes > limit) {
    throw invalidImage(
      `multiboot2 header at offset ${hex(headerAt)} has header_length ${headerLengthBytes}, ` +
        `running past the image or its first 32 KiB (${limit - headerAt} bytes fit)`,
    );
  }
  return {
    offsetBytes: headerAt,
    headerLengthBytes,
    requestedTagTypes: readHeaderTags(view, headerAt, headerAt + headerLengthBytes),
  };
}

/**
 * Loads a kernel the Multiboot2 way and writes its boot information.
 *
 * @param memory The machine's RAM.
 * @param kernelImage The kernel image, checked by {@linkcode findMultiboot2Header}.
 * @param options The memory map, loader version, command line, modules and RSDP.
 * @returns The entry state (magic, MBI address) and where everything went.
 * @throws {BootLoaderError} `InvalidKernelImage` for a bad header; `DoesNotFit`
 *   if the image, a module or the MBI does not fit in an available region of
 *   the memory map that is RAM below 4 GiB, or the ACPI area is not RAM.
 * @example
 * ```ts
 * import { PhysicalMemory } from "./physical_memory.ts";
 * import { pcMemoryMap, ramRangesFor } from "./memory_layout.ts";
 * import { loadMultiboot2 } from "./boot_loader.ts";
 * const memoryMap = pcMemoryMap(16 * 2 ** 20);
 * const memory = new PhysicalMemory(ramRangesFor(memoryMap));
 * const image = new Uint8Array(4096);
 * const header = new DataView(image.buffer);
 * [0xe85250d6, 0, 24, -(0xe85250d6 + 24) >>> 0].forEach((v, i) => header.setUint32(i * 4, v, true));
 * header.setUint32(20, 8, true); // end tag: type 0, flags 0, size 8
 * const loaded = loadMultiboot2(memory, image, { memoryMap, loaderVersion: "0.1.0" });
 * console.assert(loaded.magic === 0x36d76289 && loaded.mbiAddress % 8 === 0);
 * ```
 */
export function loadMultiboot2(
  memory: PhysicalMemory,
  kernelImage: Uint8Array,
  options: Multiboot2LoadOptions,
): LoadedKernel {
  findMultiboot2Header(kernelImage);
  const { memoryMap } = options;
  const place = (start: number, sizeBytes: number, what: string): PhysAddr => {
    const end = start + sizeBytes;
    const isAvailable = memoryMap.some((entry) =>
      entry.type === MULTIBOOT2_MEMORY_AVAILABLE && entry.base <= start &&
      end <= entry.base + entry.length
    );
    if (!isAvailable || end >= U32_LIMIT || !memory.isRam(start, sizeBytes)) {
      throw new BootLoaderError(
        "DoesNotFit",
        `The ${what} (${sizeBytes} bytes at ${hex(start)}..${hex(end)}) does not fit in ` +
          `available RAM below 4 GiB`,
      );
    }
    return start as PhysAddr;
  };

  const imageStart = place(KERNEL_LOAD_ADDRESS, kernelImage.length, "kernel image");
  memory.writeBytes(imageStart, kernelImage);
  let cursor = alignUp(imageStart + kernelImage.length, PAGE_SIZE_4K);

  const modules: LoadedModule[] = [];
  for (const file of options.modules ?? []) {
    const start = place(cursor, file.bytes.length, `module "${file.name}"`);
    memory.writeBytes(start, file.bytes);
    const end = (start + file.bytes.length) as PhysAddr;
    modules.push({ start, end, string: file.string });
    cursor = alignUp(end, PAGE_SIZE_4K);
  }

  const writer = new MbiWriter()
    .cmdline(options.cmdline ?? "")
    .bootLoaderName(`kernelsim ${options.loaderVersion}`);
  for (const module of modules) writer.module(module);
  writer
    .basicMemInfo(basicMemInfoFor(memoryMap))
    .memoryMap(memoryMap)
    .loadBaseAddr(KERNEL_LOAD_ADDRESS);
  const rsdp = options.rsdp ?? writeFirmwareAcpiTables(memory, memoryMap);
  if (rsdp !== undefined && rsdp.length >= RSDP_V2_SIZE_BYTES) {
    writer.acpiOldRsdp(rsdp.subarray(0, RSDP_V1_SIZE_BYTES)).acpiNewRsdp(rsdp);
  } else if (rsdp !== undefined) {
    writer.acpiOldRsdp(rsdp);
  }
  const mbi = writer.finish();

  const mbiAddress = place(cursor, mbi.length, "boot information (MBI)");
  memory.writeBytes(mbiAddress, mbi);
  return {
    magic: MULTIBOOT2_BOOTLOADER_MAGIC,
    mbiAddress,
    mbiSizeBytes: mbi.length,
    kernelImage: { start: imageStart, end: (imageStart + kernelImage.length) as PhysAddr },
    modules,
  };
}

/**
 * Builds an ACPI 1.0 RSDP (20 bytes): signature `RSD PTR `, a checksum that
 * makes the bytes sum to 0 mod 256, OEM ID {@linkcode ACPI_OEM_ID},
 * revision 0 and the RSDT address.
 *
 * @param rsdtAddress Physical address of the RSDT (below 4 GiB).
 * @returns The RSDP bytes.
 * @throws {RangeError} If the address does not fit 32 bits.
 */
export function buildRsdpV1(rsdtAddress: number): Uint8Array {
  if (!Number.isSafeInteger(rsdtAddress) || rsdtAddress < 0 || rsdtAddress >= U32_LIMIT) {
    throw new RangeError(`RSDT address ${String(rsdtAddress)} does not fit 32 bits`);
  }
  const rsdp = new Uint8Array(RSDP_V1_SIZE_BYTES);
  rsdp.set(ascii("RSD PTR "), 0);
  rsdp.set(ascii(ACPI_OEM_ID), 9);
  rsdp[15] = 0; // revision 0: ACPI 1.0
  new DataView(rsdp.buffer).setUint32(16, rsdtAddress, true);
  rsdp[8] = checksumByte(rsdp);
  return rsdp;
}

/**
 * Replays a captured boot (`--mbi FILE [--mbi-addr ADDR]`): places the raw
 * MBI bytes unchanged at an 8-byte aligned address, exactly where EBX will
 * point. Nothing else is written: the capture describes a kernel image,
 * ELF section copies and modules it does not contain. Nothing inside the MBI
 * is checked or used: the kernel must validate it. Build the machine's RAM
 * with {@linkcode ramRangesForRawMbi} so the MBI fits.
 *
 * @param memory The machine's RAM.
 * @param mbiBytes The MBI as captured, written as is.
 * @param options Where to place it (default 0x10000, in free low memory).
 * @returns The entry state; `kernelImage` and `modules` are empty, as
 *   nothing of them was loaded.
 * @throws {BootLoaderError} `InvalidArgument` for a misaligned address or one
 *   not below 4 GiB, `DoesNotFit` if the MBI is not in RAM.
 */
export function loadRawMbi(
  memory: PhysicalMemory,
  mbiBytes: Uint8Array,
  options: RawMbiOptions = {},
): LoadedKernel {
  const mbiAddress = checkRawMbiPlacement(mbiBytes.length, options.mbiAddress);
  requireRam(memory, mbiAddress, mbiBytes.length, "raw MBI");
  memory.writeBytes(mbiAddress, mbiBytes);
  return {
    magic: MULTIBOOT2_BOOTLOADER_MAGIC,
    mbiAddress,
    mbiSizeBytes: mbiBytes.length,
    kernelImage: { start: KERNEL_LOAD_ADDRESS, end: KERNEL_LOAD_ADDRESS },
    modules: [],
  };
}

/**
 * Scans raw MBI bytes, leniently, for their first memory map tag and returns
 * its entries, so a machine can be given the RAM the MBI describes. Any
 * garbage is tolerated: the scan stops at the first tag that makes no sense,
 * skips entries whose values are not safe integers, and clips entries to the
 * {@linkcode MAX_BACKED_BYTES} the simulator can back. Validation is the
 * kernel's job, not this function's.
 *
 * @param mbiBytes The raw MBI.
 * @returns The entries, or undefined if there is no usable memory map (none
 *   with any available RAM).
 */
export function memoryMapFromRawMbi(mbiBytes: Uint8Array): MemoryMapEntry[] | undefined {
  let map: MemoryMapEntry[] | undefined;
  let isFirst = true;
  walkRawMbiTags(mbiBytes, (view, at, type, size) => {
    if (type !== MBI_TAG_MMAP || !isFirst) return;
    isFirst = false;
    map = readRawMemoryMap(view, at, size);
  });
  return map;
}

/**
 * Scans raw MBI bytes, leniently, for module tags and returns the ranges they
 * name (non-empty ones, as u32 mod_start..mod_end). The scan stops at the
 * first tag that makes no sense, as {@linkcode memoryMapFromRawMbi}'s does.
 *
 * @param mbiBytes The raw MBI.
 * @returns The module ranges in tag order (possibly none).
 */
export function moduleRangesFromRawMbi(mbiBytes: Uint8Array): RawMbiModuleRange[] {
  const ranges: RawMbiModuleRange[] = [];
  walkRawMbiTags(mbiBytes, (view, at, type, size) => {
    if (type !== MBI_TAG_MODULE || size < MODULE_TAG_MIN_BYTES) return;
    const start = view.getUint32(at + 8, true);
    const end = view.getUint32(at + 12, true);
    if (start < end) ranges.push({ start, end });
  });
  return ranges;
}

/**
 * The RAM ranges a machine replaying a raw MBI has: the RAM regions of the
 * MBI's memory map ({@linkcode memoryMapFromRawMbi}), or, if it has none
 * usable, those of a 128 MiB PC ({@linkcode RAW_MBI_FALLBACK_RAM_BYTES}),
 * plus whole frames covering the MBI itself; minus the frames of every
 * module range the MBI names ({@linkcode moduleRangesFromRawMbi}), rounded
 * out to whole frames but never taking a frame that holds MBI bytes. The
 * replay has no bytes for those modules, so it gives them no memory: the
 * kernel then sees their ranges are not RAM and never reads them.
 *
 * @param mbiBytes The raw MBI.
 * @param options Where the MBI will go.
 * @returns Ranges for {@linkcode PhysicalMemory}, never empty (the MBI's frames stay).
 * @throws {BootLoaderError} `InvalidArgument` if the MBI address is misaligned
 *   or the MBI does not end below 4 GiB.
 */
export function ramRangesForRawMbi(mbiBytes: Uint8Array, options: RawMbiOptions = {}): RamRange[] {
  const mbiAddress = checkRawMbiPlacement(mbiBytes.length, options.mbiAddress);
  const rawMap = memoryMapFromRawMbi(mbiBytes);
  const map = rawMap !== undefined && ramRangesFor(rawMap).length > 0
    ? rawMap
    : pcMemoryMap(RAW_MBI_FALLBACK_RAM_BYTES);
  const mbiFrames = framesCovering(mbiAddress, Math.max(mbiBytes.length, 8));
  const mbiFramesEnd = mbiFrames.base + mbiFrames.length;
  const holes = moduleRangesFromRawMbi(mbiBytes).flatMap((module) => {
    const hole = framesCovering(module.start, module.end - module.start);
    const holeEnd = hole.base + hole.length;
    // Frames below and above the MBI's; none of them holds an MBI byte.
    return [
      { start: hole.base, end: Math.min(holeEnd, mbiFrames.base) },
      { start: Math.max(hole.base, mbiFramesEnd), end: holeEnd },
    ].filter((part) => part.end > part.start);
  });
  return subtractRanges(ramRangesFor([...map, mbiFrames]), holes);
}

function requireRam(memory: PhysicalMemory, start: number, sizeBytes: number, what: string): void {
  if (!memory.isRam(start, sizeBytes)) {
    throw new BootLoaderError(
      "DoesNotFit",
      `The ${what} (${sizeBytes} bytes at ${hex(start)}) is not in RAM`,
    );
  }
}

/** Checks where a raw MBI goes; returns its address. */
function checkRawMbiPlacement(
  mbiSizeBytes: number,
  requestedAddress: number | undefined,
): PhysAddr {
  const address = requestedAddress ?? RAW_MBI_DEFAULT_ADDRESS;
  const end = address + Math.max(mbiSizeBytes, 8);
  if (!Number.isSafeInteger(address) || address < 0 || address % MULTIBOOT2_TAG_ALIGN !== 0) {
    throw new BootLoaderError(
      "InvalidArgument",
      `Invalid MBI address ${String(address)}: it must be 8-byte aligned`,
    );
  }
  if (end > Math.min(U32_LIMIT, MAX_BACKED_BYTES)) {
    throw new BootLoaderError(
      "InvalidArgument",
      `MBI at ${hex(address)} (${mbiSizeBytes} bytes) does not end below 4 GiB`,
    );
  }
  return address as PhysAddr;
}

/** A RAM-typed entry covering [start, start + sizeBytes) rounded out to whole frames. */
function framesCovering(start: number, sizeBytes: number): MemoryMapEntry {
  const base = alignDown(start, PAGE_SIZE_4K);
  return {
    base,
    length: alignUp(start + sizeBytes, PAGE_SIZE_4K) - base,
    type: MULTIBOOT2_MEMORY_AVAILABLE,
  };
}

/**
 * Calls `visit` for each tag of a raw MBI, in order, until the end tag or the
 * first tag that makes no sense (a size under 8, or running past the bytes or
 * total_size). Only the tag header is checked; `visit` checks its payload.
 */
function walkRawMbiTags(
  mbiBytes: Uint8Array,
  visit: (view: DataView, at: number, type: number, sizeBytes: number) => void,
): void {
  if (mbiBytes.length < 16) return;
  const view = new DataView(mbiBytes.buffer, mbiBytes.byteOffset, mbiBytes.byteLength);
  const totalSize = view.getUint32(0, true);
  const limit = totalSize >= 16 ? Math.min(totalSize, mbiBytes.length) : mbiBytes.length;
  for (let at = 8; at + 8 <= limit;) {
    const type = view.getUint32(at, true);
    const size = view.getUint32(at + 4, true);
    if (type === MBI_TAG_END || size < 8 || at + size > limit) return;
    visit(view, at, type, size);
    at = alignUp(at + size, MULTIBOOT2_TAG_ALIGN);
  }
}

/** `ranges` (sorted, disjoint, whole frames) with the frame-aligned `holes` taken out. */
function subtractRanges(
  ranges: readonly RamRange[],
  holes: readonly { start: number; end: number }[],
): RamRange[] {
  let pieces = ranges.map((range): { start: number; end: number } => ({
    start: range.base,
    end: range.base + range.sizeBytes,
  }));
  for (const hole of holes) {
    pieces = pieces.flatMap((piece) =>
      hole.end <= piece.start || hole.start >= piece.end ? [piece] : [
        { start: piece.start, end: Math.max(piece.start, hole.start) },
        { start: Math.min(piece.end, hole.end), end: piece.end },
      ].filter((part) => part.end > part.start)
    );
  }
  return pieces.map((piece) => ({
    base: piece.start as PhysAddr,
    sizeBytes: piece.end - piece.start,
  }));
}

/** Reads the entries of the memory map tag at `at`, skipping nonsense; see memoryMapFromRawMbi. */
function readRawMemoryMap(
  view: DataView,
  at: number,
  size: number,
): MemoryMapEntry[] | undefined {
  if (size < 16) return undefined;
  const entrySizeBytes = view.getUint32(at + 8, true);
  if (entrySizeBytes < MBI_MMAP_ENTRY_SIZE_BYTES) return undefined;
  const entries: MemoryMapEntry[] = [];
  for (let entryAt = at + 16; entryAt + entrySizeBytes <= at + size; entryAt += entrySizeBytes) {
    const base = readU64(view, entryAt);
    const length = readU64(view, entryAt + 8);
    const type = view.getUint32(entryAt + 16, true);
    if (base === undefined || length === undefined || base >= MAX_BACKED_BYTES) continue;
    entries.push({ base, length: Math.min(length, MAX_BACKED_BYTES - base), type });
  }
  return entries.some((entry) => entry.type === MULTIBOOT2_MEMORY_AVAILABLE && entry.length > 0)
    ? entries
    : undefined;
}

/** A u64 read as two halves, or undefined if it is not a safe integer. */
function readU64(view: DataView, at: number): number | undefined {
  const high = view.getUint32(at + 4, true);
  return high >= 2 ** 21 ? undefined : view.getUint32(at, true) + high * 2 ** 32;
}

/**
 * Basic memory information as GRUB derives it from the memory map: KiB of
 * available RAM from 0 (at most 640) and KiB of contiguous available RAM from
 * 1 MiB up to the first hole.
 */
function basicMemInfoFor(
  memoryMap: readonly MemoryMapEntry[],
): { memLowerKiB: number; memUpperKiB: number } {
  const available = memoryMap.filter((entry) => entry.type === MULTIBOOT2_MEMORY_AVAILABLE);
  const low = available.find((entry) => entry.base === 0);
  let upperEnd = KERNEL_LOAD_ADDRESS as number;
  for (let grew = true; grew;) {
    const next = available.find((entry) =>
      entry.base <= upperEnd && entry.base + entry.length > upperEnd
    );
    grew = next !== undefined;
    if (next !== undefined) upperEnd = next.base + next.length;
  }
  return {
    memLowerKiB: Math.floor(Math.min(low?.length ?? 0, 640 * 1024) / 1024),
    memUpperKiB: Math.min(Math.floor((upperEnd - KERNEL_LOAD_ADDRESS) / 1024), U32_LIMIT - 1),
  };
}

/**
 * The firmware's part: writes an empty RSDT at the base of the first ACPI
 * reclaimable region and returns an RSDP v1 pointing at it, or undefined if
 * the map has no ACPI region below 4 GiB.
 */
function writeFirmwareAcpiTables(
  memory: PhysicalMemory,
  memoryMap: readonly MemoryMapEntry[],
): Uint8Array | undefined {
  const area = memoryMap.find((entry) =>
    entry.type === MULTIBOOT2_MEMORY_ACPI_RECLAIMABLE && entry.length >= RSDT_HEADER_BYTES &&
    entry.base + RSDT_HEADER_BYTES <= U32_LIMIT
  );
  if (area === undefined) return undefined;
  if (!memory.isRam(area.base, RSDT_HEADER_BYTES)) {
    throw new BootLoaderError("DoesNotFit", `The ACPI area at ${hex(area.base)} is not RAM`);
  }
  const rsdt = new Uint8Array(RSDT_HEADER_BYTES);
  const view = new DataView(rsdt.buffer);
  rsdt.set(ascii("RSDT"), 0);
  view.setUint32(4, RSDT_HEADER_BYTES, true); // length: a header and no entries
  rsdt[8] = 1; // revision
  rsdt.set(ascii(ACPI_OEM_ID), 10);
  rsdt.set(ascii("KSIMRSDT"), 16); // OEM table ID
  view.setUint32(24, 1, true); // OEM revision
  rsdt.set(ascii("KSIM"), 28); // creator ID
  view.setUint32(32, 1, true); // creator revision
  rsdt[9] = checksumByte(rsdt);
  memory.writeBytes(area.base as PhysAddr, rsdt);
  return buildRsdpV1(area.base);
}

/** Walks the header tags in [start + 16, end); returns the requested MBI tag types. */
function readHeaderTags(view: DataView, start: number, end: number): number[] {
  const requested: number[] = [];
  for (let at = start + HEADER_FIELDS_BYTES;; at = alignUp(at + view.getUint32(at + 4, true), 8)) {
    if (at + HEADER_TAG_BYTES > end) {
      throw invalidImage(
        `multiboot2 header at offset ${hex(start)} has no end tag within its header_length`,
      );
    }
    const type = view.getUint16(at, true);
    const isOptional = (view.getUint16(at + 2, true) & MULTIBOOT2_HEADER_TAG_OPTIONAL) !== 0;
    const size = view.getUint32(at + 4, true);
    const where = `multiboot2 header tag type ${type} at offset ${hex(at)}`;
    if (type === MULTIBOOT2_HEADER_TAG_END) return requested;
    if (size < HEADER_TAG_BYTES || at + size > end) {
      throw invalidImage(`${where} has size ${size}, outside the header`);
    }
    if (type > HIGHEST_HEADER_TAG && !isOptional) {
      throw invalidImage(`${where} is required but unknown to this loader`);
    }
    if (type === MULTIBOOT2_HEADER_TAG_INFORMATION_REQUEST) {
      if ((size - HEADER_TAG_BYTES) % 4 !== 0) {
        throw invalidImage(`${where} has size ${size}, not 8 plus whole u32 tag types`);
      }
      for (let typeAt = at + HEADER_TAG_BYTES; typeAt < at + size; typeAt += 4) {
        const tagType = view.getUint32(typeAt, true);
        if (tagType > HIGHEST_MBI_TAG && !isOptional) {
          throw invalidImage(`${where} requires MBI tag type ${tagType}, unknown to this loader`);
        }
        requested.push(tagType);
      }
    }
  }
}

/** The four header fields summed mod 2^32 (0 when the checksum is right). */
function headerSum(view: DataView, at: number): number {
  let sum = 0;
  for (let i = 0; i < 4; i++) sum = (sum + view.getUint32(at + 4 * i, true)) >>> 0;
  return sum;
}

function explainBadHeader(view: DataView, at: number, limit: number): string {
  if (at + HEADER_FIELDS_BYTES > limit) {
    return `multiboot2 header at offset ${hex(at)} runs past the image or its first 32 KiB`;
  }
  return `multiboot2 header at offset ${hex(at)} has checksum ` +
    `${hex(view.getUint32(at + 12, true))}: the four fields sum to ${
      hex(headerSum(view, at))
    }, not 0`;
}

function explainMissingMagic(view: DataView): string {
  for (let at = 0; at + 4 <= view.byteLength; at++) {
    if (view.getUint32(at, true) !== MULTIBOOT2_HEADER_MAGIC) continue;
    return at >= MULTIBOOT2_SEARCH_LIMIT_BYTES
      ? `no multiboot2 header in the first 32 KiB (magic ${hex(MULTIBOOT2_HEADER_MAGIC)} ` +
        `found at offset ${hex(at)}, beyond it)`
      : `no multiboot2 header (magic ${hex(MULTIBOOT2_HEADER_MAGIC)} found at offset ` +
        `${hex(at)}, which is not 8-byte aligned)`;
  }
  return `no multiboot2 header (magic ${hex(MULTIBOOT2_HEADER_MAGIC)}) in the first 32 KiB`;
}

function invalidImage(problem: string): BootLoaderError {
  return new BootLoaderError("InvalidKernelImage", `Invalid kernel image: ${problem}`);
}

function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (char) => char.charCodeAt(0));
}

/** The byte that makes `bytes` (whose checksum byte is still 0) sum to 0 mod 256. */
function checksumByte(bytes: Uint8Array): number {
  return (256 - bytes.reduce((sum, byte) => (sum + byte) & 0xff, 0)) & 0xff;
}
