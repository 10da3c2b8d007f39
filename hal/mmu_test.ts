import {
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  type PageSizeBytes,
  type PhysAddr,
  type VirtAddr,
} from "./address.ts";
import { type AccessWidth, DeviceBus, type MmioDevice } from "./bus.ts";
import {
  CpuContext,
  CR0_PE,
  CR0_PG,
  CR0_WP,
  CR4_PAE,
  CR4_PGE,
  CR4_SMAP,
  CR4_SMEP,
  EFER_LME,
  EFER_NXE,
} from "./cpu.ts";
import {
  BusError,
  GeneralProtection,
  PageFault,
  PF_FETCH,
  PF_PRESENT,
  PF_RESERVED,
  PF_USER,
  PF_WRITE,
} from "./faults.ts";
import { InterruptController } from "./interrupt_controller.ts";
import {
  canonicalVirtAddr,
  canonicalVirtAddrFromText,
  isCanonical,
  type MemoryAccess,
  Mmu,
} from "./mmu.ts";
import {
  encodeEntryHigh,
  encodeEntryLow,
  entryIndex,
  entryTableAddr,
  type PagingLevel,
  PTE_A,
  PTE_D,
  PTE_G,
  PTE_HIGH_NX,
  PTE_P,
  PTE_PAT_HUGE,
  PTE_PS,
  PTE_RW,
  PTE_US,
  readEntryHigh,
  readEntryLow,
  writeEntry,
} from "./page_table_entry.ts";
import { PhysicalMemory } from "./physical_memory.ts";
import { assert, assertEquals, assertThrows, Xorshift32 } from "../testing/mod.ts";

// ---------------------------------------------------------------------------
// Fixture: a machine with 32 MiB of RAM and a page-table builder.

const RAM_BYTES = 32 * 2 ** 20;
/** Page tables are allocated from here up. */
const TABLES_BASE = 0x10_0000;
/** Data frames used by the tests. */
const FRAME_A = 0x100_0000 as PhysAddr;
const FRAME_B = 0x100_1000 as PhysAddr;
const FRAME_C = 0x100_2000 as PhysAddr;
const ALL_UPPER = PTE_P | PTE_RW | PTE_US;

const va = (value: number) => value as VirtAddr;
const pa = (value: number) => value as PhysAddr;

/** Builds 4-level page tables in RAM, allocating tables upward from TABLES_BASE. */
class PageTables {
  readonly root: PhysAddr;
  readonly #memory: PhysicalMemory;
  #next = TABLES_BASE;

  constructor(memory: PhysicalMemory) {
    this.#memory = memory;
    this.root = this.allocate();
  }

  allocate(): PhysAddr {
    const table = this.#next as PhysAddr;
    this.#next += PAGE_SIZE_4K;
    this.#memory.fill(table, PAGE_SIZE_4K, 0);
    return table;
  }

