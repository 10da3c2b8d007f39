/**
 * The CPU context the kernel runs on: control registers, privilege level, the
 * interrupt flag, port I/O instructions and interrupt delivery.
 *
 * Interrupts are delivered at instruction boundaries the simulator can see:
 * after each port I/O instruction and device (MMIO) access, on `sti`, on
 * `hlt`, on `pause` and where kernel code marks one
 * ({@linkcode CpuContext.instructionBoundary}). On a machine of several
 * CPUs the machine's own work (serving the other CPUs' device requests,
 * stopping when every CPU halts) runs at the same boundaries. The IDT has 256
 * vectors; a vector comes from the local APIC (when one is attached and
 * software-enabled) or, through INTA, from the 8259 pair (directly, or via
 * the APIC's LINT0 in virtual-wire mode). A handler runs with interrupts
 * disabled (an interrupt gate) and the source's in-service bit set; it must
 * send the EOI itself (to the 8259 or the local APIC), as on hardware. A
 * handler that re-enables interrupts can be interrupted by a higher-priority
 * vector (nesting); returning restores IF, as IRET does.
 *
 * The CPU owns its TLB. The `write*` methods are the MOV-to-control-register
 * instructions and invalidate it as the SDM (vol. 3A, 4.10.4.1) says; the
 * register properties can still be assigned directly (as a boot loader sets up
 * state), which changes the register and flushes nothing.
 *
 * Every change of CR0, CR4, EFER, the CPL or EFLAGS.AC, by instruction or by
 * assignment, recomputes the CPU's {@linkcode AccessRights}: the masks its MMU
 * checks TLB hits against, so a new protection mode applies from the very next
 * access without any per-access work.
 *
 * @module
 */

import { ACCESS_FETCH, ACCESS_READ, ACCESS_WRITE, AccessRights } from "./access_rights.ts";
import { hex, type VirtAddr } from "./address.ts";
import type { AccessWidth, DeviceBus } from "./bus.ts";
import { CR0_PE, CR0_PG, CR4_PAE, CR4_PGE, CR4_SMEP, EFER_LME } from "./control_registers.ts";
import { GeneralProtection } from "./faults.ts";
import { type InterruptController, IRQ_LINE_COUNT } from "./interrupt_controller.ts";
import {
  INTERRUPT_VECTOR_COUNT,
  type LocalInterruptController,
} from "./local_interrupt_controller.ts";
import { Tlb } from "./tlb.ts";
import type { Tracer } from "./trace.ts";

export {
  CR0_PE,
  CR0_PG,
  CR0_WP,
  CR4_PAE,
  CR4_PGE,
  CR4_SMAP,
  CR4_SMEP,
  EFER_LME,
  EFER_NXE,
} from "./control_registers.ts";

/** A kernel interrupt handler for one vector (an IDT gate); it receives the vector. */
export type InterruptHandler = (vector: number) => void;

/**
 * What the machine does at an instruction boundary of its CPU, before
 * pending interrupts are delivered: on a machine of several CPUs, serve the
 * other CPUs' device requests (the board) or stop when every CPU is halted
 * (a CPU on a Worker). It may throw to stop the CPU.
 */
export type BoundaryHook = () => void;

/** One simulated CPU: registers, port I/O and interrupt delivery. */
export class CpuContext {
  /** Control register 2: the last page-fault linear address (48-bit form). */
  cr2 = 0;
  /** Control register 3: physical address of the PML4 (flags in low bits). */
  cr3 = 0;
  /** Interrupts delivered since reset. */
  interruptsDelivered = 0;
  /** Interrupts the 8259 pair delivered since reset, per IRQ line. */
  readonly interruptsDeliveredPerIrq: Uint32Array = new Uint32Array(IRQ_LINE_COUNT);
  /** Interrupts delivered since reset, per vector. */
  readonly interruptsDeliveredPerVector: Uint32Array = new Uint32Array(INTERRUPT_VECTOR_COUNT);
  /** This CPU's TLB; INVLPG and control-register writes invalidate it. */
  readonly tlb: Tlb = new Tlb();
  /** What each protection mode allows, recomputed on every mode change (the MMU reads it). */
  readonly accessRights: AccessRights = new AccessRights();
  #cr0 = CR0_PE;
  #cr4 = 0;
  #efer = 0;
  #cpl: 0 | 3 = 0;
  #alignmentCheck = false;
  readonly #bus: DeviceBus;
  readonly #pic: InterruptController;
  readonly #handlers: (InterruptHandler | undefined)[] = new Array(INTERRUPT_VECTOR_COUNT);
  #localApic: LocalInterruptController | undefined;
  #interruptsEnabled = false;
  /** Event tracing (`--trace irq`); undefined when off. */
  #tracer: Tracer | undefined;
  /** The machine's work at instruction boundaries (several CPUs); undefined with one. */
  #boundaryHook: BoundaryHook | undefined;

