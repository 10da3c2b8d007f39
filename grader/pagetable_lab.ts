/**
 * The page-table lab (`--pagetable`): checks a {@linkcode PageMapper}
 * against the hardware MMU and the grader's own reference walker, on a
 * 64 MiB machine with the stock frame allocator. Every bit of every leaf
 * (P, RW, US, PWT, PCD, A, D, PS, G, NX), 4 KiB, 2 MiB and 1 GiB pages,
 * the tables themselves, errors, and the TLB invalidations unmap and
 * protect owe.
 *
 * @module
 */

import {
  CR4_PGE,
  type FrameNumber,
  hex,
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  PageFault,
  type PageSizeBytes,
  type PhysAddr,
  type VirtAddr,
} from "../hal/mod.ts";
import {
  KernelError,
  type KernelErrorCode,
  PAGE_CACHE_DISABLED,
  PAGE_COPY_ON_WRITE,
  PAGE_GLOBAL,
  PAGE_NO_EXECUTE,
  PAGE_USER,
  PAGE_WRITABLE,
  PAGE_WRITE_THROUGH,
  type PageFlags,
  type PageMapper,
  type PageMapperFactory,
  turnOnPaging,
} from "../sdk/mod.ts";
import {
  counted,
  describeValue,
  describeVirtAddr as v,
  expectKernelError,
  expectSuccess,
} from "./_calls.ts";
import {
  allocatedFrames,
  graderFrame,
  graderRun,
  type LabMachine,
  newLabMachine,
  pagingOff,
  releaseGraderFrames,
  reportFrameLeaks,
  takeFramesUntil,
} from "./_lab_machine.ts";
import {
  ENTRY_A,
  ENTRY_D,
  ENTRY_HIGH_XD,
  ENTRY_P,
  ENTRY_PS,
  ENTRY_RW,
  entryBits,
  entryHex,
  expectedLeaf,
  referenceWalk,
} from "./_reference_walker.ts";
import { type Check, type CheckContext, expect, fail } from "./check.ts";

const RAM_BYTES = 64 * 2 ** 20;
/** Physical addresses mapped without being touched stay below 2^40 (MAXPHYADDR is 46). */
const PA_LIMIT_FRAMES = 2 ** 28;
const PML4_SPAN = 2 ** 39;
/** The permission bits a lab combines: RW, US, PWT, PCD, G, NX (64 combinations). */
const PERMISSION_BITS = [
  PAGE_WRITABLE,
  PAGE_USER,
  PAGE_WRITE_THROUGH,
  PAGE_CACHE_DISABLED,
  PAGE_GLOBAL,
  PAGE_NO_EXECUTE,
];
const SIZES: readonly PageSizeBytes[] = [PAGE_SIZE_4K, PAGE_SIZE_2M, PAGE_SIZE_1G];

/** The machine of one check and the address spaces made on it. */
interface MapperBench {
  /** The machine. */
  readonly lab: LabMachine;
  /** Makes an address space; the first one turns paging on with it. */
  newSpace(): PageMapper;
  /** Loads CR3 with `space`. */
  activate(space: PageMapper): void;
  /** Disposes `space` (made by {@linkcode MapperBench.newSpace}) through the part. */
  dispose(space: PageMapper): void;
}

function onFreshMachine(
  factory: PageMapperFactory,
  context: CheckContext,
  body: (bench: MapperBench) => void,
): void {
  const lab = newLabMachine(RAM_BYTES);
  const before = allocatedFrames(lab);
  const spaces = new Map<PageMapper, PageMapper>();
  const cpu = lab.machine.cpu;
  const bench: MapperBench = {
    lab,
    newSpace() {
      context.step();
      const space = factory({ memory: lab.memory, frames: lab.frames, cpu });
      if (spaces.size === 0) turnOnPaging(cpu, space.pml4Addr);
      const countedSpace = counted(space, context);
      spaces.set(countedSpace, space);
      return countedSpace;
    },
    activate(space) {
      cpu.writeCr3(space.pml4Addr);
    },
    dispose(space) {
      spaces.delete(space);
      space[Symbol.dispose]();
    },
  };
  try {
    body(bench);
  } finally {
    cpu.cpl = 0;
    pagingOff(lab);
    for (const space of spaces.values()) {
      try {
        space[Symbol.dispose]();
      } catch {
        // What a failed disposal leaves behind is counted as a leak.
      }
    }
    releaseGraderFrames(lab);
    reportFrameLeaks(lab, before, context);
  }
}

/** A page-aligned virtual address from table indexes (PML4 index first). */
function vaOf(p4: number, p3: number, p2: number, p1: number): VirtAddr {
  return (p4 * PML4_SPAN + p3 * PAGE_SIZE_1G + p2 * PAGE_SIZE_2M + p1 * PAGE_SIZE_4K) as VirtAddr;
}

/** A random address aligned to `size`, anywhere in the 48-bit space (half of them in the higher half). */
function randomVa(context: CheckContext, size: PageSizeBytes): VirtAddr {
  const rng = context.rng;
  const p4 = rng.below(512);
  const p3 = rng.below(512);
  const p2 = size === PAGE_SIZE_1G ? 0 : rng.below(512);
  const p1 = size === PAGE_SIZE_4K ? rng.below(512) : 0;
  return vaOf(p4, p3, p2, p1);
}

/** A random frame address aligned to `size`, below 2^40. */
function randomPa(context: CheckContext, size: PageSizeBytes): PhysAddr {
  const frames = size / PAGE_SIZE_4K;
  return (context.rng.below(PA_LIMIT_FRAMES / frames) * size) as PhysAddr;
}