  /**
   * Maps the page of `sizeBytes` at `virt` to `phys` with leaf flags `leaf`
   * (P, and PS for a huge page, are added) and high half `leafHigh`; missing
   * upper entries are created with `upper` flags.
   */
  map(
    virt: VirtAddr,
    phys: PhysAddr,
    options: { sizeBytes?: PageSizeBytes; leaf?: number; leafHigh?: number; upper?: number } = {},
  ): void {
    const sizeBytes = options.sizeBytes ?? PAGE_SIZE_4K;
    const leafLevel: PagingLevel = sizeBytes === PAGE_SIZE_4K
      ? 1
      : sizeBytes === PAGE_SIZE_2M
      ? 2
      : 3;
    let table = this.root;
    for (let level = 4 as PagingLevel; level > leafLevel; level = (level - 1) as PagingLevel) {
      const entryPa = pa(table + entryIndex(virt, level) * 8);
      if ((readEntryLow(this.#memory, entryPa) & PTE_P) === 0) {
        const next = this.allocate();
        writeEntry(this.#memory, entryPa, encodeEntryLow(next, options.upper ?? ALL_UPPER), 0);
      }
      table = entryTableAddr(
        readEntryLow(this.#memory, entryPa),
        readEntryHigh(this.#memory, entryPa),
      );
    }
    const leaf = (options.leaf ?? PTE_RW | PTE_US) | PTE_P | (leafLevel === 1 ? 0 : PTE_PS);
    writeEntry(
      this.#memory,
      pa(table + entryIndex(virt, leafLevel) * 8),
      encodeEntryLow(phys, leaf),
      encodeEntryHigh(phys, options.leafHigh ?? 0),
    );
  }

  /** The physical address of the entry at `level` used to translate `virt`. */
  entryAddr(virt: VirtAddr, level: PagingLevel): PhysAddr {
    let table = this.root;
    for (let l = 4; l > level; l--) {
      const entryPa = pa(table + entryIndex(virt, l as PagingLevel) * 8);
      table = entryTableAddr(
        readEntryLow(this.#memory, entryPa),
        readEntryHigh(this.#memory, entryPa),
      );
    }
    return pa(table + entryIndex(virt, level) * 8);
  }

  /** ORs `setLow`/`setHigh` into, and clears `clearLow` from, an entry. */
  patch(
    virt: VirtAddr,
    level: PagingLevel,
    change: { setLow?: number; clearLow?: number; setHigh?: number; clearHigh?: number },
  ): void {
    const entryPa = this.entryAddr(virt, level);
    const low = readEntryLow(this.#memory, entryPa);
    const high = readEntryHigh(this.#memory, entryPa);
    writeEntry(
      this.#memory,
      entryPa,
      ((low | (change.setLow ?? 0)) & ~(change.clearLow ?? 0)) >>> 0,
      ((high | (change.setHigh ?? 0)) & ~(change.clearHigh ?? 0)) >>> 0,
    );
  }

  /** The low half of the entry at `level` for `virt`. */
  low(virt: VirtAddr, level: PagingLevel): number {
    return readEntryLow(this.#memory, this.entryAddr(virt, level));
  }
}

interface Machine {
  memory: PhysicalMemory;
  bus: DeviceBus;
  cpu: CpuContext;
  mmu: Mmu;
  tables: PageTables;
}

/** A fresh machine in long mode: PAE, PGE, LME, NXE, WP and PG set, CPL 0. */
function bootMachine(options: { maxPhysAddrBits?: number; ramBytes?: number } = {}): Machine {
  const memory = PhysicalMemory.contiguous(options.ramBytes ?? RAM_BYTES);
  const bus = new DeviceBus(memory);
  const cpu = new CpuContext(bus, new InterruptController());
  const mmu = new Mmu(cpu, memory, { bus, maxPhysAddrBits: options.maxPhysAddrBits });
  const tables = new PageTables(memory);
  cpu.writeCr4(CR4_PAE | CR4_PGE);
  cpu.writeEfer(EFER_LME | EFER_NXE);
  cpu.writeCr3(tables.root);
  cpu.writeCr0(CR0_PE | CR0_WP | CR0_PG);
  return { memory, bus, cpu, mmu, tables };
}

/** Runs `access` expecting a PageFault; checks CR2 and returns the error code. */
function faultCode(m: Machine, virt: VirtAddr, access: MemoryAccess): number {
  const fault = assertThrows(() => m.mmu.translate(virt, access), PageFault);
  assertEquals(fault.address, virt);
  assertEquals(m.cpu.cr2, virt);
  return fault.errorCode;
}

// ---------------------------------------------------------------------------
// Translation, paging off and canonical addresses.

Deno.test("Mmu.translate() is the identity while CR0.PG is clear", () => {
  const memory = PhysicalMemory.contiguous(RAM_BYTES);
  const cpu = new CpuContext(new DeviceBus(memory), new InterruptController());
  const mmu = new Mmu(cpu, memory);
  memory.write32(pa(0x5004), 0xcafe_f00d);
  assertEquals(mmu.translate(va(0x5004), "write"), 0x5004);
  assertEquals(mmu.readVirt32(va(0x5004)), 0xcafe_f00d);
  assertEquals(mmu.probe(va(0x5004)), { kind: "unpaged", physAddr: pa(0x5004) });
  assertEquals(mmu.walks, 0);
  assertEquals(cpu.tlb.size, 0);
});

Deno.test("Mmu.translate() maps a 4 KiB page for read, write and fetch", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_1000), FRAME_A);
  assertEquals(m.mmu.translate(va(0x40_1abc), "read"), FRAME_A + 0xabc);
  assertEquals(m.mmu.translate(va(0x40_1000), "write"), FRAME_A);
  assertEquals(m.mmu.translate(va(0x40_1fff), "fetch"), FRAME_A + 0xfff);
});

Deno.test("Mmu.translate() maps a 2 MiB page from a PDE with PS", () => {
  const m = bootMachine();
  m.tables.map(va(0x4000_0000), pa(0x60_0000), { sizeBytes: PAGE_SIZE_2M });
  assertEquals(m.mmu.translate(va(0x401f_fffc), "read"), 0x7f_fffc);
  assertEquals(m.mmu.translate(va(0x4000_0000), "read"), 0x60_0000);
  const [entry] = m.cpu.tlb.entries();
  assertEquals(entry.pageSizeBytes, PAGE_SIZE_2M);
  assertEquals(entry.virtAddr, 0x4000_0000);
  assertEquals(m.mmu.walks, 1, "the second access hit the 2 MiB entry");
});

Deno.test("Mmu.translate() maps a 1 GiB page from a PDPTE with PS, above 4 GiB", () => {
  const m = bootMachine();
  m.tables.map(va(0x80_4000_0000), pa(0x3_4000_0000), { sizeBytes: PAGE_SIZE_1G });
  assertEquals(m.mmu.translate(va(0x80_7fff_fff8), "write"), 0x3_7fff_fff8);
  assertEquals(m.cpu.tlb.entries()[0].pageSizeBytes, PAGE_SIZE_1G);
  // PAT (bit 12) of a huge leaf is not an address bit and not reserved.
  m.tables.map(va(0xc0_0000_0000), pa(0x4000_0000), {
    sizeBytes: PAGE_SIZE_1G,
    leaf: PTE_RW | PTE_PAT_HUGE,
  });
  assertEquals(m.mmu.translate(va(0xc0_0000_1234), "read"), 0x4000_1234);
});

Deno.test("Mmu.translate() raises GeneralProtection for a value that is not a 48-bit address", () => {
  const m = bootMachine();
  assertThrows(() => m.mmu.translate(va(2 ** 48), "read"), GeneralProtection, "48-bit");
  assertThrows(() => m.mmu.translate(va(-4096), "read"), GeneralProtection);
  assertEquals(m.mmu.pageFaults, 0);
});

Deno.test("canonicalVirtAddr() accepts sign-extended addresses and raises GeneralProtection otherwise", () => {
  assertEquals(canonicalVirtAddr(0xffff_8000, 0x1000), 0x8000_0000_1000);
  assertEquals(canonicalVirtAddr(0x0000_7fff, 0xffff_ffff), 2 ** 47 - 1);
  assertEquals(canonicalVirtAddr(0xffff_ffff, 0xffff_f000), 2 ** 48 - 4096);
  assertThrows(() => canonicalVirtAddr(0x0000_8000, 0), GeneralProtection, "0x0000800000000000");
  assertThrows(() => canonicalVirtAddr(0xfffe_ffff, 0), GeneralProtection);
  assertEquals(isCanonical(0xffff_8000), true);
  assertEquals(isCanonical(0x0001_0000), false);
  assertEquals(canonicalVirtAddrFromText("0xffff_ffff_8000_0000"), 0xffff_8000_0000);
  assertEquals(canonicalVirtAddrFromText("1000"), 0x1000);
  assertThrows(() => canonicalVirtAddrFromText("0x8000_0000_0000"), GeneralProtection);
  assertThrows(() => canonicalVirtAddrFromText("0xzz"), RangeError, "hex");
});

// ---------------------------------------------------------------------------
// Error codes, one SDM rule per test.

Deno.test("A not-present page faults with P=0 and W/R, U/S, I/D describing the access", () => {
  const m = bootMachine();
  const unmapped = va(0x50_0000);
  assertEquals(faultCode(m, unmapped, "read"), 0);
  assertEquals(faultCode(m, unmapped, "write"), PF_WRITE);
  assertEquals(faultCode(m, unmapped, "fetch"), PF_FETCH);
  m.cpu.cpl = 3;
  assertEquals(faultCode(m, unmapped, "read"), PF_USER);
  assertEquals(faultCode(m, unmapped, "write"), PF_USER | PF_WRITE);
  assertEquals(faultCode(m, unmapped, "fetch"), PF_USER | PF_FETCH);
  assertEquals(m.mmu.pageFaults, 6);
});

Deno.test("The I/D bit is clear for a fetch fault when neither NXE nor SMEP is set", () => {
  const m = bootMachine();
  m.cpu.writeEfer(EFER_LME);
  assertEquals(faultCode(m, va(0x50_0000), "fetch"), 0);
  m.cpu.writeCr4(m.cpu.cr4 | CR4_SMEP);
  assertEquals(faultCode(m, va(0x50_0000), "fetch"), PF_FETCH);
});

Deno.test("A not-present upper entry faults with P=0 and sets A only in the entries above it", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A);
  m.tables.patch(va(0x40_0000), 3, { clearLow: PTE_P });
  assertEquals(faultCode(m, va(0x40_0000), "write"), PF_WRITE);
  assertEquals(m.tables.low(va(0x40_0000), 4) & PTE_A, PTE_A);
  assertEquals(m.tables.low(va(0x40_0000), 3) & PTE_A, 0);
  assertEquals(m.cpu.tlb.size, 0, "no TLB entry from a not-present entry");
});

Deno.test("A user write with R/W=0 at one upper level faults P|W|U; a user read is allowed", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A);
  m.tables.patch(va(0x40_0000), 3, { clearLow: PTE_RW });
  m.cpu.cpl = 3;
  assertEquals(m.mmu.translate(va(0x40_0000), "read"), FRAME_A);
  assertEquals(faultCode(m, va(0x40_0000), "write"), PF_PRESENT | PF_WRITE | PF_USER);
});

Deno.test("A supervisor write to a read-only page faults with CR0.WP=1 and succeeds with WP=0", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A, { leaf: PTE_US });
  assertEquals(faultCode(m, va(0x40_0000), "write"), PF_PRESENT | PF_WRITE);
  assertEquals(m.tables.low(va(0x40_0000), 1) & (PTE_A | PTE_D), 0, "no A/D on a denied access");
  m.cpu.writeCr0(CR0_PE | CR0_PG);
  m.mmu.writeVirt32(va(0x40_0010), 0x1234_5678);
  assertEquals(m.memory.read32(pa(FRAME_A + 0x10)), 0x1234_5678);
  assertEquals(m.tables.low(va(0x40_0000), 1) & (PTE_A | PTE_D), PTE_A | PTE_D);
  // WP is checked at access time against the cached permissions.
  m.cpu.writeCr0(CR0_PE | CR0_WP | CR0_PG);
  assertEquals(faultCode(m, va(0x40_0000), "write"), PF_PRESENT | PF_WRITE);
});

Deno.test("U/S=0 in the PML4E makes every page below it supervisor-only", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A, { upper: PTE_P | PTE_RW });
  m.tables.patch(va(0x40_0000), 3, { setLow: PTE_US });
  m.tables.patch(va(0x40_0000), 2, { setLow: PTE_US });
  assertEquals(m.mmu.translate(va(0x40_0000), "read"), FRAME_A);
  m.cpu.cpl = 3;
  assertEquals(faultCode(m, va(0x40_0000), "read"), PF_PRESENT | PF_USER);
  assertEquals(faultCode(m, va(0x40_0000), "fetch"), PF_PRESENT | PF_USER | PF_FETCH);
});

