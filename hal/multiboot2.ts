/**
 * The Multiboot2 protocol as a boot loader sees it: the spec's constants and
 * {@linkcode MbiWriter}, which builds a boot information structure (MBI)
 * byte for byte as the specification and GRUB's `multiboot2.h` lay it out.
 *
 * MBI format: `u32 total_size` (whole structure, end tag included), `u32
 * reserved = 0`, then tags. Each tag starts on an 8-byte boundary with `u32
 * type, u32 size`, where size counts the header and payload but not the
 * padding after it. The last tag is the end tag: type 0, size 8. Every value
 * is little-endian; 64-bit fields are written as two 32-bit halves. The
 * protocol facts used here are in `docs/multiboot2.md`.
 *
 * @module
 */

import { alignUp, hex } from "./address.ts";

/** EAX at kernel entry: the boot loader is Multiboot2-compliant. */
export const MULTIBOOT2_BOOTLOADER_MAGIC = 0x36d76289;
/** The first u32 of the OS image's Multiboot2 header. */
export const MULTIBOOT2_HEADER_MAGIC = 0xe85250d6;
/** Header `architecture` value for 32-bit (protected mode) i386. */
export const MULTIBOOT2_ARCHITECTURE_I386 = 0;
/** The OS image header must lie entirely within the image's first 32 KiB. */
export const MULTIBOOT2_SEARCH_LIMIT_BYTES = 32768;
/** Alignment of the OS image header and of its tags, in bytes. */
export const MULTIBOOT2_HEADER_ALIGN = 8;
/** Alignment of the MBI and of each of its tags, in bytes. */
export const MULTIBOOT2_TAG_ALIGN = 8;

// OS image header tag types (docs/multiboot2.md, "The OS image header"). Header tags are u16 type,
// u16 flags, u32 size, 8-byte aligned.

/** Header tag: terminates the header's tag list. */
export const MULTIBOOT2_HEADER_TAG_END = 0;
/** Header tag: the MBI tag types the OS image asks for (u32 each). */
export const MULTIBOOT2_HEADER_TAG_INFORMATION_REQUEST = 1;
/** Header tag: load addresses for a non-ELF (a.out kludge) image. */
export const MULTIBOOT2_HEADER_TAG_ADDRESS = 2;
/** Header tag: the i386 entry address for a non-ELF image. */
export const MULTIBOOT2_HEADER_TAG_ENTRY_ADDRESS = 3;
/** Header tag: console requirements. */
export const MULTIBOOT2_HEADER_TAG_CONSOLE_FLAGS = 4;
/** Header tag: preferred framebuffer mode. */
export const MULTIBOOT2_HEADER_TAG_FRAMEBUFFER = 5;
/** Header tag: modules must be page aligned. */
export const MULTIBOOT2_HEADER_TAG_MODULE_ALIGN = 6;
/** Header tag: the image wants EFI boot services left running. */
export const MULTIBOOT2_HEADER_TAG_EFI_BS = 7;
/** Header tag: EFI i386 entry address. */
export const MULTIBOOT2_HEADER_TAG_ENTRY_ADDRESS_EFI32 = 8;
/** Header tag: EFI amd64 entry address. */
export const MULTIBOOT2_HEADER_TAG_ENTRY_ADDRESS_EFI64 = 9;
/** Header tag: the image may be loaded at another address. */
export const MULTIBOOT2_HEADER_TAG_RELOCATABLE = 10;
/** Header tag flags bit 0: the loader may ignore the tag if it cannot honour it. */
export const MULTIBOOT2_HEADER_TAG_OPTIONAL = 1;

// MBI tag types (docs/multiboot2.md, "The boot information").

