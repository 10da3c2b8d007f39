/**
 * The SMP stress (docs/smp.md, "The stress"): every CPU at once, for a
 * bounded time, allocates and frees frames, `Page` and `ContigPages`
 * handles and heap blocks of random sizes, passes page references to the
 * other CPUs through a ring in RAM (`intoRaw` on one CPU, `fromRaw` and
 * dispose on another), and maps, touches, write-protects and unmaps pages
 * in one shared address space while the others read through it.
 *
 * It proves what it checks: every frame a CPU takes is stamped with its
 * owner, so a frame handed out twice is seen; every mapping carries its
 * slot and generation, and its slot records in RAM when its unmap completed
 * (after the TLB shootdown), so a read through a stale translation is seen.
 * At the end, with every CPU done: every frame is back (free frames plus the
 * heap's cached ones equal the count at the start), the allocator's and
 * heap's invariant checks pass, and the frames held by page handles are
 * exactly those held before. With the teaching switch (shootdown off) the
 * stale reads show; with the frame allocator's lock removed (a test-only
 * switch), lost or twice-handed-out frames show.
 *
 * ```
 * stress block (two frames), frame 0:
 *   0x000 header: [0] magic "STRS" [1] CPU mask [2] seed [3] mode [4] done mask
 *         [5] deadline ns, low [6] high [7] rounds (0: until the deadline)
 *         [8] shared PML4, low [9] high [10] slots per CPU
 *   0x040 the ring's spinlock           0x060 ring head, tail
 *   0x080 ring: 128 entries of [frame address low, high, sender | frames << 8, stamp]
 *   0x880 locks-held counters (16)      0x900 slots: 128 x [live gen, done gen]
 * frame 1:
 *   0x000 per-CPU results: 16 x 32 words (see STRESS_COUNTERS)
 *   0x800 per-CPU first problem, 16 x 128 bytes of text
 * ```
 *
 * @module
 */

import {
  formatVirtAddr,
  type FrameNumber,
  type Hardware,
  hex,
  PAGE_SIZE_4K,
  PageFault,
  type PhysAddr,
  type VirtAddr,
} from "../../hal/mod.ts";
import { Xorshift32 } from "../../lib/mod.ts";
import {
  type AddressSpaceLike,
  ContigPages,
  type FrameProvider,
  type KernelHeap,
  Page,
  PAGE_NO_EXECUTE,
  PAGE_WRITABLE,
  UnhandledPageFault,
} from "../mm/mod.ts";
import { KernelError } from "../errors.ts";
import type { CpuServices } from "./cpu_services.ts";
import { SmpAddressSpace } from "./smp_address_space.ts";
import { SMP_FUNCTIONS } from "./smp_call.ts";
import { type LockHolder, SpinLock } from "./spinlock.ts";

/** The stress block's first word: "STRS" as a little-endian u32. */
export const STRESS_MAGIC = 0x5352_5453;
/** Where the shared address space's slots start: 1 GiB, in the lower half. */
export const STRESS_SLOT_BASE = 0x4000_0000;
/** Slots each CPU maps and unmaps. */
export const STRESS_SLOTS_PER_CPU = 8;
/** A mapped slot's first word: "SLOT" XOR the slot number. */
const SLOT_TAG = 0x544f_4c53;
/** What an unmapped slot's frame holds once its unmap completed, before it is freed. */
const DEAD_TAG = 0xdead_f00d | 0;
/** A frame's owner stamp: "OWNR", then the CPU and a sequence number. */
const OWNER_TAG = 0x524e_574f;
/** Ring entries. */
const RING_ENTRIES = 128;
/** Raw frames and heap blocks a CPU holds at most. */
const HELD_MAX = 32;
/** The largest heap block the stress asks for. */
const HEAP_MAX_BYTES = 2048;
/** Slots a reader reads per read step. */
const READS_PER_STEP = 8;
/** Rounds between looks at the clock. */
const ROUNDS_PER_CLOCK_CHECK = 64;
/** How long the boot CPU waits past the deadline for the others to finish, in ms. */
const FINISH_GRACE_MS = 30_000;
/**
 * Each round's operation, drawn from 100: the cumulative share of each (the
 * rest, 25 in 100, are reads of the shared space).
 */
const MIX = {
  rawFrame: 15,
  sendPage: 27,
  receivePage: 39,
  contiguous: 44,
  heapBlock: 60,
  writeSlot: 75,
} as const;
/** The mix of the lock-removed control: frames, through the allocator itself. */
const FRAMES_ONLY_MIX = { rawFrame: 70, sendPage: 85 } as const;
const MIX_TOTAL = 100;
/** One page reference in this many sent through the ring is a run of {@linkcode RING_RUN_FRAMES}. */
const RING_RUN_ONE_IN = 4;
const RING_RUN_FRAMES = 2;
/** Runs the stress allocates: 2 to 4 frames, aligned to 2. */
const RUN_MIN_FRAMES = 2;
const RUN_MAX_FRAMES = 4;
const RUN_ALIGN_FRAMES = 2;
/** Mode bit: every operation hits the frame allocator (the lock-removed control). */
const MODE_FRAMES_ONLY = 1;