Deno.test("XD in the PML4E forbids fetches when EFER.NXE is set (P|I/D), reads still work", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A);
  m.tables.patch(va(0x40_0000), 4, { setHigh: PTE_HIGH_NX });
  assertEquals(m.mmu.translate(va(0x40_0000), "read"), FRAME_A);
  assertEquals(faultCode(m, va(0x40_0000), "fetch"), PF_PRESENT | PF_FETCH);
  m.cpu.cpl = 3;
  assertEquals(faultCode(m, va(0x40_0000), "fetch"), PF_PRESENT | PF_USER | PF_FETCH);
  assertEquals(m.mmu.probe(va(0x40_0000)).kind, "mapped");
});

Deno.test("XD with EFER.NXE clear is a reserved bit: every access faults P|RSVD", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A);
  m.tables.patch(va(0x40_0000), 4, { setHigh: PTE_HIGH_NX });
  m.cpu.writeEfer(EFER_LME);
  assertEquals(faultCode(m, va(0x40_0000), "read"), PF_PRESENT | PF_RESERVED);
  assertEquals(faultCode(m, va(0x40_0000), "write"), PF_PRESENT | PF_RESERVED | PF_WRITE);
  assertEquals(faultCode(m, va(0x40_0000), "fetch"), PF_PRESENT | PF_RESERVED);
  assertEquals(m.tables.low(va(0x40_0000), 4) & PTE_A, 0, "a reserved-bit entry is not used");
});

Deno.test("PS in a PML4E is reserved: P|RSVD", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A);
  m.tables.patch(va(0x40_0000), 4, { setLow: PTE_PS });
  assertEquals(faultCode(m, va(0x40_0000), "read"), PF_PRESENT | PF_RESERVED);
  m.cpu.cpl = 3;
  assertEquals(faultCode(m, va(0x40_0000), "write"), PF_PRESENT | PF_RESERVED | PF_WRITE | PF_USER);
});

Deno.test("Low address bits set below a huge page's alignment are reserved: P|RSVD", () => {
  const m = bootMachine();
  m.tables.map(va(0x4000_0000), pa(0x60_0000), { sizeBytes: PAGE_SIZE_2M });
  m.tables.patch(va(0x4000_0000), 2, { setLow: 1 << 13 });
  assertEquals(faultCode(m, va(0x4000_0000), "read"), PF_PRESENT | PF_RESERVED);
  m.tables.patch(va(0x4000_0000), 2, { clearLow: 1 << 13, setLow: 1 << 20 });
  assertEquals(faultCode(m, va(0x4000_0000), "read"), PF_PRESENT | PF_RESERVED);

  m.tables.map(va(0x80_0000_0000), pa(0x4000_0000), { sizeBytes: PAGE_SIZE_1G });
  m.tables.patch(va(0x80_0000_0000), 3, { setLow: 1 << 29 });
  assertEquals(faultCode(m, va(0x80_0000_0000), "read"), PF_PRESENT | PF_RESERVED);
  m.tables.patch(va(0x80_0000_0000), 3, { clearLow: 1 << 29, setLow: 1 << 21 });
  assertEquals(faultCode(m, va(0x80_0000_0000), "write"), PF_PRESENT | PF_RESERVED | PF_WRITE);
});

Deno.test("Address bits at or above MAXPHYADDR are reserved in any level: P|RSVD", () => {
  const m = bootMachine({ maxPhysAddrBits: 46 });
  m.tables.map(va(0x40_0000), FRAME_A);
  m.tables.map(va(0x80_0000), FRAME_B);
  m.tables.patch(va(0x40_0000), 1, { setHigh: 1 << (46 - 32) });
  assertEquals(faultCode(m, va(0x40_0000), "read"), PF_PRESENT | PF_RESERVED);
  assertEquals(m.mmu.translate(va(0x80_0000), "read"), FRAME_B);
  m.tables.patch(va(0x80_0000), 3, { setHigh: 1 << (51 - 32) });
  m.cpu.invlpg(va(0x80_0000));
  assertEquals(faultCode(m, va(0x80_0000), "read"), PF_PRESENT | PF_RESERVED);

  // The same bit is an ordinary address bit with MAXPHYADDR 52.
  const wide = bootMachine({ maxPhysAddrBits: 52 });
  wide.tables.map(va(0x40_0000), pa(2 ** 46 + 0x5000));
  assertEquals(wide.mmu.translate(va(0x40_0000), "read"), 2 ** 46 + 0x5000);
});

Deno.test("Reserved bits are not checked in a not-present entry: P=0", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A);
  m.tables.patch(va(0x40_0000), 1, { clearLow: PTE_P, setHigh: PTE_HIGH_NX | 0x000f_c000 });
  m.cpu.writeEfer(EFER_LME);
  assertEquals(faultCode(m, va(0x40_0000), "read"), 0);
});

Deno.test("Ignored high bits 62:52 do not affect translation", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A, { leafHigh: 0x7ff0_0000 });
  m.tables.patch(va(0x40_0000), 4, { setHigh: 0x7ff0_0000 });
  assertEquals(m.mmu.translate(va(0x40_0008), "read"), FRAME_A + 8);
});

Deno.test("SMEP: a supervisor fetch from a user page faults P|I/D, even without NXE", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A);
  assertEquals(m.mmu.translate(va(0x40_0000), "fetch"), FRAME_A);
  m.cpu.writeCr4(m.cpu.cr4 | CR4_SMEP);
  m.cpu.writeEfer(EFER_LME);
  assertEquals(faultCode(m, va(0x40_0000), "fetch"), PF_PRESENT | PF_FETCH);
  assertEquals(m.mmu.translate(va(0x40_0000), "read"), FRAME_A, "SMEP leaves data accesses alone");
  m.cpu.cpl = 3;
  assertEquals(m.mmu.translate(va(0x40_0000), "fetch"), FRAME_A, "user fetches are fine");
});

Deno.test("SMAP: supervisor data accesses to a user page fault unless EFLAGS.AC is set", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A);
  m.tables.map(va(0x80_0000), FRAME_B, { leaf: PTE_US });
  m.cpu.writeCr4(m.cpu.cr4 | CR4_SMAP);
  assertEquals(faultCode(m, va(0x40_0000), "read"), PF_PRESENT);
  assertEquals(faultCode(m, va(0x40_0000), "write"), PF_PRESENT | PF_WRITE);
  assertEquals(m.mmu.translate(va(0x40_0000), "fetch"), FRAME_A, "SMAP does not cover fetches");
  m.cpu.alignmentCheck = true;
  assertEquals(m.mmu.translate(va(0x40_0000), "read"), FRAME_A);
  assertEquals(m.mmu.translate(va(0x40_0000), "write"), FRAME_A);
  // With AC the WP rule still applies to a read-only user page.
  assertEquals(faultCode(m, va(0x80_0000), "write"), PF_PRESENT | PF_WRITE);
  m.cpu.alignmentCheck = false;
  m.cpu.cpl = 3;
  assertEquals(
    m.mmu.translate(va(0x40_0000), "write"),
    FRAME_A,
    "SMAP is about supervisor accesses",
  );
});

// ---------------------------------------------------------------------------
// Accessed and dirty bits.

Deno.test("A walk sets A in every entry it uses and D only in the leaf, only for a write", () => {
  const m = bootMachine();
  const page = va(0x7f_8040_2000);
  m.tables.map(page, FRAME_A);
  m.mmu.readVirt8(page);
  for (const level of [4, 3, 2, 1] as const) {
    assertEquals(m.tables.low(page, level) & (PTE_A | PTE_D), PTE_A, `level ${level} after a read`);
  }
  m.mmu.writeVirt8(page, 1);
  for (const level of [4, 3, 2] as const) assertEquals(m.tables.low(page, level) & PTE_D, 0);
  assertEquals(m.tables.low(page, 1) & PTE_D, PTE_D);
});

