/**
 * The kernel: entered from the boot loader with the multiboot2 magic and the
 * boot information's physical address (EAX/EBX), it brings up its console,
 * checks and parses the boot information, then initialises memory
 * management. It sees the machine only through the HAL: RAM, port I/O,
 * control registers, the MMU and interrupts.
 *
 * @module
 */

import { DEBUG_CONSOLE_PORT, hex, type Machine, type PhysAddr } from "../hal/mod.ts";
import { formatBytes, formatMemoryMap } from "./boot/memory_map_table.ts";
import {
  type BootInfo,
  checkBootMagic,
  parseMultiboot2,
  usableBytes,
} from "./boot/multiboot2_parser.ts";
import { identifyUart, SERIAL_COM1_PORT, SerialPort } from "./drivers/mod.ts";
import { KernelLog } from "./log.ts";
import { KernelPanic, panicReason } from "./panic.ts";

/** Build-time settings of the kernel (what a real kernel gets from its config). */
export interface KernelConfig {
  /** Version string shown in the boot banner. */
  readonly version: string;
  /** Run the self-tests at the end of boot. */
  readonly selftest?: boolean;
  /** Debug checks: poison freed frames, record allocation sites. */
  readonly debug?: boolean;
}

/** The `--report json` object; later subsystems add their sections. */
export interface KernelReport {
  /** Boot loader name from the MBI. */
  bootloaderName: string;
  /** Kernel command line from the MBI. */
  cmdline: string;
  /** Where the MBI is, its size and its tag types in order. */
  mbi: { address: number; totalSize: number; tagTypes: number[] };
  /** The firmware memory map. */
  memoryMap: { base: number; length: number; type: number }[];
  /** Boot modules. */
  modules: { start: number; end: number; string: string }[];
  /** Bytes of available (type 1) memory. */
  usableBytes: number;
}

/** The booted kernel and its subsystems. */
export class Kernel {
  /** The hardware it runs on. */
  readonly machine: Machine;
  /** The kernel log (on the serial console once it is up). */
  readonly log: KernelLog;
  /** The serial console driver. */
  readonly serial: SerialPort;
  /** The validated boot information. */
  readonly bootInfo: BootInfo;
  /** Settings the kernel was built with. */
  readonly config: KernelConfig;

  private constructor(
    machine: Machine,
    log: KernelLog,
    serial: SerialPort,
    bootInfo: BootInfo,
    config: KernelConfig,
  ) {
    this.machine = machine;
    this.log = log;
    this.serial = serial;
    this.bootInfo = bootInfo;
    this.config = config;
  }

  /**
   * The kernel entry point. Returns the running kernel; on any failure prints
   * `KERNEL PANIC: <reason>` (on serial, or the debug console if serial is not
   * up), halts the machine and throws {@linkcode KernelPanic}.
   */
  static boot(machine: Machine, magic: number, mbiAddress: PhysAddr, config: KernelConfig): Kernel {
    const log = new KernelLog(() => machine.clock.nowNs());
    try {
      return Kernel.#start(machine, log, magic, mbiAddress, config);
    } catch (error) {
      throw Kernel.#panic(machine, log, error);
    }
  }

  static #start(
    machine: Machine,
    log: KernelLog,
    magic: number,
    mbiAddress: PhysAddr,
    config: KernelConfig,
  ): Kernel {
    const serial = new SerialPort(machine.cpu); // COM1 driver
    serial.init(); // scratch test, 115200 8N1, FIFOs, loopback self-test
    log.attachConsole((line) => serial.writeString(line));
    log.info(
      "serial",
      `${identifyUart(machine.cpu, SERIAL_COM1_PORT)} at ${hex(SERIAL_COM1_PORT)}`,
    );
    log.info("boot", `kernelsim ${config.version} starting`);
    checkBootMagic(magic); // EAX must hold the multiboot2 magic
    const bootInfo = parseMultiboot2(machine.memory, mbiAddress); // validate the MBI
    const kernel = new Kernel(machine, log, serial, bootInfo, config);
    kernel.#logBootInfo();
    return kernel;
  }

  #logBootInfo(): void {
    const { log, bootInfo } = this;
    const { mbi } = bootInfo;
    log.info(
      "boot",
      `multiboot2 info at ${hex(mbi.address)}, ${mbi.totalSize} bytes, tags ${
        mbi.tagTypes.join(",")
      }`,
    );
    for (const warning of bootInfo.warnings) log.warn("boot", warning);
    log.info("boot", `boot loader: ${bootInfo.bootloaderName ?? "(not given)"}`);
    log.info("boot", `cmdline: ${bootInfo.cmdline ?? "(not given)"}`);
    log.info("mem", `memory map (${bootInfo.memoryMap.length} regions):`);
    for (const line of formatMemoryMap(bootInfo.memoryMap)) log.info("mem", `  ${line}`);
    bootInfo.modules.forEach((module, index) => {
      log.info(
        "boot",
        `module ${index}: ${hex(module.start)}..${hex(module.end)} ` +
          `(${formatBytes(module.end - module.start)}) "${module.string}"`,
      );
    });
    const usable = usableBytes(bootInfo);
    log.info("mem", `usable memory: ${formatBytes(usable)} (${usable} bytes)`);
  }

  /**
   * The kernel's view of the machine as one JSON-able object: everything in
   * it was read back from the kernel's own structures in RAM.
   */
  report(): KernelReport {
    const { bootInfo } = this;
    return {
      bootloaderName: bootInfo.bootloaderName ?? "",
      cmdline: bootInfo.cmdline ?? "",
      mbi: {
        address: bootInfo.mbi.address,
        totalSize: bootInfo.mbi.totalSize,
        tagTypes: [...bootInfo.mbi.tagTypes],
      },
      memoryMap: bootInfo.memoryMap.map(({ base, length, type }) => ({ base, length, type })),
      modules: bootInfo.modules.map(({ start, end, string }) => ({ start, end, string })),
      usableBytes: usableBytes(bootInfo),
    };
  }

  /** Prints the panic line, halts the machine, and returns the error to throw. */
  static #panic(machine: Machine, log: KernelLog, error: unknown): KernelPanic {
    const reason = panicReason(error);
    const line = `KERNEL PANIC: ${reason}\n`;
    if (log.hasConsole) {
      log.raw(line);
    } else {
      // No serial console: replay the early log and the panic on port 0xE9.
      for (const early of [...log.pendingLines(), line]) {
        for (const byte of new TextEncoder().encode(early)) {
          machine.cpu.outb(DEBUG_CONSOLE_PORT, byte);
        }
      }
    }
    machine.halt(reason);
    return error instanceof KernelPanic ? error : new KernelPanic(reason, { cause: error });
  }
}
