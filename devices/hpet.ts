/**
 * A High Precision Event Timer block (IA-PC HPET specification 1.0a; the
 * facts used are in docs/hpet.md): a 64-bit main counter at 100 MHz and
 * three comparators that interrupt through I/O APIC pins.
 *
 * Registers (1 KiB at 0xFED00000 on this PC), each 64 bits wide and
 * accessed as two 32-bit halves (low half at the offset, high at +4):
 *
 * | offset | register |
 * |---|---|
 * | 0x000 | General Capabilities and ID: REV_ID 1 (7:0), NUM_TIM_CAP 2 (12:8: three timers), COUNT_SIZE_CAP (13: 64-bit), LEG_RT_CAP 0 (15), VENDOR_ID 0x8086 (31:16), COUNTER_CLK_PERIOD in femtoseconds (63:32) |
 * | 0x010 | General Configuration: ENABLE_CNF (0) starts the main counter |
 * | 0x020 | General Interrupt Status: bit n is timer n's level interrupt, cleared by writing 1 |
 * | 0x0F0 | Main Counter Value |
 * | 0x100 + 0x20n | Timer n Configuration and Capabilities |
 * | 0x108 + 0x20n | Timer n Comparator Value |
 * | 0x110 + 0x20n | Timer n FSB Interrupt Route (FSB delivery not supported: reads 0) |
 *
 * Timer configuration: Tn_INT_TYPE_CNF (1: level), Tn_INT_ENB_CNF (2),
 * Tn_TYPE_CNF (3: periodic), Tn_PER_INT_CAP (4, read only, 1),
 * Tn_SIZE_CAP (5, read only: 64-bit), Tn_VAL_SET_CNF (6), Tn_32MODE_CNF (8),
 * Tn_INT_ROUTE_CNF (13:9: the I/O APIC pin); Tn_INT_ROUTE_CAP (63:32) lists
 * the pins allowed, 20 to 23 here (as on Intel ICH chipsets). A route outside
 * the capability is not taken (it reads back unchanged).
 *
 * When the main counter reaches a comparator the timer interrupts: an edge
 * (a pulse on its pin) or a level (pin held and the status bit set until
 * software writes 1 to it). A periodic timer then adds its period to the
 * comparator. In periodic mode a comparator write sets the period, and also
 * the comparator when Tn_VAL_SET_CNF is set, which the write clears (QEMU's
 * reading of the specification). A one-shot 64-bit comparator fires once; in
 * 32-bit mode only the low halves compare, so it fires again every 2^32
 * counts. Everything is derived from machine time, as in the PIT model.
 *
 * Not modelled (documented, deliberate): legacy replacement routing
 * (LEG_RT_CAP is 0) and FSB (MSI-style) delivery.
 *
 * @module
 */

import {
  type AccessWidth,
  type Clock,
  type ClockedDevice,
  cyclesAtNs,
  type MmioDevice,
  nsAtCycles,
} from "../hal/mod.ts";

/** Bytes of register space (the specification's 1 KiB block). */
export const HPET_MMIO_BYTES = 0x400;
/** Comparators in the block. */
export const HPET_TIMER_COUNT = 3;
/** Main counter period: 10 ns (100 MHz), as QEMU's HPET. */
export const HPET_PERIOD_FS = 10_000_000;
/** The main counter's frequency, 10^15 / period. */
export const HPET_FREQUENCY_HZ = 1e15 / HPET_PERIOD_FS;
/** The I/O APIC pins a comparator may be routed to: 20 to 23. */
export const HPET_ROUTE_CAPABILITY = 0x00f0_0000;
/** The PCI vendor ID in the capabilities register: Intel. */
export const HPET_VENDOR_ID = 0x8086;

/** Offset of General Capabilities and ID. */
export const HPET_CAPABILITIES = 0x000;
/** Offset of General Configuration. */
export const HPET_CONFIGURATION = 0x010;
/** Offset of General Interrupt Status. */
export const HPET_INTERRUPT_STATUS = 0x020;
/** Offset of the Main Counter Value. */
export const HPET_MAIN_COUNTER = 0x0f0;
/** Offset of timer 0's Configuration and Capabilities; timer n adds 0x20 × n. */
export const HPET_TIMER_CONFIGURATION = 0x100;
/** Offset of timer 0's Comparator Value. */
export const HPET_TIMER_COMPARATOR = 0x108;
/** Offset of timer 0's FSB Interrupt Route. */
export const HPET_TIMER_FSB_ROUTE = 0x110;
/** Bytes between timers' register groups. */
export const HPET_TIMER_STRIDE = 0x20;