/** MBI tag 0: end of the tag list (size 8). */
export const MBI_TAG_END = 0;
/** MBI tag 1: boot command line, NUL-terminated UTF-8. */
export const MBI_TAG_CMDLINE = 1;
/** MBI tag 2: boot loader name, NUL-terminated UTF-8. */
export const MBI_TAG_BOOT_LOADER_NAME = 2;
/** MBI tag 3: one boot module (u32 mod_start, u32 mod_end, string). */
export const MBI_TAG_MODULE = 3;
/** MBI tag 4: basic memory information (u32 mem_lower KiB, u32 mem_upper KiB). */
export const MBI_TAG_BASIC_MEMINFO = 4;
/** MBI tag 5: BIOS boot device (u32 biosdev, u32 partition, u32 sub_partition). */
export const MBI_TAG_BOOTDEV = 5;
/** MBI tag 6: memory map (u32 entry_size, u32 entry_version, entries). */
export const MBI_TAG_MMAP = 6;
/** MBI tag 7: VBE information. */
export const MBI_TAG_VBE = 7;
/** MBI tag 8: framebuffer information. */
export const MBI_TAG_FRAMEBUFFER = 8;
/** MBI tag 9: ELF section headers. */
export const MBI_TAG_ELF_SECTIONS = 9;
/** MBI tag 10: APM table. */
export const MBI_TAG_APM = 10;
/** MBI tag 11: EFI 32-bit system table pointer. */
export const MBI_TAG_EFI32 = 11;
/** MBI tag 12: EFI 64-bit system table pointer. */
export const MBI_TAG_EFI64 = 12;
/** MBI tag 13: SMBIOS tables. */
export const MBI_TAG_SMBIOS = 13;
/** MBI tag 14: copy of the ACPI 1.0 RSDP. */
export const MBI_TAG_ACPI_OLD = 14;
/** MBI tag 15: copy of the ACPI 2.0+ RSDP. */
export const MBI_TAG_ACPI_NEW = 15;
/** MBI tag 16: network information (the DHCP ACK packet). */
export const MBI_TAG_NETWORK = 16;
/** MBI tag 17: EFI memory map. */
export const MBI_TAG_EFI_MMAP = 17;
/** MBI tag 18: EFI boot services were not terminated (size 8). */
export const MBI_TAG_EFI_BS = 18;
/** MBI tag 19: EFI 32-bit image handle pointer. */
export const MBI_TAG_EFI32_IH = 19;
/** MBI tag 20: EFI 64-bit image handle pointer. */
export const MBI_TAG_EFI64_IH = 20;
/** MBI tag 21: physical address the image was loaded at. */
export const MBI_TAG_LOAD_BASE_ADDR = 21;

/** Human-readable name of each MBI tag type, indexed by type (0..21). */
export const MBI_TAG_NAMES: readonly string[] = [
  "end",
  "command line",
  "boot loader name",
  "module",
  "basic memory information",
  "BIOS boot device",
  "memory map",
  "VBE information",
  "framebuffer information",
  "ELF sections",
  "APM table",
  "EFI 32-bit system table",
  "EFI 64-bit system table",
  "SMBIOS tables",
  "ACPI old RSDP",
  "ACPI new RSDP",
  "network information",
  "EFI memory map",
  "EFI boot services not terminated",
  "EFI 32-bit image handle",
  "EFI 64-bit image handle",
  "image load base address",
];

// Memory map entry types (docs/multiboot2.md, "Memory map"; the same numbers as BIOS e820).

/** Memory type 1: RAM free for the OS. */
export const MULTIBOOT2_MEMORY_AVAILABLE = 1;
/** Memory type 2: reserved (and any type the spec does not name). */
export const MULTIBOOT2_MEMORY_RESERVED = 2;
/** Memory type 3: RAM holding ACPI tables, free once they are read. */
export const MULTIBOOT2_MEMORY_ACPI_RECLAIMABLE = 3;
/** Memory type 4: RAM the firmware needs preserved across hibernation (ACPI NVS). */
export const MULTIBOOT2_MEMORY_NVS = 4;
/** Memory type 5: defective RAM. */
export const MULTIBOOT2_MEMORY_BADRAM = 5;

/** Size of a memory map entry as the spec defines it today, in bytes. */
export const MBI_MMAP_ENTRY_SIZE_BYTES = 24;

/** Framebuffer type 0: indexed colour, with a palette. */
export const MULTIBOOT2_FRAMEBUFFER_TYPE_INDEXED = 0;
/** Framebuffer type 1: direct RGB colour. */
export const MULTIBOOT2_FRAMEBUFFER_TYPE_RGB = 1;
/** Framebuffer type 2: EGA text mode (width and height in characters). */
export const MULTIBOOT2_FRAMEBUFFER_TYPE_EGA_TEXT = 2;

