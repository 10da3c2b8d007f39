/**
 * The Intel 8254 programmable interval timer (PIT) of the PC: three 16-bit
 * down-counters clocked at 1.193182 MHz on ports 0x40-0x43, with counter 0's
 * output wired to IRQ 0.
 *
 * Register interface (Intel 8254 datasheet, "Control Word Format", "Read-Back
 * Command", "Status Byte"):
 *
 * | port | read                        | write                          |
 * | ---- | --------------------------- | ------------------------------ |
 * | 0x40 | counter 0                   | counter 0 count register       |
 * | 0x41 | counter 1                   | counter 1 count register       |
 * | 0x42 | counter 2                   | counter 2 count register       |
 * | 0x43 | nothing (floating: 0xFF)    | control word / latch / read-back |
 *
 * The model is time-derived, not clocked: each counter remembers the input
 * clock cycle ("tick") at which its count was loaded, and its value, output
 * and interrupts are computed from the ticks elapsed since, so a machine may
 * skip any amount of time at the cost of a few divisions and no allocation.
 * Ticks come from a {@linkcode Clock}: port accesses first catch up with the
 * clock, and the machine calls {@linkcode Pit8254.advanceTo} as time passes.
 *
 * Faithful to the datasheet:
 * - the control word (counter select, access mode, mode, BCD), mode numbers
 *   6 and 7 as aliases of 2 and 3, and a count of 0 meaning 2^16 (binary) or
 *   10^4 (BCD);
 * - a written count is loaded into the counting element on the next CLK pulse,
 *   which does not decrement it, so mode 0 fires N + 1 cycles after the write;
 * - mode 0 (interrupt on terminal count): OUT low until the count reaches 0,
 *   then high until reprogrammed; the counter wraps and keeps counting;
 *   writing the first byte of a two-byte count stops counting;
 * - mode 2 (rate generator): OUT low for one cycle when the count reaches 1,
 *   then reload, a period of N cycles; a count written while counting is
 *   loaded at the end of the current period;
 * - mode 3 (square wave): the count decrements by 2, OUT is high for ceil(N/2)
 *   cycles and low for floor(N/2) (odd counts load N - 1, as the datasheet
 *   describes); a count written while counting is loaded at the end of the
 *   current half-cycle;
 * - mode 4 (software-triggered strobe): OUT low for one cycle N + 1 cycles
 *   after the count is written;
 * - the counter latch command (a second latch before the value is read is
 *   ignored), the read-back command (status before count), the status byte
 *   (OUT, null count, the programmed mode bits) and separate read and write
 *   byte sequencing for lobyte/hibyte access.
 *
 * Approximations (documented, deliberate):
 * - GATE inputs are not modelled; they read as tied high, as counter 0's and
 *   1's are on a PC. Modes 1 and 5 wait for a GATE rising edge that never
 *   comes: their OUT stays high and they never count. Counter 2's gate on
 *   port 0x61 (the PC speaker) is not modelled.
 * - A count of 1 is illegal in modes 2 and 3 (the datasheet's minimum is 2);
 *   the model then raises an IRQ 0 edge every cycle, so software asking for the
 *   maximum rate still gets ticks, while the status byte shows OUT high.
 * - Only the rising edges of OUT caused by counting raise IRQ 0; an OUT change
 *   caused directly by writing a control word raises none.
 * - If several rising edges fall between two calls of `advanceTo`, IRQ 0 gets
 *   one edge, as the 8259's request latch holds only one; every edge is still
 *   counted in {@linkcode Pit8254.ticksElapsed}.
 * - The power-up state is undefined on the chip; here every counter starts
 *   idle in mode 0 (lobyte/hibyte, binary) with no count, raising nothing until
 *   software programs it. Invalid BCD digits count as their binary value.
 * - The 8254 is an 8-bit device: a wider port access uses only the addressed
 *   port and the low byte of the value.
 *
 * @module
 */