  /** Creates a CPU wired to a bus and an interrupt controller. */
  constructor(bus: DeviceBus, pic: InterruptController) {
    this.#bus = bus;
    this.#pic = pic;
    this.#updateAccessRights();
  }

  /** Control register 0 (PE, WP, PG ...), as an int32: bit 31 makes it negative. */
  get cr0(): number {
    return this.#cr0;
  }

  /** Sets CR0 without the checks and flushes of {@linkcode writeCr0}. */
  set cr0(value: number) {
    this.#cr0 = value | 0;
    this.#updateAccessRights();
  }

  /** Control register 4 (PAE, PGE, SMEP, SMAP ...), as an int32. */
  get cr4(): number {
    return this.#cr4;
  }

  /** Sets CR4 without the checks and flushes of {@linkcode writeCr4}. */
  set cr4(value: number) {
    this.#cr4 = value | 0;
    this.#updateAccessRights();
  }

  /** The EFER model-specific register (LME, NXE), as an int32. */
  get efer(): number {
    return this.#efer;
  }

  /** Sets EFER without the checks of {@linkcode writeEfer}. */
  set efer(value: number) {
    this.#efer = value | 0;
    this.#updateAccessRights();
  }

  /** Current privilege level: 0 kernel, 3 user. */
  get cpl(): 0 | 3 {
    return this.#cpl;
  }

  /** Changes privilege level (an interrupt, SYSCALL or IRET would). */
  set cpl(value: 0 | 3) {
    this.#cpl = value;
    this.#updateAccessRights();
  }

  /** EFLAGS.AC, which lets SMAP-protected supervisor accesses through. */
  get alignmentCheck(): boolean {
    return this.#alignmentCheck;
  }

  /** Sets EFLAGS.AC (STAC / CLAC). */
  set alignmentCheck(value: boolean) {
    this.#alignmentCheck = value;
    this.#updateAccessRights();
  }