function sizeName(size: PageSizeBytes): string {
  return size === PAGE_SIZE_4K ? "4 KiB" : size === PAGE_SIZE_2M ? "2 MiB" : "1 GiB";
}

function flagNames(flags: PageFlags): string {
  const words: string[] = [flags & PAGE_WRITABLE ? "RW" : "RO"];
  if (flags & PAGE_USER) words.push("US");
  if (flags & PAGE_WRITE_THROUGH) words.push("PWT");
  if (flags & PAGE_CACHE_DISABLED) words.push("PCD");
  if (flags & PAGE_GLOBAL) words.push("G");
  if (flags & PAGE_COPY_ON_WRITE) words.push("COW");
  if (flags & PAGE_NO_EXECUTE) words.push("NX");
  return words.join(" ");
}

/**
 * Checks that `va` is mapped by a page of `size` to `pa`: the reference
 * walker finds the leaf at the right level, `translate` agrees, and so does
 * the MMU when the space is active.
 */
function expectMapped(
  bench: MapperBench,
  space: PageMapper,
  va: VirtAddr,
  pa: number,
  size: PageSizeBytes,
  after: string,
): void {
  const walk = referenceWalk(bench.lab.memory, space.pml4Addr, va);
  const leaf = walk.leaf;
  const what = `${sizeName(size)} page ${v(va)} to map frame ${hex(pa)} ${after}`;
  if (leaf === undefined) {
    fail(
      what,
      walk.problem ?? `the walk stops at a not-present level-${walk.path.at(-1)?.level} entry`,
    );
  }
  expect(
    leaf.pageSizeBytes === size,
    what,
    () => `the leaf is a ${sizeName(leaf.pageSizeBytes)} entry (level ${leaf.level})`,
  );
  expect(leaf.frameBase === pa, what, () => `the leaf maps frame ${hex(leaf.frameBase)}`);
  const offset = size === PAGE_SIZE_4K ? 0xabc : size - 8;
  const translated = space.translate((va + offset) as VirtAddr);
  expect(
    translated === pa + offset,
    `translate(${v(va + offset)}) to be ${hex(pa + offset)} ${after}`,
    () => `it is ${describeValue(translated)}`,
  );
  const cpu = bench.lab.machine.cpu;
  if (cpu.cr3 - (cpu.cr3 % PAGE_SIZE_4K) !== space.pml4Addr) return;
  const probe = bench.lab.machine.mmu.probe((va + offset) as VirtAddr);
  expect(
    probe.kind === "mapped" && probe.physAddr === pa + offset && probe.pageSizeBytes === size,
    `the MMU to translate ${v(va + offset)} to ${hex(pa + offset)} through a ${
      sizeName(size)
    } page ${after}`,
    () =>
      probe.kind === "mapped"
        ? `it translates to ${hex(probe.physAddr)} through a ${sizeName(probe.pageSizeBytes)} page`
        : probe.kind === "fault"
        ? `it faults (error code ${hex(probe.errorCode)})`
        : "paging is off",
  );
}

/** Checks that nothing maps `va`: the walker finds no leaf and `translate` says so. */
function expectUnmapped(bench: MapperBench, space: PageMapper, va: VirtAddr, after: string): void {
  const leaf = referenceWalk(bench.lab.memory, space.pml4Addr, va).leaf;
  expect(
    leaf === undefined,
    `nothing to map ${v(va)} ${after}`,
    () => `a level-${leaf?.level} leaf still maps it to ${hex(leaf?.frameBase ?? 0)}`,
  );
  const translated = space.translate(va);
  expect(
    translated === undefined,
    `translate(${v(va)}) to be undefined ${after}`,
    () => `it is ${describeValue(translated)}`,
  );
}

/** Checks a leaf's every bit against the contract (A and D as given). */
function expectLeafBits(
  bench: MapperBench,
  space: PageMapper,
  va: VirtAddr,
  pa: number,
  flags: PageFlags,
  size: PageSizeBytes,
  accessedDirty: number,
  after: string,
): void {
  const leaf = referenceWalk(bench.lab.memory, space.pml4Addr, va).leaf;
  const want = expectedLeaf(pa, flags, size);
  const wantLow = (want.low | accessedDirty) >>> 0;
  const what =
    `the ${sizeName(size)} leaf for ${v(va)} ${after} to be ${entryHex(wantLow, want.high)} ` +
    `(${entryBits(wantLow, want.high)})`;
  if (leaf === undefined) fail(what, "nothing maps it");
  expect(
    leaf.low >>> 0 === wantLow && leaf.high >>> 0 === want.high,
    what,
    () => `it is ${entryHex(leaf.low, leaf.high)} (${entryBits(leaf.low, leaf.high)})`,
  );
}

/** Maps through the part, expecting success. */
function mapOk(space: PageMapper, va: VirtAddr, pa: number, flags: PageFlags, size: PageSizeBytes) {
  expectSuccess(
    `map(${v(va)}, ${hex(pa)}, ${flagNames(flags)}, ${sizeName(size)})`,
    () => space.map(va, pa as PhysAddr, flags, size),
  );
}

/** Runs an access through the MMU: undefined if it went through, else the page fault. */
function access(
  bench: MapperBench,
  va: VirtAddr,
  kind: "read" | "write" | "fetch",
  privilege: "user" | "supervisor",
): PageFault | undefined {
  const { cpu, mmu } = bench.lab.machine;
  cpu.cpl = privilege === "user" ? 3 : 0;
  try {
    if (kind === "write") mmu.writeVirt32(va, 0x600d_f00d);
    else mmu.readVirt32(va, kind);
    return undefined;
  } catch (error) {
    if (error instanceof PageFault) return error;
    throw error;
  } finally {
    cpu.cpl = 0;
  }
}

