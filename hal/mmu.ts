/**
 * The MMU: x86-64 4-level paging exactly as Intel SDM vol. 3A, 4.5 to 4.10
 * describes it, and the virtual-memory accesses of code running on the
 * machine.
 *
 * A translation first looks in the CPU's TLB; on a miss it walks PML4, PDPT,
 * PD and PT entries in RAM (4 KiB, 2 MiB and 1 GiB pages), checks reserved
 * bits on every present entry, combines R/W and U/S over every level (and XD
 * when EFER.NXE is set), applies CR0.WP, SMEP and SMAP for the CPL, sets the
 * accessed and dirty bits, and caches the result in the TLB. A failure is a
 * {@linkcode PageFault} with the architectural error code and CR2, delivered
 * to the kernel's handler, which may fix the page tables and ask for a retry.
 *
 * Accessed and dirty bits follow the hardware: A is set in each non-leaf
 * entry as the walk uses it (even if the access then faults further down),
 * and in the leaf, together with D for a write, only when the access is
 * allowed. A write through a TLB entry whose D bit was not yet set walks
 * again to set it, as the processor does.
 *
 * Hot paths (a TLB hit, a walk) allocate nothing: no objects, closures or
 * BigInts; addresses are numbers and 48-bit arithmetic uses division, never
 * `>>` on values of 2^31 and above.
 *
 * A physical access that misses RAM goes to the CPU's own local APIC page
 * (decoded inside the core, so each CPU sees its own) or to a device on the
 * bus (MMIO through paging), and is an instruction boundary at which pending
 * interrupts are delivered, as port I/O is. With neither, the access is a
 * {@linkcode BusError}, raised as a machine check (#MC) to the kernel's
 * handler. A TLB fill for a page that maps MMIO without an uncacheable
 * memory type (PCD/PWT or PAT) is reported as a mistake: traced (`mmu`) and
 * kept in {@linkcode Mmu.cachingViolations} for the kernel monitor.
 *
 * @module
 */

import {
  formatVirtAddr,
  hex,
  HIGHER_HALF_START,
  PAGE_SIZE_4K,
  type PageSizeBytes,
  type PhysAddr,
  VIRT_ADDR_LIMIT,
  type VirtAddr,
} from "./address.ts";
import type { AccessWidth, DeviceBus, MmioDevice } from "./bus.ts";
import { type CpuContext, CR0_PG, CR0_WP, CR4_PGE, CR4_SMAP, CR4_SMEP, EFER_NXE } from "./cpu.ts";
import {
  BusError,
  describePageFaultCode,
  GeneralProtection,
  PageFault,
  PF_FETCH,
  PF_PRESENT,
  PF_RESERVED,
  PF_USER,
  PF_WRITE,
} from "./faults.ts";
import {
  ENTRIES_PER_TABLE,
  ENTRY_SIZE_BYTES,
  PAGING_LEVEL_NAMES,
  type PagingLevel,
  PTE_A,
  PTE_D,
  PTE_G,
  PTE_HIGH_NX,
  PTE_P,
  PTE_PAT,
  PTE_PAT_HUGE,
  PTE_PCD,
  PTE_PS,
  PTE_PWT,
  reservedHighMask,
  reservedLowMask,
} from "./page_table_entry.ts";
import { isUncacheable, memoryTypeOf, patMemoryTypeName } from "./memory_type.ts";
import type { PhysicalMemory } from "./physical_memory.ts";
import { type Tlb, TLB_DIRTY, TLB_GLOBAL, TLB_NO_EXECUTE, TLB_USER, TLB_WRITABLE } from "./tlb.ts";
import type { Tracer } from "./trace.ts";

/** The kind of a memory access: a data read, a data write or an instruction fetch. */
export type MemoryAccess = "read" | "write" | "fetch";
/** A reading access: a data read or an instruction fetch. */
export type ReadAccess = "read" | "fetch";

/** What the kernel's page-fault handler did: fixed the cause (`"retry"`) or not. */
export type PageFaultResolution = "retry" | "unhandled";
/** The kernel's page-fault handler (the #PF vector). CR2 holds `fault.address`. */
export type PageFaultHandler = (fault: PageFault) => PageFaultResolution;

/**
 * The kernel's machine-check handler (#MC, vector 18): called for a physical
 * access no RAM or device answers. It should not return (a kernel panics);
 * if it does, the MMU throws the BusError.
 */
export type MachineCheckHandler = (error: BusError) => void;

/** A page that maps device registers with a cacheable memory type. */
export interface CachingViolation {
  /** First virtual address of the page. */
  readonly virtAddr: VirtAddr;
  /** First physical address of the page. */
  readonly physAddr: PhysAddr;
  /** Size of the page. */
  readonly pageSizeBytes: PageSizeBytes;
  /** The memory type the leaf selects: `WB`, `WT`, `WC` ... */
  readonly memoryType: string;
  /** The device whose registers it covers. */
  readonly deviceName: string;
}

