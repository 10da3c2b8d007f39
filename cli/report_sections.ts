/**
 * The `--report json` sections beyond the boot information: the frame
 * allocator per pool, the heap with its size classes, paging (page tables
 * read from RAM, MMU and TLB counters), the serial port and interrupts.
 * Everything is read from existing kernel and machine state; nothing is
 * changed.
 *
 * @module
 */

import type { Machine } from "../hal/mod.ts";
import type { SerialPort } from "../kernel/drivers/mod.ts";
import type { FrameProvider, KernelHeap } from "../kernel/mm/mod.ts";
import {
  handledPerIsaIrq,
  type InterruptRoutingReport,
  interruptRoutingReport,
  type InterruptSystem,
  type VectorEntry,
} from "../kernel/interrupts/mod.ts";
import {
  type HeapReportData,
  heapReportData,
  pagingData,
  type PagingReportData,
} from "./html_report_data.ts";
import { scanPageTables } from "./page_table_scan.ts";

/** The sections {@linkcode extendedReportSections} adds to the report. */
export interface ExtendedReportSections {
  /** The frame allocator's counters, totals and per pool. */
  frames: {
    totalFrames: number;
    freeFrames: number;
    reservedFrames: number;
    allocatedFrames: number;
    pools: {
      base: number;
      frameCount: number;
      freeFrames: number;
      reservedFrames: number;
      allocatedFrames: number;
    }[];
    /** Counters particular to the provider, when it reports any. */
    details?: Readonly<Record<string, number>>;
  };
  /** The kmem heap's counters and its non-empty size classes. */
  heap: HeapReportData;
  /** Paging: the page tables CR3 (or the given root) points to, and MMU/TLB counters. */
  paging: PagingReportData | { isEnabled: false; rootAddress: 0 };
  /** The serial console driver's counters. */
  uart: { bytesTransmitted: number; bytesReceived: number; overruns: number; droppedBytes: number };
  /**
   * Interrupts delivered to the CPU in total; handled per ISA IRQ (index =
   * IRQ) in either mode; raised per ISA line; per vector with what it
   * serves; and the routing (8259 or I/O APIC, the tick's source).
   */
  interrupts: {
    delivered: number;
    perIrq: number[];
    raisedPerIrq: number[];
    perVector: VectorEntry[];
    routing: InterruptRoutingReport;
  };
}

/** What {@linkcode extendedReportSections} reads: a booted `Kernel` fits. */
export interface ReportSectionsSource {
  /** The hardware: CPU (CR3, TLB, interrupt counters), MMU counters, interrupt controller. */
  readonly machine: Machine;
  /** The frame allocator. */
  readonly frames: FrameProvider;
  /** The kmem heap. */
  readonly heap: KernelHeap;
  /** The serial console driver. */
  readonly serial: SerialPort;
  /** Interrupt routing and vectors. */
  readonly interrupts: InterruptSystem;
}

/** Options for {@linkcode extendedReportSections}. */
export interface ReportSectionsOptions {
  /** Physical address of the root page table to scan (default: CR3, when not 0). */
  readonly pageTableRoot?: number;
}

/**
 * Reads the extended report sections from a booted kernel, to merge into
 * `kernel.report()`.
 *
 * @param kernel The kernel (or anything with its machine, allocator, heap and serial port).
 * @param options The page-table root, if not CR3.
 * @returns Plain JSON-able data.
 * @example
 * ```ts ignore
 * const report = { ...kernel.report(), ...extendedReportSections(kernel) };
 * ```
 */
export function extendedReportSections(
  kernel: ReportSectionsSource,
  options: ReportSectionsOptions = {},
): ExtendedReportSections {
  const { machine, frames, heap, serial } = kernel;
  const frameStats = frames.stats();
  const heapStats = heap.stats();
  const root = options.pageTableRoot ?? machine.cpu.cr3;
  return {
    frames: {
      totalFrames: frameStats.totalFrames,
      freeFrames: frameStats.freeFrames,
      reservedFrames: frameStats.reservedFrames,
      allocatedFrames: frameStats.allocatedFrames,
      pools: frameStats.pools.map((pool) => ({
        base: pool.base,
        frameCount: pool.frameCount,
        freeFrames: pool.freeFrames,
        reservedFrames: pool.reservedFrames,
        allocatedFrames: pool.allocatedFrames,
      })),
      ...(frameStats.details === undefined ? {} : { details: { ...frameStats.details } }),
    },
    heap: heapReportData(heapStats),
    paging: root === 0
      ? { isEnabled: false, rootAddress: 0 }
      : pagingData(machine, scanPageTables(machine.memory, root)),
    uart: {
      bytesTransmitted: serial.bytesWritten,
      bytesReceived: serial.bytesReceived,
      overruns: serial.overruns,
      droppedBytes: serial.droppedBytes,
    },
    interrupts: {
      delivered: machine.cpu.interruptsDelivered,
      perIrq: handledPerIsaIrq(kernel.interrupts),
      raisedPerIrq: [...machine.interrupts.raisedCount],
      perVector: kernel.interrupts.vectors.entries(),
      routing: interruptRoutingReport(kernel.interrupts),
    },
  };
}
