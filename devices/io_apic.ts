/**
 * The Intel 82093AA I/O APIC (datasheet "82093AA I/O Advanced Programmable
 * Interrupt Controller"; the facts used are in docs/apic.md): 24 interrupt
 * input pins, each with a 64-bit redirection entry that turns the pin into
 * an APIC bus message.
 *
 * Two registers are visible in memory, each a 32-bit access at its offset:
 *
 * | offset | register |
 * |---|---|
 * | 0x00 | IOREGSEL: index of the register IOWIN reaches (bits 7:0) |
 * | 0x10 | IOWIN: the selected register |
 *
 * Registers behind the window:
 *
 * | index | register | access |
 * |---|---|---|
 * | 0x00 | IOAPICID: ID in bits 27:24 | read/write |
 * | 0x01 | IOAPICVER: version 0x11 (bits 7:0), max redirection entry 0x17 (bits 23:16) | read only |
 * | 0x02 | IOAPICARB: arbitration ID in bits 27:24 | read only |
 * | 0x10 + 2n, 0x11 + 2n | IOREDTBLn low, high | read/write |
 *
 * A redirection entry: vector (7:0), delivery mode (10:8: fixed, lowest
 * priority, SMI, NMI, INIT, ExtINT), destination mode (11: logical),
 * delivery status (12, read only: a message waits to be accepted), input
 * polarity (13: active low), Remote IRR (14, read only), trigger mode (15:
 * level), mask (16), destination (63:56). After reset every entry is masked.
 *
 * Edge-triggered pins send a message on each inactive-to-active transition;
 * an edge on a masked pin is ignored, not held. Level-triggered pins send
 * while active and unmasked and Remote IRR is clear; Remote IRR is set when a
 * local APIC accepts, and cleared by the local APIC's EOI message for the
 * entry's vector, after which a pin still active sends again. A message no
 * local APIC accepts is dropped for an edge pin and stays pending (delivery
 * status set) for a level pin until the entry, the pin or an EOI changes.
 * Unimplemented register indexes read 0 and ignore writes; narrower
 * accesses act on the low bytes of the register (software must use 32 bits).
 *
 * @module
 */

import type { AccessWidth, MmioDevice, Tracer } from "../hal/mod.ts";
import { hex } from "../hal/mod.ts";
import {
  APIC_DELIVERY_FIXED,
  APIC_DELIVERY_LOWEST_PRIORITY,
  APIC_SHORTHAND_NONE,
  type ApicBus,
  type ApicBusEoiTarget,
} from "./apic_bus.ts";

/** Bytes the I/O APIC decodes: IOREGSEL at 0x00 and IOWIN at 0x10. */
export const IO_APIC_MMIO_BYTES = 0x20;
/** Offset of IOREGSEL. */
export const IOAPIC_IOREGSEL = 0x00;
/** Offset of IOWIN. */
export const IOAPIC_IOWIN = 0x10;
/** Register index of IOAPICID. */
export const IOAPIC_REG_ID = 0x00;
/** Register index of IOAPICVER. */
export const IOAPIC_REG_VERSION = 0x01;
/** Register index of IOAPICARB. */
export const IOAPIC_REG_ARBITRATION = 0x02;
/** Register index of IOREDTBL0's low half; entry n is at 0x10 + 2n. */
export const IOAPIC_REG_REDIRECTION_BASE = 0x10;
/** Input pins (redirection entries) of the 82093AA. */
export const IO_APIC_PIN_COUNT = 24;
/** IOAPICVER: version 0x11, maximum redirection entry 23. */
export const IOAPIC_VERSION_VALUE = ((IO_APIC_PIN_COUNT - 1) << 16) | 0x11;
/** Redirection entry bit 11: logical destination mode. */
export const IOAPIC_RTE_LOGICAL = 1 << 11;
/** Redirection entry bit 12: delivery status (send pending). */
export const IOAPIC_RTE_DELIVERY_STATUS = 1 << 12;
/** Redirection entry bit 13: input active low. */
export const IOAPIC_RTE_ACTIVE_LOW = 1 << 13;
/** Redirection entry bit 14: Remote IRR. */
export const IOAPIC_RTE_REMOTE_IRR = 1 << 14;
/** Redirection entry bit 15: level triggered. */
export const IOAPIC_RTE_LEVEL = 1 << 15;
/** Redirection entry bit 16: masked. */
export const IOAPIC_RTE_MASKED = 1 << 16;