/** How many distinct {@linkcode CachingViolation}s the MMU keeps (it counts them all). */
export const MAX_CACHING_VIOLATIONS = 32;

/** Options for {@linkcode Mmu}. */
export interface MmuOptions {
  /** MAXPHYADDR: physical address bits, 32 to 52 (default 46). Entry bits 51:M are reserved. */
  readonly maxPhysAddrBits?: number;
  /** Route data accesses through this bus so paging can reach MMIO (default: RAM only). */
  readonly bus?: DeviceBus;
}

/** The MAXPHYADDR an {@linkcode Mmu} uses unless told otherwise. */
export const DEFAULT_MAX_PHYS_ADDR_BITS = 46;
/**
 * Handler calls allowed for one access. A handler that returns `"retry"` gets
 * the fault that follows as long as it differs from the last one (progress,
 * e.g. not-present, then a copy-on-write protection fault); a repeat of the
 * same error code, or a fault beyond this many calls, is thrown.
 */
export const MAX_FAULT_HANDLER_CALLS = 3;

/** One paging-structure entry a walk read. */
export interface PageWalkStep {
  /** The level of the table: 4 = PML4 ... 1 = PT. */
  readonly level: PagingLevel;
  /** Physical address of the entry. */
  readonly entryAddr: PhysAddr;
  /** The entry's low 32 bits, as read. */
  readonly low32: number;
  /** The entry's high 32 bits, as read. */
  readonly high32: number;
}

/** What translating an address would do now, from {@linkcode Mmu.probe}. */
export type PageWalk =
  | {
    /** Paging is off: the linear address is the physical address. */
    readonly kind: "unpaged";
    /** The physical address (equal to the virtual one). */
    readonly physAddr: PhysAddr;
  }
  | {
    /** The walk found a page and the access is allowed. */
    readonly kind: "mapped";
    /** The entries read, PML4E first. */
    readonly steps: readonly PageWalkStep[];
    /** The physical address the virtual one translates to. */
    readonly physAddr: PhysAddr;
    /** Size of the page the leaf maps. */
    readonly pageSizeBytes: PageSizeBytes;
    /** R/W set at every level. */
    readonly writable: boolean;
    /** U/S set at every level. */
    readonly user: boolean;
    /** No XD at any level (with EFER.NXE). */
    readonly executable: boolean;
    /** The leaf is global (G with CR4.PGE). */
    readonly global: boolean;
  }
  | {
    /** The access would page-fault. */
    readonly kind: "fault";
    /** The entries read, PML4E first, up to the one that failed. */
    readonly steps: readonly PageWalkStep[];
    /** The page-fault error code (PF_* bits). */
    readonly errorCode: number;
  };

// Internal access kinds, so the hot paths compare small integers.
const READ = 0;
const WRITE = 1;
const FETCH = 2;
type AccessKind = typeof READ | typeof WRITE | typeof FETCH;

// Walk modes: a translation updates A/D and the TLB; a probe only looks.
const WALK_TRANSLATE = 0;
const WALK_PROBE = 1;
type WalkMode = typeof WALK_TRANSLATE | typeof WALK_PROBE;

const PML4_SPAN_BYTES = 2 ** 39;
const PAGE_OFFSET_MASK = PAGE_SIZE_4K - 1;

/** The memory-management unit of one CPU: translation, faults, virtual accesses. */
export class Mmu {
  /** MAXPHYADDR, in bits. */
  readonly maxPhysAddrBits: number;
  /** Page walks done for translations (TLB misses and dirty-bit walks). */
  walks = 0;
  /** Page faults raised, whether handled or thrown. */
  pageFaults = 0;
  /** Machine checks raised (accesses no RAM or device answers). */
  machineChecks = 0;
  /** TLB fills of MMIO pages with a cacheable memory type (each page counted once). */
  cachingViolationCount = 0;
  /** The first {@linkcode MAX_CACHING_VIOLATIONS} of them. */
  readonly cachingViolations: CachingViolation[] = [];
  readonly #cpu: CpuContext;
  readonly #memory: PhysicalMemory;
  readonly #bus: DeviceBus | undefined;
  readonly #tlb: Tlb;
  /** High-half bits 51:MAXPHYADDR. */
  readonly #reservedHigh: number;
  #handler: PageFaultHandler | undefined;
  #machineCheckHandler: MachineCheckHandler | undefined;
  /** Event tracing (`--trace mmu`); undefined when off. */
  #tracer: Tracer | undefined;
  // What the last walk found, for probe(): the entries read and the leaf.
  readonly #stepAddr = new Float64Array(4);
  readonly #stepLow = new Uint32Array(4);
  readonly #stepHigh = new Uint32Array(4);
  #stepCount = 0;
  #leafFlags = 0;
  #leafPageBytes: PageSizeBytes = PAGE_SIZE_4K;

