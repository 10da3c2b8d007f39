/**
 * MMU benchmarks: translations that hit the TLB (4 KiB, 2 MiB and 1 GiB
 * pages), 32-bit virtual reads and writes on a hit, and translations that
 * miss and walk all four levels. Workloads are defined in docs/benchmarks.md.
 *
 * The hit loops have the floor's shape (bench/_floor.ts): each step draws an
 * index with xorshift32, takes that element of a 1024-entry address table,
 * does one operation on it and folds the result into a local, which is checked
 * after the loop against a value computed in setup without the MMU. The walk
 * loop sweeps its pages in order instead, so that every step misses. Machines,
 * page tables and address tables are built once per bench, outside the loop.
 *
 * Run: `deno bench --allow-read bench/mmu_bench.ts` (or `deno task bench`
 * for the summary table).
 *
 * @module
 */

import {
  CpuContext,
  CR0_PE,
  CR0_PG,
  CR0_WP,
  CR4_PAE,
  CR4_PGE,
  DeviceBus,
  EFER_LME,
  EFER_NXE,
  encodeEntryHigh,
  encodeEntryLow,
  entryIndex,
  InterruptController,
  Mmu,
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  type PageSizeBytes,
  type PagingLevel,
  type PhysAddr,
  PhysicalMemory,
  PTE_P,
  PTE_PS,
  PTE_RW,
  PTE_US,
  type VirtAddr,
  writeEntry,
} from "../hal/mod.ts";
import { Xorshift32 } from "../testing/mod.ts";
import { FIGURES, LOOP_OPS, WALK_PAGES } from "./_figures.ts";
import { addFloorBench, LOOP_SEED } from "./_floor.ts";

/** RAM of every benchmark machine. */
const RAM_BYTES = 64 * 2 ** 20;
/** Where the page tables go (bump allocated). */
const TABLES_PA = 0x10_0000;
/** First frame the 4 KiB pages map. */
const FRAMES_PA = 0x200_0000;
/** Base of the mapped virtual range: every index differs from its neighbour's. */
const BASE_VA = 0x7f12_3400_0000;
/** 4 KiB pages the hit loops touch: a quarter of the 4 KiB TLB, one per set. */
const HOT_PAGES = 64;
/** Entries of each address table (a power of two, indexed with a mask). */
const ADDRESS_COUNT = 1024;

/** A machine with paging on over tables in RAM, and a way to map pages. */
interface PagedMachine {
  readonly memory: PhysicalMemory;
  readonly cpu: CpuContext;
  readonly mmu: Mmu;
  /** Maps the page of `pageSizeBytes` at `va` to `pa`, user and writable. */
  map(va: number, pa: number, pageSizeBytes: PageSizeBytes): void;
}

function bootPagedMachine(): PagedMachine {
  const memory = PhysicalMemory.contiguous(RAM_BYTES);
  const bus = new DeviceBus(memory);
  const cpu = new CpuContext(bus, new InterruptController());
  const mmu = new Mmu(cpu, memory, { bus });
  let nextTable = TABLES_PA;
  const root = nextTable;
  nextTable += PAGE_SIZE_4K;
  const flags = PTE_P | PTE_RW | PTE_US;
  const map = (va: number, pa: number, pageSizeBytes: PageSizeBytes) => {
    const leafLevel = pageSizeBytes === PAGE_SIZE_4K ? 1 : pageSizeBytes === PAGE_SIZE_2M ? 2 : 3;
    let table = root;
    for (let level = 4; level > leafLevel; level--) {
      const entryPa = (table + entryIndex(va as VirtAddr, level as PagingLevel) * 8) as PhysAddr;
      if ((memory.read32(entryPa) & PTE_P) === 0) {
        const next = nextTable as PhysAddr;
        nextTable += PAGE_SIZE_4K;
        writeEntry(memory, entryPa, encodeEntryLow(next, flags), encodeEntryHigh(next));
      }
      table = memory.read32(entryPa) & ~0xfff;
    }
    const leafPa = (table + entryIndex(va as VirtAddr, leafLevel as PagingLevel) * 8) as PhysAddr;
    const leafFlags = leafLevel === 1 ? flags : flags | PTE_PS;
    writeEntry(
      memory,
      leafPa,
      encodeEntryLow(pa as PhysAddr, leafFlags),
      encodeEntryHigh(pa as PhysAddr),
    );
  };
  cpu.writeCr4(CR4_PAE | CR4_PGE);
  cpu.writeEfer(EFER_LME | EFER_NXE);
  cpu.writeCr3(root);
  cpu.writeCr0(CR0_PE | CR0_WP | CR0_PG);
  return { memory, cpu, mmu, map };
}

