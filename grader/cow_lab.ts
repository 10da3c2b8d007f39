/**
 * The copy-on-write lab (`--cow`): checks a {@linkcode PageFaultPolicy}
 * installed as the MMU's #PF handler on a 32 MiB machine, with the stock
 * frame allocator and stock address spaces. The grader forks address
 * spaces with `shareCopyOnWrite`, writes through the MMU from every side,
 * and checks each side's contents against its own model, the frames
 * (a copy is a new frame, the last writer keeps its frame), the reference
 * counts (each frame's count equals the mappings of it), the policy's
 * counts, and that every frame comes back when the spaces are gone.
 *
 * @module
 */

import {
  formatVirtAddr,
  type FrameNumber,
  hex,
  PAGE_SIZE_4K,
  PageFault,
  type PhysAddr,
  type VirtAddr,
} from "../hal/mod.ts";
import {
  AddressSpace,
  KernelError,
  Page,
  PAGE_COPY_ON_WRITE,
  PAGE_NO_EXECUTE,
  PAGE_USER,
  PAGE_WRITABLE,
  type PageFaultPolicy,
  type PageFaultPolicyFactory,
  UnhandledPageFault,
} from "../sdk/mod.ts";
import { counted, describeError, expectKernelError, expectSuccess } from "./_calls.ts";
import {
  allocatedFrames,
  type LabMachine,
  newLabMachine,
  pagingOff,
  releaseGraderFrames,
  reportFrameLeaks,
  takeFramesUntil,
} from "./_lab_machine.ts";
import { type Check, type CheckContext, expect, fail } from "./check.ts";

const RAM_BYTES = 32 * 2 ** 20;
/** Where the lab's pages live in every address space. */
const BASE_VA = 0x40_0000_0000;
const PAGE_FLAGS = PAGE_WRITABLE | PAGE_USER | PAGE_NO_EXECUTE;

/** One address space of a check and the grader's model of its pages' contents. */
interface Space {
  /** A name for messages: `parent`, `child` ... */
  readonly name: string;
  /** The stock address space. */
  readonly space: AddressSpace;
  /** What each mapped page should hold, by virtual address. */
  readonly pages: Map<number, Uint8Array>;
}

/** The machine of one check, the policy, and the address spaces. */
interface CowBench {
  readonly lab: LabMachine;
  /** The student's policy, each call counted against the budget. */
  readonly policy: PageFaultPolicy;
  /** Makes an address space; the first one turns paging on with it. */
  newSpace(name: string): Space;
  /** Detaches and disposes a space (an exit). */
  exit(space: Space): void;
  /** Loads CR3 with `space`. */
  activate(space: Space): void;
}

function onFreshMachine(
  factory: PageFaultPolicyFactory,
  context: CheckContext,
  body: (bench: CowBench) => void,
): void {
  const lab = newLabMachine(RAM_BYTES);
  const { cpu, mmu } = lab.machine;
  const before = allocatedFrames(lab);
  const spaces = new Set<Space>();
  let policy: PageFaultPolicy | undefined;
  try {
    context.step();
    const raw = factory({ memory: lab.memory, frames: lab.frames, mmu, cpu });
    policy = raw;
    const countedPolicy = counted(raw, context);
    mmu.setPageFaultHandler((fault) => countedPolicy.handle(fault));
    const bench: CowBench = {
      lab,
      policy: countedPolicy,
      newSpace(name) {
        const space = { name, space: AddressSpace.create(lab.frames, cpu), pages: new Map() };
        if (spaces.size === 0) space.space.enablePaging();
        spaces.add(space);
        return space;
      },
      exit(space) {
        const other = [...spaces].find((s) => s !== space);
        if (space.space.isActive && other !== undefined) other.space.activate();
        bench.policy.detach(space.space);
        spaces.delete(space);
        if (space.space.isActive) pagingOff(lab);
        space.space[Symbol.dispose]();
      },
      activate(space) {
        space.space.activate();
      },
    };
    body(bench);
  } finally {
    mmu.setPageFaultHandler(undefined);
    pagingOff(lab);
    for (const space of spaces) {
      try {
        policy?.detach(space.space);
      } catch {
        // Counted as a leak below if it matters.
      }
      space.space[Symbol.dispose]();
    }
    try {
      policy?.[Symbol.dispose]();
    } catch {
      // Counted below.
    }
    releaseGraderFrames(lab);
    reportFrameLeaks(lab, before, context);
  }
}

