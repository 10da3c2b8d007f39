/**
 * The Bochs/QEMU debug console ("port 0xE9 hack"): every byte written to port
 * 0xE9 goes straight to the host, and reading the port returns 0xE9 so a
 * kernel can detect it. The kernel uses it for panics that happen before the
 * serial port works, so no failure is ever silent.
 *
 * @module
 */

import { type AccessWidth, DEBUG_CONSOLE_PORT, type PortDevice } from "../hal/mod.ts";

/** A write-only byte sink on port 0xE9. */
export class DebugConsole implements PortDevice {
  /** Name used in bus messages. */
  readonly name = "debugcon@0xe9";
  readonly #sink: (byte: number) => void;

  /** Creates the device; each byte written goes to `sink`. */
  constructor(sink: (byte: number) => void) {
    this.#sink = sink;
  }

  /** Reads return 0xE9, the value kernels test to detect the device. */
  portRead(_offset: number, _width: AccessWidth): number {
    return DEBUG_CONSOLE_PORT;
  }

  /** Sends the low byte of `value` to the host. */
  portWrite(_offset: number, value: number, _width: AccessWidth): void {
    this.#sink(value & 0xff);
  }
}
