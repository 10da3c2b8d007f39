/**
 * The kernel: entered from the boot loader with the multiboot2 magic and the
 * boot information's physical address (EAX/EBX), it brings up its console,
 * checks and parses the boot information, then initialises memory
 * management. It sees the machine only through the HAL: RAM, port I/O,
 * control registers, the MMU and interrupts.
 *
 * @module
 */

import { hex, KERNEL_LOAD_ADDRESS, type Machine, type PhysAddr, type Tracer } from "../hal/mod.ts";
import { formatBytes, formatMemoryMap } from "./boot/memory_map_table.ts";
import {
  type BootInfo,
  checkBootMagic,
  parseMultiboot2,
  usableBytes,
} from "./boot/multiboot2_parser.ts";
import { KERNEL_IMAGE_SIZE_BYTES } from "./boot/mod.ts";
import { type AcpiReport, acpiReport, type AcpiTables, discoverAcpi } from "./acpi/mod.ts";
import { identifyUart, SERIAL_COM1_PORT, SerialPort, type TickTimer } from "./drivers/mod.ts";
import {
  installMachineCheckHandler,
  type InterruptSystem,
  startInterrupts,
} from "./interrupts/mod.ts";
import { KernelLog } from "./log.ts";
import {
  bootReservations,
  createBootFrameAllocator,
  DIRECT_MAP_BASE,
  type FrameAllocator,
  KernelAddressSpace,
  KernelPageFaultHandler,
  KmemHeap,
  type KmemHeapStats,
  type PagingReport,
} from "./mm/mod.ts";
import { KernelPanic, panicReason, printPanic } from "./panic.ts";
import {
  memorySelftests,
  pagingSelftests,
  runSelftests,
  type Selftest,
  type SelftestResult,
} from "./selftest.ts";

/** Timer interrupt rate, as Linux's classic HZ. */
const TIMER_HZ = 100;

/** Build-time settings of the kernel (what a real kernel gets from its config). */
export interface KernelConfig {
  /** Version string shown in the boot banner. */
  readonly version: string;
  /** Run the self-tests at the end of boot. */
  readonly selftest?: boolean;
  /** Debug checks: poison freed frames, record allocation sites. */
  readonly debug?: boolean;
  /** Where allocation events go with `--trace mm` (absent: not traced). */
  readonly tracer?: Tracer;
  /** Switch to APIC mode when the firmware describes it (default true; false: `--no-apic`). */
  readonly apic?: boolean;
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
  /** The frame allocator's counters, read from its state in RAM. */
  frames: {
    totalFrames: number;
    freeFrames: number;
    reservedFrames: number;
    pools: { base: number; frameCount: number; freeFrames: number }[];
  };
  /** The kmem heap's counters. */
  heap: { bytesInUse: number; bytesMapped: number; allocations: number };
  /** The kernel address space and the MMU's counters. */
  paging: PagingReport;
  /** Self-test outcome, with `--selftest`. */
  selftest?: { passed: number; failed: number };
  /** The ACPI tables the kernel found and used, or null without any. */
  acpi: AcpiReport | null;
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
  /** The physical frame allocator. */
  readonly frames: FrameAllocator;
  /** The kernel's address space: direct map, kernel image, recursive entry. */
  readonly kernelSpace: KernelAddressSpace;
  /** The page-fault handler: demand-zero and copy-on-write. */
  readonly pageFaults: KernelPageFaultHandler;
  /** The kmem heap (kmalloc/kfree), handing out direct-map addresses. */
  readonly heap: KmemHeap;
  /** The tick: the local APIC timer (APIC mode) or the PIT (legacy mode). */
  readonly timer: TickTimer;
  /** The firmware's ACPI tables, if any were usable. */
  readonly acpi: AcpiTables | undefined;
  /** Interrupt controllers, routing and vectors. */
  readonly interrupts: InterruptSystem;
  /** Results of the boot self-tests, if they ran. */
  readonly selftestResults: readonly SelftestResult[] | undefined;

