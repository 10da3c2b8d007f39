/**
 * A local APIC in xAPIC mode (Intel SDM vol. 3A, chapter "Advanced
 * Programmable Interrupt Controller"; the facts used are in docs/apic.md).
 *
 * Register page (4 KiB at IA32_APIC_BASE, 0xFEE00000 on a PC), one 32-bit
 * register per 16-byte slot:
 *
 * | offset | register | access |
 * |---|---|---|
 * | 0x020 | ID (bits 31:24) | read/write |
 * | 0x030 | version: 0x14, max LVT entry 5 | read only |
 * | 0x080 | TPR, task priority | read/write |
 * | 0x090 | APR (not on Pentium 4 and later: reads 0) | read only |
 * | 0x0A0 | PPR, processor priority | read only |
 * | 0x0B0 | EOI | write only |
 * | 0x0D0 | LDR, logical destination (bits 31:24) | read/write |
 * | 0x0E0 | DFR, destination format (bits 31:28; 27:0 read 1) | read/write |
 * | 0x0F0 | SVR: spurious vector (7:0), APIC software enable (8) | read/write |
 * | 0x100..0x170 | ISR, in service (256 bits) | read only |
 * | 0x180..0x1F0 | TMR, trigger mode (256 bits) | read only |
 * | 0x200..0x270 | IRR, requests (256 bits) | read only |
 * | 0x280 | ESR, error status (write, then read) | read/write |
 * | 0x300 / 0x310 | ICR low / high: send an IPI | read/write |
 * | 0x320..0x370 | LVT timer, thermal, performance, LINT0, LINT1, error | read/write |
 * | 0x380 / 0x390 | timer initial count / current count | read/write / read only |
 * | 0x3E0 | timer divide configuration (bits 3, 1, 0) | read/write |
 *
 * Any other slot is reserved: an access sets ESR bit 7 (illegal register
 * address), reads 0 and writes nothing.
 *
 * Interrupts: a fixed message (from an I/O APIC or an IPI) or a local source
 * (timer, error) sets the vector's IRR bit (and its TMR bit when level
 * triggered). The core takes the highest IRR vector whose priority class
 * (vector bits 7:4) is above the PPR's; INTA moves it to the ISR. PPR is the
 * TPR, or the highest ISR vector's class when that is higher, so a handler
 * is interrupted only by a higher class (nesting). EOI clears the highest ISR
 * bit and, when its TMR bit is set, broadcasts an EOI to the I/O APICs.
 * Vectors 0 to 15 are illegal: never set in the IRR, ESR bit 5 (send) or 6
 * (receive) instead. While the APIC is software-disabled (SVR bit 8 clear)
 * it holds its IRR and ISR, accepts no fixed interrupt, and every LVT entry
 * is masked and cannot be unmasked.
 *
 * Timer: counts down from the initial count at the bus clock divided by 1
 * to 128; at 0 it raises the LVT timer vector, then stops (one-shot) or
 * reloads (periodic). Writing the initial count restarts it; 0 stops it.
 * The count is derived from machine time, so any amount of time may pass
 * between accesses at no cost, as the PIT model does.
 *
 * Design for SMP: all state is in one small buffer (registers in a
 * Uint32Array indexed by slot, timer state in a Float64Array) that a
 * SharedArrayBuffer can back, so a Worker can own the APIC of its CPU; and
 * IPIs and EOI broadcasts leave through the {@linkcode ApicBus} interface.
 * The page is decoded inside the CPU (see `hal/local_interrupt_controller.ts`),
 * so each core sees its own APIC at the same address. Another thread
 * delivers bus messages to an APIC it does not own through a
 * {@linkcode LocalApicView} of the same buffer: the words a sender and the
 * owner both change (IRR, TMR, the pending errors) are updated with
 * `Atomics`, so neither loses the other's bits.
 *
 * Not modelled (documented, deliberate): the TSC-deadline timer mode, the
 * thermal and performance-counter sources (their LVT entries are storage),
 * spurious interrupts (INTA cannot race a TPR write here), directed EOI
 * (version bit 24 is 0), and sending lowest-priority IPIs (ESR bit 4, as the
 * SDM allows). NMI, SMI, INIT and start-up messages are counted by the APIC
 * itself; on a machine of several CPUs a {@linkcode LocalApicView} hands them
 * to the machine, which starts an AP or runs its NMI handler (docs/smp.md).
 *
 * @module
 */

import {
  type AccessWidth,
  type Clock,
  type ClockedDevice,
  cyclesAtNs,
  LOCAL_APIC_BASE,
  type LocalInterruptController,
  nsAtCycles,
  type PhysAddr,
} from "../hal/mod.ts";
import {
  APIC_DELIVERY_EXTINT,
  APIC_DELIVERY_FIXED,
  APIC_DELIVERY_LOWEST_PRIORITY,
  type ApicBus,
  type ApicBusTarget,
} from "./apic_bus.ts";

