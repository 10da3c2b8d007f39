import {
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  PageFault,
  type PageSizeBytes,
  type PhysAddr,
  PhysicalMemory,
  PTE_HIGH_NX,
  PTE_P,
  PTE_PS,
  PTE_RW,
  PTE_US,
  type VirtAddr,
} from "../../hal/mod.ts";
import { KernelError, type KernelErrorCode } from "../errors.ts";
import { assert, assertEquals, assertThrows, Xorshift32 } from "../../testing/mod.ts";
import {
  AddressSpace,
  FLUSH_CEILING_PAGES,
  formatPageFlags,
  MappingError,
  PAGE_COPY_ON_WRITE,
  PAGE_GLOBAL,
  PAGE_NO_EXECUTE,
  PAGE_USER,
  PAGE_WRITABLE,
  pageFlags,
  PTE_SW_FOREIGN,
  PTE_SW_OWNED,
} from "./address_space.ts";
import { bootTestMachine, disablePaging } from "./_test_machine.ts";
import { heldFrames, Page } from "./page.ts";

const MIB = 2 ** 20;
const GIB = 2 ** 30;
const RW = PAGE_WRITABLE | PAGE_NO_EXECUTE;
const va = (value: number) => value as VirtAddr;
const pa = (value: number) => value as PhysAddr;
const boot = bootTestMachine;

function errorOf(fn: () => unknown): MappingError {
  return assertThrows(fn, MappingError);
}

function codeOf(fn: () => unknown): KernelErrorCode {
  return assertThrows(fn, KernelError).code;
}

/** Reads the entry at `level` on the way to `address` (the low and high halves). */
function entryAt(memory: PhysicalMemory, space: AddressSpace, address: number, level: number) {
  let table = space.pml4Addr as number;
  for (let l = 4; l >= level; l--) {
    const index = Math.floor(address / (PAGE_SIZE_4K * 512 ** (l - 1))) % 512;
    const word = (table + 8 * index) / 4;
    const low = memory.u32[word];
    const high = memory.u32[word + 1];
    if (l === level) return { low, high };
    table = (high & 0xfffff) * 2 ** 32 + ((low & 0xfffff000) >>> 0);
  }
  throw new Error("unreachable");
}

// ---------------------------------------------------------------------------
// Map, translate, unmap, protect

const sizes: [string, PageSizeBytes][] = [
  ["4 KiB", PAGE_SIZE_4K],
  ["2 MiB", PAGE_SIZE_2M],
  ["1 GiB", PAGE_SIZE_1G],
];

for (const [label, size] of sizes) {
  Deno.test(`AddressSpace maps, translates, protects and unmaps a ${label} page`, () => {
    const { frames } = boot();
    const free = frames.stats().freeFrames;
    using space = AddressSpace.create(frames, boot().cpu);
    const page = va(0x7f00_0000_0000 + 3 * size);
    const frame = pa(5 * size);
    space.map(page, frame, { writable: true, user: true }, size);
    assertEquals(space.translate(va(page + size - 8)), frame + size - 8);
    assertEquals(space.translate(va(page - 1)), undefined);
    assertEquals(space.mapping(va(page + 123)), {
      virtAddr: page,
      physAddr: frame,
      pageSizeBytes: size,
      flags: PAGE_WRITABLE | PAGE_USER | PAGE_NO_EXECUTE,
      isOwned: false,
      isAccessed: false,
      isDirty: false,
    });
    const leafLevel = size === PAGE_SIZE_4K ? 1 : size === PAGE_SIZE_2M ? 2 : 3;
    const leaf = entryAt(frames.memory, space, page, leafLevel);
    assertEquals(leaf.low & (PTE_P | PTE_RW | PTE_US), PTE_P | PTE_RW | PTE_US);
    assertEquals((leaf.low & PTE_PS) !== 0, size !== PAGE_SIZE_4K);
    assert((leaf.high & PTE_HIGH_NX) !== 0, "NX set");
    assertEquals(space.stats().pageTableFrames, 1 + (4 - leafLevel));

    space.protect(page, { executable: true, global: true }, size);
    assertEquals(space.mapping(page)?.flags, PAGE_GLOBAL);
    assertEquals(space.translate(page), frame);

    assertEquals(space.unmap(page, size), frame);
    assertEquals(space.translate(page), undefined);
    assertEquals(space.stats().pageTableFrames, 1);
    space[Symbol.dispose]();
    assertEquals(frames.stats().freeFrames, free);
  });
}

Deno.test("AddressSpace mappings walk the same tables the MMU walks", () => {
  const { machine, mmu, frames, memory } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  space.map(va(0x40_0000), pa(0x20_0000), RW);
  space.map(va(0x8000_0000), pa(0x20_0000), RW, PAGE_SIZE_2M);
  space.map(va(0x40_0000_0000), pa(0), RW, PAGE_SIZE_1G);
  space.enablePaging();
  memory.write32(pa(0x20_0010), 0xfeedf00d);
  assertEquals(mmu.readVirt32(va(0x40_0010)), 0xfeedf00d);
  assertEquals(mmu.readVirt32(va(0x8000_0010)), 0xfeedf00d);
  assertEquals(mmu.readVirt32(va(0x40_0020_0010)), 0xfeedf00d);
  mmu.writeVirt32(va(0x40_0014), 0x1234);
  assertEquals(memory.read32(pa(0x20_0014)), 0x1234);
  assertThrows(
    () => mmu.readVirt8(va(0x40_0000), "fetch"),
    PageFault,
    "protection supervisor fetch",
  );
  disablePaging(machine);
});