/** A 2 MiB-aligned run of frames the grader takes, for a 2 MiB page. */
function graderRun2M(lab: LabMachine): PhysAddr {
  const frameCount = PAGE_SIZE_2M / PAGE_SIZE_4K;
  return graderRun(lab, frameCount, frameCount);
}

/** Every combination of the permission bits, as flags. */
function permissionCombinations(): PageFlags[] {
  const combos: PageFlags[] = [];
  for (let mask = 0; mask < 2 ** PERMISSION_BITS.length; mask++) {
    let flags = 0;
    for (let bit = 0; bit < PERMISSION_BITS.length; bit++) {
      if (mask & (1 << bit)) flags |= PERMISSION_BITS[bit];
    }
    combos.push(flags);
  }
  return combos;
}

const map4kCheck: Check<PageMapperFactory> = {
  id: "pagetable.map-4k",
  title: "map() of 4 KiB pages builds the path and maps the right frame, anywhere in 48 bits",
  points: 10,
  budget: 5_000,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const space = bench.newSpace();
      const mapped = new Map<number, number>();
      const cluster = vaOf(3, 7, 11, 0);
      while (mapped.size < 300) {
        const va = mapped.size % 3 === 0
          ? randomVa(context, PAGE_SIZE_4K)
          : ((cluster + context.rng.below(2048) * PAGE_SIZE_4K) as VirtAddr);
        if (mapped.has(va)) continue;
        const pa = randomPa(context, PAGE_SIZE_4K);
        mapOk(space, va, pa, PAGE_WRITABLE, PAGE_SIZE_4K);
        expectMapped(bench, space, va, pa, PAGE_SIZE_4K, "after map()");
        mapped.set(va, pa);
      }
      for (const [va, pa] of mapped) {
        expectMapped(bench, space, va as VirtAddr, pa, PAGE_SIZE_4K, "after 300 map() calls");
      }
    });
  },
};

const mapHugeCheck: Check<PageMapperFactory> = {
  id: "pagetable.map-huge",
  title: "map() of 2 MiB and 1 GiB pages sets PS at the right level and maps the right frame",
  points: 10,
  budget: 2_000,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const space = bench.newSpace();
      const mapped: { va: VirtAddr; pa: number; size: PageSizeBytes }[] = [];
      const used = new Set<number>();
      for (let i = 0; i < 120; i++) {
        const size = i % 2 === 0 ? PAGE_SIZE_2M : PAGE_SIZE_1G;
        const va = randomVa(context, size);
        const gigabyte = Math.floor(va / PAGE_SIZE_1G);
        if (used.has(gigabyte)) continue; // one page per 1 GiB region: no overlap
        used.add(gigabyte);
        const pa = randomPa(context, size);
        mapOk(space, va, pa, PAGE_WRITABLE, size);
        expectMapped(bench, space, va, pa, size, "after map()");
        mapped.push({ va, pa, size });
      }
      // A 4 KiB page in the PD entry next to a 2 MiB page shares its page directory.
      const base = vaOf(9, 9, 0, 0);
      if (!used.has(Math.floor(base / PAGE_SIZE_1G))) {
        const small = (base + PAGE_SIZE_2M + 5 * PAGE_SIZE_4K) as VirtAddr;
        mapOk(space, base, 0x4000_0000, PAGE_WRITABLE, PAGE_SIZE_2M);
        mapOk(space, small, 0x5000, PAGE_WRITABLE, PAGE_SIZE_4K);
        mapped.push({ va: base, pa: 0x4000_0000, size: PAGE_SIZE_2M });
        mapped.push({ va: small, pa: 0x5000, size: PAGE_SIZE_4K });
      }
      for (const { va, pa, size } of mapped) {
        expectMapped(bench, space, va, pa, size, "after all the map() calls");
      }
    });
  },
};

const flagBitsCheck: Check<PageMapperFactory> = {
  id: "pagetable.flag-bits",
  title: "Every permission bit (RW, US, PWT, PCD, G, NX) lands in the leaf, and the MMU obeys it",
  points: 15,
  budget: 2_000,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const space = bench.newSpace();
      const frame = graderFrame(bench.lab);
      const combos = permissionCombinations();
      const bases = [vaOf(1, 0, 0, 0), vaOf(2, 0, 0, 0), vaOf(300, 0, 0, 0)];
      for (let s = 0; s < SIZES.length; s++) {
        const size = SIZES[s];
        for (let i = 0; i < combos.length; i++) {
          const flags = combos[i] | (context.rng.below(2) === 0 ? PAGE_COPY_ON_WRITE : 0);
          const va = (bases[s] + i * size) as VirtAddr;
          // 4 KiB pages map the grader's frame (written to); huge ones map RAM at 0 (only read).
          const pa = size === PAGE_SIZE_4K ? frame : 0;
          mapOk(space, va, pa, flags, size);
          expectLeafBits(bench, space, va, pa, flags, size, 0, `after map(${flagNames(flags)})`);
          const probe = bench.lab.machine.mmu.probe(va);
          const rights = probe.kind === "mapped"
            ? { w: probe.writable, u: probe.user, x: probe.executable, g: probe.global }
            : undefined;
          const want = {
            w: (flags & PAGE_WRITABLE) !== 0,
            u: (flags & PAGE_USER) !== 0,
            x: (flags & PAGE_NO_EXECUTE) === 0,
            g: (flags & PAGE_GLOBAL) !== 0,
          };
          expect(
            rights !== undefined && rights.w === want.w && rights.u === want.u &&
              rights.x === want.x && rights.g === want.g,
            `the MMU to see ${v(va)} as ${
              JSON.stringify(want)
            } (writable, user, executable, global)`,
            () =>
              rights === undefined
                ? "it does not translate it"
                : `it sees ${JSON.stringify(rights)}`,
          );
          expectAccessRights(bench, va, flags, size === PAGE_SIZE_4K);
        }
      }
    });
  },
};