  /**
   * Creates the MMU of `cpu` (whose TLB it fills) over `memory`, where the
   * page tables live. Throws RangeError for a MAXPHYADDR outside 32 to 52.
   *
   * @example
   * ```ts
   * import { CpuContext } from "./cpu.ts";
   * import { DeviceBus } from "./bus.ts";
   * import { InterruptController } from "./interrupt_controller.ts";
   * import { Mmu } from "./mmu.ts";
   * import { PhysicalMemory } from "./physical_memory.ts";
   *
   * const memory = PhysicalMemory.contiguous(16 * 2 ** 20);
   * const bus = new DeviceBus(memory);
   * const cpu = new CpuContext(bus, new InterruptController());
   * const mmu = new Mmu(cpu, memory, { bus });
   * mmu.setPageFaultHandler((fault) => {
   *   console.log(fault.message);
   *   return "unhandled";
   * });
   * ```
   */
  constructor(cpu: CpuContext, memory: PhysicalMemory, options: MmuOptions = {}) {
    this.#cpu = cpu;
    this.#memory = memory;
    this.#bus = options.bus;
    this.#tlb = cpu.tlb;
    this.maxPhysAddrBits = options.maxPhysAddrBits ?? DEFAULT_MAX_PHYS_ADDR_BITS;
    this.#reservedHigh = reservedHighMask(this.maxPhysAddrBits);
  }

  /**
   * Sets (or with `undefined` removes) the tracer that receives `mmu`
   * events: one line per page fault. TLB fills and flushes are traced by
   * the TLB ({@linkcode Tlb.setTracer}).
   *
   * @param tracer The tracer.
   */
  setTracer(tracer: Tracer | undefined): void {
    this.#tracer = tracer;
  }

  /** The TLB this MMU fills: the CPU's. */
  get tlb(): Tlb {
    return this.#tlb;
  }

  /**
   * Installs the kernel's page-fault handler (or removes it with
   * `undefined`). On a fault the MMU sets CR2, removes the page's TLB
   * entries, and calls the handler; on `"retry"` it repeats the access, else
   * throws the PageFault. See {@linkcode MAX_FAULT_HANDLER_CALLS}.
   */
  setPageFaultHandler(handler: PageFaultHandler | undefined): void {
    this.#handler = handler;
  }

  /**
   * Installs the kernel's machine-check handler (or removes it with
   * `undefined`); without one, an access no RAM or device answers throws
   * its {@linkcode BusError}.
   */
  setMachineCheckHandler(handler: MachineCheckHandler | undefined): void {
    this.#machineCheckHandler = handler;
  }