import {
  type AccessWidth,
  type Clock,
  type ClockedDevice,
  cyclesAtNs,
  type InterruptLines,
  IRQ_TIMER,
  nsAtCycles,
  type PortDevice,
} from "../hal/mod.ts";

/** The PIT's input clock on a PC: 105/88 MHz ÷ 12 = 1,193,182 Hz (rounded). */
export const PIT_INPUT_FREQUENCY_HZ = 1_193_182;
/**
 * Number of ports the PIT claims from its base, `PIT_PORT_BASE` (0x40, in
 * hal/memory_layout.ts): counters 0-2 and the control word.
 */
export const PIT_PORT_COUNT = 4;
/** Number of counters on the chip. */
export const PIT_COUNTER_COUNT = 3;

// Port offsets from PIT_PORT_BASE.
const CONTROL_OFFSET = 3;

// Control word (datasheet "Control Word Format"): SC1 SC0 RW1 RW0 M2 M1 M0 BCD.
const SELECT_SHIFT = 6;
const SELECT_READ_BACK = 3;
const ACCESS_SHIFT = 4;
const ACCESS_LATCH = 0; // RW 00: counter latch command
const ACCESS_LSB = 1; // RW 01: least significant byte only
const ACCESS_MSB = 2; // RW 10: most significant byte only
// RW 11: least significant byte, then most significant byte
const MODE_SHIFT = 1;
const CONTROL_BCD = 1 << 0;
/** The low six control bits (RW, M, BCD), which the status byte echoes. */
const CONTROL_MODE_BITS = 0x3f;
/** Power-up control bits chosen by the model: lobyte/hibyte, mode 0, binary. */
const RESET_CONTROL = 0x30;

// Read-back command (datasheet "Read-Back Command Format"): 1 1 COUNT# STATUS# CNT2 CNT1 CNT0 0.
const READ_BACK_COUNT_N = 1 << 5; // 0 latches the count of each selected counter
const READ_BACK_STATUS_N = 1 << 4; // 0 latches the status of each selected counter
const READ_BACK_COUNTER0 = 1 << 1; // counter i is bit 1 + i

// Status byte (datasheet "Status Byte"): OUTPUT NULL-COUNT RW1 RW0 M2 M1 M0 BCD.
const STATUS_OUTPUT = 1 << 7;
const STATUS_NULL_COUNT = 1 << 6;

const BINARY_MODULUS = 0x10000;
const BCD_MODULUS = 10_000;
const BYTE_FLOATING = 0xff;

/** The saved state of one counter, plain JSON-able data. */
export interface PitCounterState {
  /** The low six bits of the last control word: RW1 RW0 M2 M1 M0 BCD. */
  control: number;
  /** The count register as last written (raw 16 bits, BCD digits in BCD mode). */
  countRegister: number;
  /** The least significant byte of a two-byte count whose second byte is awaited. */
  lsbWritten: number;
  /** Whether the next count write is the most significant byte. */
  isWritingMsb: boolean;
  /** Whether the next two-byte read returns the most significant byte. */
  isReadingMsb: boolean;
  /** The initial count N of the running sequence: 1..65536 (binary) or 1..10000 (BCD). */
  initialCount: number;
  /** The input tick at which N was loaded (may be virtual, see mode 3); null when not counting. */
  originTick: number | null;
  /** A count written while counting in mode 2 or 3, awaiting the end of the (half) period. */
  pendingCount: number;
  /** The tick at which `pendingCount` is loaded; null when none is pending. */
  pendingLoadTick: number | null;
  /** The origin tick `pendingCount` will count from. */
  pendingOriginTick: number;
  /** The counting element's value while it is not counting (in counting units). */
  heldValue: number;
  /** A latched count awaiting reads (raw 16 bits); null when none. */
  latchedCount: number | null;
  /** A latched status byte awaiting a read; null when none. */
  latchedStatus: number | null;
}

/** The saved state of the whole PIT, plain JSON-able data. */
export interface Pit8254State {
  /** Input clock cycles elapsed at the last advance. */
  tick: number;
  /** Rising edges of counter 0's output so far, coalesced ones included. */
  ticksElapsed: number;
  /** Counters 0, 1 and 2. */
  counters: PitCounterState[];
}