Deno.test("A write sets D in a 2 MiB leaf PDE and a 1 GiB leaf PDPTE", () => {
  const m = bootMachine();
  m.tables.map(va(0x4000_0000), pa(0x60_0000), { sizeBytes: PAGE_SIZE_2M });
  m.tables.map(va(0x80_0000_0000), pa(0x4000_0000), { sizeBytes: PAGE_SIZE_1G });
  m.mmu.translate(va(0x4000_0000), "write");
  m.mmu.translate(va(0x80_0000_0000), "write");
  assertEquals(m.tables.low(va(0x4000_0000), 2) & (PTE_A | PTE_D), PTE_A | PTE_D);
  assertEquals(m.tables.low(va(0x4000_0000), 3) & (PTE_A | PTE_D), PTE_A);
  assertEquals(m.tables.low(va(0x80_0000_0000), 3) & (PTE_A | PTE_D), PTE_A | PTE_D);
});

Deno.test("A write through a TLB entry whose D is not yet set walks again to set D", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A);
  m.mmu.translate(va(0x40_0000), "read");
  assertEquals(m.mmu.walks, 1);
  assertEquals(m.cpu.tlb.entries()[0].dirty, false);
  m.mmu.translate(va(0x40_0000), "write");
  assertEquals(m.mmu.walks, 2);
  assertEquals(m.tables.low(va(0x40_0000), 1) & PTE_D, PTE_D);
  assertEquals(m.cpu.tlb.entries()[0].dirty, true);
  m.mmu.translate(va(0x40_0000), "write");
  assertEquals(m.mmu.walks, 2, "later writes hit");
});

// ---------------------------------------------------------------------------
// The TLB: staleness and invalidation.

Deno.test("A changed PTE is not seen through a stale TLB entry until INVLPG", () => {
  const m = bootMachine();
  m.memory.write32(FRAME_A, 0xaaaa_aaaa);
  m.memory.write32(FRAME_B, 0xbbbb_bbbb);
  m.tables.map(va(0x40_0000), FRAME_A);
  assertEquals(m.mmu.readVirt32(va(0x40_0000)), 0xaaaa_aaaa);
  m.tables.map(va(0x40_0000), FRAME_B); // rewrite the PTE, no INVLPG
  assertEquals(m.mmu.readVirt32(va(0x40_0000)), 0xaaaa_aaaa, "stale entry: old frame");
  m.cpu.invlpg(va(0x40_0123));
  assertEquals(m.mmu.readVirt32(va(0x40_0000)), 0xbbbb_bbbb, "after INVLPG: new frame");
});

Deno.test("An unmapped page stays accessible through a stale entry until INVLPG", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A);
  m.mmu.writeVirt32(va(0x40_0000), 7);
  m.tables.patch(va(0x40_0000), 1, { clearLow: PTE_P });
  assertEquals(m.mmu.readVirt32(va(0x40_0000)), 7);
  m.cpu.invlpg(va(0x40_0000));
  assertEquals(faultCode(m, va(0x40_0000), "read"), 0);
});

Deno.test("INVLPG at any address inside a 2 MiB page removes its entry", () => {
  const m = bootMachine();
  m.tables.map(va(0x4000_0000), pa(0x60_0000), { sizeBytes: PAGE_SIZE_2M });
  m.mmu.translate(va(0x4000_0000), "read");
  m.tables.map(va(0x4000_0000), pa(0xa0_0000), { sizeBytes: PAGE_SIZE_2M });
  assertEquals(m.mmu.translate(va(0x4010_0000), "read"), 0x70_0000);
  m.cpu.invlpg(va(0x401f_f000));
  assertEquals(m.mmu.translate(va(0x4010_0000), "read"), 0xb0_0000);
});

Deno.test("A CR3 write flushes non-global entries and keeps global ones when CR4.PGE is set", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A, { leaf: PTE_RW | PTE_G });
  m.tables.map(va(0x80_0000), FRAME_B);
  m.mmu.translate(va(0x40_0000), "read");
  m.mmu.translate(va(0x80_0000), "read");
  m.tables.map(va(0x40_0000), FRAME_C, { leaf: PTE_RW | PTE_G });
  m.tables.map(va(0x80_0000), FRAME_C);
  m.cpu.writeCr3(m.cpu.cr3);
  assertEquals(m.mmu.translate(va(0x40_0000), "read"), FRAME_A, "global entry survived");
  assertEquals(m.mmu.translate(va(0x80_0000), "read"), FRAME_C, "non-global entry was flushed");
  assertEquals(m.cpu.tlb.entries().find((e) => e.virtAddr === 0x40_0000)?.global, true);
});

Deno.test("A CR3 write flushes everything, G bits included, when CR4.PGE is clear", () => {
  const m = bootMachine();
  m.cpu.writeCr4(CR4_PAE);
  m.tables.map(va(0x40_0000), FRAME_A, { leaf: PTE_RW | PTE_G });
  m.mmu.translate(va(0x40_0000), "read");
  assertEquals(m.cpu.tlb.entries()[0].global, false, "G means nothing without PGE");
  m.tables.map(va(0x40_0000), FRAME_B);
  m.cpu.writeCr3(m.cpu.cr3);
  assertEquals(m.mmu.translate(va(0x40_0000), "read"), FRAME_B);
});

Deno.test("Toggling CR4.PGE flushes global entries too", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A, { leaf: PTE_RW | PTE_G });
  m.mmu.translate(va(0x40_0000), "read");
  m.tables.map(va(0x40_0000), FRAME_B, { leaf: PTE_RW | PTE_G });
  m.cpu.writeCr4(CR4_PAE | CR4_PGE | CR4_SMAP); // PGE unchanged: nothing flushed
  assertEquals(m.mmu.translate(va(0x40_0000), "read"), FRAME_A);
  m.cpu.writeCr4(CR4_PAE);
  assertEquals(m.cpu.tlb.size, 0);
  assertEquals(m.mmu.translate(va(0x40_0000), "read"), FRAME_B);
  m.tables.map(va(0x40_0000), FRAME_C, { leaf: PTE_RW | PTE_G });
  m.cpu.writeCr4(CR4_PAE | CR4_PGE);
  assertEquals(m.mmu.translate(va(0x40_0000), "read"), FRAME_C);
});

Deno.test("Clearing CR0.PG flushes the whole TLB", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A, { leaf: PTE_RW | PTE_G });
  m.mmu.translate(va(0x40_0000), "read");
  m.cpu.writeCr0(CR0_PE | CR0_WP);
  assertEquals(m.cpu.tlb.size, 0);
  assertEquals(m.mmu.translate(va(0x40_0000), "read"), 0x40_0000);
});

Deno.test("CpuContext control-register writes reject states 4-level paging forbids", () => {
  const memory = PhysicalMemory.contiguous(RAM_BYTES);
  const cpu = new CpuContext(new DeviceBus(memory), new InterruptController());
  assertThrows(() => cpu.writeCr0(CR0_PE | CR0_PG), GeneralProtection, "PAE");
  cpu.writeCr4(CR4_PAE);
  assertThrows(() => cpu.writeCr0(CR0_PG), GeneralProtection, "PE");
  assertThrows(() => cpu.writeCr3(2 ** 52), GeneralProtection);
  cpu.writeEfer(EFER_LME);
  cpu.writeCr0(CR0_PE | CR0_PG);
  assertEquals(cpu.cr0, CR0_PE | CR0_PG);
  assertThrows(() => cpu.writeCr4(0), GeneralProtection, "PAE");
  assertThrows(() => cpu.writeEfer(0), GeneralProtection, "LME");
  cpu.writeEfer(EFER_LME | EFER_NXE);
  assertEquals(cpu.efer, EFER_LME | EFER_NXE);
});

Deno.test("A page fault removes the page's stale TLB entry, so a retry sees the fixed PTE", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A, { leaf: PTE_US });
  m.mmu.translate(va(0x40_0000), "read"); // caches a read-only translation
  m.tables.patch(va(0x40_0000), 1, { setLow: PTE_RW }); // no INVLPG
  assertEquals(faultCode(m, va(0x40_0000), "write"), PF_PRESENT | PF_WRITE, "stale entry faults");
  assertEquals(m.cpu.tlb.size, 0);
  assertEquals(m.mmu.translate(va(0x40_0000), "write"), FRAME_A);
});

