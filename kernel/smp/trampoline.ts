/**
 * The trampoline block (docs/smp.md, "Starting a CPU"): what the boot CPU
 * writes at the start-up page before it sends the start-up IPIs, and the
 * only thing an application processor knows when it starts there, with
 * paging off. Everything else it finds from the addresses in it: no
 * JavaScript object crosses from the boot CPU's thread to the AP's.
 *
 * ```
 * start-up page (vector * 4 KiB, below 1 MiB), 32-bit words:
 *   [0] magic "TRMP"           [1] CPU count
 *   [2] kernel PML4, low       [3] high
 *   [4] SMP area, low          [5] high
 *   [6] frame allocator state  [7] high
 *   [8] heap root descriptor   [9] high
 *   [10] direct-map offset     [11] high
 *   [12] local APIC page, virtual address (MMIO window), low  [13] high
 *   [14] local APIC page, physical address
 *   [15] timer counts per second, low  [16] high (the boot CPU's calibration)
 *   [17] timer divisor         [18] tick rate in Hz
 * ```
 *
 * @module
 */

import { hex, type PhysAddr, type PhysicalMemory, type VirtAddr } from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";

/** The start-up vector the kernel sends: the APs start at physical 0x8000. */
export const SMP_STARTUP_VECTOR = 0x08;
/** Bytes of the start-up page. */
export const STARTUP_PAGE_BYTES = 4096;
/** The trampoline block's first word: "TRMP" as a little-endian u32. */
export const TRAMPOLINE_MAGIC = 0x504d_5254;

const T_MAGIC = 0;
const T_CPU_COUNT = 1;
const T_KERNEL_PML4 = 2;
const T_SMP_AREA = 4;
const T_FRAME_STATE = 6;
const T_HEAP_ROOT = 8;
const T_DIRECT_MAP = 10;
const T_LAPIC_VIRT = 12;
const T_LAPIC_PHYS = 14;
const T_TIMER_COUNTS = 15;
const T_TIMER_DIVISOR = 17;
const T_TICK_HZ = 18;
const TRAMPOLINE_WORDS = 19;

/** What an application processor reads from the trampoline block. */
export interface Trampoline {
  /** How many CPUs the machine has. */
  readonly cpuCount: number;
  /** The kernel's PML4 (its CR3 value). */
  readonly kernelPml4: PhysAddr;
  /** The SMP area. */
  readonly smpArea: PhysAddr;
  /** The frame allocator's state block. */
  readonly frameAllocatorState: PhysAddr;
  /** The kmem heap's root descriptor. */
  readonly heapRoot: PhysAddr;
  /** What the heap adds to physical addresses. */
  readonly directMapOffset: number;
  /** Where the kernel mapped the local APIC page (each CPU reaches its own there). */
  readonly lapicVirtAddr: VirtAddr;
  /** The local APIC page's physical address. */
  readonly lapicPhysAddr: PhysAddr;
  /** The boot CPU's timer calibration: divided counts per second. */
  readonly timerCountsPerSecond: number;
  /** The divisor it was calibrated with. */
  readonly timerDivisor: number;
  /** The tick rate. */
  readonly tickHz: number;
}

/** Writes the trampoline block at `page`. */
export function writeTrampoline(memory: PhysicalMemory, page: PhysAddr, t: Trampoline): void {
  const words = new Uint32Array(memory.buffer, page, TRAMPOLINE_WORDS);
  const put64 = (index: number, value: number) => {
    words[index] = value % 2 ** 32;
    words[index + 1] = Math.floor(value / 2 ** 32);
  };
  words[T_CPU_COUNT] = t.cpuCount;
  put64(T_KERNEL_PML4, t.kernelPml4);
  put64(T_SMP_AREA, t.smpArea);
  put64(T_FRAME_STATE, t.frameAllocatorState);
  put64(T_HEAP_ROOT, t.heapRoot);
  put64(T_DIRECT_MAP, t.directMapOffset);
  put64(T_LAPIC_VIRT, t.lapicVirtAddr);
  words[T_LAPIC_PHYS] = t.lapicPhysAddr;
  put64(T_TIMER_COUNTS, t.timerCountsPerSecond);
  words[T_TIMER_DIVISOR] = t.timerDivisor;
  words[T_TICK_HZ] = t.tickHz;
  Atomics.store(words, T_MAGIC, TRAMPOLINE_MAGIC);
}

/**
 * Reads the trampoline block at `page`.
 *
 * @throws {KernelError} `InvalidAddress` if there is none.
 */
export function readTrampoline(memory: PhysicalMemory, page: PhysAddr): Trampoline {
  if (!memory.isRam(page, TRAMPOLINE_WORDS * 4)) {
    throw new KernelError("InvalidAddress", `No trampoline block at ${hex(page)}: not RAM`);
  }
  const words = new Uint32Array(memory.buffer, page, TRAMPOLINE_WORDS);
  if (Atomics.load(words, T_MAGIC) !== TRAMPOLINE_MAGIC) {
    throw new KernelError("InvalidAddress", `No trampoline block at ${hex(page)}: bad magic`);
  }
  const get64 = (index: number) => words[index] + words[index + 1] * 2 ** 32;
  return {
    cpuCount: words[T_CPU_COUNT],
    kernelPml4: get64(T_KERNEL_PML4) as PhysAddr,
    smpArea: get64(T_SMP_AREA) as PhysAddr,
    frameAllocatorState: get64(T_FRAME_STATE) as PhysAddr,
    heapRoot: get64(T_HEAP_ROOT) as PhysAddr,
    directMapOffset: get64(T_DIRECT_MAP),
    lapicVirtAddr: get64(T_LAPIC_VIRT) as VirtAddr,
    lapicPhysAddr: words[T_LAPIC_PHYS] as PhysAddr,
    timerCountsPerSecond: get64(T_TIMER_COUNTS),
    timerDivisor: words[T_TIMER_DIVISOR],
    tickHz: words[T_TICK_HZ],
  };
}
