/**
 * Typed kernel errors. Each failure a caller may handle has a code, so tests
 * and the monitor can match on `error.code` rather than on message text.
 *
 * @module
 */

/** The kinds of kernel failure, one per cause. */
export type KernelErrorCode =
  // Boot information
  | "InvalidBootMagic"
  | "InvalidBootInfo"
  | "EfiBootServicesActive"
  | "NoMemoryMap"
  // Physical memory
  | "OutOfMemory"
  | "FrameInUse"
  | "InvalidFrame"
  | "DoubleFree"
  // Page handles
  | "UseAfterDispose"
  | "RefcountUnderflow"
  // Heap
  | "InvalidFree"
  | "InvalidSize"
  | "InvalidAlignment"
  // Paging
  | "FrameAllocationFailed"
  | "ParentEntryHugePage"
  | "PageAlreadyMapped"
  | "PageNotMapped"
  | "InvalidAddress"
  // Devices
  | "DeviceNotFound"
  // Firmware tables and interrupt hardware
  | "InvalidAcpiTable"
  | "InterruptsNotRouted"
  | "TimerCalibrationFailed"
  // Replaceable parts (a provider that breaks its contract)
  | "InvalidPart"
  // Several CPUs
  | "CpuNotResponding";

/** A kernel failure with a machine-readable code and a one-line message. */
export class KernelError extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "KernelError";
  /** What went wrong, for matching. */
  readonly code: KernelErrorCode;

  /** Creates an error with `code` and a sentence-case message without a full stop. */
  constructor(code: KernelErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
