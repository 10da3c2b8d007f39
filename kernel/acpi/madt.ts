/**
 * The Multiple APIC Description Table, signature `APIC` (docs/acpi.md,
 * "MADT"): the local APIC address and flags, then variable-length
 * structures, each `u8 type, u8 length, ...`:
 *
 * | type | length | structure |
 * |---|---|---|
 * | 0 | 8 | processor local APIC: UID, APIC ID, flags (0 enabled, 1 online capable) |
 * | 1 | 12 | I/O APIC: ID, reserved, address, GSI base |
 * | 2 | 10 | interrupt source override: bus (0 = ISA), IRQ, GSI, MPS INTI flags |
 * | 4 | 6 | local APIC NMI: UID (0xFF = all), flags, LINT number |
 * | 5 | 12 | local APIC address override: reserved, 64-bit address |
 *
 * MPS INTI flags: polarity in bits 1:0 and trigger mode in bits 3:2, each
 * 00 = as the bus defines (ISA: active high, edge), 01 = high / edge,
 * 11 = low / level; 10 is reserved. Other structure types are skipped by
 * their length; a structure shorter than its type needs is refused.
 *
 * @module
 */

import type { SystemTable } from "./system_table.ts";
import type { TableBytes } from "./table_bytes.ts";

/** MADT flags bit 0: a PC-AT dual 8259 is installed. */
export const MADT_FLAG_PCAT_COMPAT = 1 << 0;
const FIXED_BYTES = 44;
const TYPE_LOCAL_APIC = 0;
const TYPE_IO_APIC = 1;
const TYPE_OVERRIDE = 2;
const TYPE_NMI = 4;
const TYPE_ADDRESS_OVERRIDE = 5;
/** Bytes each known structure type needs. */
const MIN_LENGTH: Readonly<Record<number, number>> = {
  [TYPE_LOCAL_APIC]: 8,
  [TYPE_IO_APIC]: 12,
  [TYPE_OVERRIDE]: 10,
  [TYPE_NMI]: 6,
  [TYPE_ADDRESS_OVERRIDE]: 12,
};
const LOCAL_APIC_ENABLED = 1 << 0;
const LOCAL_APIC_ONLINE_CAPABLE = 1 << 1;
const ISA_IRQ_COUNT = 16;
const ALL_PROCESSORS = 0xff;
const PAGE_BYTES = 4096;

/** Polarity of an interrupt input, as the MPS INTI flags give it. */
export type InterruptPolarity = "bus-default" | "high" | "low";
/** Trigger mode of an interrupt input, as the MPS INTI flags give it. */
export type InterruptTrigger = "bus-default" | "edge" | "level";

/** A processor's local APIC. */
export interface MadtProcessor {
  /** ACPI processor UID. */
  readonly processorUid: number;
  /** Its APIC ID. */
  readonly apicId: number;
  /** Usable now. */
  readonly isEnabled: boolean;
  /** Can be brought online later (MADT revision 5 and up). */
  readonly isOnlineCapable: boolean;
}

/** An I/O APIC. */
export interface MadtIoApic {
  /** Its ID. */
  readonly id: number;
  /** Physical address of its registers. */
  readonly address: number;
  /** The GSI of its pin 0. */
  readonly gsiBase: number;
}

/** ISA IRQ `sourceIrq` arrives on `gsi`, with the given polarity and trigger. */
export interface MadtOverride {
  /** The ISA IRQ. */
  readonly sourceIrq: number;
  /** The GSI. */
  readonly gsi: number;
  /** Polarity. */
  readonly polarity: InterruptPolarity;
  /** Trigger mode. */
  readonly trigger: InterruptTrigger;
}

/** Which LINT input carries NMI on a processor (or all, UID 0xFF). */
export interface MadtNmi {
  /** The processor UID, or 0xFF for all. */
  readonly processorUid: number;
  /** 0 or 1. */
  readonly lint: number;
  /** Polarity. */
  readonly polarity: InterruptPolarity;
  /** Trigger mode. */
  readonly trigger: InterruptTrigger;
}

/** The decoded MADT. */
export interface Madt {
  /** Where the local APICs are (from the fixed field or a type 5 override). */
  readonly localApicAddress: number;
  /** Whether a dual 8259 is installed. */
  readonly isPcAtCompatible: boolean;
  /** The processors, in table order. */
  readonly processors: readonly MadtProcessor[];
  /** The I/O APICs. */
  readonly ioApics: readonly MadtIoApic[];
  /** The interrupt source overrides. */
  readonly overrides: readonly MadtOverride[];
  /** The local APIC NMI inputs. */
  readonly nmis: readonly MadtNmi[];
  /** Structures of types the kernel does not use, by type. */
  readonly skippedTypes: readonly number[];
}

/**
 * Decodes a checked MADT.
 *
 * @param madt The table, read with `readSystemTable`.
 * @returns What it describes.
 * @throws {AcpiError} For a structure that runs past the table or is too
 *   short for its type, a reserved flag value, an ISA IRQ above 15 or
 *   overridden twice, a LINT other than 0 or 1, or a misaligned address.
 */
