/**
 * The Root System Description Pointer (docs/acpi.md, "RSDP"), as the boot
 * loader copies it into the MBI: tag 15 holds an ACPI 2.0+ RSDP, tag 14 an
 * ACPI 1.0 one (or the first 20 bytes of a newer one).
 *
 * | offset | bytes | field |
 * |---|---|---|
 * | 0 | 8 | signature `RSD PTR ` |
 * | 8 | 1 | checksum of bytes 0 to 19 |
 * | 9 | 6 | OEM ID |
 * | 15 | 1 | revision: 0 (ACPI 1.0) or 2 (2.0 and later) |
 * | 16 | 4 | RSDT address |
 * | 20 | 4 | length of the whole structure (revision 2) |
 * | 24 | 8 | XSDT address (revision 2) |
 * | 32 | 1 | extended checksum of all `length` bytes (revision 2) |
 *
 * @module
 */

import { TableBytes } from "./table_bytes.ts";

/** Bytes the ACPI 1.0 RSDP has (and its checksum covers). */
export const RSDP_V1_BYTES = 20;
/** Bytes of an ACPI 2.0 RSDP. */
export const RSDP_V2_BYTES = 36;
const RSDP_SIGNATURE = "RSD PTR ";
const REVISION_ACPI2 = 2;

/** What an RSDP says. */
export interface Rsdp {
  /** 0 for ACPI 1.0, 2 for 2.0 and later. */
  readonly revision: number;
  /** OEM ID. */
  readonly oemId: string;
  /** The RSDT's physical address (0: none). */
  readonly rsdtAddress: number;
  /** The XSDT's physical address, for revision 2 (0: none). */
  readonly xsdtAddress: number;
  /** Where the kernel found it: `MBI tag 15` or `MBI tag 14`. */
  readonly source: string;
}

/**
 * Checks an RSDP copy: signature, the checksum of its first 20 bytes and,
 * from revision 2 on, its length and extended checksum. An ACPI 1.0 copy
 * (MBI tag 14) is read as its first 20 bytes only, whatever its revision
 * field says: it leads to the RSDT.
 *
 * @param bytes The copy from the MBI tag.
 * @param source `MBI tag 14` or `MBI tag 15`, for messages and the report.
 * @param kind `acpi1` for a tag 14 copy, `acpi2` for a tag 15 one.
 * @returns What it points to.
 * @throws {AcpiError} For any broken rule.
 */
export function parseRsdp(bytes: Uint8Array, source: string, kind: "acpi1" | "acpi2"): Rsdp {
  const rsdp = new TableBytes("RSDP", -1, bytes);
  if (bytes.length < RSDP_V1_BYTES) {
    throw rsdp.error(`${source} holds ${bytes.length} bytes, fewer than the 20 of an RSDP`);
  }
  const signature = rsdp.text(0, 8, "signature");
  if (signature !== RSDP_SIGNATURE) {
    throw rsdp.error(`${source} has signature "${signature}", not "RSD PTR "`);
  }
  const sum = rsdp.sum(0, RSDP_V1_BYTES);
  if (sum !== 0) {
    throw rsdp.error(`checksum fails: its first 20 bytes sum to 0x${sum.toString(16)}, not 0`);
  }
  const revision = rsdp.u8(15, "revision");
  const oemId = rsdp.text(9, 6, "OEM ID");
  const rsdtAddress = rsdp.u32(16, "RSDT address");
  if (revision < REVISION_ACPI2 || kind === "acpi1") {
    return { revision, oemId, rsdtAddress, xsdtAddress: 0, source };
  }
  if (bytes.length < RSDP_V2_BYTES) {
    throw rsdp.error(
      `revision ${revision} needs 36 bytes, ${source} holds ${bytes.length}`,
    );
  }
  const length = rsdp.u32(20, "length");
  if (length < RSDP_V2_BYTES || length > bytes.length) {
    throw rsdp.error(
      `length ${length} is outside 36..${bytes.length} (the bytes ${source} holds)`,
    );
  }
  const extendedSum = rsdp.sum(0, length);
  if (extendedSum !== 0) {
    throw rsdp.error(
      `extended checksum fails: its ${length} bytes sum to 0x${extendedSum.toString(16)}, not 0`,
    );
  }
  return { revision, oemId, rsdtAddress, xsdtAddress: rsdp.u64(24, "XSDT address"), source };
}
