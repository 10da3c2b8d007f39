/**
 * The PC firmware's ACPI tables: describes this board (its CPUs, the I/O
 * APIC with IRQ 0 on GSI 2, the HPET, COM1) with `buildAcpiTables` and
 * writes them at the base of the memory map's ACPI reclaimable region, as
 * firmware does before the boot loader runs. The boot loader then passes the
 * RSDP in the MBI.
 *
 * @module
 */

import {
  type AcpiPlatform,
  buildAcpiTables,
  COM1_PORT_BASE,
  type FirmwareAcpiTables,
  HPET_BASE,
  IO_APIC_BASE,
  IRQ_COM1,
  IRQ_TIMER,
  LOCAL_APIC_BASE,
  type MemoryMapEntry,
  MULTIBOOT2_MEMORY_ACPI_RECLAIMABLE,
  type PhysAddr,
  type PhysicalMemory,
  TIMER_IRQ_GSI,
} from "../hal/mod.ts";
import { HPET_CAPABILITIES, HPET_MMIO_BYTES } from "./hpet.ts";
import type { Pc } from "./pc.ts";

/** The LINT input wired to NMI on every processor of a PC. */
const NMI_LINT = 1;

/** The ACPI description of `pc`. */
export function pcAcpiPlatform(pc: Pc): AcpiPlatform {
  return {
    localApicAddress: LOCAL_APIC_BASE,
    // APIC IDs are the CPU numbers, the BSP's 0 first.
    processors: Array.from(
      { length: pc.cpuCount },
      (_, cpu) => ({ processorUid: cpu, apicId: cpu }),
    ),
    ioApics: [{ id: pc.ioApic.id, address: IO_APIC_BASE, gsiBase: 0 }],
    overrides: [{ sourceIrq: IRQ_TIMER, gsi: TIMER_IRQ_GSI, flags: 0 }],
    nmiLint: NMI_LINT,
    hpet: { address: HPET_BASE, eventTimerBlockId: pc.hpet.mmioRead(HPET_CAPABILITIES, 4) },
    hpetSizeBytes: HPET_MMIO_BYTES,
    com1: { port: COM1_PORT_BASE, irq: IRQ_COM1 },
  };
}

/**
 * Builds `pc`'s ACPI tables and writes them at the base of the first ACPI
 * reclaimable region of `memoryMap` that is RAM below 4 GiB.
 *
 * @param pc The PC described.
 * @param memory Its RAM.
 * @param memoryMap The firmware memory map.
 * @returns The tables and the RSDP, or undefined when the map has no usable ACPI region.
 */
export function installAcpiTables(
  pc: Pc,
  memory: PhysicalMemory,
  memoryMap: readonly MemoryMapEntry[],
): FirmwareAcpiTables | undefined {
  const platform = pcAcpiPlatform(pc);
  for (const region of memoryMap) {
    if (region.type !== MULTIBOOT2_MEMORY_ACPI_RECLAIMABLE) continue;
    const tables = buildAcpiTables(platform, region.base as PhysAddr);
    const end = region.base + tables.image.length;
    if (end > region.base + region.length || end > 2 ** 32) continue;
    if (!memory.isRam(region.base, tables.image.length)) continue;
    memory.writeBytes(tables.baseAddress, tables.image);
    return tables;
  }
  return undefined;
}
