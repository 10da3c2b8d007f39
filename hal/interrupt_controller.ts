/**
 * The PC's cascaded 8259A programmable interrupt controllers (docs/8259.md):
 * a master at ports 0x20-0x21 (IRQ 0 to 7) and a slave at 0xA0-0xA1 (IRQ 8
 * to 15) whose INT output drives the master's IR2.
 *
 * Lines are edge-triggered: a rising edge latches a request (IRR); the CPU's
 * INTA takes the highest-priority unmasked request not blocked by one in
 * service and moves it in service (ISR) until an end-of-interrupt command.
 * Priority is fixed: IRQ 0, 1, then the slave's 8 to 15, then 3 to 7. A
 * request from the slave sets the master's in-service bit 2 as well, so its
 * handler must send EOI to both chips (slave first), as every PC kernel does.
 * A line that stays high after EOI raises nothing new, so a driver must drain
 * every cause (the 16550's IIR loop) before returning.
 *
 * Port interface (Intel 8259A datasheet, "Initialization Command Words" and
 * "Operation Command Words"), the same on both chips:
 *
 * | port | read | write |
 * |---|---|---|
 * | base + 0 | IRR, or ISR after OCW3 "read ISR" | ICW1 (bit 4 set), OCW2 (bits 4:3 = 00), OCW3 (bits 4:3 = 01) |
 * | base + 1 | IMR | ICW2, ICW3, ICW4 during initialisation, then OCW1 (IMR) |
 *
 * ICW1 starts initialisation and clears the mask; ICW2 sets the vector base
 * (bits 7:3); ICW3 follows unless ICW1 says "single"; ICW4 follows when ICW1
 * asks for it, and its AEOI bit makes INTA end the interrupt by itself.
 * OCW2 non-specific and specific EOI are modelled (the rotate forms end the
 * interrupt too, without rotating); OCW3 selects IRR or ISR for reads.
 * Not modelled (documented, deliberate): level-triggered mode (ICW1 LTIM),
 * priority rotation, special mask mode, poll mode and special fully nested
 * mode. Until software initialises it, each chip behaves as a PC BIOS left
 * it: vector bases 0x08 and 0x70, nothing masked.
 *
 * @module
 */

import type { AccessWidth, PortDevice } from "./bus.ts";

/** Number of IRQ lines (master and slave 8259A). */
export const IRQ_LINE_COUNT = 16;
/** The PIT timer's IRQ line. */
export const IRQ_TIMER = 0;
/** The master's IR2: the slave's INT output, not a device line (ISA IRQ 2 is IRQ 9 on a PC). */
export const IRQ_CASCADE = 2;
/** COM1's IRQ line. */
export const IRQ_COM1 = 4;
/** Ports each chip decodes: command/status at +0, data (mask) at +1. */
export const PIC_PORT_COUNT = 2;
/** The vector base a PC BIOS gives the master (IRQ 0 = vector 0x08). */
export const PIC_BIOS_MASTER_VECTOR_BASE = 0x08;
/** The vector base a PC BIOS gives the slave (IRQ 8 = vector 0x70). */
export const PIC_BIOS_SLAVE_VECTOR_BASE = 0x70;

/** ICW1 marker: bit 4 set on the command port starts initialisation. */
export const PIC_ICW1_INIT = 1 << 4;
/** ICW1 bit 0 (IC4): an ICW4 follows. */
export const PIC_ICW1_NEEDS_ICW4 = 1 << 0;
/** ICW1 bit 1 (SNGL): a single chip, no ICW3. */
export const PIC_ICW1_SINGLE = 1 << 1;
/** ICW4 bit 0 (uPM): 8086 mode. */
export const PIC_ICW4_8086 = 1 << 0;
/** ICW4 bit 1 (AEOI): automatic end of interrupt at INTA. */
export const PIC_ICW4_AUTO_EOI = 1 << 1;
/** OCW2: non-specific EOI (R SL EOI = 001). */
export const PIC_OCW2_EOI = 0x20;
/** OCW2: specific EOI (R SL EOI = 011) for the level in bits 2:0. */
export const PIC_OCW2_SPECIFIC_EOI = 0x60;
/** OCW3 marker: bits 4:3 = 01. */
export const PIC_OCW3 = 0x08;
/** OCW3: read the IRR on the next command-port read (RR RIS = 10). */
export const PIC_OCW3_READ_IRR = PIC_OCW3 | 0x02;
/** OCW3: read the ISR on the next command-port read (RR RIS = 11). */
export const PIC_OCW3_READ_ISR = PIC_OCW3 | 0x03;

