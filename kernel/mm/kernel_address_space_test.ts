import {
  CR0_PG,
  CR0_WP,
  CR4_PAE,
  CR4_PGE,
  EFER_LME,
  EFER_NXE,
  KERNEL_LOAD_ADDRESS,
  Machine,
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  PageFault,
  pcMemoryMap,
  type PhysAddr,
  PhysicalMemory,
  ramRangesFor,
  type VirtAddr,
  VirtualClock,
} from "../../hal/mod.ts";
import { assert, assertEquals, assertThrows } from "../../testing/mod.ts";
import { PAGE_GLOBAL, PAGE_NO_EXECUTE, PAGE_WRITABLE } from "./address_space.ts";
import { FrameAllocator } from "./frame_allocator.ts";
import {
  DIRECT_MAP_BASE,
  directMapAddr,
  directMapRanges,
  KERNEL_IMAGE_MAP_BASE,
  KernelAddressSpace,
  RECURSIVE_MAP_BASE,
} from "./kernel_address_space.ts";
import { KernelPageFaultHandler, UnhandledPageFault } from "./page_fault_handler.ts";

const MIB = 2 ** 20;
const GIB = 2 ** 30;
const IMAGE_BYTES = 512 * 1024;

/**
 * A PC with `ramBytes` of RAM laid out as the boot loader does (RAM beyond
 * 3.5 GiB moved above 4 GiB), its frame allocator, and the kernel's address
 * space built but not yet switched to.
 */
function bootPc(ramBytes: number) {
  const memoryMap = pcMemoryMap(ramBytes);
  const memory = new PhysicalMemory(ramRangesFor(memoryMap));
  const machine = new Machine(memory, new VirtualClock());
  const frames = FrameAllocator.create(memory, {
    usableRegions: memoryMap.filter((region) => region.type === 1),
    exclusions: [{ base: 0, length: KERNEL_LOAD_ADDRESS + IMAGE_BYTES }],
  });
  const kernel = KernelAddressSpace.build(frames, machine.cpu, {
    memoryMap,
    kernelImage: { base: KERNEL_LOAD_ADDRESS, length: IMAGE_BYTES },
  });
  return { memoryMap, memory, machine, cpu: machine.cpu, mmu: machine.mmu, frames, kernel };
}

Deno.test("directMapRanges() merges the memory map's RAM regions into whole frames", () => {
  assertEquals(directMapRanges(pcMemoryMap(5 * GIB)), [
    { base: 0, length: 0x9f000 },
    { base: 0x10_0000, length: 0xe000_0000 - 0x10_0000 }, // available + ACPI reclaimable
    { base: 4 * GIB, length: 1.5 * GIB },
  ]);
  assertEquals(
    directMapRanges([
      { base: 0x1800, length: 0x3000, type: 1 },
      { base: 0x4000, length: 0x1000, type: 4 },
      { base: 0x9000, length: 0x1000, type: 2 },
      { base: 0xa000, length: 0x1000, type: 5 },
    ]),
    [{ base: 0x2000, length: 0x3000 }],
  );
});

Deno.test("KernelAddressSpace uses the largest pages alignment allows on a 5 GiB PC", () => {
  const { kernel } = bootPc(5 * GIB);
  const counts = kernel.regions.map(({ name, pages1G, pages2M, pages4K }) => ({
    name,
    pages1G,
    pages2M,
    pages4K,
  }));
  assertEquals(counts, [
    // 0 .. 0x9f000: 159 small pages.
    { name: "direct map", pages1G: 0, pages2M: 0, pages4K: 159 },
    // 1 MiB .. 3.5 GiB: 4 KiB to 2 MiB, 2 MiB to 1 GiB, 1 GiB to 3 GiB, 2 MiB to the end.
    { name: "direct map", pages1G: 2, pages2M: 511 + 256, pages4K: 256 },
    // 4 GiB .. 5.5 GiB.
    { name: "direct map", pages1G: 1, pages2M: 256, pages4K: 0 },
    { name: "kernel image", pages1G: 0, pages2M: 0, pages4K: 128 },
  ]);
  const stats = kernel.addressSpace.stats();
  assertEquals(
    { pages1G: stats.pages1G, pages2M: stats.pages2M, pages4K: stats.pages4K },
    { pages1G: 3, pages2M: 1023, pages4K: 159 + 256 + 128 },
  );
  // PML4; direct map: PDPT, PDs for 0-1 GiB, 3-4 GiB and 5-6 GiB, one PT; image: PDPT, PD, PT.
  assertEquals(stats.pageTableFrames, 1 + 1 + 3 + 1 + 3);
  assertEquals(stats.ownedPages, 0);
});

