/**
 * The labs the grader knows, one per replaceable part: which SDK part each
 * grades, its stock implementation, and its checks.
 *
 * @module
 */

import {
  createStockFrameProvider,
  createStockKernelHeap,
  createStockPageFaultPolicy,
  createStockPageMapper,
  type FrameProviderFactory,
  type KernelHeapFactory,
  type PageFaultPolicyFactory,
  type PageMapperFactory,
  type PartKind,
} from "../sdk/mod.ts";
import type { Check } from "./check.ts";
import { type FrameOrder, framesChecks } from "./frames_lab.ts";
import { COW_CHECKS } from "./cow_lab.ts";
import { HEAP_CHECKS } from "./heap_lab.ts";
import { PAGETABLE_CHECKS } from "./pagetable_lab.ts";
import type { LabKind } from "./scorecard.ts";

/** Options a lab may state. */
export interface LabOptions {
  /** Frames lab: whether `allocate()` must return the lowest free frame. */
  readonly frameOrder: FrameOrder;
}

/** The default lab options: any free frame will do. */
export const DEFAULT_LAB_OPTIONS: LabOptions = { frameOrder: "any" };

/** One lab. */
export interface Lab<F> {
  /** Its option name. */
  readonly kind: LabKind;
  /** The SDK part it grades (what `loadPartModule` loads). */
  readonly partKind: PartKind;
  /** Its name in words. */
  readonly title: string;
  /** The stock part's factory (`--frames stock`). */
  readonly stock: F;
  /** Its checks under `options`, in order. */
  checks(options: LabOptions): readonly Check<F>[];
  /** The options that shape its checks, for the scorecard. */
  describeOptions(options: LabOptions): Readonly<Record<string, string>>;
}

/** The frame-allocator lab. */
export const FRAMES_LAB: Lab<FrameProviderFactory> = {
  kind: "frames",
  partKind: "frames",
  title: "physical frame allocator",
  stock: createStockFrameProvider,
  checks: (options) => framesChecks(options.frameOrder),
  describeOptions: (options) => ({ frameOrder: options.frameOrder }),
};

/** The page-table lab. */
export const PAGETABLE_LAB: Lab<PageMapperFactory> = {
  kind: "pagetable",
  partKind: "pagetable",
  title: "page-table mapper",
  stock: createStockPageMapper,
  checks: () => PAGETABLE_CHECKS,
  describeOptions: () => ({}),
};

/** The kernel-heap lab. */
export const HEAP_LAB: Lab<KernelHeapFactory> = {
  kind: "heap",
  partKind: "heap",
  title: "kernel heap: kmalloc and kfree",
  stock: createStockKernelHeap,
  checks: () => HEAP_CHECKS,
  describeOptions: () => ({}),
};

/** The copy-on-write lab: a page-fault policy. */
export const COW_LAB: Lab<PageFaultPolicyFactory> = {
  kind: "cow",
  partKind: "faults",
  title: "copy-on-write page-fault policy",
  stock: createStockPageFaultPolicy,
  checks: () => COW_CHECKS,
  describeOptions: () => ({}),
};

/** Every lab, by the name of its option. */
export const LABS: Readonly<Record<LabKind, Lab<unknown>>> = {
  frames: FRAMES_LAB,
  pagetable: PAGETABLE_LAB,
  heap: HEAP_LAB,
  cow: COW_LAB,
};

/** The labs' option names, in the order `--help` lists them. */
export const LAB_KINDS: readonly LabKind[] = ["frames", "pagetable", "heap", "cow"];