  /**
   * Translates `va` for an `access` at the CPU's current privilege (CPL 3 is
   * user mode, 0 to 2 supervisor). With CR0.PG clear the translation is the
   * identity; with PG set it is 4-level paging from CR3 (32-bit and PAE
   * paging are not modelled; {@linkcode CpuContext.writeCr0} refuses them).
   * Does not allocate unless it faults.
   *
   * @returns the physical address.
   * @throws {PageFault} when the access faults and the handler does not fix it.
   * @throws {GeneralProtection} when `va` is not a 48-bit virtual address.
   * @throws {BusError} when a paging-structure entry is outside RAM.
   */
  translate(va: VirtAddr, access: MemoryAccess): PhysAddr {
    if ((this.#cpu.cr0 & CR0_PG) === 0) return va as number as PhysAddr;
    const kind = kindOf(access);
    const result = this.#attempt(va, kind);
    return (result >= 0 ? result : this.#deliverFault(va, kind, -1 - result)) as PhysAddr;
  }

  /**
   * Walks the page tables for `va` as a TLB miss would now, for inspection:
   * no TLB use or fill, no A/D updates, no CR2, no handler. Throws
   * GeneralProtection for an address that is not 48-bit, BusError for an
   * entry outside RAM.
   */
  probe(va: VirtAddr, access: MemoryAccess = "read"): PageWalk {
    if ((this.#cpu.cr0 & CR0_PG) === 0) {
      return { kind: "unpaged", physAddr: va as number as PhysAddr };
    }
    const result = this.#walk(va, kindOf(access), WALK_PROBE);
    const steps: PageWalkStep[] = [];
    for (let i = 0; i < this.#stepCount; i++) {
      steps.push({
        level: (4 - i) as PagingLevel,
        entryAddr: this.#stepAddr[i] as PhysAddr,
        low32: this.#stepLow[i],
        high32: this.#stepHigh[i],
      });
    }
    if (result < 0) return { kind: "fault", steps, errorCode: -1 - result };
    const flags = this.#leafFlags;
    return {
      kind: "mapped",
      steps,
      physAddr: result as PhysAddr,
      pageSizeBytes: this.#leafPageBytes,
      writable: (flags & TLB_WRITABLE) !== 0,
      user: (flags & TLB_USER) !== 0,
      executable: (flags & TLB_NO_EXECUTE) === 0,
      global: (flags & TLB_GLOBAL) !== 0,
    };
  }

  /** Reads a byte at `va`. Throws like {@linkcode translate}, or BusError. */
  readVirt8(va: VirtAddr, access: ReadAccess = "read"): number {
    return this.#load(this.translate(va, access), 1);
  }

  /** Reads a little-endian 16-bit value at `va`, across a page boundary if need be. */
  readVirt16(va: VirtAddr, access: ReadAccess = "read"): number {
    if ((va & PAGE_OFFSET_MASK) <= PAGE_SIZE_4K - 2) {
      return this.#load(this.translate(va, access), 2);
    }
    return this.#readSplit(va, 2, access);
  }

  /** Reads a little-endian 32-bit value (unsigned) at `va`, across a page boundary if need be. */
  readVirt32(va: VirtAddr, access: ReadAccess = "read"): number {
    if ((va & PAGE_OFFSET_MASK) <= PAGE_SIZE_4K - 4) {
      return this.#load(this.translate(va, access), 4);
    }
    return this.#readSplit(va, 4, access);
  }

  /**
   * Reads a little-endian 64-bit value at `va` as a number: exact below 2^53,
   * rounded above (read two 32-bit halves when every bit matters).
   */
  readVirt64(va: VirtAddr, access: ReadAccess = "read"): number {
    if ((va & PAGE_OFFSET_MASK) <= PAGE_SIZE_4K - 8) {
      const pa = this.translate(va, access);
      return this.#load(pa, 4) + this.#load((pa + 4) as PhysAddr, 4) * 2 ** 32;
    }
    return this.#readSplit(va, 8, access);
  }

  /** Writes the low 8 bits of `value` at `va`. Throws like {@linkcode translate}, or BusError. */
  writeVirt8(va: VirtAddr, value: number): void {
    this.#store(this.translate(va, "write"), value & 0xff, 1);
  }

  /**
   * Writes a little-endian 16-bit value at `va`. Across a page boundary both
   * pages are translated before any byte is written, so a fault leaves memory
   * unchanged.
   */
  writeVirt16(va: VirtAddr, value: number): void {
    if ((va & PAGE_OFFSET_MASK) <= PAGE_SIZE_4K - 2) {
      this.#store(this.translate(va, "write"), value & 0xffff, 2);
    } else {
      this.#writeSplit(va, value & 0xffff, 2);
    }
  }

  /** Writes a little-endian 32-bit value at `va`; across pages, as {@linkcode writeVirt16}. */
  writeVirt32(va: VirtAddr, value: number): void {
    if ((va & PAGE_OFFSET_MASK) <= PAGE_SIZE_4K - 4) {
      this.#store(this.translate(va, "write"), value >>> 0, 4);
    } else {
      this.#writeSplit(va, value >>> 0, 4);
    }
  }

  /**
   * Writes a little-endian 64-bit value given as a non-negative safe integer;
   * across pages, as {@linkcode writeVirt16}. Throws RangeError for other
   * values.
   */
  writeVirt64(va: VirtAddr, value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(
        `Cannot write ${String(value)} as 64 bits: not a non-negative safe integer`,
      );
    }
    if ((va & PAGE_OFFSET_MASK) <= PAGE_SIZE_4K - 8) {
      const pa = this.translate(va, "write");
      this.#store(pa, value % 2 ** 32, 4);
      this.#store((pa + 4) as PhysAddr, Math.floor(value / 2 ** 32), 4);
    } else {
      this.#writeSplit(va, value, 8);
    }
  }

  /**
   * Copies `lengthBytes` bytes starting at `va` into a new array, page by
   * page. Throws like {@linkcode translate}; GeneralProtection if the range
   * runs from the lower half into the non-canonical hole.
   */
  readVirtBytes(va: VirtAddr, lengthBytes: number, access: ReadAccess = "read"): Uint8Array {
    checkLength(lengthBytes);
    const bytes = new Uint8Array(lengthBytes);
    let page = va;
    for (let done = 0; done < lengthBytes;) {
      const chunkBytes = Math.min(lengthBytes - done, PAGE_SIZE_4K - (page & PAGE_OFFSET_MASK));
      const pa = this.translate(page, access);
      if (this.#memory.isRam(pa, chunkBytes)) {
        bytes.set(this.#memory.u8.subarray(pa, pa + chunkBytes), done);
      } else {
        for (let i = 0; i < chunkBytes; i++) bytes[done + i] = this.#load((pa + i) as PhysAddr, 1);
      }
      done += chunkBytes;
      if (done < lengthBytes) page = nextPage(page);
    }
    return bytes;
  }

  /**
   * Copies `bytes` to `va`, page by page. Like REP MOVSB, a fault on a later
   * page leaves the earlier pages written. Throws like
   * {@linkcode readVirtBytes}.
   */
  writeVirtBytes(va: VirtAddr, bytes: Uint8Array): void {
    let page = va;
    for (let done = 0; done < bytes.length;) {
      const chunkBytes = Math.min(bytes.length - done, PAGE_SIZE_4K - (page & PAGE_OFFSET_MASK));
      const pa = this.translate(page, "write");
      if (this.#memory.isRam(pa, chunkBytes)) {
        this.#memory.u8.set(bytes.subarray(done, done + chunkBytes), pa);
      } else {
        for (let i = 0; i < chunkBytes; i++) this.#store((pa + i) as PhysAddr, bytes[done + i], 1);
      }
      done += chunkBytes;
      if (done < bytes.length) page = nextPage(page);
    }
  }

  /**
   * One try at translating: the TLB, else a walk. Returns the physical
   * address, or -1 - errorCode for a fault.
   */
  #attempt(va: VirtAddr, kind: AccessKind): number {
    const tlb = this.#tlb;
    const slot = tlb.lookup(va);
    if (slot >= 0) {
      const flags = tlb.flagsAt(slot);
      const errorCode = this.#protectionErrorCode(flags, kind);
      if (errorCode >= 0) return -1 - errorCode;
      // A write through an entry whose D bit is not known to be set walks again to set it.
      if (kind !== WRITE || (flags & TLB_DIRTY) !== 0) return tlb.physAddrAt(slot, va);
    }
    return this.#walk(va, kind, WALK_TRANSLATE);
  }

  /**
   * The page walk (SDM 4.5). Returns the physical address, or -1 - errorCode
   * for a fault. In WALK_TRANSLATE mode it sets A/D bits and fills the TLB;
   * in WALK_PROBE mode it records the entries it reads.
   */
  #walk(va: VirtAddr, kind: AccessKind, mode: WalkMode): number {
    if (!(va >= 0 && va < VIRT_ADDR_LIMIT && Math.floor(va) === va)) {
      throw new GeneralProtection(`Address ${String(va)} is not a 48-bit virtual address`);
    }
    const cpu = this.#cpu;
    const memory = this.#memory;
    const u32 = memory.u32;
    const isTranslate = mode === WALK_TRANSLATE;
    if (isTranslate) this.walks++;
    else this.#stepCount = 0;
    const nxe = (cpu.efer & EFER_NXE) !== 0;
    // Without NXE, bit 63 is reserved like bits 51:MAXPHYADDR.
    const reservedHigh = nxe ? this.#reservedHigh : this.#reservedHigh | PTE_HIGH_NX;
    const cr3 = cpu.cr3;
    let table = cr3 - (cr3 % PAGE_SIZE_4K);
    let rights = TLB_WRITABLE | TLB_USER;
    let noExecute = 0;
    let spanBytes = PML4_SPAN_BYTES;
    for (let level = 4; level >= 1; level--, spanBytes /= ENTRIES_PER_TABLE) {
      // `&` reduces modulo 2^32 first, which keeps the low 9 bits of the quotient.
      const entryPa = table + (Math.floor(va / spanBytes) & (ENTRIES_PER_TABLE - 1)) * 8;
      if (!memory.isRam(entryPa, ENTRY_SIZE_BYTES)) {
        throw new BusError(
          entryPa as PhysAddr,
          ENTRY_SIZE_BYTES,
          `${PAGING_LEVEL_NAMES[level as PagingLevel]} entry for ${formatVirtAddr(va)} is not RAM`,
        );
      }
      const index = entryPa / 4;
      const low = u32[index];
      const high = u32[index + 1];
      if (!isTranslate) {
        const step = this.#stepCount++;
        this.#stepAddr[step] = entryPa;
        this.#stepLow[step] = low;
        this.#stepHigh[step] = high;
      }
      if ((low & PTE_P) === 0) return -1 - this.#accessErrorBits(kind);
      const isLeaf = level === 1 || (level !== 4 && (low & PTE_PS) !== 0);
      if (
        (high & reservedHigh) !== 0 ||
        (level === 4 && (low & PTE_PS) !== 0) ||
        (low & reservedLowMask(low, level as PagingLevel)) !== 0
      ) {
        return -1 - (this.#accessErrorBits(kind) | PF_PRESENT | PF_RESERVED);
      }
      rights &= low;
      if (nxe && (high & PTE_HIGH_NX) !== 0) noExecute = TLB_NO_EXECUTE;
      if (!isLeaf) {
        if (isTranslate && (low & PTE_A) === 0) Atomics.or(memory.i32, index, PTE_A);
        table = (high & 0xfffff) * 2 ** 32 + ((low & 0xfffff000) >>> 0);
        continue;
      }
      let flags = rights | noExecute;
      if ((low & PTE_G) !== 0 && (cpu.cr4 & CR4_PGE) !== 0) flags |= TLB_GLOBAL;
      const errorCode = this.#protectionErrorCode(flags, kind);
      if (errorCode >= 0) return -1 - errorCode;
      // The leaf's address bits start at the page size: bit 12, 21 or 30.
      const lowAddress = (low & ~(spanBytes - 1)) >>> 0;
      const frameBase = (high & 0xfffff) * 2 ** 32 + lowAddress;
      if (kind === WRITE || (low & PTE_D) !== 0) flags |= TLB_DIRTY;
      if (isTranslate) this.#checkMmioCaching(va, frameBase, spanBytes, low);
      if (isTranslate) {
        const setBits = kind === WRITE ? PTE_A | PTE_D : PTE_A;
        if ((low & setBits) !== setBits) Atomics.or(memory.i32, index, setBits);
        this.#tlb.insert(va, spanBytes as PageSizeBytes, frameBase as PhysAddr, flags);
      } else {
        this.#leafFlags = flags;
        this.#leafPageBytes = spanBytes as PageSizeBytes;
      }
      return frameBase + (va - Math.floor(va / spanBytes) * spanBytes);
    }
    throw new Error("unreachable: level 1 entries are always leaves");
  }

  /**
   * The error code of a protection fault for `kind` through a translation
   * with TLB_* `flags` (SDM 4.6), or -1 when the access is allowed.
   */
  #protectionErrorCode(flags: number, kind: AccessKind): number {
    const cpu = this.#cpu;
    const isUserPage = (flags & TLB_USER) !== 0;
    let isDenied: boolean;
    if (cpu.cpl === 3) {
      isDenied = !isUserPage ||
        (kind === WRITE && (flags & TLB_WRITABLE) === 0) ||
        (kind === FETCH && (flags & TLB_NO_EXECUTE) !== 0 && (cpu.efer & EFER_NXE) !== 0);
    } else if (kind === FETCH) {
      isDenied = ((flags & TLB_NO_EXECUTE) !== 0 && (cpu.efer & EFER_NXE) !== 0) ||
        (isUserPage && (cpu.cr4 & CR4_SMEP) !== 0);
    } else {
      isDenied = (isUserPage && (cpu.cr4 & CR4_SMAP) !== 0 && !cpu.alignmentCheck) ||
        (kind === WRITE && (flags & TLB_WRITABLE) === 0 && (cpu.cr0 & CR0_WP) !== 0);
    }
    return isDenied ? PF_PRESENT | this.#accessErrorBits(kind) : -1;
  }

  /** The error-code bits that describe the access itself: W/R, U/S and I/D (SDM 4.7). */
  #accessErrorBits(kind: AccessKind): number {
    const cpu = this.#cpu;
    let bits = cpu.cpl === 3 ? PF_USER : 0;
    if (kind === WRITE) bits |= PF_WRITE;
    // I/D is reported only when NXE or SMEP makes fetches distinguishable.
    if (kind === FETCH && ((cpu.efer & EFER_NXE) !== 0 || (cpu.cr4 & CR4_SMEP) !== 0)) {
      bits |= PF_FETCH;
    }
    return bits;
  }

  /**
   * Raises #PF: sets CR2, removes the page's TLB entries and calls the
   * handler, retrying while it makes progress. Returns the physical address
   * once an attempt succeeds; throws the PageFault otherwise.
   */
  #deliverFault(va: VirtAddr, kind: AccessKind, firstErrorCode: number): number {
    let errorCode = firstErrorCode;
    let previousErrorCode = -1;
    for (let handlerCalls = 0;; handlerCalls++) {
      const tracer = this.#tracer;
      if (tracer !== undefined && tracer.mmu) {
        tracer.emit(
          "mmu",
          `page fault at ${formatVirtAddr(va)}: ${describePageFaultCode(errorCode)} ` +
            `(error code ${hex(errorCode)})`,
        );
      }
      this.#cpu.cr2 = va;
      this.#tlb.flushPage(va);
      this.pageFaults++;
      const fault = new PageFault(va, errorCode);
      const handler = this.#handler;
      if (
        handler === undefined || errorCode === previousErrorCode ||
        handlerCalls === MAX_FAULT_HANDLER_CALLS || handler(fault) !== "retry"
      ) {
        throw fault;
      }
      previousErrorCode = errorCode;
      const result = this.#attempt(va, kind);
      if (result >= 0) return result;
      errorCode = -1 - result;
    }
  }