/**
 * The address table of the hit loops: ADDRESS_COUNT distinct 4-byte-aligned
 * addresses, BLOCKS_PER_PAGE in each of `pageCount` pages of `pageSizeBytes`
 * from `baseVa`, at seeded random offsets inside distinct blocks.
 */
function hitAddresses(baseVa: number, pageCount: number, pageSizeBytes: number): Float64Array {
  const rng = new Xorshift32(0x2545F491);
  const addresses = new Float64Array(ADDRESS_COUNT);
  const blockBytes = pageSizeBytes / (ADDRESS_COUNT / pageCount);
  for (let i = 0; i < ADDRESS_COUNT; i++) {
    const page = i % pageCount;
    const block = Math.floor(i / pageCount);
    const offset = block * blockBytes + (rng.next() % (blockBytes / 4)) * 4;
    addresses[i] = baseVa + page * pageSizeBytes + offset;
  }
  return addresses;
}

/** The sum the hit loops must produce: f(address) over the loop's index sequence. */
function expectedSum(values: Float64Array): number {
  const rng = new Xorshift32(LOOP_SEED);
  let sum = 0;
  for (let op = 0; op < LOOP_OPS; op++) sum += values[rng.next() & (ADDRESS_COUNT - 1)];
  return sum;
}

/** Registers a bench translating the addresses of `addresses` (all TLB hits) for reads. */
function addTranslateHitBench(
  name: string,
  machine: PagedMachine,
  addresses: Float64Array,
  physOf: (va: number) => number,
): void {
  const mmu = machine.mmu;
  for (const va of addresses) {
    if (mmu.translate(va as VirtAddr, "read") !== physOf(va)) {
      throw new Error(`${name}: ${va.toString(16)} translates wrongly`);
    }
  }
  const expected = expectedSum(addresses.map(physOf));
  const tlb = machine.cpu.tlb;
  Deno.bench({
    name,
    group: "translate",
    fn() {
      const misses = tlb.stats.misses;
      const ops = LOOP_OPS;
      let x = LOOP_SEED;
      let sum = 0;
      for (let op = 0; op < ops; op++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        sum += mmu.translate(addresses[x & (ADDRESS_COUNT - 1)] as VirtAddr, "read");
      }
      if (sum !== expected) throw new Error(`${name}: sum ${sum}, expected ${expected}`);
      if (tlb.stats.misses !== misses) throw new Error(`${name}: the loop missed the TLB`);
    },
  });
}

addFloorBench();

// 4 KiB hits: HOT_PAGES consecutive pages, one per TLB set.
const hot = bootPagedMachine();
for (let page = 0; page < HOT_PAGES; page++) {
  hot.map(BASE_VA + page * PAGE_SIZE_4K, FRAMES_PA + page * PAGE_SIZE_4K, PAGE_SIZE_4K);
}
const hotAddresses = hitAddresses(BASE_VA, HOT_PAGES, PAGE_SIZE_4K);
const hotPhysOf = (va: number) => va - BASE_VA + FRAMES_PA;
addTranslateHitBench(FIGURES.translateHit4K.name, hot, hotAddresses, hotPhysOf);

// 2 MiB hits: 16 pages, two per 2 MiB TLB set.
const HUGE_VA_2M = 0x10_0000_0000;
const huge2M = bootPagedMachine();
for (let page = 0; page < 16; page++) {
  huge2M.map(HUGE_VA_2M + page * PAGE_SIZE_2M, page * PAGE_SIZE_2M, PAGE_SIZE_2M);
}
addTranslateHitBench(
  FIGURES.translateHit2M.name,
  huge2M,
  hitAddresses(HUGE_VA_2M, 16, PAGE_SIZE_2M),
  (va) => va - HUGE_VA_2M,
);

// 1 GiB hits: 4 pages, the whole 1 GiB TLB.
const HUGE_VA_1G = 0x200_0000_0000;
const huge1G = bootPagedMachine();
for (let page = 0; page < 4; page++) {
  huge1G.map(HUGE_VA_1G + page * PAGE_SIZE_1G, page * PAGE_SIZE_1G, PAGE_SIZE_1G);
}
addTranslateHitBench(
  FIGURES.translateHit1G.name,
  huge1G,
  hitAddresses(HUGE_VA_1G, 4, PAGE_SIZE_1G),
  (va) => va - HUGE_VA_1G,
);

/** The value the hot frames hold at physical address `pa` before any write. */
function patternAt(pa: number): number {
  return Math.imul(pa, 0x9E3779B1) >>> 0;
}