// ---------------------------------------------------------------------------
// Protection-mode changes and the TLB: the rights a TLB hit checks follow CR0,
// CR4, EFER, the CPL and EFLAGS.AC from the very next access, with no flush.

/**
 * Runs `access` at `virt`, which must be served by the TLB entry already there:
 * no walk. Returns the physical address, or the page fault's error code as a
 * negative number - 1 (the fault comes from the cached rights, not a walk).
 */
function accessFromTlb(m: Machine, virt: VirtAddr, access: MemoryAccess): number {
  const walks = m.mmu.walks;
  const hits = m.cpu.tlb.stats.hits;
  let result: number;
  try {
    result = m.mmu.translate(virt, access);
  } catch (error) {
    if (!(error instanceof PageFault)) throw error;
    result = -1 - error.errorCode;
  }
  assertEquals(m.mmu.walks, walks, `${access} of ${virt.toString(16)} walked instead of hitting`);
  assertEquals(m.cpu.tlb.stats.hits, hits + 1, `${access} of ${virt.toString(16)} missed the TLB`);
  return result;
}

/** Caches the translation of `virt` for reads (and, with the PTE's D set, writes). */
function fillTlb(m: Machine, virt: VirtAddr): void {
  m.mmu.translate(virt, "read");
  assertEquals(m.cpu.tlb.size > 0, true);
}

Deno.test("A CR0.WP change applies to the very next TLB hit of a read-only page", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A, { leaf: PTE_D }); // supervisor, read-only, dirty
  fillTlb(m, va(0x40_0000));
  assertEquals(accessFromTlb(m, va(0x40_0000), "write"), -1 - (PF_PRESENT | PF_WRITE));
  fillTlb(m, va(0x40_0000)); // the fault flushed the page
  m.cpu.writeCr0(CR0_PE | CR0_PG); // WP off
  assertEquals(accessFromTlb(m, va(0x40_0000), "write"), FRAME_A);
  m.cpu.cr0 = CR0_PE | CR0_PG | CR0_WP; // a direct assignment applies just the same
  assertEquals(accessFromTlb(m, va(0x40_0000), "write"), -1 - (PF_PRESENT | PF_WRITE));
});

Deno.test("A CR4.SMEP change applies to the very next TLB hit of a user page", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A, { leaf: PTE_US | PTE_RW | PTE_G });
  fillTlb(m, va(0x40_0000));
  assertEquals(accessFromTlb(m, va(0x40_0000), "fetch"), FRAME_A);
  // Setting SMEP flushes non-global entries; this one is global and stays.
  m.cpu.writeCr4(m.cpu.cr4 | CR4_SMEP);
  assertEquals(accessFromTlb(m, va(0x40_0000), "fetch"), -1 - (PF_PRESENT | PF_FETCH));
  fillTlb(m, va(0x40_0000));
  m.cpu.writeCr4(m.cpu.cr4 & ~CR4_SMEP);
  assertEquals(accessFromTlb(m, va(0x40_0000), "fetch"), FRAME_A);
});

Deno.test("A CR4.SMAP or EFLAGS.AC change applies to the very next TLB hit of a user page", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A, { leaf: PTE_US | PTE_RW });
  fillTlb(m, va(0x40_0000));
  m.cpu.writeCr4(m.cpu.cr4 | CR4_SMAP); // setting SMAP flushes nothing
  assertEquals(accessFromTlb(m, va(0x40_0000), "read"), -1 - PF_PRESENT);
  assertEquals(m.cpu.tlb.size, 0, "the fault removed the entry");
  m.cpu.alignmentCheck = true; // STAC
  fillTlb(m, va(0x40_0000));
  assertEquals(accessFromTlb(m, va(0x40_0000), "read"), FRAME_A);
  m.cpu.alignmentCheck = false; // CLAC
  assertEquals(accessFromTlb(m, va(0x40_0000), "read"), -1 - PF_PRESENT);
});

Deno.test("An EFER.NXE change applies to the very next TLB hit of an XD page", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A, { leafHigh: PTE_HIGH_NX });
  fillTlb(m, va(0x40_0000));
  assertEquals(accessFromTlb(m, va(0x40_0000), "fetch"), -1 - (PF_PRESENT | PF_FETCH));
  fillTlb(m, va(0x40_0000));
  // Without NXE the cached XD no longer forbids fetches (a walk would now
  // find XD reserved, but this entry is served from the TLB).
  m.cpu.writeEfer(EFER_LME);
  assertEquals(accessFromTlb(m, va(0x40_0000), "fetch"), FRAME_A);
  m.cpu.writeEfer(EFER_LME | EFER_NXE);
  assertEquals(accessFromTlb(m, va(0x40_0000), "fetch"), -1 - (PF_PRESENT | PF_FETCH));
});

Deno.test("A CPL change applies to the very next TLB hit of supervisor and user pages", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A, { leaf: PTE_RW | PTE_D }); // supervisor only
  m.tables.map(va(0x80_0000), FRAME_B, { leaf: PTE_US | PTE_D }); // user, read-only
  fillTlb(m, va(0x40_0000));
  fillTlb(m, va(0x80_0000));
  m.cpu.cpl = 3;
  assertEquals(accessFromTlb(m, va(0x40_0000), "read"), -1 - (PF_PRESENT | PF_USER));
  assertEquals(accessFromTlb(m, va(0x80_0000), "read"), FRAME_B);
  assertEquals(
    accessFromTlb(m, va(0x80_0000), "write"),
    -1 - (PF_PRESENT | PF_USER | PF_WRITE),
    "user writes to read-only pages fault even with CR0.WP clear",
  );
  fillTlb(m, va(0x80_0000));
  m.cpu.cpl = 0;
  m.cpu.writeCr0(CR0_PE | CR0_PG); // WP off: supervisor writes to read-only pages are allowed
  assertEquals(accessFromTlb(m, va(0x80_0000), "write"), FRAME_B);
});

Deno.test("A TLB hit through a 2 MiB or 1 GiB entry follows the CPL and SMAP too", () => {
  const m = bootMachine();
  m.tables.map(va(0x4000_0000), pa(0x60_0000), { sizeBytes: PAGE_SIZE_2M });
  m.tables.map(va(0x80_0000_0000), pa(0x4000_0000), {
    sizeBytes: PAGE_SIZE_1G,
    leaf: PTE_RW,
  });
  fillTlb(m, va(0x4000_1000));
  fillTlb(m, va(0x80_0000_1000));
  m.cpu.cpl = 3;
  assertEquals(accessFromTlb(m, va(0x4010_0000), "read"), 0x70_0000);
  assertEquals(accessFromTlb(m, va(0x80_2000_0000), "read"), -1 - (PF_PRESENT | PF_USER));
  m.cpu.cpl = 0;
  m.cpu.writeCr4(m.cpu.cr4 | CR4_SMAP);
  assertEquals(accessFromTlb(m, va(0x4010_0000), "read"), -1 - PF_PRESENT);
});

// ---------------------------------------------------------------------------
// The page-fault handler.

Deno.test("Mmu.setPageFaultHandler(): the handler maps the page and the access is retried", () => {
  const m = bootMachine();
  const seen: [number, number, number][] = [];
  m.mmu.setPageFaultHandler((fault) => {
    seen.push([fault.address, fault.errorCode, m.cpu.cr2]);
    m.tables.map(va(fault.address - (fault.address % PAGE_SIZE_4K)), FRAME_A);
    return "retry";
  });
  m.mmu.writeVirt32(va(0x40_0100), 0xfeed);
  assertEquals(seen, [[0x40_0100, PF_WRITE, 0x40_0100]]);
  assertEquals(m.memory.read32(pa(FRAME_A + 0x100)), 0xfeed);
  assertEquals(m.mmu.pageFaults, 1);
});

