/**
 * The APIC bus: how interrupt messages travel between I/O APICs and local
 * APICs (docs/apic.md, "Messages"). An I/O APIC sends a message for a
 * redirection entry, a local APIC sends one for a write to its ICR (an IPI),
 * and a local APIC broadcasts an EOI for a level-triggered vector so that
 * the I/O APICs clear their Remote IRR.
 *
 * Messages go through the {@linkcode ApicBus} interface, never through a
 * direct call on the target, so an SMP machine can deliver them to local
 * APICs owned by other Workers; {@linkcode SystemApicBus} is the one-board
 * implementation that resolves destinations itself. A message is plain
 * numbers: nothing is allocated per interrupt.
 *
 * @module
 */

/** Delivery mode 000: fixed (to every destination, by vector). */
export const APIC_DELIVERY_FIXED = 0b000;
/** Delivery mode 001: lowest priority (to one destination, by arbitration). */
export const APIC_DELIVERY_LOWEST_PRIORITY = 0b001;
/** Delivery mode 010: SMI. */
export const APIC_DELIVERY_SMI = 0b010;
/** Delivery mode 100: NMI. */
export const APIC_DELIVERY_NMI = 0b100;
/** Delivery mode 101: INIT. */
export const APIC_DELIVERY_INIT = 0b101;
/** Delivery mode 110: start-up (SIPI), ICR only. */
export const APIC_DELIVERY_STARTUP = 0b110;
/** Delivery mode 111: ExtINT (the 8259 supplies the vector). */
export const APIC_DELIVERY_EXTINT = 0b111;

/** Destination shorthand 00: the destination field decides. */
export const APIC_SHORTHAND_NONE = 0b00;
/** Destination shorthand 01: the sender only. */
export const APIC_SHORTHAND_SELF = 0b01;
/** Destination shorthand 10: every local APIC, the sender included. */
export const APIC_SHORTHAND_ALL_INCLUDING_SELF = 0b10;
/** Destination shorthand 11: every local APIC but the sender. */
export const APIC_SHORTHAND_ALL_EXCLUDING_SELF = 0b11;
/** Destination 0xFF: every local APIC, in both destination modes (xAPIC broadcast). */
export const APIC_BROADCAST_DESTINATION = 0xff;

/** A local APIC as the bus delivers to it. */
export interface ApicBusTarget {
  /** The 8-bit APIC ID (ID register bits 31:24). */
  readonly apicId: number;
  /** Whether a message for `destination` in logical mode names this APIC (LDR and DFR). */
  matchesLogical(destination: number): boolean;
  /** The task priority (TPR), for lowest-priority arbitration. */
  readonly taskPriority: number;
  /**
   * Receives a message; returns whether it was accepted (a software-disabled
   * APIC accepts only NMI, SMI, INIT and start-up).
   */
  receive(deliveryMode: number, vector: number, isLevelTriggered: boolean): boolean;
}

/** An I/O APIC as the bus delivers EOI messages to it. */
export interface ApicBusEoiTarget {
  /** An EOI for level-triggered `vector`: clears the Remote IRR of its entries. */
  endOfInterrupt(vector: number): void;
}

/** What carries APIC messages. */
export interface ApicBus {
  /**
   * Delivers an interrupt message to the local APICs it names and returns
   * how many accepted it.
   *
   * @param senderApicId The sending local APIC's ID, or -1 for an I/O APIC (no "self").
   * @param shorthand APIC_SHORTHAND_*; I/O APICs always send NONE.
   * @param isLogical Destination mode: logical (true) or physical (false).
   * @param destination The 8-bit destination field.
   * @param deliveryMode APIC_DELIVERY_*.
   * @param vector The vector (0 to 255).
   * @param isLevelTriggered The trigger mode, for the receiver's TMR.
   */
  deliver(
    senderApicId: number,
    shorthand: number,
    isLogical: boolean,
    destination: number,
    deliveryMode: number,
    vector: number,
    isLevelTriggered: boolean,
  ): number;
  /** Sends an EOI message for `vector` to every I/O APIC. */
  broadcastEoi(vector: number): void;
}

/** The APIC bus of one board: every local and I/O APIC on it, destinations resolved here. */
export class SystemApicBus implements ApicBus {
  readonly #localApics: ApicBusTarget[] = [];
  readonly #ioApics: ApicBusEoiTarget[] = [];

  /** Connects a local APIC. */
  attachLocalApic(apic: ApicBusTarget): void {
    this.#localApics.push(apic);
  }

  /** Connects an I/O APIC (for EOI messages). */
  attachIoApic(ioApic: ApicBusEoiTarget): void {
    this.#ioApics.push(ioApic);
  }

  deliver(
    senderApicId: number,
    shorthand: number,
    isLogical: boolean,
    destination: number,
    deliveryMode: number,
    vector: number,
    isLevelTriggered: boolean,
  ): number {
    let accepted = 0;
    if (deliveryMode === APIC_DELIVERY_LOWEST_PRIORITY && shorthand === APIC_SHORTHAND_NONE) {
      // Arbitration: the named APIC with the lowest task priority takes it.
      let winner: ApicBusTarget | undefined;
      for (const apic of this.#localApics) {
        if (!isNamed(apic, senderApicId, shorthand, isLogical, destination)) continue;
        if (winner === undefined || apic.taskPriority < winner.taskPriority) winner = apic;
      }
      return winner?.receive(APIC_DELIVERY_FIXED, vector, isLevelTriggered) ? 1 : 0;
    }
    for (const apic of this.#localApics) {
      if (!isNamed(apic, senderApicId, shorthand, isLogical, destination)) continue;
      if (apic.receive(deliveryMode, vector, isLevelTriggered)) accepted++;
    }
    return accepted;
  }

  broadcastEoi(vector: number): void {
    for (const ioApic of this.#ioApics) ioApic.endOfInterrupt(vector);
  }
}

function isNamed(
  apic: ApicBusTarget,
  senderApicId: number,
  shorthand: number,
  isLogical: boolean,
  destination: number,
): boolean {
  switch (shorthand) {
    case APIC_SHORTHAND_SELF:
      return apic.apicId === senderApicId;
    case APIC_SHORTHAND_ALL_INCLUDING_SELF:
      return true;
    case APIC_SHORTHAND_ALL_EXCLUDING_SELF:
      return apic.apicId !== senderApicId;
    default:
      if (destination === APIC_BROADCAST_DESTINATION) return true;
      return isLogical ? apic.matchesLogical(destination) : apic.apicId === destination;
  }
}
