/**
 * The kernel's driver for the CMOS real-time clock: it reads and sets the
 * date and time through ports 0x70/0x71 only, with the algorithm of
 * `docs/cmos_rtc.md` (wait for UIP = 0, read twice until both reads agree,
 * convert from BCD and 12-hour form as status B says).
 *
 * @module
 */

import { type Hardware, hex, KernelError } from "../../sdk/mod.ts";
import {
  fromBcd,
  HOURS_PM,
  REG_CENTURY,
  REG_DAY,
  REG_HOURS,
  REG_MINUTES,
  REG_MONTH,
  REG_SECONDS,
  REG_STATUS_A,
  REG_STATUS_B,
  REG_STATUS_C,
  REG_STATUS_D,
  REG_WEEKDAY,
  REG_YEAR,
  RTC_INDEX_PORT,
  STATUS_A_UIP,
  STATUS_B_24_HOUR,
  STATUS_B_BINARY,
  STATUS_B_SET,
  STATUS_D_VRT,
  toBcd,
} from "./mc146818.ts";

/** The data port, after the index port. */
const RTC_DATA_PORT = RTC_INDEX_PORT + 1;
/** Keep NMIs masked while the index is set (bit 7 of port 0x70), as Linux does. */
const INDEX_NMI_MASK = 0x80;
/** How many times to wait for UIP to fall before giving up. */
const MAX_UIP_WAITS = 10_000;
/** How many double reads to try before giving up (each normally agrees at once). */
const MAX_READ_ATTEMPTS = 8;
const WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/** A date and time read from the RTC, in binary, 24-hour form. */
export interface RtcTime {
  /** Full year, e.g. 2000. */
  readonly year: number;
  /** 1..12. */
  readonly month: number;
  /** 1..31. */
  readonly day: number;
  /** 0..23. */
  readonly hours: number;
  /** 0..59. */
  readonly minutes: number;
  /** 0..59. */
  readonly seconds: number;
  /** 1..7, 1 = Sunday. */
  readonly weekday: number;
}

/** Reads one RTC register. */
export function readRegister(hw: Hardware, index: number): number {
  hw.cpu.outb(RTC_INDEX_PORT, INDEX_NMI_MASK | index);
  return hw.cpu.inb(RTC_DATA_PORT);
}

/** Writes one RTC register. */
export function writeRegister(hw: Hardware, index: number, value: number): void {
  hw.cpu.outb(RTC_INDEX_PORT, INDEX_NMI_MASK | index);
  hw.cpu.outb(RTC_DATA_PORT, value);
}

/**
 * Checks that an RTC answers: status D says the time is valid, and status A
 * does not read as an undriven bus.
 *
 * @throws {KernelError} `DeviceNotFound` if no working RTC is there.
 */
export function probeRtc(hw: Hardware): void {
  const statusA = readRegister(hw, REG_STATUS_A);
  const statusD = readRegister(hw, REG_STATUS_D);
  if (statusA === 0xff || (statusD & STATUS_D_VRT) === 0) {
    throw new KernelError(
      "DeviceNotFound",
      `No CMOS RTC at ${hex(RTC_INDEX_PORT)}: status A ${hex(statusA)}, status D ${hex(statusD)}`,
    );
  }
}

/**
 * Reads the date and time: waits for UIP = 0 and reads until two reads agree.
 *
 * @throws {KernelError} `DeviceNotFound` if UIP never falls or the reads never agree.
 */
export function readRtcTime(hw: Hardware): RtcTime {
  let previous = readRawTime(hw);
  for (let attempt = 0; attempt < MAX_READ_ATTEMPTS; attempt++) {
    const current = readRawTime(hw);
    if (current.every((value, i) => value === previous[i])) return decodeTime(hw, current);
    previous = current;
  }
  throw new KernelError("DeviceNotFound", "CMOS RTC: two reads of the time never agreed");
}

/**
 * Sets the date and time: SET = 1 (no updates), the registers in the form
 * status B selects, SET = 0.
 *
 * @param time The new date and time; `year` from 2000 to 2099.
 */