/** What a {@linkcode Pit8254} is wired to. */
export interface Pit8254Options {
  /** The machine clock the counters are derived from. */
  clock: Clock;
  /** The interrupt lines counter 0's output drives (IRQ 0). */
  pic: InterruptLines;
}

/**
 * An Intel 8254 PIT on ports 0x40-0x43, counter 0 driving IRQ 0.
 *
 * @example
 * ```ts
 * import { InterruptController, VirtualClock } from "../hal/mod.ts";
 * import { Pit8254 } from "./pit8254.ts";
 *
 * const clock = new VirtualClock();
 * const pic = new InterruptController();
 * const pit = new Pit8254({ clock, pic });
 * pit.portWrite(3, 0x34, 1); // counter 0, lobyte/hibyte, mode 2, binary
 * pit.portWrite(0, 0x9c, 1); // count 11932 (100 Hz): low byte
 * pit.portWrite(0, 0x2e, 1); // high byte
 * clock.advanceNs(20_000_000);
 * pit.advanceTo(clock.nowNs());
 * console.assert(pit.ticksElapsed === 1 && pic.pendingIrq() === 0);
 * ```
 */
export class Pit8254 implements PortDevice, ClockedDevice {
  /** Name used in bus messages. */
  readonly name = "pit8254@0x40";
  readonly #clock: Clock;
  readonly #pic: InterruptLines;
  readonly #counters: readonly [PitCounter, PitCounter, PitCounter];
  #tick: number;
  #ticksElapsed = 0;

  /** Creates a PIT whose time starts at the clock's current reading. */
  constructor(options: Pit8254Options) {
    this.#clock = options.clock;
    this.#pic = options.pic;
    this.#counters = [new PitCounter(), new PitCounter(), new PitCounter()];
    this.#tick = cyclesAtNs(options.clock.nowNs(), PIT_INPUT_FREQUENCY_HZ);
  }

  /**
   * Rising edges of counter 0's output (periods, or a mode 0 terminal count)
   * since the PIT was created, including edges coalesced into one IRQ.
   */
  get ticksElapsed(): number {
    return this.#ticksElapsed;
  }

