import { assertEquals } from "../testing/mod.ts";
import {
  AddressSpace,
  FrameAllocator,
  PAGE_GLOBAL,
  PAGE_NO_EXECUTE,
  PAGE_USER,
  PAGE_WRITABLE,
} from "../sdk/mod.ts";
import {
  Machine,
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  type PageSizeBytes,
  type PhysAddr,
  PhysicalMemory,
  type VirtAddr,
  VirtualClock,
} from "../hal/mod.ts";
import { Xorshift32 } from "../testing/mod.ts";
import { entryBits, entryHex, expectedLeaf, referenceWalk } from "./_reference_walker.ts";

Deno.test("referenceWalk() agrees with the MMU and finds exactly the leaf expectedLeaf() describes", () => {
  const memory = PhysicalMemory.contiguous(32 * 2 ** 20);
  const machine = new Machine(memory, new VirtualClock());
  const frames = FrameAllocator.create(memory, {
    usableRegions: [{ base: 2 ** 20, length: 31 * 2 ** 20 }],
  });
  const space = AddressSpace.create(frames, machine.cpu);
  space.enablePaging();
  const rng = new Xorshift32(0xabcd);
  const sizes: PageSizeBytes[] = [PAGE_SIZE_4K, PAGE_SIZE_2M, PAGE_SIZE_1G];
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const size = sizes[rng.below(3)];
    const va = rng.below(2 ** 17) * PAGE_SIZE_1G +
      (size === PAGE_SIZE_1G ? 0 : rng.below(512) * PAGE_SIZE_2M);
    if (seen.has(Math.floor(va / PAGE_SIZE_1G))) continue;
    seen.add(Math.floor(va / PAGE_SIZE_1G));
    const pa = rng.below(2 ** 20) * size % 2 ** 40;
    const flags = [PAGE_WRITABLE, PAGE_USER, PAGE_GLOBAL, PAGE_NO_EXECUTE][rng.below(4)];
    space.map(va as VirtAddr, pa as PhysAddr, flags, size);
    const walk = referenceWalk(memory, space.pml4Addr, va + 5);
    const probe = machine.mmu.probe((va + 5) as VirtAddr);
    assertEquals(probe.kind, "mapped");
    if (probe.kind !== "mapped" || walk.leaf === undefined) throw new Error("not mapped");
    assertEquals([walk.leaf.physAddr, walk.leaf.pageSizeBytes], [
      probe.physAddr,
      probe.pageSizeBytes,
    ]);
    assertEquals(
      walk.path.map((entry) => entry.entryAddr),
      probe.steps.map((step) => step.entryAddr),
    );
    const want = expectedLeaf(pa, flags, size);
    assertEquals(entryHex(walk.leaf.low, walk.leaf.high), entryHex(want.low, want.high));
  }
  assertEquals(referenceWalk(memory, space.pml4Addr, 0x1234_5000).leaf, undefined);
});

Deno.test("expectedLeaf() sets P, the flag bits, PS for huge pages and XD for PAGE_NO_EXECUTE", () => {
  const leaf = expectedLeaf(
    0x1_4020_0000,
    PAGE_WRITABLE | PAGE_USER | PAGE_NO_EXECUTE,
    PAGE_SIZE_2M,
  );
  assertEquals(entryHex(leaf.low, leaf.high), "0x8000000140200087");
  assertEquals(entryBits(leaf.low, leaf.high), "P RW US PS NX");
  const small = expectedLeaf(0x5000, PAGE_GLOBAL | (1 << 10), PAGE_SIZE_4K);
  assertEquals(entryBits(small.low, small.high), "P G COW");
});
