/**
 * The kernel's side of several CPUs on the boot CPU (docs/smp.md): set up
 * before the page tables and the heap are built, so that every one of them
 * is shared-safe from the start (the SMP area, the frame allocator behind
 * its lock and per-CPU caches, locked address spaces with TLB shootdown, the
 * locked heap); then, once the local APIC runs, the application processors
 * are started and the boot log lists each coming up, or not answering within
 * the bound. Afterwards it answers the monitor: the CPUs, the locks, IPIs,
 * other CPUs' TLBs, and the stress.
 *
 * @module
 */

import {
  type Hardware,
  hex,
  type Machine,
  NMI_VECTOR,
  type PhysAddr,
  type TlbEntry,
} from "../../hal/mod.ts";
import type { LapicDriver, VectorInstaller } from "../drivers/mod.ts";
import { KernelError } from "../errors.ts";
import type { KernelLog } from "../log.ts";
import {
  type AddressSpaceFactory,
  type AddressSpaceLike,
  ContigPages,
  type FrameProvider,
  Page,
} from "../mm/mod.ts";
import { KernelPanic, printPanic } from "../panic.ts";
import { plural } from "../plural.ts";
import { type CpuServices, readTlbDump, registerCpuFunctions } from "./cpu_services.ts";
import { SmpAddressSpace, smpAddressSpaceFactory } from "./smp_address_space.ts";
import {
  C_APIC_ID,
  C_CACHE_COUNT,
  C_CALLS,
  C_CR3_HI,
  C_CR3_LO,
  C_INTERRUPTS,
  C_LOCKS_HELD,
  C_SHOOTDOWNS,
  C_STATE,
  C_TICKS,
  C_TLB_ENTRIES,
  C_TLB_FLUSHES,
  C_TLB_HITS,
  C_TLB_MISSES,
  R_LOCK,
  R_PML4_HI,
  R_PML4_LO,
  REGISTRY_SLOTS,
  SMP_AREA_BYTES,
  SMP_MAX_CPUS,
  SmpArea,
  type SmpCpuState,
  type SmpSwitches,
} from "./smp_area.ts";
import { SMP_FUNCTIONS, SmpCalls } from "./smp_call.ts";
import { SmpCpu } from "./smp_cpu.ts";
import { type ChurnResult, leadChurn, prepareChurn } from "./frame_churn.ts";
import { awaitDeviceRoundTrip, prepareDeviceRoundTrip } from "./device_round_trip.ts";
import { FRAME_CACHE_BATCH, SmpFrameProvider } from "./smp_frames.ts";
import type { SmpKernelHeap } from "./smp_heap.ts";
import {
  cpuServicesStressCpu,
  runStress,
  type StressOptions,
  type StressReport,
} from "./smp_stress.ts";
import { SpinLock, type SpinLockStats } from "./spinlock.ts";
import { SMP_STARTUP_VECTOR, STARTUP_PAGE_BYTES, writeTrampoline } from "./trampoline.ts";
import { TLB_SHOOTDOWN_VECTOR, TlbShootdown } from "./tlb_shootdown.ts";

/** How long the boot CPU waits for each application processor to come online, by default, in ms. */
export const AP_ONLINE_TIMEOUT_MS = 10_000;

/** Settings of the kernel's SMP support (tests change them). */
export interface SmpConfig {
  /** How long to wait for each AP to come online, in ms (default {@linkcode AP_ONLINE_TIMEOUT_MS}). */
  readonly apOnlineTimeoutMs?: number;
  /** Frames a per-CPU cache takes or gives back at once (default {@linkcode FRAME_CACHE_BATCH}). */
  readonly frameCacheBatch?: number;
}

/** One CPU as the monitor's `cpus` shows it, read from its per-CPU area. */
export interface SmpCpuInfo {
  /** Its number. */
  readonly cpu: number;
  /** Its APIC ID. */
  readonly apicId: number;
  /** Its state. */
  readonly state: SmpCpuState;
  /** CR3 when it last published its counters. */
  readonly cr3: number;
  /** TLB hits, misses and flushes, and entries in use. */
  readonly tlb: { hits: number; misses: number; flushes: number; entries: number };
  /** Interrupts it took (ticks, shootdowns and calls included). */
  readonly interrupts: number;
  /** Timer ticks it took. */
  readonly ticks: number;
  /** Shootdown requests it handled. */
  readonly shootdowns: number;
  /** Cross-CPU calls it ran. */
  readonly calls: number;
  /** Spinlocks it holds now. */
  readonly locksHeld: number;
  /** Frames in its per-CPU cache. */
  readonly cachedFrames: number;
}