/** Real accesses through the MMU: user reads, supervisor writes, fetches, as the flags allow. */
function expectAccessRights(bench: MapperBench, va: VirtAddr, flags: PageFlags, mayWrite: boolean) {
  const cases: [string, "read" | "write" | "fetch", "user" | "supervisor", boolean][] = [
    ["a user read", "read", "user", (flags & PAGE_USER) !== 0],
    ["an instruction fetch", "fetch", "supervisor", (flags & PAGE_NO_EXECUTE) === 0],
  ];
  if (mayWrite) {
    cases.push(["a supervisor write", "write", "supervisor", (flags & PAGE_WRITABLE) !== 0]);
  }
  for (const [what, kind, privilege, allowed] of cases) {
    const fault = access(bench, va, kind, privilege);
    expect(
      (fault === undefined) === allowed,
      `${what} of ${v(va)} (${flagNames(flags)}) to ${allowed ? "go through" : "page-fault"}`,
      () => fault === undefined ? "it went through" : `it faulted: ${fault.message}`,
    );
  }
}

const tablesCheck: Check<PageMapperFactory> = {
  id: "pagetable.tables",
  title:
    "Tables are zeroed frames from the provider, linked with P, RW and US, holding only what was mapped",
  points: 5,
  budget: 2_000,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const space = bench.newSpace();
      const memory = bench.lab.memory;
      for (let i = 0; i < 512; i++) {
        const low = memory.read32((space.pml4Addr + 8 * i) as PhysAddr);
        const high = memory.read32((space.pml4Addr + 8 * i + 4) as PhysAddr);
        expect(
          low === 0 && high === 0,
          `a new address space's PML4 (${hex(space.pml4Addr)}) to be all zero`,
          () => `entry ${i} is ${entryHex(low, high)}`,
        );
      }
      const mapped = new Map<number, PageSizeBytes>();
      const cluster = vaOf(5, 1, 2, 0);
      for (let i = 0; i < 100; i++) {
        mapped.set(cluster + context.rng.below(4096) * PAGE_SIZE_4K, PAGE_SIZE_4K);
      }
      mapped.set(vaOf(5, 1, 40, 0), PAGE_SIZE_2M);
      mapped.set(vaOf(5, 3, 0, 0), PAGE_SIZE_1G);
      mapped.set(vaOf(400, 511, 511, 511), PAGE_SIZE_4K);
      for (const [va, size] of mapped) {
        mapOk(space, va as VirtAddr, 0x8000_0000, PAGE_WRITABLE, size);
      }
      const found = new Map<number, PageSizeBytes>();
      const tables = new Set<number>();
      walkTree(bench, space.pml4Addr, 4, 0, found, tables);
      for (const [va, size] of mapped) {
        expect(
          found.get(va) === size,
          `the tables to hold the ${sizeName(size)} page ${v(va)}`,
          "they do not",
        );
      }
      for (const [va] of found) {
        expect(
          mapped.has(va),
          "the tables to hold only the pages mapped",
          () => `they also map ${v(va)}`,
        );
      }
    });
  },
};

/** Walks every present entry of a table, checking each link; collects the leaves. */
function walkTree(
  bench: MapperBench,
  table: number,
  level: number,
  vaBase: number,
  leaves: Map<number, PageSizeBytes>,
  tables: Set<number>,
): void {
  const { memory, frames } = bench.lab;
  const span = [0, PAGE_SIZE_4K, PAGE_SIZE_2M, PAGE_SIZE_1G, PML4_SPAN][level];
  for (let i = 0; i < 512; i++) {
    const low = memory.read32((table + 8 * i) as PhysAddr);
    const high = memory.read32((table + 8 * i + 4) as PhysAddr);
    if ((low & ENTRY_P) === 0) continue;
    const va = vaBase + i * span;
    const isLeaf = level === 1 || ((level === 2 || level === 3) && (low & ENTRY_PS) !== 0);
    if (isLeaf) {
      leaves.set(va, span as PageSizeBytes);
      continue;
    }
    const where = `the level-${level} entry ${i} of table ${hex(table)}`;
    // US may be set on every link or only on the way to user pages (as Linux
    // and the stock mapper do): flag-bits checks the rights that result.
    expect(
      (low & (ENTRY_P | ENTRY_RW)) === (ENTRY_P | ENTRY_RW) && (low & ENTRY_PS) === 0 &&
        (high & ENTRY_HIGH_XD) === 0,
      `${where} (a link to a table) to have P and RW, and neither PS nor NX`,
      () => `it is ${entryHex(low, high)} (${entryBits(low, high)})`,
    );
    const next = (high & 0xfffff) * 2 ** 32 + ((low >>> 0) - ((low >>> 0) % PAGE_SIZE_4K));
    const frame = next / PAGE_SIZE_4K;
    const state = memory.isRam(next, PAGE_SIZE_4K)
      ? frames.stateOf(frame as FrameNumber)
      : "outside";
    expect(
      state === "allocated" && !bench.lab.graderFrames.has(frame),
      `${where} to point at a table in a frame taken from the frame provider`,
      () => `it points at ${hex(next)}, a frame that is ${state}`,
    );
    expect(
      !tables.has(next),
      `every table to have one parent`,
      () => `table ${hex(next)} is linked twice`,
    );
    tables.add(next);
    walkTree(bench, next, level - 1, va, leaves, tables);
  }
}

