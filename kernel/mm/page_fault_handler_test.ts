import {
  type FrameNumber,
  Machine,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  PageFault,
  type PhysAddr,
  type VirtAddr,
} from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";
import { panicReason } from "../panic.ts";
import { assert, assertEquals, assertThrows } from "../../testing/mod.ts";
import {
  AddressSpace,
  MappingError,
  PAGE_COPY_ON_WRITE,
  PAGE_NO_EXECUTE,
  PAGE_WRITABLE,
} from "./address_space.ts";
import { bootTestMachine, disablePaging } from "./_test_machine.ts";
import type { FrameAllocator } from "./frame_allocator.ts";
import { heldFrames, Page } from "./page.ts";
import {
  KernelPageFaultHandler,
  MAX_LAZY_REGIONS,
  PAGE_FAULT_STATE_MAGIC,
  type PageFaultEvent,
  UnhandledPageFault,
} from "./page_fault_handler.ts";

const RW = PAGE_WRITABLE | PAGE_NO_EXECUTE;
const va = (value: number) => value as VirtAddr;
const pa = (value: number) => value as PhysAddr;
/** A fresh 64 MiB machine, its frame allocator, and the kernel's fault handler. */
function boot() {
  const machine = bootTestMachine();
  const faults = KernelPageFaultHandler.install(machine.mmu, machine.cpu, machine.frames);
  return { ...machine, faults };
}

function frameOf(space: AddressSpace, address: number): FrameNumber {
  const mapping = space.mapping(va(address));
  if (mapping === undefined) throw new Error(`${address.toString(16)} is not mapped`);
  return (mapping.physAddr / PAGE_SIZE_4K) as FrameNumber;
}

// ---------------------------------------------------------------------------
// Demand-zero

Deno.test("KernelPageFaultHandler maps a zeroed frame on a read in a lazy region", () => {
  const { machine, mmu, frames, faults, memory } = boot();
  // Dirty the frame the allocator will hand out next, to see it zeroed.
  const next = frames.allocate();
  memory.fill(pa(next * PAGE_SIZE_4K), PAGE_SIZE_4K, 0x5a);
  frames.free(next);
  using space = AddressSpace.create(frames, machine.cpu);
  faults.declareLazy(space, va(0x4000_0000), 16 * PAGE_SIZE_4K, { writable: true });
  space.enablePaging();
  const free = frames.stats().freeFrames;
  assertEquals(mmu.readVirt32(va(0x4000_3ffc)), 0);
  assertEquals(faults.counts.demandZero, 1);
  assertEquals(space.mapping(va(0x4000_3000))?.isOwned, true);
  // One data frame (and a PDPT, a PD and a PT).
  assertEquals(frames.stats().freeFrames, free - 4);
  assert(mmu.readVirtBytes(va(0x4000_3000), PAGE_SIZE_4K).every((byte) => byte === 0));
  mmu.writeVirt32(va(0x4000_3000), 0xdead_beef);
  assertEquals(mmu.readVirt32(va(0x4000_3000)), 0xdead_beef);
  // A write fault in another page of the region maps that page only.
  mmu.writeVirt8(va(0x4000_f000), 1);
  assertEquals(faults.counts.demandZero, 2);
  assertEquals(space.stats().ownedPages, 2);
  assertEquals(mmu.pageFaults, 2);
  disablePaging(machine);
  faults.detach(space);
});

Deno.test("KernelPageFaultHandler gives a lazy read-only page, then refuses the write", () => {
  const { machine, mmu, frames, faults } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  faults.declareLazy(space, va(0x10_0000), PAGE_SIZE_4K, PAGE_NO_EXECUTE);
  space.enablePaging();
  const error = assertThrows(() => mmu.writeVirt8(va(0x10_0010), 1), UnhandledPageFault);
  assertEquals(
    error.message,
    "Unhandled page fault at 0x100010: protection supervisor write (error code 0x3)",
  );
  assertEquals(faults.counts, {
    demandZero: 1,
    copyOnWriteCopies: 0,
    copyOnWriteReuses: 0,
    unhandled: 1,
  });
  assertEquals(mmu.readVirt8(va(0x10_0010)), 0);
  disablePaging(machine);
});

