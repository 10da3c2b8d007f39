/**
 * The physical memory map of the simulated PC, modelled on QEMU's `pc`
 * machine with SeaBIOS. This file is the one place that says where things are.
 *
 * ```
 * Physical range                 e820 type          What
 * -----------------------------  -----------------  ------------------------------------------
 * 0x0000_0000 .. 0x0009_fbff     1 available        low memory (639 KiB): real-mode IVT, BIOS
 *                                                   data area, free; a raw MBI goes at 0x10000
 * 0x0009_fc00 .. 0x000f_ffff     2 reserved         hole, no RAM: EBDA (0x9fc00), VGA window
 *                                                   (0xa0000), option ROMs (0xc0000), BIOS
 *                                                   (0xf0000; SeaBIOS leaves the RSDP near
 *                                                   0xf5a60)
 * 0x0010_0000 .. top - 128 KiB   1 available        the kernel image at 1 MiB, then its
 *                                                   modules and the MBI, then free RAM
 * top - 128 KiB .. top           3 ACPI reclaimable ACPI tables (an empty RSDT at its base)
 * top .. 0xdfff_ffff             (absent)           nothing, when RAM is below 3.5 GiB
 * 0xe000_0000 .. 0xffff_ffff     (absent)           PCI hole: MMIO, never RAM
 * 0xfec0_0000 .. +0x20                               I/O APIC (82093AA): IOREGSEL, IOWIN
 * 0xfed0_0000 .. +0x400                              HPET registers
 * 0xfee0_0000 .. +0x1000                             local APIC page (decoded in the CPU)
 * 0xfffc_0000 .. 0xffff_ffff     2 reserved         BIOS flash, reported as QEMU does
 * 0x1_0000_0000 .. +rest         1 available        RAM beyond 3.5 GiB, moved above 4 GiB
 *
 * top = min(RAM size, 3.5 GiB)
 *
 * Ports                          IRQ
 * 0x3f8 .. 0x3ff  COM1 (16550A)  4 (IRQ_COM1)
 * 0x40 .. 0x43    PIT (8254)     0 (IRQ_TIMER), I/O APIC pin 2 (ACPI override)
 * 0x20, 0xa0      8259A pair     -  (master, slave: command and mask ports)
 * 0xe9            debug console  -  (Bochs/QEMU port 0xE9 hack)
 * ```
 *
 * One deliberate difference from SeaBIOS: it reports its 128 KiB of ACPI
 * tables at the top of low RAM as reserved (type 2); here they are ACPI
 * reclaimable (type 3), so the area is RAM the loader can write the tables
 * into and the kernel can reclaim once it has read them. The RSDP itself is
 * not placed in the BIOS area, which is a hole here: the boot loader hands
 * the kernel a copy in the MBI (tag 14), which is all a multiboot2 kernel uses.
 *
 * @module
 */

import { alignDown, alignUp, PAGE_SIZE_4K, type PhysAddr } from "./address.ts";
import { MIN_RAM_BYTES, type RamRange } from "./physical_memory.ts";
import {
  type MemoryMapEntry,
  MULTIBOOT2_MEMORY_ACPI_RECLAIMABLE,
  MULTIBOOT2_MEMORY_AVAILABLE,
  MULTIBOOT2_MEMORY_NVS,
  MULTIBOOT2_MEMORY_RESERVED,
} from "./multiboot2.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Largest RAM a simulated PC may have: 64 GiB. */
export const MAX_RAM_BYTES = 64 * GiB;
/** End of usable low memory: 639 KiB, where the EBDA starts. */
export const LOW_MEMORY_END = 0x9fc00;
/** Extended BIOS data area, the start of the hole below 1 MiB. */
export const EBDA_START = 0x9fc00;
/** The legacy VGA memory window. */
export const VGA_WINDOW_START = 0xa0000;
/** The system BIOS ROM. */
export const BIOS_ROM_START = 0xf0000;
/** Where SeaBIOS usually leaves the ACPI RSDP (documentation: not RAM here). */
export const RSDP_BIOS_ADDRESS = 0xf5a60;
/** Physical address the boot loader copies the kernel image to: 1 MiB. */
export const KERNEL_LOAD_ADDRESS = 0x100000 as PhysAddr;
/** Size of the ACPI table area at the top of low RAM. */
export const ACPI_AREA_SIZE_BYTES = 128 * KiB;
/** Start of the PCI hole: RAM beyond this is moved above 4 GiB. */
export const PCI_HOLE_START = 0xe0000000;
/** End of the PCI hole (exclusive): 4 GiB. */
export const PCI_HOLE_END = 4 * GiB;
/** The BIOS flash mapped just below 4 GiB. */
export const BIOS_FLASH_START = 0xfffc0000;
/** Where RAM that does not fit below the PCI hole continues. */
export const HIGH_MEMORY_START = 4 * GiB;
/** Default physical address of a raw MBI passed with `--mbi`. */
export const RAW_MBI_DEFAULT_ADDRESS = 0x10000 as PhysAddr;
/** First I/O port of COM1, the 16550A UART (8 ports; IRQ 4). */
export const COM1_PORT_BASE = 0x3f8;
/** First I/O port of the 8254 PIT (4 ports; IRQ 0). */
export const PIT_PORT_BASE = 0x40;
/** The debug console port (Bochs/QEMU "port 0xE9 hack"). */
export const DEBUG_CONSOLE_PORT = 0xe9;
/** First port of the master 8259A (command at +0, mask at +1). */
export const PIC_MASTER_PORT_BASE = 0x20;
/** First port of the slave 8259A. */
export const PIC_SLAVE_PORT_BASE = 0xa0;
/** The I/O APIC's registers (MADT I/O APIC entry; docs/apic.md). */
export const IO_APIC_BASE = 0xfec00000 as PhysAddr;
/** The HPET's registers (ACPI HPET table; docs/hpet.md). */
export const HPET_BASE = 0xfed00000 as PhysAddr;
/** The local APIC's page (IA32_APIC_BASE after reset; MADT local APIC address). */
export const LOCAL_APIC_BASE = 0xfee00000 as PhysAddr;
/** The I/O APIC pin the PIT's IRQ 0 drives, as the MADT's interrupt source override says. */
export const TIMER_IRQ_GSI = 2;

