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
 * BigInts. Addresses are numbers; 48-bit arithmetic multiplies by exact
 * powers of two and lets `&` / `>>>` take the low 32 bits where that is all
 * it needs, never dividing. Protection on a TLB hit is one test against a mask
 * the CPU recomputes when its protection mode changes (hal/access_rights.ts).
 * The hit path is inlined into its callers; everything else is one call of
 * the page-miss handler (#walk), kept out of them on purpose.
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

import * as address from "./address.ts";
import {
  formatVirtAddr,
  hex,
  type PageSizeBytes,
  type PhysAddr,
  type VirtAddr,
} from "./address.ts";
import * as accessRights from "./access_rights.ts";
import type { AccessKind } from "./access_rights.ts";
import type { AccessWidth, DeviceBus, MmioDevice } from "./bus.ts";
import * as controlRegisters from "./control_registers.ts";
import type { CpuContext } from "./cpu.ts";
import * as faults from "./faults.ts";
import { BusError, describePageFaultCode, GeneralProtection, PageFault } from "./faults.ts";
import { isUncacheable, memoryTypeOf, patMemoryTypeName } from "./memory_type.ts";
import * as pageTableEntry from "./page_table_entry.ts";
import {
  PAGING_LEVEL_NAMES,
  type PagingLevel,
  PTE_PAT,
  PTE_PAT_HUGE,
  PTE_PCD,
  PTE_PWT,
  reservedHighMask,
} from "./page_table_entry.ts";
import type { PhysicalMemory } from "./physical_memory.ts";
import * as tlbModule from "./tlb.ts";
import { type Tlb, TLB_4K_DENIED, TLB_NO_4K_ENTRY, tlbRightsIndex } from "./tlb.ts";
import type { Tracer } from "./trace.ts";

// V8 compiles a module's own constants into the code it optimizes but reads
// an imported binding from its module cell, with a check, at every use. The
// hot paths below (a TLB hit, a physical access, a walk) therefore use these
// local copies of the imported constants.
const { HIGHER_HALF_START, PAGE_SIZE_4K, VIRT_ADDR_LIMIT } = address;
const { ACCESS_FETCH: FETCH, ACCESS_READ: READ, ACCESS_WRITE: WRITE } = accessRights;
const { CR0_PG, CR4_PGE, CR4_SMEP, EFER_NXE } = controlRegisters;
const { PF_FETCH, PF_PRESENT, PF_RESERVED, PF_USER, PF_WRITE } = faults;
const { ENTRIES_PER_TABLE, ENTRY_SIZE_BYTES, PTE_A, PTE_D, PTE_G, PTE_HIGH_NX, PTE_P, PTE_PS } =
  pageTableEntry;
const { TLB_DIRTY, TLB_GLOBAL, TLB_NO_EXECUTE, TLB_USER, TLB_WRITABLE } = tlbModule;

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

// How #walk, the page-miss handler, is entered.
/** From a translation the 4 KiB TLB entries did not serve: the whole miss path, faults delivered. */
const WALK_TRANSLATE = 0;
/** From #deliverFault, after the handler asked for a retry: TLB and walk, faults returned. */
const WALK_RETRY = 1;
/** From probe(): the walk alone, recording its entries; no TLB, no A/D, faults returned. */
const WALK_PROBE = 2;
type WalkMode = typeof WALK_TRANSLATE | typeof WALK_RETRY | typeof WALK_PROBE;
/** The status of a translation or walk that found the page (faults are -1 - errorCode). */
const WALK_OK = 0;

const PAGE_OFFSET_MASK = PAGE_SIZE_4K - 1;
/** Words in one RAM view of the walk: 2^31, the most an int32 index reaches (8 GiB). */
const VIEW_WORDS = 2 ** 31;
/** A table's high address bits (entry bits 51:32) shifted right by this number its RAM view. */
const VIEW_SHIFT = 1;
/** The high address bit that lies inside a view (bit 32 of the address: word bit 30). */
const VIEW_HIGH_MASK = 1;
/** Address bits 51:32 in an entry's high half. */
const ADDRESS_HIGH_MASK = 0xfffff;
/** Address bits 31:12 of a table, as word-index bits 29:10. */
const TABLE_WORD_MASK = 0x3fff_fc00;
/** Physical accesses below this take the direct RAM path: word indices are then 32-bit integers. */
const FAST_ACCESS_LIMIT = 2 ** 32;
/** The last offset in a 4 KiB page at which an access of 2, 4 or 8 bytes fits. */
const LAST_OFFSET_16 = PAGE_SIZE_4K - 2;
const LAST_OFFSET_32 = PAGE_SIZE_4K - 4;
const LAST_OFFSET_64 = PAGE_SIZE_4K - 8;
/** Bytes one entry covers, by level (index 1 = PT ... 4 = PML4). */
const SPAN_BYTES = new Float64Array([0, PAGE_SIZE_4K, 2 ** 21, 2 ** 30, 2 ** 39]);
/** log2 of 4 KiB: the lowest virtual-address bit of a PT index. */
const PAGE_SHIFT = 12;
/** Virtual-address bits per level's table index: 9 (512 entries). */
const INDEX_BITS = 9;
/** Low-half bits reserved in a 1 GiB leaf (address bits 29:13; bit 12 is PAT). */
const RESERVED_LOW_1G = 0x3fffe000;
/** Low-half bits reserved in a 2 MiB leaf (address bits 20:13). */
const RESERVED_LOW_2M = 0x001fe000;

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
  /** The CPU's TLB-hit masks per access kind (AccessRights.hit), kept current by the CPU. */
  readonly #hitMasks: Int32Array;
  /** The CPU's allowed masks per access kind (AccessRights.allowed), kept current by the CPU. */
  readonly #allowedMasks: Int32Array;
  /** RAM views: the fast path reads and writes data below 4 GiB through them. */
  readonly #u32: Uint32Array;
  readonly #u8: Uint8Array;
  /**
   * RAM as consecutive views of 8 GiB (2^31 words) each, for the walk: a
   * table's entries are indexed with int32s, which V8 compiles to a bounds
   * check and a load (a larger index is a double it must check first).
   */
  readonly #u32Views: readonly Uint32Array[];
  /** The first of #u32Views (RAM below 8 GiB), where page tables normally are. */
  readonly #u32Low: Uint32Array;
  /** The same RAM as Int32Arrays, for `Atomics.compareExchange`. */
  readonly #i32Views: readonly Int32Array[];
  /**
   * The fast RAM window: the largest RAM range below 4 GiB (on a PC, the one
   * from 1 MiB up). From #firstRamByte to #lastRamWord a 32-bit access lies
   * wholly inside it, so it is RAM without looking at the ranges or the bus
   * (two compares, no addition V8 would check), and `pa >>> 2` is its exact
   * word index. Accesses outside the window take the slow path.
   */
  readonly #firstRamByte: number;
  /** The last address of the window at which a 32-bit access fits (below #firstRamByte: no window). */
  readonly #lastRamWord: number;
  /** The same for a byte access. */
  readonly #lastRamByte: number;
  /** The word indices, in the first RAM view, of the window's first and last page-table entries. */
  readonly #firstRamEntryWord: number;
  readonly #lastRamEntryWord: number;
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
  /** The physical address the last translation or walk found. */
  #physAddr = 0;
  /**
   * The virtual address #walk handles. It is passed in this field, as
   * #physAddr passes the result out, because V8 boxes a double argument of a
   * call it does not inline into a new heap object.
   */
  #missVa = 0;
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
    this.#hitMasks = cpu.accessRights.hit;
    this.#allowedMasks = cpu.accessRights.allowed;
    this.#u32 = memory.u32;
    this.#u8 = memory.u8;
    const u32Views: Uint32Array[] = [];
    const i32Views: Int32Array[] = [];
    for (let start = 0; start < memory.endBytes; start += VIEW_WORDS * 4) {
      const words = Math.min(VIEW_WORDS, (memory.endBytes - start) / 4);
      u32Views.push(new Uint32Array(memory.buffer, start, words));
      i32Views.push(new Int32Array(memory.buffer, start, words));
    }
    this.#u32Views = u32Views;
    this.#u32Low = u32Views[0];
    this.#i32Views = i32Views;
    // The fast window: the largest RAM range below 4 GiB, clipped there.
    let fastStart = 0;
    let fastEnd = 0;
    for (const range of memory.ranges) {
      const end = Math.min(range.base + range.sizeBytes, FAST_ACCESS_LIMIT);
      if (end - range.base > fastEnd - fastStart) {
        fastStart = range.base;
        fastEnd = end;
      }
    }
    this.#firstRamByte = fastStart;
    this.#lastRamWord = fastEnd - 4;
    this.#lastRamByte = fastEnd - 1;
    this.#firstRamEntryWord = fastStart / 4;
    this.#lastRamEntryWord = (fastEnd - ENTRY_SIZE_BYTES) / 4;
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
    const tlb = this.#tlb;
    const slot = tlb.hit4K(va, access);
    if (slot >= 0) return tlb.physAddrAt(slot, va);
    return this.#miss(va, access, slot);
  }

  /**
   * A translation the 4 KiB TLB entries did not serve (`slot`, what
   * {@linkcode Tlb.hit4K} returned, says why): one call of the page-miss
   * handler, #walk. Returns the physical address.
   */
  #miss(va: VirtAddr, access: MemoryAccess, slot: number): PhysAddr {
    this.#missVa = va;
    this.#walk(access, slot, WALK_TRANSLATE);
    // Unary plus: a number on both paths, so V8 keeps the hit path's address unboxed.
    return +this.#physAddr as PhysAddr;
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
    checkVirtAddr(va);
    this.#missVa = va;
    const status = this.#walk(access, TLB_NO_4K_ENTRY, WALK_PROBE);
    const steps: PageWalkStep[] = [];
    for (let i = 0; i < this.#stepCount; i++) {
      steps.push({
        level: (4 - i) as PagingLevel,
        entryAddr: this.#stepAddr[i] as PhysAddr,
        low32: this.#stepLow[i],
        high32: this.#stepHigh[i],
      });
    }
    if (status < 0) return { kind: "fault", steps, errorCode: -1 - status };
    const flags = this.#leafFlags;
    return {
      kind: "mapped",
      steps,
      physAddr: this.#physAddr as PhysAddr,
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
    if ((va & PAGE_OFFSET_MASK) <= LAST_OFFSET_16) {
      return this.#load(this.translate(va, access), 2);
    }
    return this.#readSplit(va, 2, access);
  }

  /** Reads a little-endian 32-bit value (unsigned) at `va`, across a page boundary if need be. */
  readVirt32(va: VirtAddr, access: ReadAccess = "read"): number {
    if ((va & 3) === 0) {
      // Aligned, so inside one page. A 4 KiB TLB hit on a frame the MMU
      // reads directly (Tlb.ramWordAt) is one load, in int32 arithmetic.
      const tlb = this.#tlb;
      const slot = tlb.hit4K(va, access);
      if (slot < 0) return this.#load(this.#miss(va, access, slot), 4);
      const ramWord = tlb.ramWordAt(slot);
      if (ramWord >= 0) return this.#u32[ramWord + ((va & PAGE_OFFSET_MASK) >>> 2)];
      return this.#load(tlb.physAddrAt(slot, va), 4);
    }
    if ((va & PAGE_OFFSET_MASK) <= LAST_OFFSET_32) {
      return this.#load(this.translate(va, access), 4);
    }
    return this.#readSplit(va, 4, access);
  }

  /**
   * Reads a little-endian 64-bit value at `va` as a number: exact below 2^53,
   * rounded above (read two 32-bit halves when every bit matters).
   */
  readVirt64(va: VirtAddr, access: ReadAccess = "read"): number {
    if ((va & PAGE_OFFSET_MASK) <= LAST_OFFSET_64) {
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
    if ((va & PAGE_OFFSET_MASK) <= LAST_OFFSET_16) {
      this.#store(this.translate(va, "write"), value & 0xffff, 2);
    } else {
      this.#writeSplit(va, value & 0xffff, 2);
    }
  }

  /** Writes a little-endian 32-bit value at `va`; across pages, as {@linkcode writeVirt16}. */
  writeVirt32(va: VirtAddr, value: number): void {
    if ((va & 3) === 0) {
      // Aligned: as readVirt32.
      const tlb = this.#tlb;
      const slot = tlb.hit4K(va, "write");
      if (slot < 0) {
        this.#store(this.#miss(va, "write", slot), value >>> 0, 4);
        return;
      }
      const ramWord = tlb.ramWordAt(slot);
      if (ramWord >= 0) {
        this.#u32[ramWord + ((va & PAGE_OFFSET_MASK) >>> 2)] = value;
        return;
      }
      this.#store(tlb.physAddrAt(slot, va), value >>> 0, 4);
      return;
    }
    if ((va & PAGE_OFFSET_MASK) <= LAST_OFFSET_32) {
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
    if ((va & PAGE_OFFSET_MASK) <= LAST_OFFSET_64) {
      const pa = this.translate(va, "write");
      this.#store(pa, value % 2 ** 32, 4);
      this.#store((pa + 4) as PhysAddr, Math.floor(value * 2 ** -32), 4);
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
   * The page-miss handler: everything a translation does but a 4 KiB TLB
   * hit, in one method. In WALK_TRANSLATE and WALK_RETRY modes: paging off
   * (the identity), a 2 MiB or 1 GiB TLB hit, a TLB entry that denies the
   * access (a fault without a walk), then the page walk (SDM 4.5), which sets
   * A/D bits and fills the TLB; a write through an entry whose D bit is not
   * yet set walks again to set it. In WALK_TRANSLATE mode a fault is
   * delivered (#deliverFault) and WALK_OK returned once a retry succeeds; in
   * WALK_RETRY mode it is returned as -1 - errorCode. WALK_PROBE mode is the
   * walk alone for probe(), recording the entries it reads. The address is
   * #missVa (valid in WALK_RETRY and WALK_PROBE modes; checked here in
   * WALK_TRANSLATE mode); the physical address found goes to #physAddr.
   * `slot4K` is what Tlb.hit4K returned for it (TLB_NO_4K_ENTRY: no 4 KiB
   * entry, so only the large ones need a look).
   *
   * Why one method: the hit path (translate(), readVirt32() ...) is inlined
   * into its callers, and V8 inlines a small callee into a caller with
   * feedback that it was called; a miss path made of small methods would be
   * inlined too once misses or large-page hits had run, and its calls would
   * cost every caller's hit path registers and spills. This method is far
   * above V8's inlining limit for one function (460 bytes of bytecode), so
   * callers keep one call to it. It passes results through #physAddr and
   * returns small integer statuses because V8 boxes a double, such as an
   * address above 2^31, whenever it crosses a call it did not inline.
   *
   * Concurrency: other CPUs (Workers over the same RAM) may walk and edit
   * these tables at the same time. Entries are read with plain loads, the
   * low half (P) first: typed-array accesses keep their program order in V8
   * and x86-64 keeps loads in order, so with the kernel writing the high half
   * before the low half that makes an entry present, a walk never uses a
   * present entry with a stale high half. The A and D bits are set with
   * `Atomics.compareExchange` against the value the walk read, because a low
   * half has concurrent writers: the walkers of other CPUs (setting A/D) and
   * the kernel (editing or clearing the entry). A compare-exchange neither
   * loses their writes nor sets A/D in an entry that changed after this walk
   * checked it; if the entry changed, the walk starts again from the top.
   */
  #walk(access: MemoryAccess, slot4K: number, mode: WalkMode): number {
    const cpu = this.#cpu;
    const va = this.#missVa as VirtAddr;
    const kind = access === "read" ? READ : access === "write" ? WRITE : FETCH;
    const isTranslate = mode !== WALK_PROBE;
    let status = WALK_OK;
    miss: {
      if (isTranslate) {
        if (mode === WALK_TRANSLATE) {
          if ((cpu.cr0 & CR0_PG) === 0) {
            this.#physAddr = va;
            return WALK_OK;
          }
          checkVirtAddr(va);
        }
        // The TLB entry the hit path could not use, or a large page's: it
        // serves the access, or denies it (a fault, no walk), or is a write
        // through an entry whose D bit is not known to be set (a walk).
        const tlb = this.#tlb;
        const slot = slot4K === TLB_NO_4K_ENTRY ? tlb.lookupLarge(va) : tlb.lookup(va);
        if (slot >= 0) {
          const rights = tlb.rightsAt(slot);
          if (((this.#allowedMasks[kind] >>> rights) & 1) === 0) {
            status = -1 - (PF_PRESENT | this.#accessErrorBits(kind));
            break miss;
          }
          if (((this.#hitMasks[kind] >>> rights) & 1) !== 0) {
            this.#physAddr = tlb.physAddrAt(slot, va);
            return WALK_OK;
          }
        }
        this.walks++;
      }
      // The walk, over the address as two int32s: bits 47:32 and 31:0.
      const vaHigh = highHalf(va);
      const vaLow = va | 0;
      const nxe = (cpu.efer & EFER_NXE) !== 0;
      // Without NXE, bit 63 is reserved like bits 51:MAXPHYADDR.
      const reservedHigh = nxe ? this.#reservedHigh : this.#reservedHigh | PTE_HIGH_NX;
      const lowWords = this.#u32Low;
      const firstRamEntryWord = this.#firstRamEntryWord;
      const lastRamEntryWord = this.#lastRamEntryWord;
      restart: for (;;) {
        if (!isTranslate) this.#stepCount = 0;
        // A table is addressed by the RAM view holding it and its first word
        // index in that view: two int32s, so every index below stays an int32.
        const cr3 = cpu.cr3;
        const cr3High = Math.floor(cr3 * 2 ** -32);
        let view = cr3High >>> VIEW_SHIFT;
        let tableWord = ((cr3High & VIEW_HIGH_MASK) << 30) | ((cr3 >>> 2) & TABLE_WORD_MASK);
        let rights = TLB_WRITABLE | TLB_USER;
        let noExecute = 0;
        let level = 4;
        let index = 0;
        let low = 0;
        let high = 0;
        // Down the tables until a leaf (a PTE, or a PDPTE or PDE with PS) or a fault.
        for (;; level--) {
          const shift = PAGE_SHIFT + INDEX_BITS * (level - 1);
          const entryIndex = level === 4
            ? vaHigh >>> (shift - 32)
            : (vaLow >>> shift) | (vaHigh << (32 - shift));
          index = tableWord + 2 * (entryIndex & (ENTRIES_PER_TABLE - 1));
          if (
            (view !== 0 || index > lastRamEntryWord || index < firstRamEntryWord) &&
            !this.#isRamEntry(view, index)
          ) {
            throw new BusError(
              ((view * VIEW_WORDS + index) * 4) as PhysAddr,
              ENTRY_SIZE_BYTES,
              `${PAGING_LEVEL_NAMES[level as PagingLevel]} entry for ${
                formatVirtAddr(va)
              } is not RAM`,
            );
          }
          const words = view === 0 ? lowWords : this.#u32Views[view];
          low = words[index] | 0;
          high = words[index + 1];
          if (!isTranslate) {
            const step = this.#stepCount++;
            this.#stepAddr[step] = (view * VIEW_WORDS + index) * 4;
            this.#stepLow[step] = low;
            this.#stepHigh[step] = high;
          }
          if ((low & PTE_P) === 0) {
            status = -1 - this.#accessErrorBits(kind);
            break;
          }
          // PS maps a page in a PDPTE or PDE, is reserved in a PML4E, and is PAT in a PTE.
          const hasPs = level !== 1 && (low & PTE_PS) !== 0;
          if (
            (high & reservedHigh) !== 0 ||
            (hasPs &&
              (level === 4 || (low & (level === 3 ? RESERVED_LOW_1G : RESERVED_LOW_2M)) !== 0))
          ) {
            status = -1 - (this.#accessErrorBits(kind) | PF_PRESENT | PF_RESERVED);
            break;
          }
          rights &= low;
          if (nxe && (high & PTE_HIGH_NX) !== 0) noExecute = TLB_NO_EXECUTE;
          if (level === 1 || hasPs) break;
          if (
            isTranslate && (low & PTE_A) === 0 &&
            Atomics.compareExchange(this.#i32Views[view], index, low, low | PTE_A) !== low
          ) {
            continue restart;
          }
          view = (high & ADDRESS_HIGH_MASK) >>> VIEW_SHIFT;
          tableWord = ((high & VIEW_HIGH_MASK) << 30) | ((low >>> 2) & TABLE_WORD_MASK);
        }
        if (status !== WALK_OK) break miss;
        // The leaf at `level`.
        const spanBytes = SPAN_BYTES[level];
        let flags = rights | noExecute;
        if ((low & PTE_G) !== 0 && (cpu.cr4 & CR4_PGE) !== 0) flags |= TLB_GLOBAL;
        if (kind === WRITE || (low & PTE_D) !== 0) flags |= TLB_DIRTY;
        if (((this.#allowedMasks[kind] >>> tlbRightsIndex(flags)) & 1) === 0) {
          status = -1 - (PF_PRESENT | this.#accessErrorBits(kind));
          break miss;
        }
        // The leaf's address bits start at the page size: bit 12, 21 or 30.
        const frameBase = (high & ADDRESS_HIGH_MASK) * 2 ** 32 + ((low & -spanBytes) >>> 0);
        if (isTranslate) {
          const setBits = kind === WRITE ? PTE_A | PTE_D : PTE_A;
          if (
            (low & setBits) !== setBits &&
            Atomics.compareExchange(this.#i32Views[view], index, low, low | setBits) !== low
          ) {
            continue restart;
          }
          // The test is inline: the check's arguments would be boxed numbers in a call.
          if (frameBase + spanBytes > this.#lowestMmioBase()) {
            this.#checkMmioCaching(va, frameBase, spanBytes, low);
          }
          // A 4 KiB frame inside the direct RAM window is read and written
          // through its word index (readVirt32, writeVirt32).
          const ramWord = spanBytes === PAGE_SIZE_4K && frameBase >= this.#firstRamByte &&
              frameBase + (PAGE_SIZE_4K - 4) <= this.#lastRamWord
            ? frameBase >>> 2
            : -1;
          this.#tlb.insert(
            va,
            spanBytes as PageSizeBytes,
            frameBase as PhysAddr,
            flags,
            ramWord,
          );
        } else {
          this.#leafFlags = flags;
          this.#leafPageBytes = spanBytes as PageSizeBytes;
        }
        // The offset in the page is below 2^30, so `&` keeps all of it.
        this.#physAddr = frameBase + (vaLow & (spanBytes - 1));
        return WALK_OK;
      }
    }
    if (mode !== WALK_TRANSLATE) return status;
    this.#physAddr = this.#deliverFault(va, access, -1 - status);
    return WALK_OK;
  }

  /** Whether the entry at word `index` of RAM view `view` lies in RAM (not a hole or past the end). */
  #isRamEntry(view: number, index: number): boolean {
    return view < this.#u32Views.length &&
      this.#memory.isRam((view * VIEW_WORDS + index) * 4, ENTRY_SIZE_BYTES);
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
  #deliverFault(va: VirtAddr, access: MemoryAccess, firstErrorCode: number): number {
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
      // The handler may have translated other addresses: #missVa is set again.
      this.#missVa = va;
      const status = this.#walk(access, TLB_4K_DENIED, WALK_RETRY);
      if (status >= 0) return this.#physAddr;
      errorCode = -1 - status;
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

  /** Reads physical memory: the fast RAM window directly, anything else through the slow path. */
  #load(pa: PhysAddr, widthBytes: AccessWidth): number {
    if (widthBytes === 4) {
      if (pa <= this.#lastRamWord && pa >= this.#firstRamByte && (pa & 3) === 0) {
        return this.#u32[pa >>> 2];
      }
    } else if (widthBytes === 1 && pa <= this.#lastRamByte && pa >= this.#firstRamByte) {
      return this.#u8[pa];
    }
    return this.#loadSlow(pa, widthBytes);
  }

  /** Writes physical memory: the fast RAM window directly, anything else through the slow path. */
  #store(pa: PhysAddr, value: number, widthBytes: AccessWidth): void {
    if (widthBytes === 4) {
      if (pa <= this.#lastRamWord && pa >= this.#firstRamByte && (pa & 3) === 0) {
        this.#u32[pa >>> 2] = value;
        return;
      }
    } else if (widthBytes === 1 && pa <= this.#lastRamByte && pa >= this.#firstRamByte) {
      this.#u8[pa] = value;
      return;
    }
    this.#storeSlow(pa, value, widthBytes);
  }

  /**
   * The physical-access slow path for reads: RAM the fast path does not
   * cover (above 4 GiB, misaligned, 16-bit), else #accessOutsideRam.
   */
  #loadSlow(pa: PhysAddr, widthBytes: AccessWidth): number {
    const memory = this.#memory;
    if (!memory.isRam(pa, widthBytes)) return this.#accessOutsideRam(pa, widthBytes, READ, 0);
    // RAM, checked once: read the shared views directly (little-endian, any alignment).
    const u8 = memory.u8;
    if (widthBytes === 1) return u8[pa];
    if (widthBytes === 4 && (pa & 3) === 0) return memory.u32[pa / 4];
    if (widthBytes === 2) return u8[pa] | (u8[pa + 1] << 8);
    return (u8[pa] | (u8[pa + 1] << 8) | (u8[pa + 2] << 16) | (u8[pa + 3] << 24)) >>> 0;
  }

  /** The physical-access slow path for writes, as `#loadSlow`. */
  #storeSlow(pa: PhysAddr, value: number, widthBytes: AccessWidth): void {
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

  /** The lowest physical address of any MMIO range (the bus's or the local APIC's), or Infinity. */
  #lowestMmioBase(): number {
    const bus = this.#bus;
    const apic = this.#cpu.localApic;
    const busBase = bus === undefined ? Infinity : bus.lowestMmioBase;
    return apic === undefined ? busBase : Math.min(busBase, apic.mmioBase);
  }

  /**
   * The uncached-MMIO check of a TLB fill: a page overlapping device
   * registers must select UC or UC- (SDM 11.12); anything else is recorded
   * once per page and traced. The walk calls it only for a page that
   * reaches the lowest MMIO range (see #lowestMmioBase).
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

/** Throws GeneralProtection unless `va` is a 48-bit virtual address (an integer in [0, 2^48)). */
function checkVirtAddr(va: number): void {
  if (!(va >= 0 && va < VIRT_ADDR_LIMIT && Math.floor(va) === va)) {
    throw new GeneralProtection(`Address ${String(va)} is not a 48-bit virtual address`);
  }
}

/** Bits 47:32 of a 48-bit virtual address. */
function highHalf(va: number): number {
  // The exact product is below 2^16, and `|` truncates it.
  return (va * 2 ** -32) | 0;
}

function checkLength(lengthBytes: number): void {
  if (!Number.isSafeInteger(lengthBytes) || lengthBytes < 0) {
    throw new RangeError(`Invalid length ${String(lengthBytes)}: expected a byte count`);
  }
}