export function writeRtcTime(hw: Hardware, time: RtcTime): void {
  const statusB = readRegister(hw, REG_STATUS_B);
  const isBinary = (statusB & STATUS_B_BINARY) !== 0;
  const encode = (value: number) => isBinary ? value : toBcd(value);
  const hours = (statusB & STATUS_B_24_HOUR) !== 0
    ? encode(time.hours)
    : encode(time.hours % 12 === 0 ? 12 : time.hours % 12) | (time.hours >= 12 ? HOURS_PM : 0);
  writeRegister(hw, REG_STATUS_B, statusB | STATUS_B_SET);
  writeRegister(hw, REG_SECONDS, encode(time.seconds));
  writeRegister(hw, REG_MINUTES, encode(time.minutes));
  writeRegister(hw, REG_HOURS, hours);
  writeRegister(hw, REG_WEEKDAY, encode(time.weekday));
  writeRegister(hw, REG_DAY, encode(time.day));
  writeRegister(hw, REG_MONTH, encode(time.month));
  writeRegister(hw, REG_YEAR, encode(time.year % 100));
  writeRegister(hw, REG_CENTURY, toBcd(Math.floor(time.year / 100)));
  writeRegister(hw, REG_STATUS_B, statusB & ~STATUS_B_SET);
}

/** The weekday (1 = Sunday) of a date, for setting the clock. */
export function weekdayOf(year: number, month: number, day: number): number {
  return new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 1;
}

/** `2000-01-01 00:00:00 UTC (Saturday)`. */
export function formatRtcTime(time: RtcTime): string {
  const two = (value: number) => String(value).padStart(2, "0");
  return `${time.year}-${two(time.month)}-${two(time.day)} ` +
    `${two(time.hours)}:${two(time.minutes)}:${two(time.seconds)} UTC ` +
    `(${WEEKDAYS[time.weekday - 1] ?? `weekday ${time.weekday}`})`;
}

/** Status B in words: `BCD, 24-hour`. */
export function describeDataMode(hw: Hardware): string {
  const statusB = readRegister(hw, REG_STATUS_B);
  return `${(statusB & STATUS_B_BINARY) !== 0 ? "binary" : "BCD"}, ` +
    `${(statusB & STATUS_B_24_HOUR) !== 0 ? "24-hour" : "12-hour"}`;
}

/** Status registers A to D, raw, for the `rtc` command. */
export function readStatusRegisters(hw: Hardware): number[] {
  // Status C is cleared by reading it: read it last, once.
  return [REG_STATUS_A, REG_STATUS_B, REG_STATUS_D, REG_STATUS_C].map((r) => readRegister(hw, r));
}

/** Seconds, minutes, hours, weekday, day, month, year, century: raw, after UIP = 0. */
function readRawTime(hw: Hardware): number[] {
  waitForUpdateToEnd(hw);
  return [
    REG_SECONDS,
    REG_MINUTES,
    REG_HOURS,
    REG_WEEKDAY,
    REG_DAY,
    REG_MONTH,
    REG_YEAR,
    REG_CENTURY,
  ].map((r) => readRegister(hw, r));
}

/**
 * Waits until UIP reads 0: then no update starts for 244 µs. Between polls
 * the CPU halts until the next interrupt (a timer tick), so time passes on
 * the virtual clock too.
 */
function waitForUpdateToEnd(hw: Hardware): void {
  for (let waits = 0; waits < MAX_UIP_WAITS; waits++) {
    if ((readRegister(hw, REG_STATUS_A) & STATUS_A_UIP) === 0) return;
    hw.waitForInterrupt();
  }
  throw new KernelError("DeviceNotFound", "CMOS RTC: the update in progress never ended");
}

function decodeTime(hw: Hardware, raw: readonly number[]): RtcTime {
  const statusB = readRegister(hw, REG_STATUS_B);
  const isBinary = (statusB & STATUS_B_BINARY) !== 0;
  const decode = (value: number) => isBinary ? value : fromBcd(value);
  const [seconds, minutes, rawHours, weekday, day, month, year, century] = raw;
  const hours = (statusB & STATUS_B_24_HOUR) !== 0
    ? decode(rawHours)
    : (decode(rawHours & ~HOURS_PM) % 12) + ((rawHours & HOURS_PM) !== 0 ? 12 : 0);
  return {
    year: fromBcd(century) * 100 + decode(year),
    month: decode(month),
    day: decode(day),
    hours,
    minutes: decode(minutes),
    seconds: decode(seconds),
    weekday: decode(weekday),
  };
}