/** Maps `count` owned, writable pages filled with seeded bytes into `space`. */
function fillPages(bench: CowBench, context: CheckContext, space: Space, count: number): void {
  for (let i = 0; i < count; i++) {
    const va = BASE_VA + i * PAGE_SIZE_4K;
    const page = Page.alloc(bench.lab.frames);
    const bytes = new Uint8Array(PAGE_SIZE_4K);
    for (let b = 0; b < PAGE_SIZE_4K; b += 4) {
      new DataView(bytes.buffer).setUint32(b, context.rng.next(), true);
    }
    bench.lab.memory.writeBytes(page.physAddr, bytes);
    space.space.mapPage(va as VirtAddr, page, PAGE_FLAGS);
    space.pages.set(va, bytes);
  }
}

/** A `parent` with `pageCount` filled pages and a `child` forked from it. */
function parentAndChild(
  bench: CowBench,
  context: CheckContext,
  pageCount: number,
): { parent: Space; child: Space } {
  const parent = bench.newSpace("parent");
  fillPages(bench, context, parent, pageCount);
  return { parent, child: fork(bench, parent, "child", pageCount) };
}

/** Forks: shares `src`'s pages with a new space, copy-on-write. */
function fork(bench: CowBench, src: Space, name: string, count: number): Space {
  const dst = bench.newSpace(name);
  const call = `shareCopyOnWrite(${src.name}, ${name}, ${
    formatVirtAddr(BASE_VA as VirtAddr)
  }, ${count} pages)`;
  const shared = expectSuccess(
    call,
    () =>
      bench.policy.shareCopyOnWrite(
        src.space,
        dst.space,
        BASE_VA as VirtAddr,
        count * PAGE_SIZE_4K,
      ),
  );
  expect(
    shared === src.pages.size,
    `${call} to return ${src.pages.size}`,
    `it returned ${String(shared)}`,
  );
  for (const [va, bytes] of src.pages) dst.pages.set(va, bytes.slice());
  return dst;
}

/**
 * One of the two children of `family` (parent first) exits, and a new space
 * of the same name is forked from `sourceOf(leaving)`; returns the new family.
 */
function exitAndRefork(
  bench: CowBench,
  context: CheckContext,
  family: readonly Space[],
  pageCount: number,
  sourceOf: (leaving: Space) => Space,
): Space[] {
  const leaving = family[1 + context.rng.below(2)];
  bench.exit(leaving);
  const replacement = fork(bench, sourceOf(leaving), leaving.name, pageCount);
  return family.map((s) => s === leaving ? replacement : s);
}

/** Writes a 32-bit value through the MMU in `space` and records it in the model. */
function write(bench: CowBench, space: Space, va: number, value: number): void {
  bench.activate(space);
  try {
    bench.lab.machine.mmu.writeVirt32(va as VirtAddr, value);
  } catch (error) {
    const what = `a write to ${
      formatVirtAddr(va as VirtAddr)
    } in the ${space.name}'s space to succeed`;
    if (error instanceof PageFault) fail(what, `it page-faulted: ${error.message}`);
    if (error instanceof UnhandledPageFault || error instanceof KernelError) {
      fail(what, `the policy threw ${describeError(error)}`);
    }
    throw error;
  }
  const page = va - (va % PAGE_SIZE_4K);
  const bytes = space.pages.get(page);
  if (bytes !== undefined) new DataView(bytes.buffer).setUint32(va - page, value, true);
}

