/**
 * A user-written device for kernelsim: the PC's CMOS real-time clock
 * (MC146818) at ports 0x70/0x71, its kernel driver, and two monitor
 * commands, `date` and `rtc`. The facts are in `docs/cmos_rtc.md`.
 *
 *     deno task boot -- --device examples/cmos_rtc.ts --console
 *     kernelsim> date
 *     date: 2026-05-04 12:34:56 UTC (Monday)
 *
 * On the virtual clock (`--clock virtual`) the RTC powers on at
 * 2000-01-01 00:00:00 UTC, so a run is reproducible; on the host clock it
 * powers on at the host's current time.
 *
 * @module
 */

import { type Command, CommandError, type DeviceModule, hex, VirtualClock } from "../sdk/mod.ts";
import {
  describeDataMode,
  formatRtcTime,
  Mc146818Rtc,
  probeRtc,
  readRtcTime,
  readStatusRegisters,
  RTC_INDEX_PORT,
  RTC_PORT_COUNT,
  weekdayOf,
  writeRtcTime,
} from "./cmos_rtc/mod.ts";

/** Where the RTC powers on with the virtual clock. */
const VIRTUAL_POWER_ON = new Date(Date.UTC(2000, 0, 1, 0, 0, 0));
/** The years `date` can set: the century register and the 2-digit year. */
const FIRST_YEAR = 2000;
const LAST_YEAR = 2099;

/** `date [YYYY-MM-DD HH:MM:SS]`: shows or sets the RTC's date and time. */
const dateCommand: Command = {
  name: "date",
  usage: "[DATE TIME]",
  summary: "the CMOS real-time clock's date and time (UTC); set it with YYYY-MM-DD HH:MM:SS",
  arity: [0, 2],
  run(args, context) {
    const hw = context.kernel.machine;
    if (args.words.length > 0) {
      const match = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(args.words.join(" "));
      const [year, month, day, hours, minutes, seconds] = (match ?? []).slice(1).map(Number);
      const valid = match !== null && year >= FIRST_YEAR && year <= LAST_YEAR &&
        month >= 1 && month <= 12 && day >= 1 &&
        day <= new Date(Date.UTC(year, month, 0)).getUTCDate() && hours < 24 &&
        minutes < 60 && seconds < 60;
      if (!valid) {
        throw new CommandError(
          `expected a date and time from ${FIRST_YEAR} to ${LAST_YEAR} as YYYY-MM-DD HH:MM:SS, ` +
            `got "${args.rest}"`,
        );
      }
      const weekday = weekdayOf(year, month, day);
      writeRtcTime(hw, { year, month, day, hours, minutes, seconds, weekday });
    }
    context.print(`date: ${formatRtcTime(readRtcTime(hw))}`);
  },
};

/** `rtc`: the status registers, raw. */
const rtcCommand: Command = {
  name: "rtc",
  usage: "",
  summary: "the CMOS real-time clock's status registers A to D",
  arity: [0, 0],
  run(_args, context) {
    const hw = context.kernel.machine;
    const [a, b, d, c] = readStatusRegisters(hw);
    context.print(
      `rtc: A ${hex(a, 2)} B ${hex(b, 2)} C ${hex(c, 2)} D ${hex(d, 2)} (${describeDataMode(hw)})`,
    );
  },
};

const cmosRtc: DeviceModule = {
  device: {
    name: "cmos-rtc",
    attach(board) {
      const startTime = board.clock instanceof VirtualClock ? VIRTUAL_POWER_ON : new Date();
      board.claimPorts(
        RTC_INDEX_PORT,
        RTC_PORT_COUNT,
        new Mc146818Rtc({ clock: board.clock, startTime }),
      );
    },
  },
  driver: {
    name: "rtc",
    init({ hardware, log }) {
      probeRtc(hardware);
      log(`MC146818 at ${hex(RTC_INDEX_PORT)} (${describeDataMode(hardware)})`);
      log(formatRtcTime(readRtcTime(hardware)));
    },
    commands: [dateCommand, rtcCommand],
  },
};

export default cmosRtc;