/** How one application processor's start went. */
export interface ApStartResult {
  /** Its number. */
  readonly cpu: number;
  /** Its APIC ID. */
  readonly apicId: number;
  /** Whether it came online within the bound. */
  readonly isOnline: boolean;
  /** How long it took, in ms (the bound, if it did not answer). */
  readonly elapsedMs: number;
}

/** The boot CPU's SMP setup before paging: what the kernel builds its page tables and heap with. */
export interface SmpPreparation {
  /** The boot CPU. */
  readonly smp: SmpCpu;
  /** The frame allocator as every consumer on the boot CPU uses it. */
  readonly frames: SmpFrameProvider;
  /** The boot CPU's shootdown. */
  readonly shootdown: TlbShootdown;
  /** The factory of locked, registered address spaces with shootdown. */
  readonly createAddressSpace: AddressSpaceFactory;
  /** The shared allocator's state block. */
  readonly allocatorState: PhysAddr;
  /** How many CPUs the MADT lists. */
  readonly cpuCount: number;
  /** The settings. */
  readonly config: SmpConfig;
}

/** What {@linkcode SmpKernel.start} needs from the booted kernel. */
export interface SmpStartContext {
  /** The boot CPU's machine. */
  readonly hw: Machine;
  /** The kernel's address space (an {@linkcode SmpAddressSpace}). */
  readonly kernelSpace: AddressSpaceLike;
  /** The heap, created with the preparation's frames, behind its lock. */
  readonly heap: SmpKernelHeap;
  /** The boot CPU's local APIC. */
  readonly lapic: LapicDriver;
  /** Where the handlers go. */
  readonly vectors: VectorInstaller;
  /** The APIC IDs of the enabled CPUs, the boot CPU's first. */
  readonly apicIds: readonly number[];
  /** The timer: its calibration and rate, for the APs. */
  readonly timer: { countsPerSecond: number; divisor: number; tickHz: number };
  /** The boot CPU's ticks so far. */
  readonly ticks: () => number;
  /** The kernel log. */
  readonly log: KernelLog;
}

/**
 * Sets several CPUs up on the boot CPU before paging: the SMP area, the
 * frame allocator behind its lock and per-CPU caches, and the address-space
 * factory with shootdown.
 *
 * @param hw The boot CPU's hardware.
 * @param allocator The frame allocator (its state block is shared).
 * @param allocatorState Its state block's address.
 * @param cpuCount How many CPUs the MADT lists (2 to 16).
 * @param config Settings.
 * @returns What the kernel builds its page tables and heap with.
 */
export function prepareSmp(
  hw: Hardware,
  allocator: FrameProvider,
  allocatorState: PhysAddr,
  cpuCount: number,
  config: SmpConfig = {},
): SmpPreparation {
  const count = Math.min(cpuCount, SMP_MAX_CPUS);
  // The area's frames are the kernel's for good: never disposed.
  const areaPages = ContigPages.alloc(allocator, SMP_AREA_BYTES / 4096);
  const area = SmpArea.create(
    hw.memory,
    areaPages.intoRaw(),
    count,
    config.frameCacheBatch ?? FRAME_CACHE_BATCH,
  );
  const smp = new SmpCpu(hw, area, 0);
  const frames = new SmpFrameProvider(allocator, smp.locks.frames, area, 0);
  const shootdown = new TlbShootdown(smp);
  return {
    smp,
    frames,
    shootdown,
    createAddressSpace: smpAddressSpaceFactory(smp, shootdown),
    allocatorState,
    cpuCount: count,
    config,
  };
}

/** The kernel's SMP support on the boot CPU; see the module documentation. */
export class SmpKernel {
  /** The boot CPU's services. */
  readonly services: CpuServices;
  /** The SMP area. */
  readonly area: SmpArea;
  /** How the APs' starts went. */
  readonly apStarts: readonly ApStartResult[];

  readonly #bspTicks: () => number;

  private constructor(
    services: CpuServices,
    apStarts: readonly ApStartResult[],
    bspTicks: () => number,
  ) {
    this.services = services;
    this.area = services.smp.area;
    this.apStarts = apStarts;
    this.#bspTicks = bspTicks;
  }

