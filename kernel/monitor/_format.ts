/**
 * Formatting helpers of the monitor: addresses, hex dumps, and any error as
 * the one line the monitor prints for it.
 *
 * @module
 */

import {
  BusError,
  describePageFaultCode,
  formatVirtAddr,
  GeneralProtection,
  hex,
  HIGHER_HALF_START,
  PAGE_SIZE_4K,
  PageFault,
  type VirtAddr,
} from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";
import { UserCodeError } from "../user_code_error.ts";

/** A virtual address in canonical form with all 16 digits, e.g. `0x0000000000400000`. */
export function formatVa(va: VirtAddr): string {
  return va >= HIGHER_HALF_START ? formatVirtAddr(va) : hex(va, 16);
}

export { plural } from "../plural.ts";

/** Bytes per hex dump line. */
const DUMP_LINE_BYTES = 16;

/** A physical address with 12 digits, as dumps print it: `0x000000100000`. */
export function formatPa(pa: number): string {
  return hex(pa, 12);
}

/**
 * A hex dump, 16 bytes a line: address, bytes, and the printable ones.
 *
 * @param start The address of `bytes[0]`: virtual (48-bit form) or physical.
 * @param bytes What to show.
 * @param kind Whether `start` is virtual (canonical form, wrapping at 2^48) or physical.
 * @returns The lines.
 */
export function hexDump(
  start: number,
  bytes: Uint8Array,
  kind: "virtual" | "physical" = "virtual",
): string[] {
  const lines: string[] = [];
  for (let offset = 0; offset < bytes.length; offset += DUMP_LINE_BYTES) {
    const row = bytes.subarray(offset, offset + DUMP_LINE_BYTES);
    let hexPart = "";
    let text = "";
    for (let i = 0; i < DUMP_LINE_BYTES; i++) {
      if (i === 8) hexPart += " ";
      hexPart += i < row.length ? ` ${row[i].toString(16).padStart(2, "0")}` : "   ";
      if (i < row.length) {
        text += row[i] >= 0x20 && row[i] < 0x7f ? String.fromCharCode(row[i]) : ".";
      }
    }
    // A virtual address wraps past the top of the higher half as 64-bit addresses do.
    const address = kind === "virtual"
      ? formatVa(((start + offset) % 2 ** 48) as VirtAddr)
      : formatPa(start + offset);
    lines.push(`${address} ${hexPart}  |${text}|`);
  }
  return lines;
}

/**
 * A range as every monitor command prints it: first and last address, both
 * inclusive, `0x100000-0x1fffff`.
 */
export function formatRange(first: number, last: number): string {
  return `${hex(first)}-${hex(last)}`;
}

/** A virtual range, both ends inclusive, in canonical form. */
export function formatVaRange(first: number, last: number): string {
  return `${formatVa(first as VirtAddr)}-${formatVa(last as VirtAddr)}`;
}

/**
 * Groups sorted physical addresses of frames into runs of consecutive
 * frames, e.g. `0x200000-0x202fff, 0x300000`.
 */
export function formatFrameRuns(physAddrs: readonly number[]): string {
  const runs: string[] = [];
  for (let i = 0; i < physAddrs.length;) {
    let end = i;
    while (end + 1 < physAddrs.length && physAddrs[end + 1] === physAddrs[end] + PAGE_SIZE_4K) {
      end++;
    }
    runs.push(
      end === i ? hex(physAddrs[i]) : formatRange(physAddrs[i], physAddrs[end] + PAGE_SIZE_4K - 1),
    );
    i = end + 1;
  }
  return runs.join(", ");
}

/**
 * Describes any error as one line, in words: a page fault (also one wrapped
 * by the kernel's fault handler) as `page fault at 0x0000000000000000:
 * not-present supervisor read (error code 0x0)`, a kernel error with its
 * code, a hardware fault or a RangeError by its message.
 */
export function describeError(error: unknown): string {
  // A user module's bug: the message names the module, the call and the error.
  if (error instanceof UserCodeError) return firstLine(error.message);
  const fault = findPageFault(error);
  if (fault !== undefined) {
    return `page fault at ${formatVa(fault.address)}: ${describePageFaultCode(fault.errorCode)} ` +
      `(error code ${hex(fault.errorCode)})`;
  }
  if (!(error instanceof Error)) return `unexpected ${typeof error}: ${String(error)}`;
  const message = firstLine(error.message);
  if (error instanceof GeneralProtection) {
    const reason = message.replace(/^General protection fault: /, "");
    return `general protection fault: ${lowerFirst(reason)}`;
  }
  if (error instanceof KernelError) return `${lowerFirst(message)} (${error.code})`;
  if (
    error instanceof BusError || error instanceof RangeError || error instanceof TypeError ||
    error.name === "CommandError"
  ) {
    return lowerFirst(message);
  }
  return `${error.name}: ${message}`;
}

/** The PageFault in `error` or its chain of causes (the fault handler wraps it). */
function findPageFault(error: unknown): PageFault | undefined {
  for (let cause = error, depth = 0; cause instanceof Error && depth < 8; depth++) {
    if (cause instanceof PageFault) return cause;
    cause = cause.cause;
  }
  return undefined;
}

function firstLine(text: string): string {
  const end = text.indexOf("\n");
  return end < 0 ? text : text.slice(0, end);
}

/** Lower-cases the first letter of a sentence, but not of an acronym such as `TLB`. */
function lowerFirst(text: string): string {
  return /^[A-Z][a-z]/.test(text) ? text[0].toLowerCase() + text.slice(1) : text;
}
