/**
 * Boots the stock kernel in-process on a PC of several CPUs (a host clock,
 * the application processors on Workers), for the SMP tests. Every test
 * must end with {@linkcode SmpTestBoot.shutdown}, which stops every CPU and
 * ends their Workers.
 *
 * @module
 */

import { createPc, installAcpiTables, type Pc } from "../devices/mod.ts";
import {
  HostClock,
  loadMultiboot2,
  pcMemoryMap,
  PhysicalMemory,
  ramRangesFor,
} from "../hal/mod.ts";
import { buildKernelImage, Kernel, type KernelConfig } from "../kernel/mod.ts";

/** The CPU Worker's module. */
export const CPU_WORKER_URL: URL = new URL("../cli/cpu_worker.ts", import.meta.url);

/** A booted kernel on several CPUs. */
export interface SmpTestBoot {
  /** The running kernel. */
  readonly kernel: Kernel;
  /** The PC. */
  readonly pc: Pc;
  /** Everything the UART transmitted, as text. */
  serialText(): string;
  /** Halts every CPU and waits for their Workers to end; returns the CPUs that had to be terminated. */
  shutdown(): Promise<number[]>;
}

/** What to boot. */
export interface SmpTestBootOptions {
  /** CPUs (2 to 16). */
  readonly cpuCount: number;
  /** RAM in bytes (default 128 MiB). */
  readonly memoryBytes?: number;
  /** Kernel settings beyond the defaults. */
  readonly config?: Partial<KernelConfig>;
  /** CPUs whose Worker is never powered on (a dead CPU). */
  readonly deadCpus?: readonly number[];
}

/** How long the tests give the CPU Workers to load (type-checking them may be slow), in ms. */
const POWER_ON_TIMEOUT_MS = 60_000;

/**
 * Boots the kernel on `options.cpuCount` CPUs, once every AP's Worker has
 * loaded (so that the kernel's bound on each AP's start measures the start,
 * not the loading of the Worker's modules).
 */
export async function bootSmpKernel(options: SmpTestBootOptions): Promise<SmpTestBoot> {
  const memoryMap = pcMemoryMap(options.memoryBytes ?? 128 * 2 ** 20);
  const memory = new PhysicalMemory(ramRangesFor(memoryMap));
  const serial: number[] = [];
  const pc = createPc(memory, new HostClock(), {
    serialSink: (byte) => serial.push(byte),
    smp: { cpuCount: options.cpuCount, cpuWorkerUrl: CPU_WORKER_URL, deadCpus: options.deadCpus },
  });
  const shutdown = () => pc.smp!.shutdown();
  try {
    const unpowered = await pc.smp!.whenPowered(POWER_ON_TIMEOUT_MS);
    if (unpowered.length > 0) throw new Error(`CPUs ${unpowered.join(", ")} never powered on`);
    const acpi = installAcpiTables(pc, memory, memoryMap);
    const loaded = loadMultiboot2(memory, buildKernelImage(), {
      memoryMap,
      loaderVersion: "test",
      cmdline: "",
      modules: [],
      rsdp: acpi?.rsdp,
    });
    const kernel = Kernel.boot(pc.machine, loaded.magic, loaded.mbiAddress, {
      version: "test",
      ...options.config,
    });
    return {
      kernel,
      pc,
      serialText: () => new TextDecoder().decode(new Uint8Array(serial)),
      shutdown,
    };
  } catch (error) {
    await shutdown();
    throw error;
  }
}
