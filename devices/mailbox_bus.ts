/**
 * The device bus as a CPU on a Worker sees it: every port and every shared
 * MMIO range is on the board, reached through the CPU's mailbox
 * (`cpu_mailbox.ts`). RAM is the one shared buffer, read and written
 * directly; the CPU's own local APIC is decoded inside the core and never
 * comes here.
 *
 * @module
 */

import {
  type AccessWidth,
  DeviceBus,
  type MmioClaim,
  type MmioDevice,
  type PhysAddr,
  type PhysicalMemory,
} from "../hal/mod.ts";
import type { CpuMailboxes } from "./cpu_mailbox.ts";

/** A shared MMIO range on the board, as the CPU Workers are told of it. */
export interface SharedMmioRange {
  /** First physical address. */
  readonly base: number;
  /** Length in bytes. */
  readonly sizeBytes: number;
  /** The device's name, for messages. */
  readonly name: string;
}

/** A {@linkcode DeviceBus} whose devices are on the board, behind a mailbox. */
export class MailboxBus extends DeviceBus {
  readonly #mailboxes: CpuMailboxes;
  readonly #cpu: number;
  readonly #claims: MmioClaim[];

  /**
   * The bus of CPU `cpu`.
   *
   * @param memory The shared RAM.
   * @param mailboxes The machine's mailboxes.
   * @param cpu The CPU whose mailbox requests go through.
   * @param mmio The board's MMIO ranges (the local APIC is not one).
   */
  constructor(
    memory: PhysicalMemory,
    mailboxes: CpuMailboxes,
    cpu: number,
    mmio: readonly SharedMmioRange[],
  ) {
    super(memory);
    this.#mailboxes = mailboxes;
    this.#cpu = cpu;
    this.#claims = [...mmio].sort((a, b) => a.base - b.base).map((range) => ({
      base: range.base,
      end: range.base + range.sizeBytes,
      device: new RemoteMmioDevice(range, mailboxes, cpu),
    }));
  }

  /** IN through the mailbox. */
  override portIn(port: number, width: AccessWidth): number {
    return this.#mailboxes.request(this.#cpu, "port-in", port & 0xffff, width);
  }

  /** OUT through the mailbox. */
  override portOut(port: number, value: number, width: AccessWidth): void {
    this.#mailboxes.request(this.#cpu, "port-out", port & 0xffff, width, value);
  }

  /** The board's MMIO ranges. */
  override get mmioClaims(): readonly MmioClaim[] {
    return this.#claims;
  }

  /** The lowest MMIO address on the board. */
  override get lowestMmioBase(): number {
    return this.#claims.length === 0 ? Infinity : this.#claims[0].base;
  }

  /** The board's range holding all of [pa, pa + width), or undefined. */
  override findMmio(pa: number, width: number): MmioClaim | undefined {
    for (const claim of this.#claims) {
      if (pa >= claim.base && pa + width <= claim.end) return claim;
    }
    return undefined;
  }

  /** The first board range overlapping [base, base + sizeBytes), or undefined. */
  override overlappingMmio(base: number, sizeBytes: number): MmioClaim | undefined {
    for (const claim of this.#claims) {
      if (base < claim.end && claim.base < base + sizeBytes) return claim;
    }
    return undefined;
  }

  /** A CPU on a Worker cannot claim devices: they are the board's. */
  override claimPorts(): void {
    throw new RangeError("Devices are the board's: a CPU on a Worker cannot claim ports");
  }

  /** A CPU on a Worker cannot claim devices: they are the board's. */
  override claimMmio(): void {
    throw new RangeError("Devices are the board's: a CPU on a Worker cannot claim MMIO");
  }

  /** Reads RAM, or a board device through the mailbox. */
  override readPhys(pa: PhysAddr, width: AccessWidth): number {
    if (this.memory.isRam(pa, width)) return super.readPhys(pa, width);
    return this.#mailboxes.request(this.#cpu, "mmio-read", pa, width);
  }

  /** Writes RAM, or a board device through the mailbox. */
  override writePhys(pa: PhysAddr, value: number, width: AccessWidth): void {
    if (this.memory.isRam(pa, width)) {
      super.writePhys(pa, value, width);
      return;
    }
    this.#mailboxes.request(this.#cpu, "mmio-write", pa, width, value);
  }
}

/** A board device's MMIO range, reached through the mailbox. */
class RemoteMmioDevice implements MmioDevice {
  readonly name: string;
  readonly #base: number;
  readonly #mailboxes: CpuMailboxes;
  readonly #cpu: number;

  constructor(range: SharedMmioRange, mailboxes: CpuMailboxes, cpu: number) {
    this.name = range.name;
    this.#base = range.base;
    this.#mailboxes = mailboxes;
    this.#cpu = cpu;
  }

  mmioRead(offsetBytes: number, width: AccessWidth): number {
    return this.#mailboxes.request(this.#cpu, "mmio-read", this.#base + offsetBytes, width);
  }

  mmioWrite(offsetBytes: number, value: number, width: AccessWidth): void {
    this.#mailboxes.request(this.#cpu, "mmio-write", this.#base + offsetBytes, width, value);
  }
}