  /**
   * Finishes the boot CPU's setup (its handlers, the NMI that relays an
   * AP's panic) and starts every application processor: INIT and two
   * start-up IPIs each, all at once, then a bounded wait for each to report
   * online. The log lists every CPU coming up, and any that did not.
   */
  static start(prep: SmpPreparation, context: SmpStartContext): SmpKernel {
    const { smp, frames, shootdown } = prep;
    const { hw, log, lapic } = context;
    const area = smp.area;
    if (!(context.kernelSpace instanceof SmpAddressSpace)) {
      throw new KernelError("InvalidPart", "The kernel's address space is not an SMP one");
    }
    const heap = context.heap;
    smp.attachLapic(lapic);
    const calls = new SmpCalls(smp);
    const services: CpuServices = {
      smp,
      hw,
      frames,
      heap,
      kernelSpace: context.kernelSpace,
      shootdown,
      calls,
    };
    shootdown.installHandler(context.vectors);
    calls.installHandler(context.vectors);
    registerCpuFunctions(services);
    // An AP's panic arrives as an NMI: the boot CPU owns the console, so it prints it.
    hw.cpu.setInterruptHandler(NMI_VECTOR, () => {
      const panic = area.panic;
      if (panic === undefined) return;
      printPanic(hw, log, panic.reason, panic.cpu);
      hw.halt(`CPU ${panic.cpu} panicked`);
      throw new KernelPanic(panic.reason, { cpu: panic.cpu });
    });
    const apicIds = context.apicIds.slice(0, area.cpuCount);
    apicIds.forEach((apicId, cpu) => area.words[area.cpuWord(cpu) + C_APIC_ID] = apicId);
    area.setCpuState(0, "online");
    area.setOnline(0, true);
    smp.publishStats();
    log.panicCpu = 0;
    const kernelSpace = context.kernelSpace;
    writeTrampoline(hw.memory, (SMP_STARTUP_VECTOR * STARTUP_PAGE_BYTES) as PhysAddr, {
      cpuCount: area.cpuCount,
      kernelPml4: kernelSpace.pml4Addr,
      smpArea: area.base,
      frameAllocatorState: prep.allocatorState,
      heapRoot: context.heap.rootAddress,
      directMapOffset: context.heap.directMapOffset,
      lapicVirtAddr: lapic.region.virtAddr,
      lapicPhysAddr: lapic.region.physAddr,
      timerCountsPerSecond: context.timer.countsPerSecond,
      timerDivisor: context.timer.divisor,
      tickHz: context.timer.tickHz,
    });
    log.info(
      "smp",
      `starting ${plural(apicIds.length - 1, "application processor")}: INIT, STARTUP x2 ` +
        `with vector ${hex(SMP_STARTUP_VECTOR, 2)} (trampoline at ` +
        `${hex(SMP_STARTUP_VECTOR * STARTUP_PAGE_BYTES)}, SMP area at ${hex(area.base)})`,
    );
    const startMs = performance.now();
    for (let cpu = 1; cpu < apicIds.length; cpu++) {
      area.setCpuState(cpu, "starting");
      lapic.sendInit(apicIds[cpu]);
      lapic.sendStartup(apicIds[cpu], SMP_STARTUP_VECTOR);
      lapic.sendStartup(apicIds[cpu], SMP_STARTUP_VECTOR);
    }
    const timeoutMs = prep.config.apOnlineTimeoutMs ?? AP_ONLINE_TIMEOUT_MS;
    const results: ApStartResult[] = [];
    for (let cpu = 1; cpu < apicIds.length; cpu++) {
      const remainingMs = Math.max(0, timeoutMs - (performance.now() - startMs));
      smp.waitFor(
        area.words,
        area.cpuWord(cpu) + C_STATE,
        () => area.cpuState(cpu) !== "starting",
        remainingMs,
      );
      // Given up on (still starting): if it answers later it finds itself
      // stopped, and stays out.
      const isOnline = !area.transitionCpuState(cpu, "starting", "stopped") &&
        area.cpuState(cpu) === "online";
      const elapsedMs = Math.round(performance.now() - startMs);
      results.push({ cpu, apicId: apicIds[cpu], isOnline, elapsedMs });
      if (isOnline) {
        log.info("smp", `CPU ${cpu} (APIC ID ${apicIds[cpu]}) online after ${elapsedMs} ms`);
      } else {
        area.setOnline(cpu, false);
        log.warn(
          "smp",
          `CPU ${cpu} (APIC ID ${apicIds[cpu]}) did not come online within ${timeoutMs} ms: ` +
            "left out",
        );
      }
    }
    const online = 1 + results.filter((result) => result.isOnline).length;
    log.info(
      "smp",
      `${online} of ${plural(apicIds.length, "CPU")} online; per-CPU frame caches of ` +
        `${area.cacheBatch} frames, TLB shootdown on vector ${hex(TLB_SHOOTDOWN_VECTOR, 2)}`,
    );
    return new SmpKernel(services, results, context.ticks);
  }