const unmapCheck: Check<PageMapperFactory> = {
  id: "pagetable.unmap",
  title: "unmap() removes exactly one page, returns its frame, and frees the tables it empties",
  points: 10,
  budget: 5_000,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const space = bench.newSpace();
      const freeWithEmptySpace = bench.lab.frames.stats().freeFrames;
      const pages: { va: VirtAddr; pa: number; size: PageSizeBytes }[] = [];
      const cluster = vaOf(7, 2, 3, 0);
      const seen = new Set<number>();
      while (pages.length < 200) {
        const va = (cluster + context.rng.below(8192) * PAGE_SIZE_4K) as VirtAddr;
        if (seen.has(va)) continue;
        seen.add(va);
        pages.push({ va, pa: randomPa(context, PAGE_SIZE_4K), size: PAGE_SIZE_4K });
      }
      for (let i = 0; i < 10; i++) {
        pages.push({
          va: vaOf(7, 9, 2 * i, 0),
          pa: randomPa(context, PAGE_SIZE_2M),
          size: PAGE_SIZE_2M,
        });
      }
      pages.push({ va: vaOf(8, 1, 0, 0), pa: randomPa(context, PAGE_SIZE_1G), size: PAGE_SIZE_1G });
      pages.push({
        va: vaOf(260, 4, 0, 0),
        pa: randomPa(context, PAGE_SIZE_1G),
        size: PAGE_SIZE_1G,
      });
      for (const { va, pa, size } of pages) mapOk(space, va, pa, PAGE_WRITABLE, size);
      const order = [...pages];
      for (let i = order.length - 1; i > 0; i--) {
        const j = context.rng.below(i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
      for (let i = 0; i < order.length; i++) {
        const { va, pa, size } = order[i];
        const call = `unmap(${v(va)}, ${sizeName(size)})`;
        const got = expectSuccess(call, () => space.unmap(va, size));
        expect(
          got === pa,
          `${call} to return the frame it mapped, ${hex(pa)}`,
          `it returned ${describeValue(got)}`,
        );
        expectUnmapped(bench, space, va, `after ${call}`);
        const rest = order.slice(i + 1);
        if (rest.length > 0) {
          const other = rest[context.rng.below(rest.length)];
          expectMapped(bench, space, other.va, other.pa, other.size, `after ${call}`);
        }
      }
      const { va } = order[0];
      expectKernelError(
        `unmap(${v(va)}) again`,
        "PageNotMapped",
        () => space.unmap(va, order[0].size),
        "nothing is mapped there",
      );
      const freeAfter = bench.lab.frames.stats().freeFrames;
      expect(
        freeAfter === freeWithEmptySpace,
        "every table to be freed once the pages under it are unmapped (only the PML4 left)",
        () => `${freeWithEmptySpace - freeAfter} table frames are still allocated`,
      );
    });
  },
};

const protectCheck: Check<PageMapperFactory> = {
  id: "pagetable.protect",
  title: "protect() replaces the permission bits and keeps the frame, PS, A and D",
  points: 10,
  budget: 2_000,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const space = bench.newSpace();
      const lab = bench.lab;
      const combos = permissionCombinations();
      const run2M = graderRun2M(lab);
      const pages: { va: VirtAddr; pa: number; size: PageSizeBytes; written: boolean }[] = [];
      for (let i = 0; i < 24; i++) {
        pages.push({
          va: vaOf(6, 0, 0, i),
          pa: graderFrame(lab),
          size: PAGE_SIZE_4K,
          written: i % 2 === 0,
        });
      }
      pages.push({ va: vaOf(6, 0, 4, 0), pa: run2M, size: PAGE_SIZE_2M, written: true });
      pages.push({ va: vaOf(6, 5, 0, 0), pa: 0, size: PAGE_SIZE_1G, written: false });
      for (const page of pages) {
        mapOk(space, page.va, page.pa, PAGE_WRITABLE, page.size);
        // The processor sets A on a read and D on a write.
        access(bench, page.va, "read", "supervisor");
        if (page.written) access(bench, page.va, "write", "supervisor");
      }
      for (const page of pages) {
        const flags = combos[context.rng.below(combos.length)];
        const call = `protect(${v(page.va)}, ${flagNames(flags)}, ${sizeName(page.size)})`;
        expectSuccess(call, () => space.protect(page.va, flags, page.size));
        const ad = ENTRY_A | (page.written ? ENTRY_D : 0);
        expectLeafBits(bench, space, page.va, page.pa, flags, page.size, ad, `after ${call}`);
        expectMapped(bench, space, page.va, page.pa, page.size, `after ${call}`);
      }
    });
  },
};