/** General Configuration bit 0: the main counter runs and timers may interrupt. */
export const HPET_ENABLE_CNF = 1 << 0;
/** Timer bit 1: level-triggered interrupt. */
export const HPET_TN_INT_TYPE_LEVEL = 1 << 1;
/** Timer bit 2: interrupt enabled. */
export const HPET_TN_INT_ENB = 1 << 2;
/** Timer bit 3: periodic mode. */
export const HPET_TN_TYPE_PERIODIC = 1 << 3;
/** Timer bit 4 (read only): periodic mode supported. */
export const HPET_TN_PER_INT_CAP = 1 << 4;
/** Timer bit 5 (read only): 64-bit comparator. */
export const HPET_TN_SIZE_CAP = 1 << 5;
/** Timer bit 6: the next comparator write sets the accumulator of a periodic timer. */
export const HPET_TN_VAL_SET = 1 << 6;
/** Timer bit 8: force 32-bit mode. */
export const HPET_TN_32MODE = 1 << 8;
/** Timer bits 13:9: the I/O APIC pin. */
export const HPET_TN_INT_ROUTE_SHIFT = 9;

/** General Capabilities low half: REV_ID 1, three timers, 64-bit counter, Intel. */
const CAPABILITIES_LOW = 0x01 | ((HPET_TIMER_COUNT - 1) << 8) | (1 << 13) |
  (HPET_VENDOR_ID << 16);
const ROUTE_MASK = 0b11111;
const TIMER_WRITABLE = HPET_TN_INT_TYPE_LEVEL | HPET_TN_INT_ENB | HPET_TN_TYPE_PERIODIC |
  HPET_TN_VAL_SET | HPET_TN_32MODE | (ROUTE_MASK << HPET_TN_INT_ROUTE_SHIFT);
const TIMER_READ_ONLY = HPET_TN_PER_INT_CAP | HPET_TN_SIZE_CAP;
const TWO_32 = 2 ** 32;
const TWO_53 = 2 ** 53;

/** Where comparator interrupts go: the I/O APIC's input pins. */
export interface HpetInterruptPins {
  /** Drives input `pin` high or low. */
  setPinLevel(pin: number, isHigh: boolean): void;
}

/** Options of {@linkcode Hpet}. */
export interface HpetOptions {
  /** Machine time. */
  readonly clock: Clock;
  /** The I/O APIC pins comparators are routed to. */
  readonly pins: HpetInterruptPins;
}

/** The HPET: main counter, three comparators, interrupt routing and status. */
export class Hpet implements MmioDevice, ClockedDevice {
  /** Name used in messages. */
  readonly name = "hpet";
  /** Interrupts raised per timer. */
  readonly interruptsRaised: Uint32Array = new Uint32Array(HPET_TIMER_COUNT);
  readonly #clock: Clock;
  readonly #pins: HpetInterruptPins;
  #isEnabled = false;
  /** The counter at #startNs (while enabled) or its frozen value (halted), as halves. */
  #counterHigh = 0;
  #counterLow = 0;
  #startNs = 0;
  #status = 0;
  readonly #config = new Uint32Array(HPET_TIMER_COUNT);
  readonly #comparatorHigh = new Uint32Array(HPET_TIMER_COUNT);
  readonly #comparatorLow = new Uint32Array(HPET_TIMER_COUNT);
  readonly #periodHigh = new Uint32Array(HPET_TIMER_COUNT);
  readonly #periodLow = new Uint32Array(HPET_TIMER_COUNT);
  /** Results of #add and #counterNow (no tuple is allocated per access). */
  #sumHigh = 0;
  #sumLow = 0;
  /** Ticks since #startNs at which each comparator next matches (Infinity: never). */
  readonly #matchTick = new Float64Array(HPET_TIMER_COUNT).fill(Infinity);