Deno.test("Mmu.setPageFaultHandler(): demand paging then copy-on-write, one handler call each", () => {
  const m = bootMachine();
  m.memory.write32(FRAME_A, 0x5a5a_5a5a);
  const codes: number[] = [];
  m.mmu.setPageFaultHandler((fault) => {
    codes.push(fault.errorCode);
    if ((fault.errorCode & PF_PRESENT) === 0) {
      m.tables.map(va(0x40_0000), FRAME_A, { leaf: PTE_US }); // share read-only
    } else {
      m.memory.copy(FRAME_B, FRAME_A, PAGE_SIZE_4K); // copy on write
      m.tables.map(va(0x40_0000), FRAME_B);
    }
    return "retry";
  });
  m.mmu.writeVirt8(va(0x40_0000), 0x11);
  assertEquals(codes, [PF_WRITE, PF_PRESENT | PF_WRITE]);
  assertEquals(m.memory.read32(FRAME_B), 0x5a5a_5a11);
  assertEquals(m.memory.read32(FRAME_A), 0x5a5a_5a5a);
});

Deno.test("Mmu.setPageFaultHandler(): a repeated fault after a retry is thrown", () => {
  const m = bootMachine();
  let calls = 0;
  m.mmu.setPageFaultHandler(() => {
    calls++;
    return "retry";
  });
  assertEquals(faultCode(m, va(0x40_0000), "read"), 0);
  assertEquals(calls, 1);
  assertEquals(m.mmu.pageFaults, 2);
});

Deno.test("Mmu.setPageFaultHandler(): an unhandled fault is thrown", () => {
  const m = bootMachine();
  let calls = 0;
  m.mmu.setPageFaultHandler(() => {
    calls++;
    return "unhandled";
  });
  assertEquals(faultCode(m, va(0x40_0000), "write"), PF_WRITE);
  assertEquals(calls, 1);
  m.mmu.setPageFaultHandler(undefined);
  assertEquals(faultCode(m, va(0x40_0000), "write"), PF_WRITE);
  assertEquals(calls, 1);
});

// ---------------------------------------------------------------------------
// Virtual memory accesses.

Deno.test("Mmu.readVirt*() and writeVirt*() round-trip 8, 16, 32 and 64 bits", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A);
  m.mmu.writeVirt8(va(0x40_0001), 0x1ff);
  m.mmu.writeVirt16(va(0x40_0002), 0xbeef);
  m.mmu.writeVirt32(va(0x40_0004), 0xdead_beef);
  m.mmu.writeVirt64(va(0x40_0008), 2 ** 53 - 1);
  assertEquals(m.mmu.readVirt8(va(0x40_0001)), 0xff);
  assertEquals(m.mmu.readVirt16(va(0x40_0002)), 0xbeef);
  assertEquals(m.mmu.readVirt32(va(0x40_0004)), 0xdead_beef);
  assertEquals(m.mmu.readVirt64(va(0x40_0008)), 2 ** 53 - 1);
  assertEquals(m.memory.read32(pa(FRAME_A + 0xc)), 0x1f_ffff);
  assertThrows(() => m.mmu.writeVirt64(va(0x40_0008), -1), RangeError);
});

Deno.test("Multi-byte accesses across a page boundary use both pages' frames", () => {
  const m = bootMachine();
  // Two adjacent virtual pages on frames in reverse physical order.
  m.tables.map(va(0x40_0000), FRAME_B);
  m.tables.map(va(0x40_1000), FRAME_A);
  m.mmu.writeVirt64(va(0x40_0ffd), 0x0011_2233_4455_6677);
  assertEquals(m.memory.readBytes(pa(FRAME_B + 0xffd), 3), new Uint8Array([0x77, 0x66, 0x55]));
  assertEquals(m.memory.readBytes(FRAME_A, 5), new Uint8Array([0x44, 0x33, 0x22, 0x11, 0x00]));
  assertEquals(m.mmu.readVirt64(va(0x40_0ffd)), 0x0011_2233_4455_6677);
  m.mmu.writeVirt32(va(0x40_0ffe), 0xa1b2_c3d4);
  assertEquals(m.mmu.readVirt32(va(0x40_0ffe)), 0xa1b2_c3d4);
  assertEquals(m.mmu.readVirt16(va(0x40_0fff)), 0xb2c3);
  assertEquals(m.memory.read16(FRAME_A), 0xa1b2);
  m.mmu.writeVirt16(va(0x40_0fff), 0x0102);
  assertEquals([m.memory.read8(pa(FRAME_B + 0xfff)), m.memory.read8(FRAME_A)], [0x02, 0x01]);
});

Deno.test("A write across a page boundary whose second page faults writes nothing", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A);
  const fault = assertThrows(() => m.mmu.writeVirt32(va(0x40_0ffe), 0xffff_ffff), PageFault);
  assertEquals(fault.address, 0x40_1000, "CR2 is the first byte of the missing page");
  assertEquals(fault.errorCode, PF_WRITE);
  assertEquals(m.memory.read16(pa(FRAME_A + 0xffe)), 0);
});

Deno.test("Mmu.readVirtBytes() and writeVirtBytes() span several pages", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_C);
  m.tables.map(va(0x40_1000), FRAME_A);
  m.tables.map(va(0x40_2000), FRAME_B);
  const bytes = new Uint8Array(2 * PAGE_SIZE_4K + 0x32).map((_, i) => (i * 7) & 0xff);
  m.mmu.writeVirtBytes(va(0x40_0fce), bytes);
  assertEquals(m.mmu.readVirtBytes(va(0x40_0fce), bytes.length), bytes);
  assertEquals(m.memory.read8(pa(FRAME_C + 0xfce)), bytes[0]);
  assertEquals(m.memory.read8(FRAME_A), bytes[0x32]);
  assertEquals(m.memory.read8(FRAME_B), bytes[0x1032]);
  assertEquals(m.mmu.readVirtBytes(va(0x40_0000), 0), new Uint8Array(0));
  assertThrows(() => m.mmu.readVirtBytes(va(0x40_0000), -1), RangeError);
});

Deno.test("An access running off the lower canonical half is a GeneralProtection", () => {
  const m = bootMachine();
  const lastLowPage = va(2 ** 47 - PAGE_SIZE_4K);
  m.tables.map(lastLowPage, FRAME_A);
  assertEquals(m.mmu.readVirt32(va(2 ** 47 - 4)), 0);
  assertThrows(() => m.mmu.readVirt32(va(2 ** 47 - 2)), GeneralProtection, "non-canonical");
  assertThrows(() => m.mmu.writeVirtBytes(va(2 ** 47 - 2), new Uint8Array(4)), GeneralProtection);
  // The top of the higher half wraps to address 0.
  m.tables.map(va(2 ** 48 - PAGE_SIZE_4K), FRAME_B);
  m.tables.map(va(0), FRAME_C);
  m.mmu.writeVirt32(va(2 ** 48 - 2), 0x4433_2211);
  assertEquals(m.memory.read16(pa(FRAME_B + 0xffe)), 0x2211);
  assertEquals(m.memory.read16(FRAME_C), 0x4433);
});

Deno.test("Paged accesses reach MMIO devices through the bus", () => {
  const m = bootMachine();
  const log: string[] = [];
  const device: MmioDevice = {
    name: "scratch",
    mmioRead: (offsetBytes: number, width: AccessWidth) => {
      log.push(`r${width}@${offsetBytes}`);
      return 0x1234_5678;
    },
    mmioWrite: (offsetBytes: number, value: number, width: AccessWidth) => {
      log.push(`w${width}@${offsetBytes}=${value.toString(16)}`);
    },
  };
  m.bus.claimMmio(pa(0xfee0_0000), PAGE_SIZE_4K, device);
  m.tables.map(va(0xffff_ffe0_0000), pa(0xfee0_0000), { leaf: PTE_RW });
  assertEquals(m.mmu.readVirt32(va(0xffff_ffe0_0030)), 0x1234_5678);
  m.mmu.writeVirt32(va(0xffff_ffe0_00b0), 0xabc);
  assertEquals(log, ["r4@48", "w4@176=abc"]);
});