/** Size of the register page. */
export const LOCAL_APIC_MMIO_BYTES = 4096;
/** The bus clock the timer divides (QEMU's APIC bus: 1 GHz). */
export const LOCAL_APIC_BUS_FREQUENCY_HZ = 1_000_000_000;

/** Register offsets (SDM table "Local APIC Register Address Map"). */
export const LAPIC_ID = 0x020;
/** Version register. */
export const LAPIC_VERSION = 0x030;
/** Task priority register. */
export const LAPIC_TPR = 0x080;
/** Arbitration priority register (not implemented on Pentium 4 and later). */
export const LAPIC_APR = 0x090;
/** Processor priority register. */
export const LAPIC_PPR = 0x0a0;
/** End-of-interrupt register. */
export const LAPIC_EOI = 0x0b0;
/** Remote read register (not implemented on Pentium 4 and later). */
export const LAPIC_RRD = 0x0c0;
/** Logical destination register. */
export const LAPIC_LDR = 0x0d0;
/** Destination format register. */
export const LAPIC_DFR = 0x0e0;
/** Spurious-interrupt vector register. */
export const LAPIC_SVR = 0x0f0;
/** First of the eight ISR words. */
export const LAPIC_ISR = 0x100;
/** First of the eight TMR words. */
export const LAPIC_TMR = 0x180;
/** First of the eight IRR words. */
export const LAPIC_IRR = 0x200;
/** Error status register. */
export const LAPIC_ESR = 0x280;
/** Interrupt command register, low half. */
export const LAPIC_ICR_LOW = 0x300;
/** Interrupt command register, high half (destination in bits 31:24). */
export const LAPIC_ICR_HIGH = 0x310;
/** LVT timer. */
export const LAPIC_LVT_TIMER = 0x320;
/** LVT thermal sensor. */
export const LAPIC_LVT_THERMAL = 0x330;
/** LVT performance-monitoring counters. */
export const LAPIC_LVT_PERFORMANCE = 0x340;
/** LVT LINT0 (the 8259's INTR on a PC). */
export const LAPIC_LVT_LINT0 = 0x350;
/** LVT LINT1 (NMI on a PC). */
export const LAPIC_LVT_LINT1 = 0x360;
/** LVT error. */
export const LAPIC_LVT_ERROR = 0x370;
/** Timer initial count. */
export const LAPIC_TIMER_INITIAL_COUNT = 0x380;
/** Timer current count. */
export const LAPIC_TIMER_CURRENT_COUNT = 0x390;
/** Timer divide configuration. */
export const LAPIC_TIMER_DIVIDE = 0x3e0;

/** Version register value: version 0x14 (integrated xAPIC), max LVT entry 5 (six entries). */
export const LAPIC_VERSION_VALUE = 0x0005_0014;
/** SVR bit 8: APIC software enable. */
export const LAPIC_SVR_ENABLE = 1 << 8;
/** SVR after reset: spurious vector 0xFF, software-disabled. */
export const LAPIC_SVR_RESET = 0xff;
/** LVT and ICR bit 12: delivery status (1 = send pending). */
export const LAPIC_DELIVERY_STATUS = 1 << 12;
/** LVT bit 13: LINT input polarity (1 = active low). */
export const LAPIC_LVT_ACTIVE_LOW = 1 << 13;
/** LVT bit 14: LINT remote IRR. */
export const LAPIC_LVT_REMOTE_IRR = 1 << 14;
/** LVT and ICR bit 15: trigger mode (1 = level). */
export const LAPIC_LEVEL_TRIGGERED = 1 << 15;
/** LVT bit 16: masked. */
export const LAPIC_LVT_MASKED = 1 << 16;
/** LVT timer bit 17: periodic (0 = one-shot). */
export const LAPIC_TIMER_PERIODIC = 1 << 17;
/** ICR bit 11: logical destination mode. */
export const LAPIC_ICR_LOGICAL = 1 << 11;
/** ICR bit 14: level (assert); always 1 except for INIT de-assert. */
export const LAPIC_ICR_ASSERT = 1 << 14;
/** ESR bit 4: a lowest-priority IPI this APIC does not send. */
export const LAPIC_ESR_REDIRECTABLE_IPI = 1 << 4;
/** ESR bit 5: send illegal vector (0 to 15). */
export const LAPIC_ESR_SEND_ILLEGAL_VECTOR = 1 << 5;
/** ESR bit 6: receive illegal vector (0 to 15). */
export const LAPIC_ESR_RECEIVE_ILLEGAL_VECTOR = 1 << 6;
/** ESR bit 7: illegal (reserved) register address. */
export const LAPIC_ESR_ILLEGAL_REGISTER = 1 << 7;

/** Bytes of {@linkcode LocalApicOptions.stateBuffer}: 256 register slots, 4 internal words, 4 times. */
export const LOCAL_APIC_STATE_BYTES: number = 256 * 4 + 4 * 4 + 4 * 8;