  /**
   * Catches up with machine time `nowNs`: adopts counts due to be loaded and,
   * if counter 0's output rose once or more, raises one IRQ 0 edge (raise then
   * lower). Earlier or equal times are ignored. Allocates nothing.
   */
  advanceTo(nowNs: number): void {
    const tick = cyclesAtNs(nowNs, PIT_INPUT_FREQUENCY_HZ);
    if (tick <= this.#tick) return;
    const counters = this.#counters;
    const edgeCount = counters[0].risingEdgesUntil(this.#tick, tick);
    counters[1].settle(tick);
    counters[2].settle(tick);
    this.#tick = tick;
    if (edgeCount > 0) {
      this.#ticksElapsed += edgeCount;
      // The 8259 latches one request per rising edge; extra periods are coalesced.
      this.#pic.raise(IRQ_TIMER);
      this.#pic.lower(IRQ_TIMER);
    }
  }

  /**
   * The machine time of counter 0's next output rising edge (the next IRQ 0),
   * or `Infinity` if it will not rise again without being reprogrammed.
   */
  nextEventNs(): number {
    const tick = this.#counters[0].nextRisingEdgeTick(this.#tick);
    return tick === Infinity ? Infinity : nsAtCycles(tick, PIT_INPUT_FREQUENCY_HZ, "ceil");
  }

  /** Reads a counter (offsets 0-2); offset 3 is write-only and floats to 0xFF. */
  portRead(offset: number, _width: AccessWidth): number {
    this.advanceTo(this.#clock.nowNs());
    if (offset >= CONTROL_OFFSET) return BYTE_FLOATING;
    return this.#counters[offset].read(this.#tick);
  }

  /** Writes a counter's count (offsets 0-2) or a control word (offset 3). */
  portWrite(offset: number, value: number, _width: AccessWidth): void {
    this.advanceTo(this.#clock.nowNs());
    const byte = value & 0xff;
    if (offset < CONTROL_OFFSET) {
      this.#counters[offset].writeCount(byte, this.#tick);
      return;
    }
    if (offset !== CONTROL_OFFSET) return;
    const select = byte >> SELECT_SHIFT;
    if (select === SELECT_READ_BACK) {
      this.#readBack(byte);
      return;
    }
    const counter = this.#counters[select];
    if (((byte >> ACCESS_SHIFT) & 3) === ACCESS_LATCH) counter.latchCount(this.#tick);
    else counter.writeControl(byte, this.#tick);
  }

  /** A snapshot of the PIT's state as plain data (see {@linkcode restoreState}). */
  saveState(): Pit8254State {
    return {
      tick: this.#tick,
      ticksElapsed: this.#ticksElapsed,
      counters: this.#counters.map((counter) => counter.save()),
    };
  }

  /**
   * Restores a state from {@linkcode saveState}. The machine clock must be
   * restored to the snapshot's time too, or the PIT waits for it to catch up.
   *
   * @throws {TypeError} If `state` is not a well-formed PIT state; the PIT is
   * then unchanged.
   */
  restoreState(state: Pit8254State): void {
    checkState(state);
    this.#tick = state.tick;
    this.#ticksElapsed = state.ticksElapsed;
    this.#counters.forEach((counter, i) => counter.restore(state.counters[i]));
  }

  #readBack(command: number): void {
    for (let i = 0; i < PIT_COUNTER_COUNT; i++) {
      if ((command & (READ_BACK_COUNTER0 << i)) === 0) continue;
      const counter = this.#counters[i];
      if ((command & READ_BACK_COUNT_N) === 0) counter.latchCount(this.#tick);
      if ((command & READ_BACK_STATUS_N) === 0) counter.latchStatus(this.#tick);
    }
  }
}

/** The operating modes; control word modes 6 and 7 decode to 2 and 3. */
type PitMode = 0 | 1 | 2 | 3 | 4 | 5;

/**
 * One counter. Times are input ticks; `e = tick - originTick` is the number of
 * CLK pulses since the loading pulse, which holds the initial count N.
 */
class PitCounter implements PitCounterState {
  control = RESET_CONTROL;
  countRegister = 0;
  lsbWritten = 0;
  isWritingMsb = false;
  isReadingMsb = false;
  initialCount = BINARY_MODULUS;
  originTick: number | null = null;
  pendingCount = BINARY_MODULUS;
  pendingLoadTick: number | null = null;
  pendingOriginTick = 0;
  heldValue = 0;
  latchedCount: number | null = null;
  latchedStatus: number | null = null;
  #mode: PitMode = 0;

  /** Makes a count written mid-period take over once its load tick has come. */
  settle(tick: number): void {
    if (this.pendingLoadTick !== null && tick >= this.pendingLoadTick) {
      this.initialCount = this.pendingCount;
      this.originTick = this.pendingOriginTick;
      this.pendingLoadTick = null;
    }
  }

  /** Rising edges of OUT at ticks in (fromTick, toTick]; settles at `toTick`. */
  risingEdgesUntil(fromTick: number, toTick: number): number {
    const loadTick = this.pendingLoadTick;
    if (loadTick === null || toTick < loadTick) {
      return this.#edgesBetween(this.initialCount, this.originTick, fromTick, toTick);
    }
    // The old sequence owns its edge at the reload tick; the new one starts after it.
    const edgeCount = this.#edgesBetween(this.initialCount, this.originTick, fromTick, loadTick);
    this.settle(toTick);
    return edgeCount + this.#edgesBetween(this.initialCount, this.originTick, loadTick, toTick);
  }

  /** The first tick after `tick` at which OUT rises, or Infinity. */
  nextRisingEdgeTick(tick: number): number {
    const loadTick = this.pendingLoadTick;
    const next = this.#nextEdge(this.initialCount, this.originTick, tick);
    if (loadTick === null || next <= loadTick) return next;
    return this.#nextEdge(this.pendingCount, this.pendingOriginTick, Math.max(tick, loadTick));
  }

  /** Handles a control word for this counter (not a latch command). */
  writeControl(control: number, tick: number): void {
    this.heldValue = this.#value(tick);
    this.control = control & CONTROL_MODE_BITS;
    this.#mode = decodeMode(this.control);
    // Writing a control word resets the counter's control logic.
    this.originTick = null;
    this.pendingLoadTick = null;
    this.isWritingMsb = false;
    this.isReadingMsb = false;
    this.latchedCount = null;
    this.latchedStatus = null;
  }

  /** Counter latch command: freezes the count until it is read; a second latch is ignored. */
  latchCount(tick: number): void {
    if (this.latchedCount === null) this.latchedCount = this.#raw(tick);
  }

  /** Read-back status latch; a second latch before the read is ignored. */
  latchStatus(tick: number): void {
    if (this.latchedStatus !== null) return;
    const output = this.#output(tick) ? STATUS_OUTPUT : 0;
    const isNullCount = this.originTick === null || tick < this.originTick ||
      this.pendingLoadTick !== null;
    this.latchedStatus = output | (isNullCount ? STATUS_NULL_COUNT : 0) | this.control;
  }

  /** A read of the counter's port: latched status, then latched or live count bytes. */
  read(tick: number): number {
    const status = this.latchedStatus;
    if (status !== null) {
      this.latchedStatus = null;
      return status;
    }
    const word = this.latchedCount ?? this.#raw(tick);
    const access = this.#access();
    if (access === ACCESS_LSB) {
      this.latchedCount = null;
      return word & 0xff;
    }
    if (access === ACCESS_MSB) {
      this.latchedCount = null;
      return word >> 8;
    }
    if (!this.isReadingMsb) {
      this.isReadingMsb = true;
      return word & 0xff;
    }
    this.isReadingMsb = false;
    this.latchedCount = null;
    return word >> 8;
  }

  /** A write of the counter's port: one byte of the count, per the access mode. */
  writeCount(byte: number, tick: number): void {
    const access = this.#access();
    if (access === ACCESS_LSB) {
      this.#loadCount(byte, tick);
    } else if (access === ACCESS_MSB) {
      this.#loadCount(byte << 8, tick);
    } else if (!this.isWritingMsb) {
      this.lsbWritten = byte;
      this.isWritingMsb = true;
      if (this.#mode === 0) {
        // Mode 0: writing the first byte stops counting and sets OUT low.
        this.heldValue = this.#value(tick);
        this.originTick = null;
      }
    } else {
      this.isWritingMsb = false;
      this.#loadCount((byte << 8) | this.lsbWritten, tick);
    }
  }

  /** This counter's state as plain data. */
  save(): PitCounterState {
    return pickCounterState(this);
  }

  /** Restores a state from {@linkcode save} (already checked). */
  restore(state: PitCounterState): void {
    Object.assign(this, pickCounterState(state));
    this.#mode = decodeMode(this.control);
  }

  #access(): number {
    return (this.control >> ACCESS_SHIFT) & 3;
  }

  #modulus(): number {
    return (this.control & CONTROL_BCD) !== 0 ? BCD_MODULUS : BINARY_MODULUS;
  }

  /** A complete count was written to the count register. */
  #loadCount(countRegister: number, tick: number): void {
    this.countRegister = countRegister;
    const isBcd = (this.control & CONTROL_BCD) !== 0;
    const count = (isBcd ? bcdToNumber(countRegister) : countRegister) || this.#modulus();
    const mode = this.#mode;
    // Modes 1 and 5 load only on a GATE trigger, which never comes (see module doc).
    if (mode === 1 || mode === 5) return;
    const origin = this.originTick;
    if ((mode === 2 || mode === 3) && origin !== null && tick >= origin) {
      this.#scheduleReload(count, tick, origin);
      return;
    }
    // Loaded into the counting element on the next CLK pulse.
    this.heldValue = this.#value(tick);
    this.initialCount = count;
    this.originTick = tick + 1;
    this.pendingLoadTick = null;
  }

  /**
   * Modes 2 and 3 while counting: the new count is loaded at the end of the
   * current period (mode 2) or half-cycle (mode 3). A mode 3 count loaded at
   * the end of the high half starts in its low half, so its origin is placed
   * ceil(count / 2) ticks before the load tick.
   */
  #scheduleReload(count: number, tick: number, origin: number): void {
    const n = this.initialCount;
    const periodStart = tick - ((tick - origin) % n);
    const highTicks = Math.ceil(n / 2);
    if (this.#mode === 3 && tick - periodStart < highTicks) {
      this.pendingLoadTick = periodStart + highTicks;
      this.pendingOriginTick = this.pendingLoadTick - Math.ceil(count / 2);
    } else {
      this.pendingLoadTick = periodStart + n;
      this.pendingOriginTick = this.pendingLoadTick;
    }
    this.pendingCount = count;
  }

  /** Rising edges of OUT at ticks in (fromTick, toTick] for a sequence of count n. */
  #edgesBetween(n: number, origin: number | null, fromTick: number, toTick: number): number {
    if (origin === null) return 0;
    switch (this.#mode) {
      case 0:
        return isWithin(origin + n, fromTick, toTick);
      case 4:
        return isWithin(origin + n + 1, fromTick, toTick);
      case 2:
      case 3:
        // OUT rises at every origin + k·n, k >= 1 (mode 2: end of the low
        // pulse; mode 3: end of the low half).
        return periodsBy(n, origin, toTick) - periodsBy(n, origin, fromTick);
      default:
        return 0;
    }
  }

  /** The first rising edge after `tick` for a sequence of count n, or Infinity. */
  #nextEdge(n: number, origin: number | null, tick: number): number {
    if (origin === null) return Infinity;
    switch (this.#mode) {
      case 0:
        return origin + n > tick ? origin + n : Infinity;
      case 4:
        return origin + n + 1 > tick ? origin + n + 1 : Infinity;
      case 2:
      case 3:
        return origin + (periodsBy(n, origin, tick) + 1) * n;
      default:
        return Infinity;
    }
  }

  /** The counting element at `tick`, in counting units (0..modulus-1). */
  #value(tick: number): number {
    const origin = this.originTick;
    const mode = this.#mode;
    if (origin === null || tick < origin || mode === 1 || mode === 5) return this.heldValue;
    const n = this.initialCount;
    const m = this.#modulus();
    const e = tick - origin;
    if (mode === 2) return (n - (e % n)) % m;
    if (mode === 3) {
      const phase = e % n;
      if (n % 2 === 0) return (n - 2 * (phase % (n / 2))) % m;
      // Odd counts load N - 1 and decrement by 2 in both halves; the high half is one pulse longer.
      const highTicks = (n + 1) / 2;
      return (n - 1 - 2 * (phase < highTicks ? phase : phase - highTicks)) % m;
    }
    // Modes 0 and 4 wrap around after 0 and keep counting.
    return (((n - e) % m) + m) % m;
  }

