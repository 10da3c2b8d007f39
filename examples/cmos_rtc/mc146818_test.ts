import { type ClockedDevice, Machine, PhysicalMemory, VirtualClock } from "../../sdk/mod.ts";
import { KernelError } from "../../kernel/mod.ts";
import { assertEquals, assertThrows } from "../../testing/mod.ts";
import {
  Mc146818Rtc,
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
  RTC_PORT_COUNT,
} from "./mc146818.ts";
import { readRtcTime, writeRtcTime } from "./rtc_driver.ts";

const SECOND_NS = 1_000_000_000;
const US = 1000;

function rtc(start = new Date(Date.UTC(2000, 0, 1, 0, 0, 0))) {
  const clock = new VirtualClock();
  const device = new Mc146818Rtc({ clock, startTime: start });
  const read = (index: number) => {
    device.portWrite(0, index, 1);
    return device.portRead(1, 1);
  };
  const write = (index: number, value: number) => {
    device.portWrite(0, index, 1);
    device.portWrite(1, value, 1);
  };
  const time = () =>
    [REG_YEAR, REG_MONTH, REG_DAY, REG_HOURS, REG_MINUTES, REG_SECONDS, REG_WEEKDAY].map(read);
  /** Moves the clock to `ns` after power-on. */
  const at = (ns: number) => clock.advanceNs(ns - clock.nowNs());
  return { device, clock, read, write, time, at };
}

Deno.test("MC146818 powers on holding its start time in BCD, 24-hour, with the BIOS's status A and B", () => {
  const { read, time } = rtc(new Date(Date.UTC(2026, 4, 4, 12, 34, 56)));
  assertEquals(time(), [0x26, 0x05, 0x04, 0x12, 0x34, 0x56, 0x02]); // a Monday
  assertEquals(read(REG_CENTURY), 0x20);
  assertEquals(read(REG_STATUS_A), 0x26);
  assertEquals(read(REG_STATUS_B), 0x02);
  assertEquals(read(REG_STATUS_D), 0x80);
});

Deno.test("MC146818 raises UIP 244 µs before each update and keeps it for the 1984 µs cycle", () => {
  const { read, at } = rtc();
  const uip = () => read(REG_STATUS_A) & 0x80;
  at(SECOND_NS - 245 * US);
  assertEquals([uip(), read(REG_SECONDS)], [0, 0x00]);
  at(SECOND_NS - 244 * US);
  assertEquals([uip(), read(REG_SECONDS)], [0x80, 0x00]);
  at(SECOND_NS + 1983 * US);
  assertEquals([uip(), read(REG_SECONDS)], [0x80, 0x00]);
  at(SECOND_NS + 1984 * US);
  assertEquals([uip(), read(REG_SECONDS)], [0, 0x01]);
  at(61 * SECOND_NS + 2 * 1984 * US);
  assertEquals([read(REG_MINUTES), read(REG_SECONDS)], [0x01, 0x01]);
});

Deno.test("MC146818 carries seconds through the calendar: year end, leap and common Februaries", () => {
  const cases: [Date, number[]][] = [
    [new Date(Date.UTC(1999, 11, 31, 23, 59, 59)), [0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x07]],
    [new Date(Date.UTC(2024, 1, 28, 23, 59, 59)), [0x24, 0x02, 0x29, 0x00, 0x00, 0x00, 0x05]],
    [new Date(Date.UTC(2023, 1, 28, 23, 59, 59)), [0x23, 0x03, 0x01, 0x00, 0x00, 0x00, 0x04]],
    [new Date(Date.UTC(2026, 3, 30, 23, 59, 59)), [0x26, 0x05, 0x01, 0x00, 0x00, 0x00, 0x06]],
  ];
  for (const [start, expected] of cases) {
    const { time, at } = rtc(start);
    at(SECOND_NS + 1984 * US);
    assertEquals(time(), expected, start.toISOString());
  }
});