/** Reads a page through the MMU in `space` and compares it with the model. */
function expectContents(bench: CowBench, space: Space, va: number, when: string): void {
  bench.activate(space);
  const want = space.pages.get(va);
  if (want === undefined) return;
  let got: Uint8Array;
  try {
    got = bench.lab.machine.mmu.readVirtBytes(va as VirtAddr, PAGE_SIZE_4K);
  } catch (error) {
    return fail(
      `page ${formatVirtAddr(va as VirtAddr)} of the ${space.name} to be readable ${when}`,
      `reading it threw ${describeError(error)}`,
    );
  }
  for (let i = 0; i < PAGE_SIZE_4K; i++) {
    if (got[i] === want[i]) continue;
    fail(
      `page ${
        formatVirtAddr(va as VirtAddr)
      } of the ${space.name} to hold what the ${space.name} wrote ${when}`,
      `byte ${i} is ${hex(got[i])}, expected ${hex(want[i])}: another space's write shows through`,
    );
  }
}

/** The frame a space maps at `va` (or -1). */
function frameAt(space: Space, va: number): number {
  return space.space.mapping(va as VirtAddr)?.physAddr ?? -1;
}

/** Every frame mapped by any space with the number of mappings of it. */
function mappingCounts(spaces: readonly Space[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const space of spaces) {
    for (const va of space.pages.keys()) {
      const pa = frameAt(space, va);
      if (pa >= 0) counts.set(pa, (counts.get(pa) ?? 0) + 1);
    }
  }
  return counts;
}

/** Fails unless every mapped frame's reference count equals its number of mappings. */
function expectRefcounts(bench: CowBench, spaces: readonly Space[], when: string): void {
  const metadata = bench.lab.frames.metadata;
  for (const [pa, mappings] of mappingCounts(spaces)) {
    const refcount = metadata.refcount((pa / PAGE_SIZE_4K) as FrameNumber);
    expect(
      refcount === mappings,
      `frame ${hex(pa)}'s reference count to equal the ${mappings} mapping${
        mappings === 1 ? "" : "s"
      } of it ${when}`,
      `it is ${refcount}`,
    );
  }
}

/** A random page and 4-byte-aligned offset of the lab's range. */
function randomSpot(context: CheckContext, pageCount: number): number {
  return BASE_VA + context.rng.below(pageCount) * PAGE_SIZE_4K +
    4 * context.rng.below(PAGE_SIZE_4K / 4);
}

const shareCheck: Check<PageFaultPolicyFactory> = {
  id: "cow.share",
  title:
    "shareCopyOnWrite() maps the same frames read-only and copy-on-write in both spaces, copying nothing",
  points: 10,
  budget: 100,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const parent = bench.newSpace("parent");
      fillPages(bench, context, parent, 16);
      for (const va of parent.pages.keys()) write(bench, parent, va, context.rng.next()); // fills the TLB, writable
      const freeBefore = bench.lab.frames.stats().freeFrames;
      const child = fork(bench, parent, "child", 16);
      for (const va of parent.pages.keys()) {
        const mine = parent.space.mapping(va as VirtAddr);
        const theirs = child.space.mapping(va as VirtAddr);
        const where = `page ${formatVirtAddr(va as VirtAddr)}`;
        if (mine === undefined || theirs === undefined) {
          fail(`${where} mapped in both spaces`, "it is not");
        }
        expect(
          mine.physAddr === theirs.physAddr,
          `${where} to map the same frame in both spaces`,
          `the parent maps ${hex(mine.physAddr)}, the child ${hex(theirs.physAddr)}`,
        );
        for (const [who, mapping] of [["parent", mine], ["child", theirs]] as const) {
          expect(
            (mapping.flags & PAGE_WRITABLE) === 0 && (mapping.flags & PAGE_COPY_ON_WRITE) !== 0 &&
              mapping.isOwned,
            `${where} to be read-only, copy-on-write and owned in the ${who}'s space`,
            `its flags are ${hex(mapping.flags)}${mapping.isOwned ? "" : ", not owned"}`,
          );
        }
        expectContents(bench, child, va, "right after the fork");
      }
      expectRefcounts(bench, [parent, child], "after the fork");
      const copies = bench.policy.counts.copyOnWriteCopies;
      expect(
        copies === 0,
        "no copy to be made by sharing or reading",
        `copyOnWriteCopies is ${copies}`,
      );
      const tables = freeBefore - bench.lab.frames.stats().freeFrames;
      expect(
        tables <= 4,
        "sharing to take no frame but the child's PML4 and page tables (4)",
        `it took ${tables} frames`,
      );
    });
  },
};