/** One memory map entry: a physical range and its memory type. */
export interface MemoryMapEntry {
  /** First byte of the region (u64 in the MBI; a safe integer here). */
  readonly base: number;
  /** Length of the region in bytes. */
  readonly length: number;
  /** Memory type: 1 available, 2 reserved, 3 ACPI reclaimable, 4 NVS, 5 bad RAM. */
  readonly type: number;
}

/** Payload of a module tag (3). */
export interface MbiModule {
  /** First byte of the module in physical memory. */
  readonly start: number;
  /** One past the last byte of the module (GRUB's mod_end convention). */
  readonly end: number;
  /** The module's string, usually its command line. */
  readonly string: string;
}

/** Payload of the basic memory information tag (4). */
export interface MbiBasicMemInfo {
  /** KiB of lower memory from address 0 (at most 640). */
  readonly memLowerKiB: number;
  /** KiB of upper memory from 1 MiB up to the first hole. */
  readonly memUpperKiB: number;
}

/** Payload of the BIOS boot device tag (5); unused fields are 0xFFFFFFFF. */
export interface MbiBootDevice {
  /** BIOS drive number, e.g. 0x80 for the first hard disk. */
  readonly biosDevice: number;
  /** Top-level partition number. */
  readonly partition: number;
  /** Sub-partition number. */
  readonly subPartition: number;
}

/** Payload of the VBE tag (7). */
export interface MbiVbe {
  /** Current VBE mode. */
  readonly mode: number;
  /** Protected-mode interface segment. */
  readonly interfaceSegment: number;
  /** Protected-mode interface offset. */
  readonly interfaceOffset: number;
  /** Protected-mode interface length. */
  readonly interfaceLength: number;
  /** VBE controller information (function 00h), 512 bytes. */
  readonly controlInfo: Uint8Array;
  /** VBE mode information (function 01h), 256 bytes. */
  readonly modeInfo: Uint8Array;
}

/** One palette entry of an indexed framebuffer. */
export interface MbiPaletteColor {
  /** Red intensity, 0..255. */
  readonly red: number;
  /** Green intensity, 0..255. */
  readonly green: number;
  /** Blue intensity, 0..255. */
  readonly blue: number;
}

/** Colour information of a framebuffer, by framebuffer type. */
export type MbiFramebufferColorInfo =
  | { readonly kind: "indexed"; readonly palette: readonly MbiPaletteColor[] }
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

/** Payload of the framebuffer tag (8). */
export interface MbiFramebuffer {
  /** Physical address of the framebuffer (u64). */
  readonly address: number;
  /** Bytes per line. */
  readonly pitchBytes: number;
  /** Width in pixels (characters for EGA text). */
  readonly width: number;
  /** Height in pixels (characters for EGA text). */
  readonly height: number;
  /** Bits per pixel (16 for EGA text). */
  readonly bitsPerPixel: number;
  /** The framebuffer type and its colour information. */
  readonly colorInfo: MbiFramebufferColorInfo;
}

/** Payload of the ELF sections tag (9), in `multiboot2.h`'s u32 layout. */
export interface MbiElfSections {
  /** Number of section headers. */
  readonly sectionCount: number;
  /** Size of one section header in bytes (40 for ELF32, 64 for ELF64). */
  readonly entrySizeBytes: number;
  /** Index of the section-name string table. */
  readonly stringTableIndex: number;
  /** The section headers, `sectionCount * entrySizeBytes` bytes. */
  readonly headers: Uint8Array;
}

/** Payload of the APM tag (10): the APM BIOS interface. */
export interface MbiApm {
  /** APM version. */
  readonly version: number;
  /** 32-bit protected-mode code segment. */
  readonly codeSegment: number;
  /** Entry point offset. */
  readonly offset: number;
  /** 16-bit protected-mode code segment. */
  readonly codeSegment16: number;
  /** 16-bit protected-mode data segment. */
  readonly dataSegment: number;
  /** APM flags. */
  readonly flags: number;
  /** Length of the 32-bit code segment. */
  readonly codeSegmentLength: number;
  /** Length of the 16-bit code segment. */
  readonly codeSegment16Length: number;
  /** Length of the data segment. */
  readonly dataSegmentLength: number;
}

/** Payload of the SMBIOS tag (13). */
export interface MbiSmbios {
  /** SMBIOS major version. */
  readonly major: number;
  /** SMBIOS minor version. */
  readonly minor: number;
  /** The SMBIOS tables. */
  readonly tables: Uint8Array;
}

