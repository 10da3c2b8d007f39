/**
 * The Worker of one application processor (docs/smp.md, "The machine"): it
 * builds the CPU's view of the machine from the board's start message (the
 * shared RAM, its own CPU, MMU, TLB and local APIC, the board's devices
 * behind its mailbox), waits in reset for INIT and a start-up IPI, then runs
 * the kernel from the start-up page until the CPU stops, and ends.
 *
 * Message in: {@linkcode ApStartMessage}. Nothing goes out: the CPU speaks
 * to the rest of the machine through RAM, its APIC and its mailbox only.
 *
 * @module
 */

import { ApMachine, type ApStartMessage, CpuHalted } from "../devices/mod.ts";
import type { PhysAddr } from "../hal/mod.ts";
import { apEntry, STARTUP_PAGE_BYTES } from "../kernel/mod.ts";

/** The worker's global scope, as far as this script uses it. */
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<ApStartMessage>) => void) | null;
  close(): void;
};

scope.onmessage = (event) => {
  const machine = new ApMachine(event.data);
  try {
    const vector = machine.waitForStartup();
    apEntry(machine, (vector * STARTUP_PAGE_BYTES) as PhysAddr);
  } catch (error) {
    // Halted before it was started: the machine stopped every CPU.
    if (!(error instanceof CpuHalted)) throw error;
  } finally {
    machine.exit();
    scope.close();
  }
};