  private constructor(parts: Omit<Kernel, "report" | "selftests">) {
    this.machine = parts.machine;
    this.log = parts.log;
    this.serial = parts.serial;
    this.bootInfo = parts.bootInfo;
    this.config = parts.config;
    this.frames = parts.frames;
    this.kernelSpace = parts.kernelSpace;
    this.pageFaults = parts.pageFaults;
    this.heap = parts.heap;
    this.timer = parts.timer;
    this.acpi = parts.acpi;
    this.interrupts = parts.interrupts;
    this.selftestResults = parts.selftestResults;
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
    const uartType = identifyUart(machine.cpu, SERIAL_COM1_PORT); // Linux-style probe, first
    const serial = new SerialPort(machine.cpu); // COM1 driver
    serial.init(); // scratch test, 115200 8N1, FIFOs (trigger 14), loopback self-test
    log.attachConsole((line) => serial.writeString(line));
    log.info("serial", `${uartType} at ${hex(SERIAL_COM1_PORT)}, 115200 baud 8N1`);
    log.info("boot", `kernelsim ${config.version} starting`);
    installMachineCheckHandler(machine, log); // #MC: an access nothing answers panics, naming it
    checkBootMagic(magic); // EAX must hold the multiboot2 magic
    const bootInfo = parseMultiboot2(machine.memory, mbiAddress); // validate the MBI
    logBootInfo(log, bootInfo);
    const reservations = bootReservations(bootInfo, KERNEL_IMAGE_SIZE_BYTES);
    const frames = createBootFrameAllocator(machine.memory, bootInfo, reservations, !!config.debug);
    frames.setTracer(config.tracer); // before the page tables, so their frames are traced
    logFrames(log, frames);
    const kernelSpace = KernelAddressSpace.build(frames, machine.cpu, {
      memoryMap: bootInfo.memoryMap,
      kernelImage: {
        base: bootInfo.loadBaseAddr ?? KERNEL_LOAD_ADDRESS,
        length: KERNEL_IMAGE_SIZE_BYTES,
      },
    }); // page tables: direct map, kernel image, PML4[510]
    kernelSpace.enablePaging(); // EFER.LME|NXE, CR4.PAE|PGE, CR3, CR0.PG|WP
    for (const line of kernelSpace.layoutLines()) log.info("paging", line);
    const pageFaults = KernelPageFaultHandler.install(machine.mmu, machine.cpu, frames); // #PF
    pageFaults.attach(kernelSpace.addressSpace);
    const heap = KmemHeap.create(machine.memory, frames, { directMapOffset: DIRECT_MAP_BASE });
    heap.setTracer(config.tracer);
    log.info(
      "heap",
      `kmem heap up at direct-map addresses, root descriptor at ${hex(heap.rootAddress)}`,
    );
    const acpi = discoverAcpi(machine.memory, bootInfo, log); // RSDP -> XSDT -> FADT, MADT, HPET
    const interrupts = startInterrupts(machine, {
      space: kernelSpace.addressSpace,
      acpi,
      log,
      useApic: config.apic ?? true,
      tickHz: TIMER_HZ,
    }); // APIC mode (else 8259 + PIT), the tick running, interrupts on
    serial.connectInterrupts(interrupts.isa); // COM1's IRQ 4 through the controller in use
    const timer = interrupts.timer;
    const selftestResults = config.selftest
      ? runSelftests(kernelSelftests(machine, frames, heap, kernelSpace, pageFaults))
      : undefined;
    if (selftestResults) logSelftests(log, selftestResults);
    log.info("boot", "kernel up");
    return new Kernel({
      machine,
      log,
      serial,
      bootInfo,
      config,
      frames,
      kernelSpace,
      pageFaults,
      heap,
      timer,
      acpi,
      interrupts,
      selftestResults,
    });
  }