/** Payload of the EFI memory map tag (17). */
export interface MbiEfiMemoryMap {
  /** Size of one EFI memory descriptor in bytes. */
  readonly descriptorSizeBytes: number;
  /** EFI memory descriptor version. */
  readonly descriptorVersion: number;
  /** The descriptors, as the firmware returned them. */
  readonly descriptors: Uint8Array;
}

/** Options of {@linkcode MbiWriter.memoryMap}. */
export interface MbiMemoryMapOptions {
  /** entry_size: at least 24 and a multiple of 8 (default 24). */
  readonly entrySizeBytes?: number;
  /** entry_version (default 0). */
  readonly entryVersion?: number;
}

const HEADER_BYTES = 8;
const TAG_HEADER_BYTES = 8;
const VBE_CONTROL_INFO_BYTES = 512;
const VBE_MODE_INFO_BYTES = 256;
const FRAMEBUFFER_COMMON_BYTES = 24; // after the tag header, up to colour info
const U64_LIMIT = 2 ** 53;

/**
 * Builds a Multiboot2 boot information structure. Call one method per tag, in
 * the order the tags should appear, then {@linkcode MbiWriter.finish}. Every
 * method checks its input and throws RangeError for a value its field cannot
 * hold; {@linkcode MbiWriter.rawTag} writes anything at all, for tests.
 *
 * @example
 * ```ts
 * import { MbiWriter } from "./multiboot2.ts";
 * const mbi = new MbiWriter()
 *   .cmdline("console=ttyS0")
 *   .bootLoaderName("kernelsim 0.1.0")
 *   .memoryMap([{ base: 0, length: 0x9fc00, type: 1 }])
 *   .finish();
 * console.assert(mbi.length === new DataView(mbi.buffer).getUint32(0, true));
 * ```
 */
export class MbiWriter {
  #bytes = new Uint8Array(256);
  #view = new DataView(this.#bytes.buffer);
  #lengthBytes = HEADER_BYTES;
  #isFinished = false;

  /** Appends a command line tag (1). */
  cmdline(text: string): this {
    return this.#stringTag(MBI_TAG_CMDLINE, text);
  }

  /** Appends a boot loader name tag (2). */
  bootLoaderName(text: string): this {
    return this.#stringTag(MBI_TAG_BOOT_LOADER_NAME, text);
  }

  /** Appends a module tag (3); throws RangeError unless start <= end < 2^32. */
  module(module: MbiModule): this {
    if (module.start > module.end) {
      throw new RangeError(`Module start ${hex(module.start)} is after its end ${hex(module.end)}`);
    }
    const text = encodeString(module.string);
    const at = this.#tag(MBI_TAG_MODULE, 8 + text.length);
    this.#u32(at, module.start, "mod_start");
    this.#u32(at + 4, module.end, "mod_end");
    this.#bytes.set(text, at + 8);
    return this;
  }

  /** Appends a basic memory information tag (4, size 16). */
  basicMemInfo(info: MbiBasicMemInfo): this {
    const at = this.#tag(MBI_TAG_BASIC_MEMINFO, 8);
    this.#u32(at, info.memLowerKiB, "mem_lower");
    this.#u32(at + 4, info.memUpperKiB, "mem_upper");
    return this;
  }

  /** Appends a BIOS boot device tag (5, size 20). */
  bootDevice(device: MbiBootDevice): this {
    const at = this.#tag(MBI_TAG_BOOTDEV, 12);
    this.#u32(at, device.biosDevice, "biosdev");
    this.#u32(at + 4, device.partition, "partition");
    this.#u32(at + 8, device.subPartition, "sub_partition");
    return this;
  }

