/**
 * The CMOS real-time clock example's parts: the MC146818 device model and
 * the kernel driver's functions. `examples/cmos_rtc.ts` puts them together
 * as a `--device` module.
 *
 * @module
 */

export * from "./mc146818.ts";
export * from "./rtc_driver.ts";
