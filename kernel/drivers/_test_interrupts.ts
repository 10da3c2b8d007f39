/**
 * Test helper: the kernel's legacy interrupt routing (8259 pair, IRQ n on
 * vector 0x30 + n, EOI after each handler) on a hand-built test machine, so
 * driver tests take interrupts the way the booted kernel does.
 *
 * @module
 */

import {
  type CpuContext,
  type DeviceBus,
  type InterruptController,
  PIC_MASTER_PORT_BASE,
  PIC_PORT_COUNT,
  PIC_SLAVE_PORT_BASE,
} from "../../hal/mod.ts";
import { InterruptVectors, IsaInterrupts } from "../interrupts/mod.ts";
import { Pic8259Driver } from "./pic8259_driver.ts";
import type { IsaIrqAttacher } from "./isa_irq.ts";

/** Claims `pic`'s ports on `bus` and returns the legacy routing driving it through `cpu`. */
export function legacyIrqRouting(
  bus: DeviceBus,
  pic: InterruptController,
  cpu: CpuContext,
): IsaInterrupts {
  bus.claimPorts(PIC_MASTER_PORT_BASE, PIC_PORT_COUNT, pic.masterPorts);
  bus.claimPorts(PIC_SLAVE_PORT_BASE, PIC_PORT_COUNT, pic.slavePorts);
  return IsaInterrupts.legacy(new Pic8259Driver(cpu), new InterruptVectors(cpu));
}

/** An attacher that routes nothing, for tests of port programming only. */
export const NO_IRQ_ROUTING: IsaIrqAttacher = {
  attachIsaIrq: () => {},
  detachIsaIrq: () => {},
};
