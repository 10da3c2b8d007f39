/**
 * Monitor commands about the kernel as a whole: `help`, `selftest`, `uptime`,
 * `serial`, `echo`, `expect`, `halt` and `panic`.
 *
 * @module
 */

import { hex } from "../../hal/mod.ts";
import { directMapAddr } from "../mm/mod.ts";
import { FLAG_LEGEND } from "./_flags.ts";
import { formatVa, plural } from "./_format.ts";
import { type Command, CommandError, synopsis } from "./command.ts";

/** Width of the usage column of `help`. */
const HELP_USAGE_WIDTH = 26;

/** What `help` prints after the commands: conventions and keys, one line each. */
export const HELP_NOTES: readonly string[] = [
  "addresses: hex (0x...) or decimal; virtual ones in canonical 64-bit form",
  "ranges print as FIRST-LAST, both ends inclusive (0x100000-0x1fffff)",
  FLAG_LEGEND,
  "unmap! and poke! change a structure the kernel owns, after unmap and poke said what it is",
  "scripts: # starts a comment line; expect checks the previous command's output",
  "keys: Left/Right/Home/End move, Up/Down history, Tab completes, Ctrl-U erases the line,",
  "  Ctrl-C discards it, Ctrl-R redraws it; Ctrl-A x quits kernelsim, Ctrl-A h lists its keys",
];

/** `help [COMMAND]`: lists the commands, one line each, or describes one. */
export const helpCommand: Command = {
  name: "help",
  usage: "[COMMAND]",
  summary: "list the commands, or describe one",
  arity: [0, 1],
  run(args, context) {
    const wanted = args.words[0]?.replace(/!$/, "");
    if (wanted === undefined) {
      for (const command of context.commands) {
        context.print(`${synopsis(command).padEnd(HELP_USAGE_WIDTH)}${command.summary}`);
      }
      context.print("");
      for (const note of HELP_NOTES) context.print(note);
      return;
    }
    const command = context.commands.find((candidate) => candidate.name === wanted);
    if (command === undefined) {
      throw new CommandError(`no command "${wanted}": type help for the list`);
    }
    context.print(`${synopsis(command).padEnd(HELP_USAGE_WIDTH)}${command.summary}`);
    for (const line of command.details ?? []) context.print(`  ${line}`);
  },
};

/** The system commands but help, in help order (halt and panic last). */
export const systemCommands: readonly Command[] = [
  {
    name: "selftest",
    usage: "",
    summary: "run the kernel's memory and paging self-tests and print pass/fail",
    arity: [0, 0],
    run(_args, context) {
      // The self-tests fault on purpose (their faults are not narrated) and
      // end in the kernel's address space: the current one is loaded again.
      const current = context.spaces.current;
      const results = context.withoutFaultNarration(() => context.kernel.runSelftests());
      if (current !== undefined && !current.space.isActive) current.space.activate();
      for (const result of results) {
        context.print(
          result.passed ? `pass: ${result.name}` : `FAIL: ${result.name}: ${result.detail}`,
        );
      }
      const passed = results.filter((result) => result.passed).length;
      const failed = results.length - passed;
      if (failed > 0) throw new CommandError(`${passed} passed, ${failed} failed`);
      context.print(`selftest: ${passed} passed, 0 failed`);
    },
  },
  {
    name: "uptime",
    usage: "",
    summary: "time since boot, counted by the timer interrupt",
    arity: [0, 0],
    run(_args, context) {
      const timer = context.kernel.timer;
      const seconds = timer.uptimeNs() / 1e9;
      const hz = timer.periodNs === 0 ? 0 : 1e9 / timer.periodNs;
      context.print(
        `up ${seconds.toFixed(6)} s: ${plural(timer.tickCount, "timer tick")} at ` +
          `${hz.toFixed(3)} Hz`,
      );
    },
  },
  {
    name: "serial",
    usage: "",
    summary: "the serial driver's and the console's counters (overruns, drops)",
    arity: [0, 0],
    run(_args, context) {
      const serial = context.kernel.serial;
      const stats = context.consoleStats();
      context.print(
        `serial: ${plural(serial.bytesReceived, "byte")} received, ` +
          `${plural(serial.bytesWritten, "byte")} sent, ` +
          `${plural(serial.overruns, "receiver overrun")}, ${
            plural(serial.droppedBytes, "byte")
          } not sent`,
      );
      context.print(
        `console: ${stats.queuedBytes}/${stats.queueCapacityBytes} bytes queued, ` +
          `${plural(stats.droppedBytes, "byte")} dropped, ${plural(stats.linesRun, "line")} run, ` +
          `${stats.linesTooLong} too long (limit ${stats.lineCapacityBytes} bytes)`,
      );
      context.print(
        `console: input ring state at ${formatVa(directMapAddr(stats.ringStateAddr))} ` +
          `(physical ${hex(stats.ringStateAddr)}): head, count, dropped (u32 each)`,
      );
    },
  },
  {
    name: "echo",
    usage: "TEXT",
    summary: "print TEXT",
    arity: [0, Infinity],
    run(args, context) {
      context.print(args.rest);
    },
  },
  {
    name: "expect",
    usage: "PATTERN",
    summary: "fail unless the previous command's output matches PATTERN (a regular expression)",
    details: [
      "PATTERN is everything after expect, a JavaScript regular expression; ^ and $ match at",
      "each line; comments and expect lines do not count as the previous command",
    ],
    arity: [1, Infinity],
    isCheck: true,
    run(args, context) {
      const source = args.rest.trim();
      let pattern: RegExp;
      try {
        pattern = new RegExp(source, "m");
      } catch (error) {
        throw new CommandError(
          `invalid regular expression /${source}/: ${(error as Error).message.split(": ").pop()}`,
        );
      }
      const output = context.previousOutput();
      if (!pattern.test(output)) {
        const lines = output === "" ? 0 : output.split("\n").length - 1;
        throw new CommandError(
          `no match for /${source}/ in the previous command's output (${plural(lines, "line")})`,
        );
      }
      context.print(`expect: matched /${source}/`);
    },
  },
  {
    name: "halt",
    usage: "",
    summary: "halt the machine cleanly",
    arity: [0, 0],
    run(_args, context) {
      context.print("halt: halting the machine");
      context.halt();
    },
  },
  {
    name: "panic",
    usage: "[REASON]",
    summary: "panic the kernel on purpose (KERNEL PANIC, exit status 1)",
    arity: [0, Infinity],
    run(args, context) {
      context.panic(`monitor: ${args.rest === "" ? "panic command" : args.rest}`);
    },
  },
];
