/**
 * The device bus: a 16-bit port I/O space and MMIO ranges of the physical
 * address space, plus the routing of physical accesses to RAM or a device.
 *
 * Devices claim ranges; an overlapping claim throws (as v86's io.js asserts).
 * Reads of unclaimed ports return all ones, as an undriven ISA bus does on a
 * PC; writes to them are ignored and counted. A physical access that hits
 * neither RAM nor an MMIO range is a {@linkcode BusError}.
 *
 * @module
 */

import { hex, type PhysAddr } from "./address.ts";
import { BusError } from "./faults.ts";
import type { PhysicalMemory } from "./physical_memory.ts";

/** Width of a bus access in bytes. */
export type AccessWidth = 1 | 2 | 4;

/** A device that answers port I/O. Offsets are relative to its claimed base. */
export interface PortDevice {
  /** Short name used in messages, e.g. `uart16550@0x3f8`. */
  readonly name: string;
  /** Handles an IN of `width` bytes; returns the value read. */
  portRead(offset: number, width: AccessWidth): number;
  /** Handles an OUT of `width` bytes. */
  portWrite(offset: number, value: number, width: AccessWidth): void;
}

/** A device mapped into the physical address space. */
export interface MmioDevice {
  /** Short name used in messages. */
  readonly name: string;
  /** Handles a read of `width` bytes at `offsetBytes` into the range. */
  mmioRead(offsetBytes: number, width: AccessWidth): number;
  /** Handles a write of `width` bytes at `offsetBytes` into the range. */
  mmioWrite(offsetBytes: number, value: number, width: AccessWidth): void;
}

/** Number of I/O ports on x86: a 16-bit space. */
export const PORT_COUNT = 0x10000;

/** A claimed MMIO range. */
export interface MmioClaim {
  /** First physical address of the range. */
  readonly base: number;
  /** One past the last address. */
  readonly end: number;
  /** The device answering it. */
  readonly device: MmioDevice;
}

/** Routes port I/O and physical accesses to RAM and devices. */
export class DeviceBus {
  /** The RAM this bus fronts. */
  readonly memory: PhysicalMemory;
  /** Writes to unclaimed ports, which real hardware silently drops. */
  unclaimedPortWrites = 0;
  /** Reads of unclaimed ports (answered with all ones). */
  unclaimedPortReads = 0;
  readonly #portOwner: (PortDevice | undefined)[] = new Array(PORT_COUNT);
  readonly #portBase = new Uint16Array(PORT_COUNT);
  readonly #mmio: MmioClaim[] = [];

  /** Creates a bus in front of `memory`. */
  constructor(memory: PhysicalMemory) {
    this.memory = memory;
  }

  /** Claims ports [base, base + count) for `device`; throws RangeError on overlap. */
  claimPorts(base: number, count: number, device: PortDevice): void {
    if (!Number.isInteger(base) || base < 0 || count <= 0 || base + count > PORT_COUNT) {
      throw new RangeError(`Cannot claim ports ${hex(base)}+${count} for ${device.name}`);
    }
    for (let port = base; port < base + count; port++) {
      const owner = this.#portOwner[port];
      if (owner) {
        throw new RangeError(
          `Cannot claim port ${hex(port)} for ${device.name}: already claimed by ${owner.name}`,
        );
      }
    }
    for (let port = base; port < base + count; port++) {
      this.#portOwner[port] = device;
      this.#portBase[port] = base;
    }
  }

  /**
   * Claims physical range [base, base + sizeBytes) for `device`. Throws
   * RangeError if it overlaps RAM or another device's range.
   */
  claimMmio(base: PhysAddr, sizeBytes: number, device: MmioDevice): void {
    const end = base + sizeBytes;
    for (const r of this.memory.ranges) {
      if (base < r.base + r.sizeBytes && r.base < end) {
        throw new RangeError(
          `Cannot claim MMIO ${hex(base)}..${hex(end)} for ${device.name}: overlaps RAM`,
        );
      }
    }
    for (const claim of this.#mmio) {
      if (base < claim.end && claim.base < end) {
        throw new RangeError(
          `Cannot claim MMIO ${hex(base)}..${hex(end)} for ${device.name}: ` +
            `overlaps ${claim.device.name}`,
        );
      }
    }
    this.#mmio.push({ base, end, device });
    this.#mmio.sort((a, b) => a.base - b.base);
  }

  /** The device claiming `port`, if any. */
  portOwner(port: number): PortDevice | undefined {
    return this.#portOwner[port & 0xffff];
  }

  /** IN: reads `width` bytes from `port`; unclaimed ports read as all ones. */
  portIn(port: number, width: AccessWidth): number {
    const device = this.#portOwner[port & 0xffff];
    if (device === undefined) {
      this.unclaimedPortReads++;
      return width === 4 ? 0xffffffff : (1 << (width * 8)) - 1;
    }
    return device.portRead((port & 0xffff) - this.#portBase[port & 0xffff], width);
  }

  /** OUT: writes `width` bytes to `port`; writes to unclaimed ports are dropped. */
  portOut(port: number, value: number, width: AccessWidth): void {
    const device = this.#portOwner[port & 0xffff];
    if (device === undefined) {
      this.unclaimedPortWrites++;
      return;
    }
    const mask = width === 4 ? 0xffffffff : (1 << (width * 8)) - 1;
    device.portWrite((port & 0xffff) - this.#portBase[port & 0xffff], (value & mask) >>> 0, width);
  }

  /** Reads `width` bytes at a physical address from RAM or a device. */
  readPhys(pa: PhysAddr, width: AccessWidth): number {
    const memory = this.memory;
    if (memory.isRam(pa, width)) {
      return width === 1 ? memory.read8(pa) : width === 2 ? memory.read16(pa) : memory.read32(pa);
    }
    const claim = this.#mmioAt(pa, width);
    return claim.device.mmioRead(pa - claim.base, width);
  }

  /** Writes `width` bytes at a physical address to RAM or a device. */
  writePhys(pa: PhysAddr, value: number, width: AccessWidth): void {
    const memory = this.memory;
    if (memory.isRam(pa, width)) {
      if (width === 1) memory.write8(pa, value);
      else if (width === 2) memory.write16(pa, value);
      else memory.write32(pa, value);
      return;
    }
    const claim = this.#mmioAt(pa, width);
    claim.device.mmioWrite(pa - claim.base, value, width);
  }

  /** The MMIO claims, lowest first. */
  get mmioClaims(): readonly MmioClaim[] {
    return this.#mmio;
  }

  /** The lowest physical address any device claims (Infinity with none), for quick range tests. */
  get lowestMmioBase(): number {
    return this.#mmio.length === 0 ? Infinity : this.#mmio[0].base;
  }

  /** The claim holding all of [pa, pa + width), or undefined; allocates nothing. */
  findMmio(pa: number, width: number): MmioClaim | undefined {
    for (const claim of this.#mmio) {
      if (pa >= claim.base && pa + width <= claim.end) return claim;
    }
    return undefined;
  }

  /** The first claim overlapping [base, base + sizeBytes), or undefined. */
  overlappingMmio(base: number, sizeBytes: number): MmioClaim | undefined {
    for (const claim of this.#mmio) {
      if (base < claim.end && claim.base < base + sizeBytes) return claim;
    }
    return undefined;
  }

  #mmioAt(pa: PhysAddr, width: AccessWidth): MmioClaim {
    const claim = this.findMmio(pa, width);
    if (claim === undefined) throw new BusError(pa, width);
    return claim;
  }
}