Deno.test("AddressSpace.mapPage() owns the page: unmap frees its frame", () => {
  const { machine, frames } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  const page = Page.alloc(frames);
  const frame = page.frame;
  space.mapPage(va(0x1000), page, RW);
  assert(page.isDisposed, "the handle is consumed");
  assertEquals(frames.metadata.refcount(frame), 1);
  assertEquals(space.mapping(va(0x1000))?.isOwned, true);
  assertEquals(frames.stateOf(frame), "allocated");
  space.unmap(va(0x1000));
  assertEquals(frames.stateOf(frame), "free");
});

Deno.test("AddressSpace.unmap() returns the frame it unmaps, below and above 2^31, 2^32 and up to 2^52", () => {
  const { machine, frames } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  const base = 0x7f12_3440_0000;
  const frameAddrs = [
    0x7fff_f000,
    0x8000_0000,
    0xffff_f000,
    2 ** 32,
    0x1_8000_1000,
    2 ** 52 - PAGE_SIZE_4K,
  ];
  // A neighbour keeps the tables: the first round walks them, the others
  // find them through the last walk's prediction.
  space.map(va(base), pa(0x1000), RW);
  for (let round = 0; round < 3; round++) {
    for (const [i, frame] of frameAddrs.entries()) {
      space.map(va(base + (i + 1) * PAGE_SIZE_4K), pa(frame), RW);
      assertEquals(space.translate(va(base + (i + 1) * PAGE_SIZE_4K + 0x123)), frame + 0x123);
    }
    for (const [i, frame] of frameAddrs.entries()) {
      assertEquals(space.unmap(va(base + (i + 1) * PAGE_SIZE_4K)), frame);
      assertEquals(space.translate(va(base + (i + 1) * PAGE_SIZE_4K)), undefined);
    }
  }
  assertEquals(space.unmap(va(base)), 0x1000);
  assertEquals(space.stats().pageTableFrames, 1);
});

Deno.test("AddressSpace.mapPage() leaves the handle with the caller when it fails", () => {
  const { machine, frames } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  space.map(va(0x1000), pa(0x9000), RW);
  using page = Page.alloc(frames);
  assertEquals(codeOf(() => space.mapPage(va(0x1000), page, RW)), "PageAlreadyMapped");
  assert(!page.isDisposed);
  assertEquals(page.refcount, 1);
});

Deno.test("AddressSpace.remapPage() swaps the frame and drops the old reference", () => {
  const { machine, frames } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  const first = Page.alloc(frames);
  const firstFrame = first.frame;
  space.mapPage(va(0x5000), first, PAGE_NO_EXECUTE);
  const second = Page.alloc(frames);
  const secondAddr = second.physAddr;
  assertEquals(space.remapPage(va(0x5000), second, RW), firstFrame * PAGE_SIZE_4K);
  assertEquals(frames.stateOf(firstFrame), "free");
  assertEquals(space.mapping(va(0x5000))?.physAddr, secondAddr);
  assertEquals(space.mapping(va(0x5000))?.flags, RW);
  assertEquals(space.mapping(va(0x5000))?.isOwned, true);
});

Deno.test("pageFlags() and formatPageFlags() describe permissions in words", () => {
  assertEquals(pageFlags({}), PAGE_NO_EXECUTE);
  assertEquals(
    pageFlags({ writable: true, executable: true, user: true }),
    PAGE_WRITABLE | PAGE_USER,
  );
  assertEquals(formatPageFlags(pageFlags({ writable: true, global: true })), "RW NX G");
  assertEquals(formatPageFlags(PAGE_COPY_ON_WRITE), "RO X COW");
  const { machine, frames } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  assertThrows(() => space.map(va(0), pa(0), PTE_P), RangeError, "unknown bits");
  assertThrows(() => space.map(va(0), pa(0), PTE_SW_OWNED), RangeError, "unknown bits");
});

// ---------------------------------------------------------------------------
// Typed errors

Deno.test("AddressSpace.map() fails with PageAlreadyMapped naming the frame", () => {
  const { machine, frames, memory } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  space.map(va(0x8000_0000_4000), pa(0x9000), RW);
  const error = errorOf(() => space.map(va(0x8000_0000_4000), pa(0xa000), RW));
  assertEquals(error.code, "PageAlreadyMapped");
  assertEquals(error.frame, 0x9000);
  assertEquals(error.address, 0x8000_0000_4000);
  assertEquals(
    error.message,
    "Cannot map page 0xffff800000004000: already mapped to frame 0x9000",
  );
  // A huge page over smaller ones names the page table in the way.
  const huge = errorOf(() => space.map(va(0x8000_0000_0000), pa(0), RW, PAGE_SIZE_2M));
  assertEquals(huge.code, "PageAlreadyMapped");
  const pd = entryAt(memory, space, 0x8000_0000_0000, 2);
  assertEquals(huge.frame, (pd.high & 0xfffff) * 2 ** 32 + ((pd.low & 0xfffff000) >>> 0));
  assertEquals(
    huge.message,
    `Cannot map 2 MiB page 0xffff800000000000: smaller pages are mapped there (page table ${
      "0x" + (huge.frame ?? 0).toString(16)
    })`,
  );
});

