/**
 * What the boot information means for physical memory, decided once at boot
 * before any allocator runs: which memory map to trust (sanitized), where the
 * kernel image lies, which modules were really loaded, and which ranges must
 * never be handed out, each with where that knowledge came from.
 *
 * Decisions (docs/multiboot2.md has the protocol facts):
 * - EFI boot services still running (tag 18) is a panic: the loader then
 *   passes no memory map, and this kernel cannot call EFI boot services for
 *   one or exit them itself.
 * - Without a memory map tag (6) the kernel falls back to the basic memory
 *   information tag (4), as Linux falls back from e820 to the BIOS's
 *   88h/E801h sizes; with neither it cannot know where RAM is and panics.
 * - A module is loaded only if its whole range is RAM and it overlaps neither
 *   the MBI, the kernel image, an ELF section copy nor an earlier module: a
 *   loader cannot have put its bytes anywhere else. A module that fails this
 *   is reported as not loaded and never reserved or read. (A machine that
 *   replays a captured MBI gives its modules no RAM, since it has no bytes
 *   for them; see `hal/boot_loader.ts`.)
 *
 * @module
 */

import { hex, type PhysicalMemory } from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";
import { KERNEL_IMAGE_SIZE_BYTES } from "./image.ts";
import {
  type ElfSectionCopy,
  type KernelImageExtent,
  kernelImageExtent,
} from "./kernel_image_extent.ts";
import { sanitizeMemoryMap } from "./memory_map_sanitizer.ts";
import type { BootInfo, BootInfoMemoryRegion, BootInfoModule } from "./multiboot2_parser.ts";
import { printable } from "./printable.ts";

/** A boot module and whether its bytes are really in memory. */
export interface BootModule extends BootInfoModule {
  /** Whether the module's bytes can be in memory where its tag says. */
  readonly isLoaded: boolean;
  /** Why it is not loaded (absent when it is). */
  readonly notLoadedReason?: string;
}

/** A range the frame allocator must never hand out. */
export interface BootReservation {
  /** First byte. */
  readonly base: number;
  /** Length in bytes. */
  readonly length: number;
  /** What lives there, e.g. `kernel image`, `module 0 "initrd"`. */
  readonly what: string;
  /** Where the kernel learnt the range, e.g. `from the module tag (3)`. */
  readonly source: string;
}

/** Physical memory as the boot information describes it, checked and sanitized. */
export interface BootMemory {
  /** The sanitized memory map: sorted, disjoint regions the machine backs. */
  readonly memoryMap: readonly BootInfoMemoryRegion[];
  /** Which tag the memory map came from. */
  readonly memoryMapSource: "memory map tag (6)" | "basic memory information tag (4)";
  /** One line per correction made to the memory map (or its absence), for the boot log. */
  readonly memoryMapWarnings: readonly string[];
  /** The kernel image's extent. */
  readonly kernelImage: KernelImageExtent;
  /** The modules with their load status, in tag order. */
  readonly modules: readonly BootModule[];
  /** Everything to keep out of the frame allocator: first MiB, image, copies, MBI, modules. */
  readonly reservations: readonly BootReservation[];
}

/** What the kernel reads from the hardware to judge the boot information. */
export interface BootMemoryHardware {
  /** The machine's RAM: which ranges it backs. */
  readonly memory: PhysicalMemory;
  /** MAXPHYADDR: physical address bits of the CPU (CPUID 0x80000008). */
  readonly physAddrBits: number;
}

/** The real-mode area the kernel never allocates: the first 1 MiB. */
const FIRST_MIB_BYTES = 0x100000;
/** The kernel image is mapped at 0xffffffff80000000 + physical: it must end by 2 GiB. */
const KERNEL_WINDOW_BYTES = 2 ** 31;
const KIB = 1024;
const MEMORY_AVAILABLE = 1;

/**
 * Works out physical memory from the boot information.
 *
 * @param bootInfo The parsed boot information.
 * @param hardware The RAM the machine backs and the CPU's physical address width.
 * @returns The sanitized map, the image extent, module status and reservations.
 * @throws {KernelError} `EfiBootServicesActive` for tag 18; `NoMemoryMap` with
 *   neither tag 6 nor tag 4; `InvalidBootInfo` if the kernel image the boot
 *   information describes is not in RAM or does not end by 2 GiB.
 */