const copyOnWriteCheck: Check<PageFaultPolicyFactory> = {
  id: "cow.copy-on-write",
  title:
    "A write to a shared page gives the writer a new frame with the old contents; each side sees only its own writes",
  points: 25,
  budget: 2_000,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const { parent, child } = parentAndChild(bench, context, 8);
      const va = BASE_VA + 3 * PAGE_SIZE_4K;
      const shared = frameAt(parent, va);
      const spot = va + 4 * context.rng.below(PAGE_SIZE_4K / 4);
      write(bench, child, spot, 0xc0ffee);
      const copy = child.space.mapping(va as VirtAddr);
      if (copy === undefined) fail("the child's page to stay mapped after its write", "it is gone");
      expect(
        copy.physAddr !== shared,
        `the child's write to ${formatVirtAddr(spot as VirtAddr)} to give it a new frame`,
        `it still maps the shared frame ${hex(shared)}`,
      );
      expect(
        !bench.lab.graderFrames.has(copy.physAddr / PAGE_SIZE_4K) &&
          bench.lab.frames.stateOf((copy.physAddr / PAGE_SIZE_4K) as FrameNumber) === "allocated",
        "the copy to be a frame taken from the frame provider",
        `frame ${hex(copy.physAddr)} is not allocated`,
      );
      expect(
        (copy.flags & PAGE_WRITABLE) !== 0 && (copy.flags & PAGE_COPY_ON_WRITE) === 0,
        "the writer's copy to be writable and no longer copy-on-write",
        `its flags are ${hex(copy.flags)}`,
      );
      expect(
        frameAt(parent, va) === shared,
        "the parent to keep the shared frame",
        `it maps ${hex(frameAt(parent, va))}`,
      );
      expectContents(bench, child, va, "after its write");
      expectContents(bench, parent, va, "after the child's write");
      // Three spaces writing at random: each sees exactly its own writes.
      const grandchild = fork(bench, child, "grandchild", 8);
      let family = [parent, child, grandchild];
      for (let op = 0; op < 400; op++) {
        const who = family[context.rng.below(family.length)];
        const dice = context.rng.below(20);
        if (dice === 0) {
          family = exitAndRefork(bench, context, family, 8, () => family[0]);
        } else if (dice < 12) {
          write(bench, who, randomSpot(context, 8), context.rng.next());
        } else {
          const page = BASE_VA + context.rng.below(8) * PAGE_SIZE_4K;
          expectContents(bench, who, page, `(operation ${op})`);
        }
      }
      for (const space of family) {
        for (const page of space.pages.keys()) expectContents(bench, space, page, "at the end");
      }
    });
  },
};