  /**
   * Appends a memory map tag (6). Entries are written with their reserved
   * field zero; an entry_size above 24 pads each entry with zeros.
   */
  memoryMap(entries: readonly MemoryMapEntry[], options: MbiMemoryMapOptions = {}): this {
    const entrySizeBytes = options.entrySizeBytes ?? MBI_MMAP_ENTRY_SIZE_BYTES;
    if (entrySizeBytes < MBI_MMAP_ENTRY_SIZE_BYTES || entrySizeBytes % 8 !== 0) {
      throw new RangeError(
        `Memory map entry size ${entrySizeBytes} must be at least 24 and a multiple of 8`,
      );
    }
    const at = this.#tag(MBI_TAG_MMAP, 8 + entries.length * entrySizeBytes);
    this.#u32(at, entrySizeBytes, "entry_size");
    this.#u32(at + 4, options.entryVersion ?? 0, "entry_version");
    entries.forEach((entry, index) => {
      const entryAt = at + 8 + index * entrySizeBytes;
      this.#u64(entryAt, entry.base, "base_addr");
      this.#u64(entryAt + 8, entry.length, "length");
      this.#u32(entryAt + 16, entry.type, "type");
    });
    return this;
  }

  /** Appends a VBE tag (7, size 784); the info blocks must be 512 and 256 bytes. */
  vbe(vbe: MbiVbe): this {
    checkLength(vbe.controlInfo, VBE_CONTROL_INFO_BYTES, "VBE control info");
    checkLength(vbe.modeInfo, VBE_MODE_INFO_BYTES, "VBE mode info");
    const at = this.#tag(MBI_TAG_VBE, 8 + VBE_CONTROL_INFO_BYTES + VBE_MODE_INFO_BYTES);
    this.#u16(at, vbe.mode, "vbe_mode");
    this.#u16(at + 2, vbe.interfaceSegment, "vbe_interface_seg");
    this.#u16(at + 4, vbe.interfaceOffset, "vbe_interface_off");
    this.#u16(at + 6, vbe.interfaceLength, "vbe_interface_len");
    this.#bytes.set(vbe.controlInfo, at + 8);
    this.#bytes.set(vbe.modeInfo, at + 8 + VBE_CONTROL_INFO_BYTES);
    return this;
  }

  /**
   * Appends a framebuffer tag (8). The common part follows `multiboot2.h`
   * (a u16 reserved field after the type byte, 32 bytes in all); RGB colour
   * information adds 6 bytes, an indexed palette 2 + 3 per colour, EGA text
   * nothing.
   */
  framebuffer(framebuffer: MbiFramebuffer): this {
    const color = framebuffer.colorInfo;
    const colorBytes = color.kind === "rgb"
      ? 6
      : color.kind === "indexed"
      ? 2 + 3 * color.palette.length
      : 0;
    const at = this.#tag(MBI_TAG_FRAMEBUFFER, FRAMEBUFFER_COMMON_BYTES + colorBytes);
    this.#u64(at, framebuffer.address, "framebuffer_addr");
    this.#u32(at + 8, framebuffer.pitchBytes, "framebuffer_pitch");
    this.#u32(at + 12, framebuffer.width, "framebuffer_width");
    this.#u32(at + 16, framebuffer.height, "framebuffer_height");
    this.#u8(at + 20, framebuffer.bitsPerPixel, "framebuffer_bpp");
    // at + 22: u16 reserved, left zero.
    const colorAt = at + FRAMEBUFFER_COMMON_BYTES;
    switch (color.kind) {
      case "indexed":
        this.#u8(at + 21, MULTIBOOT2_FRAMEBUFFER_TYPE_INDEXED, "framebuffer_type");
        this.#u16(colorAt, color.palette.length, "framebuffer_palette_num_colors");
        color.palette.forEach((entry, index) => {
          const entryAt = colorAt + 2 + 3 * index;
          this.#u8(entryAt, entry.red, "red");
          this.#u8(entryAt + 1, entry.green, "green");
          this.#u8(entryAt + 2, entry.blue, "blue");
        });
        break;
      case "rgb":
        this.#u8(at + 21, MULTIBOOT2_FRAMEBUFFER_TYPE_RGB, "framebuffer_type");
        this.#u8(colorAt, color.redPosition, "framebuffer_red_field_position");
        this.#u8(colorAt + 1, color.redMaskSize, "framebuffer_red_mask_size");
        this.#u8(colorAt + 2, color.greenPosition, "framebuffer_green_field_position");
        this.#u8(colorAt + 3, color.greenMaskSize, "framebuffer_green_mask_size");
        this.#u8(colorAt + 4, color.bluePosition, "framebuffer_blue_field_position");
        this.#u8(colorAt + 5, color.blueMaskSize, "framebuffer_blue_mask_size");
        break;
      case "egaText":
        this.#u8(at + 21, MULTIBOOT2_FRAMEBUFFER_TYPE_EGA_TEXT, "framebuffer_type");
        break;
    }
    return this;
  }

