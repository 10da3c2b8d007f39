/**
 * The wiring of a machine of several CPUs that is not RAM: one small
 * SharedArrayBuffer that the board (the main thread) and every CPU Worker
 * map, holding what hardware keeps in flip-flops and wires (docs/smp.md,
 * "The machine"):
 *
 * ```
 * word 0      halt-all: 1 once the machine stops every CPU (shutdown)
 * word 1      doorbell: bumped by a CPU that posted a device request, and by
 *             interrupts for CPU 0; the board waits on it when idle
 * word 2      CPU count
 * per CPU i, 8 words at 8 + 8 * i:
 *   [0] wake: bumped (and notified) when the CPU has something to do: an
 *       interrupt accepted, an NMI, a start-up message, halt-all
 *   [1] run state: 0 reset, 1 waiting for SIPI (after INIT), 2 running,
 *       3 stopped, 4 exited (its Worker has ended)
 *   [2] start-up vector of the SIPI that started it
 *   [3] NMI pending (1 until the CPU takes it)
 *   [4] INIT messages received  [5] start-up messages received
 *   [6] NMIs received  [7] powered: 1 once its Worker has built the CPU
 * ```
 *
 * Everything is read and written with `Atomics`; a waiter sleeps on its
 * wake word with `Atomics.wait` and a bound, never on a busy loop.
 *
 * @module
 */

/** The most CPUs a machine may have (`--smp` 1 to 16). */
export const MAX_CPUS = 16;

const HALT_ALL = 0;
const DOORBELL = 1;
const CPU_COUNT = 2;
const PER_CPU_BASE = 8;
const PER_CPU_WORDS = 8;
const C_WAKE = 0;
const C_RUN_STATE = 1;
const C_START_VECTOR = 2;
const C_NMI_PENDING = 3;
const C_INITS = 4;
const C_SIPIS = 5;
const C_NMIS = 6;
const C_POWERED = 7;
const CONTROL_WORDS = PER_CPU_BASE + PER_CPU_WORDS * MAX_CPUS;

/** Where a CPU is in its life (the run-state word). */
export type CpuRunState = "reset" | "wait-for-sipi" | "running" | "stopped" | "exited";

const RUN_STATES: readonly CpuRunState[] = [
  "reset",
  "wait-for-sipi",
  "running",
  "stopped",
  "exited",
];

/** The control block of a machine of several CPUs; see the module documentation. */
export class SmpControl {
  /** The shared buffer: post it to every CPU Worker. */
  readonly buffer: SharedArrayBuffer;
  /** How many CPUs the machine has. */
  readonly cpuCount: number;
  readonly #words: Int32Array;

  /**
   * Creates the control block of a machine of `cpuCount` CPUs, or maps the
   * existing one in `buffer` (a CPU Worker's view).
   *
   * @throws {RangeError} For a CPU count outside 1..16.
   */
  constructor(cpuCount: number, buffer?: SharedArrayBuffer) {
    if (!Number.isInteger(cpuCount) || cpuCount < 1 || cpuCount > MAX_CPUS) {
      throw new RangeError(`Invalid CPU count ${cpuCount}: expected 1 to ${MAX_CPUS}`);
    }
    this.cpuCount = cpuCount;
    this.buffer = buffer ?? new SharedArrayBuffer(CONTROL_WORDS * 4);
    this.#words = new Int32Array(this.buffer, 0, CONTROL_WORDS);
    if (buffer === undefined) this.#words[CPU_COUNT] = cpuCount;
  }