const OCW2_COMMAND_SHIFT = 5;
const OCW2_LEVEL_MASK = 0x07;
const OCW2_NON_SPECIFIC = 0b001;
const OCW2_SPECIFIC = 0b011;
const OCW2_ROTATE_NON_SPECIFIC = 0b101;
const OCW2_ROTATE_SPECIFIC = 0b111;
const OCW3_READ_REGISTER = 0x02;
const OCW3_READ_ISR_BIT = 0x01;
const ICW2_VECTOR_MASK = 0xf8;
// Initialisation sequence steps: which ICW the data port expects next.
const STEP_READY = 0;
const STEP_ICW2 = 2;
const STEP_ICW3 = 3;
const STEP_ICW4 = 4;
const MASTER = 0;
const SLAVE = 1;
const LINES_PER_CHIP = 8;
const CHIP_BITS = 0xff;

/** Anything devices drive IRQ lines on: the 8259 pair, or a board that also feeds the I/O APIC. */
export interface InterruptLines {
  /** Drives `irq` high; a rising edge is an interrupt request. */
  raise(irq: number): void;
  /** Drives `irq` low. */
  lower(irq: number): void;
}

/** Latches device interrupt requests and hands them to the CPU by priority. */
export class InterruptController implements InterruptLines {
  #level = 0;
  #requested = 0;
  #inService = 0;
  #mask = 0;
  /** Per chip: vector base (ICW2), ICW step, ICW4 expected, single mode, AEOI, ISR reads. */
  readonly #vectorBase = [PIC_BIOS_MASTER_VECTOR_BASE, PIC_BIOS_SLAVE_VECTOR_BASE];
  readonly #step = [STEP_READY, STEP_READY];
  readonly #needsIcw4 = [false, false];
  readonly #isSingle = [false, false];
  readonly #isAutoEoi = [false, false];
  readonly #readsIsr = [false, false];
  /** Interrupts raised per line since reset, for statistics. */
  readonly raisedCount: Uint32Array = new Uint32Array(IRQ_LINE_COUNT);
  /** The master's ports (claim them at 0x20). */
  readonly masterPorts: PortDevice = this.#chipPorts(MASTER, "8259a-master@0x20");
  /** The slave's ports (claim them at 0xa0). */
  readonly slavePorts: PortDevice = this.#chipPorts(SLAVE, "8259a-slave@0xa0");