Deno.test("AddressSpace fails with ParentEntryHugePage under a huge page", () => {
  const { machine, frames } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  space.map(va(0x20_0000), pa(0x40_0000), RW, PAGE_SIZE_2M);
  const error = errorOf(() => space.map(va(0x20_1000), pa(0x9000), RW));
  assertEquals(error.code, "ParentEntryHugePage");
  assertEquals(
    error.message,
    "Cannot map page 0x201000: parent entry maps 2 MiB page 0x200000 to frame 0x400000",
  );
  assertEquals(codeOf(() => space.unmap(va(0x20_1000))), "ParentEntryHugePage");
  assertEquals(codeOf(() => space.protect(va(0x20_1000), RW)), "ParentEntryHugePage");
  space.map(va(0x4000_0000), pa(0), RW, PAGE_SIZE_1G);
  assertEquals(
    codeOf(() => space.map(va(0x4020_0000), pa(0), RW, PAGE_SIZE_2M)),
    "ParentEntryHugePage",
  );
  assertEquals(space.stats().pageTableFrames, 3);
});

Deno.test("AddressSpace fails with PageNotMapped for pages that are not mapped", () => {
  const { machine, frames } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  const error = errorOf(() => space.unmap(va(0x7000)));
  assertEquals(error.code, "PageNotMapped");
  assertEquals(error.message, "Cannot unmap page 0x7000: not mapped");
  space.map(va(0x1000), pa(0x1000), RW);
  assertEquals(codeOf(() => space.unmap(va(0x2000))), "PageNotMapped");
  assertEquals(codeOf(() => space.protect(va(0x2000), RW)), "PageNotMapped");
  assertEquals(
    errorOf(() => space.unmap(va(0), PAGE_SIZE_2M)).message,
    "Cannot unmap 2 MiB page 0x0: mapped with smaller pages",
  );
  assertEquals(space.translate(va(0x1000)), 0x1000);
});

Deno.test("AddressSpace rejects misaligned and out-of-range addresses with InvalidAddress", () => {
  const { machine, frames } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  assertEquals(
    errorOf(() => space.map(va(0x1001), pa(0x1000), RW)).message,
    "Cannot map page 0x1001: not 4 KiB aligned",
  );
  assertEquals(
    errorOf(() => space.map(va(0x1000), pa(0x1800), RW)).message,
    "Cannot map page 0x1000: frame 0x1800 is not 4 KiB aligned below 2^52",
  );
  assertEquals(
    errorOf(() => space.map(va(0x1000), pa(0x20_0000), RW, PAGE_SIZE_2M)).message,
    "Cannot map 2 MiB page 0x1000: not 2 MiB aligned",
  );
  assertEquals(
    errorOf(() => space.map(va(2 ** 48), pa(0), RW)).message,
    "Cannot map page 0x1000000000000: not a 48-bit virtual address",
  );
  assertEquals(codeOf(() => space.unmap(va(0x1234))), "InvalidAddress");
  assertEquals(codeOf(() => space.mapRange(va(0), pa(0), 0x1800, RW)), "InvalidAddress");
  assertEquals(codeOf(() => space.mapRange(va(2 ** 48 - 4096), pa(0), 8192, RW)), "InvalidAddress");
  assertEquals(codeOf(() => space.unmapRange(va(0), 0)), "InvalidAddress");
  assertThrows(() => space.map(va(0), pa(0), RW, 8192 as PageSizeBytes), RangeError, "page size");
  assertEquals(space.stats().pageTableFrames, 1);
});

Deno.test("AddressSpace.translate() and mapping() refuse addresses beyond 48 bits", () => {
  const { machine, frames } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  space.mapPage(va(0x1000), Page.alloc(frames), RW);
  assert(space.translate(va(0x1000)) !== undefined);
  // 2^48 + 0x1000 has the same table indexes as 0x1000: it must not alias it.
  for (const address of [2 ** 48 + 0x1000, -0x1000, 4096.5, 2 ** 64]) {
    assertEquals(codeOf(() => space.translate(va(address))), "InvalidAddress");
    assertEquals(codeOf(() => space.mapping(va(address))), "InvalidAddress");
    assertEquals(codeOf(() => space.mappings(va(address), 4096)), "InvalidAddress");
  }
  assertEquals(
    errorOf(() => space.translate(va(2 ** 48 + 0x1000))).message,
    "Cannot translate 0x1000000001000: not a 48-bit virtual address",
  );
  space.unmap(va(0x1000));
});