Deno.test("KernelAddressSpace maps every RAM byte at 0xffff800000000000 + pa once paging is on", () => {
  const { memoryMap, memory, cpu, mmu, kernel } = bootPc(5 * GIB);
  kernel.enablePaging();
  assert((cpu.cr0 & CR0_PG) !== 0 && (cpu.cr0 & CR0_WP) !== 0);
  assertEquals(cpu.cr4 & (CR4_PAE | CR4_PGE), CR4_PAE | CR4_PGE);
  assertEquals(cpu.efer & (EFER_LME | EFER_NXE), EFER_LME | EFER_NXE);
  assertEquals(cpu.cr3, kernel.addressSpace.pml4Addr);
  for (const range of directMapRanges(memoryMap)) {
    const end = range.base + range.length;
    const probes = [range.base, range.base + 8, end - 8, end - PAGE_SIZE_4K];
    for (let pa = range.base + PAGE_SIZE_2M; pa < end; pa += 0x1234_5000) probes.push(pa);
    for (const pa of probes) {
      memory.write32(pa as PhysAddr, (pa / PAGE_SIZE_4K) >>> 0);
      assertEquals(mmu.readVirt32(directMapAddr(pa as PhysAddr)), (pa / PAGE_SIZE_4K) >>> 0);
      mmu.writeVirt32(directMapAddr((pa + 4) as PhysAddr), 0x600d);
      assertEquals(memory.read32((pa + 4) as PhysAddr), 0x600d);
    }
  }
  // Above 4 GiB in particular, to the last byte.
  const last = mmu.probe(directMapAddr((5.5 * GIB - 1) as PhysAddr));
  assert(last.kind === "mapped");
  assertEquals(last.physAddr, 5.5 * GIB - 1);
  assertEquals(last.pageSizeBytes, PAGE_SIZE_2M);
  const walk = mmu.probe(directMapAddr((4 * GIB + 0x123) as PhysAddr));
  assert(walk.kind === "mapped");
  assertEquals(walk.pageSizeBytes, PAGE_SIZE_1G);
  assert(walk.global && walk.writable && !walk.executable && !walk.user);
});

Deno.test("KernelAddressSpace leaves holes, the lower half and virtual 0 unmapped", () => {
  const { mmu, kernel } = bootPc(5 * GIB);
  kernel.enablePaging();
  for (
    const address of [
      0, // null
      0x1000,
      KERNEL_LOAD_ADDRESS, // no identity map of the kernel either
      2 ** 47 - 8, // top of the lower half
      directMapAddr(0x9f000 as PhysAddr), // the legacy hole
      directMapAddr(0xe000_0000 as PhysAddr), // the PCI hole
      directMapAddr((5.5 * GIB) as PhysAddr), // past the end of RAM
    ]
  ) {
    const walk = mmu.probe(address as VirtAddr);
    assertEquals(walk.kind, "fault", `0x${address.toString(16)} is unmapped`);
  }
  const error = assertThrows(() => mmu.readVirt64(0 as VirtAddr), PageFault);
  assertEquals(error.message, "Page fault at 0x0: not-present supervisor read (error code 0x0)");
});

Deno.test("KernelAddressSpace's direct map is never executable; the image is, read-only", () => {
  const { mmu, kernel, memory } = bootPc(64 * MIB);
  kernel.enablePaging();
  const fetch = assertThrows(
    () => mmu.readVirt8(directMapAddr(0x20_0000 as PhysAddr), "fetch"),
    PageFault,
  );
  assertEquals(fetch.errorCode, 0x11); // present | instruction fetch
  const image = (KERNEL_IMAGE_MAP_BASE + KERNEL_LOAD_ADDRESS) as VirtAddr;
  memory.write32(KERNEL_LOAD_ADDRESS, 0xe85250d6);
  assertEquals(mmu.readVirt32(image, "fetch"), 0xe85250d6);
  assertEquals(mmu.readVirt32((image + IMAGE_BYTES - 4) as VirtAddr), 0);
  assertThrows(() => mmu.writeVirt8(image, 0), PageFault, "protection supervisor write");
  assertThrows(() => mmu.readVirt8((image + IMAGE_BYTES) as VirtAddr), PageFault, "not-present");
  const walk = mmu.probe(image);
  assert(walk.kind === "mapped" && walk.pageSizeBytes === PAGE_SIZE_4K && walk.global);
  assertEquals(
    kernel.regions.map((region) => region.flags),
    [
      PAGE_WRITABLE | PAGE_NO_EXECUTE | PAGE_GLOBAL,
      PAGE_WRITABLE | PAGE_NO_EXECUTE | PAGE_GLOBAL,
      PAGE_GLOBAL,
    ],
  );
});