  /** Creates a halted HPET: counter 0, comparators all ones, interrupts off. */
  constructor(options: HpetOptions) {
    this.#clock = options.clock;
    this.#pins = options.pins;
    for (let timer = 0; timer < HPET_TIMER_COUNT; timer++) {
      this.#config[timer] = TIMER_READ_ONLY;
      this.#comparatorHigh[timer] = 0xffff_ffff;
      this.#comparatorLow[timer] = 0xffff_ffff;
    }
  }

  /** The main counter now, as a number (exact below 2^53). */
  mainCounter(): number {
    this.advanceTo(this.#clock.nowNs());
    this.#counterNow(this.#clock.nowNs());
    return this.#sumHigh * TWO_32 + this.#sumLow;
  }

  mmioRead(offsetBytes: number, width: AccessWidth): number {
    const nowNs = this.#clock.nowNs();
    this.advanceTo(nowNs);
    const aligned = offsetBytes & ~3;
    const value = this.#readRegister(aligned, nowNs) >>> 0;
    const shift = (offsetBytes & 3) * 8;
    return width === 4 && shift === 0
      ? value
      : (value >>> shift) & (width === 4 ? 0xffff_ffff : (1 << (width * 8)) - 1);
  }

  mmioWrite(offsetBytes: number, value: number, width: AccessWidth): void {
    const nowNs = this.#clock.nowNs();
    this.advanceTo(nowNs);
    if (width !== 4 || (offsetBytes & 3) !== 0) return; // registers take aligned 32-bit halves
    this.#writeRegister(offsetBytes, value >>> 0, nowNs);
  }

  /** Processes every comparator match up to `nowNs`, raising the interrupts due. */
  advanceTo(nowNs: number): void {
    if (!this.#isEnabled) return;
    const ticks = this.#ticksAt(nowNs);
    for (let timer = 0; timer < HPET_TIMER_COUNT; timer++) {
      const matchTick = this.#matchTick[timer];
      if (ticks < matchTick) continue;
      this.#afterMatch(timer, matchTick, ticks);
      this.#interrupt(timer);
    }
  }

  nextEventNs(): number {
    if (!this.#isEnabled) return Infinity;
    let nextTick = Infinity;
    for (let timer = 0; timer < HPET_TIMER_COUNT; timer++) {
      if (this.#routedPin(timer) >= 0 && (this.#config[timer] & HPET_TN_INT_ENB) !== 0) {
        nextTick = Math.min(nextTick, this.#matchTick[timer]);
      }
    }
    return nextTick === Infinity
      ? Infinity
      : this.#startNs + nsAtCycles(nextTick, HPET_FREQUENCY_HZ, "ceil");
  }

  #readRegister(offset: number, nowNs: number): number {
    switch (offset) {
      case HPET_CAPABILITIES:
        return CAPABILITIES_LOW;
      case HPET_CAPABILITIES + 4:
        return HPET_PERIOD_FS;
      case HPET_CONFIGURATION:
        return this.#isEnabled ? HPET_ENABLE_CNF : 0;
      case HPET_INTERRUPT_STATUS:
        return this.#status;
      case HPET_MAIN_COUNTER:
        this.#counterNow(nowNs);
        return this.#sumLow;
      case HPET_MAIN_COUNTER + 4:
        this.#counterNow(nowNs);
        return this.#sumHigh;
    }
    const timer = this.#timerOf(offset);
    if (timer < 0) return 0;
    switch (offset - timer * HPET_TIMER_STRIDE) {
      case HPET_TIMER_CONFIGURATION:
        return this.#config[timer];
      case HPET_TIMER_CONFIGURATION + 4:
        return HPET_ROUTE_CAPABILITY;
      case HPET_TIMER_COMPARATOR:
        return this.#comparatorLow[timer];
      case HPET_TIMER_COMPARATOR + 4:
        return (this.#config[timer] & HPET_TN_32MODE) !== 0 ? 0 : this.#comparatorHigh[timer];
      default:
        return 0; // FSB route and reserved space
    }
  }

  #writeRegister(offset: number, value: number, nowNs: number): void {
    switch (offset) {
      case HPET_CONFIGURATION:
        this.#setEnabled((value & HPET_ENABLE_CNF) !== 0, nowNs);
        return;
      case HPET_INTERRUPT_STATUS:
        this.#clearStatus(value);
        return;
      case HPET_MAIN_COUNTER:
      case HPET_MAIN_COUNTER + 4: {
        // Software should halt the counter first; a write while it runs takes effect now.
        this.#counterNow(nowNs);
        this.#counterHigh = offset === HPET_MAIN_COUNTER ? this.#sumHigh : value;
        this.#counterLow = offset === HPET_MAIN_COUNTER ? value : this.#sumLow;
        this.#startNs = nowNs;
        this.#scheduleAll();
        return;
      }
    }
    const timer = this.#timerOf(offset);
    if (timer < 0) return;
    switch (offset - timer * HPET_TIMER_STRIDE) {
      case HPET_TIMER_CONFIGURATION:
        this.#writeTimerConfig(timer, value);
        return;
      case HPET_TIMER_COMPARATOR:
        this.#writeComparator(timer, value, "low");
        return;
      case HPET_TIMER_COMPARATOR + 4:
        this.#writeComparator(timer, value, "high");
    }
  }

  #setEnabled(isEnabled: boolean, nowNs: number): void {
    if (isEnabled === this.#isEnabled) return;
    this.#counterNow(nowNs);
    this.#counterHigh = this.#sumHigh;
    this.#counterLow = this.#sumLow;
    this.#startNs = nowNs;
    this.#isEnabled = isEnabled;
    this.#scheduleAll();
  }

  #writeTimerConfig(timer: number, value: number): void {
    const old = this.#config[timer];
    let next = (old & ~TIMER_WRITABLE) | (value & TIMER_WRITABLE) | TIMER_READ_ONLY;
    const route = (value >>> HPET_TN_INT_ROUTE_SHIFT) & ROUTE_MASK;
    if ((HPET_ROUTE_CAPABILITY & (1 << route)) === 0) {
      // An unsupported route is not taken.
      next = (next & ~(ROUTE_MASK << HPET_TN_INT_ROUTE_SHIFT)) |
        (old & (ROUTE_MASK << HPET_TN_INT_ROUTE_SHIFT));
    }
    const wasLevelActive = (this.#status & (1 << timer)) !== 0;
    const staysLevelActive = (next & HPET_TN_INT_TYPE_LEVEL) !== 0 &&
      (next & HPET_TN_INT_ENB) !== 0 &&
      ((next ^ old) & (ROUTE_MASK << HPET_TN_INT_ROUTE_SHIFT)) === 0;
    if (wasLevelActive && !staysLevelActive) this.#clearStatus(1 << timer);
    this.#config[timer] = next >>> 0;
    if ((next & HPET_TN_32MODE) !== 0) this.#comparatorHigh[timer] = 0;
    this.#schedule(timer);
  }

  #writeComparator(timer: number, value: number, half: "low" | "high"): void {
    const config = this.#config[timer];
    const is32Bit = (config & HPET_TN_32MODE) !== 0;
    if (half === "high" && is32Bit) return;
    const isPeriodic = (config & HPET_TN_TYPE_PERIODIC) !== 0;
    if (!isPeriodic || (config & HPET_TN_VAL_SET) !== 0) {
      if (half === "low") this.#comparatorLow[timer] = value;
      else this.#comparatorHigh[timer] = value;
    }
    if (isPeriodic) {
      if (half === "low") this.#periodLow[timer] = value;
      else this.#periodHigh[timer] = value;
    }
    this.#config[timer] = config & ~HPET_TN_VAL_SET;
    this.#schedule(timer);
  }

  #clearStatus(bits: number): void {
    for (let timer = 0; timer < HPET_TIMER_COUNT; timer++) {
      const bit = 1 << timer;
      if ((bits & bit) === 0 || (this.#status & bit) === 0) continue;
      this.#status &= ~bit;
      const pin = this.#routedPin(timer);
      if (pin >= 0) this.#pins.setPinLevel(pin, false);
    }
  }

  /** After the match at `matchTick` (≤ `ticks`): the comparator and the next match. */
  #afterMatch(timer: number, matchTick: number, ticks: number): void {
    const config = this.#config[timer];
    const is32Bit = (config & HPET_TN_32MODE) !== 0;
    if ((config & HPET_TN_TYPE_PERIODIC) === 0) {
      // One-shot: the next match is when the counter wraps round to the comparator.
      this.#matchTick[timer] = is32Bit ? matchTick + TWO_32 : Infinity;
      return;
    }
    const period = is32Bit
      ? this.#periodLow[timer]
      : this.#periodHigh[timer] * TWO_32 + this.#periodLow[timer];
    if (period === 0 || period >= TWO_53) {
      this.#matchTick[timer] = Infinity;
      return;
    }
    const matches = Math.floor((ticks - matchTick) / period) + 1;
    this.#add(this.#comparatorHigh[timer], this.#comparatorLow[timer], matches * period);
    this.#comparatorHigh[timer] = is32Bit ? 0 : this.#sumHigh;
    this.#comparatorLow[timer] = this.#sumLow;
    this.#matchTick[timer] = matchTick + matches * period;
  }

  #interrupt(timer: number): void {
    const config = this.#config[timer];
    const pin = this.#routedPin(timer);
    if ((config & HPET_TN_INT_ENB) === 0 || pin < 0) return;
    this.interruptsRaised[timer]++;
    if ((config & HPET_TN_INT_TYPE_LEVEL) !== 0) {
      this.#status |= 1 << timer;
      this.#pins.setPinLevel(pin, true);
    } else {
      this.#pins.setPinLevel(pin, true);
      this.#pins.setPinLevel(pin, false);
    }
  }

  #routedPin(timer: number): number {
    const route = (this.#config[timer] >>> HPET_TN_INT_ROUTE_SHIFT) & ROUTE_MASK;
    return (HPET_ROUTE_CAPABILITY & (1 << route)) !== 0 ? route : -1;
  }

  #scheduleAll(): void {
    for (let timer = 0; timer < HPET_TIMER_COUNT; timer++) this.#schedule(timer);
  }

