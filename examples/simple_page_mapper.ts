/**
 * A simple page-table mapper for the stock kernel: x86-64 4-level paging
 * with 4 KiB, 2 MiB and 1 GiB pages, written the plain way (one walk per
 * operation, a table freed when a scan finds it empty). Its state is the
 * page tables themselves, in frames from the frame provider.
 *
 *     deno task boot -- --pagetable examples/simple_page_mapper.ts --selftest
 *
 * An entry is 8 bytes: bit 0 P, 1 RW, 2 US, 3 PWT, 4 PCD, 5 A, 6 D, 7 PS
 * (a leaf above level 1), 8 G, 9-11 free for software, 12-51 the address,
 * 63 XD (Intel SDM vol. 3A, 4.5). Tables are P | RW | US so that the leaf
 * alone decides the permissions.
 *
 * @module
 */

import {
  type CpuContext,
  type FrameNumber,
  type FrameProvider,
  frameStart,
  hex,
  KernelError,
  MappingError,
  PAGE_NO_EXECUTE,
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  type PageFlags,
  type PageMapper,
  type PageMapperEnv,
  type PageMapperFactory,
  type PageSizeBytes,
  type PhysAddr,
  type PhysicalMemory,
  PTE_A,
  PTE_D,
  PTE_G,
  PTE_P,
  PTE_PS,
  PTE_RW,
  PTE_US,
  VIRT_ADDR_LIMIT,
  type VirtAddr,
} from "../sdk/mod.ts";

/** Bytes an entry covers at each level: 1 = PT (4 KiB) ... 4 = PML4 (512 GiB). */
const SPAN = [0, PAGE_SIZE_4K, PAGE_SIZE_2M, PAGE_SIZE_1G, 2 ** 39];
/** Flag bits copied into a leaf's low word: RW, US, PWT, PCD, G and software bits 9-11. */
const LOW_FLAG_BITS = 0xf1e;
/** Bits of a leaf that protect() keeps: P, A, D, PS. */
const KEPT_BITS = PTE_P | PTE_A | PTE_D | PTE_PS;
/** Address bits 31:12 of an entry's low word. */
const ADDRESS_LOW_BITS = 0xfffff000;
const TABLE_FLAGS = PTE_P | PTE_RW | PTE_US;
const XD_HIGH = 2 ** 31;
const TWO_POW_32 = 2 ** 32;

class SimplePageMapper implements PageMapper {
  readonly pml4Addr: PhysAddr;
  readonly #memory: PhysicalMemory;
  readonly #frames: FrameProvider;
  readonly #cpu: CpuContext;

  constructor(env: PageMapperEnv) {
    this.#memory = env.memory;
    this.#frames = env.frames;
    this.#cpu = env.cpu;
    this.pml4Addr = this.#newTable("Cannot create an address space", 0 as VirtAddr);
  }

