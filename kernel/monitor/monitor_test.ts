import type { PhysAddr } from "../../hal/mod.ts";
import { assert, assertEquals, assertStringIncludes, Xorshift32 } from "../../testing/mod.ts";
import { bootTestKernel, type TestBoot } from "../../tests/_boot_kernel.ts";
import { KernelPanic } from "../panic.ts";
import { MONITOR_COMMANDS } from "./commands.ts";
import { Monitor, MONITOR_MAGIC, MONITOR_PROMPT } from "./monitor.ts";

/** A booted kernel with its monitor, and a way to type into COM1. */
interface MonitorRig {
  readonly boot: TestBoot;
  readonly monitor: Monitor;
  /** Sends `text` through the UART with flow control, running the machine as it goes. */
  type(text: string): void;
  /** What the console printed since the rig was made (or since the last call). */
  takeOutput(): string;
}

function startRig(): MonitorRig {
  const boot = bootTestKernel();
  let seen = boot.serialTextFrom(0).end;
  const monitor = Monitor.start(boot.kernel);
  const { machine, uart } = boot.pc;
  const run = () => {
    machine.synchronize();
    monitor.runPendingWork();
  };
  return {
    boot,
    monitor,
    type(text) {
      const bytes = new TextEncoder().encode(text);
      for (let i = 0; i < bytes.length;) {
        if (uart.rxFreeSpace() === 0) machine.waitForInterrupt();
        else uart.receive(bytes[i++]);
        run();
      }
      // Bytes below the trigger level need the character timeout.
      for (
        let waits = 0;
        monitor.pendingBytes > 0 || uart.saveState().rxBytes.length > 0;
        waits++
      ) {
        assert(waits < 100, "the kernel never drained the UART");
        machine.waitForInterrupt();
        run();
      }
    },
    takeOutput() {
      const { text, end } = boot.serialTextFrom(seen);
      seen = end;
      return text;
    },
  };
}

Deno.test("Monitor.start() prints the banner and the prompt and keeps its state in a frame", () => {
  const rig = startRig();
  const output = rig.takeOutput();
  assertStringIncludes(output, "kernel monitor: type help for the commands\n");
  assert(output.endsWith(MONITOR_PROMPT));
  const memory = rig.boot.kernel.machine.memory;
  assertEquals(memory.read32((rig.monitor.consoleFrameAddr + 0x30) as PhysAddr), MONITOR_MAGIC);
  rig.monitor[Symbol.dispose]();
});

Deno.test("Monitor reads a line through the UART's receive interrupt, with kernel-side echo", () => {
  const rig = startRig();
  rig.takeOutput();
  const before = rig.boot.kernel.serial.bytesReceived;
  const interruptsBefore = rig.boot.kernel.machine.interrupts.raisedCount[4];
  rig.type("echo hi\r");
  assertEquals(rig.takeOutput(), `echo hi\nhi\n${MONITOR_PROMPT}`);
  // Every byte came through the driver's IRQ 4 handler.
  assertEquals(rig.boot.kernel.serial.bytesReceived - before, 8);
  assert(rig.boot.kernel.machine.interrupts.raisedCount[4] > interruptsBefore);
  rig.monitor[Symbol.dispose]();
});

Deno.test("Monitor waits for the character timeout for a line below the FIFO trigger level", () => {
  const rig = startRig();
  rig.takeOutput();
  const { machine, uart } = rig.boot.pc;
  // The RX trigger level SerialPort.init() programs (identifyUart leaves it at 1 byte).
  machine.cpu.outb(0x3fa, 0xc1); // FCR: FIFOs on, trigger at 14 bytes
  for (const byte of new TextEncoder().encode("echo x\n")) uart.receive(byte);
  machine.synchronize();
  rig.monitor.runPendingWork();
  // 7 bytes are below the 14-byte trigger: nothing yet.
  assertEquals(rig.takeOutput(), "");
  const startNs = machine.clock.nowNs();
  machine.waitForInterrupt(); // the virtual clock jumps to the timeout (4 character times)
  rig.monitor.runPendingWork();
  assertEquals(rig.takeOutput(), `echo x\nx\n${MONITOR_PROMPT}`);
  const waitedNs = machine.clock.nowNs() - startNs;
  assert(waitedNs > 0 && waitedNs <= 4 * 86_806 + 2, `waited ${waitedNs} ns`);
  rig.monitor[Symbol.dispose]();
});

Deno.test("Monitor rejects a line longer than its buffer without running any of it", () => {
  const rig = startRig();
  rig.takeOutput();
  rig.type(`echo ${"a".repeat(2000)}\rserial\r`);
  const output = rig.takeOutput();
  assertStringIncludes(
    output,
    "\x07\nline too long: 2005 bytes, the limit is 1024; nothing was run\n",
  );
  assert(!output.includes("\naaaa"), "the truncated line did not run");
  assertStringIncludes(output, "1 too long (limit 1024 bytes)");
  rig.monitor[Symbol.dispose]();
});

Deno.test("Monitor survives 2000 random command lines: every error is one line", () => {
  const rig = startRig();
  const rng = new Xorshift32(0x5eed);
  const names = MONITOR_COMMANDS.map((command) => command.name)
    .filter((name) => name !== "halt" && name !== "panic" && name !== "selftest");
  const words = [
    "0",
    "1",
    "x",
    "-1",
    "0x1000",
    "0xffff800000100000",
    "0x0000800000000000",
    "0xffffffffffffffff",
    "99999999999999999999999",
    "rw",
    "rwxug",
    "q",
    "4096",
    "all",
    "8",
    "0x400000",
    "",
    "zero",
    "2m",
    "1g",
    "4k",
    "flush",
    "global",
    "new",
    "fork",
    "switch",
    "drop",
    "list",
    "^up",
    "(",
  ];
  for (let i = 0; i < 2000; i++) {
    const name = names[rng.below(names.length)];
    const args = Array.from({ length: rng.below(4) }, () => words[rng.below(words.length)]);
    rig.type(`${name} ${args.join(" ")}\r`);
    const output = rig.takeOutput();
    assert(!rig.monitor.isHalted, `${name} ${args.join(" ")} halted the machine`);
    assert(!/^\s+at /m.test(output), `stack trace after ${name} ${args.join(" ")}:\n${output}`);
    assert(output.endsWith(MONITOR_PROMPT), `${name} ${args.join(" ")} lost the prompt`);
  }
  rig.monitor[Symbol.dispose]();
});

Deno.test("Monitor's panic command prints KERNEL PANIC, halts, and throws KernelPanic", () => {
  const rig = startRig();
  rig.takeOutput();
  let thrown: unknown;
  try {
    rig.type("panic on purpose\r");
  } catch (error) {
    thrown = error;
  }
  assert(thrown instanceof KernelPanic);
  assertEquals(thrown.reason, "monitor: on purpose");
  assertStringIncludes(rig.takeOutput(), "KERNEL PANIC: monitor: on purpose\n");
  assert(rig.monitor.isHalted);
});