  /** The counting element at `tick` as the 16 bits a read returns. */
  #raw(tick: number): number {
    const value = this.#value(tick);
    return (this.control & CONTROL_BCD) !== 0 ? numberToBcd(value) : value & 0xffff;
  }

  /** The level of OUT at `tick`. */
  #output(tick: number): boolean {
    const origin = this.originTick;
    const mode = this.#mode;
    if (origin === null || tick < origin) return mode !== 0;
    const n = this.initialCount;
    const e = tick - origin;
    switch (mode) {
      case 0:
        return e >= n;
      case 2:
        return n < 2 || e % n !== n - 1;
      case 3:
        return e % n < Math.ceil(n / 2);
      case 4:
        return e !== n;
      default:
        return true;
    }
  }
}

/** Whole periods of n ticks from `origin` completed by `tick` (0 before the first). */
function periodsBy(n: number, origin: number, tick: number): number {
  return tick <= origin ? 0 : Math.floor((tick - origin) / n);
}

function isWithin(edgeTick: number, fromTick: number, toTick: number): number {
  return edgeTick > fromTick && edgeTick <= toTick ? 1 : 0;
}

function decodeMode(control: number): PitMode {
  const m = (control >> MODE_SHIFT) & 7;
  // M2 is "don't care" for modes 2 and 3 (x10, x11).
  return ((m & 2) !== 0 ? m & 3 : m) as PitMode;
}

