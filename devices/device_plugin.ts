/**
 * Extra devices: a device model a user writes (port I/O, MMIO, timed) and
 * plugs into the PC board with {@linkcode createPc}'s `devices` option, or
 * from the command line with `--device FILE`.
 *
 * A plugin gets the board's bus, interrupt controller and clock, claims its
 * ports or MMIO range, and registers itself as a timed device if its state
 * follows time. The CMOS real-time clock in `examples/cmos_rtc.ts` is one.
 *
 * @module
 */

import type {
  Clock,
  ClockedDevice,
  DeviceBus,
  InterruptController,
  PhysicalMemory,
} from "../hal/mod.ts";

/** What a device plugin may use of the board (a `Machine` is one). */
export interface DeviceBoard {
  /** Port I/O and MMIO routing: `claimPorts(base, count, device)`, `claimMmio(base, size, device)`. */
  readonly bus: DeviceBus;
  /** The interrupt controller: `raise(irq)` / `lower(irq)` for the device's IRQ line. */
  readonly interrupts: InterruptController;
  /** The clock timed devices follow. */
  readonly clock: Clock;
  /** RAM, for a device that does DMA. */
  readonly memory: PhysicalMemory;
  /** Registers a device whose state depends on time (`advanceTo`, `nextEventNs`). */
  addTimedDevice(device: ClockedDevice): void;
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
