import { assert, assertEquals } from "../testing/mod.ts";
import { Xorshift32 } from "../testing/mod.ts";
import { ConsoleOutput, HELD_TRACE_CHARS } from "./console_output.ts";
import type { SyncWriter } from "./byte_writer.ts";

/** Two streams written into one transcript, as a terminal with `2>&1` shows them. */
function mergedStreams(): { serial: SyncWriter; trace: SyncWriter; text: () => string } {
  const decoder = new TextDecoder();
  let text = "";
  const stream: SyncWriter = {
    writeSync(bytes) {
      text += decoder.decode(bytes);
      return bytes.length;
    },
  };
  return { serial: { ...stream }, trace: { ...stream }, text: () => text };
}

function writeSerial(output: ConsoleOutput, text: string): void {
  for (const byte of new TextEncoder().encode(text)) output.writeSerialByte(byte);
}

Deno.test("ConsoleOutput puts a trace line after the console line it happened in, before the next", () => {
  const streams = mergedStreams();
  const output = new ConsoleOutput(streams.serial, streams.trace);
  writeSerial(output, "kernelsim> ");
  output.flush(); // the prompt is shown while the machine waits for input
  output.writeTraceLine("irq: deliver IRQ 4\n");
  writeSerial(output, "alloc 1\n");
  output.writeTraceLine("mm: alloc frame 0x18b\n");
  writeSerial(output, "alloc: 1 frame: 0x18b000\nkernelsim> ");
  output.finish();
  assertEquals(
    streams.text(),
    "kernelsim> alloc 1\nirq: deliver IRQ 4\nmm: alloc frame 0x18b\n" +
      "alloc: 1 frame: 0x18b000\nkernelsim> ",
  );
});

Deno.test("ConsoleOutput ends a console line left open once too many trace lines wait for it", () => {
  const streams = mergedStreams();
  const output = new ConsoleOutput(streams.serial, streams.trace);
  writeSerial(output, "kernelsim> ");
  const line = "irq: deliver IRQ 0\n";
  const count = Math.ceil(HELD_TRACE_CHARS / line.length);
  for (let i = 0; i < count - 1; i++) output.writeTraceLine(line);
  assertEquals(streams.text(), "", "held while the prompt's line is open");
  output.writeTraceLine(line);
  assertEquals(streams.text(), "kernelsim> \n" + line.repeat(count));
  // The user's typing goes on, on a line of its own.
  writeSerial(output, "help\n");
  assert(streams.text().endsWith(line + "help\n"));
});

Deno.test("ConsoleOutput under --quiet drops console bytes and keeps trace lines", () => {
  const streams = mergedStreams();
  const output = new ConsoleOutput(undefined, streams.trace);
  assert(!output.isShown);
  writeSerial(output, "boot: kernel up\n[half");
  output.writeTraceLine("mm: alloc frame 0x181\n");
  output.flush();
  assertEquals(streams.text(), "mm: alloc frame 0x181\n");
  output.setSerialStream(streams.serial);
  assert(output.isShown);
  writeSerial(output, "kernelsim> ");
  output.finish();
  assertEquals(streams.text(), "mm: alloc frame 0x181\nkernelsim> ");
});

/** One step of a random run: a console byte, a trace line, or a flush. */
type Step = { kind: "byte"; char: string } | { kind: "trace"; id: number } | { kind: "flush" };

function randomSteps(random: Xorshift32, length: number): Step[] {
  const steps: Step[] = [];
  let id = 0;
  for (let i = 0; i < length; i++) {
    const roll = random.below(10);
    if (roll < 6) steps.push({ kind: "byte", char: "ab\n"[random.below(3)] });
    else if (roll < 9) steps.push({ kind: "trace", id: id++ });
    else steps.push({ kind: "flush" });
  }
  return steps;
}

/** What a console output writer must offer for the order checks. */
interface OrderedWriter {
  writeSerialByte(byte: number): void;
  writeTraceLine(line: string): void;
  flush(): void;
  finish(): void;
}

