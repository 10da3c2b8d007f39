/**
 * The kernel's shared state for several CPUs, in RAM: one block of frames
 * the boot CPU takes from the frame allocator before it starts the others,
 * which find it through the trampoline block (docs/smp.md, "The SMP area").
 * Every CPU reads and writes it with `Atomics` where several may at once.
 *
 * ```
 * offset  bytes   what
 * 0x0000  64      header: magic "SMP!", CPU count, switches, online mask,
 *                 frame cache batch, panic record, shootdown and call counters
 * 0x0040  192     panic text (UTF-8) of the first CPU that panicked
 * 0x0100  64      TLB shootdown request: kind, page, pending mask, requester
 * 0x0140  64      cross-CPU call: function, argument, pending mask, requester
 * 0x0200  512     16 spinlocks of 32 bytes (see spinlock.ts): frames, heap,
 *                 shootdown, calls, address-space registry
 * 0x0400  2048    address-space registry: 32 slots of 64 bytes: PML4,
 *                 mask of the CPUs that have it loaded, and its spinlock
 * 0x1000  16384   per-CPU areas, 1 KiB each: APIC ID, state, CR3, TLB and
 *                 interrupt counters, locks held, and the per-CPU cache of
 *                 free frames
 * ```
 *
 * @module
 */

import { hex, PAGE_SIZE_4K, type PhysAddr, type PhysicalMemory } from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";
import { SPINLOCK_WORDS } from "./spinlock.ts";

/** The header's first word: "SMP!" as a little-endian u32. */
export const SMP_AREA_MAGIC = 0x2150_4d53;
/** The most CPUs the kernel supports. */
export const SMP_MAX_CPUS = 16;
/** Bytes of the SMP area: five frames. */
export const SMP_AREA_BYTES = 5 * PAGE_SIZE_4K;

// Header words.
const H_MAGIC = 0;
const H_CPU_COUNT = 1;
const H_SWITCHES = 2;
const H_ONLINE_MASK = 3;
const H_CACHE_BATCH = 4;
const H_PANIC_CPU = 5;
const H_PANIC_LENGTH = 6;
/** Header word: shootdown rounds that sent IPIs. */
export const H_SHOOTDOWN_ROUNDS = 7;
/** Header word: shootdown IPIs sent. */
export const H_SHOOTDOWN_IPIS = 8;
/** Header word: invalidations the teaching switch kept from other CPUs. */
export const H_SHOOTDOWN_SKIPPED = 9;
/** Header word: cross-CPU call rounds. */
export const H_CALL_ROUNDS = 10;

/** Byte offset of the panic text. */
const PANIC_TEXT_OFFSET = 0x40;
/** Bytes of panic text kept. */
export const PANIC_TEXT_BYTES = 192;
/** Byte offset of the shootdown request. */
export const SHOOTDOWN_OFFSET = 0x100;
/** Byte offset of the cross-CPU call block. */
export const CALL_OFFSET = 0x140;
/** Byte offset of the spinlocks. */
const LOCKS_OFFSET = 0x200;
/** Bytes of one spinlock. */
const SPINLOCK_BYTES = SPINLOCK_WORDS * 4;
/** Spinlocks in the lock table. */
const LOCK_COUNT = 16;
/** Byte offset of the address-space registry. */
const REGISTRY_OFFSET = 0x400;
/** Slots of the address-space registry. */
export const REGISTRY_SLOTS = 32;
/** Bytes of one registry slot. */
const REGISTRY_SLOT_BYTES = 64;
/** Byte offset of the per-CPU areas. */
const PER_CPU_OFFSET = 0x1000;
/** Bytes of one per-CPU area. */
const PER_CPU_BYTES = 1024;

// Registry slot words.
/** Registry slot word: PML4 address, low 32 bits (0 with the high word: a free slot). */
export const R_PML4_LO = 0;
/** Registry slot word: PML4 address, high 32 bits. */
export const R_PML4_HI = 1;
/** Registry slot word: the CPUs that have the space loaded (bit n: CPU n). */
export const R_CPU_MASK = 2;
/** Registry slot word offset of the space's spinlock. */
export const R_LOCK = 8;