  /** Reads an access that crosses into the next page: translates both pages, then reads. */
  #readSplit(va: VirtAddr, widthBytes: number, access: ReadAccess): number {
    const firstBytes = PAGE_SIZE_4K - (va & PAGE_OFFSET_MASK);
    const firstPa = this.translate(va, access);
    const secondPa = this.translate(nextPage(va), access);
    let value = 0;
    for (let i = widthBytes - 1; i >= 0; i--) {
      const pa = i < firstBytes ? firstPa + i : secondPa + (i - firstBytes);
      value = value * 256 + this.#load(pa as PhysAddr, 1);
    }
    return value;
  }

  /** Writes an access that crosses into the next page: translates both pages, then writes. */
  #writeSplit(va: VirtAddr, value: number, widthBytes: number): void {
    const firstBytes = PAGE_SIZE_4K - (va & PAGE_OFFSET_MASK);
    const firstPa = this.translate(va, "write");
    const secondPa = this.translate(nextPage(va), "write");
    let rest = value;
    for (let i = 0; i < widthBytes; i++) {
      const pa = i < firstBytes ? firstPa + i : secondPa + (i - firstBytes);
      this.#store(pa as PhysAddr, rest % 256, 1);
      rest = Math.floor(rest / 256);
    }
  }

  #load(pa: PhysAddr, widthBytes: AccessWidth): number {
    const memory = this.#memory;
    if (!memory.isRam(pa, widthBytes)) return this.#accessOutsideRam(pa, widthBytes, READ, 0);
    // RAM, checked once: read the shared views directly (little-endian, any alignment).
    const u8 = memory.u8;
    if (widthBytes === 1) return u8[pa];
    if (widthBytes === 4 && (pa & 3) === 0) return memory.u32[pa / 4];
    if (widthBytes === 2) return u8[pa] | (u8[pa + 1] << 8);
    return (u8[pa] | (u8[pa + 1] << 8) | (u8[pa + 2] << 16) | (u8[pa + 3] << 24)) >>> 0;
  }

  #store(pa: PhysAddr, value: number, widthBytes: AccessWidth): void {
    const memory = this.#memory;
    if (!memory.isRam(pa, widthBytes)) {
      this.#accessOutsideRam(pa, widthBytes, WRITE, value);
      return;
    }
    const u8 = memory.u8;
    if (widthBytes === 4 && (pa & 3) === 0) {
      memory.u32[pa / 4] = value;
      return;
    }
    for (let i = 0; i < widthBytes; i++) u8[pa + i] = value >>> (8 * i);
  }

  /**
   * A physical access that missed RAM (the slow path): this CPU's local APIC
   * page, else a device claiming the range on the bus, else a machine check.
   * Returns the value read (0 for a write).
   */
  #accessOutsideRam(
    pa: PhysAddr,
    widthBytes: AccessWidth,
    kind: AccessKind,
    value: number,
  ): number {
    let device: MmioDevice | undefined;
    let offsetBytes = 0;
    const apic = this.#cpu.localApic;
    if (
      apic !== undefined && pa >= apic.mmioBase &&
      pa + widthBytes <= apic.mmioBase + apic.mmioSizeBytes
    ) {
      device = apic;
      offsetBytes = pa - apic.mmioBase;
    } else {
      const claim = this.#bus?.findMmio(pa, widthBytes);
      if (claim !== undefined) {
        device = claim.device;
        offsetBytes = pa - claim.base;
      }
    }
    if (device !== undefined) {
      const result = kind === WRITE ? 0 : device.mmioRead(offsetBytes, widthBytes);
      if (kind === WRITE) device.mmioWrite(offsetBytes, value, widthBytes);
      // A device access is an instruction boundary, as port I/O is: a self-IPI lands now.
      if (this.#cpu.interruptsEnabled) this.#cpu.deliverPendingInterrupts();
      return result;
    }
    const error = new BusError(
      pa,
      widthBytes,
      `no RAM or device answers a ${widthBytes}-byte ${kind === WRITE ? "write" : "read"}`,
    );
    this.machineChecks++;
    this.#machineCheckHandler?.(error);
    throw error;
  }

  /**
   * The uncached-MMIO check of a TLB fill: a page overlapping device
   * registers must select UC or UC- (SDM 11.12); anything else is recorded
   * once per page and traced. Costs one comparison for pages below every
   * MMIO range.
   */
  #checkMmioCaching(va: VirtAddr, frameBase: number, spanBytes: number, low: number): void {
    const bus = this.#bus;
    const apic = this.#cpu.localApic;
    const floor = Math.min(bus?.lowestMmioBase ?? Infinity, apic?.mmioBase ?? Infinity);
    if (frameBase + spanBytes <= floor) return;
    let deviceName: string | undefined;
    if (
      apic !== undefined && frameBase < apic.mmioBase + apic.mmioSizeBytes &&
      apic.mmioBase < frameBase + spanBytes
    ) {
      deviceName = apic.name;
    } else {
      deviceName = bus?.overlappingMmio(frameBase, spanBytes)?.device.name;
    }
    if (deviceName === undefined) return;
    const patBit = spanBytes === PAGE_SIZE_4K ? PTE_PAT : PTE_PAT_HUGE;
    const memoryType = memoryTypeOf(
      (low & patBit) !== 0,
      (low & PTE_PCD) !== 0,
      (low & PTE_PWT) !== 0,
    );
    if (isUncacheable(memoryType)) return;
    const pageVa = (va - (va % spanBytes)) as VirtAddr;
    const violations = this.cachingViolations;
    for (const seen of violations) {
      if (seen.virtAddr === pageVa && seen.physAddr === frameBase) return;
    }
    this.cachingViolationCount++;
    const violation: CachingViolation = {
      virtAddr: pageVa,
      physAddr: frameBase as PhysAddr,
      pageSizeBytes: spanBytes as PageSizeBytes,
      memoryType: patMemoryTypeName(memoryType),
      deviceName,
    };
    if (violations.length < MAX_CACHING_VIOLATIONS) violations.push(violation);
    const tracer = this.#tracer;
    if (tracer !== undefined && tracer.mmu) {
      tracer.emit("mmu", `uncached-MMIO check: ${describeCachingViolation(violation)}`);
    }
  }
}