// Header words.
const W_MAGIC = 0;
const W_CPU_MASK = 1;
const W_SEED = 2;
const W_MODE = 3;
const W_DONE = 4;
const W_DEADLINE_LO = 5;
const W_DEADLINE_HI = 6;
const W_ROUNDS = 7;
const W_PML4_LO = 8;
const W_PML4_HI = 9;
const W_SLOTS_PER_CPU = 10;
const RING_LOCK_WORD = 0x40 / 4;
const RING_HEAD = 0x60 / 4;
const RING_TAIL = RING_HEAD + 1;
const RING_WORD = 0x80 / 4;
const RING_ENTRY_WORDS = 4;
/** A ring entry's word 2: the sender's CPU in bits 7:0, the frame count above. */
const RING_SENDER_MASK = 0xff;
const RING_COUNT_SHIFT = 8;
const HELD_WORD = 0x880 / 4;
const SLOT_WORD = 0x900 / 4;
const RESULTS_WORD = PAGE_SIZE_4K / 4;
const RESULT_WORDS = 32;
const TEXT_OFFSET = PAGE_SIZE_4K + 0x800;
const TEXT_BYTES = 128;

/** What each CPU counts, in its results (the word order in RAM). */
export const STRESS_COUNTERS = [
  "rounds",
  "framesAllocated",
  "framesFreed",
  "pagesSent",
  "pagesReceived",
  "pagesFromOtherCpus",
  "contiguousRuns",
  "heapAllocations",
  "heapFrees",
  "maps",
  "unmaps",
  "protects",
  "reads",
  "readFaults",
  "staleReads",
  "doubleHandOuts",
  "errors",
] as const;
/** One counter's name. */
export type StressCounter = (typeof STRESS_COUNTERS)[number];
/** One CPU's counters. */
export type StressCounts = Readonly<Record<StressCounter, number>>;

/** How to run the stress. */
export interface StressOptions {
  /** How long, in ms of host time (with a virtual clock: {@linkcode StressOptions.rounds}). */
  readonly durationMs: number;
  /** A fixed number of rounds per CPU instead of a duration (deterministic runs). */
  readonly rounds?: number;
  /** The seed of every CPU's PRNG (CPU n uses seed + n). */
  readonly seed?: number;
  /** Test only: every operation hits the frame allocator, to race it when its lock is removed. */
  readonly framesOnly?: boolean;
}

/** What one CPU of a stress did. */
export interface StressCpuResult {
  /** The CPU. */
  readonly cpu: number;
  /** Its counters. */
  readonly counts: StressCounts;
  /** The first problem it saw (a stale read, a frame handed out twice, an error), if any. */
  readonly firstProblem: string | undefined;
}

/** What a stress run found. */
export interface StressReport {
  /** The CPUs that took part. */
  readonly cpuCount: number;
  /** Wall time of the run, in ms. */
  readonly elapsedMs: number;
  /** Per CPU. */
  readonly cpus: readonly StressCpuResult[];
  /** The counters summed over the CPUs. */
  readonly totals: StressCounts;
  /** Free frames plus the frames the heap holds, at the start. */
  readonly freeFramesBefore: number;
  /** The same at the end; equal when no frame was lost. */
  readonly freeFramesAfter: number;
  /** Frames held by page handles at the end that were not held at the start, and the reverse. */
  readonly refcountChanges: number;
  /** Invariant checks that failed at the end (allocator, heap, refcounts), one line each. */
  readonly checkFailures: readonly string[];
  /** CPUs that did not finish in time. */
  readonly unfinishedCpus: readonly number[];
  /** The ring lock's contended acquisitions (how often CPUs met there). */
  readonly ringLockContended: number;
}

/**
 * What the stress needs on one CPU: its number, its hardware, its handles to
 * the frame allocator and heap, a lock holder, and how to enter and leave
 * the shared address space.
 */
export interface StressCpu {
  /** The CPU's number. */
  readonly index: number;
  /** Its hardware. */
  readonly hw: Hardware;
  /** Its frame allocator handle. */
  readonly frames: FrameProvider;
  /** Its heap handle. */
  readonly heap: KernelHeap;
  /** Loads the shared space with PML4 `pml4Addr` on this CPU; returns this CPU's handle. */
  enter(pml4Addr: PhysAddr): AddressSpaceLike;
  /** Loads the kernel's space again. */
  leave(): void;
  /** Gives this CPU's frame cache back to the allocator, if it has one. */
  drainFrameCache(): void;
}