  /**
   * Appends an ELF sections tag (9) in `multiboot2.h`'s layout (u32 num,
   * u32 entsize, u32 shndx); `headers` must hold exactly
   * `sectionCount * entrySizeBytes` bytes.
   */
  elfSections(sections: MbiElfSections): this {
    checkLength(
      sections.headers,
      sections.sectionCount * sections.entrySizeBytes,
      "ELF section headers",
    );
    const at = this.#tag(MBI_TAG_ELF_SECTIONS, 12 + sections.headers.length);
    this.#u32(at, sections.sectionCount, "num");
    this.#u32(at + 4, sections.entrySizeBytes, "entsize");
    this.#u32(at + 8, sections.stringTableIndex, "shndx");
    this.#bytes.set(sections.headers, at + 12);
    return this;
  }

  /** Appends an APM table tag (10, size 28). */
  apm(apm: MbiApm): this {
    const at = this.#tag(MBI_TAG_APM, 20);
    this.#u16(at, apm.version, "version");
    this.#u16(at + 2, apm.codeSegment, "cseg");
    this.#u32(at + 4, apm.offset, "offset");
    this.#u16(at + 8, apm.codeSegment16, "cseg_16");
    this.#u16(at + 10, apm.dataSegment, "dseg");
    this.#u16(at + 12, apm.flags, "flags");
    this.#u16(at + 14, apm.codeSegmentLength, "cseg_len");
    this.#u16(at + 16, apm.codeSegment16Length, "cseg_16_len");
    this.#u16(at + 18, apm.dataSegmentLength, "dseg_len");
    return this;
  }

  /** Appends an EFI 32-bit system table pointer tag (11, size 12). */
  efi32SystemTable(pointer: number): this {
    this.#u32(this.#tag(MBI_TAG_EFI32, 4), pointer, "pointer");
    return this;
  }

  /** Appends an EFI 64-bit system table pointer tag (12, size 16). */
  efi64SystemTable(pointer: number): this {
    this.#u64(this.#tag(MBI_TAG_EFI64, 8), pointer, "pointer");
    return this;
  }

  /** Appends an SMBIOS tag (13): version, 6 reserved bytes, then the tables. */
  smbios(smbios: MbiSmbios): this {
    const at = this.#tag(MBI_TAG_SMBIOS, 8 + smbios.tables.length);
    this.#u8(at, smbios.major, "major");
    this.#u8(at + 1, smbios.minor, "minor");
    this.#bytes.set(smbios.tables, at + 8);
    return this;
  }

  /** Appends an ACPI old RSDP tag (14) holding a copy of an RSDP v1 (20 bytes). */
  acpiOldRsdp(rsdp: Uint8Array): this {
    return this.#bytesTag(MBI_TAG_ACPI_OLD, rsdp);
  }

  /** Appends an ACPI new RSDP tag (15) holding a copy of an RSDP v2 (36 bytes or more). */
  acpiNewRsdp(rsdp: Uint8Array): this {
    return this.#bytesTag(MBI_TAG_ACPI_NEW, rsdp);
  }

  /** Appends a network information tag (16) holding the DHCP ACK packet. */
  network(dhcpAck: Uint8Array): this {
    return this.#bytesTag(MBI_TAG_NETWORK, dhcpAck);
  }

  /** Appends an EFI memory map tag (17). */
  efiMemoryMap(map: MbiEfiMemoryMap): this {
    const at = this.#tag(MBI_TAG_EFI_MMAP, 8 + map.descriptors.length);
    this.#u32(at, map.descriptorSizeBytes, "descr_size");
    this.#u32(at + 4, map.descriptorVersion, "descr_vers");
    this.#bytes.set(map.descriptors, at + 8);
    return this;
  }

  /** Appends an EFI boot services not terminated tag (18, size 8). */
  efiBootServicesNotTerminated(): this {
    this.#tag(MBI_TAG_EFI_BS, 0);
    return this;
  }

  /** Appends an EFI 32-bit image handle tag (19, size 12). */
  efi32ImageHandle(pointer: number): this {
    this.#u32(this.#tag(MBI_TAG_EFI32_IH, 4), pointer, "pointer");
    return this;
  }