const lastWriterCheck: Check<PageFaultPolicyFactory> = {
  id: "cow.last-writer",
  title:
    "A write to a copy-on-write page nobody else maps makes it writable in place, without a copy",
  points: 10,
  budget: 200,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const { parent, child } = parentAndChild(bench, context, 4);
      expectSuccess(
        `the child's unmap(${formatVirtAddr(BASE_VA as VirtAddr)})`,
        () => child.space.unmap(BASE_VA as VirtAddr),
      );
      child.pages.delete(BASE_VA);
      const reusesBefore = bench.policy.counts.copyOnWriteReuses;
      const expectInPlace = (va: number, why: string) => {
        const frame = frameAt(parent, va);
        const free = bench.lab.frames.stats().freeFrames;
        write(bench, parent, va + 8, 0x1a57);
        const after = parent.space.mapping(va as VirtAddr);
        expect(
          after !== undefined && after.physAddr === frame,
          `the parent's write to ${formatVirtAddr(va as VirtAddr)} (${why}) to keep frame ${
            hex(frame)
          }`,
          `it maps ${hex(after?.physAddr ?? -1)} now`,
        );
        expect(
          (after.flags & PAGE_WRITABLE) !== 0 && (after.flags & PAGE_COPY_ON_WRITE) === 0,
          `page ${formatVirtAddr(va as VirtAddr)} to be writable and no longer copy-on-write`,
          `its flags are ${hex(after.flags)}`,
        );
        const taken = free - bench.lab.frames.stats().freeFrames;
        expect(
          taken === 0,
          "no frame to be taken for a page nobody else maps",
          `${taken} were taken`,
        );
        expectContents(bench, parent, va, "after its write");
      };
      expectInPlace(BASE_VA, "the child unmapped its share");
      bench.exit(child);
      for (let i = 1; i < 4; i++) expectInPlace(BASE_VA + i * PAGE_SIZE_4K, "the child exited");
      const reuses = bench.policy.counts.copyOnWriteReuses - reusesBefore;
      expect(
        reuses === 4,
        "copyOnWriteReuses to count the 4 writes made in place",
        `it counted ${reuses}`,
      );
    });
  },
};

const refcountsCheck: Check<PageFaultPolicyFactory> = {
  id: "cow.refcounts",
  title: "Every frame's reference count equals its mappings through forks, copies and exits",
  points: 20,
  budget: 2_000,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const { parent, child } = parentAndChild(bench, context, 6);
      const grandchild = fork(bench, child, "grandchild", 6);
      let family = [parent, child, grandchild];
      expectRefcounts(bench, family, "after two forks");
      const va = BASE_VA + 2 * PAGE_SIZE_4K;
      write(bench, child, va, 1);
      expectRefcounts(bench, family, "after the child's write (a copy)");
      write(bench, grandchild, va, 2);
      expectRefcounts(bench, family, "after the grandchild's write (a copy)");
      write(bench, parent, va, 3);
      expectRefcounts(bench, family, "after the parent's write (in place)");
      for (let op = 0; op < 300; op++) {
        const dice = context.rng.below(20);
        if (dice === 0) {
          // The new child forks from the parent or from the other child.
          family = exitAndRefork(
            bench,
            context,
            family,
            6,
            (leaving) => family[context.rng.below(2) === 0 ? 0 : 3 - family.indexOf(leaving)],
          );
        } else if (dice === 1) {
          const who = family[context.rng.below(3)];
          const pages = [...who.pages.keys()];
          if (pages.length > 1) {
            const page = pages[context.rng.below(pages.length)];
            expectSuccess(
              `unmap(${formatVirtAddr(page as VirtAddr)}) in the ${who.name}`,
              () => who.space.unmap(page as VirtAddr),
            );
            who.pages.delete(page);
          }
        } else {
          const who = family[context.rng.below(3)];
          const pages = [...who.pages.keys()];
          if (pages.length > 0) {
            write(
              bench,
              who,
              pages[context.rng.below(pages.length)] + 4 * context.rng.below(1024),
              op,
            );
          }
        }
        if (op % 25 === 24) expectRefcounts(bench, family, `after operation ${op}`);
      }
    });
  },
};