Deno.test("AddressSpace.map() fails with FrameAllocationFailed and frees the tables it made", () => {
  const { machine, frames } = boot(16 * MIB);
  using space = AddressSpace.create(frames, machine.cpu);
  // Leave exactly two free frames: a 4 KiB page needs three new tables.
  const taken: number[] = [];
  while (frames.stats().freeFrames > 2) taken.push(frames.allocate());
  const error = errorOf(() => space.map(va(0x40_0000), pa(0x9000), RW));
  assertEquals(error.code, "FrameAllocationFailed");
  assertEquals(error.message, "Cannot map page 0x400000: no free frame for a page table");
  assert(error.cause instanceof KernelError && error.cause.code === "OutOfMemory");
  assertEquals(frames.stats().freeFrames, 2);
  assertEquals(space.stats().pageTableFrames, 1);
  // mapRange is all or nothing: its first page fits in the existing PD, the next needs a new PD.
  frames.free(taken.pop() as never);
  space.map(va(0), pa(0), RW, PAGE_SIZE_2M);
  taken.push(frames.allocate());
  assertEquals(frames.stats().freeFrames, 0);
  const range = errorOf(() =>
    space.mapRange(va(0x3fe0_0000), pa(0), 4 * PAGE_SIZE_2M, RW, PAGE_SIZE_2M)
  );
  assertEquals(range.code, "FrameAllocationFailed");
  assertEquals(range.address, 0x4000_0000);
  assertEquals(space.translate(va(0x3fe0_0000)), undefined);
  assertEquals(space.stats(), {
    pageTableFrames: 3,
    pages4K: 0,
    pages2M: 1,
    pages1G: 0,
    ownedPages: 0,
  });
  assertEquals(frames.stats().freeFrames, 0);
  for (const frame of taken) frames.free(frame as never);
});

Deno.test("AddressSpace.create() fails with FrameAllocationFailed when no frame is free", () => {
  const { machine, frames } = boot(16 * MIB);
  while (frames.stats().freeFrames > 0) frames.allocate();
  assertEquals(codeOf(() => AddressSpace.create(frames, machine.cpu)), "FrameAllocationFailed");
});

// ---------------------------------------------------------------------------
// Ranges

Deno.test("AddressSpace.mapRange() maps with one walk and translates every page", () => {
  const { machine, frames } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  // 3 MiB of 4 KiB pages crossing a 2 MiB and a 1 GiB boundary.
  const start = 0x3ff0_0000;
  space.mapRange(va(start), pa(0x10_0000), 3 * MIB, RW);
  for (let offset = 0; offset < 3 * MIB; offset += PAGE_SIZE_4K) {
    assertEquals(space.translate(va(start + offset)), 0x10_0000 + offset);
  }
  assertEquals(space.translate(va(start + 3 * MIB)), undefined);
  assertEquals(space.stats(), {
    pageTableFrames: 1 + 1 + 2 + 2,
    pages4K: 768,
    pages2M: 0,
    pages1G: 0,
    ownedPages: 0,
  });
  space.mapRange(va(0x80_0000_0000), pa(0), 3 * GIB, RW, PAGE_SIZE_1G);
  assertEquals(space.translate(va(0x80_8000_0123)), 0x8000_0123);
  assertEquals(space.unmapRange(va(start), 3 * MIB), 768);
  assertEquals(space.unmapRange(va(0x80_0000_0000), 3 * GIB), 3);
  assertEquals(space.stats().pageTableFrames, 1);
});

Deno.test("AddressSpace.mapRange() is all or nothing when a page is already mapped", () => {
  const { machine, frames } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  space.map(va(0x4000_0000 + 5 * MIB), pa(0x9000), RW);
  const before = frames.stats().freeFrames;
  const error = errorOf(() => space.mapRange(va(0x3fe0_0000), pa(0), 16 * MIB, RW));
  assertEquals(error.code, "PageAlreadyMapped");
  assertEquals(error.frame, 0x9000);
  assertEquals(space.mappings(va(0), 2 ** 47).length, 1);
  assertEquals(frames.stats().freeFrames, before);
  assertEquals(space.stats().pageTableFrames, 4);
});

Deno.test("AddressSpace.unmapRange() skips holes, frees tables and rejects straddled huge pages", () => {
  const { machine, frames } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  space.map(va(0x20_0000), pa(0x20_0000), RW, PAGE_SIZE_2M);
  space.mapRange(va(0x40_0000), pa(0), 16 * PAGE_SIZE_4K, RW);
  space.map(va(0x4000_0000), pa(0x4000_0000), RW, PAGE_SIZE_1G);
  const error = errorOf(() => space.unmapRange(va(0x30_0000), 0x20_0000));
  assertEquals(error.code, "ParentEntryHugePage");
  assertEquals(
    error.message,
    "Cannot unmap range 0x300000..0x500000: 2 MiB page 0x200000 extends beyond it",
  );
  assertEquals(space.mappings(va(0), GIB * 2).length, 18);
  assertEquals(
    codeOf(() => space.protectRange(va(0x4000_0000), 2 * MIB, RW)),
    "ParentEntryHugePage",
  );
  assertEquals(space.unmapRange(va(0), 2 * GIB), 18);
  assertEquals(space.stats().pageTableFrames, 1);
  assertEquals(space.unmapRange(va(0), 2 * GIB), 0);
});

