/**
 * The kernel: entered from the boot loader with the multiboot2 magic and the
 * boot information's physical address (EAX/EBX), it brings up its console,
 * checks and parses the boot information, then initialises memory
 * management. It sees the machine only through the HAL: RAM, port I/O,
 * control registers, the MMU and interrupts.
 *
 * @module
 */

import { hex, type Machine, type PhysAddr, type Tracer } from "../hal/mod.ts";
import {
  type BootInfo,
  type BootMemory,
  checkBootMagic,
  formatBytes,
  logBootInfo,
  parseMultiboot2,
  planBootMemory,
  usableBytes,
} from "./boot/mod.ts";
import {
  type AcpiReport,
  acpiReport,
  type AcpiTables,
  discoverAcpi,
  enabledCpuCount,
} from "./acpi/mod.ts";
import { identifyUart, SERIAL_COM1_PORT, SerialPort, type TickTimer } from "./drivers/mod.ts";
import {
  installMachineCheckHandler,
  type InterruptSystem,
  startInterrupts,
} from "./interrupts/mod.ts";
import { KernelLog } from "./log.ts";
import { KernelError } from "./errors.ts";
import {
  type KernelDriver,
  type KernelPartNames,
  type KernelParts,
  STOCK_PART_NAME,
} from "./kernel_parts.ts";
import {
  type AddressSpaceFactory,
  bootFrameProvider,
  createStockAddressSpace,
  createStockFrameProvider,
  createStockKernelHeap,
  createStockPageFaultPolicy,
  DIRECT_MAP_BASE,
  FrameAllocator,
  type FrameProvider,
  KernelAddressSpace,
  type KernelHeap,
  type KmemHeap,
  mapperAddressSpaceFactory,
  type PageFaultPolicy,
  type PagingReport,
} from "./mm/mod.ts";
import { type Command, MONITOR_COMMANDS } from "./monitor/mod.ts";
import { KernelPanic, panicReason, printPanic } from "./panic.ts";
import {
  type ApStartResult,
  prepareSmp,
  type ShootdownStats,
  type SmpConfig,
  type SmpCpuInfo,
  SmpKernel,
  SmpKernelHeap,
  type SmpPreparation,
  type SpinLockStats,
} from "./smp/mod.ts";
import { plural } from "./plural.ts";
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
  /** Settings of the SMP support, when the MADT lists several CPUs. */
  readonly smp?: SmpConfig;
}

/** The `--report json` object; later subsystems add their sections. */
export interface KernelReport {
  /** Boot loader name from the MBI. */
  bootloaderName: string;
  /** Kernel command line from the MBI. */
  cmdline: string;
  /** Where the MBI is, its size and its tag types in order. */
  mbi: { address: number; totalSize: number; tagTypes: number[] };
  /** The firmware memory map, exactly as the MBI gives it. */
  memoryMap: { base: number; length: number; type: number }[];
  /** The memory map the kernel uses: sanitized, sorted, disjoint, backed by RAM. */
  sanitizedMemoryMap: { base: number; length: number; type: number }[];
  /** Boot modules; `loaded` is false when their bytes cannot be where the tag says. */
  modules: { start: number; end: number; string: string; loaded: boolean }[];
  /** The kernel image's physical extent and where each bound came from. */
  kernelImage: { start: number; end: number; baseSource: string; endSource: string };
  /** Bytes of available (type 1) memory in the sanitized map. */
  usableBytes: number;
  /** Which provider each replaceable part is: `stock` or the module it came from. */
  parts: KernelPartNames;
  /** The frame allocator's counters, read from its state in RAM. */
  frames: {
    totalFrames: number;
    freeFrames: number;
    reservedFrames: number;
    pools: { base: number; frameCount: number; freeFrames: number }[];
    /** Counters particular to the provider, when it reports any. */
    details?: Readonly<Record<string, number>>;
  };
  /** The kmem heap's counters. */
  heap: {
    bytesInUse: number;
    bytesMapped: number;
    allocations: number;
    /** Counters particular to the heap, when it reports any. */
    details?: Readonly<Record<string, number>>;
  };
  /** The kernel address space and the MMU's counters. */
  paging: PagingReport;
  /** Self-test outcome, with `--selftest`. */
  selftest?: { passed: number; failed: number };
  /** The ACPI tables the kernel found and used, or null without any. */
  acpi: AcpiReport | null;
  /** With several CPUs: each CPU's counters, every spinlock's, and the shootdown's. */
  smp?: {
    cpus: SmpCpuInfo[];
    locks: SpinLockStats[];
    shootdown: ShootdownStats;
    apStarts: readonly ApStartResult[];
  };
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
  /** Physical memory as the boot information describes it: sanitized map, image, reservations. */
  readonly bootMemory: BootMemory;
  /** Settings the kernel was built with. */
  readonly config: KernelConfig;
  /** The physical frame allocator. */
  readonly frames: FrameProvider;
  /** The kernel's address space: direct map, kernel image, recursive entry. */
  readonly kernelSpace: KernelAddressSpace;
  /** Creates an empty address space with the kernel's page-table mapper. */
  readonly createAddressSpace: AddressSpaceFactory;
  /** The page-fault policy: demand-zero and copy-on-write. */
  readonly pageFaults: PageFaultPolicy;
  /** The kmem heap (kmalloc/kfree), handing out direct-map addresses. */
  readonly heap: KernelHeap;
  /** Which provider each replaceable part is. */
  readonly parts: KernelPartNames;
  /** Monitor commands the drivers of extra devices added. */
  readonly commands: readonly Command[];
  /** The tick: the local APIC timer (APIC mode) or the PIT (legacy mode). */
  readonly timer: TickTimer;
  /** The firmware's ACPI tables, if any were usable. */
  readonly acpi: AcpiTables | undefined;
  /** Interrupt controllers, routing and vectors. */
  readonly interrupts: InterruptSystem;
  /** Results of the boot self-tests, if they ran. */
  readonly selftestResults: readonly SelftestResult[] | undefined;
  /** The other CPUs, when the machine has several and they were started. */
  readonly smp: SmpKernel | undefined;