// Slot indexes (offset / 16).
const SLOT_SHIFT = 4;
const SLOT_ID = LAPIC_ID >> SLOT_SHIFT;
const SLOT_TPR = LAPIC_TPR >> SLOT_SHIFT;
const SLOT_LDR = LAPIC_LDR >> SLOT_SHIFT;
const SLOT_DFR = LAPIC_DFR >> SLOT_SHIFT;
const SLOT_SVR = LAPIC_SVR >> SLOT_SHIFT;
const SLOT_ISR = LAPIC_ISR >> SLOT_SHIFT;
const SLOT_TMR = LAPIC_TMR >> SLOT_SHIFT;
const SLOT_IRR = LAPIC_IRR >> SLOT_SHIFT;
const SLOT_ESR = LAPIC_ESR >> SLOT_SHIFT;
const SLOT_ICR_LOW = LAPIC_ICR_LOW >> SLOT_SHIFT;
const SLOT_ICR_HIGH = LAPIC_ICR_HIGH >> SLOT_SHIFT;
const SLOT_LVT_TIMER = LAPIC_LVT_TIMER >> SLOT_SHIFT;
const SLOT_LVT_THERMAL = LAPIC_LVT_THERMAL >> SLOT_SHIFT;
const SLOT_LVT_PERFORMANCE = LAPIC_LVT_PERFORMANCE >> SLOT_SHIFT;
const SLOT_LVT_LINT0 = LAPIC_LVT_LINT0 >> SLOT_SHIFT;
const SLOT_LVT_LINT1 = LAPIC_LVT_LINT1 >> SLOT_SHIFT;
const SLOT_LVT_ERROR = LAPIC_LVT_ERROR >> SLOT_SHIFT;
const SLOT_INITIAL = LAPIC_TIMER_INITIAL_COUNT >> SLOT_SHIFT;
const SLOT_DIVIDE = LAPIC_TIMER_DIVIDE >> SLOT_SHIFT;
const VECTOR_WORDS = 8;
const REGISTER_SLOTS = 256;
// Internal words after the register slots.
const INTERNAL_ESR_PENDING = 0;
const INTERNAL_WORDS = 4;
// Timer state (Float64Array): where counting started, the count then, the next expiry.
const TIMER_START_NS = 0;
const TIMER_START_COUNT = 1;
const TIMER_NEXT_FIRE_NS = 2;
const TIMING_WORDS = 4;

const ID_BITS = 0xff00_0000;
const DFR_MODEL_BITS = 0xf000_0000;
const DFR_FLAT_MODEL = 0xf;
const SVR_WRITABLE = 0x1ff;
const VECTOR_MASK = 0xff;
const PRIORITY_CLASS_MASK = 0xf0;
const FIRST_LEGAL_VECTOR = 16;
const DELIVERY_MODE_SHIFT = 8;
const DELIVERY_MODE_MASK = 0b111;
const ICR_SHORTHAND_SHIFT = 18;
const ICR_SHORTHAND_MASK = 0b11;
const ICR_WRITABLE = 0x000c_cfff; // vector, mode, dest mode, level, trigger, shorthand
const LVT_TIMER_WRITABLE = VECTOR_MASK | LAPIC_LVT_MASKED | LAPIC_TIMER_PERIODIC;
const LVT_PLAIN_WRITABLE = VECTOR_MASK | (DELIVERY_MODE_MASK << DELIVERY_MODE_SHIFT) |
  LAPIC_LVT_MASKED;
const LVT_LINT_WRITABLE = LVT_PLAIN_WRITABLE | LAPIC_LVT_ACTIVE_LOW | LAPIC_LEVEL_TRIGGERED;
const LVT_ERROR_WRITABLE = VECTOR_MASK | LAPIC_LVT_MASKED;
const DIVIDE_BITS = 0b1011;
const ICR_DESTINATION_SHIFT = 24;
const DFR_MODEL_SHIFT = 28;
const CLUSTER_MASK = 0xf0;
const CLUSTER_MEMBERS = 0x0f;

/** The six LVT slots, lowest offset first. */
const LVT_SLOTS = [
  SLOT_LVT_TIMER,
  SLOT_LVT_THERMAL,
  SLOT_LVT_PERFORMANCE,
  SLOT_LVT_LINT0,
  SLOT_LVT_LINT1,
  SLOT_LVT_ERROR,
];

/** The timer's divisor for each divide-configuration value (bits 3, 1, 0). */
export function lapicTimerDivisor(divideConfiguration: number): number {
  const code = ((divideConfiguration & 0b1000) >> 1) | (divideConfiguration & 0b11);
  return code === 0b111 ? 1 : 2 << code;
}

