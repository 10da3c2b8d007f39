/**
 * The parts the stock kernel is built from, each replaceable: the frame
 * provider, the page-table mapper, the heap, the page-fault policy, and
 * extra drivers with their monitor commands. {@linkcode Kernel.boot} takes
 * them; the CLI fills them from `--frames`, `--pagetable`, `--heap`,
 * `--faults` and `--device`. A part left out is the stock one.
 *
 * @module
 */

import type { Hardware } from "../hal/mod.ts";
import type {
  FrameProvider,
  FrameProviderFactory,
  KernelHeap,
  KernelHeapFactory,
  PageFaultPolicyFactory,
  PageMapperFactory,
} from "./mm/mod.ts";
import type { IsaIrqAttacher } from "./drivers/mod.ts";
import type { Command } from "./monitor/mod.ts";

/** A part: its factory and the name reports show for it (`stock`, or the module's path). */
export interface KernelPart<F> {
  /** What reports call it: the module path it came from. */
  readonly name: string;
  /** Its factory. */
  readonly create: F;
}

/** What a driver's `init` may use, at the end of boot. */
export interface DriverContext {
  /** The hardware (port I/O, memory, interrupts), as the kernel sees it. */
  readonly hardware: Hardware;
  /** The frame provider, for buffers. */
  readonly frames: FrameProvider;
  /** The kernel heap. */
  readonly heap: KernelHeap;
  /**
   * The kernel's ISA IRQ routing (8259 pair or I/O APIC, whichever runs):
   * `attachIsaIrq(irq, name, handler)` unmasks the line and sends the EOI
   * after `handler`.
   */
  readonly interrupts: IsaIrqAttacher;
  /** Writes one line to the kernel log under the driver's name. */
  log(message: string): void;
}

/** A kernel driver for an extra device, and the monitor commands it adds. */
export interface KernelDriver {
  /** The driver's name: its log lines are tagged with it. */
  readonly name: string;
  /**
   * Probes and sets up the device, once, at the end of boot (interrupts are
   * on). A throw here is a kernel panic naming the driver.
   */
  init?(context: DriverContext): void;
  /**
   * Monitor commands (with `help` lines) that use the device; their names
   * must differ from every other command's.
   */
  readonly commands?: readonly Command[];
}

/** The replaceable parts of the stock kernel; every one is optional. */
export interface KernelParts {
  /** The physical frame allocator (`--frames`). */
  readonly frames?: KernelPart<FrameProviderFactory>;
  /** The page-table mapper (`--pagetable`). */
  readonly pageMapper?: KernelPart<PageMapperFactory>;
  /** The kmem heap (`--heap`). */
  readonly heap?: KernelPart<KernelHeapFactory>;
  /** The page-fault policy (`--faults`). */
  readonly pageFaults?: KernelPart<PageFaultPolicyFactory>;
  /** Drivers of extra devices (`--device`), initialised in order. */
  readonly drivers?: readonly KernelDriver[];
}

/** Which provider each part is, as `--report json` shows it under `parts`. */
export interface KernelPartNames {
  /** `stock` or the `--frames` module. */
  readonly frames: string;
  /** `stock` or the `--pagetable` module. */
  readonly pageMapper: string;
  /** `stock` or the `--heap` module. */
  readonly heap: string;
  /** `stock` or the `--faults` module. */
  readonly pageFaults: string;
  /** The drivers of extra devices, by name. */
  readonly drivers: readonly string[];
}

/** The name of the stock provider of a part. */
export const STOCK_PART_NAME = "stock";