const demandZeroCheck: Check<PageFaultPolicyFactory> = {
  id: "cow.demand-zero",
  title: "A lazy region gets zeroed frames on first touch; faults outside it are refused",
  points: 15,
  budget: 200,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const space = bench.newSpace("process");
      const mmu = bench.lab.machine.mmu;
      const lazy = 0x20_0000_0000;
      const call = `declareLazy(process, ${formatVirtAddr(lazy as VirtAddr)}, 8 pages)`;
      expectSuccess(
        call,
        () => bench.policy.declareLazy(space.space, lazy as VirtAddr, 8 * PAGE_SIZE_4K, PAGE_FLAGS),
      );
      const regions = bench.policy.lazyRegions(space.space);
      const listed = regions.map((r) =>
        `${hex(r.pml4Addr)} ${hex(r.start)}..${hex(r.end)} ${hex(r.flags)}`
      );
      const wanted = `${hex(space.space.pml4Addr)} ${hex(lazy)}..${hex(lazy + 8 * PAGE_SIZE_4K)} ${
        hex(PAGE_FLAGS)
      }`;
      expect(
        listed.length === 1 && listed[0] === wanted,
        `lazyRegions(process) to list the region declared (PML4, start..end, flags: ${wanted})`,
        () => `it lists ${listed.length === 0 ? "none" : listed.join("; ")}`,
      );
      expectKernelError(
        `declareLazy(process, ${formatVirtAddr((lazy + 4 * PAGE_SIZE_4K) as VirtAddr)}, 8 pages)`,
        "InvalidAddress",
        () =>
          bench.policy.declareLazy(
            space.space,
            (lazy + 4 * PAGE_SIZE_4K) as VirtAddr,
            8 * PAGE_SIZE_4K,
            PAGE_FLAGS,
          ),
        "it overlaps the first lazy region",
      );
      for (let i = 0; i < 8; i++) {
        const va = lazy + i * PAGE_SIZE_4K;
        const where = formatVirtAddr(va as VirtAddr);
        let bytes: Uint8Array;
        if (i % 2 === 0) {
          bytes = readOrFail(mmu, va, `a first read of ${where}`);
        } else {
          write(bench, space, va + 12, 0x5eed);
          bytes = readOrFail(mmu, va, `a read of ${where} after its first write`);
          bytes[12] =
            bytes[13] =
            bytes[14] =
            bytes[15] =
              0;
        }
        const dirty = bytes.findIndex((byte) => byte !== 0);
        expect(
          dirty < 0,
          `the page mapped at ${where} to be zeroed`,
          () => `byte ${dirty} is ${hex(bytes[dirty])}`,
        );
        const mapping = space.space.mapping(va as VirtAddr);
        expect(
          mapping !== undefined && mapping.isOwned && (mapping.flags & PAGE_WRITABLE) !== 0,
          `${where} to be mapped writable and owned by the space`,
          mapping === undefined
            ? "it is not mapped"
            : `its flags are ${hex(mapping.flags)}${mapping.isOwned ? "" : ", not owned"}`,
        );
      }
      for (const outside of [lazy - PAGE_SIZE_4K, lazy + 8 * PAGE_SIZE_4K]) {
        expectUnhandledFault(
          `a read of ${formatVirtAddr(outside as VirtAddr)}, outside the lazy region,`,
          () => mmu.readVirt32(outside as VirtAddr),
        );
      }
    });
  },
};

/** Reads a page through the MMU (the space is active). */
function readOrFail(mmu: LabMachine["machine"]["mmu"], va: number, what: string): Uint8Array {
  try {
    return mmu.readVirtBytes(va as VirtAddr, PAGE_SIZE_4K);
  } catch (error) {
    return fail(`${what} to be served`, `it threw ${describeError(error)}`);
  }
}

