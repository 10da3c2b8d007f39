/**
 * A device model of the PC's CMOS real-time clock, the Motorola MC146818,
 * at ports 0x70 (index) and 0x71 (data). The facts it follows are in
 * `docs/cmos_rtc.md`: the register map, BCD or binary and 12- or 24-hour
 * forms per status B, the once-a-second update cycle with its calendar
 * carries, UIP (244 µs before the update, 1984 µs during it), SET, and the
 * divider reset.
 *
 * The registers hold raw bytes in whatever form they were written or last
 * updated in, as the chip's do; the update cycle decodes them in the
 * current form, adds a second and encodes them back. Time comes from the
 * machine's clock and is caught up lazily on each access.
 *
 * @module
 */

import type { AccessWidth, Clock, PortDevice } from "../../sdk/mod.ts";

/** The index port; the data port is the next one (docs/cmos_rtc.md, "Ports"). */
export const RTC_INDEX_PORT = 0x70;
/** Ports the RTC claims: index and data. */
export const RTC_PORT_COUNT = 2;

// Register indexes (docs/cmos_rtc.md, "Registers").
export const REG_SECONDS = 0x00;
export const REG_MINUTES = 0x02;
export const REG_HOURS = 0x04;
export const REG_WEEKDAY = 0x06;
export const REG_DAY = 0x07;
export const REG_MONTH = 0x08;
export const REG_YEAR = 0x09;
export const REG_STATUS_A = 0x0a;
export const REG_STATUS_B = 0x0b;
export const REG_STATUS_C = 0x0c;
export const REG_STATUS_D = 0x0d;
/** The century, in BCD, on PC/AT-compatible machines. */
export const REG_CENTURY = 0x32;
/** Registers and CMOS RAM bytes: the index has 7 bits. */
const REGISTER_COUNT = 0x80;

// Status A, B and D bits.
export const STATUS_A_UIP = 0x80;
const STATUS_A_DIVIDER_MASK = 0x70;
/** DV = 010: the 32.768 kHz time base. */
const DIVIDER_32K = 0x20;
/** DV = 11x: the divider chain is held in reset. */
const DIVIDER_RESET = 0x60;
export const STATUS_B_SET = 0x80;
export const STATUS_B_BINARY = 0x04;
export const STATUS_B_24_HOUR = 0x02;
export const STATUS_D_VRT = 0x80;
/** Bit 7 of the hours in 12-hour form: PM. */
export const HOURS_PM = 0x80;
/** Status A and B as a PC BIOS leaves them: 32.768 kHz, 1024 Hz; BCD, 24-hour. */
const POWER_ON_STATUS_A = 0x26;
const POWER_ON_STATUS_B = STATUS_B_24_HOUR;

const NS_PER_SECOND = 1_000_000_000;
/** UIP rises this long before an update cycle (32.768 kHz time base). */
const UIP_LEAD_NS = 244_000;
/** An update cycle lasts this long (32.768 kHz time base). */
const UPDATE_CYCLE_NS = 1_984_000;
/** After the divider leaves reset, the first update cycle begins half a second later. */
const FIRST_UPDATE_AFTER_RESET_NS = NS_PER_SECOND / 2;
/** What an undriven read returns (the index port is write-only). */
const OPEN_BUS = 0xff;

/** How to build the RTC. */
export interface Mc146818Options {
  /** The machine's clock (nanoseconds since power-on). */
  readonly clock: Clock;
  /** The date and time (UTC) the registers hold at power-on. */
  readonly startTime: Date;
}

/** The MC146818 real-time clock. */
export class Mc146818Rtc implements PortDevice {
  /** Name in bus messages. */
  readonly name = "mc146818-rtc";
  /** The registers and CMOS RAM, raw. */
  readonly #registers = new Uint8Array(REGISTER_COUNT);
  readonly #clock: Clock;
  #index = 0;
  /** When the next update cycle starts, in clock nanoseconds. */
  #nextUpdateNs: number;

  /**
   * Powers the RTC on holding `options.startTime`, in BCD and 24-hour form.
   *
   * @param options The clock and the start time.
   */
  constructor(options: Mc146818Options) {
    this.#clock = options.clock;
    this.#nextUpdateNs = options.clock.nowNs() + NS_PER_SECOND;
    const r = this.#registers;
    const t = options.startTime;
    r[REG_STATUS_A] = POWER_ON_STATUS_A;
    r[REG_STATUS_B] = POWER_ON_STATUS_B;
    r[REG_STATUS_D] = STATUS_D_VRT;
    r[REG_SECONDS] = toBcd(t.getUTCSeconds());
    r[REG_MINUTES] = toBcd(t.getUTCMinutes());
    r[REG_HOURS] = toBcd(t.getUTCHours());
    r[REG_WEEKDAY] = toBcd(t.getUTCDay() + 1);
    r[REG_DAY] = toBcd(t.getUTCDate());
    r[REG_MONTH] = toBcd(t.getUTCMonth() + 1);
    r[REG_YEAR] = toBcd(t.getUTCFullYear() % 100);
    r[REG_CENTURY] = toBcd(Math.floor(t.getUTCFullYear() / 100));
  }