const tlbUnmapCheck: Check<PageMapperFactory> = {
  id: "pagetable.tlb-unmap",
  title:
    "unmap() invalidates the TLB (INVLPG) in the active space, and for global pages in any space",
  points: 10,
  budget: 200,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const lab = bench.lab;
      const tlb = lab.machine.cpu.tlb;
      const a = bench.newSpace();
      const run2M = graderRun2M(lab);
      const cases: {
        va: VirtAddr;
        pa: number;
        size: PageSizeBytes;
        flags: PageFlags;
        inactive: boolean;
      }[] = [
        {
          va: vaOf(10, 0, 0, 3),
          pa: graderFrame(lab),
          size: PAGE_SIZE_4K,
          flags: PAGE_WRITABLE,
          inactive: false,
        },
        {
          va: vaOf(10, 0, 8, 0),
          pa: run2M,
          size: PAGE_SIZE_2M,
          flags: PAGE_WRITABLE,
          inactive: false,
        },
        {
          va: vaOf(11, 0, 0, 7),
          pa: graderFrame(lab),
          size: PAGE_SIZE_4K,
          flags: PAGE_WRITABLE | PAGE_GLOBAL,
          inactive: true,
        },
      ];
      const b = bench.newSpace();
      for (const c of cases) {
        bench.activate(a);
        mapOk(a, c.va, c.pa, c.flags, c.size);
        const primed = access(bench, c.va, "read", "supervisor");
        expect(
          primed === undefined && tlb.lookup(c.va) >= 0,
          `a read of ${v(c.va)} to fill the TLB`,
          "it did not",
        );
        if (c.inactive) {
          bench.activate(b); // a global entry survives the CR3 write (CR4.PGE)
          expect(
            (lab.machine.cpu.cr4 & CR4_PGE) !== 0 && tlb.lookup(c.va) >= 0,
            "the global entry to survive the CR3 write",
            "it did not",
          );
        }
        const call = `unmap(${v(c.va)}, ${sizeName(c.size)})`;
        expectSuccess(call, () => a.unmap(c.va, c.size));
        const where = c.inactive ? "a global page of an inactive space" : "the active space";
        expect(
          tlb.lookup(c.va) < 0,
          `the TLB to hold no entry for ${v(c.va)} after ${call} in ${where} (INVLPG)`,
          "the old translation is still cached",
        );
        bench.activate(a);
        const fault = access(bench, c.va, "read", "supervisor");
        expect(
          fault !== undefined,
          `a read of ${v(c.va)} to page-fault after ${call}`,
          "it went through, to the unmapped frame",
        );
      }
    });
  },
};

const tlbProtectCheck: Check<PageMapperFactory> = {
  id: "pagetable.tlb-protect",
  title: "protect() invalidates the TLB, so reduced rights apply at once",
  points: 5,
  budget: 200,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const lab = bench.lab;
      const a = bench.newSpace();
      const b = bench.newSpace();
      bench.activate(a);
      const cases: {
        va: VirtAddr;
        from: PageFlags;
        to: PageFlags;
        test: ["read" | "write", "user" | "supervisor"];
        inactive: boolean;
      }[] = [
        {
          va: vaOf(12, 0, 0, 1),
          from: PAGE_WRITABLE,
          to: 0,
          test: ["write", "supervisor"],
          inactive: false,
        },
        { va: vaOf(12, 0, 0, 2), from: PAGE_USER, to: 0, test: ["read", "user"], inactive: false },
        {
          va: vaOf(12, 0, 0, 3),
          from: PAGE_WRITABLE | PAGE_GLOBAL,
          to: PAGE_GLOBAL,
          test: ["write", "supervisor"],
          inactive: true,
        },
      ];
      for (const c of cases) {
        bench.activate(a);
        mapOk(a, c.va, graderFrame(lab), c.from, PAGE_SIZE_4K);
        const [kind, privilege] = c.test;
        expect(
          access(bench, c.va, kind, privilege) === undefined,
          `the ${privilege} ${kind} of ${v(c.va)} to go through first`,
          "it faulted",
        );
        if (c.inactive) bench.activate(b);
        const call = `protect(${v(c.va)}, ${flagNames(c.to)})`;
        expectSuccess(call, () => a.protect(c.va, c.to, PAGE_SIZE_4K));
        bench.activate(a); // keeps global entries
        const fault = access(bench, c.va, kind, privilege);
        expect(
          fault !== undefined,
          `a ${privilege} ${kind} of ${v(c.va)} to page-fault after ${call}${
            c.inactive ? " in an inactive space (a global page)" : ""
          }`,
          "it went through a stale TLB entry",
        );
      }
    });
  },
};