Deno.test("AddressSpace.protectRange() changes every page and keeps frames and ownership", () => {
  const { machine, frames } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  space.mapRange(va(0x10_0000), pa(0x10_0000), 8 * PAGE_SIZE_4K, RW);
  space.mapPage(va(0x10_8000), Page.alloc(frames), RW);
  assertEquals(space.protectRange(va(0), 4 * MIB, { user: true }), 9);
  for (const mapping of space.mappings(va(0), 4 * MIB)) {
    assertEquals(mapping.flags, PAGE_USER | PAGE_NO_EXECUTE);
  }
  assertEquals(space.translate(va(0x10_7000)), 0x10_7000);
  assertEquals(space.mapping(va(0x10_8000))?.isOwned, true);
});

// ---------------------------------------------------------------------------
// TLB invalidation

Deno.test("AddressSpace invalidates the TLB so the MMU sees every change", () => {
  const { machine, mmu, frames, memory } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  const page = va(0x40_0000);
  memory.write32(pa(0x20_0000), 0xaaaa);
  memory.write32(pa(0x30_0000), 0xbbbb);
  space.map(page, pa(0x20_0000), RW);
  space.enablePaging();
  assertEquals(mmu.readVirt32(page), 0xaaaa); // now cached in the TLB

  // Remapping to another frame: the next read must see it.
  space.unmap(page);
  space.map(page, pa(0x30_0000), RW);
  assertEquals(mmu.readVirt32(page), 0xbbbb);

  // Write protection takes effect at once.
  mmu.writeVirt32(page, 0xcccc);
  space.protect(page, PAGE_NO_EXECUTE);
  assertThrows(() => mmu.writeVirt32(page, 1), PageFault, "protection supervisor write");

  // Unmapping takes effect at once.
  assertEquals(mmu.readVirt32(page), 0xcccc);
  space.unmap(page);
  assertThrows(() => mmu.readVirt32(page), PageFault, "not-present supervisor read");

  // Control: editing the entry behind the TLB's back leaves the stale translation.
  space.map(page, pa(0x20_0000), RW);
  assertEquals(mmu.readVirt32(page), 0xaaaa);
  const leaf = entryAt(memory, space, page, 1);
  const pteWord = findPte(memory, space, page);
  memory.u32[pteWord] = (leaf.low & 0xfff) | 0x30_0000;
  assertEquals(mmu.readVirt32(page), 0xaaaa, "the stale TLB entry still maps the old frame");
  machine.cpu.invlpg(page);
  assertEquals(mmu.readVirt32(page), 0xcccc);
  disablePaging(machine);
});

function findPte(memory: PhysicalMemory, space: AddressSpace, address: number): number {
  const pd = entryAt(memory, space, address, 2);
  const pt = (pd.high & 0xfffff) * 2 ** 32 + ((pd.low & 0xfffff000) >>> 0);
  return (pt + 8 * (Math.floor(address / PAGE_SIZE_4K) % 512)) / 4;
}

Deno.test("AddressSpace flushes the whole TLB once for ranges above the flush ceiling", () => {
  const { machine, mmu, frames } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  const pages = 2 * FLUSH_CEILING_PAGES;
  space.mapRange(va(0x40_0000), pa(0x20_0000), pages * PAGE_SIZE_4K, RW);
  space.enablePaging();
  for (let i = 0; i < pages; i++) mmu.writeVirt8(va(0x40_0000 + i * PAGE_SIZE_4K), i);
  const flushesBefore = mmu.tlb.stats.flushes;
  space.protectRange(va(0x40_0000), pages * PAGE_SIZE_4K, PAGE_NO_EXECUTE);
  assertEquals(mmu.tlb.stats.flushes, flushesBefore + 1);
  for (let i = 0; i < pages; i++) {
    assertThrows(() => mmu.writeVirt8(va(0x40_0000 + i * PAGE_SIZE_4K), 0), PageFault);
  }
  // A small range uses one INVLPG per page.
  const small = FLUSH_CEILING_PAGES - 1;
  const before = mmu.tlb.stats.flushes;
  space.protectRange(va(0x40_0000), small * PAGE_SIZE_4K, RW);
  assertEquals(mmu.tlb.stats.flushes, before + small);
  mmu.writeVirt8(va(0x40_0000), 7);
  disablePaging(machine);
});