const ID_BITS = 0x0f00_0000;
const REGSEL_BITS = 0xff;
const VECTOR_MASK = 0xff;
const DELIVERY_MODE_SHIFT = 8;
const DELIVERY_MODE_MASK = 0b111;
const DESTINATION_SHIFT = 24;
const LOW_WRITABLE = VECTOR_MASK | (DELIVERY_MODE_MASK << DELIVERY_MODE_SHIFT) |
  IOAPIC_RTE_LOGICAL | IOAPIC_RTE_ACTIVE_LOW | IOAPIC_RTE_LEVEL | IOAPIC_RTE_MASKED;
const HIGH_WRITABLE = 0xff00_0000;

/** Options of {@linkcode IoApic}. */
export interface IoApicOptions {
  /** The I/O APIC ID the firmware assigns (the MADT says the same). */
  readonly id: number;
  /** Where messages go. */
  readonly bus: ApicBus;
}

/** The 82093AA: IOREGSEL/IOWIN, 24 redirection entries, edge and level pins. */
export class IoApic implements MmioDevice, ApicBusEoiTarget {
  /** Name used in messages. */
  readonly name = "io-apic";
  /** Messages sent, per pin. */
  readonly messagesSent: Uint32Array = new Uint32Array(IO_APIC_PIN_COUNT);
  #select = 0;
  #id: number;
  /** Redirection entries: word 2n low, 2n + 1 high. */
  readonly #entries = new Uint32Array(IO_APIC_PIN_COUNT * 2);
  /** Pin levels (bit n: pin n driven high). */
  #pinLevels = 0;
  readonly #bus: ApicBus;
  #tracer: Tracer | undefined;

  /** Creates an I/O APIC in its reset state: every entry masked. */
  constructor(options: IoApicOptions) {
    this.#bus = options.bus;
    this.#id = (options.id << DESTINATION_SHIFT) & ID_BITS;
    for (let pin = 0; pin < IO_APIC_PIN_COUNT; pin++) this.#entries[pin * 2] = IOAPIC_RTE_MASKED;
  }

  /** Sets (or removes) the tracer for `irq` lines about messages sent. */
  setTracer(tracer: Tracer | undefined): void {
    this.#tracer = tracer;
  }

  /** The I/O APIC ID (IOAPICID bits 27:24). */
  get id(): number {
    return this.#id >>> DESTINATION_SHIFT;
  }

  /** Redirection entry `pin` as [low, high] 32-bit halves (for inspection). */
  redirectionEntry(pin: number): [number, number] {
    checkPin(pin);
    return [this.#entries[pin * 2], this.#entries[pin * 2 + 1]];
  }

  /** Whether input `pin` is driven high now. */
  isPinHigh(pin: number): boolean {
    return (this.#pinLevels & (1 << checkPin(pin))) !== 0;
  }

  /** Drives input `pin` high or low, as a device's interrupt wire does. */
  setPinLevel(pin: number, isHigh: boolean): void {
    const bit = 1 << checkPin(pin);
    const wasAsserted = this.#isAsserted(pin);
    if (isHigh) this.#pinLevels |= bit;
    else this.#pinLevels &= ~bit;
    const isAsserted = this.#isAsserted(pin);
    const low = this.#entries[pin * 2];
    if ((low & IOAPIC_RTE_LEVEL) !== 0) {
      if (!isAsserted) this.#entries[pin * 2] = low & ~IOAPIC_RTE_DELIVERY_STATUS;
      this.#evaluateLevel(pin);
    } else if (isAsserted && !wasAsserted && (low & IOAPIC_RTE_MASKED) === 0) {
      this.#send(pin);
    }
  }

  /** An EOI message for `vector`: clears Remote IRR of its level entries, which may send again. */
  endOfInterrupt(vector: number): void {
    for (let pin = 0; pin < IO_APIC_PIN_COUNT; pin++) {
      const low = this.#entries[pin * 2];
      if ((low & VECTOR_MASK) !== vector || (low & IOAPIC_RTE_REMOTE_IRR) === 0) continue;
      this.#entries[pin * 2] = low & ~IOAPIC_RTE_REMOTE_IRR;
      this.#evaluateLevel(pin);
    }
  }

  mmioRead(offsetBytes: number, width: AccessWidth): number {
    const value = offsetBytes === IOAPIC_IOREGSEL
      ? this.#select
      : offsetBytes === IOAPIC_IOWIN
      ? this.#readRegister(this.#select)
      : 0;
    return width === 4 ? value : value & ((1 << (width * 8)) - 1);
  }

  mmioWrite(offsetBytes: number, value: number, width: AccessWidth): void {
    const bits = width === 4 ? value >>> 0 : value & ((1 << (width * 8)) - 1);
    if (offsetBytes === IOAPIC_IOREGSEL) this.#select = bits & REGSEL_BITS;
    else if (offsetBytes === IOAPIC_IOWIN) this.#writeRegister(this.#select, bits);
  }

  #readRegister(index: number): number {
    if (index === IOAPIC_REG_ID || index === IOAPIC_REG_ARBITRATION) return this.#id;
    if (index === IOAPIC_REG_VERSION) return IOAPIC_VERSION_VALUE;
    const word = index - IOAPIC_REG_REDIRECTION_BASE;
    return word >= 0 && word < IO_APIC_PIN_COUNT * 2 ? this.#entries[word] : 0;
  }

  #writeRegister(index: number, value: number): void {
    if (index === IOAPIC_REG_ID) {
      this.#id = value & ID_BITS;
      return;
    }
    const word = index - IOAPIC_REG_REDIRECTION_BASE;
    if (word < 0 || word >= IO_APIC_PIN_COUNT * 2) return;
    const isLow = word % 2 === 0;
    const writable = isLow ? LOW_WRITABLE : HIGH_WRITABLE;
    this.#entries[word] = ((this.#entries[word] & ~writable) | (value & writable)) >>> 0;
    if (isLow) {
      const pin = word / 2;
      const low = this.#entries[word];
      // Leaving level mode forgets its state; an unmasked level pin that is active sends.
      if ((low & IOAPIC_RTE_LEVEL) === 0) {
        this.#entries[word] = low & ~(IOAPIC_RTE_REMOTE_IRR | IOAPIC_RTE_DELIVERY_STATUS);
      }
      this.#evaluateLevel(pin);
    }
  }