/** Registers the stress as work other CPUs run when asked (an application processor's side). */
export function registerStress(services: CpuServices, queue: (job: () => void) => void): void {
  const stressCpu = cpuServicesStressCpu(services);
  services.calls.register(SMP_FUNCTIONS.runStress, (block) => {
    // Not in the IPI handler: the idle loop runs it, with interrupts on.
    queue(() => runStressCpu(stressCpu, block as PhysAddr));
  });
}

/** The stress's view of a CPU with SMP services. */
export function cpuServicesStressCpu(services: CpuServices): StressCpu {
  const { smp, hw, frames, heap, shootdown, kernelSpace } = services;
  let attached: SmpAddressSpace | undefined;
  return {
    index: smp.index,
    hw,
    frames,
    heap,
    enter(pml4Addr) {
      if (attached === undefined || attached.pml4Addr !== pml4Addr) {
        attached = SmpAddressSpace.attach(smp, shootdown, frames, pml4Addr);
      }
      attached.activate();
      return attached;
    },
    leave() {
      kernelSpace.activate();
    },
    drainFrameCache: () => frames.drainCache(),
  };
}

/** The stress block's RAM, as words. */
class StressBlock {
  readonly words: Int32Array;
  readonly base: PhysAddr;
  readonly #u8: Uint8Array;

  constructor(hw: Hardware, base: PhysAddr) {
    this.base = base;
    this.words = new Int32Array(hw.memory.buffer, base, 2 * PAGE_SIZE_4K / 4);
    this.#u8 = hw.memory.u8;
  }

  get slotsPerCpu(): number {
    return this.words[W_SLOTS_PER_CPU];
  }

  get slotCount(): number {
    return this.slotsPerCpu * (32 - Math.clz32(this.words[W_CPU_MASK]));
  }

  result(cpu: number, counter: StressCounter): number {
    return this.words[RESULTS_WORD + cpu * RESULT_WORDS + STRESS_COUNTERS.indexOf(counter)] >>> 0;
  }

  recordProblem(cpu: number, text: string): void {
    const start = this.base + TEXT_OFFSET + cpu * TEXT_BYTES;
    if (this.#u8[start] !== 0) return; // the first one is kept
    const bytes = new TextEncoder().encode(text).subarray(0, TEXT_BYTES - 1);
    this.#u8.set(bytes, start);
  }

  problem(cpu: number): string | undefined {
    const start = this.base + TEXT_OFFSET + cpu * TEXT_BYTES;
    const end = this.#u8.indexOf(0, start);
    const bytes = this.#u8.slice(
      start,
      end < 0 || end > start + TEXT_BYTES ? start + TEXT_BYTES : end,
    );
    return bytes.length === 0 ? undefined : new TextDecoder().decode(bytes);
  }
}

/** One CPU's run of the stress, from the block at `blockAddr`; returns when it is done. */
export function runStressCpu(cpu: StressCpu, blockAddr: PhysAddr): void {
  const block = new StressBlock(cpu.hw, blockAddr);
  if (Atomics.load(block.words, W_MAGIC) !== STRESS_MAGIC) {
    throw new KernelError("InvalidAddress", `No stress block at ${hex(blockAddr)}`);
  }
  new StressWorker(cpu, block).run();
}

/**
 * Runs the stress on `cpus[0]` (this CPU, the boot CPU) and asks the
 * others to run it, then checks the end state and reports.
 *
 * @param local This CPU.
 * @param startOthers Asks the other CPUs (the mask's) to run the stress from the block; returns
 *   the CPUs that did not take the request.
 * @param cpuMask The CPUs taking part (this one included).
 * @param options Duration or rounds, seed, mode.
 */