// Per-CPU words.
/** Per-CPU word: the CPU's APIC ID. */
export const C_APIC_ID = 0;
/** Per-CPU word: its state (CPU_STATE_*). */
export const C_STATE = 1;
/** Per-CPU word: CR3, low 32 bits (published). */
export const C_CR3_LO = 2;
/** Per-CPU word: CR3, high 32 bits. */
export const C_CR3_HI = 3;
/** Per-CPU word: TLB hits (published, modulo 2^32). */
export const C_TLB_HITS = 4;
/** Per-CPU word: TLB misses. */
export const C_TLB_MISSES = 5;
/** Per-CPU word: TLB flushes. */
export const C_TLB_FLUSHES = 6;
/** Per-CPU word: TLB entries in use. */
export const C_TLB_ENTRIES = 7;
/** Per-CPU word: interrupts the CPU took. */
export const C_INTERRUPTS = 8;
/** Per-CPU word: timer ticks. */
export const C_TICKS = 9;
/** Per-CPU word: shootdown requests handled. */
export const C_SHOOTDOWNS = 10;
/** Per-CPU word: cross-CPU calls handled. */
export const C_CALLS = 11;
/** Per-CPU word: spinlocks held now. */
export const C_LOCKS_HELD = 12;
/** Per-CPU word: published statistics, bumped at each publication. */
export const C_PUBLISHED = 13;
/** Per-CPU word: frames in the CPU's free-frame cache. */
export const C_CACHE_COUNT = 24;
/** Per-CPU word: cache refills from the allocator (under its lock). */
export const C_CACHE_REFILLS = 25;
/** Per-CPU word: cache drains to the allocator (under its lock). */
export const C_CACHE_DRAINS = 26;
/** Per-CPU word: allocations served from the cache without a lock. */
export const C_CACHE_HITS = 27;
/** Per-CPU word: first cached frame number. */
export const C_CACHE_FRAMES = 32;
/** The most frames a per-CPU cache can hold. */
export const PER_CPU_CACHE_MAX = PER_CPU_BYTES / 4 - C_CACHE_FRAMES;

/** A CPU's state as the kernel tracks it. */
export type SmpCpuState = "offline" | "starting" | "online" | "busy" | "stopped" | "panicked";
const CPU_STATES: readonly SmpCpuState[] = [
  "offline",
  "starting",
  "online",
  "busy",
  "stopped",
  "panicked",
];

/** Switches kept in the header, read by every CPU. */
export interface SmpSwitches {
  /** TLB shootdown on (false: the teaching switch; other CPUs keep stale translations). */
  readonly shootdown: boolean;
  /** Per-CPU free-frame caches on. */
  readonly frameCaches: boolean;
}

const SWITCH_NO_SHOOTDOWN = 1;
const SWITCH_NO_FRAME_CACHES = 2;

/** Where each spinlock of the lock table is, by name. */
export const SMP_LOCKS = {
  frames: 0,
  heap: 1,
  shootdown: 2,
  calls: 3,
  registry: 4,
} as const;
/** The name of a spinlock of the lock table. */
export type SmpLockName = keyof typeof SMP_LOCKS;

/** A view of the SMP area; see the module documentation. */
export class SmpArea {
  /** Physical address of the area. */
  readonly base: PhysAddr;
  /** The area as words: the same RAM, indexed from the area's start. */
  readonly words: Int32Array;
  /** The same words, as the index into `memory.i32` of word 0 (for spinlocks). */
  readonly wordIndex: number;
  readonly #memory: PhysicalMemory;

  private constructor(memory: PhysicalMemory, base: PhysAddr) {
    this.#memory = memory;
    this.base = base;
    this.words = new Int32Array(memory.buffer, base, SMP_AREA_BYTES / 4);
    this.wordIndex = base / 4;
  }

  /**
   * Initialises the area at `base` (zeroed frames the boot CPU owns).
   *
   * @param memory The RAM.
   * @param base Its first byte, frame aligned.
   * @param cpuCount How many CPUs the machine has (1 to 16).
   * @param cacheBatch Frames a per-CPU cache takes or gives back at once.
   */
  static create(
    memory: PhysicalMemory,
    base: PhysAddr,
    cpuCount: number,
    cacheBatch: number,
  ): SmpArea {
    const area = new SmpArea(memory, base);
    area.words.fill(0);
    area.words[H_CPU_COUNT] = cpuCount;
    area.words[H_CACHE_BATCH] = cacheBatch;
    Atomics.store(area.words, H_MAGIC, SMP_AREA_MAGIC);
    return area;
  }

  /**
   * Attaches to the area another CPU initialised.
   *
   * @throws {KernelError} `InvalidAddress` if there is no SMP area at `base`.
   */
  static attach(memory: PhysicalMemory, base: PhysAddr): SmpArea {
    if (base % PAGE_SIZE_4K !== 0 || !memory.isRam(base, SMP_AREA_BYTES)) {
      throw new KernelError("InvalidAddress", `No SMP area at ${hex(base)}: not RAM`);
    }
    const area = new SmpArea(memory, base);
    if (Atomics.load(area.words, H_MAGIC) !== SMP_AREA_MAGIC) {
      throw new KernelError("InvalidAddress", `No SMP area at ${hex(base)}: bad magic`);
    }
    return area;
  }

  /** How many CPUs the machine has. */
  get cpuCount(): number {
    return this.words[H_CPU_COUNT];
  }

  /** Frames a per-CPU cache takes from the allocator (or gives back) at once. */
  get cacheBatch(): number {
    return this.words[H_CACHE_BATCH];
  }

  /** The CPUs online, as a bit mask (bit n: CPU n). */
  get onlineMask(): number {
    return Atomics.load(this.words, H_ONLINE_MASK);
  }

  /** Marks CPU `cpu` online (or offline) in the mask. */
  setOnline(cpu: number, isOnline: boolean): void {
    if (isOnline) Atomics.or(this.words, H_ONLINE_MASK, 1 << cpu);
    else Atomics.and(this.words, H_ONLINE_MASK, ~(1 << cpu));
    Atomics.notify(this.words, H_ONLINE_MASK);
  }

