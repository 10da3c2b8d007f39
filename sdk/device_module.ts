/**
 * The default export of a `--device` module: a device model for the board
 * and, optionally, the kernel driver that drives it and the monitor
 * commands that use it.
 *
 * @module
 */

import type { DevicePlugin } from "../devices/mod.ts";
import type { KernelDriver } from "../kernel/mod.ts";

/** What a `--device FILE` module exports by default. */
export interface DeviceModule {
  /** The device model: claims its ports or MMIO range on the board. */
  readonly device: DevicePlugin;
  /**
   * The kernel side: initialised at the end of the stock kernel's boot, its
   * commands added to the monitor. Unused with `--kernel` (your kernel
   * drives the device itself).
   */
  readonly driver?: KernelDriver;
}