  /** Recomputes the access rights for the current mode and installs the hit masks in the TLB. */
  #updateAccessRights(): void {
    const rights = this.accessRights;
    rights.update(this);
    const hit = rights.hit;
    this.tlb.setHitMasks(hit[ACCESS_READ], hit[ACCESS_WRITE], hit[ACCESS_FETCH]);
  }

  /**
   * MOV to CR0. Clearing PG flushes the whole TLB, global entries included.
   * Throws GeneralProtection for PG without PE, and for PG without CR4.PAE
   * and EFER.LME (the simulator implements 4-level paging only; hardware
   * would enter 32-bit or PAE paging without LME). The value is stored as an
   * int32, like the field.
   */
  writeCr0(value: number): void {
    if ((value & CR0_PG) !== 0) {
      if ((value & CR0_PE) === 0) {
        throw new GeneralProtection(`MOV to CR0 ${hex(value >>> 0)}: PG set without PE`);
      }
      if ((this.cr4 & CR4_PAE) === 0 || (this.efer & EFER_LME) === 0) {
        throw new GeneralProtection(
          `MOV to CR0 ${hex(value >>> 0)}: PG needs CR4.PAE and EFER.LME (4-level paging)`,
        );
      }
    }
    const wasPaging = (this.cr0 & CR0_PG) !== 0;
    this.cr0 = value | 0;
    if (wasPaging && (this.cr0 & CR0_PG) === 0) this.tlb.flushAll();
  }

  /**
   * MOV to CR3: loads the PML4 address (with PWT/PCD in bits 3 and 4) and
   * flushes every TLB entry except global ones when CR4.PGE is set, every
   * entry otherwise. Throws GeneralProtection unless the value is an integer
   * from 0 to 2^52 - 1.
   */
  writeCr3(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0 || value >= 2 ** 52) {
      throw new GeneralProtection(`MOV to CR3 ${String(value)}: reserved bits set`);
    }
    this.cr3 = value;
    this.tlb.flushAll({ keepGlobal: (this.cr4 & CR4_PGE) !== 0 });
  }

  /**
   * MOV to CR4. Changing PGE flushes the whole TLB, global entries included;
   * changing PAE, or setting SMEP, flushes every non-global entry. Throws
   * GeneralProtection for clearing PAE while paging is on.
   */
  writeCr4(value: number): void {
    const old = this.cr4;
    if ((value & CR4_PAE) === 0 && (this.cr0 & CR0_PG) !== 0) {
      throw new GeneralProtection(`MOV to CR4 ${hex(value >>> 0)}: PAE cleared while paging`);
    }
    this.cr4 = value | 0;
    const changed = old ^ this.cr4;
    if ((changed & CR4_PGE) !== 0) {
      this.tlb.flushAll();
    } else if ((changed & CR4_PAE) !== 0 || (changed & this.cr4 & CR4_SMEP) !== 0) {
      this.tlb.flushAll({ keepGlobal: true });
    }
  }

  /**
   * WRMSR to EFER. Throws GeneralProtection for changing LME while paging is
   * on. Flushes nothing: the TLB keeps XD in an entry only while NXE was set,
   * and the MMU checks it against the current NXE.
   */
  writeEfer(value: number): void {
    if (((value ^ this.efer) & EFER_LME) !== 0 && (this.cr0 & CR0_PG) !== 0) {
      throw new GeneralProtection(`WRMSR EFER ${hex(value >>> 0)}: LME changed while paging`);
    }
    this.efer = value | 0;
  }

  /** INVLPG: removes the TLB entries (any size, global or not) for the page containing `va`. */
  invlpg(va: VirtAddr): void {
    this.tlb.flushPage(va);
  }

  /**
   * Sets (or with `undefined` removes) the tracer that receives `irq`
   * events (one line per interrupt delivered) and hands it to the TLB for
   * `mmu` events.
   *
   * @param tracer The tracer.
   */
  setTracer(tracer: Tracer | undefined): void {
    this.#tracer = tracer;
    this.tlb.setTracer(tracer);
  }

  /** Whether RFLAGS.IF is set. */
  get interruptsEnabled(): boolean {
    return this.#interruptsEnabled;
  }

  /** Installs the kernel's handler for `vector` (an IDT gate, simplified); undefined removes it. */
  setInterruptHandler(vector: number, handler: InterruptHandler | undefined): void {
    if (!Number.isInteger(vector) || vector < 0 || vector >= INTERRUPT_VECTOR_COUNT) {
      throw new RangeError(`Invalid interrupt vector ${vector}: expected 0..255`);
    }
    this.#handlers[vector] = handler;
  }

  /** The handler installed for `vector`, if any. */
  interruptHandler(vector: number): InterruptHandler | undefined {
    return this.#handlers[vector];
  }

  /**
   * Wires this core's local APIC: it then supplies vectors, and its register
   * page is decoded inside the core (the MMU routes it there, not to the bus).
   */
  attachLocalApic(apic: LocalInterruptController): void {
    this.#localApic = apic;
  }

  /** This core's local APIC, if the machine has one. */
  get localApic(): LocalInterruptController | undefined {
    return this.#localApic;
  }

  /**
   * Installs (or with `undefined` removes) the machine's work at this CPU's
   * instruction boundaries: port I/O and device accesses with interrupts
   * on, `sti`, `hlt`, `pause` and {@linkcode instructionBoundary}. A machine
   * of one CPU has none.
   *
   * @param hook The work; it may throw to stop the CPU.
   */
  setBoundaryHook(hook: BoundaryHook | undefined): void {
    this.#boundaryHook = hook;
  }

  /**
   * An instruction boundary the simulator cannot see by itself: on hardware
   * an interrupt can arrive after any instruction, so kernel code that runs
   * long without port I/O or device accesses (a spin-wait, a stress loop)
   * calls this where an interrupt may be taken. Runs the machine's boundary
   * work, then delivers pending interrupts while IF is set.
   *
   * @returns How many interrupts ran.
   */
  instructionBoundary(): number {
    if (this.#interruptsEnabled) return this.deliverPendingInterrupts();
    this.#boundaryHook?.();
    return 0;
  }

  /**
   * PAUSE: the spin-wait hint a kernel puts in every busy-wait loop; an
   * instruction boundary ({@linkcode instructionBoundary}).
   */
  pause(): void {
    this.instructionBoundary();
  }

  /** STI: enables interrupts and delivers any that are pending. */
  sti(): void {
    this.#interruptsEnabled = true;
    this.deliverPendingInterrupts();
  }

  /** CLI: disables interrupts. */
  cli(): void {
    this.#interruptsEnabled = false;
  }

  /**
   * HLT: delivers pending interrupts; returns true if any was delivered,
   * false if the CPU would sleep until the next one.
   */
  hlt(): boolean {
    return this.instructionBoundary() > 0;
  }

  /** IN of a byte. */
  inb(port: number): number {
    return this.#in(port, 1);
  }

  /** IN of a 16-bit word. */
  inw(port: number): number {
    return this.#in(port, 2);
  }

  /** IN of a 32-bit doubleword. */
  inl(port: number): number {
    return this.#in(port, 4);
  }

  /** OUT of a byte. */
  outb(port: number, value: number): void {
    this.#out(port, value, 1);
  }

  /** OUT of a 16-bit word. */
  outw(port: number, value: number): void {
    this.#out(port, value, 2);
  }

  /** OUT of a 32-bit doubleword. */
  outl(port: number, value: number): void {
    this.#out(port, value, 4);
  }

  /**
   * Runs the machine's boundary work, then delivers pending interrupts while
   * IF is set, in priority order; returns how many ran. Inside a handler IF is clear, so nothing nests unless the
   * handler re-enables interrupts, and then only a vector the source ranks
   * higher than the one in service is taken.
   */
  deliverPendingInterrupts(): number {
    this.#boundaryHook?.();
    let delivered = 0;
    while (this.#interruptsEnabled) {
      const apic = this.#localApic;
      let vector = apic === undefined ? -1 : apic.pendingVector();
      let irq = -1;
      if (vector >= 0) {
        apic!.acknowledge(vector);
      } else if (apic === undefined || apic.acceptsExtInt()) {
        irq = this.#pic.pendingIrq();
        if (irq < 0) break;
        this.#pic.acknowledge(irq);
        vector = this.#pic.vectorOf(irq);
      } else {
        break;
      }
      const handler = this.#handlers[vector];
      const tracer = this.#tracer;
      if (tracer !== undefined && tracer.irq) {
        const source = irq >= 0
          ? `IRQ ${irq} (vector ${hex(vector, 2)})`
          : `vector ${hex(vector, 2)} from the local APIC`;
        tracer.emit("irq", `deliver ${source}${handler === undefined ? " (no handler)" : ""}`);
      }
      delivered++;
      this.interruptsDelivered++;
      this.interruptsDeliveredPerVector[vector]++;
      if (irq >= 0) this.interruptsDeliveredPerIrq[irq]++;
      // An interrupt gate clears IF; IRET restores it (it was set, or we would not be here).
      // A handler that throws (a panic) never returns: IF stays clear.
      this.#interruptsEnabled = false;
      handler?.(vector);
      this.#interruptsEnabled = true;
    }
    return delivered;
  }

  #in(port: number, width: AccessWidth): number {
    const value = this.#bus.portIn(port, width);
    if (this.#interruptsEnabled) this.deliverPendingInterrupts();
    return value;
  }

  #out(port: number, value: number, width: AccessWidth): void {
    this.#bus.portOut(port, value, width);
    if (this.#interruptsEnabled) this.deliverPendingInterrupts();
  }
}