  private constructor(parts: Omit<Kernel, "report" | "selftests" | "runSelftests">) {
    this.machine = parts.machine;
    this.log = parts.log;
    this.serial = parts.serial;
    this.bootInfo = parts.bootInfo;
    this.bootMemory = parts.bootMemory;
    this.config = parts.config;
    this.frames = parts.frames;
    this.kernelSpace = parts.kernelSpace;
    this.createAddressSpace = parts.createAddressSpace;
    this.pageFaults = parts.pageFaults;
    this.heap = parts.heap;
    this.parts = parts.parts;
    this.commands = parts.commands;
    this.timer = parts.timer;
    this.acpi = parts.acpi;
    this.interrupts = parts.interrupts;
    this.selftestResults = parts.selftestResults;
    this.smp = parts.smp;
  }

  /**
   * The kernel entry point. Returns the running kernel; on any failure prints
   * `KERNEL PANIC: <reason>` (on serial, or the debug console if serial is not
   * up), halts the machine and throws {@linkcode KernelPanic}.
   *
   * @param machine The hardware.
   * @param magic EAX: the multiboot2 magic.
   * @param mbiAddress EBX: the boot information's physical address.
   * @param config Build-time settings.
   * @param parts Replacements for stock parts, and extra drivers (default: all stock).
   */
  static boot(
    machine: Machine,
    magic: number,
    mbiAddress: PhysAddr,
    config: KernelConfig,
    parts: KernelParts = {},
  ): Kernel {
    const log = new KernelLog(() => machine.clock.nowNs());
    try {
      return Kernel.#start(machine, log, magic, mbiAddress, config, parts);
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
    parts: KernelParts,
  ): Kernel {
    const commands = driverCommands(parts.drivers ?? []); // names checked before anything runs
    const uartType = identifyUart(machine.cpu, SERIAL_COM1_PORT); // Linux-style probe, first
    const serial = new SerialPort(machine.cpu); // COM1 driver
    serial.init(); // scratch test, 115200 8N1, FIFOs (trigger 14), loopback self-test
    log.attachConsole((line) => serial.writeString(line));
    log.info("serial", `${uartType} at ${hex(SERIAL_COM1_PORT)}, 115200 baud 8N1`);
    log.info("boot", `kernelsim ${config.version} starting`);
    installMachineCheckHandler(machine, log); // #MC: an access nothing answers panics, naming it
    checkBootMagic(magic); // EAX must hold the multiboot2 magic
    const bootInfo = parseMultiboot2(machine.memory, mbiAddress); // validate the MBI
    const bootMemory = planBootMemory(bootInfo, {
      memory: machine.memory,
      physAddrBits: machine.mmu.maxPhysAddrBits,
    }); // sanitized memory map, kernel image extent, modules, reservations
    logBootInfo(log, bootInfo, bootMemory);
    logParts(log, parts);
    const allocator = bootFrameProvider(
      parts.frames?.create ?? createStockFrameProvider,
      machine.memory,
      bootMemory.memoryMap,
      bootMemory.reservations,
      !!config.debug,
    ); // the physical frame allocator
    const smpPrep = prepareSeveralCpus(machine, bootInfo, allocator, config, parts, log); // SMP area, locks, per-CPU caches
    const frames = smpPrep?.frames ?? allocator;
    frames.setTracer?.(config.tracer); // before the page tables, so their frames are traced
    logFrames(log, frames);
    const createAddressSpace = smpPrep?.createAddressSpace ??
      (parts.pageMapper === undefined
        ? createStockAddressSpace
        : mapperAddressSpaceFactory(parts.pageMapper.create));
    const kernelSpace = KernelAddressSpace.build(frames, machine.cpu, {
      createAddressSpace,
      // The recursive entry is the stock mapper's: a user's mapper would walk into it.
      recursiveMapping: parts.pageMapper === undefined,
      memoryMap: bootMemory.memoryMap,
      kernelImage: {
        base: bootMemory.kernelImage.base,
        length: bootMemory.kernelImage.end - bootMemory.kernelImage.base,
      },
    }); // page tables: direct map, kernel image, PML4[510]
    kernelSpace.enablePaging(); // EFER.LME|NXE, CR4.PAE|PGE, CR3, CR0.PG|WP
    for (const line of kernelSpace.layoutLines()) log.info("paging", line);
    const pageFaults = (parts.pageFaults?.create ?? createStockPageFaultPolicy)({
      memory: machine.memory,
      frames,
      mmu: machine.mmu,
      cpu: machine.cpu,
    });
    machine.mmu.setPageFaultHandler((fault) => pageFaults.handle(fault)); // #PF
    pageFaults.attach(kernelSpace.addressSpace);
    const createdHeap = (parts.heap?.create ?? createStockKernelHeap)({
      memory: machine.memory,
      frames,
      directMapOffset: DIRECT_MAP_BASE,
      debug: !!config.debug,
    }); // kmalloc/kfree
    const heap = smpPrep === undefined
      ? createdHeap
      : new SmpKernelHeap(createdHeap as KmemHeap, smpPrep.smp.locks.heap); // behind its spinlock
    heap.setTracer?.(config.tracer);
    log.info(
      "heap",
      heap.rootAddress === undefined
        ? "kmem heap up at direct-map addresses"
        : `kmem heap up at direct-map addresses, root descriptor at ${hex(heap.rootAddress)}`,
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
    const smp = smpPrep === undefined ? undefined : startSeveralCpus(
      machine,
      smpPrep,
      kernelSpace,
      heap as SmpKernelHeap,
      interrupts,
      acpi,
      log,
    ); // INIT, SIPI, SIPI
    const timer = interrupts.timer;
    for (const driver of parts.drivers ?? []) {
      driver.init?.({
        hardware: machine,
        frames,
        heap,
        interrupts: interrupts.isa,
        log: (message) => log.info(driver.name, message),
      }); // extra devices
    }
    const selftestResults = config.selftest
      ? runSelftests(
        kernelSelftests(machine, frames, heap, kernelSpace, createAddressSpace, pageFaults),
        { frames, heap },
      ) // each checked for leaked frames and heap bytes
      : undefined;
    if (selftestResults) logSelftests(log, selftestResults);
    log.info("boot", "kernel up");
    return new Kernel({
      machine,
      log,
      serial,
      bootInfo,
      bootMemory,
      config,
      frames,
      kernelSpace,
      createAddressSpace,
      pageFaults,
      heap,
      parts: {
        frames: parts.frames?.name ?? STOCK_PART_NAME,
        pageMapper: parts.pageMapper?.name ?? STOCK_PART_NAME,
        heap: parts.heap?.name ?? STOCK_PART_NAME,
        pageFaults: parts.pageFaults?.name ?? STOCK_PART_NAME,
        drivers: (parts.drivers ?? []).map((driver) => driver.name),
      },
      commands,
      timer,
      acpi,
      interrupts,
      selftestResults,
      smp,
    });
  }

  /** The kernel's self-tests (memory, then paging), as `--selftest` and the monitor run them. */
  selftests(): Selftest[] {
    return kernelSelftests(
      this.machine,
      this.frames,
      this.heap,
      this.kernelSpace,
      this.createAddressSpace,
      this.pageFaults,
    );
  }

  /**
   * Runs the kernel's self-tests now, each checked for leaked frames and
   * heap bytes, and returns their results (never throws).
   */
  runSelftests(): SelftestResult[] {
    return runSelftests(this.selftests(), { frames: this.frames, heap: this.heap });
  }

  /**
   * The kernel's view of the machine as one JSON-able object: everything in
   * it was read back from the kernel's own structures in RAM.
   */
  report(): KernelReport {
    const { bootInfo, bootMemory } = this;
    const frameStats = this.frames.stats();
    const heapStats = this.heap.stats();
    const report: KernelReport = {
      bootloaderName: bootInfo.bootloaderName ?? "",
      cmdline: bootInfo.cmdline ?? "",
      mbi: {
        address: bootInfo.mbi.address,
        totalSize: bootInfo.mbi.totalSize,
        tagTypes: [...bootInfo.mbi.tagTypes],
      },
      memoryMap: bootInfo.memoryMap.map(({ base, length, type }) => ({ base, length, type })),
      sanitizedMemoryMap: bootMemory.memoryMap.map(({ base, length, type }) => ({
        base,
        length,
        type,
      })),
      modules: bootMemory.modules.map(({ start, end, string, isLoaded }) => ({
        start,
        end,
        string,
        loaded: isLoaded,
      })),
      kernelImage: {
        start: bootMemory.kernelImage.base,
        end: bootMemory.kernelImage.end,
        baseSource: bootMemory.kernelImage.baseSource,
        endSource: bootMemory.kernelImage.endSource,
      },
      usableBytes: usableBytes(bootMemory.memoryMap),
      parts: this.parts,
      frames: {
        totalFrames: frameStats.totalFrames,
        freeFrames: frameStats.freeFrames,
        reservedFrames: frameStats.reservedFrames,
        pools: frameStats.pools.map(({ base, frameCount, freeFrames }) => ({
          base,
          frameCount,
          freeFrames,
        })),
        ...(frameStats.details === undefined ? {} : { details: { ...frameStats.details } }),
      },
      heap: {
        bytesInUse: heapStats.bytesInUse,
        bytesMapped: heapStats.bytesMapped,
        allocations: heapStats.allocations,
        ...(heapStats.details === undefined ? {} : { details: { ...heapStats.details } }),
      },
      paging: this.kernelSpace.pagingReport(this.machine.mmu),
      acpi: this.acpi === undefined ? null : acpiReport(this.acpi, this.machine.memory),
    };
    if (this.smp !== undefined) {
      report.smp = {
        cpus: this.smp.cpus(),
        locks: this.smp.locks(),
        shootdown: this.smp.services.shootdown.stats(),
        apStarts: this.smp.apStarts,
      };
    }
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
    return error instanceof KernelPanic
      ? error
      : new KernelPanic(reason, { cause: error, cpu: log.panicCpu });
  }
}

/**
 * The SMP set-up before paging, when the MADT lists several CPUs and every
 * part is the stock one (the SMP layers wrap the stock allocator, heap and
 * address spaces); undefined otherwise, and the kernel runs as on one CPU.
 */
function prepareSeveralCpus(
  machine: Machine,
  bootInfo: BootInfo,
  allocator: FrameProvider,
  config: KernelConfig,
  parts: KernelParts,
  log: KernelLog,
): SmpPreparation | undefined {
  const cpuCount = enabledCpuCount(machine.memory, bootInfo);
  if (cpuCount < 2) return undefined;
  const userParts = [parts.frames, parts.pageMapper, parts.heap, parts.pageFaults]
    .filter((part) => part !== undefined);
  if (userParts.length > 0 || !(allocator instanceof FrameAllocator)) {
    log.warn("smp", `the MADT lists ${cpuCount} CPUs, but parts from modules run on CPU 0 only`);
    return undefined;
  }
  if (config.apic === false) {
    log.warn("smp", `the MADT lists ${cpuCount} CPUs, but --no-apic runs on CPU 0 only`);
    return undefined;
  }
  return prepareSmp(machine, allocator, allocator.stateAddr, cpuCount, config.smp);
}

/** Starts the application processors, in APIC mode (legacy mode cannot send IPIs). */
function startSeveralCpus(
  machine: Machine,
  prep: SmpPreparation,
  kernelSpace: KernelAddressSpace,
  heap: SmpKernelHeap,
  interrupts: InterruptSystem,
  acpi: AcpiTables | undefined,
  log: KernelLog,
): SmpKernel | undefined {
  const { lapic, calibration, timer } = interrupts;
  if (interrupts.mode !== "apic" || lapic === undefined || calibration === undefined) {
    log.warn("smp", `legacy interrupt mode: the other CPUs stay in reset`);
    return undefined;
  }
  const bspApicId = lapic.id();
  const others = (acpi?.madt?.processors ?? [])
    .filter((cpu) => cpu.isEnabled && cpu.apicId !== bspApicId)
    .map((cpu) => cpu.apicId);
  return SmpKernel.start(prep, {
    hw: machine,
    kernelSpace: kernelSpace.addressSpace,
    heap,
    lapic,
    vectors: interrupts.vectors,
    apicIds: [bspApicId, ...others],
    timer: {
      countsPerSecond: calibration.countsPerSecond,
      divisor: calibration.divisor,
      tickHz: Math.round(1e9 / timer.periodNs),
    },
    ticks: () => timer.tickCount,
    log,
  });
}

function kernelSelftests(
  machine: Machine,
  frames: FrameProvider,
  heap: KernelHeap,
  kernelSpace: KernelAddressSpace,
  createAddressSpace: AddressSpaceFactory,
  pageFaults: PageFaultPolicy,
): Selftest[] {
  const { mmu, cpu } = machine;
  return [
    ...memorySelftests({ frames, heap, mmu }),
    ...pagingSelftests({ frames, createAddressSpace, mmu, cpu, kernelSpace, pageFaults }),
  ];
}

/**
 * The monitor commands of the drivers, checked: a name may be used once,
 * and not by a stock command.
 */
function driverCommands(drivers: readonly KernelDriver[]): Command[] {
  const taken = new Set(MONITOR_COMMANDS.map((command) => command.name));
  const commands: Command[] = [];
  for (const driver of drivers) {
    for (const command of driver.commands ?? []) {
      if (taken.has(command.name)) {
        throw new KernelError(
          "InvalidPart",
          `Driver ${driver.name} cannot add monitor command "${command.name}": the name is taken`,
        );
      }
      taken.add(command.name);
      commands.push(command);
    }
  }
  return commands;
}

/** One line per part that is not the stock one. */
function logParts(log: KernelLog, parts: KernelParts): void {
  const named: [string, { readonly name: string } | undefined][] = [
    ["frame allocator", parts.frames],
    ["page-table mapper", parts.pageMapper],
    ["kmem heap", parts.heap],
    ["page-fault policy", parts.pageFaults],
  ];
  for (const [what, part] of named) {
    if (part !== undefined) log.info("parts", `${what} from ${part.name}`);
  }
  for (const driver of parts.drivers ?? []) log.info("parts", `driver ${driver.name}`);
}

function logFrames(log: KernelLog, frames: FrameProvider): void {
  const stats = frames.stats();
  for (const pool of stats.pools) {
    log.info(
      "frames",
      `pool ${hex(pool.base, 12)}: ${plural(pool.frameCount, "frame")} (${
        formatBytes(pool.frameCount * 4096)
      }), ` +
        `${pool.freeFrames} free, ${pool.reservedFrames} reserved`,
    );
  }
  log.info(
    "frames",
    `free: ${stats.freeFrames}/${
      plural(stats.totalFrames, "frame")
    } (${stats.reservedFrames} reserved)`,
  );
}

function logSelftests(log: KernelLog, results: readonly SelftestResult[]): void {
  for (const result of results) {
    if (result.passed) log.info("selftest", `pass: ${result.name}`);
    else log.error("selftest", `"${result.name}" failed: ${result.detail}`);
  }
  const passed = results.filter((r) => r.passed).length;
  log.info("selftest", `${passed} passed, ${results.length - passed} failed`);
}