  /** How many CPUs the MADT lists (those left out included). */
  get cpuCount(): number {
    return this.area.cpuCount;
  }

  /** The CPUs online, as a bit mask. */
  get onlineMask(): number {
    return this.area.onlineMask;
  }

  /**
   * Every CPU's state and counters: the others publish theirs when asked
   * (a cross-CPU call), this one directly.
   */
  cpus(): SmpCpuInfo[] {
    const { smp, calls } = this.services;
    smp.publishStats();
    calls.call(this.onlineMask, SMP_FUNCTIONS.publishStats);
    const area = this.area;
    const words = area.words;
    const infos: SmpCpuInfo[] = [];
    for (let cpu = 0; cpu < area.cpuCount; cpu++) {
      const base = area.cpuWord(cpu);
      infos.push({
        cpu,
        apicId: words[base + C_APIC_ID],
        state: area.cpuState(cpu),
        cr3: (words[base + C_CR3_LO] >>> 0) + (words[base + C_CR3_HI] >>> 0) * 2 ** 32,
        tlb: {
          hits: words[base + C_TLB_HITS] >>> 0,
          misses: words[base + C_TLB_MISSES] >>> 0,
          flushes: words[base + C_TLB_FLUSHES] >>> 0,
          entries: words[base + C_TLB_ENTRIES],
        },
        interrupts: words[base + C_INTERRUPTS] >>> 0,
        ticks: cpu === smp.index ? this.#bspTicks() : words[base + C_TICKS] >>> 0,
        shootdowns: words[base + C_SHOOTDOWNS] >>> 0,
        calls: words[base + C_CALLS] >>> 0,
        locksHeld: words[base + C_LOCKS_HELD],
        cachedFrames: words[base + C_CACHE_COUNT],
      });
    }
    return infos;
  }

  /** Every spinlock's counters: the lock table's, then each registered address space's. */
  locks(): SpinLockStats[] {
    const smp = this.services.smp;
    const stats: SpinLockStats[] = Object.values(smp.locks).map((lock) => lock.stats());
    const words = this.area.words;
    for (let slot = 0; slot < REGISTRY_SLOTS; slot++) {
      const word = this.area.registryWord(slot);
      const pml4 = (words[word + R_PML4_LO] >>> 0) + (words[word + R_PML4_HI] >>> 0) * 2 ** 32;
      if (pml4 === 0) continue;
      stats.push(new SpinLock(words, word + R_LOCK, `address space ${hex(pml4)}`, smp).stats());
    }
    return stats;
  }

  /**
   * Sends a fixed IPI with `vector` to CPU `cpu` (this one included).
   *
   * @throws {KernelError} `InvalidAddress` for a CPU that is not online, or a vector below 16.
   */
  sendIpi(cpu: number, vector: number): void {
    this.#checkOnline(cpu);
    if (!Number.isInteger(vector) || vector < 16 || vector > 255) {
      throw new KernelError(
        "InvalidAddress",
        `Vector ${vector} cannot be sent: expected 16 to 255`,
      );
    }
    this.services.smp.sendIpi(cpu, vector);
  }

  /**
   * The first 32 entries of CPU `cpu`'s TLB (another CPU writes them into a
   * frame when asked), or this CPU's own.
   *
   * @throws {KernelError} `InvalidAddress` for a CPU that is not online;
   *   `CpuNotResponding` if it does not answer.
   */
  tlbEntries(cpu: number): TlbEntry[] {
    this.#checkOnline(cpu);
    const { smp, calls, frames, hw } = this.services;
    if (cpu === smp.index) return hw.cpu.tlb.entries();
    using page = Page.alloc(frames);
    const silent = calls.call(1 << cpu, SMP_FUNCTIONS.dumpTlb, page.physAddr);
    if (silent.length > 0) {
      throw new KernelError("CpuNotResponding", `CPU ${cpu} did not answer the TLB dump`);
    }
    return readTlbDump(hw, page.physAddr);
  }