  /** The kernel's self-tests (memory, then paging), as `--selftest` and the monitor run them. */
  selftests(): Selftest[] {
    return kernelSelftests(this.machine, this.frames, this.heap, this.kernelSpace, this.pageFaults);
  }

  /**
   * The kernel's view of the machine as one JSON-able object: everything in
   * it was read back from the kernel's own structures in RAM.
   */
  report(): KernelReport {
    const { bootInfo } = this;
    const frameStats = this.frames.stats();
    const heapStats: KmemHeapStats = this.heap.stats();
    const report: KernelReport = {
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
      frames: {
        totalFrames: frameStats.totalFrames,
        freeFrames: frameStats.freeFrames,
        reservedFrames: frameStats.reservedFrames,
        pools: frameStats.pools.map(({ base, frameCount, freeFrames }) => ({
          base,
          frameCount,
          freeFrames,
        })),
      },
      heap: {
        bytesInUse: heapStats.bytesInUse,
        bytesMapped: heapStats.bytesMapped,
        allocations: heapStats.allocations,
      },
      paging: this.kernelSpace.pagingReport(this.machine.mmu),
      acpi: this.acpi === undefined ? null : acpiReport(this.acpi, this.machine.memory),
    };
    if (this.selftestResults) {
      const passed = this.selftestResults.filter((r) => r.passed).length;
      report.selftest = { passed, failed: this.selftestResults.length - passed };
    }
    return report;
  }

  /** Prints the panic line, halts the machine, and returns the error to throw. */
  static #panic(machine: Machine, log: KernelLog, error: unknown): KernelPanic {
    // A panic raised by raisePanic (the #MC handler) has printed and halted already.
    if (error instanceof KernelPanic && machine.haltReason !== undefined) return error;
    const reason = panicReason(error);
    printPanic(machine, log, reason);
    machine.halt(reason);
    return error instanceof KernelPanic ? error : new KernelPanic(reason, { cause: error });
  }
}

function kernelSelftests(
  machine: Machine,
  frames: FrameAllocator,
  heap: KmemHeap,
  kernelSpace: KernelAddressSpace,
  pageFaults: KernelPageFaultHandler,
): Selftest[] {
  const { mmu, cpu } = machine;
  return [
    ...memorySelftests({ frames, heap, mmu }),
    ...pagingSelftests({ frames, mmu, cpu, kernelSpace, pageFaults }),
  ];
}

function logBootInfo(log: KernelLog, bootInfo: BootInfo): void {
  const { mbi } = bootInfo;
  log.info(
    "boot",
    `multiboot2 info at ${hex(mbi.address)}, ${mbi.totalSize} bytes, tags ${
      mbi.tagTypes.join(",")
    }`,
  );
  for (const warning of bootInfo.warnings) log.warn("boot", warning);
  log.info("boot", `boot loader: ${bootInfo.bootloaderName ?? "(not given)"}`);
  log.info("boot", `cmdline: ${bootInfo.cmdline || "(empty)"}`);
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

function logFrames(log: KernelLog, frames: FrameAllocator): void {
  const stats = frames.stats();
  for (const pool of stats.pools) {
    log.info(
      "frames",
      `pool ${hex(pool.base, 12)}: ${pool.frameCount} frames (${
        formatBytes(pool.frameCount * 4096)
      }), ` +
        `${pool.freeFrames} free, ${pool.reservedFrames} reserved`,
    );
  }
  log.info(
    "frames",
    `free: ${stats.freeFrames}/${stats.totalFrames} frames (${stats.reservedFrames} reserved)`,
  );
}

function logSelftests(log: KernelLog, results: readonly SelftestResult[]): void {
  for (const result of results) {
    if (result.passed) log.info("selftest", `pass: ${result.name}`);
    else log.error("selftest", `FAIL: ${result.name}: ${result.detail}`);
  }
  const passed = results.filter((r) => r.passed).length;
  log.info("selftest", `${passed} passed, ${results.length - passed} failed`);
}