  /** Appends an EFI 64-bit image handle tag (20, size 16). */
  efi64ImageHandle(pointer: number): this {
    this.#u64(this.#tag(MBI_TAG_EFI64_IH, 8), pointer, "pointer");
    return this;
  }

  /** Appends an image load base address tag (21, size 12). */
  loadBaseAddr(address: number): this {
    this.#u32(this.#tag(MBI_TAG_LOAD_BASE_ADDR, 4), address, "load_base_addr");
    return this;
  }

  /**
   * Appends a tag of any type with `payload` after its header (size = 8 +
   * payload length). Nothing is checked: tests use it for unknown tag types
   * and malformed tags.
   */
  rawTag(type: number, payload: Uint8Array): this {
    const at = this.#tag(type >>> 0, payload.length);
    this.#bytes.set(payload, at);
    return this;
  }

  /**
   * Appends the end tag, fills in total_size and reserved, and returns the
   * finished MBI. The writer cannot be used afterwards.
   */
  finish(): Uint8Array {
    this.#tag(MBI_TAG_END, 0);
    this.#isFinished = true;
    this.#view.setUint32(0, this.#lengthBytes, true);
    this.#view.setUint32(4, 0, true);
    return this.#bytes.slice(0, this.#lengthBytes);
  }

  /**
   * Starts a tag with `payloadBytes` of zeroed payload and padding, writes
   * its type and size, and returns the offset of the payload.
   */
  #tag(type: number, payloadBytes: number): number {
    if (this.#isFinished) throw new TypeError("MbiWriter is finished: start a new one");
    const at = this.#lengthBytes;
    const end = alignUp(at + TAG_HEADER_BYTES + payloadBytes, MULTIBOOT2_TAG_ALIGN);
    if (end > 2 ** 32) throw new RangeError(`MBI of ${end} bytes exceeds the u32 total_size`);
    if (end > this.#bytes.length) {
      const grown = new Uint8Array(Math.max(end, this.#bytes.length * 2));
      grown.set(this.#bytes);
      this.#bytes = grown;
      this.#view = new DataView(grown.buffer);
    }
    this.#view.setUint32(at, type, true);
    this.#view.setUint32(at + 4, TAG_HEADER_BYTES + payloadBytes, true);
    this.#lengthBytes = end;
    return at + TAG_HEADER_BYTES;
  }

  #stringTag(type: number, text: string): this {
    return this.#bytesTag(type, encodeString(text));
  }

  #bytesTag(type: number, bytes: Uint8Array): this {
    const at = this.#tag(type, bytes.length); // may replace #bytes: call it first
    this.#bytes.set(bytes, at);
    return this;
  }

  #u8(at: number, value: number, field: string): void {
    checkUnsigned(value, 2 ** 8, field);
    this.#view.setUint8(at, value);
  }

  #u16(at: number, value: number, field: string): void {
    checkUnsigned(value, 2 ** 16, field);
    this.#view.setUint16(at, value, true);
  }

  #u32(at: number, value: number, field: string): void {
    checkUnsigned(value, 2 ** 32, field);
    this.#view.setUint32(at, value, true);
  }

  /** Writes a u64 as two u32 halves (no BigInt); the value must be a safe integer. */
  #u64(at: number, value: number, field: string): void {
    checkUnsigned(value, U64_LIMIT, field);
    this.#view.setUint32(at, value % 2 ** 32, true);
    this.#view.setUint32(at + 4, Math.floor(value / 2 ** 32), true);
  }
}

/** Encodes `text` as UTF-8 plus a terminating NUL; it must not contain NUL itself. */
function encodeString(text: string): Uint8Array {
  if (text.includes("\0")) throw new RangeError(`String ${JSON.stringify(text)} contains NUL`);
  const encoded = new TextEncoder().encode(text);
  const bytes = new Uint8Array(encoded.length + 1);
  bytes.set(encoded);
  return bytes;
}

function checkUnsigned(value: number, limit: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 0 || value >= limit) {
    throw new RangeError(`Value ${String(value)} does not fit field ${field}`);
  }
}

function checkLength(bytes: Uint8Array, expectedBytes: number, what: string): void {
  if (bytes.length !== expectedBytes) {
    throw new RangeError(`${what} must be ${expectedBytes} bytes, got ${bytes.length}`);
  }
}
