/**
 * The HPET description table, signature `HPET` (docs/acpi.md, "HPET
 * table"; docs/hpet.md for the hardware):
 *
 * | offset | bytes | field |
 * |---|---|---|
 * | 36 | 4 | event timer block ID: the low half of the capabilities register |
 * | 40 | 12 | base address, a generic address structure (space 0 = memory) |
 * | 52 | 1 | HPET number |
 * | 53 | 2 | minimum clock tick in periodic mode |
 * | 55 | 1 | page protection and OEM attributes |
 *
 * @module
 */

import type { SystemTable } from "./system_table.ts";

const TABLE_BYTES = 56;
const ADDRESS_SPACE_MEMORY = 0;
const HPET_BLOCK_ALIGN_BYTES = 1024;

/** The decoded HPET table. */
export interface HpetTable {
  /** Physical address of the register block. */
  readonly address: number;
  /** Hardware revision (block ID bits 7:0). */
  readonly hardwareRevision: number;
  /** Comparators in the block (block ID bits 12:8, plus one). */
  readonly comparatorCount: number;
  /** Whether the main counter is 64 bits wide (bit 13). */
  readonly isCounter64Bit: boolean;
  /** Whether legacy replacement routing is supported (bit 15). */
  readonly isLegacyReplacementCapable: boolean;
  /** PCI vendor ID of the block (bits 31:16). */
  readonly vendorId: number;
  /** The HPET's sequence number. */
  readonly number: number;
  /** Minimum clock tick in periodic mode. */
  readonly minimumTick: number;
}

/**
 * Decodes a checked HPET table.
 *
 * @param hpet The table, read with `readSystemTable`.
 * @returns The block's address and what the block ID says.
 * @throws {AcpiError} If it is too short, its registers are not in memory
 *   space, or its address is 0 or not 1 KiB aligned.
 */
export function parseHpetTable(hpet: SystemTable): HpetTable {
  const table = hpet.table;
  if (table.length < TABLE_BYTES) {
    throw table.error(`length ${table.length} is shorter than the 56 bytes of an HPET table`);
  }
  const blockId = table.u32(36, "event timer block ID");
  const space = table.u8(40, "address space ID");
  if (space !== ADDRESS_SPACE_MEMORY) {
    throw table.error(`registers in address space ${space}, not system memory (0)`);
  }
  const address = table.u64(44, "base address");
  if (address === 0 || address % HPET_BLOCK_ALIGN_BYTES !== 0) {
    throw table.error(`base address 0x${address.toString(16)} is not a 1 KiB aligned block`);
  }
  return {
    address,
    hardwareRevision: blockId & 0xff,
    comparatorCount: ((blockId >>> 8) & 0x1f) + 1,
    isCounter64Bit: (blockId & (1 << 13)) !== 0,
    isLegacyReplacementCapable: (blockId & (1 << 15)) !== 0,
    vendorId: blockId >>> 16,
    number: table.u8(52, "HPET number"),
    minimumTick: table.u16(53, "minimum clock tick"),
  };
}
