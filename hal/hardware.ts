/**
 * The hardware interface a kernel runs on, and the shape of a kernel's entry
 * point. The stock kernel uses exactly these members of the
 * {@linkcode Machine}; a user's kernel (`--kernel FILE`) is given the same
 * machine typed as {@linkcode Hardware}.
 *
 * @module
 */

import type { PhysAddr } from "./address.ts";
import type { Clock } from "./clock.ts";
import type { CpuContext } from "./cpu.ts";
import type { Mmu } from "./mmu.ts";
import type { PhysicalMemory } from "./physical_memory.ts";

/** What a kernel sees of the machine. */
export interface Hardware {
  /**
   * Physical memory: RAM read and written by physical address (`read32`,
   * `write8`, `u32` ...), as a kernel reaches it before paging and through
   * its direct map after.
   */
  readonly memory: PhysicalMemory;
  /**
   * The CPU: port I/O (`inb`/`outb`, `inw`/`outw`, `inl`/`outl`), control
   * registers (`writeCr0`, `writeCr3`, `writeCr4`, `writeEfer`, and reading
   * `cr0` ... `efer`), INVLPG (`invlpg`), the interrupt flag (`sti`, `cli`,
   * `hlt`) and interrupt registration (`setInterruptHandler(irq, handler)`).
   */
  readonly cpu: CpuContext;
  /**
   * The MMU: virtual accesses through the page tables CR3 points to
   * (`readVirt32`, `writeVirtBytes` ...), and the #PF handler
   * (`setPageFaultHandler`).
   */
  readonly mmu: Mmu;
  /** The clock (nanoseconds since power-on), as a time-stamp counter. */
  readonly clock: Clock;
  /** Why the machine halted, or undefined while it runs. */
  readonly haltReason: string | undefined;
  /** CLI; HLT: stops the machine for good, with a reason. */
  halt(reason: string): void;
  /**
   * HLT with interrupts on: runs pending interrupts, or on the virtual clock
   * jumps to the next timer or UART event and runs what it raises.
   *
   * @returns How many interrupts ran (0: nothing will ever wake the CPU).
   */
  waitForInterrupt(): number;
}

/**
 * A kernel's entry point, as the boot loader jumps to it: EAX holds the
 * multiboot2 magic (0x36d76289), EBX the boot information's physical
 * address. It runs until the kernel is done and returns (the machine then
 * stops); an exception out of it is a crash. The default export of a
 * `--kernel` module.
 *
 * @example
 * ```ts ignore
 * const kmain: KernelEntry = (magic, mbiAddress, hw) => {
 *   hw.cpu.outb(0x3f8, 0x41); // "A" on COM1
 * };
 * export default kmain;
 * ```
 */
export type KernelEntry = (magic: number, mbiAddress: PhysAddr, hw: Hardware) => void;
