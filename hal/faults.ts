/**
 * Hardware faults of the simulated machine, as typed errors carrying the
 * architectural facts (Intel SDM vol. 3A, 4.7 for the page-fault error code).
 *
 * @module
 */

import { formatVirtAddr, hex, type PhysAddr, type VirtAddr } from "./address.ts";

/** A physical access outside RAM and every device range. */
export class BusError extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "BusError";
  /** The physical address that no RAM or device answers. */
  readonly address: PhysAddr;
  /** The access width or range length, in bytes. */
  readonly sizeBytes: number;

  /** Creates a bus error for an access of `sizeBytes` at `address`. */
  constructor(address: PhysAddr, sizeBytes: number, detail = "outside RAM and every device") {
    super(
      `Bus error at physical address ${hex(address)} (${sizeBytes} byte${
        sizeBytes === 1 ? "" : "s"
      }): ${detail}`,
    );
    this.address = address;
    this.sizeBytes = sizeBytes;
  }
}

/** Page-fault error code bit 0: the page was present (a protection violation). */
export const PF_PRESENT = 1 << 0;
/** Page-fault error code bit 1: the access was a write. */
export const PF_WRITE = 1 << 1;
/** Page-fault error code bit 2: the access was made in user mode (CPL 3). */
export const PF_USER = 1 << 2;
/** Page-fault error code bit 3: a reserved bit was set in a paging entry. */
export const PF_RESERVED = 1 << 3;
/** Page-fault error code bit 4: the access was an instruction fetch. */
export const PF_FETCH = 1 << 4;
/** Page-fault error code bit 5: protection-key violation. */
export const PF_PROTECTION_KEY = 1 << 5;

/** Describes a page-fault error code in words, e.g. `not-present supervisor write`. */
export function describePageFaultCode(errorCode: number): string {
  const words: string[] = [];
  if (errorCode & PF_RESERVED) words.push("reserved-bit");
  else words.push(errorCode & PF_PRESENT ? "protection" : "not-present");
  words.push(errorCode & PF_USER ? "user" : "supervisor");
  words.push(errorCode & PF_FETCH ? "fetch" : errorCode & PF_WRITE ? "write" : "read");
  if (errorCode & PF_PROTECTION_KEY) words.push("(protection key)");
  return words.join(" ");
}

/** A page fault (#PF): CR2 holds `address`, and `errorCode` the cause. */
export class PageFault extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "PageFault";
  /** The faulting linear address (what CR2 receives). */
  readonly address: VirtAddr;
  /** The error code pushed by the processor (PF_* bits). */
  readonly errorCode: number;

  /** Creates a page fault at `address` with the given error code. */
  constructor(address: VirtAddr, errorCode: number) {
    super(
      `Page fault at ${formatVirtAddr(address)}: ${describePageFaultCode(errorCode)} ` +
        `(error code ${hex(errorCode)})`,
    );
    this.address = address;
    this.errorCode = errorCode;
  }
}

/** A general-protection fault (#GP), for example a non-canonical address. */
export class GeneralProtection extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "GeneralProtection";

  /** Creates a general-protection fault with a reason. */
  constructor(reason: string) {
    super(`General protection fault: ${reason}`);
  }
}