  #isAsserted(pin: number): boolean {
    const isHigh = (this.#pinLevels & (1 << pin)) !== 0;
    return (this.#entries[pin * 2] & IOAPIC_RTE_ACTIVE_LOW) !== 0 ? !isHigh : isHigh;
  }

  /** A level entry sends while its pin is active, it is unmasked and Remote IRR is clear. */
  #evaluateLevel(pin: number): void {
    const low = this.#entries[pin * 2];
    if (
      (low & IOAPIC_RTE_LEVEL) === 0 || (low & IOAPIC_RTE_MASKED) !== 0 ||
      (low & IOAPIC_RTE_REMOTE_IRR) !== 0 || !this.#isAsserted(pin)
    ) {
      return;
    }
    this.#send(pin);
  }

  #send(pin: number): void {
    const low = this.#entries[pin * 2];
    const high = this.#entries[pin * 2 + 1];
    const deliveryMode = (low >>> DELIVERY_MODE_SHIFT) & DELIVERY_MODE_MASK;
    const isLevel = (low & IOAPIC_RTE_LEVEL) !== 0;
    const vector = low & VECTOR_MASK;
    this.#entries[pin * 2] = low | IOAPIC_RTE_DELIVERY_STATUS;
    const accepted = this.#bus.deliver(
      -1,
      APIC_SHORTHAND_NONE,
      (low & IOAPIC_RTE_LOGICAL) !== 0,
      high >>> DESTINATION_SHIFT,
      deliveryMode,
      vector,
      isLevel,
    );
    this.messagesSent[pin]++;
    const tracer = this.#tracer;
    if (tracer !== undefined && tracer.irq) {
      tracer.emit(
        "irq",
        `io-apic pin ${pin}: vector ${hex(vector, 2)} to APIC ${
          hex(high >>> DESTINATION_SHIFT, 2)
        }` +
          (accepted > 0 ? "" : " (not accepted)"),
      );
    }
    let next = this.#entries[pin * 2];
    if (accepted > 0 || !isLevel) next &= ~IOAPIC_RTE_DELIVERY_STATUS;
    const isFixedLevel = isLevel &&
      (deliveryMode === APIC_DELIVERY_FIXED || deliveryMode === APIC_DELIVERY_LOWEST_PRIORITY);
    if (accepted > 0 && isFixedLevel) next |= IOAPIC_RTE_REMOTE_IRR;
    this.#entries[pin * 2] = next >>> 0;
  }
}

function checkPin(pin: number): number {
  if (!Number.isInteger(pin) || pin < 0 || pin >= IO_APIC_PIN_COUNT) {
    throw new RangeError(`Invalid I/O APIC pin ${pin}: expected 0..${IO_APIC_PIN_COUNT - 1}`);
  }
  return pin;
}