/** Options of {@linkcode LocalApic}. */
export interface LocalApicOptions {
  /** The APIC ID the hardware assigns (0 for the bootstrap processor). */
  readonly apicId: number;
  /** Machine time, for the timer. */
  readonly clock: Clock;
  /** Where IPIs and EOI broadcasts go. */
  readonly bus: ApicBus;
  /** The timer's bus clock (default {@linkcode LOCAL_APIC_BUS_FREQUENCY_HZ}). */
  readonly busFrequencyHz?: number;
  /** Physical base of the register page (default `LOCAL_APIC_BASE`, 0xFEE00000). */
  readonly mmioBase?: PhysAddr;
  /**
   * The buffer holding the state ({@linkcode LOCAL_APIC_STATE_BYTES}), e.g. a
   * SharedArrayBuffer a Worker also maps; default a new one.
   */
  readonly stateBuffer?: ArrayBufferLike;
  /**
   * Take the buffer's contents as they are (another view of a running APIC,
   * or a saved state) instead of resetting it to the power-up state.
   */
  readonly keepState?: boolean;
}

/**
 * Creates the state buffer of a local APIC in its power-up state, shared so
 * that the CPU owning the APIC and the senders on other threads see one
 * state ({@linkcode LocalApicOptions.stateBuffer}, {@linkcode LocalApicView}).
 *
 * @param apicId The APIC ID the hardware assigns.
 * @returns The buffer, {@linkcode LOCAL_APIC_STATE_BYTES} long.
 * @throws {RangeError} For an APIC ID outside 0..255.
 */
export function createSharedLocalApicState(apicId: number): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(LOCAL_APIC_STATE_BYTES);
  resetState(buffer, apicId);
  return buffer;
}

/** A local APIC: registers, interrupt acceptance, IPIs, EOI and the timer. */
export class LocalApic implements LocalInterruptController, ApicBusTarget, ClockedDevice {
  /** Name used in messages. */
  readonly name = "local-apic";
  /** Physical base of the register page. */
  readonly mmioBase: PhysAddr;
  /** Size of the register page. */
  readonly mmioSizeBytes: number = LOCAL_APIC_MMIO_BYTES;
  /** The timer's bus clock, in Hz. */
  readonly busFrequencyHz: number;
  /** NMI, SMI, INIT and start-up messages this APIC received itself (a view's go to the machine). */
  specialMessagesReceived = 0;
  /** The buffer holding all of the state. */
  readonly stateBuffer: ArrayBufferLike;
  readonly #regs: Uint32Array;
  readonly #internal: Uint32Array;
  readonly #timing: Float64Array;
  readonly #clock: Clock;
  readonly #bus: ApicBus;

