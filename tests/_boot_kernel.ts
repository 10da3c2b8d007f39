/**
 * Boots a kernel in-process on a fresh PC, as `cli/run.ts` does, for tests
 * that inspect a running kernel (reports, tracing).
 *
 * @module
 */

import { createPc, type DevicePlugin, installAcpiTables, type Pc } from "../devices/mod.ts";
import {
  loadMultiboot2,
  pcMemoryMap,
  PhysicalMemory,
  ramRangesFor,
  VirtualClock,
} from "../hal/mod.ts";
import { buildKernelImage, Kernel, type KernelParts } from "../kernel/mod.ts";

/** What to boot. */
export interface TestBootOptions {
  /** RAM size in bytes (default 128 MiB). */
  readonly memoryBytes?: number;
  /** Kernel command line. */
  readonly cmdline?: string;
  /** Modules to load: name, contents, string. */
  readonly modules?: readonly { name: string; bytes: Uint8Array; string: string }[];
  /** Runs before the kernel boots, e.g. to attach a tracer to the machine. */
  readonly beforeBoot?: (pc: Pc) => void;
  /** Replacement parts and drivers for `Kernel.boot`. */
  readonly parts?: KernelParts;
  /** Extra devices for `createPc`. */
  readonly devices?: readonly DevicePlugin[];
  /** Boot the legacy way (`--no-apic`). */
  readonly noApic?: boolean;
}

/** A booted kernel, its PC and what the serial console printed. */
export interface TestBoot {
  /** The running kernel. */
  readonly kernel: Kernel;
  /** The PC it runs on. */
  readonly pc: Pc;
  /** The virtual clock driving the PC. */
  readonly clock: VirtualClock;
  /** Everything the UART transmitted, as text. */
  serialText(): string;
  /** What the UART transmitted from byte `offset` on, as text, and where it ends. */
  serialTextFrom(offset: number): { readonly text: string; readonly end: number };
}

/** Boots a kernel on a PC with a virtual clock. */
export function bootTestKernel(options: TestBootOptions = {}): TestBoot {
  const memoryMap = pcMemoryMap(options.memoryBytes ?? 128 * 2 ** 20);
  const memory = new PhysicalMemory(ramRangesFor(memoryMap));
  const clock = new VirtualClock();
  const serial: number[] = [];
  const pc = createPc(memory, clock, {
    serialSink: (byte) => serial.push(byte),
    devices: options.devices,
  });
  options.beforeBoot?.(pc);
  const acpi = installAcpiTables(pc, memory, memoryMap);
  const loaded = loadMultiboot2(memory, buildKernelImage(), {
    memoryMap,
    loaderVersion: "test",
    cmdline: options.cmdline ?? "",
    modules: options.modules ?? [],
    rsdp: acpi?.rsdp,
  });
  const kernel = Kernel.boot(
    pc.machine,
    loaded.magic,
    loaded.mbiAddress,
    { version: "test", apic: !options.noApic },
    options.parts,
  );
  return {
    kernel,
    pc,
    clock,
    serialText: () => new TextDecoder().decode(new Uint8Array(serial)),
    serialTextFrom: (offset) => ({
      text: new TextDecoder().decode(new Uint8Array(serial.slice(offset))),
      end: serial.length,
    }),
  };
}