const errorsCheck: Check<PageMapperFactory> = {
  id: "pagetable.errors",
  title: "map(), unmap() and protect() refuse what the contract refuses, and change nothing",
  points: 5,
  budget: 200,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const space = bench.newSpace();
      const memory = bench.lab.memory;
      const p4k = vaOf(20, 0, 0, 5);
      const p2m = vaOf(20, 0, 6, 0);
      const p1g = vaOf(20, 3, 0, 0);
      const small = vaOf(20, 4, 9, 9); // a 4 KiB page under PD entry 9 of GiB 4
      mapOk(space, p4k, 0x12_3000, PAGE_WRITABLE, PAGE_SIZE_4K);
      mapOk(space, p2m, 0x4020_0000, PAGE_WRITABLE, PAGE_SIZE_2M);
      mapOk(space, p1g, 0x8000_0000, PAGE_WRITABLE, PAGE_SIZE_1G);
      mapOk(space, small, 0x45_6000, PAGE_WRITABLE, PAGE_SIZE_4K);
      const snapshot = () =>
        [p4k, p2m, p1g, small].map((va) => {
          const leaf = referenceWalk(memory, space.pml4Addr, va).leaf;
          return leaf === undefined ? "none" : entryHex(leaf.low, leaf.high);
        }).join(" ");
      const before = snapshot();
      const refusals: [string, KernelErrorCode, () => unknown, string][] = [
        [
          `map(${v(p4k)}) again`,
          "PageAlreadyMapped",
          () => space.map(p4k, 0x9000 as PhysAddr, PAGE_WRITABLE, PAGE_SIZE_4K),
          "the page is mapped",
        ],
        [
          `map(${v(p2m + 0x3000)}, 4 KiB)`,
          "ParentEntryHugePage",
          () => space.map((p2m + 0x3000) as VirtAddr, 0x9000 as PhysAddr, 0, PAGE_SIZE_4K),
          "a 2 MiB page covers it",
        ],
        [
          `map(${v(p1g + PAGE_SIZE_2M)}, 2 MiB)`,
          "ParentEntryHugePage",
          () => space.map((p1g + PAGE_SIZE_2M) as VirtAddr, 0 as PhysAddr, 0, PAGE_SIZE_2M),
          "a 1 GiB page covers it",
        ],
        [
          `map(${v(small - (small % PAGE_SIZE_2M))}, 2 MiB)`,
          "PageAlreadyMapped",
          () =>
            space.map((small - (small % PAGE_SIZE_2M)) as VirtAddr, 0 as PhysAddr, 0, PAGE_SIZE_2M),
          "a 4 KiB page is mapped inside it",
        ],
        [
          `map(${v(vaOf(20, 4, 0, 0))}, 1 GiB)`,
          "PageAlreadyMapped",
          () => space.map(vaOf(20, 4, 0, 0), 0 as PhysAddr, 0, PAGE_SIZE_1G),
          "a 4 KiB page is mapped inside it",
        ],
        [
          `unmap(${v(p2m + 0x5000)}, 4 KiB)`,
          "ParentEntryHugePage",
          () => space.unmap((p2m + 0x5000) as VirtAddr, PAGE_SIZE_4K),
          "a 2 MiB page covers it",
        ],
        [
          `protect(${v(p1g + 0x1000)}, 4 KiB)`,
          "ParentEntryHugePage",
          () => space.protect((p1g + 0x1000) as VirtAddr, 0, PAGE_SIZE_4K),
          "a 1 GiB page covers it",
        ],
        [
          `unmap(${v(p4k + 0x1000)})`,
          "PageNotMapped",
          () => space.unmap((p4k + 0x1000) as VirtAddr, PAGE_SIZE_4K),
          "nothing is mapped there",
        ],
        [
          `protect(${v(vaOf(21, 0, 0, 0))})`,
          "PageNotMapped",
          () => space.protect(vaOf(21, 0, 0, 0), 0, PAGE_SIZE_4K),
          "nothing is mapped there",
        ],
        [
          `unmap(${v(small - (small % PAGE_SIZE_2M))}, 2 MiB)`,
          "PageNotMapped",
          () => space.unmap((small - (small % PAGE_SIZE_2M)) as VirtAddr, PAGE_SIZE_2M),
          "only a 4 KiB page is mapped there",
        ],
        [
          `map(${v(p4k + 0x801)})`,
          "InvalidAddress",
          () => space.map((p4k + 0x801) as VirtAddr, 0x9000 as PhysAddr, 0, PAGE_SIZE_4K),
          "the address is not 4 KiB aligned",
        ],
        [
          `map(${v(vaOf(22, 0, 0, 1))}, 2 MiB)`,
          "InvalidAddress",
          () => space.map(vaOf(22, 0, 0, 1), 0 as PhysAddr, 0, PAGE_SIZE_2M),
          "the address is not 2 MiB aligned",
        ],
        [
          `map(${v(vaOf(22, 0, 2, 0))}, frame 0x1000, 2 MiB)`,
          "InvalidAddress",
          () => space.map(vaOf(22, 0, 2, 0), 0x1000 as PhysAddr, 0, PAGE_SIZE_2M),
          "the frame is not 2 MiB aligned",
        ],
        [
          `map(${v(2 ** 48)})`,
          "InvalidAddress",
          () => space.map((2 ** 48) as VirtAddr, 0x9000 as PhysAddr, 0, PAGE_SIZE_4K),
          "the address is not below 2^48",
        ],
        [
          `unmap(${v(p4k + 0x10)})`,
          "InvalidAddress",
          () => space.unmap((p4k + 0x10) as VirtAddr, PAGE_SIZE_4K),
          "the address is not 4 KiB aligned",
        ],
      ];
      for (const [call, code, body, why] of refusals) {
        expectKernelError(call, code, body, why);
        const after = snapshot();
        expect(
          after === before,
          `the mappings to be unchanged after the refused ${call}`,
          () => `they went from ${before} to ${after}`,
        );
      }
    });
  },
};

const outOfMemoryCheck: Check<PageMapperFactory> = {
  id: "pagetable.out-of-memory",
  title:
    "map() fails with FrameAllocationFailed when no frame is left, and frees the tables it made",
  points: 5,
  budget: 200,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const lab = bench.lab;
      const space = bench.newSpace();
      takeFramesUntil(lab, 2);
      const va = vaOf(30, 1, 1, 1); // needs a PDPT, a PD and a PT
      expectKernelError(
        `map(${v(va)}) with 2 frames free`,
        "FrameAllocationFailed",
        () => space.map(va, 0x9000 as PhysAddr, PAGE_WRITABLE, PAGE_SIZE_4K),
        "three tables are needed",
      );
      const free = lab.frames.stats().freeFrames;
      expect(
        free === 2,
        "the tables made before the failure to be freed (2 frames free again)",
        `${free} frames are free`,
      );
      expectUnmapped(bench, space, va, "after the failed map()");
      const back = [...lab.graderFrames][0];
      lab.frames.free(back as FrameNumber);
      lab.graderFrames.delete(back);
      mapOk(space, va, 0x9000, PAGE_WRITABLE, PAGE_SIZE_4K);
      expectMapped(bench, space, va, 0x9000, PAGE_SIZE_4K, "once a third frame is free");
    });
  },
};