  /**
   * IN from 0x70 (open bus) or 0x71 (the selected register).
   *
   * @param offset 0 for the index port, 1 for the data port.
   * @param _width The access width; the RTC is an 8-bit device.
   * @returns The byte read.
   */
  portRead(offset: number, _width: AccessWidth): number {
    if (offset === 0) return OPEN_BUS;
    this.#catchUp();
    const index = this.#index;
    if (index === REG_STATUS_A) {
      return (this.#registers[REG_STATUS_A] & ~STATUS_A_UIP) |
        (this.#isUpdating() ? STATUS_A_UIP : 0);
    }
    const value = this.#registers[index];
    if (index === REG_STATUS_C) this.#registers[REG_STATUS_C] = 0; // reading clears the flags
    return value;
  }

  /**
   * OUT to 0x70 (select a register; bit 7 is the NMI mask, not the RTC's) or
   * 0x71 (write the selected register).
   *
   * @param offset 0 for the index port, 1 for the data port.
   * @param value The byte written.
   * @param _width The access width; the RTC is an 8-bit device.
   */
  portWrite(offset: number, value: number, _width: AccessWidth): void {
    const byte = value & 0xff;
    if (offset === 0) {
      this.#index = byte & (REGISTER_COUNT - 1);
      return;
    }
    this.#catchUp();
    const r = this.#registers;
    switch (this.#index) {
      case REG_STATUS_A: {
        const wasReset = this.#isDividerInReset();
        r[REG_STATUS_A] = byte & ~STATUS_A_UIP; // UIP is read-only
        if (wasReset && !this.#isDividerInReset()) {
          this.#nextUpdateNs = this.#clock.nowNs() + FIRST_UPDATE_AFTER_RESET_NS;
        }
        return;
      }
      case REG_STATUS_C:
      case REG_STATUS_D:
        return; // read-only
      default:
        r[this.#index] = byte;
    }
  }

  /** Whether UIP reads 1 now: an update cycle is due within 244 µs or running. */
  #isUpdating(): boolean {
    if (!this.#isCounting()) return false;
    return this.#clock.nowNs() >= this.#nextUpdateNs - UIP_LEAD_NS;
  }

  /** Whether update cycles run: the 32.768 kHz divider, not SET. */
  #isCounting(): boolean {
    return (this.#registers[REG_STATUS_A] & STATUS_A_DIVIDER_MASK) === DIVIDER_32K &&
      (this.#registers[REG_STATUS_B] & STATUS_B_SET) === 0;
  }

  #isDividerInReset(): boolean {
    return (this.#registers[REG_STATUS_A] & DIVIDER_RESET) === DIVIDER_RESET;
  }

  /** Runs every update cycle that has ended since the last access. */
  #catchUp(): void {
    const nowNs = this.#clock.nowNs();
    if (this.#isDividerInReset()) {
      this.#nextUpdateNs = Math.max(this.#nextUpdateNs, nowNs + FIRST_UPDATE_AFTER_RESET_NS);
      return;
    }
    while (nowNs >= this.#nextUpdateNs + UPDATE_CYCLE_NS) {
      if (this.#isCounting()) this.#addOneSecond();
      this.#nextUpdateNs += NS_PER_SECOND;
    }
  }

  /** The update cycle: one second more, carried through the calendar, in the current form. */
  #addOneSecond(): void {
    const r = this.#registers;
    const isBinary = (r[REG_STATUS_B] & STATUS_B_BINARY) !== 0;
    const is24Hour = (r[REG_STATUS_B] & STATUS_B_24_HOUR) !== 0;
    const decode = (value: number) => isBinary ? value : fromBcd(value);
    const encode = (value: number) => isBinary ? value : toBcd(value);
    let seconds = decode(r[REG_SECONDS]) + 1;
    let minutes = decode(r[REG_MINUTES]);
    let hours = is24Hour
      ? decode(r[REG_HOURS])
      : hours24(decode(r[REG_HOURS] & ~HOURS_PM), r[REG_HOURS]);
    let weekday = decode(r[REG_WEEKDAY]);
    let day = decode(r[REG_DAY]);
    let month = decode(r[REG_MONTH]);
    let year = decode(r[REG_YEAR]);
    if (seconds >= 60) {
      seconds = 0;
      if (++minutes >= 60) {
        minutes = 0;
        if (++hours >= 24) {
          hours = 0;
          weekday = weekday >= 7 ? 1 : weekday + 1;
          if (++day > daysInMonth(month, year)) {
            day = 1;
            if (++month > 12) {
              month = 1;
              year = (year + 1) % 100;
            }
          }
        }
      }
    }
    r[REG_SECONDS] = encode(seconds);
    r[REG_MINUTES] = encode(minutes);
    r[REG_HOURS] = is24Hour
      ? encode(hours)
      : encode(hours % 12 === 0 ? 12 : hours % 12) | (hours >= 12 ? HOURS_PM : 0);
    r[REG_WEEKDAY] = encode(weekday);
    r[REG_DAY] = encode(day);
    r[REG_MONTH] = encode(month);
    r[REG_YEAR] = encode(year);
  }
}

/** 0..23 from a 12-hour register: `hour12` is 1..12, PM in bit 7 of `raw`. */
function hours24(hour12: number, raw: number): number {
  return (hour12 % 12) + ((raw & HOURS_PM) !== 0 ? 12 : 0);
}

/** Days in `month` (1..12) of a two-digit `year`: the chip's leap rule is "a multiple of 4". */
function daysInMonth(month: number, year: number): number {
  if (month === 2) return year % 4 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** 59 -> 0x59. */
export function toBcd(value: number): number {
  return ((Math.floor(value / 10) % 10) << 4) | (value % 10);
}

/** 0x59 -> 59. */
export function fromBcd(value: number): number {
  return (value >> 4) * 10 + (value & 0x0f);
}
