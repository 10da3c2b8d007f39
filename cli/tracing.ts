/**
 * `--trace CATS` and `--trace-file FILE`: builds the {@linkcode Tracer},
 * buffers its lines to a host stream (stderr or a file), and hands it to the
 * machine, the UART and the kernel's allocators.
 *
 * @module
 */

import { Tracer } from "../hal/mod.ts";
import type { Pc } from "../devices/mod.ts";
import type { SyncWriter } from "./byte_writer.ts";

/** A tracer writing to a host stream, with the buffer behind it. */
export interface TraceOutput {
  /** The tracer to hand to components. */
  readonly tracer: Tracer;
  /** Writes out buffered lines; call before exit and before other output. */
  flush(): void;
}

/** Bytes buffered before a write to the host stream. */
const BUFFER_BYTES = 64 * 1024;

/**
 * Creates a tracer whose lines are buffered and written to `stream`.
 *
 * @param mask The categories (from `parseTraceCategories`).
 * @param stream Where lines go: stderr, or a file opened for `--trace-file`.
 * @param nowNs The machine clock, for timestamps.
 * @param bufferBytes Characters to collect before writing (default 64 KiB); 0 writes each
 *   line at once, which keeps trace lines in order with other output to the same stream.
 * @returns The tracer and its flush.
 */
export function createTraceOutput(
  mask: number,
  stream: SyncWriter,
  nowNs: () => number,
  bufferBytes: number = BUFFER_BYTES,
): TraceOutput {
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
      if (pendingChars >= bufferBytes) flush();
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
