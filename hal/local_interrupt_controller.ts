/**
 * What a CPU core sees of its local APIC (docs/apic.md): a register page it
 * decodes itself, so an access there never reaches the system bus (each core
 * of an SMP machine sees its own APIC at the same address), and the
 * interrupt-acknowledge handshake that hands the core a vector.
 *
 * The model lives in `devices/local_apic.ts`; the HAL knows it only through
 * this interface, so `hal/` stays free of device models.
 *
 * @module
 */

import type { PhysAddr } from "./address.ts";
import type { MmioDevice } from "./bus.ts";

/** Number of interrupt vectors of an x86 CPU (the IDT's entries). */
export const INTERRUPT_VECTOR_COUNT = 256;
/** The NMI's vector: interrupt 2 (Intel SDM vol. 3A, table "Exceptions and Interrupts"). */
export const NMI_VECTOR = 2;

/** A CPU's local interrupt controller, as the core and its MMU use it. */
export interface LocalInterruptController extends MmioDevice {
  /** Physical base of the register page the core decodes internally (IA32_APIC_BASE). */
  readonly mmioBase: PhysAddr;
  /** Size of that window in bytes (4 KiB). */
  readonly mmioSizeBytes: number;
  /**
   * The vector the APIC would give the core at INTA now, or -1: the highest
   * requested vector whose priority class is above the processor priority,
   * while the APIC is software-enabled.
   */
  pendingVector(): number;
  /** INTA: the core takes `vector` (from {@linkcode pendingVector}), which moves it in service. */
  acknowledge(vector: number): void;
  /**
   * Whether the 8259's INTR reaches the core through LINT0 programmed as
   * ExtINT and unmasked (virtual-wire mode); the 8259 then supplies the
   * vector and the APIC's IRR and ISR are bypassed.
   */
  acceptsExtInt(): boolean;
}