{
  const { memory, mmu } = hot;
  for (let pa = FRAMES_PA; pa < FRAMES_PA + HOT_PAGES * PAGE_SIZE_4K; pa += 4) {
    memory.write32(pa as PhysAddr, patternAt(pa));
  }
  const expected = expectedSum(hotAddresses.map((va) => patternAt(hotPhysOf(va))));
  const name = FIGURES.readVirt32.name;
  Deno.bench({
    name,
    group: "virtual access",
    fn() {
      const ops = LOOP_OPS;
      let x = LOOP_SEED;
      let sum = 0;
      for (let op = 0; op < ops; op++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        sum += mmu.readVirt32(hotAddresses[x & (ADDRESS_COUNT - 1)] as VirtAddr);
      }
      if (sum !== expected) throw new Error(`${name}: sum ${sum}, expected ${expected}`);
    },
  });
}

{
  // Writes go to a second machine so the read bench keeps its pattern.
  const writeMachine = bootPagedMachine();
  for (let page = 0; page < HOT_PAGES; page++) {
    writeMachine.map(BASE_VA + page * PAGE_SIZE_4K, FRAMES_PA + page * PAGE_SIZE_4K, PAGE_SIZE_4K);
  }
  const { memory, mmu } = writeMachine;
  for (const va of hotAddresses) mmu.writeVirt32(va as VirtAddr, 0); // TLB filled, D set
  // The final value of each address after one loop, from the reference PRNG.
  const finalValues = new Uint32Array(ADDRESS_COUNT);
  const rng = new Xorshift32(LOOP_SEED);
  for (let op = 0; op < LOOP_OPS; op++) {
    const x = rng.next();
    finalValues[x & (ADDRESS_COUNT - 1)] = x;
  }
  const name = FIGURES.writeVirt32.name;
  // The words the loop writes, as indices into RAM's 32-bit view: the reset
  // and the check below read and write RAM directly, so that this function's
  // other calls leave V8's inlining budget to the loop's writeVirt32.
  const ramWords = new Int32Array(ADDRESS_COUNT);
  for (let i = 0; i < ADDRESS_COUNT; i++) ramWords[i] = hotPhysOf(hotAddresses[i]) / 4;
  const ram = memory.u32;
  Deno.bench({
    name,
    group: "virtual access",
    fn(b) {
      for (let i = 0; i < ADDRESS_COUNT; i++) ram[ramWords[i]] = 0;
      const ops = LOOP_OPS;
      b.start();
      let x = LOOP_SEED;
      for (let op = 0; op < ops; op++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        mmu.writeVirt32(hotAddresses[x & (ADDRESS_COUNT - 1)] as VirtAddr, x);
      }
      b.end();
      for (let i = 0; i < ADDRESS_COUNT; i++) {
        const actual = ram[ramWords[i]];
        if (actual !== finalValues[i]) {
          throw new Error(`${name}: word ${i} holds ${actual}, expected ${finalValues[i]}`);
        }
      }
    },
  });
}

{
  // Misses: a cyclic sweep over WALK_PAGES pages. Each 4 KiB TLB set sees
  // WALK_PAGES / sets pages in turn, far more than its ways, so round-robin
  // replacement evicts every page before it comes round again.
  const cold = bootPagedMachine();
  const { cpu, mmu } = cold;
  if (cpu.tlb.capacity * 4 > WALK_PAGES) throw new Error("Walk bench: too few pages to miss");
  const walkAddresses = new Float64Array(WALK_PAGES);
  let expected = 0;
  for (let page = 0; page < WALK_PAGES; page++) {
    cold.map(BASE_VA + page * PAGE_SIZE_4K, FRAMES_PA + page * PAGE_SIZE_4K, PAGE_SIZE_4K);
    walkAddresses[page] = BASE_VA + page * PAGE_SIZE_4K + 8 * (page & 511);
    expected += FRAMES_PA + page * PAGE_SIZE_4K + 8 * (page & 511);
  }
  for (const va of walkAddresses) mmu.translate(va as VirtAddr, "read"); // A bits set
  const name = FIGURES.walk.name;
  Deno.bench({
    name,
    group: "translate",
    fn() {
      const walks = mmu.walks;
      const pages = WALK_PAGES;
      let sum = 0;
      for (let page = 0; page < pages; page++) {
        sum += mmu.translate(walkAddresses[page] as VirtAddr, "read");
      }
      if (sum !== expected) throw new Error(`${name}: sum ${sum}, expected ${expected}`);
      if (mmu.walks - walks !== WALK_PAGES) {
        throw new Error(`${name}: ${mmu.walks - walks} walks, expected ${WALK_PAGES}`);
      }
    },
  });
}
