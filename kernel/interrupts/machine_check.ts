/**
 * The machine-check handler (#MC): a physical access that no RAM or device
 * answers is a hardware error the kernel cannot recover from. It panics,
 * naming the address, the width and whether it was a read or a write.
 *
 * @module
 */

import type { Machine } from "../../hal/mod.ts";
import type { KernelLog } from "../log.ts";
import { raisePanic } from "../panic.ts";

/** Installs the kernel's #MC handler on `machine`'s MMU. */
export function installMachineCheckHandler(machine: Machine, log: KernelLog): void {
  machine.mmu.setMachineCheckHandler((error) => {
    const detail = error.message.charAt(0).toLowerCase() + error.message.slice(1);
    raisePanic(machine, log, `Machine check: ${detail}`);
  });
}
