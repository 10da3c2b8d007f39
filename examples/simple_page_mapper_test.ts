import {
  CR0_PG,
  hex,
  Machine,
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  PageFault,
  type PageSizeBytes,
  type PhysAddr,
  PhysicalMemory,
  type VirtAddr,
  VirtualClock,
} from "../hal/mod.ts";
import { KernelError } from "../kernel/mod.ts";
import {
  AddressSpace,
  type AddressSpaceLike,
  FrameAllocator,
  mapperAddressSpaceFactory,
  MappingError,
  Page,
  PAGE_GLOBAL,
  PAGE_NO_EXECUTE,
  PAGE_USER,
  PAGE_WRITABLE,
} from "../kernel/mm/mod.ts";
import { assert, assertEquals, assertThrows, Xorshift32 } from "../testing/mod.ts";
import createSimplePageMapper from "./simple_page_mapper.ts";

const MIB = 2 ** 20;
const BASE_VA = 0x40_0000_0000; // 256 GiB: one PML4 slot, room for 1 GiB pages
const SIZES: PageSizeBytes[] = [PAGE_SIZE_4K, PAGE_SIZE_2M, PAGE_SIZE_1G];
const FLAG_CHOICES = [
  PAGE_WRITABLE | PAGE_NO_EXECUTE,
  PAGE_USER,
  PAGE_WRITABLE | PAGE_USER | PAGE_GLOBAL,
  PAGE_NO_EXECUTE,
];

function machine() {
  const memory = PhysicalMemory.contiguous(64 * MIB);
  const hw = new Machine(memory, new VirtualClock());
  const frames = FrameAllocator.create(memory, {
    usableRegions: [{ base: 0, length: 64 * MIB }],
    exclusions: [{ base: 0, length: MIB }],
  });
  return { memory, hw, frames };
}

/** What an operation did: its result, or the code of the MappingError it threw. */
function outcome(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (error) {
    if (error instanceof MappingError) return `MappingError ${error.code}`;
    throw error;
  }
}

Deno.test("simple_page_mapper: 3000 seeded operations give the stock AddressSpace's results and errors", () => {
  const { hw, frames } = machine();
  const createUserSpace = mapperAddressSpaceFactory(createSimplePageMapper);
  const free = frames.stats().freeFrames;
  const stock = AddressSpace.create(frames, hw.cpu);
  const user = createUserSpace(frames, hw.cpu);
  const spaces: AddressSpaceLike[] = [stock, user];
  const rng = new Xorshift32(0x5eed);
  for (let op = 0; op < 3000; op++) {
    const size = SIZES[rng.below(rng.below(4) === 0 ? 3 : 2)];
    // A small window, so that operations collide: 4 GiB, in units of the page size.
    const va = (BASE_VA + rng.below((4 * PAGE_SIZE_1G) / size) * size) as VirtAddr;
    const flags = FLAG_CHOICES[rng.below(FLAG_CHOICES.length)];
    const kind = rng.below(4);
    const pa = ((rng.below(2 ** 20) * size) % 2 ** 40) as PhysAddr;
    const offset = rng.below(size);
    const results = spaces.map((space) =>
      outcome(() => {
        if (kind === 0) return space.map(va, pa, flags, size);
        if (kind === 1) return space.unmap(va, size);
        if (kind === 2) return space.protect(va, flags, size);
        return space.translate((va + offset) as VirtAddr);
      })
    );
    assertEquals(results[1], results[0], `operation ${op} (kind ${kind})`);
    if (op % 100 === 0) {
      assertEquals(
        user.mappings(BASE_VA as VirtAddr, 4 * PAGE_SIZE_1G),
        stock.mappings(BASE_VA as VirtAddr, 4 * PAGE_SIZE_1G),
        `mappings after ${op}`,
      );
    }
  }
  assertEquals(user.stats(), stock.stats());
  for (const space of spaces) {
    space.unmapRange(BASE_VA as VirtAddr, 4 * PAGE_SIZE_1G);
    space[Symbol.dispose]();
  }
  assertEquals(frames.stats().freeFrames, free, "no table frame leaked");
});

