/**
 * The PC board: plugs the standard devices into a {@linkcode Machine} at
 * their classic ports — the 8259A pair at 0x20 and 0xA0, the 8254 timer at
 * 0x40 (IRQ 0), the 16550A UART at COM1 0x3F8 (IRQ 4) and the debug console
 * at 0xE9 — and the memory-mapped ones: the I/O APIC at 0xFEC00000, the HPET
 * at 0xFED00000 and the CPU's local APIC at 0xFEE00000 (see
 * `hal/memory_layout.ts`). ISA IRQ lines reach both the 8259 pair and the
 * I/O APIC; the firmware leaves the local APIC in virtual-wire mode (LINT0
 * ExtINT, LINT1 NMI, as SeaBIOS does), so a kernel that never touches the
 * APICs gets the 8259's interrupts.
 *
 * With several CPUs (`smp`), CPU 0, the bootstrap processor, is the
 * machine's CPU on this thread; the others are Workers that an
 * {@linkcode SmpBoard} powers on, waiting for the kernel to start them.
 * APIC IDs are the CPU numbers, and the I/O APIC's ID follows them.
 *
 * @module
 */

import {
  type Clock,
  type ClockedDevice,
  COM1_PORT_BASE,
  DEBUG_CONSOLE_PORT,
  HostClock,
  HPET_BASE,
  IO_APIC_BASE,
  IRQ_COM1,
  Machine,
  type PhysicalMemory,
  PIC_MASTER_PORT_BASE,
  PIC_PORT_COUNT,
  PIC_SLAVE_PORT_BASE,
  PIT_PORT_BASE,
} from "../hal/mod.ts";
import { APIC_DELIVERY_EXTINT, APIC_DELIVERY_NMI, SystemApicBus } from "./apic_bus.ts";
import { DebugConsole } from "./debug_console.ts";
import type { DeviceBoard, DevicePlugin } from "./device_plugin.ts";
import { Hpet, HPET_MMIO_BYTES } from "./hpet.ts";
import { IO_APIC_MMIO_BYTES, IoApic } from "./io_apic.ts";
import { IsaInterruptLines } from "./isa_interrupt_lines.ts";
import {
  LAPIC_LVT_LINT0,
  LAPIC_LVT_LINT1,
  LAPIC_SVR,
  LAPIC_SVR_ENABLE,
  LAPIC_SVR_RESET,
  LocalApic,
} from "./local_apic.ts";
import { createSharedLocalApicState } from "./local_apic.ts";
import { SmpBoard, type SmpBoardOptions } from "./smp_board.ts";
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
  /**
   * Several CPUs: how many (2 to 16) and the CPU Worker's module. Default:
   * one CPU, no Worker. Needs the host clock.
   */
  readonly smp?: SmpBoardOptions;
}

/** A PC: the machine and its standard devices. */
export interface Pc {
  /** The machine the kernel runs on. */
  readonly machine: Machine;
  /** COM1. */
  readonly uart: Uart16550;
  /** The 8254 programmable interval timer. */
  readonly pit: Pit8254;
  /** The CPU's local APIC. */
  readonly localApic: LocalApic;
  /** The I/O APIC. */
  readonly ioApic: IoApic;
  /** The HPET. */
  readonly hpet: Hpet;
  /** How many CPUs the machine has. */
  readonly cpuCount: number;
  /** The board of the application processors, with several CPUs. */
  readonly smp: SmpBoard | undefined;
}

/** The bootstrap processor's APIC ID. */
export const PC_BSP_APIC_ID = 0;
/** The I/O APIC's ID with one CPU: after the CPUs' APIC IDs, as firmware numbers them. */
export const PC_IO_APIC_ID = 1;
/** LVT delivery-mode field position (bits 10:8). */
const LVT_DELIVERY_MODE_SHIFT = 8;

/**
 * Builds a PC over `memory` driven by `clock`.
 *
 * @throws {RangeError} If an extra device claims ports or MMIO already claimed, or
 *   several CPUs are asked for on a clock that is not the host's.
 */