export function runStress(
  local: StressCpu,
  startOthers: (blockAddr: PhysAddr) => number[],
  cpuMask: number,
  createSpace: () => AddressSpaceLike,
  options: StressOptions,
): StressReport {
  const { hw, frames, heap } = local;
  const startMs = performance.now();
  const heldBefore = new Set(frames.metadata.heldFrames().map((held) => held.frame));
  const liveBefore = heap.stats().liveAllocations;
  const freeBefore = freeAndHeap(frames, heap);
  const blockPages = ContigPages.alloc(frames, 2);
  const block = new StressBlock(hw, blockPages.physAddr);
  const space = createSpace();
  const words = block.words;
  words[W_CPU_MASK] = cpuMask;
  words[W_SEED] = (options.seed ?? 1) | 0;
  words[W_MODE] = options.framesOnly ? MODE_FRAMES_ONLY : 0;
  words[W_ROUNDS] = options.rounds ?? 0;
  const deadlineNs = hw.clock.nowNs() + Math.round(options.durationMs * 1e6);
  words[W_DEADLINE_LO] = deadlineNs % 2 ** 32;
  words[W_DEADLINE_HI] = Math.floor(deadlineNs / 2 ** 32);
  words[W_PML4_LO] = space.pml4Addr % 2 ** 32;
  words[W_PML4_HI] = Math.floor(space.pml4Addr / 2 ** 32);
  words[W_SLOTS_PER_CPU] = STRESS_SLOTS_PER_CPU;
  Atomics.store(words, W_MAGIC, STRESS_MAGIC);
  const others = cpuMask & ~(1 << local.index);
  const refused = others === 0 ? [] : startOthers(block.base);
  const refusedMask = refused.reduce((mask, cpu) => mask | (1 << cpu), 0);
  // Those that did not take the request count as done (and report nothing).
  Atomics.or(words, W_DONE, refusedMask);
  runStressCpu(local, block.base);
  const expectedDone = cpuMask;
  const graceMs = options.durationMs + FINISH_GRACE_MS;
  waitWord(local, words, W_DONE, (done) => (done & expectedDone) === expectedDone, graceMs);
  const done = Atomics.load(words, W_DONE);
  const unfinished: number[] = [...refused];
  for (let c = 0; c < 32; c++) {
    if ((cpuMask & (1 << c)) !== 0 && (done & (1 << c)) === 0) unfinished.push(c);
  }
  const checkFailures: string[] = [];
  const results: StressCpuResult[] = [];
  for (let c = 0; c < 32; c++) {
    if ((cpuMask & (1 << c)) === 0) continue;
    const counts = {} as Record<StressCounter, number>;
    for (const counter of STRESS_COUNTERS) counts[counter] = block.result(c, counter);
    results.push({ cpu: c, counts, firstProblem: block.problem(c) });
  }
  const ringLock = new SpinLock(words, RING_LOCK_WORD, "stress page ring", holderFor(local, words));
  const ringLockContended = ringLock.stats().contended;
  // Pages still in the ring: their references come back here.
  cleanUp(checkFailures, "draining the ring", () => drainRing(local, block));
  cleanUp(checkFailures, "freeing the shared address space", () => space[Symbol.dispose]());
  cleanUp(checkFailures, "freeing the stress block", () => blockPages[Symbol.dispose]());
  local.drainFrameCache();
  cleanUp(checkFailures, "the frame allocator's invariants", () => frames.checkInvariants?.());
  cleanUp(checkFailures, "the heap's invariants", () => heap.checkInvariants?.());
  const heldAfter = new Set(frames.metadata.heldFrames().map((held) => held.frame));
  let refcountChanges = 0;
  for (const frame of heldAfter) if (!heldBefore.has(frame)) refcountChanges++;
  for (const frame of heldBefore) if (!heldAfter.has(frame)) refcountChanges++;
  if (refcountChanges > 0) {
    checkFailures.push(
      `${refcountChanges} frames changed between held and not held by page handles`,
    );
  }
  const freeAfter = freeAndHeap(frames, heap);
  const liveAfter = heap.stats().liveAllocations;
  if (liveAfter !== liveBefore) {
    checkFailures.push(`the heap has ${liveAfter} live allocations, ${liveBefore} before`);
  }
  if (freeAfter !== freeBefore) {
    checkFailures.push(
      `${freeBefore - freeAfter} frames lost (${freeBefore} free before, ${freeAfter} after)`,
    );
  }
  const totals = {} as Record<StressCounter, number>;
  for (const counter of STRESS_COUNTERS) {
    totals[counter] = results.reduce((sum, result) => sum + result.counts[counter], 0);
  }
  return {
    cpuCount: results.length,
    elapsedMs: performance.now() - startMs,
    cpus: results,
    totals,
    freeFramesBefore: freeBefore,
    freeFramesAfter: freeAfter,
    refcountChanges,
    checkFailures,
    unfinishedCpus: unfinished,
    ringLockContended,
  };
}

/**
 * Runs the stress on a machine of one CPU (no SMP layers): the same work
 * and end checks, the shared address space read by this CPU alone.
 *
 * @param hw The CPU's hardware.
 * @param frames The frame allocator.
 * @param heap The heap.
 * @param kernelSpace The kernel's address space (loaded again at the end).
 * @param createSpace Creates the stress's address space (sharing the kernel's half).
 * @param options Duration or rounds, and seed.
 */
export function runSingleCpuStress(
  hw: Hardware,
  frames: FrameProvider,
  heap: KernelHeap,
  kernelSpace: AddressSpaceLike,
  createSpace: () => AddressSpaceLike,
  options: StressOptions,
): StressReport {
  let space: AddressSpaceLike | undefined;
  const local: StressCpu = {
    index: 0,
    hw,
    frames,
    heap,
    enter() {
      space!.activate();
      return space!;
    },
    leave: () => kernelSpace.activate(),
    drainFrameCache: () => {},
  };
  return runStress(local, () => [], 1, () => space = createSpace(), options);
}

/**
 * Free frames plus every frame the heap holds (its live blocks, its caches,
 * its owner table): what "every frame is back" compares, with the heap's
 * live allocations checked equal separately.
 */