function bcdToNumber(bcd: number): number {
  return ((bcd >> 12) & 0xf) * 1000 + ((bcd >> 8) & 0xf) * 100 + ((bcd >> 4) & 0xf) * 10 +
    (bcd & 0xf);
}

function numberToBcd(value: number): number {
  return (Math.floor(value / 1000) % 10) << 12 | (Math.floor(value / 100) % 10) << 8 |
    (Math.floor(value / 10) % 10) << 4 | value % 10;
}

const COUNTER_NUMBER_FIELDS = [
  "control",
  "countRegister",
  "lsbWritten",
  "initialCount",
  "pendingCount",
  "pendingOriginTick",
  "heldValue",
] as const;
const COUNTER_NULLABLE_FIELDS = [
  "originTick",
  "pendingLoadTick",
  "latchedCount",
  "latchedStatus",
] as const;
const COUNTER_BOOLEAN_FIELDS = ["isWritingMsb", "isReadingMsb"] as const;

function pickCounterState(state: PitCounterState): PitCounterState {
  return {
    control: state.control,
    countRegister: state.countRegister,
    lsbWritten: state.lsbWritten,
    isWritingMsb: state.isWritingMsb,
    isReadingMsb: state.isReadingMsb,
    initialCount: state.initialCount,
    originTick: state.originTick,
    pendingCount: state.pendingCount,
    pendingLoadTick: state.pendingLoadTick,
    pendingOriginTick: state.pendingOriginTick,
    heldValue: state.heldValue,
    latchedCount: state.latchedCount,
    latchedStatus: state.latchedStatus,
  };
}