/**
 * The firmware memory map (e820, as multiboot2 reports it) of a PC with
 * `ramBytes` of RAM, sorted by base. See the table at the top of this file.
 *
 * @param ramBytes RAM size: a multiple of 4 KiB from 16 MiB to 64 GiB.
 * @returns The map entries; their available, ACPI and high parts sum to `ramBytes`.
 * @throws {RangeError} If `ramBytes` is out of range or not whole 4 KiB frames.
 * @example
 * ```ts
 * import { pcMemoryMap } from "./memory_layout.ts";
 * const map = pcMemoryMap(128 * 2 ** 20);
 * console.assert(map[0].base === 0 && map[0].length === 0x9fc00);
 * ```
 */
export function pcMemoryMap(ramBytes: number): MemoryMapEntry[] {
  if (
    !Number.isSafeInteger(ramBytes) || ramBytes < MIN_RAM_BYTES || ramBytes > MAX_RAM_BYTES ||
    ramBytes % PAGE_SIZE_4K !== 0
  ) {
    throw new RangeError(
      `Invalid RAM size ${
        String(ramBytes)
      } bytes: must be whole 4 KiB frames from 16 MiB to 64 GiB`,
    );
  }
  const lowTop = Math.min(ramBytes, PCI_HOLE_START);
  const acpiBase = lowTop - ACPI_AREA_SIZE_BYTES;
  const map: MemoryMapEntry[] = [
    { base: 0, length: LOW_MEMORY_END, type: MULTIBOOT2_MEMORY_AVAILABLE },
    {
      base: EBDA_START,
      length: KERNEL_LOAD_ADDRESS - EBDA_START,
      type: MULTIBOOT2_MEMORY_RESERVED,
    },
    {
      base: KERNEL_LOAD_ADDRESS,
      length: acpiBase - KERNEL_LOAD_ADDRESS,
      type: MULTIBOOT2_MEMORY_AVAILABLE,
    },
    { base: acpiBase, length: ACPI_AREA_SIZE_BYTES, type: MULTIBOOT2_MEMORY_ACPI_RECLAIMABLE },
    {
      base: BIOS_FLASH_START,
      length: PCI_HOLE_END - BIOS_FLASH_START,
      type: MULTIBOOT2_MEMORY_RESERVED,
    },
  ];
  if (ramBytes > lowTop) {
    map.push({
      base: HIGH_MEMORY_START,
      length: ramBytes - lowTop,
      type: MULTIBOOT2_MEMORY_AVAILABLE,
    });
  }
  return map;
}

/** Whether a memory map type is backed by RAM: available, ACPI reclaimable or NVS. */
export function isRamType(type: number): boolean {
  return type === MULTIBOOT2_MEMORY_AVAILABLE || type === MULTIBOOT2_MEMORY_ACPI_RECLAIMABLE ||
    type === MULTIBOOT2_MEMORY_NVS;
}

/**
 * The RAM ranges a machine with this memory map has, for
 * {@linkcode PhysicalMemory}: the union of its available, ACPI reclaimable
 * and NVS regions, each rounded inward to whole 4 KiB frames, with
 * overlapping and adjacent ranges merged. Reserved and bad regions (and
 * anything the map does not mention) are holes.
 *
 * @param memoryMap Entries in any order; they may overlap.
 * @returns Sorted, disjoint, non-adjacent ranges of whole frames (possibly empty).
 * @example
 * ```ts
 * import { pcMemoryMap, ramRangesFor } from "./memory_layout.ts";
 * const ranges = ramRangesFor(pcMemoryMap(16 * 2 ** 20));
 * console.assert(ranges[0].sizeBytes === 0x9f000); // 0x9fc00 rounded down
 * ```
 */
export function ramRangesFor(memoryMap: readonly MemoryMapEntry[]): RamRange[] {
  const frames = memoryMap
    .filter((entry) => isRamType(entry.type))
    .map((entry) => ({
      start: alignUp(entry.base, PAGE_SIZE_4K),
      end: alignDown(entry.base + entry.length, PAGE_SIZE_4K),
    }))
    .filter((range) => range.end > range.start)
    .sort((a, b) => a.start - b.start);
  const merged: { start: number; end: number }[] = [];
  for (const range of frames) {
    const last = merged.at(-1);
    if (last !== undefined && range.start <= last.end) {
      last.end = Math.max(last.end, range.end);
    } else {
      merged.push({ ...range });
    }
  }
  return merged.map((range) => ({
    base: range.start as PhysAddr,
    sizeBytes: range.end - range.start,
  }));
}