/** One page in the random check's model. */
interface ModelPage {
  readonly va: number;
  readonly pa: number;
  readonly size: PageSizeBytes;
}

const randomCheck: Check<PageMapperFactory> = {
  id: "pagetable.random",
  title: "3000 seeded random map, unmap and protect calls agree with the reference model",
  points: 10,
  budget: 20_000,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const space = bench.newSpace();
      const rng = context.rng;
      const model = new Map<number, ModelPage>();
      const pick = (): { va: VirtAddr; size: PageSizeBytes } => {
        const dice = rng.below(10);
        const size = dice < 7 ? PAGE_SIZE_4K : dice < 9 ? PAGE_SIZE_2M : PAGE_SIZE_1G;
        const p4 = [0, 1, 256][rng.below(3)];
        const va = vaOf(
          p4,
          rng.below(3),
          size === PAGE_SIZE_1G ? 0 : rng.below(4),
          size === PAGE_SIZE_4K ? rng.below(8) : 0,
        );
        return { va, size };
      };
      for (let op = 0; op < 3000; op++) {
        const { va, size } = pick();
        const kind = rng.below(10) < 5 ? "map" : rng.below(2) === 0 ? "unmap" : "protect";
        const expected = expectedOutcome(model, kind, va, size);
        const pa = randomPa(context, size);
        const call = `${kind}(${v(va)}, ${sizeName(size)}) (operation ${op})`;
        let outcome: string;
        let returned: unknown;
        try {
          if (kind === "map") space.map(va, pa, PAGE_WRITABLE, size);
          else if (kind === "unmap") returned = space.unmap(va, size);
          else space.protect(va, PAGE_WRITABLE | PAGE_NO_EXECUTE, size);
          outcome = "ok";
        } catch (error) {
          if (!(error instanceof KernelError)) throw error;
          outcome = error.code;
        }
        expect(
          outcome === expected,
          `${call} to ${expected === "ok" ? "succeed" : `throw ${expected}`}`,
          () => outcome === "ok" ? "it succeeded" : `it threw ${outcome}`,
        );
        if (outcome === "ok" && kind === "map") model.set(va, { va, pa, size });
        if (outcome === "ok" && kind === "unmap") {
          const page = model.get(va);
          expect(
            returned === page?.pa,
            `${call} to return ${hex(page?.pa ?? 0)}`,
            `it returned ${describeValue(returned)}`,
          );
          model.delete(va);
          expectUnmapped(bench, space, va, `after ${call}`);
        }
        if (outcome === "ok" && kind !== "unmap") {
          const page = model.get(va);
          if (page !== undefined) expectMapped(bench, space, va, page.pa, size, `after ${call}`);
        }
        if (op % 500 === 499) {
          for (const page of model.values()) {
            expectMapped(
              bench,
              space,
              page.va as VirtAddr,
              page.pa,
              page.size,
              `after operation ${op}`,
            );
          }
        }
      }
    });
  },
};

/** What the contract says a call does, given the pages mapped: "ok" or the error code. */
function expectedOutcome(
  model: ReadonlyMap<number, ModelPage>,
  kind: "map" | "unmap" | "protect",
  va: number,
  size: PageSizeBytes,
): string {
  for (const page of model.values()) {
    if (page.size > size && va >= page.va && va < page.va + page.size) return "ParentEntryHugePage";
  }
  const exact = model.get(va);
  if (kind !== "map") return exact !== undefined && exact.size === size ? "ok" : "PageNotMapped";
  for (const page of model.values()) {
    if (page.va >= va && page.va < va + size) return "PageAlreadyMapped";
  }
  return "ok";
}

const disposeCheck: Check<PageMapperFactory> = {
  id: "pagetable.dispose",
  title: "Disposing a space frees every table, the PML4 last, but not the frames it maps",
  points: 5,
  budget: 500,
  run(factory, context) {
    onFreshMachine(factory, context, (bench) => {
      const lab = bench.lab;
      const before = lab.frames.stats().freeFrames;
      const space = bench.newSpace();
      pagingOff(lab);
      const leafFrames: number[] = [];
      for (let i = 0; i < 40; i++) {
        const pa = graderFrame(lab);
        leafFrames.push(pa / PAGE_SIZE_4K);
        mapOk(space, randomVa(context, PAGE_SIZE_4K), pa, PAGE_WRITABLE, PAGE_SIZE_4K);
      }
      const run2M = graderRun2M(lab);
      mapOk(space, vaOf(40, 0, 2, 0), run2M, PAGE_WRITABLE, PAGE_SIZE_2M);
      leafFrames.push(run2M / PAGE_SIZE_4K);
      const held = lab.graderFrames.size;
      expectSuccess("[Symbol.dispose]()", () => bench.dispose(space));
      const after = lab.frames.stats().freeFrames;
      expect(
        after === before - held,
        "every table frame (and the PML4) to be free after disposal",
        () => `${before - held - after} frames of the space are still allocated`,
      );
      for (const frame of leafFrames) {
        const state = lab.frames.stateOf(frame as FrameNumber);
        expect(
          state === "allocated",
          `mapped frame ${hex(frame * PAGE_SIZE_4K)} to stay allocated after disposal`,
          `it is ${state}`,
        );
      }
    });
  },
};

/** The page-table lab's checks, in order. */
export const PAGETABLE_CHECKS: readonly Check<PageMapperFactory>[] = [
  map4kCheck,
  mapHugeCheck,
  flagBitsCheck,
  tablesCheck,
  unmapCheck,
  protectCheck,
  tlbUnmapCheck,
  tlbProtectCheck,
  errorsCheck,
  outOfMemoryCheck,
  randomCheck,
  disposeCheck,
];
