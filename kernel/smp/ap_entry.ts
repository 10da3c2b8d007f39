/**
 * The kernel on an application processor (docs/smp.md, "Starting a CPU"):
 * the code a CPU runs from the start-up page after INIT and the start-up
 * IPIs. With paging off it reads the trampoline block, finds its number from
 * its local APIC's ID, attaches to the shared state the boot CPU built (the
 * SMP area, the frame allocator, the kernel's address space, the heap),
 * loads the kernel's page tables, sets up its local APIC and its timer (with
 * the boot CPU's calibration), reports online, and idles: HLT until an
 * interrupt, running the work other CPUs give it.
 *
 * A panic on an AP records the reason in the SMP area and sends an NMI to
 * every other CPU: the boot CPU prints `KERNEL PANIC (CPU n): reason` and
 * halts the machine, the other APs stop. An NMI stops this CPU the same way.
 *
 * @module
 */

import { type Hardware, NMI_VECTOR, type PhysAddr, type VirtAddr } from "../../hal/mod.ts";
import { LapicDriver, LapicTimer, MmioRegion } from "../drivers/mod.ts";
import { KernelError } from "../errors.ts";
import {
  APIC_ERROR_VECTOR,
  InterruptVectors,
  LOCAL_TIMER_VECTOR,
  SPURIOUS_VECTOR,
} from "../interrupts/mod.ts";
import { FrameAllocator, KmemHeap } from "../mm/mod.ts";
import { panicReason } from "../panic.ts";
import { type CpuServices, registerCpuFunctions } from "./cpu_services.ts";
import { SmpAddressSpace } from "./smp_address_space.ts";
import { C_TICKS, SmpArea } from "./smp_area.ts";
import { SMP_FUNCTIONS, SmpCalls } from "./smp_call.ts";
import { runChurnCpu } from "./frame_churn.ts";
import { runDeviceRoundTrip } from "./device_round_trip.ts";
import { SmpCpu } from "./smp_cpu.ts";
import { SmpFrameProvider } from "./smp_frames.ts";
import { SmpKernelHeap } from "./smp_heap.ts";
import { registerStress } from "./smp_stress.ts";
import { readTrampoline, type Trampoline } from "./trampoline.ts";
import { TlbShootdown } from "./tlb_shootdown.ts";

/** The local APIC's ID register offset. */
const LAPIC_ID_REGISTER = 0x020;
/** Bytes of the local APIC's register page. */
const LAPIC_PAGE_BYTES = 4096;
/** Publish the CPU's statistics every this many ticks. */
const STATS_EVERY_TICKS = 10;

/** Thrown to unwind a CPU that an NMI (another CPU's panic) stopped. */
export class CpuStopped extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "CpuStopped";
}

/**
 * The application processor's kernel entry: runs until the CPU is stopped
 * (the machine halts, an NMI, or its own panic), then returns.
 *
 * @param hw The CPU's hardware.
 * @param startPage The start-up page (vector * 4 KiB): the trampoline block.
 */
export function apEntry(hw: Hardware, startPage: PhysAddr): void {
  let smp: SmpCpu | undefined;
  try {
    const trampoline = readTrampoline(hw.memory, startPage);
    const area = SmpArea.attach(hw.memory, trampoline.smpArea);
    // Paging is off: the APIC's physical page reaches this CPU's own APIC.
    const apicId = hw.mmu.readVirt32((trampoline.lapicPhysAddr + LAPIC_ID_REGISTER) as VirtAddr) >>>
      24;
    const cpu = area.cpuOfApicId(apicId);
    if (cpu < 0) {
      throw new KernelError("InvalidAddress", `APIC ID ${apicId} has no per-CPU area`);
    }
    smp = new SmpCpu(hw, area, cpu);
    const work: (() => void)[] = [];
    const services = startAp(smp, trampoline, work);
    idle(services, work);
  } catch (error) {
    if (hw.haltReason !== undefined) return; // stopped: the machine halted, or an NMI
    stopOnPanic(hw, smp, panicReason(error));
  }
}