Deno.test("Mmu.translate() raises BusError when a page table is not in RAM", () => {
  const m = bootMachine();
  m.cpu.writeCr3(RAM_BYTES + PAGE_SIZE_4K);
  assertThrows(() => m.mmu.translate(va(0x1000), "read"), BusError, "PML4 entry");
});

// ---------------------------------------------------------------------------
// Mmu.probe(): inspection without side effects.

Deno.test("Mmu.probe() reports every entry read and the result, changing nothing", () => {
  const m = bootMachine();
  m.tables.map(va(0x40_0000), FRAME_A, { leafHigh: PTE_HIGH_NX });
  const walk = m.mmu.probe(va(0x40_0abc), "write");
  assert(walk.kind === "mapped");
  assertEquals(walk.physAddr, FRAME_A + 0xabc);
  assertEquals(walk.pageSizeBytes, PAGE_SIZE_4K);
  assertEquals([walk.writable, walk.user, walk.executable, walk.global], [
    true,
    true,
    false,
    false,
  ]);
  assertEquals(walk.steps.map((s) => s.level), [4, 3, 2, 1]);
  assertEquals(walk.steps[3].entryAddr, m.tables.entryAddr(va(0x40_0000), 1));
  assertEquals(walk.steps[3].low32, FRAME_A | PTE_P | PTE_RW | PTE_US);
  assertEquals(walk.steps[3].high32, PTE_HIGH_NX);
  assertEquals(m.tables.low(va(0x40_0000), 1) & (PTE_A | PTE_D), 0, "no A/D");
  assertEquals(m.cpu.tlb.size, 0, "no TLB fill");
  assertEquals(m.mmu.walks, 0);

  const fault = m.mmu.probe(va(0x40_0000), "fetch");
  assertEquals(fault.kind === "fault" && fault.errorCode, PF_PRESENT | PF_FETCH);
  const missing = m.mmu.probe(va(0x7000_0000));
  assert(missing.kind === "fault");
  assertEquals(missing.steps.length, 2);
  assertEquals(missing.errorCode, 0);
  assertEquals(m.mmu.pageFaults, 0);
  assertEquals(m.cpu.cr2, 0);
});

// ---------------------------------------------------------------------------
// Randomized comparison against a separately written reference walker.

interface ReferenceState {
  cr3: number;
  cpl: 0 | 3;
  wp: boolean;
  nxe: boolean;
  smep: boolean;
  smap: boolean;
  ac: boolean;
  maxPhysAddrBits: number;
}

interface ReferenceResult {
  physAddr?: number;
  errorCode?: number;
  pageSizeBytes?: number;
  /** Entries that must have A set afterwards. */
  accessed: number[];
  /** The entry that must have D set afterwards. */
  dirtied?: number;
}

/**
 * The SDM's 4-level walk, written for clarity with BigInt entries. Slow and
 * independent of the MMU's half-word arithmetic.
 */
function referenceWalk(
  memory: PhysicalMemory,
  s: ReferenceState,
  virt: number,
  access: MemoryAccess,
): ReferenceResult {
  const entryAt = (at: number) =>
    BigInt(memory.read32(pa(at))) | (BigInt(memory.read32(pa(at + 4))) << 32n);
  const bit = (value: bigint, n: number) => ((value >> BigInt(n)) & 1n) === 1n;
  const field = (value: bigint, hi: number, lo: number) =>
    (value >> BigInt(lo)) & ((1n << BigInt(hi - lo + 1)) - 1n);

  const v = BigInt(virt);
  const accessBits = (access === "write" ? 2 : 0) | (s.cpl === 3 ? 4 : 0) |
    (access === "fetch" && (s.nxe || s.smep) ? 16 : 0);
  const shifts = [39, 30, 21, 12];
  const accessed: number[] = [];
  let table = BigInt(s.cr3) & ~0xfffn;
  let user = true;
  let writable = true;
  let executeDisabled = false;
  for (let depth = 0; depth < 4; depth++) {
    const at = Number(table + field(v, shifts[depth] + 8, shifts[depth]) * 8n);
    const entry = entryAt(at);
    if (!bit(entry, 0)) return { errorCode: accessBits, accessed };
    const pageSize = depth === 1 || depth === 2 ? bit(entry, 7) : false;
    const reserved = (s.maxPhysAddrBits < 52 && field(entry, 51, s.maxPhysAddrBits) !== 0n) ||
      (!s.nxe && bit(entry, 63)) ||
      (depth === 0 && bit(entry, 7)) ||
      (depth === 1 && pageSize && field(entry, 29, 13) !== 0n) ||
      (depth === 2 && pageSize && field(entry, 20, 13) !== 0n);
    if (reserved) return { errorCode: accessBits | 1 | 8, accessed };
    user = user && bit(entry, 2);
    writable = writable && bit(entry, 1);
    executeDisabled = executeDisabled || (s.nxe && bit(entry, 63));
    if (depth < 3 && !pageSize) {
      accessed.push(at);
      table = field(entry, 51, 12) << 12n;
      continue;
    }
    // SDM 4.6.1, case by case.
    let allowed: boolean;
    if (s.cpl === 3) {
      if (access === "read") allowed = user;
      else if (access === "write") allowed = user && writable;
      else allowed = user && !executeDisabled;
    } else if (access === "fetch") {
      allowed = !executeDisabled && !(s.smep && user);
    } else if (user && s.smap && !s.ac) {
      allowed = false;
    } else if (access === "write") {
      allowed = writable || !s.wp;
    } else {
      allowed = true;
    }
    if (!allowed) return { errorCode: accessBits | 1, accessed };
    accessed.push(at);
    const shift = shifts[depth];
    return {
      physAddr: Number((field(entry, 51, shift) << BigInt(shift)) | field(v, shift - 1, 0)),
      pageSizeBytes: 2 ** shift,
      accessed,
      dirtied: access === "write" ? at : undefined,
    };
  }
  throw new Error("unreachable");
}

/** Random page tables: a pool of tables per level, every entry random. */
class RandomTables {
  readonly pools: Record<PagingLevel, PhysAddr[]>;
  readonly #rng: Xorshift32;
  readonly #memory: PhysicalMemory;
  readonly #maxPhysAddrBits: number;

  constructor(memory: PhysicalMemory, rng: Xorshift32, maxPhysAddrBits: number) {
    this.#memory = memory;
    this.#rng = rng;
    this.#maxPhysAddrBits = maxPhysAddrBits;
    let next = TABLES_BASE;
    const take = (count: number) =>
      Array.from({ length: count }, () => {
        const table = next as PhysAddr;
        next += PAGE_SIZE_4K;
        return table;
      });
    this.pools = { 4: take(1), 3: take(4), 2: take(8), 1: take(12) };
    for (const level of [4, 3, 2, 1] as const) {
      for (const table of this.pools[level]) {
        for (let i = 0; i < 512; i++) this.rewrite(level, pa(table + i * 8));
      }
    }
  }