function play(steps: readonly Step[], writer: OrderedWriter): void {
  for (const step of steps) {
    if (step.kind === "byte") writer.writeSerialByte(step.char.charCodeAt(0));
    else if (step.kind === "trace") writer.writeTraceLine(`[t${step.id}]\n`);
    else writer.flush();
  }
  writer.finish();
}

/**
 * The order rules, checked on a transcript: console bytes and trace lines
 * each in order; every trace line at the start of a line; and a trace line
 * preceded by exactly the console bytes up to the end of the console line it
 * happened in (all of them if no line was open). Returns the first violation.
 */
function orderViolation(steps: readonly Step[], transcript: string): string | undefined {
  const serial = steps.flatMap((s) => s.kind === "byte" ? [s.char] : []).join("");
  // Where each trace line must go: after this many console bytes.
  const expectedBefore: number[] = [];
  let bytesSoFar = 0;
  for (const step of steps) {
    if (step.kind === "byte") bytesSoFar++;
    if (step.kind !== "trace") continue;
    const isLineOpen = bytesSoFar > 0 && serial[bytesSoFar - 1] !== "\n";
    const lineEnd = serial.indexOf("\n", bytesSoFar);
    // A line that never ends is ended by finish() with a newline of its own.
    expectedBefore.push(!isLineOpen ? bytesSoFar : lineEnd < 0 ? serial.length + 1 : lineEnd + 1);
  }
  let consoleText = "";
  let traceId = 0;
  for (let i = 0; i < transcript.length;) {
    const match = /^\[t(\d+)\]\n/.exec(transcript.slice(i, i + 16));
    if (match === null) {
      consoleText += transcript[i++];
      continue;
    }
    if (Number(match[1]) !== traceId) return `trace line ${match[1]} out of order`;
    if (i > 0 && transcript[i - 1] !== "\n") return `trace line ${traceId} inside a line`;
    if (consoleText.length !== expectedBefore[traceId]) {
      return `trace line ${traceId} after ${consoleText.length} console bytes, ` +
        `expected ${expectedBefore[traceId]}`;
    }
    traceId++;
    i += match[0].length;
  }
  if (traceId !== expectedBefore.length) return `${expectedBefore.length - traceId} lines lost`;
  // finish() may end a last open line for the trace lines held for it.
  const endsOpen = serial.length > 0 && !serial.endsWith("\n");
  if (consoleText !== serial && !(endsOpen && consoleText === serial + "\n")) {
    return "console bytes changed";
  }
  return undefined;
}

Deno.test("ConsoleOutput keeps event order over 300 seeded random runs", () => {
  const random = new Xorshift32(0x5eed);
  for (let run = 0; run < 300; run++) {
    const steps = randomSteps(random, 1 + random.below(80));
    const streams = mergedStreams();
    play(steps, new ConsoleOutput(streams.serial, streams.trace));
    const violation = orderViolation(steps, streams.text());
    assertEquals(violation, undefined, `run ${run}: ${JSON.stringify(streams.text())}`);
  }
});

Deno.test("the order check catches a writer that prints trace lines as they come", () => {
  // The old way: console bytes written at each newline, trace lines at once.
  const naive = (streams: ReturnType<typeof mergedStreams>): OrderedWriter => {
    let line = "";
    const encoder = new TextEncoder();
    const flush = () => {
      streams.serial.writeSync(encoder.encode(line));
      line = "";
    };
    return {
      writeSerialByte(byte) {
        line += String.fromCharCode(byte);
        if (byte === 0x0a) flush();
      },
      writeTraceLine: (text) => streams.trace.writeSync(encoder.encode(text)),
      flush,
      finish: flush,
    };
  };
  const random = new Xorshift32(0x5eed);
  let caught = 0;
  for (let run = 0; run < 300; run++) {
    const steps = randomSteps(random, 1 + random.below(80));
    const streams = mergedStreams();
    play(steps, naive(streams));
    if (orderViolation(steps, streams.text()) !== undefined) caught++;
  }
  assert(caught > 100, `caught ${caught} of 300`);
});