  /** Whether the machine has stopped every CPU. */
  get isHaltingAll(): boolean {
    return Atomics.load(this.#words, HALT_ALL) !== 0;
  }

  /** Stops every CPU: each stops at its next instruction boundary or wait. */
  haltAll(): void {
    Atomics.store(this.#words, HALT_ALL, 1);
    for (let cpu = 0; cpu < this.cpuCount; cpu++) this.wake(cpu);
    this.ringDoorbell();
  }

  /** The doorbell's value now (wait for it to change with {@linkcode waitForDoorbell}). */
  get doorbell(): number {
    return Atomics.load(this.#words, DOORBELL);
  }

  /** Rings the board's doorbell: a device request is posted (or CPU 0 has an interrupt). */
  ringDoorbell(): void {
    Atomics.add(this.#words, DOORBELL, 1);
    Atomics.notify(this.#words, DOORBELL);
  }

  /**
   * Resolves when the doorbell differs from `seen` (at once if it does), on
   * the event loop: the board's wait while its thread has nothing else to do.
   */
  async waitForDoorbell(seen: number): Promise<void> {
    const result = Atomics.waitAsync(this.#words, DOORBELL, seen);
    if (result.async) await result.value;
  }

  /** Wakes CPU `cpu` from a wait on its wake word. */
  wake(cpu: number): void {
    const index = this.#cpuWord(cpu, C_WAKE);
    Atomics.add(this.#words, index, 1);
    Atomics.notify(this.#words, index);
    if (cpu === 0) this.ringDoorbell();
  }

  /** CPU `cpu`'s wake word now (pass it to {@linkcode sleep}). */
  wakeCount(cpu: number): number {
    return Atomics.load(this.#words, this.#cpuWord(cpu, C_WAKE));
  }

  /**
   * Sleeps until CPU `cpu`'s wake word differs from `seen`, at most
   * `timeoutMs`: the CPU's HLT and its waits, on a Worker.
   */
  sleep(cpu: number, seen: number, timeoutMs: number): void {
    Atomics.wait(this.#words, this.#cpuWord(cpu, C_WAKE), seen, Math.max(0, timeoutMs));
  }

  /** CPU `cpu`'s run state. */
  runState(cpu: number): CpuRunState {
    return RUN_STATES[Atomics.load(this.#words, this.#cpuWord(cpu, C_RUN_STATE))];
  }

  /** Sets CPU `cpu`'s run state and wakes it. */
  setRunState(cpu: number, state: CpuRunState): void {
    Atomics.store(this.#words, this.#cpuWord(cpu, C_RUN_STATE), RUN_STATES.indexOf(state));
    this.wake(cpu);
  }

  /** The start-up vector CPU `cpu` was started with. */
  startVector(cpu: number): number {
    return Atomics.load(this.#words, this.#cpuWord(cpu, C_START_VECTOR));
  }

  /**
   * An INIT message for CPU `cpu`: a CPU in reset (or waiting already) now
   * waits for a start-up message; a running CPU ignores it (the simulator does
   * not reset a running CPU).
   */
  receiveInit(cpu: number): void {
    Atomics.add(this.#words, this.#cpuWord(cpu, C_INITS), 1);
    const state = this.#cpuWord(cpu, C_RUN_STATE);
    Atomics.compareExchange(this.#words, state, 0, RUN_STATES.indexOf("wait-for-sipi"));
  }

  /**
   * A start-up message with `vector` for CPU `cpu`: a CPU waiting for one
   * starts at physical address `vector * 4096`; any other ignores it (the
   * second SIPI of the INIT-SIPI-SIPI sequence, as on hardware).
   *
   * @returns Whether the CPU started.
   */
  receiveStartup(cpu: number, vector: number): boolean {
    Atomics.add(this.#words, this.#cpuWord(cpu, C_SIPIS), 1);
    const state = this.#cpuWord(cpu, C_RUN_STATE);
    if (Atomics.load(this.#words, state) !== RUN_STATES.indexOf("wait-for-sipi")) return false;
    Atomics.store(this.#words, this.#cpuWord(cpu, C_START_VECTOR), vector);
    const started = Atomics.compareExchange(
      this.#words,
      state,
      RUN_STATES.indexOf("wait-for-sipi"),
      RUN_STATES.indexOf("running"),
    ) === RUN_STATES.indexOf("wait-for-sipi");
    this.wake(cpu);
    return started;
  }

  /** An NMI for CPU `cpu`: pending until it takes it at an instruction boundary. */
  receiveNmi(cpu: number): void {
    Atomics.add(this.#words, this.#cpuWord(cpu, C_NMIS), 1);
    Atomics.store(this.#words, this.#cpuWord(cpu, C_NMI_PENDING), 1);
    this.wake(cpu);
  }

  /** Takes CPU `cpu`'s pending NMI: true once per NMI received. */
  takeNmi(cpu: number): boolean {
    const index = this.#cpuWord(cpu, C_NMI_PENDING);
    return Atomics.load(this.#words, index) !== 0 && Atomics.exchange(this.#words, index, 0) !== 0;
  }

  /** Marks CPU `cpu` powered: its Worker built the CPU and waits in reset. */
  setPowered(cpu: number): void {
    Atomics.store(this.#words, this.#cpuWord(cpu, C_POWERED), 1);
  }

  /** Whether CPU `cpu` is powered (see {@linkcode setPowered}). */
  isPowered(cpu: number): boolean {
    return Atomics.load(this.#words, this.#cpuWord(cpu, C_POWERED)) !== 0;
  }

  /** How many INIT, start-up and NMI messages CPU `cpu` received. */
  messageCounts(cpu: number): { inits: number; startups: number; nmis: number } {
    return {
      inits: Atomics.load(this.#words, this.#cpuWord(cpu, C_INITS)),
      startups: Atomics.load(this.#words, this.#cpuWord(cpu, C_SIPIS)),
      nmis: Atomics.load(this.#words, this.#cpuWord(cpu, C_NMIS)),
    };
  }

  #cpuWord(cpu: number, word: number): number {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.cpuCount) {
      throw new RangeError(`Invalid CPU ${cpu}: the machine has CPUs 0 to ${this.cpuCount - 1}`);
    }
    return PER_CPU_BASE + PER_CPU_WORDS * cpu + word;
  }
}