  /** When the counter next equals timer `timer`'s comparator, in ticks since #startNs. */
  #schedule(timer: number): void {
    if (!this.#isEnabled) {
      this.#matchTick[timer] = Infinity;
      return;
    }
    const ticks = this.#ticksAt(this.#clock.nowNs());
    this.#add(this.#counterHigh, this.#counterLow, ticks);
    const high = this.#sumHigh;
    const low = this.#sumLow;
    const is32Bit = (this.#config[timer] & HPET_TN_32MODE) !== 0;
    const lowDistance = (this.#comparatorLow[timer] - low + TWO_32) % TWO_32;
    let distance: number;
    if (is32Bit) {
      distance = lowDistance === 0 ? TWO_32 : lowDistance;
    } else {
      const borrow = this.#comparatorLow[timer] < low ? 1 : 0;
      const highDistance = (this.#comparatorHigh[timer] - high - borrow + TWO_32 * 2) % TWO_32;
      distance = highDistance * TWO_32 + lowDistance;
      // Equal now: the counter has to wrap all the way round, which never happens here.
      if (distance === 0 || distance >= TWO_53 - ticks) distance = Infinity;
    }
    this.#matchTick[timer] = ticks + distance;
  }

  #ticksAt(nowNs: number): number {
    return cyclesAtNs(Math.max(0, nowNs - this.#startNs), HPET_FREQUENCY_HZ);
  }

  /** Sets #sumHigh:#sumLow to the main counter at `nowNs`. */
  #counterNow(nowNs: number): void {
    this.#add(this.#counterHigh, this.#counterLow, this.#isEnabled ? this.#ticksAt(nowNs) : 0);
  }

  /** Sets #sumHigh:#sumLow to (high:low + addend) mod 2^64; `addend` is a safe integer >= 0. */
  #add(high: number, low: number, addend: number): void {
    const lowSum = low + (addend % TWO_32);
    const carry = lowSum >= TWO_32 ? 1 : 0;
    this.#sumHigh = (high + Math.floor(addend / TWO_32) + carry) % TWO_32;
    this.#sumLow = lowSum % TWO_32;
  }

  #timerOf(offset: number): number {
    if (offset < HPET_TIMER_CONFIGURATION) return -1;
    const timer = Math.floor((offset - HPET_TIMER_CONFIGURATION) / HPET_TIMER_STRIDE);
    return timer < HPET_TIMER_COUNT ? timer : -1;
  }
}
