/**
 * The PC board: plugs the standard devices into a {@linkcode Machine} at
 * their classic ports — the 8254 timer at 0x40 (IRQ 0), the 16550A UART at
 * COM1 0x3F8 (IRQ 4) and the debug console at 0xE9.
 *
 * @module
 */

import {
  type Clock,
  type ClockedDevice,
  COM1_PORT_BASE,
  DEBUG_CONSOLE_PORT,
  IRQ_COM1,
  Machine,
  type PhysicalMemory,
  PIT_PORT_BASE,
} from "../hal/mod.ts";
import { DebugConsole } from "./debug_console.ts";
import type { DeviceBoard, DevicePlugin } from "./device_plugin.ts";
import { Pit8254, PIT_PORT_COUNT } from "./pit8254.ts";
import { Uart16550, UART_PORT_COUNT, type UartLineState } from "./uart16550.ts";

/** What the host connects to the board. */
export interface PcOptions {
  /** Receives every byte COM1 transmits (the serial console). */
  readonly serialSink: (byte: number) => void;
  /** Receives every byte written to the debug console port (default: the serial sink). */
  readonly debugSink?: (byte: number) => void;
  /** COM1's modem lines: `"connected"` (default) or `"no-cable"`. */
  readonly serialLine?: UartLineState;
  /** Extra devices, attached after the standard ones, in order. */
  readonly devices?: readonly DevicePlugin[];
}

/** A PC: the machine and its standard devices. */
export interface Pc {
  /** The machine the kernel runs on. */
  readonly machine: Machine;
  /** COM1. */
  readonly uart: Uart16550;
  /** The 8254 programmable interval timer. */
  readonly pit: Pit8254;
}

/**
 * Builds a PC over `memory` driven by `clock`.
 *
 * @throws {RangeError} If an extra device claims ports or MMIO already claimed.
 */
export function createPc(memory: PhysicalMemory, clock: Clock, options: PcOptions): Pc {
  const machine = new Machine(memory, clock);
  const uart = new Uart16550({
    interrupts: machine.interrupts,
    irq: IRQ_COM1,
    sink: options.serialSink,
    lineState: options.serialLine,
  });
  const pit = new Pit8254({ clock, pic: machine.interrupts });
  machine.bus.claimPorts(PIT_PORT_BASE, PIT_PORT_COUNT, pit);
  machine.bus.claimPorts(COM1_PORT_BASE, UART_PORT_COUNT, uart);
  machine.bus.claimPorts(
    DEBUG_CONSOLE_PORT,
    1,
    new DebugConsole(options.debugSink ?? options.serialSink),
  );
  machine.addTimedDevice(pit);
  machine.addTimedDevice(new UartTiming(uart));
  const board: DeviceBoard = {
    claimPorts: (base, count, device) => machine.bus.claimPorts(base, count, device),
    claimMmio: (base, sizeBytes, device) => machine.bus.claimMmio(base, sizeBytes, device),
    addTimedDevice: (device) => machine.addTimedDevice(device),
    interrupts: machine.interrupts,
    clock,
    memory,
  };
  for (const device of options.devices ?? []) device.attach(board);
  return { machine, uart, pit };
}

/**
 * Converts clock time into the UART's character times (10 bits per
 * character), and tells an idle machine when the UART's character timeout
 * will fire: data waiting in the RX FIFO below the trigger level raises no
 * interrupt until 4 character times pass without RX activity, so a virtual
 * clock must be allowed to jump there or the bytes would wait forever.
 */
class UartTiming implements ClockedDevice {
  readonly #uart: Uart16550;
  #lastNs = 0;

  constructor(uart: Uart16550) {
    this.#uart = uart;
  }

  advanceTo(nowNs: number): void {
    const characterNs = 1e10 / this.#uart.baudRate;
    const characters = Math.floor((nowNs - this.#lastNs) / characterNs);
    if (characters <= 0) return;
    this.#lastNs += characters * characterNs;
    this.#uart.advanceCharacterTimes(characters);
  }

  /** When the UART's character timeout is due, if data waits below the trigger level. */
  nextEventNs(): number {
    const baudRate = this.#uart.baudRate;
    const remaining = this.#uart.characterTimesUntilTimeout();
    if (baudRate === 0 || remaining === Infinity) return Infinity;
    const characterNs = 1e10 / baudRate;
    // advanceTo counts whole character times from #lastNs; one extra
    // nanosecond keeps floating-point rounding from landing just short.
    return Math.ceil(this.#lastNs + remaining * characterNs) + 1;
  }
}