Deno.test("a user's mapper owns mapPage frames through the wrapper and frees them on unmap and dispose", () => {
  const { hw, frames } = machine();
  const free = frames.stats().freeFrames;
  const space = mapperAddressSpaceFactory(createSimplePageMapper)(frames, hw.cpu);
  const page = Page.alloc(frames);
  const pa = page.physAddr;
  space.mapPage(BASE_VA as VirtAddr, page, { writable: true });
  assert(space.mapping(BASE_VA as VirtAddr)?.isOwned);
  space.protect(BASE_VA as VirtAddr, { writable: false });
  assert(space.mapping(BASE_VA as VirtAddr)?.isOwned, "protect keeps ownership");
  assertEquals(space.unmap(BASE_VA as VirtAddr), pa);
  assertEquals(frames.stateOf((pa / PAGE_SIZE_4K) as never), "free", "the last reference freed it");
  space.mapPage((BASE_VA + PAGE_SIZE_4K) as VirtAddr, Page.alloc(frames), { writable: true });
  space[Symbol.dispose]();
  assertEquals(frames.stats().freeFrames, free);
});

Deno.test("a user's mapper invalidates the TLB on protect and unmap while its space is active", () => {
  const { hw, frames } = machine();
  const space = mapperAddressSpaceFactory(createSimplePageMapper)(frames, hw.cpu);
  const va = BASE_VA as VirtAddr;
  space.mapPage(va, Page.alloc(frames), { writable: true });
  space.enablePaging();
  hw.mmu.writeVirt32(va, 0x1234); // cached writable in the TLB
  space.protect(va, { writable: false });
  const fault = assertThrows(() => hw.mmu.writeVirt32(va, 1), PageFault);
  assertEquals(fault.address, va);
  space.unmap(va);
  assertThrows(() => hw.mmu.readVirt32(va), PageFault);
  hw.cpu.writeCr0(hw.cpu.cr0 & ~CR0_PG);
  hw.cpu.writeCr3(0);
  space[Symbol.dispose]();
});

Deno.test("a user's table link that points outside RAM makes mapping(), mappings() and stats() fail with InvalidPart", () => {
  const { memory, hw, frames } = machine();
  const space = mapperAddressSpaceFactory(createSimplePageMapper)(frames, hw.cpu);
  space.map(BASE_VA as VirtAddr, 0x20_0000 as PhysAddr, PAGE_WRITABLE);
  // BASE_VA is in PML4 slot 0: point its link at 1 TiB, far beyond the 64 MiB of RAM.
  const link = space.pml4Addr;
  const high = memory.read32((link + 4) as PhysAddr);
  memory.write32((link + 4) as PhysAddr, high | 0x100);
  const message = `Page table entry at ${hex(link)} points to ${
    hex(2 ** 40 + ((memory.read32(link) & 0xfffff000) >>> 0))
  }, outside RAM`;
  for (
    const read of [
      () => space.mapping(BASE_VA as VirtAddr),
      () => space.mappings(BASE_VA as VirtAddr, PAGE_SIZE_4K),
      () => space.stats(),
    ]
  ) {
    const error = assertThrows(read, KernelError);
    assertEquals([error.code, error.message], ["InvalidPart", message]);
  }
  memory.write32((link + 4) as PhysAddr, high);
  assertEquals(space.mappings(BASE_VA as VirtAddr, PAGE_SIZE_4K).length, 1);
  space[Symbol.dispose]();
});

Deno.test("a user's mapper cannot have a recursive entry, and a disposed space refuses work", () => {
  const { hw, frames } = machine();
  const create = mapperAddressSpaceFactory(createSimplePageMapper);
  assertThrows(() => create(frames, hw.cpu, { recursiveIndex: 510 }), RangeError);
  const space = create(frames, hw.cpu);
  space[Symbol.dispose]();
  assertEquals(
    assertThrows(() => space.map(BASE_VA as VirtAddr, 0 as PhysAddr, 0), KernelError).code,
    "UseAfterDispose",
  );
});