  /** The switches every CPU obeys. */
  get switches(): SmpSwitches {
    const bits = Atomics.load(this.words, H_SWITCHES);
    return {
      shootdown: (bits & SWITCH_NO_SHOOTDOWN) === 0,
      frameCaches: (bits & SWITCH_NO_FRAME_CACHES) === 0,
    };
  }

  /** Changes some switches; the others keep their value. */
  setSwitches(changes: Partial<SmpSwitches>): void {
    const current = this.switches;
    const next = { ...current, ...changes };
    Atomics.store(
      this.words,
      H_SWITCHES,
      (next.shootdown ? 0 : SWITCH_NO_SHOOTDOWN) |
        (next.frameCaches ? 0 : SWITCH_NO_FRAME_CACHES),
    );
  }

  /** The value of header counter `word` (H_*). */
  counter(word: number): number {
    return Atomics.load(this.words, word);
  }

  /** Adds `delta` to header counter `word`. */
  count(word: number, delta = 1): void {
    Atomics.add(this.words, word, delta);
  }

  /** Index into {@linkcode words} of the first word of spinlock `lock`. */
  lockWord(lock: SmpLockName | number): number {
    const index = typeof lock === "number" ? lock : SMP_LOCKS[lock];
    if (index < 0 || index >= LOCK_COUNT) throw new RangeError(`No spinlock ${index}`);
    return (LOCKS_OFFSET + index * SPINLOCK_BYTES) / 4;
  }

  /** Index into {@linkcode words} of the first word of registry slot `slot`. */
  registryWord(slot: number): number {
    return (REGISTRY_OFFSET + slot * REGISTRY_SLOT_BYTES) / 4;
  }

  /** Index into {@linkcode words} of the first word of CPU `cpu`'s area. */
  cpuWord(cpu: number): number {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= SMP_MAX_CPUS) {
      throw new RangeError(`Invalid CPU ${cpu}: expected 0 to ${SMP_MAX_CPUS - 1}`);
    }
    return (PER_CPU_OFFSET + cpu * PER_CPU_BYTES) / 4;
  }

  /** CPU `cpu`'s state. */
  cpuState(cpu: number): SmpCpuState {
    return CPU_STATES[Atomics.load(this.words, this.cpuWord(cpu) + C_STATE)] ?? "offline";
  }

  /** Sets CPU `cpu`'s state. */
  setCpuState(cpu: number, state: SmpCpuState): void {
    const index = this.cpuWord(cpu) + C_STATE;
    Atomics.store(this.words, index, CPU_STATES.indexOf(state));
    Atomics.notify(this.words, index);
  }

  /**
   * Moves CPU `cpu` from state `from` to `to`, unless another CPU changed it
   * first (the boot CPU giving up on a CPU that starts too late).
   *
   * @returns Whether the state was `from`.
   */
  transitionCpuState(cpu: number, from: SmpCpuState, to: SmpCpuState): boolean {
    const index = this.cpuWord(cpu) + C_STATE;
    const moved = Atomics.compareExchange(
      this.words,
      index,
      CPU_STATES.indexOf(from),
      CPU_STATES.indexOf(to),
    ) === CPU_STATES.indexOf(from);
    Atomics.notify(this.words, index);
    return moved;
  }

  /** The CPU index whose APIC ID is `apicId`, or -1. */
  cpuOfApicId(apicId: number): number {
    for (let cpu = 0; cpu < this.cpuCount; cpu++) {
      if (this.words[this.cpuWord(cpu) + C_APIC_ID] === apicId) return cpu;
    }
    return -1;
  }

  /** CPU `cpu`'s APIC ID. */
  apicIdOf(cpu: number): number {
    return this.words[this.cpuWord(cpu) + C_APIC_ID];
  }

  /**
   * Records the first panic: CPU `cpu` and its reason.
   *
   * @returns Whether this was the first (a later one is not recorded).
   */
  recordPanic(cpu: number, reason: string): boolean {
    if (Atomics.compareExchange(this.words, H_PANIC_CPU, 0, cpu + 1) !== 0) return false;
    const bytes = new TextEncoder().encode(reason).subarray(0, PANIC_TEXT_BYTES);
    this.#memory.u8.set(bytes, this.base + PANIC_TEXT_OFFSET);
    Atomics.store(this.words, H_PANIC_LENGTH, bytes.length);
    return true;
  }

  /** The first panic recorded, or undefined. */
  get panic(): { cpu: number; reason: string } | undefined {
    const cpu = Atomics.load(this.words, H_PANIC_CPU) - 1;
    if (cpu < 0) return undefined;
    const start = this.base + PANIC_TEXT_OFFSET;
    const length = Atomics.load(this.words, H_PANIC_LENGTH);
    // decode() refuses views of shared memory: copy the bytes out first.
    return { cpu, reason: new TextDecoder().decode(this.#memory.u8.slice(start, start + length)) };
  }
}