/**
 * A cacheable MMIO mapping in words, e.g. `page 0x400000 maps io-apic
 * registers at 0xfec00000 as WB, not UC (map MMIO with PCD|PWT)`.
 */
export function describeCachingViolation(violation: CachingViolation): string {
  return `page ${formatVirtAddr(violation.virtAddr)} maps ` +
    `${violation.deviceName} registers at ${hex(violation.physAddr)} as ` +
    `${violation.memoryType}, not UC (map MMIO with PCD|PWT)`;
}

/**
 * Whether a 64-bit linear address whose high 32 bits are `high32` is
 * canonical: bits 63:48 all equal bit 47 (the low half cannot matter).
 */
export function isCanonical(high32: number): boolean {
  const high = high32 >>> 0;
  const upper16 = high >>> 16;
  return (high & 0x8000) !== 0 ? upper16 === 0xffff : upper16 === 0;
}

/**
 * The 48-bit {@linkcode VirtAddr} of the 64-bit linear address `high32:low32`
 * that code on the machine produced. Throws GeneralProtection if it is not
 * canonical, as the processor does for any access through it.
 *
 * @example
 * ```ts
 * import { canonicalVirtAddr } from "./mmu.ts";
 * canonicalVirtAddr(0xffff8000, 0x1000); // 0x800000001000, the higher half's second page
 * ```
 */