  /** Replaces the entry at `at` (in a table of `level`) with a random one. */
  rewrite(level: PagingLevel, at: PhysAddr): void {
    const rng = this.#rng;
    const chance = (percent: number) => rng.below(100) < percent;
    const m = this.#maxPhysAddrBits;
    if (!chance(85)) {
      // Not present: every other bit is free for software.
      writeEntry(this.#memory, at, rng.next() & ~PTE_P, rng.next());
      return;
    }
    let low = PTE_P;
    if (chance(75)) low |= PTE_RW;
    if (chance(75)) low |= PTE_US;
    if (chance(10)) low |= 1 << 3 | 1 << 4; // PWT, PCD
    if (chance(50)) low |= PTE_A;
    if (chance(50)) low |= PTE_D; // ignored in non-leaf entries
    if (chance(30)) low |= PTE_G;
    low |= rng.below(8) << 9; // ignored bits 11:9
    let high = 0;
    if (chance(15)) high |= PTE_HIGH_NX;
    if (chance(20)) high |= rng.below(2048) << 20; // ignored bits 62:52
    if (chance(3) && m < 52) high |= 1 << (m - 32 + rng.below(52 - m)); // reserved 51:M
    const huge = (level === 3 || level === 2) && chance(20);
    if (level === 4 && chance(3)) low |= PTE_PS; // reserved in a PML4E
    let address: number;
    if (level === 1 || huge) {
      const alignBytes = level === 1 ? PAGE_SIZE_4K : level === 2 ? PAGE_SIZE_2M : PAGE_SIZE_1G;
      const frames = 2 ** m / alignBytes;
      address = (rng.next() * 2 ** 20 + rng.below(2 ** 20)) % frames * alignBytes;
      if (huge) {
        low |= PTE_PS;
        if (chance(30)) low |= PTE_PAT_HUGE;
        if (chance(5)) low |= 1 << (13 + rng.below(level === 3 ? 17 : 8)); // reserved low bits
      } else if (chance(20)) {
        low |= 1 << 7; // PAT
      }
    } else {
      const next = this.pools[(level - 1) as PagingLevel];
      address = next[rng.below(next.length)];
    }
    low = (low | (address % 2 ** 32)) >>> 0;
    high = (high | Math.floor(address / 2 ** 32)) >>> 0;
    writeEntry(this.#memory, at, low, high);
  }

  /** Rewrites `count` random entries anywhere in the pools. */
  mutate(count: number): void {
    for (let i = 0; i < count; i++) {
      const level = (1 + this.#rng.below(4)) as PagingLevel;
      const pool = this.pools[level];
      this.rewrite(level, pa(pool[this.#rng.below(pool.length)] + this.#rng.below(512) * 8));
    }
  }
}

function randomizedAgainstReference(seed: number, maxPhysAddrBits: number, iterations: number) {
  const rng = new Xorshift32(seed);
  const m = bootMachine({ maxPhysAddrBits, ramBytes: 16 * 2 ** 20 });
  const tables = new RandomTables(m.memory, rng, maxPhysAddrBits);
  m.cpu.writeCr3(tables.pools[4][0]);
  const hotIndexes = [0, 1, 255, 511];
  const randomIndex = () => rng.below(100) < 60 ? hotIndexes[rng.below(4)] : rng.below(512);
  const randomPage = () =>
    randomIndex() * 2 ** 39 + randomIndex() * 2 ** 30 + randomIndex() * 2 ** 21 +
    randomIndex() * 2 ** 12;
  // Pages used again and again, so translations also come from the TLB.
  const hotPages = Array.from({ length: 64 }, randomPage);
  const accesses: MemoryAccess[] = ["read", "write", "fetch"];
  const seenCodes = new Set<number>();
  const seenPageSizes = new Set<number>();

  for (let i = 0; i < iterations; i++) {
    const where = `seed ${seed}, iteration ${i}`;
    if (rng.below(100) < 2) {
      const cpu = m.cpu;
      cpu.cpl = rng.below(2) === 0 ? 0 : 3;
      cpu.alignmentCheck = rng.below(2) === 0;
      cpu.writeCr0(CR0_PE | CR0_PG | (rng.below(4) === 0 ? 0 : CR0_WP));
      const cr4 = CR4_PAE | (rng.below(8) ? CR4_PGE : 0) | (rng.below(2) ? CR4_SMEP : 0) |
        (rng.below(2) ? CR4_SMAP : 0);
      cpu.writeCr4(cr4);
      const efer = EFER_LME | (rng.below(4) === 0 ? 0 : EFER_NXE);
      // Cached XD depends on NXE: software flushes after changing it.
      if (efer !== cpu.efer) cpu.tlb.flushAll();
      cpu.writeEfer(efer);
    }
    if (rng.below(1000) < 5) {
      tables.mutate(16);
      m.cpu.tlb.flushAll(); // the page tables changed: invalidate everything, globals too
    }
    const page = rng.below(100) < 70 ? hotPages[rng.below(hotPages.length)] : randomPage();
    const virt = va(page + rng.below(PAGE_SIZE_4K));
    const access = accesses[rng.below(3)];
    const state: ReferenceState = {
      cr3: m.cpu.cr3,
      cpl: m.cpu.cpl,
      wp: (m.cpu.cr0 & CR0_WP) !== 0,
      nxe: (m.cpu.efer & EFER_NXE) !== 0,
      smep: (m.cpu.cr4 & CR4_SMEP) !== 0,
      smap: (m.cpu.cr4 & CR4_SMAP) !== 0,
      ac: m.cpu.alignmentCheck,
      maxPhysAddrBits,
    };
    const expected = referenceWalk(m.memory, state, virt, access);

    const probe = m.mmu.probe(virt, access);
    if (expected.errorCode === undefined) {
      assert(probe.kind === "mapped", `${where}: probe should map`);
      assertEquals(probe.physAddr, expected.physAddr, `${where}: probe address`);
      assertEquals(probe.pageSizeBytes, expected.pageSizeBytes, `${where}: probe page size`);
    } else {
      assert(probe.kind === "fault", `${where}: probe should fault`);
      assertEquals(probe.errorCode, expected.errorCode, `${where}: probe error code`);
    }

    const touched = [...expected.accessed];
    if (expected.dirtied !== undefined) touched.push(expected.dirtied);
    const before = new Map(touched.map((at) => [at, m.memory.read32(pa(at))]));
    let actual: number | PageFault;
    try {
      actual = m.mmu.translate(virt, access);
    } catch (error) {
      if (!(error instanceof PageFault)) throw error;
      actual = error;
    }
    if (expected.errorCode === undefined) {
      assertEquals(actual, expected.physAddr, `${where}: ${access} of ${virt.toString(16)}`);
      seenPageSizes.add(expected.pageSizeBytes!);
    } else {
      assert(actual instanceof PageFault, `${where}: expected a page fault`);
      assertEquals(actual.errorCode, expected.errorCode, `${where}: error code`);
      assertEquals(m.cpu.cr2, virt, `${where}: CR2`);
      seenCodes.add(expected.errorCode);
    }
    const setBits = new Map<number, number>();
    for (const at of expected.accessed) setBits.set(at, (setBits.get(at) ?? 0) | PTE_A);
    if (expected.dirtied !== undefined) {
      setBits.set(expected.dirtied, (setBits.get(expected.dirtied) ?? 0) | PTE_D);
    }
    for (const [at, bits] of setBits) {
      assertEquals(
        m.memory.read32(pa(at)),
        (before.get(at)! | bits) >>> 0,
        `${where}: A/D bits of the entry at ${at.toString(16)}`,
      );
    }
  }

  // The run must have exercised every kind of outcome.
  for (const size of [PAGE_SIZE_4K, PAGE_SIZE_2M, PAGE_SIZE_1G]) {
    assert(seenPageSizes.has(size), `no ${size}-byte page translated`);
  }
  const has = (want: number, mask: number) => [...seenCodes].some((c) => (c & mask) === want);
  assert(has(0, PF_PRESENT), "no not-present fault");
  assert(has(PF_PRESENT | PF_RESERVED, PF_PRESENT | PF_RESERVED), "no reserved-bit fault");
  assert(has(PF_PRESENT, PF_PRESENT | PF_RESERVED), "no protection fault");
  assert(has(PF_PRESENT | PF_FETCH, PF_PRESENT | PF_RESERVED | PF_FETCH), "no fetch fault");
  assert(has(PF_PRESENT | PF_USER | PF_WRITE, PF_PRESENT | PF_RESERVED | PF_USER | PF_WRITE));
  const stats = m.cpu.tlb.stats;
  assert(stats.hits > iterations / 20, `too few TLB hits: ${stats.hits}`);
  assert(m.mmu.walks > iterations / 20, `too few walks: ${m.mmu.walks}`);
}

Deno.test("Mmu.translate() agrees with a reference walker on random tables (MAXPHYADDR 46)", () => {
  randomizedAgainstReference(0x2545f491, 46, 30_000);
});

Deno.test("Mmu.translate() agrees with a reference walker on random tables (MAXPHYADDR 39)", () => {
  randomizedAgainstReference(0x9e3779b9, 39, 30_000);
});