Deno.test("KernelPageFaultHandler gives the frame back when no page table can be had", () => {
  const { machine, mmu, frames, faults } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  faults.declareLazy(space, va(0x4000_0000), PAGE_SIZE_4K, RW);
  space.enablePaging();
  const taken: FrameNumber[] = [];
  while (frames.stats().freeFrames > 2) taken.push(frames.allocate());
  // One frame for the data page, one for a PDPT, none for the PD.
  const error = assertThrows(() => mmu.readVirt8(va(0x4000_0000)), MappingError);
  assertEquals(error.code, "FrameAllocationFailed");
  assertEquals(frames.stats().freeFrames, 2);
  assertEquals(space.stats().pageTableFrames, 1);
  for (const frame of taken) frames.free(frame);
  assertEquals(mmu.readVirt8(va(0x4000_0000)), 0);
  disablePaging(machine);
});

Deno.test("KernelPageFaultHandler keeps lazy regions per address space, in its RAM frame", () => {
  const { machine, frames, faults, memory } = boot();
  using a = AddressSpace.create(frames, machine.cpu);
  using b = AddressSpace.create(frames, machine.cpu);
  faults.declareLazy(a, va(0x1000), 2 * PAGE_SIZE_4K, RW);
  faults.declareLazy(b, va(0x1000), 4 * PAGE_SIZE_4K, RW);
  faults.declareLazy(a, va(0x8000_0000_0000), PAGE_SIZE_2M, RW);
  assertEquals(memory.read32(faults.stateAddr), PAGE_FAULT_STATE_MAGIC);
  assertEquals(memory.read32(pa(faults.stateAddr + 4)), 3);
  assertEquals(faults.lazyRegions(a).map((r) => [r.start, r.end]), [
    [0x1000, 0x3000],
    [0x8000_0000_0000, 0x8000_0020_0000],
  ]);
  assertEquals(faults.lazyRegions(b)[0].pml4Addr, b.pml4Addr);
  const overlap = assertThrows(
    () => faults.declareLazy(a, va(0x2000), PAGE_SIZE_4K, RW),
    MappingError,
  );
  assertEquals(overlap.code, "InvalidAddress");
  assertEquals(
    overlap.message,
    "Cannot declare lazy region 0x2000..0x3000: overlaps lazy region 0x1000..0x3000",
  );
  assertEquals(
    assertThrows(() => faults.declareLazy(a, va(0x1234), PAGE_SIZE_4K, RW), MappingError).code,
    "InvalidAddress",
  );
  faults.detach(a);
  assertEquals(faults.lazyRegions().length, 1);
  assertEquals(memory.read32(pa(faults.stateAddr + 4)), 1);
});

Deno.test("KernelPageFaultHandler's region table holds 127 regions", () => {
  const { machine, frames, faults } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  for (let i = 0; i < MAX_LAZY_REGIONS; i++) {
    faults.declareLazy(space, va(i * 2 * PAGE_SIZE_4K), PAGE_SIZE_4K, RW);
  }
  const full = assertThrows(
    () => faults.declareLazy(space, va(0x1000_0000), PAGE_SIZE_4K, RW),
    KernelError,
  );
  assertEquals(full.code, "OutOfMemory");
  assertEquals(
    full.message,
    "Cannot declare lazy region at 0x10000000: region table full (127 regions)",
  );
});

Deno.test("KernelPageFaultHandler forgets the regions of a disposed address space", () => {
  const { machine, mmu, frames, faults } = boot();
  const old = AddressSpace.create(frames, machine.cpu);
  faults.declareLazy(old, va(0x1000), PAGE_SIZE_4K, RW);
  const pml4 = old.pml4Addr;
  old[Symbol.dispose]();
  // The next address space gets the same PML4 frame but none of the old regions.
  using fresh = AddressSpace.create(frames, machine.cpu);
  assertEquals(fresh.pml4Addr, pml4);
  fresh.enablePaging();
  assertThrows(() => mmu.readVirt8(va(0x1000)), UnhandledPageFault);
  faults.attach(fresh);
  assertEquals(faults.lazyRegions().length, 0);
  disablePaging(machine);
});

// ---------------------------------------------------------------------------
// Unhandled faults