Deno.test("AddressSpace invalidates a global page even when another space is active", () => {
  const { machine, mmu, frames } = boot();
  using kernel = AddressSpace.create(frames, machine.cpu);
  using other = AddressSpace.create(frames, machine.cpu);
  kernel.map(va(0x8000_0000_0000), pa(0x20_0000), RW | PAGE_GLOBAL);
  kernel.map(va(0x40_0000), pa(0x20_0000), RW);
  kernel.enablePaging();
  mmu.readVirt8(va(0x8000_0000_0000));
  mmu.readVirt8(va(0x40_0000));
  other.activate(); // keeps the global entry, drops the other
  assertEquals(mmu.tlb.entries().map((entry) => entry.virtAddr), [0x8000_0000_0000]);
  kernel.protect(va(0x40_0000), PAGE_NO_EXECUTE); // not active, not global: nothing to do
  assertEquals(mmu.tlb.size, 1);
  kernel.unmap(va(0x8000_0000_0000)); // global: INVLPG although kernel is not active
  assertEquals(mmu.tlb.size, 0);
  kernel.activate();
  disablePaging(machine);
});

// ---------------------------------------------------------------------------
// Page tables and the frame allocator

Deno.test("AddressSpace frees each page table when its last entry is unmapped", () => {
  const { machine, frames, memory } = boot();
  const free = frames.stats().freeFrames;
  using space = AddressSpace.create(frames, machine.cpu);
  space.map(va(0x40_0000), pa(0x1000), RW);
  space.map(va(0x40_1000), pa(0x2000), RW);
  space.map(va(0x4000_0000), pa(0x3000), RW);
  assertEquals(space.stats().pageTableFrames, 1 + 1 + 2 + 2);
  // The PD entry above the first PT counts its two live entries in bits 61:52.
  assertEquals((entryAt(memory, space, 0x40_0000, 2).high >>> 20) & 0x3ff, 2);
  assertEquals((entryAt(memory, space, 0x40_0000, 3).high >>> 20) & 0x3ff, 1);
  assertEquals((entryAt(memory, space, 0x40_0000, 4).high >>> 20) & 0x3ff, 2);
  space.unmap(va(0x40_0000));
  assertEquals(space.stats().pageTableFrames, 6);
  space.unmap(va(0x40_1000));
  assertEquals(space.stats().pageTableFrames, 4); // the PT and its PD are gone
  space.unmap(va(0x4000_0000));
  assertEquals(space.stats().pageTableFrames, 1);
  assertEquals(frames.stats().freeFrames, free - 1);
  assertEquals(heldFrames(frames).length, 1); // the PML4
});

Deno.test("AddressSpace keeps the recursive entry out of map, unmap and dispose", () => {
  const { machine, mmu, frames, memory } = boot();
  const free = frames.stats().freeFrames;
  const space = AddressSpace.create(frames, machine.cpu, { recursiveIndex: 510 });
  const recursive = 510 * 2 ** 39;
  assert((entryAt(memory, space, recursive, 4).low & PTE_SW_FOREIGN) !== 0);
  assertEquals(
    errorOf(() => space.map(va(recursive + 0x1000), pa(0), RW)).message,
    "Cannot map page 0xffffff0000001000: inside the recursive mapping",
  );
  assertEquals(codeOf(() => space.unmapRange(va(2 ** 47), 2 ** 47)), "InvalidAddress");
  space.map(va(0x1000), pa(0x9000), RW);
  space.enablePaging();
  // The PML4 appears at 510/510/510/510; its entry 0 points at the PDPT.
  const pml4View = recursive + 510 * 2 ** 30 + 510 * 2 ** 21 + 510 * 2 ** 12;
  assertEquals(mmu.readVirt32(va(pml4View + 8 * 510)) & 0xfffff000, space.pml4Addr);
  assertEquals(space.translate(va(pml4View)), space.pml4Addr);
  assertEquals(space.stats().pageTableFrames, 4);
  assertEquals(space.mappings(va(0), 2 ** 48).length, 1);
  disablePaging(machine);
  space[Symbol.dispose]();
  assertEquals(frames.stats().freeFrames, free);
});

Deno.test("AddressSpace cannot be disposed while active, and not used after disposal", () => {
  const { machine, frames } = boot();
  const space = AddressSpace.create(frames, machine.cpu);
  space.activate();
  assertEquals(codeOf(() => space[Symbol.dispose]()), "FrameInUse");
  machine.cpu.writeCr3(0);
  space[Symbol.dispose]();
  space[Symbol.dispose]();
  assertEquals(codeOf(() => space.map(va(0), pa(0), RW)), "UseAfterDispose");
  assertEquals(codeOf(() => space.activate()), "UseAfterDispose");
});

