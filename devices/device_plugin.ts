/**
 * Extra devices: a device model a user writes (port I/O, MMIO, timed) and
 * plugs into the PC board with {@linkcode createPc}'s `devices` option, or
 * from the command line with `--device FILE`.
 *
 * A plugin gets the board: it claims its ports or MMIO range on the bus,
 * raises its IRQ line on the interrupt controller, and registers itself as a
 * timed device if its state follows the clock. The CMOS real-time clock in `examples/cmos_rtc.ts` is one.
 *
 * @module
 */

import type {
  Clock,
  ClockedDevice,
  InterruptLines,
  MmioDevice,
  PhysAddr,
  PhysicalMemory,
  PortDevice,
} from "../hal/mod.ts";

/** What a device plugin may use of the board. */
export interface DeviceBoard {
  /**
   * Claims ports `[base, base + count)` for `device`.
   *
   * @throws {RangeError} If a port is already claimed.
   */
  claimPorts(base: number, count: number, device: PortDevice): void;
  /**
   * Claims the physical range `[base, base + sizeBytes)` for `device`.
   *
   * @throws {RangeError} If it overlaps RAM or another device's range.
   */
  claimMmio(base: PhysAddr, sizeBytes: number, device: MmioDevice): void;
  /** Registers a device whose state depends on time (`advanceTo`, `nextEventNs`). */
  addTimedDevice(device: ClockedDevice): void;
  /**
   * The board's ISA IRQ lines: `raise(irq)` / `lower(irq)` for the device's
   * line, which reaches both the 8259 pair and the I/O APIC.
   */
  readonly interrupts: InterruptLines;
  /** The clock timed devices follow. */
  readonly clock: Clock;
  /** RAM, for a device that does DMA. */
  readonly memory: PhysicalMemory;
}

/** A device model that plugs into the board. */
export interface DevicePlugin {
  /** Short name for messages, e.g. `cmos-rtc`. */
  readonly name: string;
  /**
   * Builds the device and claims its ports or MMIO range on the board.
   *
   * @throws {RangeError} If a claim overlaps another device's.
   */
  attach(board: DeviceBoard): void;
}