Deno.test("KernelPageFaultHandler reports any other fault with the address, code and access", () => {
  const { machine, mmu, frames, faults } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  space.map(va(0x20_0000), pa(0x20_0000), RW);
  space.enablePaging();
  const nullRead = assertThrows(() => mmu.readVirt32(va(0)), UnhandledPageFault);
  assertEquals(
    nullRead.message,
    "Unhandled page fault at 0x0: not-present supervisor read (error code 0x0)",
  );
  assertEquals(nullRead.address, 0);
  assertEquals(nullRead.errorCode, 0);
  assert(nullRead.cause instanceof PageFault);
  assertEquals(
    panicReason(nullRead),
    "UnhandledPageFault: Unhandled page fault at 0x0: not-present supervisor read (error code 0x0)",
  );
  assertEquals(
    assertThrows(() => mmu.writeVirt8(va(0xffff_8000_0000 + 8), 1), UnhandledPageFault).message,
    "Unhandled page fault at 0xffffffff80000008: not-present supervisor write (error code 0x2)",
  );
  assertEquals(
    assertThrows(() => mmu.readVirt8(va(0x20_0000), "fetch"), UnhandledPageFault).message,
    "Unhandled page fault at 0x200000: protection supervisor fetch (error code 0x11)",
  );
  machine.cpu.cpl = 3;
  assertEquals(
    assertThrows(() => mmu.readVirt8(va(0x20_0000)), UnhandledPageFault).message,
    "Unhandled page fault at 0x200000: protection user read (error code 0x5)",
  );
  machine.cpu.cpl = 0;
  assertEquals(faults.counts.unhandled, 4);
  disablePaging(machine);
});

Deno.test("KernelPageFaultHandler treats faults in an unknown address space as unhandled", () => {
  const { machine, mmu, frames, faults } = boot();
  using known = AddressSpace.create(frames, machine.cpu);
  using unknown = AddressSpace.create(frames, machine.cpu);
  faults.declareLazy(known, va(0x1000), PAGE_SIZE_4K, RW);
  unknown.enablePaging();
  assertThrows(() => mmu.readVirt8(va(0x1000)), UnhandledPageFault, "not-present");
  known.activate();
  assertEquals(mmu.readVirt8(va(0x1000)), 0);
  disablePaging(machine);
});

Deno.test("KernelPageFaultHandler uninstalls itself and frees its frame when disposed", () => {
  const { machine, mmu, frames, faults } = boot();
  using space = AddressSpace.create(frames, machine.cpu);
  const state = faults.stateAddr;
  assertEquals(frames.stateOf((state / PAGE_SIZE_4K) as FrameNumber), "allocated");
  faults[Symbol.dispose]();
  faults[Symbol.dispose]();
  assertEquals(frames.stateOf((state / PAGE_SIZE_4K) as FrameNumber), "free");
  space.enablePaging();
  // The MMU's own PageFault: no handler any more.
  assertThrows(() => mmu.readVirt8(va(0)), PageFault, "Page fault at 0x0");
  assertEquals(
    assertThrows(() => faults.declareLazy(space, va(0), PAGE_SIZE_4K, RW), KernelError).code,
    "UseAfterDispose",
  );
  disablePaging(machine);
});

// ---------------------------------------------------------------------------
// Copy-on-write (after xv6's cowtest and KeOS's fork tests)

/** Maps `pageCount` owned, writable pages at `base` and fills each with its index. */
function populate(
  mmu: Machine["mmu"],
  space: AddressSpace,
  frames: FrameAllocator,
  base: number,
  pageCount: number,
): void {
  for (let i = 0; i < pageCount; i++) {
    space.mapPage(va(base + i * PAGE_SIZE_4K), Page.alloc(frames), RW);
  }
  for (let i = 0; i < pageCount; i++) mmu.writeVirt32(va(base + i * PAGE_SIZE_4K + 16), 0x1000 + i);
}