const errorsCheck: Check<PageFaultPolicyFactory> = {
  id: "cow.errors",
  title:
    "Sharing into a used range, misaligned ranges and unowned pages are refused; other faults are not fixed",
  points: 10,
  budget: 200,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const parent = bench.newSpace("parent");
      fillPages(bench, context, parent, 4);
      const child = bench.newSpace("child");
      const taken = Page.alloc(bench.lab.frames);
      child.space.mapPage((BASE_VA + 2 * PAGE_SIZE_4K) as VirtAddr, taken, PAGE_FLAGS);
      const base = BASE_VA as VirtAddr;
      expectKernelError(
        "shareCopyOnWrite(parent, child) over a page the child maps",
        "PageAlreadyMapped",
        () => bench.policy.shareCopyOnWrite(parent.space, child.space, base, 4 * PAGE_SIZE_4K),
        "the child maps a page in the range",
      );
      for (const va of parent.pages.keys()) {
        const mapping = parent.space.mapping(va as VirtAddr);
        expect(
          mapping !== undefined && (mapping.flags & PAGE_WRITABLE) !== 0 &&
            (mapping.flags & PAGE_COPY_ON_WRITE) === 0,
          `the parent's page ${
            formatVirtAddr(va as VirtAddr)
          } to be unchanged by the refused share`,
          `its flags are ${hex(mapping?.flags ?? 0)}`,
        );
      }
      expectRefcounts(bench, [parent], "after the refused share");
      const other = bench.newSpace("other");
      expectKernelError(
        "shareCopyOnWrite() of a misaligned address",
        "InvalidAddress",
        () =>
          bench.policy.shareCopyOnWrite(
            parent.space,
            other.space,
            (BASE_VA + 0x10) as VirtAddr,
            PAGE_SIZE_4K,
          ),
        "the address is not page aligned",
      );
      expectKernelError(
        "shareCopyOnWrite() of a size that is not whole pages",
        "InvalidAddress",
        () => bench.policy.shareCopyOnWrite(parent.space, other.space, base, PAGE_SIZE_4K + 100),
        "the size is not whole pages",
      );
      const unowned = 0x30_0000_0000;
      parent.space.map(unowned as VirtAddr, 0x10_0000 as PhysAddr, PAGE_FLAGS);
      expectKernelError(
        "shareCopyOnWrite() of a page the space does not own",
        "InvalidAddress",
        () =>
          bench.policy.shareCopyOnWrite(
            parent.space,
            other.space,
            unowned as VirtAddr,
            PAGE_SIZE_4K,
          ),
        "the page is not owned",
      );
      const readOnly = 0x31_0000_0000;
      parent.space.mapPage(
        readOnly as VirtAddr,
        Page.alloc(bench.lab.frames),
        PAGE_USER | PAGE_NO_EXECUTE,
      );
      bench.activate(parent);
      expectUnhandled(bench, readOnly, "a write to a read-only page that is not copy-on-write");
      expectUnhandled(
        bench,
        0x32_0000_0000,
        "a read of an address nothing maps and no lazy region covers",
      );
    });
  },
};

/** Expects a write (or read, for an unmapped address) to end in an UnhandledPageFault. */
function expectUnhandled(bench: CowBench, va: number, what: string): void {
  expectUnhandledFault(
    `${what} (${formatVirtAddr(va as VirtAddr)})`,
    () => bench.lab.machine.mmu.writeVirt32(va as VirtAddr, 1),
  );
}