function freeAndHeap(frames: FrameProvider, heap: KernelHeap): number {
  return frames.stats().freeFrames + Math.ceil(heap.stats().bytesMapped / PAGE_SIZE_4K);
}

/** Runs a clean-up step; a failure (a broken state) becomes a check failure, not a crash. */
function cleanUp(failures: string[], what: string, step: () => void): void {
  try {
    step();
  } catch (error) {
    failures.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Waits for a stress word on `cpu` at instruction boundaries. */
function waitWord(
  cpu: StressCpu,
  words: Int32Array,
  index: number,
  isDone: (value: number) => boolean,
  timeoutMs: number,
): boolean {
  const startMs = performance.now();
  for (let spins = 0;; spins++) {
    const value = Atomics.load(words, index);
    if (isDone(value)) return true;
    if (spins > 32) {
      if (performance.now() - startMs > timeoutMs) return false;
      Atomics.wait(words, index, value, 1);
    }
    cpu.hw.cpu.pause();
  }
}

/** The lock holder a CPU uses for the ring's lock: its counter in the stress block. */
function holderFor(cpu: StressCpu, words: Int32Array): LockHolder {
  return { index: cpu.index, cpu: cpu.hw.cpu, heldWords: words, heldWord: HELD_WORD + cpu.index };
}

/** Gives back every page still in the ring. */
function drainRing(cpu: StressCpu, block: StressBlock): void {
  const words = block.words;
  while (Atomics.load(words, RING_HEAD) !== Atomics.load(words, RING_TAIL)) {
    const entry = RING_WORD + (words[RING_HEAD] % RING_ENTRIES) * RING_ENTRY_WORDS;
    const pa = ((words[entry] >>> 0) + (words[entry + 1] >>> 0) * 2 ** 32) as PhysAddr;
    const frameCount = words[entry + 2] >>> RING_COUNT_SHIFT;
    words[RING_HEAD]++;
    if (frameCount === 1) Page.fromRaw(cpu.frames, pa)[Symbol.dispose]();
    else ContigPages.fromRaw(cpu.frames, pa, frameCount)[Symbol.dispose]();
  }
}

/** A raw frame this CPU holds, with the stamp it wrote. */
interface HeldFrame {
  readonly frame: number;
  readonly stamp: number;
}

/** A heap block this CPU holds, with the byte it filled it with. */
interface HeldBlock {
  readonly va: VirtAddr;
  readonly sizeBytes: number;
  readonly fill: number;
}

/** One CPU's loop; see the module documentation. */
class StressWorker {
  readonly #cpu: StressCpu;
  readonly #block: StressBlock;
  readonly #words: Int32Array;
  readonly #u8: Uint8Array;
  readonly #i32: Int32Array;
  readonly #rng: Xorshift32;
  readonly #ringLock: SpinLock;
  readonly #results: number;
  readonly #frames: HeldFrame[] = [];
  readonly #blocks: HeldBlock[] = [];
  /** This CPU's slots: the generation mapped (0: none), the step each is at, its page. */
  readonly #slotGen: number[];
  readonly #slotStep: number[];
  readonly #slotPages: (Page | undefined)[];
  #space: AddressSpaceLike | undefined;
  #stamp = 0;
  #nextGen = 1;
  #isStopped = false;

  constructor(cpu: StressCpu, block: StressBlock) {
    this.#cpu = cpu;
    this.#block = block;
    this.#words = block.words;
    this.#u8 = cpu.hw.memory.u8;
    this.#i32 = cpu.hw.memory.i32;
    this.#rng = new Xorshift32(((block.words[W_SEED] + cpu.index) >>> 0) || 1);
    this.#ringLock = new SpinLock(
      block.words,
      RING_LOCK_WORD,
      "stress page ring",
      holderFor(cpu, block.words),
    );
    this.#results = RESULTS_WORD + cpu.index * RESULT_WORDS;
    this.#slotGen = new Array(block.slotsPerCpu).fill(0);
    this.#slotStep = new Array(block.slotsPerCpu).fill(0);
    this.#slotPages = new Array(block.slotsPerCpu).fill(undefined);
  }

  run(): void {
    const cpu = this.#cpu;
    const words = this.#words;
    const bit = 1 << cpu.index;
    try {
      this.#space = cpu.enter(
        ((words[W_PML4_LO] >>> 0) + (words[W_PML4_HI] >>> 0) * 2 ** 32) as PhysAddr,
      );
      this.#loop();
    } catch (error) {
      this.#fail(error);
    } finally {
      this.#finish();
      Atomics.or(words, W_DONE, bit);
      Atomics.notify(words, W_DONE);
    }
  }

  #loop(): void {
    const words = this.#words;
    const cpu = this.#cpu;
    const rounds = words[W_ROUNDS];
    const deadlineNs = (words[W_DEADLINE_LO] >>> 0) + (words[W_DEADLINE_HI] >>> 0) * 2 ** 32;
    const framesOnly = (words[W_MODE] & MODE_FRAMES_ONLY) !== 0;
    for (let round = 0; !this.#isStopped; round++) {
      if (
        rounds > 0
          ? round >= rounds
          : round % ROUNDS_PER_CLOCK_CHECK === 0 && cpu.hw.clock.nowNs() >= deadlineNs
      ) {
        break;
      }
      this.#count("rounds");
      const choice = this.#rng.next() % MIX_TOTAL;
      try {
        if (framesOnly) this.#framesOnlyStep(choice);
        else this.#step(choice);
      } catch (error) {
        this.#fail(error);
      }
      cpu.hw.cpu.instructionBoundary(); // interrupts (a shootdown) between two operations
    }
  }

  #step(choice: number): void {
    if (choice < MIX.rawFrame) this.#rawFrame();
    else if (choice < MIX.sendPage) this.#sendPage();
    else if (choice < MIX.receivePage) this.#receivePage();
    else if (choice < MIX.contiguous) this.#contiguous();
    else if (choice < MIX.heapBlock) this.#heapBlock();
    else if (choice < MIX.writeSlot) this.#writeSlot();
    else this.#readSlots();
  }

  /** The lock-removed control: allocations and frees only, on the allocator itself. */
  #framesOnlyStep(choice: number): void {
    if (choice < FRAMES_ONLY_MIX.rawFrame) this.#rawFrame();
    else if (choice < FRAMES_ONLY_MIX.sendPage) this.#sendPage();
    else this.#receivePage();
  }

  // -------------------------------------------------------------------------
  // Frames, pages, runs, heap blocks

  /** Allocates a raw frame and stamps it, or frees one after checking its stamp. */
  #rawFrame(): void {
    const held = this.#frames;
    if (held.length >= HELD_MAX || (held.length > 0 && (this.#rng.next() & 1) === 0)) {
      const index = this.#rng.next() % held.length;
      const { frame, stamp } = held[index];
      held[index] = held[held.length - 1];
      held.pop();
      this.#checkStamp(frame, this.#cpu.index, stamp, "a frame it allocated");
      this.#cpu.frames.free(frame as FrameNumber);
      this.#count("framesFreed");
      return;
    }
    const frame = this.#cpu.frames.allocate();
    const stamp = this.#writeStamp(frame);
    held.push({ frame, stamp });
    this.#count("framesAllocated");
  }

  /**
   * Allocates a page (one time in four a run of 2 frames), stamps it and
   * passes its references into the ring with `intoRaw` (or drops it if the
   * ring is full).
   */
  #sendPage(): void {
    const frameCount = this.#rng.next() % RING_RUN_ONE_IN === 0 ? RING_RUN_FRAMES : 1;
    const handle = frameCount === 1
      ? Page.alloc(this.#cpu.frames, { zeroed: false })
      : ContigPages.alloc(this.#cpu.frames, frameCount, { zeroed: false });
    const stamp = this.#writeStamp(handle.frame);
    const words = this.#words;
    const pushed = this.#ringLock.hold(() => {
      const tail = words[RING_TAIL];
      if (tail - words[RING_HEAD] >= RING_ENTRIES) return false;
      const entry = RING_WORD + (tail % RING_ENTRIES) * RING_ENTRY_WORDS;
      const pa = handle.intoRaw();
      words[entry] = pa % 2 ** 32;
      words[entry + 1] = Math.floor(pa / 2 ** 32);
      words[entry + 2] = this.#cpu.index | (frameCount << RING_COUNT_SHIFT);
      words[entry + 3] = stamp;
      Atomics.store(words, RING_TAIL, tail + 1);
      return true;
    });
    if (pushed) this.#count("pagesSent");
    else handle[Symbol.dispose]();
  }

  /**
   * Takes page references out of the ring (`fromRaw`: a `Page`, or a
   * `ContigPages` for a run), checks the stamp and drops them: the last
   * reference frees the frames into this CPU's cache, whoever allocated them.
   */
  #receivePage(): void {
    const words = this.#words;
    const entry = this.#ringLock.hold(() => {
      const head = words[RING_HEAD];
      if (head === words[RING_TAIL]) return undefined;
      const i = RING_WORD + (head % RING_ENTRIES) * RING_ENTRY_WORDS;
      Atomics.store(words, RING_HEAD, head + 1);
      return {
        pa: ((words[i] >>> 0) + (words[i + 1] >>> 0) * 2 ** 32) as PhysAddr,
        sender: words[i + 2] & RING_SENDER_MASK,
        frameCount: words[i + 2] >>> RING_COUNT_SHIFT,
        stamp: words[i + 3],
      };
    });
    if (entry === undefined) return;
    const frames = this.#cpu.frames;
    using handle = entry.frameCount === 1
      ? Page.fromRaw(frames, entry.pa)
      : ContigPages.fromRaw(frames, entry.pa, entry.frameCount);
    this.#checkStamp(handle.frame, entry.sender, entry.stamp, `a page CPU ${entry.sender} sent`);
    this.#count("pagesReceived");
    if (entry.sender !== this.#cpu.index) this.#count("pagesFromOtherCpus");
  }

  /** Allocates an aligned run of 2 to 4 frames, stamps each, checks them and drops the run. */
  #contiguous(): void {
    const frameCount = RUN_MIN_FRAMES + this.#rng.next() % (RUN_MAX_FRAMES - RUN_MIN_FRAMES + 1);
    using run = ContigPages.alloc(this.#cpu.frames, frameCount, {
      alignFrames: RUN_ALIGN_FRAMES,
      zeroed: false,
    });
    const stamps: number[] = [];
    for (let i = 0; i < frameCount; i++) stamps.push(this.#writeStamp(run.frame + i));
    for (let i = 0; i < frameCount; i++) {
      this.#checkStamp(run.frame + i, this.#cpu.index, stamps[i], "a run it allocated");
    }
    this.#count("contiguousRuns");
  }

  /** Allocates a heap block of a random size and fills it, or checks and frees one. */
  #heapBlock(): void {
    const heap = this.#cpu.heap;
    const blocks = this.#blocks;
    if (blocks.length >= HELD_MAX || (blocks.length > 0 && (this.#rng.next() & 1) === 0)) {
      const index = this.#rng.next() % blocks.length;
      const block = blocks[index];
      blocks[index] = blocks[blocks.length - 1];
      blocks.pop();
      const pa = block.va - heap.directMapOffset;
      for (let i = 0; i < block.sizeBytes; i++) {
        if (this.#u8[pa + i] !== block.fill) {
          this.#problem(
            "doubleHandOuts",
            `heap block ${formatVirtAddr(block.va)} changed under its owner at byte ${i}`,
          );
          break;
        }
      }
      heap.kfree(block.va);
      this.#count("heapFrees");
      return;
    }
    const sizeBytes = 1 + this.#rng.next() % HEAP_MAX_BYTES;
    const va = heap.kmalloc(sizeBytes);
    const fill = (this.#cpu.index * 16 + blocks.length) & 0xff;
    const pa = va - heap.directMapOffset;
    this.#u8.fill(fill, pa, pa + sizeBytes);
    blocks.push({ va, sizeBytes, fill });
    this.#count("heapAllocations");
  }

  /** Writes the owner stamp into a frame; returns the stamp. */
  #writeStamp(frame: number): number {
    const stamp = ++this.#stamp;
    const word = frame * (PAGE_SIZE_4K / 4);
    const i32 = this.#i32;
    i32[word] = OWNER_TAG;
    i32[word + 1] = this.#cpu.index;
    i32[word + 2] = stamp;
    return stamp;
  }

  /** Checks a frame's stamp: another stamp means it was handed out twice. */
  #checkStamp(frame: number, owner: number, stamp: number, what: string): void {
    const word = frame * (PAGE_SIZE_4K / 4);
    const i32 = this.#i32;
    if (i32[word] === OWNER_TAG && i32[word + 1] === owner && i32[word + 2] === stamp) return;
    this.#problem(
      "doubleHandOuts",
      `frame 0x${frame.toString(16)} (${what}) was handed out twice: its stamp is CPU ` +
        `${i32[word + 1]} #${i32[word + 2]}, not CPU ${owner} #${stamp}`,
    );
  }

  // -------------------------------------------------------------------------
  // The shared address space

  /** One step of one of this CPU's slots: map, touch, protect, unmap (and map the next). */
  #writeSlot(): void {
    const local = this.#rng.next() % this.#slotGen.length;
    const slot = this.#cpu.index * this.#block.slotsPerCpu + local;
    const va = slotVa(slot);
    const space = this.#space!;
    const step = this.#slotStep[local];
    const mmu = this.#cpu.hw.mmu;
    if (this.#slotGen[local] === 0) {
      this.#map(local, slot);
    } else if (step === 1) {
      mmu.writeVirt32((va + 8) as VirtAddr, mmu.readVirt32((va + 8) as VirtAddr) + 1); // touch
      this.#slotStep[local] = 2;
    } else if (step === 2) {
      space.protect(va, PAGE_NO_EXECUTE); // read-only: every CPU's TLB must forget RW
      this.#count("protects");
      try {
        mmu.writeVirt32((va + 8) as VirtAddr, 0);
        this.#problem("staleReads", `slot ${slot}: a write went through after its protect`);
      } catch (error) {
        if (!isPageFault(error)) throw error;
      }
      this.#slotStep[local] = 3;
    } else {
      this.#unmap(local, slot);
      this.#map(local, slot);
    }
  }

  /**
   * Unmaps a slot: the mapping's reference goes, and once unmap returns
   * (after every CPU's TLB dropped the page) the slot records the
   * completion; the frame, still held here, is marked dead for any stale
   * reader before this CPU drops its own reference.
   */
  #unmap(local: number, slot: number): void {
    const gen = this.#slotGen[local];
    this.#space!.unmap(slotVa(slot));
    Atomics.store(this.#words, SLOT_WORD + 2 * slot + 1, gen);
    const page = this.#slotPages[local]!;
    const word = page.frame * (PAGE_SIZE_4K / 4);
    this.#i32[word] = DEAD_TAG;
    this.#i32[word + 1] = 0;
    page[Symbol.dispose]();
    this.#slotPages[local] = undefined;
    this.#slotGen[local] = 0;
    this.#count("unmaps");
  }

  #map(local: number, slot: number): void {
    const gen = this.#nextGen++;
    const page = Page.alloc(this.#cpu.frames, { zeroed: false });
    const word = page.frame * (PAGE_SIZE_4K / 4);
    const i32 = this.#i32;
    i32[word] = SLOT_TAG ^ slot;
    i32[word + 1] = gen;
    i32[word + 2] = 0;
    i32[word + 3] = this.#cpu.index;
    // The mapping takes one reference; this CPU keeps another until the unmap completed.
    const kept = page.clone();
    try {
      this.#space!.mapPage(slotVa(slot), page, PAGE_WRITABLE | PAGE_NO_EXECUTE);
    } catch (error) {
      page[Symbol.dispose]();
      kept[Symbol.dispose]();
      throw error;
    }
    this.#slotPages[local] = kept;
    Atomics.store(this.#words, SLOT_WORD + 2 * slot, gen);
    this.#slotGen[local] = gen;
    this.#slotStep[local] = 1;
    this.#count("maps");
  }

  /** Reads random slots of every CPU: a value older than its slot's completed unmap is stale. */
  #readSlots(): void {
    const mmu = this.#cpu.hw.mmu;
    const slots = this.#block.slotCount;
    const words = this.#words;
    for (let i = 0; i < READS_PER_STEP; i++) {
      const slot = this.#rng.next() % slots;
      const done = Atomics.load(words, SLOT_WORD + 2 * slot + 1);
      const va = slotVa(slot);
      let tag: number;
      let gen: number;
      try {
        tag = mmu.readVirt32(va) | 0;
        gen = mmu.readVirt32((va + 4) as VirtAddr) | 0;
      } catch (error) {
        if (!isPageFault(error)) throw error;
        this.#count("readFaults");
        continue;
      }
      this.#count("reads");
      if (tag !== (SLOT_TAG ^ slot) || gen <= done) {
        this.#problem(
          "staleReads",
          `slot ${slot} at ${formatVirtAddr(va)}: read ${
            tag === (SLOT_TAG ^ slot) ? `generation ${gen}` : `tag 0x${(tag >>> 0).toString(16)}`
          } after the unmap of generation ${done} completed`,
        );
      }
    }
  }

  // -------------------------------------------------------------------------

  #count(counter: StressCounter, delta = 1): void {
    this.#words[this.#results + STRESS_COUNTERS.indexOf(counter)] += delta;
  }

  #problem(counter: StressCounter, text: string): void {
    this.#count(counter);
    this.#block.recordProblem(this.#cpu.index, `CPU ${this.#cpu.index}: ${text}`);
  }

  /** An error: counted, the first kept, and this CPU stops its loop. */
  #fail(error: unknown): void {
    const isDoubleHandOut = error instanceof Error &&
      (error as { code?: string }).code === "FrameInUse";
    this.#problem(
      isDoubleHandOut ? "doubleHandOuts" : "errors",
      error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    );
    this.#isStopped = true;
  }

  /** Gives everything back: slots, frames, heap blocks; the kernel's space; the frame cache. */
  #finish(): void {
    const cpu = this.#cpu;
    const steps: (() => void)[] = [];
    const space = this.#space;
    if (space !== undefined) {
      this.#slotGen.forEach((gen, local) => {
        if (gen === 0) return;
        steps.push(() => this.#unmap(local, cpu.index * this.#block.slotsPerCpu + local));
      });
    }
    for (const { frame } of this.#frames) steps.push(() => cpu.frames.free(frame as FrameNumber));
    for (const { va } of this.#blocks) steps.push(() => cpu.heap.kfree(va));
    if (space !== undefined) steps.push(() => cpu.leave());
    steps.push(() => cpu.drainFrameCache());
    for (const step of steps) {
      try {
        step();
      } catch (error) {
        this.#problem(
          "errors",
          `cleaning up: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
    this.#frames.length = 0;
    this.#blocks.length = 0;
  }
}

/** The virtual address of slot `slot`. */
function slotVa(slot: number): VirtAddr {
  return (STRESS_SLOT_BASE + slot * PAGE_SIZE_4K) as VirtAddr;
}

/** Whether `error` is a page fault (raw from the MMU, or the kernel's unhandled one). */
function isPageFault(error: unknown): boolean {
  return error instanceof PageFault || error instanceof UnhandledPageFault;
}