  map(va: VirtAddr, pa: PhysAddr, flags: PageFlags, size: PageSizeBytes): void {
    const leafLevel = levelOf(size);
    checkAligned("map", va, size);
    if (pa % size !== 0 || pa < 0 || pa >= 2 ** 52) {
      throw new MappingError(
        "InvalidAddress",
        va,
        `Cannot map ${hex(va)}: frame ${hex(pa)} is misaligned`,
      );
    }
    const created: number[] = []; // entries this call filled, to undo on failure
    let table = this.pml4Addr as number;
    for (let level = 4; level > leafLevel; level--) {
      const e = entryAddr(table, va, level);
      const low = this.#read(e);
      if ((low & PTE_P) === 0) {
        let next: number;
        try {
          next = this.#newTable(`Cannot map ${hex(va)}`, va);
        } catch (error) {
          this.#undo(created);
          throw error;
        }
        this.#write(e, next % TWO_POW_32 | TABLE_FLAGS, Math.floor(next / TWO_POW_32));
        created.push(e);
        table = next;
      } else if ((low & PTE_PS) !== 0) {
        throw new MappingError(
          "ParentEntryHugePage",
          va,
          `Cannot map ${hex(va)}: a huge page covers it`,
        );
      } else {
        table = addressOf(low, this.#read(e + 4));
      }
    }
    const e = entryAddr(table, va, leafLevel);
    if ((this.#read(e) & PTE_P) !== 0) {
      this.#undo(created);
      throw new MappingError("PageAlreadyMapped", va, `Cannot map ${hex(va)}: already mapped`);
    }
    const low = (pa % TWO_POW_32) | PTE_P | (flags & LOW_FLAG_BITS) | (leafLevel > 1 ? PTE_PS : 0);
    const high = Math.floor(pa / TWO_POW_32) | ((flags & PAGE_NO_EXECUTE) !== 0 ? XD_HIGH : 0);
    this.#write(e, low, high);
  }

  unmap(va: VirtAddr, size: PageSizeBytes): PhysAddr {
    const path = this.#walkTo("unmap", va, size);
    const e = path[path.length - 1];
    const low = this.#read(e);
    const pa = leafAddress(low, this.#read(e + 4), levelOf(size));
    this.#write(e, 0, 0);
    this.#flush(va, low);
    // Free each table the removal left empty, from the bottom up (never the PML4).
    for (let i = path.length - 2; i >= 0; i--) {
      const table = addressOf(this.#read(path[i]), this.#read(path[i] + 4));
      if (!this.#isEmpty(table)) break;
      this.#write(path[i], 0, 0);
      this.#frames.free((table / PAGE_SIZE_4K) as FrameNumber);
    }
    return pa as PhysAddr;
  }

  protect(va: VirtAddr, flags: PageFlags, size: PageSizeBytes): void {
    const path = this.#walkTo("protect", va, size);
    const e = path[path.length - 1];
    const low = this.#read(e);
    const high = this.#read(e + 4);
    const frameLow = low & ADDRESS_LOW_BITS;
    this.#write(
      e,
      frameLow | (low & KEPT_BITS) | (flags & LOW_FLAG_BITS),
      (high & ~XD_HIGH) | ((flags & PAGE_NO_EXECUTE) !== 0 ? XD_HIGH : 0),
    );
    this.#flush(va, low | (flags & PTE_G));
  }

  translate(va: VirtAddr): PhysAddr | undefined {
    if (!Number.isSafeInteger(va) || va < 0 || va >= VIRT_ADDR_LIMIT) return undefined;
    let table = this.pml4Addr as number;
    for (let level = 4; level >= 1; level--) {
      const e = entryAddr(table, va, level);
      const low = this.#read(e);
      if ((low & PTE_P) === 0) return undefined;
      if (level === 1 || (low & PTE_PS) !== 0) {
        return (leafAddress(low, this.#read(e + 4), level) + (va % SPAN[level])) as PhysAddr;
      }
      table = addressOf(low, this.#read(e + 4));
    }
    return undefined;
  }

  [Symbol.dispose](): void {
    this.#freeTable(this.pml4Addr, 4);
  }

  /** The entry addresses from the PML4 down to the leaf of `size` at `va`. */
  #walkTo(action: string, va: VirtAddr, size: PageSizeBytes): number[] {
    const leafLevel = levelOf(size);
    checkAligned(action, va, size);
    const path: number[] = [];
    let table = this.pml4Addr as number;
    for (let level = 4; level >= leafLevel; level--) {
      const e = entryAddr(table, va, level);
      path.push(e);
      const low = this.#read(e);
      if ((low & PTE_P) === 0) break;
      const isLeaf = level === 1 || (low & PTE_PS) !== 0;
      if (level === leafLevel) {
        if (isLeaf) return path;
        break; // a table where a huge page was asked for: nothing of that size is mapped
      }
      if (isLeaf) {
        throw new MappingError(
          "ParentEntryHugePage",
          va,
          `Cannot ${action} ${hex(va)}: a huge page covers it`,
        );
      }
      table = addressOf(low, this.#read(e + 4));
    }
    throw new MappingError("PageNotMapped", va, `Cannot ${action} ${hex(va)}: not mapped`);
  }

  /** A zeroed table from the frame provider. */
  #newTable(what: string, va: VirtAddr): PhysAddr {
    let frame: FrameNumber;
    try {
      frame = this.#frames.allocate();
    } catch (error) {
      if (!(error instanceof KernelError) || error.code !== "OutOfMemory") throw error;
      throw new MappingError(
        "FrameAllocationFailed",
        va,
        `${what}: no free frame for a page table`,
      );
    }
    const pa = frameStart(frame);
    this.#memory.fill(pa, PAGE_SIZE_4K, 0);
    return pa;
  }

  /** Clears the entries a failed map filled and frees their tables, last first. */
  #undo(entries: number[]): void {
    for (const e of entries.reverse()) {
      const table = addressOf(this.#read(e), this.#read(e + 4));
      this.#write(e, 0, 0);
      this.#frames.free((table / PAGE_SIZE_4K) as FrameNumber);
    }
  }

  /** Frees a table and the tables below it (not the frames leaves map). */
  #freeTable(table: number, level: number): void {
    for (let i = 0; level > 1 && i < 512; i++) {
      const low = this.#read(table + 8 * i);
      if ((low & PTE_P) !== 0 && (low & PTE_PS) === 0) {
        this.#freeTable(addressOf(low, this.#read(table + 8 * i + 4)), level - 1);
      }
    }
    this.#frames.free((table / PAGE_SIZE_4K) as FrameNumber);
  }

  /** INVLPG when the change can be in the TLB: this space is active, or the page is global. */
  #flush(va: VirtAddr, low: number): void {
    const cr3 = this.#cpu.cr3;
    if (cr3 - (cr3 % PAGE_SIZE_4K) === this.pml4Addr || (low & PTE_G) !== 0) this.#cpu.invlpg(va);
  }

  #isEmpty(table: number): boolean {
    for (let i = 0; i < 512; i++) if ((this.#read(table + 8 * i) & PTE_P) !== 0) return false;
    return true;
  }

  #read(pa: number): number {
    return this.#memory.read32(pa as PhysAddr);
  }

  /** Writes an entry: the half with P goes last when it becomes present, first when cleared. */
  #write(e: number, low: number, high: number): void {
    if ((low & PTE_P) !== 0) {
      this.#memory.write32((e + 4) as PhysAddr, high);
      this.#memory.write32(e as PhysAddr, low >>> 0);
    } else {
      this.#memory.write32(e as PhysAddr, low >>> 0);
      this.#memory.write32((e + 4) as PhysAddr, high);
    }
  }
}

function levelOf(size: PageSizeBytes): number {
  if (size === PAGE_SIZE_4K) return 1;
  if (size === PAGE_SIZE_2M) return 2;
  if (size === PAGE_SIZE_1G) return 3;
  throw new RangeError(`Unsupported page size ${size}`);
}

function checkAligned(action: string, va: VirtAddr, size: PageSizeBytes): void {
  if (!Number.isSafeInteger(va) || va < 0 || va >= VIRT_ADDR_LIMIT || va % size !== 0) {
    throw new MappingError(
      "InvalidAddress",
      va,
      `Cannot ${action} ${hex(va)}: misaligned or beyond 2^48`,
    );
  }
}

function entryAddr(table: number, va: number, level: number): number {
  return table + 8 * (Math.floor(va / SPAN[level]) % 512);
}

/** The table a non-leaf entry points to. */
function addressOf(low: number, high: number): number {
  return (high & 0xfffff) * TWO_POW_32 + ((low & 0xfffff000) >>> 0);
}

/** The frame a leaf at `level` maps. */
function leafAddress(low: number, high: number, level: number): number {
  const lowAddress = (low & ADDRESS_LOW_BITS) >>> 0;
  // Bit 12 of a huge leaf is PAT, not address: keep only the bits above the page size.
  return (high & 0xfffff) * TWO_POW_32 + lowAddress - (lowAddress % SPAN[level]);
}

/** The module's default export: one empty address space per call. */
const createSimplePageMapper: PageMapperFactory = (env) => new SimplePageMapper(env);
export default createSimplePageMapper;