  /**
   * Turns the teaching switches on or off for every CPU.
   *
   * @returns The switches now.
   */
  setSwitches(changes: Partial<SmpSwitches>): SmpSwitches {
    this.area.setSwitches(changes);
    if (changes.frameCaches === false) this.drainFrameCaches();
    return this.area.switches;
  }

  /** Gives every CPU's frame cache back to the allocator. */
  drainFrameCaches(): void {
    this.services.frames.drainCache();
    this.services.calls.call(this.onlineMask, SMP_FUNCTIONS.drainFrameCache);
  }

  /**
   * Runs the stress on every online CPU and checks the end state.
   *
   * @param options Duration or rounds, seed, and the test-only modes.
   * @param createSpace Creates the shared address space (the kernel's factory, sharing its half).
   */
  stress(options: StressOptions, createSpace: () => AddressSpaceLike): StressReport {
    const local = cpuServicesStressCpu(this.services);
    return runStress(
      local,
      (block) => this.services.calls.call(this.onlineMask, SMP_FUNCTIONS.runStress, block),
      this.onlineMask,
      createSpace,
      options,
    );
  }

  /**
   * Measures frame allocate-and-free throughput: the CPUs of `cpuMask`
   * (this one always included) each do `pairsPerCpu` pairs at once.
   *
   * @returns The wall time and the time per pair over every CPU.
   * @throws {KernelError} `CpuNotResponding` if a CPU does not take part in time.
   */
  churnFrames(cpuMask: number, pairsPerCpu: number): ChurnResult {
    const { smp, calls, frames, hw } = this.services;
    const mask = (cpuMask | (1 << smp.index)) & this.onlineMask;
    using page = Page.alloc(frames);
    prepareChurn(hw.memory.i32, page.physAddr, pairsPerCpu);
    const silent = calls.call(mask, SMP_FUNCTIONS.frameChurn, page.physAddr);
    if (silent.length > 0) {
      throw new KernelError("CpuNotResponding", `CPUs ${silent.join(", ")} did not take the churn`);
    }
    return leadChurn(hw.memory.i32, page.physAddr, smp.index, mask, frames, () => hw.cpu.pause());
  }

  /**
   * Measures the device-mailbox round trip: CPU `cpu` reads COM1's scratch
   * register `reads` times while this CPU serves its requests at `pause`.
   *
   * @returns The time per read, as that CPU measured it, in ns.
   * @throws {KernelError} `InvalidAddress` for a CPU that is not an online AP;
   *   `CpuNotResponding` if it does not finish.
   */
  deviceRoundTrip(cpu: number, reads: number): number {
    this.#checkOnline(cpu);
    const { smp, calls, frames, hw } = this.services;
    if (cpu === smp.index) {
      throw new KernelError(
        "InvalidAddress",
        `CPU ${cpu} is the board's: its devices need no mailbox`,
      );
    }
    using page = Page.alloc(frames);
    prepareDeviceRoundTrip(hw.memory.i32, page.physAddr, reads);
    const silent = calls.call(1 << cpu, SMP_FUNCTIONS.deviceRoundTrip, page.physAddr);
    if (silent.length > 0) {
      throw new KernelError("CpuNotResponding", `CPU ${cpu} did not take the device reads`);
    }
    return awaitDeviceRoundTrip(hw.memory.i32, page.physAddr, () => hw.cpu.pause(), 60_000);
  }

  /** The frame allocator's spinlock handle on this CPU (tests remove it). */
  get framesLock(): SpinLock {
    return this.services.smp.locks.frames;
  }

  #checkOnline(cpu: number): void {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.area.cpuCount) {
      throw new KernelError(
        "InvalidAddress",
        `No CPU ${cpu}: the machine has CPUs 0 to ${this.area.cpuCount - 1}`,
      );
    }
    if ((this.onlineMask & (1 << cpu)) === 0) {
      throw new KernelError(
        "InvalidAddress",
        `CPU ${cpu} is not online (${this.area.cpuState(cpu)})`,
      );
    }
  }
}