  /** Drives `irq` high; a rising edge latches a request. Throws RangeError for IRQ 2 (the cascade). */
  raise(irq: number): void {
    const bit = lineBit(irq);
    if (irq === IRQ_CASCADE) {
      throw new RangeError("IRQ 2 is the cascade from the slave 8259A: a PC wires ISA IRQ 2 to 9");
    }
    if ((this.#level & bit) === 0) {
      this.#level |= bit;
      this.#requested |= bit;
      this.raisedCount[irq]++;
    }
  }

  /** Drives `irq` low. */
  lower(irq: number): void {
    this.#level &= ~lineBit(irq);
  }

  /** Whether `irq` is currently driven high. */
  isHigh(irq: number): boolean {
    return (this.#level & lineBit(irq)) !== 0;
  }

  /** Masks (`"masked"`) or unmasks (`"unmasked"`) a line, as OCW1 does. */
  setMask(irq: number, state: "masked" | "unmasked"): void {
    if (state === "masked") this.#mask |= lineBit(irq);
    else this.#mask &= ~lineBit(irq);
  }

  /** The interrupt mask register of both chips: bit n masks IRQ n. */
  get maskBits(): number {
    return this.#mask;
  }

  /** The request register of both chips: bit n is a latched request on IRQ n. */
  get requestBits(): number {
    return this.#requested;
  }

  /** The in-service register of both chips: bit n is IRQ n in service (bit 2: the slave is). */
  get inServiceBits(): number {
    return this.#inService;
  }

  /** The vector the CPU receives for `irq`: its chip's ICW2 base plus the line on that chip. */
  vectorOf(irq: number): number {
    lineBit(irq);
    return irq < LINES_PER_CHIP
      ? this.#vectorBase[MASTER] + irq
      : this.#vectorBase[SLAVE] + irq - LINES_PER_CHIP;
  }

  /**
   * The IRQ the CPU would be given now, or -1: the slave's best unmasked
   * request drives the master's IR2; the master then picks, by fixed
   * priority, the best unmasked request with nothing of equal or higher
   * priority in service on it.
   */
  pendingIrq(): number {
    const ready = this.#requested & ~this.#mask;
    const slaveReady = (ready >>> LINES_PER_CHIP) & CHIP_BITS;
    const slaveLine = bestLine(slaveReady, (this.#inService >>> LINES_PER_CHIP) & CHIP_BITS);
    const masterReady = (ready & CHIP_BITS & ~(1 << IRQ_CASCADE)) |
      (slaveLine >= 0 && (this.#mask & (1 << IRQ_CASCADE)) === 0 ? 1 << IRQ_CASCADE : 0);
    const masterLine = bestLine(masterReady, this.#inService & CHIP_BITS);
    if (masterLine !== IRQ_CASCADE) return masterLine;
    return LINES_PER_CHIP + slaveLine;
  }

  /** INTA: moves `irq` from requested to in service (on both chips for a slave line). */
  acknowledge(irq: number): void {
    const bit = lineBit(irq);
    this.#requested &= ~bit;
    const isSlave = irq >= LINES_PER_CHIP;
    if (!this.#isAutoEoi[isSlave ? SLAVE : MASTER]) this.#inService |= bit;
    if (isSlave && !this.#isAutoEoi[MASTER]) this.#inService |= 1 << IRQ_CASCADE;
  }

  /**
   * What a kernel's end of interrupt for the highest-priority line in
   * service does: a non-specific EOI to the slave too when that line is
   * the cascade, then to the master.
   */
  endOfInterrupt(): void {
    if (lowestBit(this.#inService & CHIP_BITS) === IRQ_CASCADE) this.#nonSpecificEoi(SLAVE);
    this.#nonSpecificEoi(MASTER);
  }

  #nonSpecificEoi(chip: number): void {
    const line = lowestBit(this.#chipBits(this.#inService, chip));
    if (line >= 0) this.#inService &= ~(1 << (chip * LINES_PER_CHIP + line));
  }

  #chipBits(bits: number, chip: number): number {
    return (bits >>> (chip * LINES_PER_CHIP)) & CHIP_BITS;
  }

  #chipPorts(chip: number, name: string): PortDevice {
    return {
      name,
      portRead: (offset: number, _width: AccessWidth): number => {
        if (offset === 0) {
          return this.#chipBits(this.#readsIsr[chip] ? this.#inService : this.#requested, chip);
        }
        return this.#chipBits(this.#mask, chip);
      },
      portWrite: (offset: number, value: number, _width: AccessWidth): void => {
        if (offset === 0) this.#command(chip, value & CHIP_BITS);
        else this.#data(chip, value & CHIP_BITS);
      },
    };
  }

  #command(chip: number, value: number): void {
    const shift = chip * LINES_PER_CHIP;
    if ((value & PIC_ICW1_INIT) !== 0) {
      // ICW1: clear the mask, read IRR, and wait for ICW2.
      this.#mask &= ~(CHIP_BITS << shift);
      this.#readsIsr[chip] = false;
      this.#needsIcw4[chip] = (value & PIC_ICW1_NEEDS_ICW4) !== 0;
      this.#isSingle[chip] = (value & PIC_ICW1_SINGLE) !== 0;
      if (!this.#needsIcw4[chip]) this.#isAutoEoi[chip] = false;
      this.#step[chip] = STEP_ICW2;
      return;
    }
    if ((value & PIC_OCW3) !== 0) {
      if ((value & OCW3_READ_REGISTER) !== 0) {
        this.#readsIsr[chip] = (value & OCW3_READ_ISR_BIT) !== 0;
      }
      return;
    }
    const command = value >>> OCW2_COMMAND_SHIFT;
    if (command === OCW2_NON_SPECIFIC || command === OCW2_ROTATE_NON_SPECIFIC) {
      this.#nonSpecificEoi(chip);
    } else if (command === OCW2_SPECIFIC || command === OCW2_ROTATE_SPECIFIC) {
      this.#inService &= ~(1 << (shift + (value & OCW2_LEVEL_MASK)));
    }
  }

  #data(chip: number, value: number): void {
    switch (this.#step[chip]) {
      case STEP_ICW2:
        this.#vectorBase[chip] = value & ICW2_VECTOR_MASK;
        this.#step[chip] = this.#isSingle[chip]
          ? (this.#needsIcw4[chip] ? STEP_ICW4 : STEP_READY)
          : STEP_ICW3;
        return;
      case STEP_ICW3: // the cascade wiring is fixed on a PC
        this.#step[chip] = this.#needsIcw4[chip] ? STEP_ICW4 : STEP_READY;
        return;
      case STEP_ICW4:
        this.#isAutoEoi[chip] = (value & PIC_ICW4_AUTO_EOI) !== 0;
        this.#step[chip] = STEP_READY;
        return;
      default: {
        // OCW1: the interrupt mask register.
        const shift = chip * LINES_PER_CHIP;
        this.#mask = (this.#mask & ~(CHIP_BITS << shift)) | (value << shift);
      }
    }
  }
}

/** The best (lowest-numbered) line of `ready` with no line of equal or higher priority in service. */
function bestLine(ready: number, inService: number): number {
  if (ready === 0) return -1;
  const line = lowestBit(ready);
  return (inService & ((1 << (line + 1)) - 1)) === 0 ? line : -1;
}

function lowestBit(bits: number): number {
  return bits === 0 ? -1 : 31 - Math.clz32(bits & -bits);
}

function lineBit(irq: number): number {
  if (!Number.isInteger(irq) || irq < 0 || irq >= IRQ_LINE_COUNT) {
    throw new RangeError(`Invalid IRQ line ${irq}: expected 0..${IRQ_LINE_COUNT - 1}`);
  }
  return 1 << irq;
}