/** What `access` threw, or undefined if it went through. */
function thrownBy(access: () => unknown): unknown {
  try {
    access();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** A memory access's outcome in words: "it went through", or what it threw. */
function describeAccess(thrown: unknown): string {
  return thrown === undefined ? "it went through" : `it threw ${describeError(thrown)}`;
}

/** Fails unless `access` (`what`, in words) ends in an UnhandledPageFault. */
function expectUnhandledFault(what: string, access: () => unknown): void {
  const thrown = thrownBy(access);
  expect(
    thrown instanceof UnhandledPageFault,
    `${what} to end in an UnhandledPageFault`,
    describeAccess(thrown),
  );
}

const countsCheck: Check<PageFaultPolicyFactory> = {
  id: "cow.counts",
  title: "counts report every fault by outcome: demand-zero, copy, reuse, unhandled",
  points: 5,
  budget: 200,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const parent = bench.newSpace("parent");
      fillPages(bench, context, parent, 2);
      const start = bench.policy.counts;
      expect(
        start.demandZero === 0 && start.copyOnWriteCopies === 0 && start.copyOnWriteReuses === 0 &&
          start.unhandled === 0,
        "a new policy's counts to be all 0",
        JSON.stringify(start),
      );
      const lazy = 0x20_0000_0000;
      bench.policy.declareLazy(parent.space, lazy as VirtAddr, 2 * PAGE_SIZE_4K, PAGE_FLAGS);
      write(bench, parent, lazy, 1);
      write(bench, parent, lazy + PAGE_SIZE_4K, 1);
      const child = fork(bench, parent, "child", 2);
      // Count what the policy did, whether or not it was right (cow.copy-on-write judges that).
      let copies = 0;
      let reuses = 0;
      for (const [space, value] of [[child, 7], [parent, 8]] as const) {
        const frame = frameAt(space, BASE_VA);
        write(bench, space, BASE_VA, value);
        if (frameAt(space, BASE_VA) === frame) reuses++;
        else copies++;
      }
      try {
        bench.lab.machine.mmu.readVirt32(0x33_0000_0000 as VirtAddr);
      } catch (error) {
        if (!(error instanceof UnhandledPageFault)) throw error;
      }
      const counts = bench.policy.counts;
      const want = {
        demandZero: 2,
        copyOnWriteCopies: copies,
        copyOnWriteReuses: reuses,
        unhandled: 1,
      };
      expect(
        counts.demandZero === want.demandZero &&
          counts.copyOnWriteCopies === want.copyOnWriteCopies &&
          counts.copyOnWriteReuses === want.copyOnWriteReuses &&
          counts.unhandled === want.unhandled,
        `counts to be ${JSON.stringify(want)}`,
        `they are ${JSON.stringify({ ...counts })}`,
      );
    });
  },
};

const outOfMemoryCheck: Check<PageFaultPolicyFactory> = {
  id: "cow.out-of-memory",
  title:
    "A copy with no frame left fails with OutOfMemory and changes nothing; it works once frames are back",
  points: 5,
  budget: 200,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const lab = bench.lab;
      const { parent, child } = parentAndChild(bench, context, 2);
      takeFramesUntil(lab, 0);
      bench.activate(child);
      const thrown = thrownBy(() => lab.machine.mmu.writeVirt32(BASE_VA as VirtAddr, 5));
      if (thrown === undefined && frameAt(child, BASE_VA) === frameAt(parent, BASE_VA)) {
        return; // it shared instead of copying: cow.copy-on-write's failure, not this check's
      }
      expect(
        thrown instanceof KernelError &&
          (thrown.code === "OutOfMemory" || thrown.code === "FrameAllocationFailed"),
        "the child's write to a shared page with no frame free to throw KernelError OutOfMemory",
        describeAccess(thrown),
      );
      const mapping = child.space.mapping(BASE_VA as VirtAddr);
      expect(
        mapping !== undefined && mapping.physAddr === frameAt(parent, BASE_VA) &&
          (mapping.flags & PAGE_COPY_ON_WRITE) !== 0,
        "the child's page to stay shared and copy-on-write after the failed copy",
        `it maps ${hex(mapping?.physAddr ?? -1)} with flags ${hex(mapping?.flags ?? 0)}`,
      );
      expectRefcounts(bench, [parent, child], "after the failed copy");
      releaseGraderFrames(lab);
      write(bench, child, BASE_VA, 6);
      expectContents(bench, child, BASE_VA, "after the copy succeeded");
      expectContents(bench, parent, BASE_VA, "after the child's copy");
    });
  },
};

/** The copy-on-write lab's checks, in order. */
export const COW_CHECKS: readonly Check<PageFaultPolicyFactory>[] = [
  shareCheck,
  copyOnWriteCheck,
  lastWriterCheck,
  refcountsCheck,
  demandZeroCheck,
  errorsCheck,
  countsCheck,
  outOfMemoryCheck,
];
