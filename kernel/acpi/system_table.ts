/**
 * Reading one system description table from physical memory (docs/acpi.md,
 * "Table header"): the 36-byte header is checked before anything else is
 * trusted — the address lies in RAM, the signature is four name characters
 * (and the expected one, when the pointer promised one), the length covers
 * at least the header, stays within {@linkcode ACPI_MAX_TABLE_BYTES} and in
 * RAM, and every byte of the table sums to 0 mod 256.
 *
 * @module
 */

import type { PhysAddr, PhysicalMemory } from "../../hal/mod.ts";
import { AcpiError } from "./acpi_error.ts";
import { TableBytes } from "./table_bytes.ts";

/** Bytes of the common table header. */
export const ACPI_HEADER_BYTES = 36;
/** The longest table the kernel accepts: 1 MiB (real DSDTs stay far below). */
export const ACPI_MAX_TABLE_BYTES = 2 ** 20;
/** Physical addresses stop at 2^52. */
const PHYS_ADDR_LIMIT = 2 ** 52;

/** The header fields of a table, as the boot log and the monitor show them. */
export interface AcpiTableHeader {
  /** The 4-character signature. */
  readonly signature: string;
  /** Physical address. */
  readonly address: number;
  /** Length in bytes, header included. */
  readonly length: number;
  /** Table revision. */
  readonly revision: number;
  /** OEM ID (6 characters). */
  readonly oemId: string;
  /** OEM table ID (8 characters). */
  readonly oemTableId: string;
  /** OEM revision. */
  readonly oemRevision: number;
  /** Creator ID (4 characters: the ASL compiler or firmware that built it). */
  readonly creatorId: string;
  /** Creator revision. */
  readonly creatorRevision: number;
}

/** A table read and checked, with its header fields. */
export interface SystemTable {
  /** The header. */
  readonly header: AcpiTableHeader;
  /** The whole table. */
  readonly table: TableBytes;
}

/**
 * Reads and checks the table at `address`.
 *
 * @param memory Physical memory.
 * @param address The table's physical address, from a pointer.
 * @param expected The signature the pointer promised, or undefined (any).
 * @param what Where the pointer came from, for messages (e.g. `XSDT entry 2`).
 * @returns The table.
 * @throws {AcpiError} For any broken rule, naming the table and the address.
 */
export function readSystemTable(
  memory: PhysicalMemory,
  address: number,
  expected: string | undefined,
  what: string,
): SystemTable {
  const name = expected ?? "table";
  if (!Number.isSafeInteger(address) || address <= 0 || address >= PHYS_ADDR_LIMIT) {
    throw new AcpiError(name, -1, `${what} holds no usable address (${String(address)})`);
  }
  if (!memory.isRam(address, ACPI_HEADER_BYTES)) {
    throw new AcpiError(name, address, `${what} points outside RAM`);
  }
  const head = new TableBytes(
    name,
    address,
    memory.readBytes(address as PhysAddr, ACPI_HEADER_BYTES),
  );
  const signature = head.text(0, 4, "signature");
  if (!/^[A-Z0-9_]{4}$/.test(signature)) {
    throw head.error(`${what} points at no table: signature "${signature}"`);
  }
  if (expected !== undefined && signature !== expected) {
    throw head.error(`${what} points at a "${signature}" table`);
  }
  const length = head.u32(4, "length");
  if (length < ACPI_HEADER_BYTES) {
    throw new AcpiError(signature, address, `length ${length} is shorter than its 36-byte header`);
  }
  if (length > ACPI_MAX_TABLE_BYTES) {
    throw new AcpiError(
      signature,
      address,
      `length ${length} is beyond the 1 MiB the kernel accepts`,
    );
  }
  if (!memory.isRam(address, length)) {
    throw new AcpiError(signature, address, `its ${length} bytes run outside RAM`);
  }
  const table = new TableBytes(signature, address, memory.readBytes(address as PhysAddr, length));
  const sum = table.sum();
  if (sum !== 0) {
    throw table.error(`checksum fails: its ${length} bytes sum to 0x${sum.toString(16)}, not 0`);
  }
  return {
    header: {
      signature,
      address,
      length,
      revision: table.u8(8, "revision"),
      oemId: table.text(10, 6, "OEM ID"),
      oemTableId: table.text(16, 8, "OEM table ID"),
      oemRevision: table.u32(24, "OEM revision"),
      creatorId: table.text(28, 4, "creator ID"),
      creatorRevision: table.u32(32, "creator revision"),
    },
    table,
  };
}

/**
 * The sum mod 256 of the table's bytes as they are in RAM now (0: the
 * checksum holds), or -1 when its bytes are no longer all RAM.
 */
export function checksumNow(memory: PhysicalMemory, header: AcpiTableHeader): number {
  if (!memory.isRam(header.address, header.length)) return -1;
  let sum = 0;
  const bytes = memory.u8;
  for (let i = header.address; i < header.address + header.length; i++) {
    sum = (sum + bytes[i]) & 0xff;
  }
  return sum;
}