Deno.test("KernelAddressSpace's recursive entry at PML4[510] shows the page tables", () => {
  const { mmu, kernel, memory } = bootPc(64 * MIB);
  kernel.enablePaging();
  const pml4 = kernel.addressSpace.pml4Addr;
  const slot = 2 ** 39 / 512; // one step of the recursion at the next level
  // PML4 through 510/510/510/510; its entry 256 is the direct map's PDPT.
  const pml4View = RECURSIVE_MAP_BASE + 510 * (slot + slot / 512 + slot / 512 ** 2);
  assertEquals(mmu.readVirt32((pml4View + 8 * 510) as VirtAddr) & 0xfffff000, pml4);
  assertEquals(
    mmu.readVirt32((pml4View + 8 * 256) as VirtAddr) >>> 0,
    memory.read32((pml4 + 8 * 256) as PhysAddr),
  );
  // The page tables are data: fetches fault.
  assertThrows(() => mmu.readVirt8(pml4View as VirtAddr, "fetch"), PageFault, "fetch");
  const without = KernelAddressSpace.build(
    FrameAllocator.create(PhysicalMemory.contiguous(16 * MIB), {
      usableRegions: [{ base: 0, length: 16 * MIB }],
    }),
    new Machine(PhysicalMemory.contiguous(16 * MIB), new VirtualClock()).cpu,
    { memoryMap: [], kernelImage: { base: 0, length: 0 }, recursiveMapping: false },
  );
  assert(!without.hasRecursiveMapping);
  assertEquals(without.addressSpace.stats().pageTableFrames, 1);
});

Deno.test("KernelAddressSpace describes its layout for the boot log and the report", () => {
  const { machine, mmu, kernel, frames } = bootPc(5 * GIB);
  kernel.enablePaging();
  const lines = kernel.layoutLines();
  assertEquals(lines, [
    "null page    0x0..0x7fffffffffff unmapped (no identity map)",
    "direct map   0xffff800000000000..0xffff80000009f000 -> 0x0..0x9f000 " +
    "(0 x 1 GiB, 0 x 2 MiB, 159 x 4 KiB) RW NX G",
    "direct map   0xffff800000100000..0xffff8000e0000000 -> 0x100000..0xe0000000 " +
    "(2 x 1 GiB, 767 x 2 MiB, 256 x 4 KiB) RW NX G",
    "direct map   0xffff800100000000..0xffff800160000000 -> 0x100000000..0x160000000 " +
    "(1 x 1 GiB, 256 x 2 MiB, 0 x 4 KiB) RW NX G",
    "heap         0xffff800000000000 + physical address (kmem heap addresses are direct-map addresses)",
    `page tables  0xffffff0000000000..0xffffff8000000000 -> PML4 0x${
      kernel.addressSpace.pml4Addr.toString(16)
    } (recursive entry PML4[510])`,
    "kernel image 0xffffffff80100000..0xffffffff80180000 -> 0x100000..0x180000 " +
    "(0 x 1 GiB, 0 x 2 MiB, 128 x 4 KiB) RO X G",
  ]);
  // A demand-zero fault through the kernel's fault handler, then the report.
  using faults = KernelPageFaultHandler.install(mmu, machine.cpu, frames);
  faults.declareLazy(kernel.addressSpace, 0x10_0000_0000 as VirtAddr, 4 * PAGE_SIZE_4K, {
    writable: true,
  });
  mmu.readVirt8(0x10_0000_0000 as VirtAddr);
  assertThrows(() => mmu.readVirt8(0 as VirtAddr), UnhandledPageFault);
  const report = kernel.pagingReport(mmu);
  assertEquals(report.directMapBase, "0xffff800000000000");
  assertEquals(report.pageTableFrames, 9 + 3);
  assertEquals(report.pageFaults, 2);
  assertEquals(report.tlb, mmu.tlb.stats);
  assert(report.tlb.misses > 0 && report.tlb.flushes > 0);
  assertEquals(JSON.parse(JSON.stringify(report)), report);
  assertEquals(DIRECT_MAP_BASE, 2 ** 47);
});