Deno.test("MC146818 counts in binary when status B's DM is set, and in 12-hour form", () => {
  const { write, time, at } = rtc();
  write(REG_STATUS_B, 0x80 | 0x04); // SET, binary, 12-hour
  [[REG_YEAR, 99], [REG_MONTH, 12], [REG_DAY, 31], [REG_HOURS, 0x80 | 11], [REG_MINUTES, 59], [
    REG_SECONDS,
    59,
  ], [REG_WEEKDAY, 7]].forEach(([index, value]) => write(index, value));
  write(REG_STATUS_B, 0x04); // SET cleared
  at(SECOND_NS + 1984 * US);
  assertEquals(time(), [0, 1, 1, 12, 0, 0, 1]); // 12 AM (midnight), no PM bit, Sunday
  write(REG_STATUS_B, 0x80);
  write(REG_HOURS, 0x11); // 11 AM, BCD 12-hour
  write(REG_MINUTES, 0x59);
  write(REG_SECONDS, 0x59);
  write(REG_STATUS_B, 0x00);
  at(2 * SECOND_NS + 1984 * US);
  assertEquals(time().slice(3, 6), [0x92, 0x00, 0x00]); // 12 PM: noon
});

Deno.test("MC146818 stops updating while SET is 1 (and UIP reads 0), and while the divider is in reset", () => {
  const { read, write, at } = rtc();
  write(REG_STATUS_B, 0x82);
  at(SECOND_NS - 100 * US);
  assertEquals(read(REG_STATUS_A) & 0x80, 0);
  at(5 * SECOND_NS);
  assertEquals(read(REG_SECONDS), 0x00);
  write(REG_STATUS_B, 0x02);
  write(REG_STATUS_A, 0x66); // divider in reset
  at(10 * SECOND_NS);
  assertEquals(read(REG_SECONDS), 0x00);
  write(REG_STATUS_A, 0x26); // released: the first update comes half a second later
  at(10.5 * SECOND_NS + 1983 * US);
  assertEquals(read(REG_SECONDS), 0x00);
  at(10.5 * SECOND_NS + 1984 * US);
  assertEquals(read(REG_SECONDS), 0x01);
});

Deno.test("MC146818 keeps UIP read-only, clears status C on read, ignores writes to C and D", () => {
  const { device, read, write } = rtc();
  write(REG_STATUS_A, 0xa6);
  assertEquals(read(REG_STATUS_A), 0x26);
  write(REG_STATUS_D, 0);
  assertEquals(read(REG_STATUS_D), 0x80);
  write(REG_STATUS_C, 0xf0);
  assertEquals(read(REG_STATUS_C), 0);
  assertEquals(device.portRead(0, 1), 0xff, "the index port reads as open bus");
  device.portWrite(0, 0x80 | REG_YEAR, 1); // NMI-mask bit and the index
  assertEquals(device.portRead(1, 1), 0x00);
  write(0x40, 0x5a);
  assertEquals(read(0x40), 0x5a, "CMOS RAM keeps what is written");
});

/** A machine with the RTC on its ports and a 1 ms timed event, so HLT lets virtual time pass. */
function machineWithRtc() {
  const clock = new VirtualClock();
  const machine = new Machine(PhysicalMemory.contiguous(16 * 2 ** 20), clock);
  const device = new Mc146818Rtc({ clock, startTime: new Date(Date.UTC(2000, 0, 1)) });
  machine.bus.claimPorts(RTC_INDEX_PORT, RTC_PORT_COUNT, device);
  const tick: ClockedDevice = {
    advanceTo() {},
    nextEventNs: () => clock.nowNs() + 1_000_000,
  };
  return { machine, clock, tick };
}

Deno.test("the RTC driver waits out an update in progress and reads a consistent time", () => {
  const { machine, clock, tick } = machineWithRtc();
  machine.addTimedDevice(tick);
  clock.advanceNs(SECOND_NS - 100 * US); // UIP is up
  const time = readRtcTime(machine);
  assertEquals(time, {
    year: 2000,
    month: 1,
    day: 1,
    hours: 0,
    minutes: 0,
    seconds: 1,
    weekday: 7,
  });
  writeRtcTime(machine, {
    year: 2099,
    month: 12,
    day: 31,
    hours: 23,
    minutes: 59,
    seconds: 59,
    weekday: 5,
  });
  clock.advanceNs(SECOND_NS);
  // The year register wraps to 00; the century byte is the BIOS's, not the chip's, and stays 20.
  const wrapped = readRtcTime(machine);
  assertEquals([wrapped.year, wrapped.month, wrapped.day, wrapped.hours], [2000, 1, 1, 0]);
});

Deno.test("the RTC driver gives up with DeviceNotFound when nothing can end an update", () => {
  const { machine, clock } = machineWithRtc();
  clock.advanceNs(SECOND_NS - 100 * US); // UIP up, and no timed device to move time on
  assertEquals(assertThrows(() => readRtcTime(machine), KernelError).code, "DeviceNotFound");
});
