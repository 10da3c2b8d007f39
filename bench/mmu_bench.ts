/**
 * MMU benchmarks: a translation that hits the TLB, a translation that misses
 * and walks all four levels, and a 32-bit virtual read on a hit.
 *
 * Each bench runs OPS operations per iteration, so ns/op is the reported time
 * per iteration divided by OPS. Setup (RAM, page tables, paging on) is built
 * once and not timed.
 *
 * - hit: cycles over HOT_PAGES 4 KiB pages, all resident in the TLB.
 * - walk: cycles over WALK_PAGES 4 KiB pages, four times the TLB's 4 KiB
 *   capacity. The TLB is 4-way set associative with round-robin replacement,
 *   so a cyclic sweep over more pages than a set holds misses on every access:
 *   each translation is a full PML4 -> PDPT -> PD -> PT walk plus a TLB fill.
 *   The setup checks that with the TLB's hit and miss counters.
 *
 * Targets: hit < 20 ns, walk < 150 ns.
 *
 * Run: `deno bench --allow-read bench/mmu_bench.ts`
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
  PAGE_SIZE_4K,
  type PagingLevel,
  type PhysAddr,
  PhysicalMemory,
  PTE_P,
  PTE_RW,
  PTE_US,
  type VirtAddr,
  writeEntry,
} from "../hal/mod.ts";

const OPS = 1000;
const HOT_PAGES = 64;
const BASE_VA = 0x7f12_3400_0000;

function bootPagedMachine(pageCount: number): { cpu: CpuContext; mmu: Mmu } {
  const memory = PhysicalMemory.contiguous(64 * 2 ** 20);
  const cpu = new CpuContext(new DeviceBus(memory), new InterruptController());
  const mmu = new Mmu(cpu, memory);
  let nextTable = 0x10_0000;
  const allocate = () => {
    const table = nextTable as PhysAddr;
    nextTable += PAGE_SIZE_4K;
    return table;
  };
  const root = allocate();
  const flags = PTE_P | PTE_RW | PTE_US;
  for (let page = 0; page < pageCount; page++) {
    const va = (BASE_VA + page * PAGE_SIZE_4K) as VirtAddr;
    let table = root;
    for (let level = 4; level > 1; level--) {
      const entryPa = (table + entryIndex(va, level as PagingLevel) * 8) as PhysAddr;
      if ((memory.read32(entryPa) & PTE_P) === 0) {
        const next = allocate();
        writeEntry(memory, entryPa, encodeEntryLow(next, flags), encodeEntryHigh(next));
      }
      table = (memory.read32(entryPa) & ~0xfff) as PhysAddr;
    }
    const frame = (0x200_0000 + page * PAGE_SIZE_4K) as PhysAddr;
    writeEntry(
      memory,
      (table + entryIndex(va, 1) * 8) as PhysAddr,
      encodeEntryLow(frame, flags),
      encodeEntryHigh(frame),
    );
  }
  cpu.writeCr4(CR4_PAE | CR4_PGE);
  cpu.writeEfer(EFER_LME | EFER_NXE);
  cpu.writeCr3(root);
  cpu.writeCr0(CR0_PE | CR0_WP | CR0_PG);
  return { cpu, mmu };
}

const hot = bootPagedMachine(HOT_PAGES);
const hotAddrs = Array.from(
  { length: OPS },
  (_, i) => (BASE_VA + (i % HOT_PAGES) * PAGE_SIZE_4K + ((i * 4) % PAGE_SIZE_4K)) as VirtAddr,
);
for (const va of hotAddrs) hot.mmu.translate(va, "read"); // warm the TLB

const WALK_PAGES = hot.cpu.tlb.capacity * 4;
const cold = bootPagedMachine(WALK_PAGES);
const coldAddrs = Array.from(
  { length: WALK_PAGES },
  (_, i) => (BASE_VA + i * PAGE_SIZE_4K + 8) as VirtAddr,
);
let coldCursor = 0;
for (const va of coldAddrs) cold.mmu.translate(va, "read");
cold.cpu.tlb.resetStats();
for (const va of coldAddrs) cold.mmu.translate(va, "read");
if (cold.cpu.tlb.stats.hits !== 0) {
  throw new Error(`Walk bench is not all misses: ${cold.cpu.tlb.stats.hits} TLB hits`);
}

let sink = 0;

Deno.bench(`Mmu.translate() TLB hit (${OPS} ops)`, { group: "translate" }, () => {
  const mmu = hot.mmu;
  for (let i = 0; i < OPS; i++) sink += mmu.translate(hotAddrs[i], "read");
});

Deno.bench(
  `Mmu.translate() TLB miss, 4-level walk (${OPS} ops)`,
  { group: "translate" },
  () => {
    const mmu = cold.mmu;
    for (let i = 0; i < OPS; i++) {
      sink += mmu.translate(coldAddrs[coldCursor], "read");
      coldCursor = coldCursor + 1 === WALK_PAGES ? 0 : coldCursor + 1;
    }
  },
);

Deno.bench(`Mmu.readVirt32() TLB hit (${OPS} ops)`, () => {
  const mmu = hot.mmu;
  for (let i = 0; i < OPS; i++) sink += mmu.readVirt32(hotAddrs[i]);
});

Deno.bench(`Mmu.writeVirt32() TLB hit (${OPS} ops)`, () => {
  const mmu = hot.mmu;
  for (let i = 0; i < OPS; i++) mmu.writeVirt32(hotAddrs[i], i);
});

globalThis.addEventListener("unload", () => {
  if (sink === -1) console.log(sink);
});