Deno.test("AddressSpace lifecycle: random maps of every size, unmaps, dispose; no frame lost", () => {
  const { machine, frames } = boot(256 * MIB);
  const start = frames.stats();
  const rng = new Xorshift32(0x5eed_1234);
  const space = AddressSpace.create(frames, machine.cpu);
  // The model: one 1 GiB slot per mapping group, so groups never overlap.
  const groups: { start: number; bytes: number; size: PageSizeBytes; owned: boolean }[] = [];
  const slots = new Set<number>();
  for (let i = 0; i < 120; i++) {
    let slot: number;
    do slot = rng.below(4096); while (slots.has(slot));
    slots.add(slot);
    // Slots spread over both halves of the address space.
    const slotBase = (slot < 2048 ? slot : 2 ** 17 + slot) * GIB;
    const kind = rng.below(10);
    const size = kind < 6 ? PAGE_SIZE_4K : kind < 9 ? PAGE_SIZE_2M : PAGE_SIZE_1G;
    const maxPages = size === PAGE_SIZE_1G ? 1 : size === PAGE_SIZE_2M ? 512 : 1024;
    const pages = 1 + rng.below(maxPages);
    const firstPage = rng.below(Math.max(1, Math.floor(GIB / size) - pages + 1));
    const groupStart = slotBase + firstPage * size;
    const bytes = Math.min(pages * size, slotBase + GIB - groupStart);
    const owned = size === PAGE_SIZE_4K && rng.below(4) === 0;
    if (owned) {
      for (let offset = 0; offset < Math.min(bytes, 64 * PAGE_SIZE_4K); offset += PAGE_SIZE_4K) {
        space.mapPage(va(groupStart + offset), Page.alloc(frames), RW);
      }
      groups.push({ start: groupStart, bytes: Math.min(bytes, 64 * PAGE_SIZE_4K), size, owned });
    } else {
      const frame = (1 + rng.below(1000)) * PAGE_SIZE_1G; // raw frames: not RAM, not owned
      space.mapRange(va(groupStart), pa(frame), bytes, RW, size);
      groups.push({ start: groupStart, bytes, size, owned });
    }
  }
  const mapped = space.stats();
  assert(
    mapped.pages4K > 1000 && mapped.pages2M > 100 && mapped.pages1G > 3,
    JSON.stringify(mapped),
  );
  // Unmap about a third, some whole, some in part (a page at each end).
  for (const group of groups) {
    const choice = rng.below(3);
    if (choice === 0) {
      space.unmapRange(va(group.start), group.bytes);
      assertEquals(space.translate(va(group.start)), undefined);
    } else if (choice === 1 && group.bytes > 2 * group.size) {
      space.unmap(va(group.start), group.size);
      space.unmap(va(group.start + group.bytes - group.size), group.size);
      assertEquals(space.translate(va(group.start + group.size)) !== undefined, true);
    }
  }
  space[Symbol.dispose]();
  assertEquals(frames.stats(), start);
  assertEquals(heldFrames(frames), []);
  frames.checkInvariants();
});

Deno.test("AddressSpace map and unmap of single pages agree with a model while tables come and go", () => {
  // Few pages in few 2 MiB regions, so that tables are freed and their frames
  // reused for other regions all the time: map and unmap must follow the
  // tables as they are now, never as they were at an earlier call.
  const { machine, frames, memory } = boot(64 * MIB);
  const start = frames.stats();
  const rng = new Xorshift32(0x2545f491);
  const space = AddressSpace.create(frames, machine.cpu);
  space.enablePaging();
  const regions = [0x7f12_3440_0000, 0x7f12_3460_0000, 0x4000_0000, 0x8000_1000_0000];
  const pages: number[] = [];
  for (const region of regions) for (let i = 0; i < 3; i++) pages.push(region + i * 0x5000);
  const model = new Map<number, { frame: number; user: boolean }>();
  const ownedFrames = new Set<number>();
  for (let op = 0; op < 3000; op++) {
    const page = pages[rng.below(pages.length)];
    const mapped = model.get(page);
    if (mapped === undefined) {
      const user = rng.below(2) === 0;
      const flags = RW | (user ? PAGE_USER : 0);
      if (rng.below(4) === 0) {
        const owned = Page.alloc(frames);
        const frame = owned.physAddr;
        space.mapPage(va(page), owned, flags);
        ownedFrames.add(frame);
        model.set(page, { frame, user });
      } else {
        const frame = (0x100 + rng.below(0x100)) * PAGE_SIZE_4K;
        space.map(va(page), pa(frame), flags);
        model.set(page, { frame, user });
      }
      assertEquals(errorOf(() => space.map(va(page), pa(0), RW)).code, "PageAlreadyMapped");
    } else {
      // Touch it through the MMU first: the unmap must take it out of the TLB.
      if (rng.below(2) === 0) machine.mmu.readVirt32(va(page));
      assertEquals(space.unmap(va(page)), mapped.frame);
      ownedFrames.delete(mapped.frame);
      model.delete(page);
      assertEquals(codeOf(() => space.unmap(va(page))), "PageNotMapped");
      assertThrows(() => machine.mmu.readVirt32(va(page)), PageFault);
    }
    for (const each of pages) {
      const entry = model.get(each);
      assertEquals(
        space.translate(va(each + 8)),
        entry === undefined ? undefined : entry.frame + 8,
      );
      if (entry !== undefined && entry.user) {
        // U/S on every link down to a user page.
        for (let level = 4; level >= 2; level--) {
          assert((entryAt(memory, space, each, level).low & PTE_US) !== 0, `U/S at ${level}`);
        }
      }
    }
  }
  for (const page of model.keys()) space.unmap(va(page));
  assertEquals(space.stats().pageTableFrames, 1, "every table freed with its last page");
  disablePaging(machine);
  space[Symbol.dispose]();
  assertEquals(frames.stats(), start);
  assertEquals(heldFrames(frames), []);
});