Deno.test("copy-on-write: share, write from each side, contents stay separate, frames freed", () => {
  const { machine, mmu, frames, faults } = boot();
  const startFrames = frames.stats();
  const PAGES = 8;
  const BASE = 0x7000_0000_0000;
  const parent = AddressSpace.create(frames, machine.cpu);
  const child = AddressSpace.create(frames, machine.cpu);
  parent.enablePaging();
  populate(mmu, parent, frames, BASE, PAGES);

  assertEquals(faults.shareCopyOnWrite(parent, child, va(BASE), 64 * PAGE_SIZE_4K), PAGES);
  for (let i = 0; i < PAGES; i++) {
    const address = BASE + i * PAGE_SIZE_4K;
    const frame = frameOf(parent, address);
    assertEquals(frameOf(child, address), frame, "same frame in both");
    assertEquals(frames.metadata.refcount(frame), 2);
    for (const space of [parent, child]) {
      assertEquals(space.mapping(va(address))?.flags, PAGE_COPY_ON_WRITE | PAGE_NO_EXECUTE);
    }
  }
  const shared = frameOf(parent, BASE);

  // The child reads the parent's data without faulting.
  child.activate();
  const faultsBefore = mmu.pageFaults;
  for (let i = 0; i < PAGES; i++) {
    assertEquals(mmu.readVirt32(va(BASE + i * PAGE_SIZE_4K + 16)), 0x1000 + i);
  }
  assertEquals(mmu.pageFaults, faultsBefore);

  // The child writes page 0: it gets a copy; the parent keeps the original.
  mmu.writeVirt32(va(BASE + 16), 0xc0c0);
  assertEquals(faults.counts.copyOnWriteCopies, 1);
  assert(frameOf(child, BASE) !== shared, "the child has its own frame");
  assertEquals(mmu.readVirt32(va(BASE + 20)), 0, "the copy keeps the rest of the page");
  assertEquals(frames.metadata.refcount(shared), 1);
  assertEquals(child.mapping(va(BASE))?.flags, RW);

  // The parent writes page 0: it holds the last reference, so no copy.
  parent.activate();
  assertEquals(mmu.readVirt32(va(BASE + 16)), 0x1000, "the parent still sees its data");
  mmu.writeVirt32(va(BASE + 16), 0xaaaa);
  assertEquals(faults.counts.copyOnWriteReuses, 1);
  assertEquals(faults.counts.copyOnWriteCopies, 1);
  assertEquals(frameOf(parent, BASE), shared);

  // The parent writes page 1 first: it copies; then the child reuses its frame.
  mmu.writeVirt32(va(BASE + PAGE_SIZE_4K + 16), 0xbbbb);
  child.activate();
  mmu.writeVirt32(va(BASE + PAGE_SIZE_4K + 16), 0xdddd);
  assertEquals(faults.counts.copyOnWriteCopies, 2);
  assertEquals(faults.counts.copyOnWriteReuses, 2);

  // Contents stayed separate.
  assertEquals(mmu.readVirt32(va(BASE + 16)), 0xc0c0);
  assertEquals(mmu.readVirt32(va(BASE + PAGE_SIZE_4K + 16)), 0xdddd);
  parent.activate();
  assertEquals(mmu.readVirt32(va(BASE + 16)), 0xaaaa);
  assertEquals(mmu.readVirt32(va(BASE + PAGE_SIZE_4K + 16)), 0xbbbb);
  for (let i = 2; i < PAGES; i++) {
    assertEquals(frames.metadata.refcount(frameOf(parent, BASE + i * PAGE_SIZE_4K)), 2);
  }

  // Everything goes back: the child exits, then the parent.
  disablePaging(machine);
  faults.detach(child);
  child[Symbol.dispose]();
  for (let i = 2; i < PAGES; i++) {
    assertEquals(frames.metadata.refcount(frameOf(parent, BASE + i * PAGE_SIZE_4K)), 1);
  }
  faults.detach(parent);
  parent[Symbol.dispose]();
  assertEquals(frames.stats(), startFrames);
  assertEquals(heldFrames(frames).map((f) => f.physAddr), [faults.stateAddr]);
  frames.checkInvariants();
});

Deno.test("copy-on-write: three sharers each write and each ends up with private data", () => {
  const { machine, mmu, frames, faults } = boot();
  const startFrames = frames.stats();
  const BASE = 0x40_0000;
  const spaces = [0, 1, 2].map(() => AddressSpace.create(frames, machine.cpu));
  spaces[0].enablePaging();
  populate(mmu, spaces[0], frames, BASE, 4);
  faults.shareCopyOnWrite(spaces[0], spaces[1], va(BASE), 4 * PAGE_SIZE_4K);
  faults.shareCopyOnWrite(spaces[1], spaces[2], va(BASE), 4 * PAGE_SIZE_4K);
  assertEquals(frames.metadata.refcount(frameOf(spaces[0], BASE)), 3);
  spaces.forEach((space, index) => {
    space.activate();
    for (let page = 0; page < 4; page++) {
      const address = va(BASE + page * PAGE_SIZE_4K + 16);
      assertEquals(mmu.readVirt32(address), 0x1000 + page);
      mmu.writeVirt32(address, 0x100 * index + page);
    }
  });
  assertEquals(faults.counts.copyOnWriteCopies, 8); // the first two writers copy each page
  assertEquals(faults.counts.copyOnWriteReuses, 4); // the last one reuses the original
  spaces.forEach((space, index) => {
    space.activate();
    for (let page = 0; page < 4; page++) {
      assertEquals(mmu.readVirt32(va(BASE + page * PAGE_SIZE_4K + 16)), 0x100 * index + page);
      assertEquals(frames.metadata.refcount(frameOf(space, BASE + page * PAGE_SIZE_4K)), 1);
    }
  });
  disablePaging(machine);
  for (const space of spaces) space[Symbol.dispose]();
  assertEquals(frames.stats(), startFrames);
});