export function planBootMemory(bootInfo: BootInfo, hardware: BootMemoryHardware): BootMemory {
  if (bootInfo.efiBootServicesNotTerminated) {
    throw new KernelError(
      "EfiBootServicesActive",
      "EFI boot services were not terminated (multiboot2 tag 18: the kernel's header asked the " +
        "boot loader to keep them)" +
        (bootInfo.memoryMap.length === 0 ? ", so the boot information has no memory map" : "") +
        ": this kernel cannot call EFI boot services, so it cannot run under them",
    );
  }
  const memoryMapWarnings: string[] = [];
  const [firmwareMap, memoryMapSource] = chooseMemoryMap(bootInfo, memoryMapWarnings);
  const sanitized = sanitizeMemoryMap(firmwareMap, {
    ramRanges: hardware.memory.ranges,
    physAddrBits: hardware.physAddrBits,
  });
  memoryMapWarnings.push(...sanitized.corrections);

  const kernelImage = kernelImageExtent(bootInfo, KERNEL_IMAGE_SIZE_BYTES);
  const imageWhere = `Kernel image ${hex(kernelImage.base)}..${hex(kernelImage.end)} ` +
    `(base from ${kernelImage.baseSource}, end from ${kernelImage.endSource})`;
  if (kernelImage.end > KERNEL_WINDOW_BYTES) {
    throw new KernelError(
      "InvalidBootInfo",
      `${imageWhere} does not end by ${hex(KERNEL_WINDOW_BYTES)}, the top of the kernel's ` +
        `-2 GiB mapping window`,
    );
  }
  if (!hardware.memory.isRam(kernelImage.base, kernelImage.end - kernelImage.base)) {
    throw new KernelError("InvalidBootInfo", `${imageWhere} is not in RAM`);
  }

  const modules = checkModules(bootInfo, hardware.memory, kernelImage);
  return {
    memoryMap: sanitized.regions,
    memoryMapSource,
    memoryMapWarnings,
    kernelImage,
    modules,
    reservations: reservationsFor(bootInfo, kernelImage, modules),
  };
}

/** The firmware's memory map, or one built from the basic memory information. */
function chooseMemoryMap(
  bootInfo: BootInfo,
  warnings: string[],
): [readonly BootInfoMemoryRegion[], BootMemory["memoryMapSource"]] {
  if (bootInfo.memoryMap.length > 0) return [bootInfo.memoryMap, "memory map tag (6)"];
  const basic = bootInfo.basicMemInfo;
  if (basic === undefined) {
    throw new KernelError(
      "NoMemoryMap",
      "The boot information has neither a memory map (tag 6) nor basic memory information " +
        "(tag 4): the kernel cannot tell where RAM is",
    );
  }
  warnings.push(
    `no memory map tag (6): using basic memory information (tag 4): ` +
      `${basic.memLowerKiB} KiB from 0x0, ${basic.memUpperKiB} KiB from ${hex(FIRST_MIB_BYTES)}`,
  );
  return [
    [
      { base: 0, length: basic.memLowerKiB * KIB, type: MEMORY_AVAILABLE },
      { base: FIRST_MIB_BYTES, length: basic.memUpperKiB * KIB, type: MEMORY_AVAILABLE },
    ],
    "basic memory information tag (4)",
  ];
}

function overlaps(start: number, end: number, otherStart: number, otherEnd: number): boolean {
  return start < otherEnd && otherStart < end;
}

/** Decides for each module whether its bytes can be where its tag says. */
function checkModules(
  bootInfo: BootInfo,
  memory: PhysicalMemory,
  kernelImage: KernelImageExtent,
): BootModule[] {
  const mbiStart: number = bootInfo.mbi.address;
  const mbiEnd = mbiStart + bootInfo.mbi.totalSize;
  const checked: BootModule[] = [];
  bootInfo.modules.forEach((module) => {
    const { start, end } = module;
    const range = `${hex(start)}..${hex(end)}`;
    const copy = kernelImage.sectionCopies.find((c: ElfSectionCopy) =>
      overlaps(start, end, c.base, c.base + c.length)
    );
    const earlier = checked.findIndex((other) =>
      other.isLoaded && overlaps(start, end, other.start, other.end)
    );
    const reason = !memory.isRam(start, end - start)
      ? `${range} is not RAM, so no bytes of it were loaded`
      : overlaps(start, end, mbiStart, mbiEnd)
      ? `${range} overlaps the MBI at ${hex(mbiStart)}..${hex(mbiEnd)}`
      : overlaps(start, end, kernelImage.base, kernelImage.end)
      ? `${range} overlaps the kernel image at ${hex(kernelImage.base)}..${hex(kernelImage.end)}`
      : copy !== undefined
      ? `${range} overlaps the ${copy.what} at ${hex(copy.base)}..${hex(copy.base + copy.length)}`
      : earlier >= 0
      ? `${range} overlaps module ${earlier}`
      : undefined;
    checked.push(
      reason === undefined
        ? { ...module, isLoaded: true }
        : { ...module, isLoaded: false, notLoadedReason: reason },
    );
  });
  return checked;
}

function reservationsFor(
  bootInfo: BootInfo,
  kernelImage: KernelImageExtent,
  modules: readonly BootModule[],
): BootReservation[] {
  const reservations: BootReservation[] = [
    {
      base: 0,
      length: FIRST_MIB_BYTES,
      what: "first 1 MiB (BIOS, real-mode area)",
      source: "from the PC's memory layout",
    },
    {
      base: kernelImage.base,
      length: kernelImage.end - kernelImage.base,
      what: "kernel image",
      source: `base from ${kernelImage.baseSource}, end from ${kernelImage.endSource}`,
    },
    ...kernelImage.sectionCopies.map((copy) => ({
      ...copy,
      source: "from the ELF sections tag (9)",
    })),
    {
      base: bootInfo.mbi.address,
      length: bootInfo.mbi.totalSize,
      what: "multiboot2 info",
      source: "from EBX at entry and the MBI's total_size",
    },
  ];
  modules.forEach((module, index) => {
    if (!module.isLoaded) return;
    reservations.push({
      base: module.start,
      length: module.end - module.start,
      what: `module ${index} "${printable(module.string)}"`,
      source: "from the module tag (3)",
    });
  });
  return reservations;
}