  /** Creates a local APIC in its power-up state (or over a kept state buffer). */
  constructor(options: LocalApicOptions) {
    this.#clock = options.clock;
    this.#bus = options.bus;
    this.mmioBase = options.mmioBase ?? LOCAL_APIC_BASE;
    this.busFrequencyHz = options.busFrequencyHz ?? LOCAL_APIC_BUS_FREQUENCY_HZ;
    this.stateBuffer = options.stateBuffer ?? new ArrayBuffer(LOCAL_APIC_STATE_BYTES);
    if (this.stateBuffer.byteLength < LOCAL_APIC_STATE_BYTES) {
      throw new RangeError(
        `Local APIC state buffer of ${this.stateBuffer.byteLength} bytes: ` +
          `needs ${LOCAL_APIC_STATE_BYTES}`,
      );
    }
    this.#regs = new Uint32Array(this.stateBuffer, 0, REGISTER_SLOTS);
    this.#internal = new Uint32Array(this.stateBuffer, REGISTER_SLOTS * 4, INTERNAL_WORDS);
    this.#timing = new Float64Array(
      this.stateBuffer,
      (REGISTER_SLOTS + INTERNAL_WORDS) * 4,
      TIMING_WORDS,
    );
    if (!options.keepState) resetState(this.stateBuffer, options.apicId);
  }

  /** The APIC ID (ID register bits 31:24). */
  get apicId(): number {
    return this.#regs[SLOT_ID] >>> ICR_DESTINATION_SHIFT;
  }

  /** The task priority register. */
  get taskPriority(): number {
    return this.#regs[SLOT_TPR];
  }

  /** Whether SVR bit 8 (APIC software enable) is set. */
  get isSoftwareEnabled(): boolean {
    return (this.#regs[SLOT_SVR] & LAPIC_SVR_ENABLE) !== 0;
  }

  /** The processor priority: the TPR, or the highest in-service class when that is higher. */
  get processorPriority(): number {
    const tpr = this.#regs[SLOT_TPR];
    const isrv = Math.max(0, highestBit(this.#regs, SLOT_ISR));
    return (tpr & PRIORITY_CLASS_MASK) >= (isrv & PRIORITY_CLASS_MASK)
      ? tpr
      : isrv & PRIORITY_CLASS_MASK;
  }

  /** Whether the logical destination `destination` names this APIC (flat or cluster model). */
  matchesLogical(destination: number): boolean {
    return matchesLogicalIn(this.#regs, destination);
  }

  /** Receives a bus message: see {@linkcode ApicBusTarget.receive}. */
  receive(deliveryMode: number, vector: number, isLevelTriggered: boolean): boolean {
    this.advanceTo(this.#clock.nowNs());
    if (deliveryMode !== APIC_DELIVERY_FIXED && deliveryMode !== APIC_DELIVERY_LOWEST_PRIORITY) {
      this.specialMessagesReceived++;
      return true;
    }
    if (!this.isSoftwareEnabled) return false;
    return this.#acceptFixed(vector, isLevelTriggered);
  }

  pendingVector(): number {
    if (!this.isSoftwareEnabled) return -1;
    const vector = highestBit(this.#regs, SLOT_IRR);
    if (vector < 0) return -1;
    return (vector & PRIORITY_CLASS_MASK) > (this.processorPriority & PRIORITY_CLASS_MASK)
      ? vector
      : -1;
  }

  acknowledge(vector: number): void {
    // A sender on another thread may be setting another bit of the word.
    clearBit(this.#regs, SLOT_IRR, vector);
    setBit(this.#regs, SLOT_ISR, vector);
  }

  acceptsExtInt(): boolean {
    const lint0 = this.#regs[SLOT_LVT_LINT0];
    return (lint0 & LAPIC_LVT_MASKED) === 0 &&
      ((lint0 >>> DELIVERY_MODE_SHIFT) & DELIVERY_MODE_MASK) === APIC_DELIVERY_EXTINT;
  }

  /** Reads a register. Narrow accesses read bytes of the slot's low 32 bits; see the module doc. */
  mmioRead(offsetBytes: number, width: AccessWidth): number {
    this.advanceTo(this.#clock.nowNs());
    const byteInSlot = offsetBytes & 0xf;
    if (byteInSlot + width > 4) return 0; // touches bytes 4 to 15 of a register: undefined
    const value = this.#read(offsetBytes >> SLOT_SHIFT);
    return width === 4 ? value : (value >>> (byteInSlot * 8)) & ((1 << (width * 8)) - 1);
  }

  /** Writes a register. Narrow writes merge into the slot's low 32 bits first. */
  mmioWrite(offsetBytes: number, value: number, width: AccessWidth): void {
    this.advanceTo(this.#clock.nowNs());
    const byteInSlot = offsetBytes & 0xf;
    if (byteInSlot + width > 4) return;
    const slot = offsetBytes >> SLOT_SHIFT;
    let merged = value >>> 0;
    if (width !== 4) {
      const shift = byteInSlot * 8;
      const mask = ((1 << (width * 8)) - 1) << shift;
      merged = ((this.#regs[slot] & ~mask) | ((value << shift) & mask)) >>> 0;
    }
    this.#write(slot, merged);
  }

  /** Catches the timer up with machine time, raising its interrupt if it expired. */
  advanceTo(nowNs: number): void {
    const timing = this.#timing;
    if (nowNs < timing[TIMER_NEXT_FIRE_NS]) return;
    const initial = this.#regs[SLOT_INITIAL];
    if ((this.#regs[SLOT_LVT_TIMER] & LAPIC_TIMER_PERIODIC) !== 0 && initial > 0) {
      const ticks = this.#ticksSinceStart(nowNs);
      const startCount = timing[TIMER_START_COUNT];
      const nextTick = startCount + (Math.floor((ticks - startCount) / initial) + 1) * initial;
      timing[TIMER_NEXT_FIRE_NS] = timing[TIMER_START_NS] + this.#nsForTicks(nextTick);
    } else {
      timing[TIMER_NEXT_FIRE_NS] = Infinity;
    }
    // Several expiries since the last call collapse into one IRR bit.
    this.#raiseLocal(SLOT_LVT_TIMER);
  }

  /** When the timer will next raise its interrupt, or Infinity (stopped or masked). */
  nextEventNs(): number {
    if ((this.#regs[SLOT_LVT_TIMER] & LAPIC_LVT_MASKED) !== 0) return Infinity;
    return this.#timing[TIMER_NEXT_FIRE_NS];
  }

  /** The timer's current count at machine time `nowNs`. */
  currentCount(nowNs: number): number {
    const startCount = this.#timing[TIMER_START_COUNT];
    const initial = this.#regs[SLOT_INITIAL];
    if (startCount === 0) return 0;
    const ticks = this.#ticksSinceStart(nowNs);
    if (ticks < startCount) return startCount - ticks;
    if ((this.#regs[SLOT_LVT_TIMER] & LAPIC_TIMER_PERIODIC) === 0 || initial === 0) return 0;
    return initial - ((ticks - startCount) % initial);
  }

  #read(slot: number): number {
    const regs = this.#regs;
    switch (slot) {
      case SLOT_ID:
      case SLOT_TPR:
      case SLOT_LDR:
      case SLOT_DFR:
      case SLOT_SVR:
      case SLOT_ESR:
      case SLOT_ICR_LOW:
      case SLOT_ICR_HIGH:
      case SLOT_LVT_TIMER:
      case SLOT_LVT_THERMAL:
      case SLOT_LVT_PERFORMANCE:
      case SLOT_LVT_LINT0:
      case SLOT_LVT_LINT1:
      case SLOT_LVT_ERROR:
      case SLOT_INITIAL:
      case SLOT_DIVIDE:
        return regs[slot];
      case LAPIC_VERSION >> SLOT_SHIFT:
        return LAPIC_VERSION_VALUE;
      case LAPIC_PPR >> SLOT_SHIFT:
        return this.processorPriority;
      case LAPIC_TIMER_CURRENT_COUNT >> SLOT_SHIFT:
        return this.currentCount(this.#clock.nowNs());
      case LAPIC_APR >> SLOT_SHIFT:
      case LAPIC_RRD >> SLOT_SHIFT:
      case LAPIC_EOI >> SLOT_SHIFT:
        return 0;
      default:
        if (slot >= SLOT_ISR && slot < SLOT_IRR + VECTOR_WORDS) return regs[slot];
        this.#reportError(LAPIC_ESR_ILLEGAL_REGISTER);
        return 0;
    }
  }

  #write(slot: number, value: number): void {
    const regs = this.#regs;
    switch (slot) {
      case SLOT_ID:
      case SLOT_LDR:
      case SLOT_ICR_HIGH:
        regs[slot] = value & ID_BITS;
        return;
      case SLOT_TPR:
        regs[slot] = value & VECTOR_MASK;
        return;
      case SLOT_DFR:
        regs[slot] = ((value & DFR_MODEL_BITS) | ~DFR_MODEL_BITS) >>> 0;
        return;
      case SLOT_SVR:
        this.#writeSvr(value & SVR_WRITABLE);
        return;
      case LAPIC_EOI >> SLOT_SHIFT:
        this.#endOfInterrupt();
        return;
      case SLOT_ESR:
        // A write latches the errors seen since the last one and clears them.
        regs[slot] = Atomics.exchange(this.#internal, INTERNAL_ESR_PENDING, 0);
        return;
      case SLOT_ICR_LOW:
        this.#sendIpi(value & ICR_WRITABLE);
        return;
      case SLOT_LVT_TIMER:
        this.#rebaseTimer();
        this.#writeLvt(slot, value, LVT_TIMER_WRITABLE);
        this.#scheduleTimer();
        return;
      case SLOT_LVT_THERMAL:
      case SLOT_LVT_PERFORMANCE:
        this.#writeLvt(slot, value, LVT_PLAIN_WRITABLE);
        return;
      case SLOT_LVT_LINT0:
      case SLOT_LVT_LINT1:
        this.#writeLvt(slot, value, LVT_LINT_WRITABLE);
        return;
      case SLOT_LVT_ERROR:
        this.#writeLvt(slot, value, LVT_ERROR_WRITABLE);
        return;
      case SLOT_INITIAL:
        regs[slot] = value;
        this.#timing[TIMER_START_NS] = this.#clock.nowNs();
        this.#timing[TIMER_START_COUNT] = value;
        this.#scheduleTimer();
        return;
      case SLOT_DIVIDE:
        this.#rebaseTimer();
        regs[slot] = value & DIVIDE_BITS;
        this.#scheduleTimer();
        return;
      case LAPIC_VERSION >> SLOT_SHIFT:
      case LAPIC_PPR >> SLOT_SHIFT:
      case LAPIC_APR >> SLOT_SHIFT:
      case LAPIC_RRD >> SLOT_SHIFT:
      case LAPIC_TIMER_CURRENT_COUNT >> SLOT_SHIFT:
        return; // read only
      default:
        if (slot >= SLOT_ISR && slot < SLOT_IRR + VECTOR_WORDS) return; // read only
        this.#reportError(LAPIC_ESR_ILLEGAL_REGISTER);
    }
  }

  #writeSvr(value: number): void {
    const wasEnabled = this.isSoftwareEnabled;
    this.#regs[SLOT_SVR] = value;
    if (wasEnabled && (value & LAPIC_SVR_ENABLE) === 0) {
      for (const slot of LVT_SLOTS) this.#regs[slot] |= LAPIC_LVT_MASKED;
    }
  }

  #writeLvt(slot: number, value: number, writable: number): void {
    const regs = this.#regs;
    // Read-only bits (delivery status, remote IRR) keep their value.
    let next = (regs[slot] & ~writable) | (value & writable);
    if (!this.isSoftwareEnabled) next |= LAPIC_LVT_MASKED;
    regs[slot] = next >>> 0;
  }

  /** Restarts counting from the current count now, so a divide or mode change keeps it. */
  #rebaseTimer(): void {
    const nowNs = this.#clock.nowNs();
    const count = this.currentCount(nowNs);
    this.#timing[TIMER_START_NS] = nowNs;
    this.#timing[TIMER_START_COUNT] = count;
  }

  #scheduleTimer(): void {
    const startCount = this.#timing[TIMER_START_COUNT];
    this.#timing[TIMER_NEXT_FIRE_NS] = startCount === 0
      ? Infinity
      : this.#timing[TIMER_START_NS] + this.#nsForTicks(startCount);
  }

  #ticksSinceStart(nowNs: number): number {
    const elapsedNs = Math.max(0, nowNs - this.#timing[TIMER_START_NS]);
    return Math.floor(
      cyclesAtNs(elapsedNs, this.busFrequencyHz) / lapicTimerDivisor(this.#regs[SLOT_DIVIDE]),
    );
  }

  /** The earliest time after the start at which `ticks` divided-clock ticks have passed. */
  #nsForTicks(ticks: number): number {
    const cycles = ticks * lapicTimerDivisor(this.#regs[SLOT_DIVIDE]);
    return nsAtCycles(cycles, this.busFrequencyHz, "ceil");
  }

  /** A local interrupt source (timer, error) fires: its LVT entry decides. */
  #raiseLocal(slot: number): void {
    const lvt = this.#regs[slot];
    if ((lvt & LAPIC_LVT_MASKED) !== 0) return;
    this.#acceptFixed(lvt & VECTOR_MASK, false);
  }

  #acceptFixed(vector: number, isLevelTriggered: boolean): boolean {
    if (vector < FIRST_LEGAL_VECTOR) {
      this.#reportError(LAPIC_ESR_RECEIVE_ILLEGAL_VECTOR);
      return false;
    }
    acceptFixedIn(this.#regs, vector, isLevelTriggered);
    return true;
  }

  #endOfInterrupt(): void {
    const vector = highestBit(this.#regs, SLOT_ISR);
    if (vector < 0) return;
    clearBit(this.#regs, SLOT_ISR, vector);
    if (testBit(this.#regs, SLOT_TMR, vector)) this.#bus.broadcastEoi(vector);
  }

  #sendIpi(low: number): void {
    const regs = this.#regs;
    const vector = low & VECTOR_MASK;
    const deliveryMode = (low >>> DELIVERY_MODE_SHIFT) & DELIVERY_MODE_MASK;
    regs[SLOT_ICR_LOW] = low;
    if (deliveryMode === APIC_DELIVERY_LOWEST_PRIORITY) {
      this.#reportError(LAPIC_ESR_REDIRECTABLE_IPI);
      return;
    }
    if (deliveryMode === APIC_DELIVERY_FIXED && vector < FIRST_LEGAL_VECTOR) {
      this.#reportError(LAPIC_ESR_SEND_ILLEGAL_VECTOR);
      return;
    }
    // Delivery status reads "send pending" until the message is on its way.
    regs[SLOT_ICR_LOW] = low | LAPIC_DELIVERY_STATUS;
    this.#bus.deliver(
      this.apicId,
      (low >>> ICR_SHORTHAND_SHIFT) & ICR_SHORTHAND_MASK,
      (low & LAPIC_ICR_LOGICAL) !== 0,
      regs[SLOT_ICR_HIGH] >>> ICR_DESTINATION_SHIFT,
      deliveryMode,
      vector,
      false, // fixed IPIs are edge triggered on Pentium 4 and later
    );
    regs[SLOT_ICR_LOW] = low;
  }

  /** Records an error; a newly set error bit raises the LVT error interrupt. */
  #reportError(bit: number): void {
    if ((Atomics.or(this.#internal, INTERNAL_ESR_PENDING, bit) & bit) !== 0) return;
    this.#raiseLocal(SLOT_LVT_ERROR);
  }
}

/**
 * What a {@linkcode LocalApicView} reports to the machine: a fixed
 * interrupt accepted (the owning CPU must be woken if it is halted), or an
 * NMI, SMI, INIT or start-up message, which the machine acts on (INIT and
 * STARTUP start an application processor).
 */
export interface LocalApicViewEvents {
  /** A fixed interrupt was accepted into the IRR. */
  accepted(): void;
  /** An NMI, SMI, INIT or start-up message arrived, with its vector. */
  special(deliveryMode: number, vector: number): void;
}

/**
 * The APIC bus's side of a local APIC that another thread owns: it reads the
 * ID and destination registers and accepts messages into the shared state
 * buffer, atomically, as the APIC itself would (docs/apic.md, "Priorities,
 * acceptance, EOI and nesting"), then tells the machine. The owner's
 * {@linkcode LocalApic} takes the interrupt at its CPU's next instruction
 * boundary. It never touches the timer, which only the owner runs.
 */
export class LocalApicView implements ApicBusTarget {
  readonly #regs: Uint32Array;
  readonly #internal: Uint32Array;
  readonly #events: LocalApicViewEvents;

  /**
   * A view of the APIC whose state is `stateBuffer`.
   *
   * @param stateBuffer The shared state ({@linkcode createSharedLocalApicState}).
   * @param events What to tell the machine.
   * @throws {RangeError} If the buffer is too short.
   */
  constructor(stateBuffer: SharedArrayBuffer, events: LocalApicViewEvents) {
    if (stateBuffer.byteLength < LOCAL_APIC_STATE_BYTES) {
      throw new RangeError(
        `Local APIC state buffer of ${stateBuffer.byteLength} bytes: needs ${LOCAL_APIC_STATE_BYTES}`,
      );
    }
    this.#regs = new Uint32Array(stateBuffer, 0, REGISTER_SLOTS);
    this.#internal = new Uint32Array(stateBuffer, REGISTER_SLOTS * 4, INTERNAL_WORDS);
    this.#events = events;
  }

  /** The APIC ID (ID register bits 31:24). */
  get apicId(): number {
    return Atomics.load(this.#regs, SLOT_ID) >>> ICR_DESTINATION_SHIFT;
  }

  /** The task priority register. */
  get taskPriority(): number {
    return Atomics.load(this.#regs, SLOT_TPR);
  }

  /** Whether the logical destination `destination` names this APIC. */
  matchesLogical(destination: number): boolean {
    return matchesLogicalIn(this.#regs, destination);
  }

  /** Receives a bus message: see {@linkcode ApicBusTarget.receive}. */
  receive(deliveryMode: number, vector: number, isLevelTriggered: boolean): boolean {
    if (deliveryMode !== APIC_DELIVERY_FIXED && deliveryMode !== APIC_DELIVERY_LOWEST_PRIORITY) {
      this.#events.special(deliveryMode, vector);
      return true;
    }
    if ((Atomics.load(this.#regs, SLOT_SVR) & LAPIC_SVR_ENABLE) === 0) return false;
    if (vector < FIRST_LEGAL_VECTOR) {
      // The owner raises the LVT error interrupt when it next latches the ESR;
      // a remote receiver records the error only.
      Atomics.or(this.#internal, INTERNAL_ESR_PENDING, LAPIC_ESR_RECEIVE_ILLEGAL_VECTOR);
      return false;
    }
    acceptFixedIn(this.#regs, vector, isLevelTriggered);
    this.#events.accepted();
    return true;
  }
}

/** The highest vector set in the 256-bit register starting at `slot`, or -1. */
function highestBit(regs: Uint32Array, slot: number): number {
  for (let word = VECTOR_WORDS - 1; word >= 0; word--) {
    const bits = regs[slot + word];
    if (bits !== 0) return word * 32 + 31 - Math.clz32(bits);
  }
  return -1;
}

/** Sets a vector's bit atomically: IRR and TMR words have writers on several threads. */
function setBit(regs: Uint32Array, slot: number, vector: number): void {
  Atomics.or(regs, slot + (vector >>> 5), 1 << (vector & 31));
}

/** Clears a vector's bit atomically (see setBit). */
function clearBit(regs: Uint32Array, slot: number, vector: number): void {
  Atomics.and(regs, slot + (vector >>> 5), ~(1 << (vector & 31)));
}

/** Sets a fixed interrupt's IRR bit, and its TMR bit for level or clears it for edge. */
function acceptFixedIn(regs: Uint32Array, vector: number, isLevelTriggered: boolean): void {
  if (isLevelTriggered) setBit(regs, SLOT_TMR, vector);
  else clearBit(regs, SLOT_TMR, vector);
  setBit(regs, SLOT_IRR, vector);
}

/** Whether the logical destination `destination` names the APIC of `regs` (flat or cluster). */
function matchesLogicalIn(regs: Uint32Array, destination: number): boolean {
  const logicalId = regs[SLOT_LDR] >>> ICR_DESTINATION_SHIFT;
  if (regs[SLOT_DFR] >>> DFR_MODEL_SHIFT === DFR_FLAT_MODEL) {
    return (logicalId & destination) !== 0;
  }
  return (logicalId & CLUSTER_MASK) === (destination & CLUSTER_MASK) &&
    (logicalId & destination & CLUSTER_MEMBERS) !== 0;
}

/** Puts the state in `buffer` in the power-up state of APIC `apicId`. */
function resetState(buffer: ArrayBufferLike, apicId: number): void {
  if (!Number.isInteger(apicId) || apicId < 0 || apicId > VECTOR_MASK) {
    throw new RangeError(`Invalid APIC ID ${apicId}: expected 0..255`);
  }
  const regs = new Uint32Array(buffer, 0, REGISTER_SLOTS);
  regs.fill(0);
  new Uint32Array(buffer, REGISTER_SLOTS * 4, INTERNAL_WORDS).fill(0);
  regs[SLOT_ID] = apicId << ICR_DESTINATION_SHIFT;
  regs[SLOT_DFR] = 0xffff_ffff;
  regs[SLOT_SVR] = LAPIC_SVR_RESET;
  for (const slot of LVT_SLOTS) regs[slot] = LAPIC_LVT_MASKED;
  const timing = new Float64Array(buffer, (REGISTER_SLOTS + INTERNAL_WORDS) * 4, TIMING_WORDS);
  timing[TIMER_START_NS] = 0;
  timing[TIMER_START_COUNT] = 0;
  timing[TIMER_NEXT_FIRE_NS] = Infinity;
}

function testBit(regs: Uint32Array, slot: number, vector: number): boolean {
  return (regs[slot + (vector >>> 5)] & (1 << (vector & 31))) !== 0;
}
