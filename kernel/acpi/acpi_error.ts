/**
 * The ACPI parser's error: a table that breaks a rule of the specification
 * (docs/acpi.md), named with its signature and physical address.
 *
 * @module
 */

import { KernelError } from "../errors.ts";

/** A firmware table the kernel refuses, with where it is. */
export class AcpiError extends KernelError {
  /** The table's signature (`RSDP`, `XSDT`, `APIC` ...). */
  readonly signature: string;
  /** Its physical address, or -1 when it has none (the RSDP copy in the MBI). */
  readonly address: number;

  /**
   * Creates the error; the message is prefixed with the table's name.
   *
   * @param signature The table's signature.
   * @param address Its physical address, or -1.
   * @param problem What is wrong, sentence case, no full stop.
   */
  constructor(signature: string, address: number, problem: string) {
    super(
      "InvalidAcpiTable",
      `ACPI ${signature}${address >= 0 ? ` at 0x${address.toString(16)}` : ""}: ${problem}`,
    );
    this.signature = signature;
    this.address = address;
  }
}