export function canonicalVirtAddr(high32: number, low32: number): VirtAddr {
  if (!isCanonical(high32)) {
    throw new GeneralProtection(
      `Non-canonical address 0x${(high32 >>> 0).toString(16).padStart(8, "0")}` +
        (low32 >>> 0).toString(16).padStart(8, "0"),
    );
  }
  return ((high32 & 0xffff) * 2 ** 32 + (low32 >>> 0)) as VirtAddr;
}

/**
 * The 48-bit {@linkcode VirtAddr} of a 64-bit linear address written in hex
 * (`0x` optional, `_` separators allowed, up to 16 digits). Throws RangeError
 * if the text is not such a number, GeneralProtection if it is not canonical.
 */
export function canonicalVirtAddrFromText(text: string): VirtAddr {
  const clean = text.trim().replaceAll("_", "").toLowerCase().replace(/^0x/, "");
  if (!/^[0-9a-f]{1,16}$/.test(clean)) {
    throw new RangeError(`Invalid address "${text}": expected up to 16 hex digits`);
  }
  const digits = clean.padStart(16, "0");
  return canonicalVirtAddr(parseInt(digits.slice(0, 8), 16), parseInt(digits.slice(8), 16));
}

function kindOf(access: MemoryAccess): AccessKind {
  return access === "read" ? READ : access === "write" ? WRITE : FETCH;
}

/**
 * The first address of the page after `va`'s, in 48-bit form. Running off
 * the top of the lower half is a #GP (the next address is non-canonical);
 * running off the top of the higher half wraps to 0, as 64-bit addresses do.
 */
function nextPage(va: VirtAddr): VirtAddr {
  const next = (Math.floor(va / PAGE_SIZE_4K) + 1) * PAGE_SIZE_4K;
  if (next === HIGHER_HALF_START) {
    throw new GeneralProtection(
      `Access at ${formatVirtAddr(va)} runs into non-canonical address ${hex(next)}`,
    );
  }
  return (next === VIRT_ADDR_LIMIT ? 0 : next) as VirtAddr;
}

function checkLength(lengthBytes: number): void {
  if (!Number.isSafeInteger(lengthBytes) || lengthBytes < 0) {
    throw new RangeError(`Invalid length ${String(lengthBytes)}: expected a byte count`);
  }
}