/** Brings this CPU up: the shared state, paging, the local APIC and its timer; then online. */
function startAp(smp: SmpCpu, t: Trampoline, work: (() => void)[]): CpuServices {
  const { hw, area, index } = smp;
  const allocator = FrameAllocator.attach(hw.memory, t.frameAllocatorState);
  const frames = new SmpFrameProvider(allocator, smp.locks.frames, area, index);
  const shootdown = new TlbShootdown(smp);
  const kernelSpace = SmpAddressSpace.attach(smp, shootdown, frames, t.kernelPml4);
  kernelSpace.enablePaging(); // the kernel's page tables: EFER, CR4, CR3, CR0
  const heap = new SmpKernelHeap(
    KmemHeap.attach(hw.memory, frames, t.heapRoot, t.directMapOffset),
    smp.locks.heap,
  );
  const lapic = new LapicDriver(
    new MmioRegion(hw.mmu, "local APIC", t.lapicPhysAddr, t.lapicVirtAddr, LAPIC_PAGE_BYTES),
  );
  smp.attachLapic(lapic);
  const vectors = new InterruptVectors(hw.cpu);
  vectors.install(SPURIOUS_VECTOR, "spurious", () => {});
  vectors.install(APIC_ERROR_VECTOR, "APIC error", () => {
    lapic.readErrors();
    lapic.eoi();
  });
  hw.cpu.setInterruptHandler(NMI_VECTOR, () => {
    const panic = area.panic;
    hw.halt(panic === undefined ? "stopped by an NMI" : `stopped: CPU ${panic.cpu} panicked`);
    area.setCpuState(index, "stopped");
    throw new CpuStopped(`CPU ${index} stopped by an NMI`);
  });
  lapic.setUp(SPURIOUS_VECTOR, APIC_ERROR_VECTOR, false);
  const calls = new SmpCalls(smp);
  const services: CpuServices = { smp, hw, frames, heap, kernelSpace, shootdown, calls };
  shootdown.installHandler(vectors);
  calls.installHandler(vectors);
  registerCpuFunctions(services);
  registerStress(services, (job) => work.push(job));
  calls.register(SMP_FUNCTIONS.deviceRoundTrip, (block) => {
    work.push(() => runDeviceRoundTrip(hw.memory.i32, block as PhysAddr, hw.cpu));
  });
  calls.register(SMP_FUNCTIONS.frameChurn, (block) => {
    work.push(() =>
      runChurnCpu(hw.memory.i32, block as PhysAddr, index, frames, () => hw.cpu.pause())
    );
  });
  const timer = new LapicTimer(lapic, vectors);
  vectors.handleUnexpected(() => lapic.eoi()); // after the timer's: an IPI of any other vector
  timer.setTickHandler((ticks) => {
    Atomics.add(area.words, area.cpuWord(index) + C_TICKS, 1);
    if (ticks % STATS_EVERY_TICKS === 0) smp.publishStats();
  });
  timer.start({
    countsPerSecond: t.timerCountsPerSecond,
    divisor: t.timerDivisor,
    frequencyHz: t.tickHz,
    vector: LOCAL_TIMER_VECTOR,
  });
  smp.publishStats();
  // Online in the mask first: once the boot CPU sees the state, IPIs may come.
  area.setOnline(index, true);
  if (!area.transitionCpuState(index, "starting", "online")) {
    // The boot CPU gave up waiting and left this CPU out: it stays out.
    area.setOnline(index, false);
    hw.halt("started too late: left out");
    throw new CpuStopped(`CPU ${index} started after the boot CPU gave up on it`);
  }
  hw.cpu.sti();
  return services;
}

/** The idle loop: run queued work with interrupts on, else HLT. */
function idle(services: CpuServices, work: (() => void)[]): void {
  const { hw, smp } = services;
  for (;;) {
    const job = work.shift();
    if (job === undefined) {
      hw.waitForInterrupt();
      continue;
    }
    smp.area.setCpuState(smp.index, "busy");
    try {
      job();
    } finally {
      smp.area.setCpuState(smp.index, "online");
    }
  }
}

/**
 * This CPU's panic: records the reason, stops every other CPU with an NMI
 * (the boot CPU prints it) and halts.
 */
function stopOnPanic(hw: Hardware, smp: SmpCpu | undefined, reason: string): void {
  if (smp !== undefined) {
    smp.area.recordPanic(smp.index, reason);
    smp.area.setCpuState(smp.index, "panicked");
    smp.area.setOnline(smp.index, false);
    if (smp.hasLapic) smp.lapic.sendNmi("all-but-self");
  }
  hw.halt(`KERNEL PANIC: ${reason}`);
}
