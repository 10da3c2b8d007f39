/**
 * Monitor commands about the kernel as a whole: `help`, `selftest`, `uptime`,
 * `serial`, `echo`, `halt` and `panic`.
 *
 * @module
 */

import { plural } from "./_format.ts";
import { type Command, CommandError, synopsis } from "./command.ts";

/** Width of the usage column of `help`. */
const HELP_USAGE_WIDTH = 26;

/** `help [COMMAND]`: lists the commands, one line each. */
export const helpCommand: Command = {
  name: "help",
  usage: "[COMMAND]",
  summary: "list the commands, or describe one",
  arity: [0, 1],
  run(args, context) {
    const wanted = args.words[0];
    const commands = wanted === undefined
      ? context.commands
      : context.commands.filter((command) => command.name === wanted);
    if (commands.length === 0) {
      throw new CommandError(`no command "${wanted}": type help for the list`);
    }
    for (const command of commands) {
      context.print(`${synopsis(command).padEnd(HELP_USAGE_WIDTH)}${command.summary}`);
    }
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
      const results = context.kernel.runSelftests();
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
        `serial: ${serial.bytesReceived} bytes received, ${serial.bytesWritten} bytes sent, ` +
          `${serial.overruns} receiver overruns, ${serial.droppedBytes} bytes not sent`,
      );
      context.print(
        `console: ${stats.queuedBytes}/${stats.queueCapacityBytes} bytes queued, ` +
          `${stats.droppedBytes} bytes dropped, ${plural(stats.linesRun, "line")} run, ` +
          `${stats.linesTooLong} too long (limit ${stats.lineCapacityBytes} bytes)`,
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
