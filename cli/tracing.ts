/**
 * `--trace CATS` and `--trace-file FILE`: builds the {@linkcode Tracer},
 * sends its lines to a file of their own (buffered) or to the terminal in
 * event order with the serial console ({@linkcode ConsoleOutput}), and hands
 * it to the machine, the UART and the kernel's allocators.
 *
 * @module
 */

import { Tracer } from "../hal/mod.ts";
import type { Pc } from "../devices/mod.ts";
import type { SyncWriter } from "./byte_writer.ts";
import type { ConsoleOutput } from "./console_output.ts";

/** A tracer writing to a host stream, with the buffer behind it. */
export interface TraceOutput {
  /** The tracer to hand to components. */
  readonly tracer: Tracer;
  /** Writes out buffered lines; call before exit and before other output. */
  flush(): void;
}

/**
 * Where trace lines go: a file of their own (`--trace-file`), or the
 * terminal they share with the serial console.
 */
export type TraceDestination =
  | {
    /** A file of their own. */
    readonly kind: "file";
    /** The open file. */
    readonly stream: SyncWriter;
  }
  | {
    /** The console's terminal (stderr), in event order with the console. */
    readonly kind: "console";
    /** The console's output. */
    readonly console: ConsoleOutput;
  };

/** Bytes buffered before a write to a trace file. */
const FILE_BUFFER_CHARS = 64 * 1024;

/**
 * Creates a tracer whose lines go to `destination`.
 *
 * @param mask The categories (from `parseTraceCategories`).
 * @param destination A file, or the console's terminal.
 * @param nowNs The machine clock, for timestamps.
 * @returns The tracer and its flush.
 */
export function createTraceOutput(
  mask: number,
  destination: TraceDestination,
  nowNs: () => number,
): TraceOutput {
  if (destination.kind === "console") {
    const console = destination.console;
    const tracer = new Tracer({
      categories: mask,
      nowNs,
      sink: (line) => console.writeTraceLine(line),
    });
    return { tracer, flush: () => console.flush() };
  }
  const stream = destination.stream;
  const encoder = new TextEncoder();
  let pending: string[] = [];
  let pendingChars = 0;
  const flush = () => {
    if (pending.length === 0) return;
    const bytes = encoder.encode(pending.join(""));
    pending = [];
    pendingChars = 0;
    let offset = 0;
    while (offset < bytes.length) offset += stream.writeSync(bytes.subarray(offset));
  };
  const tracer = new Tracer({
    categories: mask,
    nowNs,
    sink: (line) => {
      pending.push(line);
      pendingChars += line.length;
      if (pendingChars >= FILE_BUFFER_CHARS) flush();
    },
  });
  return { tracer, flush };
}

/**
 * Hands `tracer` to the PC's hardware: the CPU (`irq`), its TLB and MMU
 * (`mmu`), the I/O APIC (`irq`) and COM1 (`uart`). Call before the kernel
 * boots so boot is traced.
 *
 * @param pc The PC.
 * @param tracer The tracer, or undefined to stop tracing.
 */
export function attachMachineTracer(pc: Pc, tracer: Tracer | undefined): void {
  pc.machine.setTracer(tracer);
  pc.ioApic.setTracer(tracer);
  pc.uart.setTracer(tracer);
}
