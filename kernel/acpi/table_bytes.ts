/**
 * A bounds-checked little-endian view of one ACPI table's bytes, copied out
 * of RAM once so that what the parser checks is what it uses. Every read
 * names the field and throws {@linkcode AcpiError} when it runs past the
 * table, so a lying length field cannot make the parser read beyond it.
 *
 * @module
 */

import { AcpiError } from "./acpi_error.ts";

/** One table's bytes and where they came from. */
export class TableBytes {
  /** The table's signature, for messages. */
  readonly signature: string;
  /** Its physical address (-1 for the RSDP copy in the MBI). */
  readonly address: number;
  /** The bytes. */
  readonly bytes: Uint8Array;
  readonly #view: DataView;

  /** Wraps `bytes` of table `signature` found at `address`. */
  constructor(signature: string, address: number, bytes: Uint8Array) {
    this.signature = signature;
    this.address = address;
    this.bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Length in bytes. */
  get length(): number {
    return this.bytes.length;
  }

  /** The sum of every byte mod 256 (0 for a valid table). */
  sum(start = 0, end = this.bytes.length): number {
    let sum = 0;
    for (let i = start; i < end; i++) sum = (sum + this.bytes[i]) & 0xff;
    return sum;
  }

  /** A byte at `offset`. */
  u8(offset: number, field: string): number {
    this.#need(offset, 1, field);
    return this.bytes[offset];
  }

  /** A little-endian u16 at `offset`. */
  u16(offset: number, field: string): number {
    this.#need(offset, 2, field);
    return this.#view.getUint16(offset, true);
  }

  /** A little-endian u32 at `offset`. */
  u32(offset: number, field: string): number {
    this.#need(offset, 4, field);
    return this.#view.getUint32(offset, true);
  }

  /** A little-endian u64 at `offset`; values beyond 2^52 (no physical address) are refused. */
  u64(offset: number, field: string): number {
    this.#need(offset, 8, field);
    const high = this.#view.getUint32(offset + 4, true);
    const low = this.#view.getUint32(offset, true);
    if (high >= 2 ** 20) {
      throw this.error(
        `${field} 0x${high.toString(16)}${low.toString(16).padStart(8, "0")} is beyond ` +
          "the 52-bit physical address space",
      );
    }
    return high * 2 ** 32 + low;
  }

  /** `lengthBytes` bytes at `offset` as text, with non-printable bytes escaped. */
  text(offset: number, lengthBytes: number, field: string): string {
    this.#need(offset, lengthBytes, field);
    let text = "";
    for (let i = offset; i < offset + lengthBytes; i++) {
      const byte = this.bytes[i];
      text += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `\\x${hex2(byte)}`;
    }
    return text;
  }

  /** An {@linkcode AcpiError} about this table. */
  error(problem: string): AcpiError {
    return new AcpiError(this.signature, this.address, problem);
  }

  #need(offset: number, sizeBytes: number, field: string): void {
    if (offset + sizeBytes > this.bytes.length) {
      throw this.error(
        `${field} at offset ${offset} runs past the end of the ${this.bytes.length}-byte table`,
      );
    }
  }
}

function hex2(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}