// ---------------------------------------------------------------------------
// U/S on upper-level entries, and a shared kernel half

Deno.test("AddressSpace sets U/S on upper-level entries only on the path to a user page", () => {
  const { frames, machine, mmu } = boot();
  const space = AddressSpace.create(frames, machine.cpu);
  const kernelPage = 2 ** 47 + 0x40_0000; // 0xffff800000400000
  const upperUs = (address: number) =>
    [4, 3, 2].map((level) => (entryAt(frames.memory, space, address, level).low & PTE_US) !== 0);
  // Supervisor pages, in either half: no U/S anywhere on the path.
  space.map(va(kernelPage), pa(0x20_0000), RW);
  space.map(va(0x40_0000), pa(0x20_0000), RW);
  assertEquals(upperUs(kernelPage), [false, false, false]);
  assertEquals(upperUs(0x40_0000), [false, false, false]);
  // A user page below the same tables grants U/S on its path, and only there.
  space.map(va(0x40_1000), pa(0x20_1000), RW | PAGE_USER);
  assertEquals(upperUs(0x40_0000), [true, true, true]);
  assertEquals(upperUs(kernelPage), [false, false, false]);
  // protect() and mapRange() grant it too.
  space.map(va(0x8000_0000), pa(0x20_0000), RW);
  space.protect(va(0x8000_0000), RW | PAGE_USER);
  assertEquals(upperUs(0x8000_0000), [true, true, true]);
  space.mapRange(va(0x1_0000_0000), pa(0x40_0000), 2 * MIB, RW | PAGE_USER, PAGE_SIZE_2M);
  assertEquals(upperUs(0x1_0000_0000).slice(0, 2), [true, true]);
  // At CPL 3 the user page is reachable and a supervisor-only path is not.
  space.enablePaging();
  machine.cpu.cpl = 3;
  try {
    assertEquals(mmu.translate(va(0x40_1000), "read"), 0x20_1000);
    const fault = assertThrows(() => mmu.translate(va(kernelPage), "read"), PageFault);
    assertEquals(fault.errorCode & 0x4, 0x4, "a user-mode access");
  } finally {
    machine.cpu.cpl = 0;
    disablePaging(machine);
  }
  space[Symbol.dispose]();
});

Deno.test("AddressSpace.mappings() and stats() leave out a shared kernel half, which mapping() still reads", () => {
  const { frames, machine } = boot();
  const kernel = AddressSpace.create(frames, machine.cpu);
  const kernelPage = va(2 ** 47 + 0x40_0000);
  kernel.map(kernelPage, pa(0x20_0000), RW);
  const user = AddressSpace.create(frames, machine.cpu, { kernelHalfOf: kernel });
  user.map(va(0x40_0000), pa(0x30_0000), RW | PAGE_USER);
  // The shared PML4 entry is FOREIGN: its tables are the kernel's, not counted or listed here.
  assertEquals(user.mappings(va(0), 2 ** 48).map((leaf) => leaf.virtAddr), [va(0x40_0000)]);
  assertEquals(user.stats(), {
    pageTableFrames: 4,
    pages4K: 1,
    pages2M: 0,
    pages1G: 0,
    ownedPages: 0,
  });
  // A single lookup walks the link, as the MMU does.
  assertEquals(user.mapping(kernelPage)?.physAddr, pa(0x20_0000));
  assertEquals(kernel.mappings(va(0), 2 ** 48).map((leaf) => leaf.virtAddr), [kernelPage]);
  user[Symbol.dispose]();
  kernel[Symbol.dispose]();
});

Deno.test("AddressSpace.create() with kernelHalfOf shares the kernel half and never frees it", () => {
  const { frames, machine } = boot();
  const kernel = AddressSpace.create(frames, machine.cpu, { recursiveIndex: 510 });
  const kernelPage = va(2 ** 47 + 0x40_0000);
  kernel.map(kernelPage, pa(0x20_0000), RW);
  const before = frames.stats();
  const user = AddressSpace.create(frames, machine.cpu, {
    recursiveIndex: 510,
    kernelHalfOf: kernel,
  });
  assertEquals(user.translate(kernelPage), 0x20_0000);
  const shared = entryAt(frames.memory, user, kernelPage, 4);
  assertEquals(shared.low & PTE_SW_FOREIGN, PTE_SW_FOREIGN);
  // The user space's recursive entry points at its own PML4, not the kernel's.
  const recursive = entryAt(frames.memory, user, 510 * 2 ** 39, 4);
  assertEquals((recursive.low & 0xfffff000) >>> 0, user.pml4Addr);
  // The shared tables are the kernel's: not changed through the user space.
  assertEquals(errorOf(() => user.map(va(2 ** 47 + 0x40_1000), pa(0), RW)).code, "InvalidAddress");
  user.map(va(0x40_0000), pa(0x20_0000), RW | PAGE_USER);
  user[Symbol.dispose]();
  assertEquals(frames.stats(), before);
  assertEquals(kernel.translate(kernelPage), 0x20_0000);
  kernel[Symbol.dispose]();
});