export function parseMadt(madt: SystemTable): Madt {
  const table = madt.table;
  if (table.length < FIXED_BYTES) {
    throw table.error(`length ${table.length} is shorter than the 44 bytes of its fixed fields`);
  }
  let localApicAddress = table.u32(36, "local APIC address");
  const flags = table.u32(40, "flags");
  const processors: MadtProcessor[] = [];
  const ioApics: MadtIoApic[] = [];
  const overrides: MadtOverride[] = [];
  const nmis: MadtNmi[] = [];
  const skippedTypes: number[] = [];
  for (let at = FIXED_BYTES; at < table.length;) {
    const type = table.u8(at, "structure type");
    const length = table.u8(at + 1, `type ${type} structure length`);
    const where = `structure at offset ${at} (type ${type})`;
    if (length < 2 || at + length > table.length) {
      throw table.error(`${where} has length ${length}, outside the table`);
    }
    const needed = MIN_LENGTH[type];
    if (needed !== undefined && length < needed) {
      throw table.error(`${where} has length ${length}, needs ${needed}`);
    }
    switch (type) {
      case TYPE_LOCAL_APIC: {
        const cpuFlags = table.u32(at + 4, "local APIC flags");
        processors.push({
          processorUid: table.u8(at + 2, "processor UID"),
          apicId: table.u8(at + 3, "APIC ID"),
          isEnabled: (cpuFlags & LOCAL_APIC_ENABLED) !== 0,
          isOnlineCapable: (cpuFlags & LOCAL_APIC_ONLINE_CAPABLE) !== 0,
        });
        break;
      }
      case TYPE_IO_APIC: {
        const ioApic = {
          id: table.u8(at + 2, "I/O APIC ID"),
          address: table.u32(at + 4, "I/O APIC address"),
          gsiBase: table.u32(at + 8, "GSI base"),
        };
        if (ioApic.address === 0 || ioApic.address % 16 !== 0) {
          throw table.error(
            `${where}: I/O APIC address 0x${
              ioApic.address.toString(16)
            } is not a 16-byte aligned register block`,
          );
        }
        if (ioApics.some((other) => other.id === ioApic.id)) {
          throw table.error(`${where}: I/O APIC ID ${ioApic.id} appears twice`);
        }
        ioApics.push(ioApic);
        break;
      }
      case TYPE_OVERRIDE: {
        const bus = table.u8(at + 2, "override bus");
        const sourceIrq = table.u8(at + 3, "override source");
        if (bus !== 0) throw table.error(`${where}: bus ${bus} is not ISA (0)`);
        if (sourceIrq >= ISA_IRQ_COUNT) {
          throw table.error(`${where}: ISA IRQ ${sourceIrq} is above 15`);
        }
        if (overrides.some((other) => other.sourceIrq === sourceIrq)) {
          throw table.error(`${where}: IRQ ${sourceIrq} is overridden twice`);
        }
        const intiFlags = table.u16(at + 8, "override flags");
        overrides.push({
          sourceIrq,
          gsi: table.u32(at + 4, "override GSI"),
          polarity: polarityOf(table, intiFlags, where),
          trigger: triggerOf(table, intiFlags, where),
        });
        break;
      }
      case TYPE_NMI: {
        const lint = table.u8(at + 5, "LINT number");
        if (lint > 1) throw table.error(`${where}: LINT${lint} does not exist (0 or 1)`);
        const intiFlags = table.u16(at + 3, "NMI flags");
        nmis.push({
          processorUid: table.u8(at + 2, "NMI processor UID"),
          lint,
          polarity: polarityOf(table, intiFlags, where),
          trigger: triggerOf(table, intiFlags, where),
        });
        break;
      }
      case TYPE_ADDRESS_OVERRIDE:
        localApicAddress = table.u64(at + 4, "local APIC address override");
        break;
      default:
        skippedTypes.push(type);
    }
    at += length;
  }
  if (localApicAddress === 0 || localApicAddress % PAGE_BYTES !== 0) {
    throw table.error(
      `local APIC address 0x${localApicAddress.toString(16)} is not a 4 KiB aligned page`,
    );
  }
  return {
    localApicAddress,
    isPcAtCompatible: (flags & MADT_FLAG_PCAT_COMPAT) !== 0,
    processors,
    ioApics,
    overrides,
    nmis,
    skippedTypes,
  };
}

/** Whether an NMI entry applies to processor `processorUid`. */
export function nmiAppliesTo(nmi: MadtNmi, processorUid: number): boolean {
  return nmi.processorUid === ALL_PROCESSORS || nmi.processorUid === processorUid;
}

function polarityOf(table: TableBytes, flags: number, where: string): InterruptPolarity {
  const bits = flags & 0b11;
  if (bits === 0b10) throw table.error(`${where}: polarity 10 is reserved`);
  return bits === 0 ? "bus-default" : bits === 0b01 ? "high" : "low";
}

function triggerOf(table: TableBytes, flags: number, where: string): InterruptTrigger {
  const bits = (flags >> 2) & 0b11;
  if (bits === 0b10) throw table.error(`${where}: trigger mode 10 is reserved`);
  return bits === 0 ? "bus-default" : bits === 0b01 ? "edge" : "level";
}