Deno.test("copy-on-write: a read-only page is shared without the copy-on-write mark", () => {
  const { machine, mmu, frames, faults } = boot();
  using a = AddressSpace.create(frames, machine.cpu);
  using b = AddressSpace.create(frames, machine.cpu);
  a.mapPage(va(0x1000), Page.alloc(frames), PAGE_NO_EXECUTE);
  faults.shareCopyOnWrite(a, b, va(0x1000), PAGE_SIZE_4K);
  assertEquals(b.mapping(va(0x1000))?.flags, PAGE_NO_EXECUTE);
  b.enablePaging();
  assertThrows(
    () => mmu.writeVirt8(va(0x1000), 1),
    UnhandledPageFault,
    "protection supervisor write",
  );
  disablePaging(machine);
});

Deno.test("copy-on-write: sharing refuses raw, huge or clashing pages before changing anything", () => {
  const { machine, frames, faults } = boot();
  using a = AddressSpace.create(frames, machine.cpu);
  using b = AddressSpace.create(frames, machine.cpu);
  a.mapPage(va(0x1000), Page.alloc(frames), RW);
  a.map(va(0x2000), pa(0x9000), RW);
  const raw = assertThrows(
    () => faults.shareCopyOnWrite(a, b, va(0), 4 * PAGE_SIZE_4K),
    MappingError,
  );
  assertEquals(raw.code, "InvalidAddress");
  assertEquals(
    raw.message,
    "Cannot share page 0x2000 copy-on-write: not a 4 KiB page the address space owns",
  );
  assertEquals(a.mapping(va(0x1000))?.flags, RW, "unchanged");
  b.map(va(0x1000), pa(0x7000), RW);
  const clash = assertThrows(
    () => faults.shareCopyOnWrite(a, b, va(0x1000), PAGE_SIZE_4K),
    MappingError,
  );
  assertEquals(clash.code, "PageAlreadyMapped");
  assertEquals(clash.frame, 0x7000);
  assertEquals(frames.metadata.refcount(frameOf(a, 0x1000)), 1);
});

Deno.test("KernelPageFaultHandler tells its observer what it did about each fault", () => {
  const { machine, mmu, frames, faults } = boot();
  const events: PageFaultEvent[] = [];
  faults.setObserver((event) => events.push(event));
  const parent = AddressSpace.create(frames, machine.cpu);
  const child = AddressSpace.create(frames, machine.cpu);
  faults.declareLazy(parent, va(0x40_0000), PAGE_SIZE_4K, { writable: true });
  parent.enablePaging();
  mmu.writeVirt8(va(0x40_0010), 7);
  const first = frameOf(parent, 0x40_0000) * PAGE_SIZE_4K;
  faults.shareCopyOnWrite(parent, child, va(0x40_0000), PAGE_SIZE_4K);
  mmu.writeVirt8(va(0x40_0010), 8);
  const copy = frameOf(parent, 0x40_0000) * PAGE_SIZE_4K;
  child.activate();
  mmu.writeVirt8(va(0x40_0010), 9);
  assertThrows(() => mmu.readVirt8(va(0x50_0000)), UnhandledPageFault);
  assertEquals(events, [
    { kind: "demand-zero", address: va(0x40_0010), errorCode: 0x2, frame: pa(first) },
    {
      kind: "copy-on-write-copy",
      address: va(0x40_0010),
      errorCode: 0x3,
      from: pa(first),
      to: pa(copy),
      refcountBefore: 2,
      refcountAfter: 1,
    },
    { kind: "copy-on-write-reuse", address: va(0x40_0010), errorCode: 0x3, frame: pa(first) },
    { kind: "unhandled", address: va(0x50_0000), errorCode: 0x0 },
  ]);
  // Without an observer nothing is reported (and nothing is built).
  faults.setObserver(undefined);
  mmu.readVirt8(va(0x40_0000));
  assertEquals(events.length, 4);
  disablePaging(machine);
  faults.detach(parent);
  faults.detach(child);
  parent[Symbol.dispose]();
  child[Symbol.dispose]();
});