function checkState(state: Pit8254State): void {
  const fail = (what: string): never => {
    throw new TypeError(`Invalid PIT state: ${what}`);
  };
  if (typeof state !== "object" || state === null) fail("not an object");
  if (!Number.isSafeInteger(state.tick) || state.tick < 0) fail(`tick ${String(state.tick)}`);
  if (!Number.isSafeInteger(state.ticksElapsed) || state.ticksElapsed < 0) {
    fail(`ticksElapsed ${String(state.ticksElapsed)}`);
  }
  if (!Array.isArray(state.counters) || state.counters.length !== PIT_COUNTER_COUNT) {
    fail(`expected ${PIT_COUNTER_COUNT} counters`);
  }
  state.counters.forEach((counter, i) => {
    if (typeof counter !== "object" || counter === null) fail(`counter ${i} is not an object`);
    for (const field of COUNTER_NUMBER_FIELDS) {
      if (!Number.isSafeInteger(counter[field])) fail(`counter ${i} ${field}`);
    }
    for (const field of COUNTER_NULLABLE_FIELDS) {
      if (counter[field] !== null && !Number.isSafeInteger(counter[field])) {
        fail(`counter ${i} ${field}`);
      }
    }
    for (const field of COUNTER_BOOLEAN_FIELDS) {
      if (typeof counter[field] !== "boolean") fail(`counter ${i} ${field}`);
    }
    if (counter.initialCount < 1 || counter.initialCount > BINARY_MODULUS) {
      fail(`counter ${i} initialCount ${counter.initialCount}`);
    }
    if (counter.pendingCount < 1 || counter.pendingCount > BINARY_MODULUS) {
      fail(`counter ${i} pendingCount ${counter.pendingCount}`);
    }
  });
}