export function createPc(memory: PhysicalMemory, clock: Clock, options: PcOptions): Pc {
  const cpuCount = options.smp?.cpuCount ?? 1;
  if (cpuCount > 1 && !(clock instanceof HostClock)) {
    throw new RangeError(
      `A machine of ${cpuCount} CPUs needs the host clock: CPUs on several threads ` +
        "cannot share a virtual one",
    );
  }
  const machine = new Machine(memory, clock);
  const apicBus = new SystemApicBus();
  // With several CPUs, the BSP's APIC state is shared: the APs deliver IPIs into it.
  const bspApicState = cpuCount > 1 ? createSharedLocalApicState(PC_BSP_APIC_ID) : undefined;
  const localApic = new LocalApic({
    apicId: PC_BSP_APIC_ID,
    clock,
    bus: apicBus,
    stateBuffer: bspApicState,
  });
  const ioApic = new IoApic({ id: cpuCount > 1 ? cpuCount : PC_IO_APIC_ID, bus: apicBus });
  const hpet = new Hpet({ clock, pins: ioApic });
  apicBus.attachLocalApic(localApic);
  apicBus.attachIoApic(ioApic);
  machine.cpu.attachLocalApic(localApic); // decoded inside the CPU, not on the bus
  machine.bus.claimMmio(IO_APIC_BASE, IO_APIC_MMIO_BYTES, ioApic);
  machine.bus.claimMmio(HPET_BASE, HPET_MMIO_BYTES, hpet);
  machine.bus.claimPorts(PIC_MASTER_PORT_BASE, PIC_PORT_COUNT, machine.interrupts.masterPorts);
  machine.bus.claimPorts(PIC_SLAVE_PORT_BASE, PIC_PORT_COUNT, machine.interrupts.slavePorts);
  const isaLines = new IsaInterruptLines(machine.interrupts, ioApic);
  const uart = new Uart16550({
    interrupts: isaLines,
    irq: IRQ_COM1,
    sink: options.serialSink,
    lineState: options.serialLine,
  });
  const pit = new Pit8254({ clock, pic: isaLines });
  machine.bus.claimPorts(PIT_PORT_BASE, PIT_PORT_COUNT, pit);
  machine.bus.claimPorts(COM1_PORT_BASE, UART_PORT_COUNT, uart);
  machine.bus.claimPorts(
    DEBUG_CONSOLE_PORT,
    1,
    new DebugConsole(options.debugSink ?? options.serialSink),
  );
  machine.addTimedDevice(pit);
  machine.addTimedDevice(new UartTiming(uart));
  machine.addTimedDevice(localApic);
  machine.addTimedDevice(hpet);
  setVirtualWireMode(localApic);
  const board: DeviceBoard = {
    claimPorts: (base, count, device) => machine.bus.claimPorts(base, count, device),
    claimMmio: (base, sizeBytes, device) => machine.bus.claimMmio(base, sizeBytes, device),
    addTimedDevice: (device) => machine.addTimedDevice(device),
    interrupts: isaLines, // IRQ lines reach the 8259 and the I/O APIC alike
    clock,
    memory,
  };
  for (const device of options.devices ?? []) device.attach(board);
  const smp = bspApicState === undefined ? undefined : new SmpBoard({
    machine,
    memory,
    clock: clock as HostClock,
    apicBus,
    eoiBus: apicBus,
    bspApicState,
  }, options.smp!);
  smp?.powerOn(); // the APs wait in reset for the kernel's INIT and start-up IPIs
  return { machine, uart, pit, localApic, ioApic, hpet, cpuCount, smp };
}

/**
 * The firmware's part: software-enables the local APIC with LINT0 as ExtINT
 * (the 8259's INTR) and LINT1 as NMI, the virtual-wire mode the MP
 * specification describes and SeaBIOS sets up.
 */
function setVirtualWireMode(apic: LocalApic): void {
  apic.mmioWrite(LAPIC_SVR, LAPIC_SVR_RESET | LAPIC_SVR_ENABLE, 4);
  apic.mmioWrite(LAPIC_LVT_LINT0, APIC_DELIVERY_EXTINT << LVT_DELIVERY_MODE_SHIFT, 4);
  apic.mmioWrite(LAPIC_LVT_LINT1, APIC_DELIVERY_NMI << LVT_DELIVERY_MODE_SHIFT, 4);
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
