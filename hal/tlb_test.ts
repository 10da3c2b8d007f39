import {
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  type PhysAddr,
  type VirtAddr,
} from "./address.ts";
import {
  Tlb,
  TLB_4K_DENIED,
  TLB_DIRTY,
  TLB_GLOBAL,
  TLB_NO_4K_ENTRY,
  TLB_NO_EXECUTE,
  TLB_USER,
  TLB_WAYS,
  TLB_WRITABLE,
  tlbRightsIndex,
} from "./tlb.ts";
import { RIGHTS_DIRTY, RIGHTS_NO_EXECUTE, RIGHTS_USER, RIGHTS_WRITABLE } from "./access_rights.ts";
import { assertEquals, assertThrows } from "../testing/mod.ts";

const va = (value: number) => value as VirtAddr;
const pa = (value: number) => value as PhysAddr;

Deno.test("Tlb.lookup() misses on an empty TLB and hits after insert()", () => {
  const tlb = new Tlb();
  assertEquals(tlb.lookup(va(0x1234)), -1);
  tlb.insert(va(0x1000), PAGE_SIZE_4K, pa(0x9000), TLB_WRITABLE);
  const slot = tlb.lookup(va(0x1234));
  assertEquals(slot >= 0, true);
  assertEquals(tlb.physAddrAt(slot, va(0x1234)), 0x9234);
  assertEquals(tlb.flagsAt(slot), TLB_WRITABLE);
  assertEquals(tlb.lookup(va(0x2000)), -1);
  assertEquals(tlb.stats, { hits: 1, misses: 2, flushes: 0 });
  tlb.resetStats();
  assertEquals(tlb.stats, { hits: 0, misses: 0, flushes: 0 });
});

Deno.test("Tlb.insert() caches 2 MiB and 1 GiB translations for the whole page", () => {
  const tlb = new Tlb();
  tlb.insert(va(0x4000_0000 + 0x1234), PAGE_SIZE_2M, pa(0x60_0000), TLB_USER);
  tlb.insert(va(0x80_0000_0000 + 5), PAGE_SIZE_1G, pa(0x1_4000_0000), TLB_NO_EXECUTE);
  const in2M = tlb.lookup(va(0x4000_0000 + 0x1f_ffff));
  assertEquals(tlb.physAddrAt(in2M, va(0x4000_0000 + 0x1f_ffff)), 0x7f_ffff);
  assertEquals(tlb.lookup(va(0x4020_0000)), -1);
  const in1G = tlb.lookup(va(0x80_3fff_fff0));
  assertEquals(tlb.physAddrAt(in1G, va(0x80_3fff_fff0)), 0x1_7fff_fff0);
  assertEquals(tlb.flagsAt(in1G), TLB_NO_EXECUTE);
});

Deno.test("Tlb tags hold page numbers above 2^32 without aliasing", () => {
  const tlb = new Tlb();
  // The last higher-half page and page 0xf_ffff have equal low 20 bits of page number.
  const top = va(2 ** 48 - PAGE_SIZE_4K);
  tlb.insert(top, PAGE_SIZE_4K, pa(0x5000), 0);
  assertEquals(tlb.lookup(va(0xf_ffff_f000)), -1);
  assertEquals(tlb.physAddrAt(tlb.lookup(va(2 ** 48 - 1)), va(2 ** 48 - 1)), 0x5fff);
  assertEquals(tlb.entries()[0].virtAddr, 2 ** 48 - PAGE_SIZE_4K);
});

Deno.test("Tlb.insert() replaces the entry for the same page in place", () => {
  const tlb = new Tlb();
  const first = tlb.insert(va(0x3000), PAGE_SIZE_4K, pa(0x9000), 0);
  const second = tlb.insert(va(0x3fff), PAGE_SIZE_4K, pa(0xa000), TLB_DIRTY);
  assertEquals(second, first);
  assertEquals(tlb.size, 1);
  assertEquals(tlb.physAddrAt(tlb.lookup(va(0x3000)), va(0x3000)), 0xa000);
});

Deno.test("Tlb evicts round robin within a set once its ways are full", () => {
  const tlb = new Tlb({ sets4K: 2, sets2M: 1, sets1G: 1 });
  assertEquals(tlb.capacity, (2 + 1 + 1) * TLB_WAYS);
  // Even page numbers all fall in set 0.
  for (let i = 0; i <= TLB_WAYS; i++) {
    tlb.insert(va(i * 2 * PAGE_SIZE_4K), PAGE_SIZE_4K, pa(0x10_0000 + i * PAGE_SIZE_4K), 0);
  }
  assertEquals(tlb.lookup(va(0)), -1, "the oldest way was replaced");
  for (let i = 1; i <= TLB_WAYS; i++) assertEquals(tlb.lookup(va(i * 2 * PAGE_SIZE_4K)) >= 0, true);
  assertEquals(tlb.size, TLB_WAYS);
});

Deno.test("Tlb.flushPage() removes the page's entries of every size, global ones too", () => {
  const tlb = new Tlb();
  tlb.insert(va(0x4000_1000), PAGE_SIZE_4K, pa(0x1000), TLB_GLOBAL);
  tlb.insert(va(0x4000_0000), PAGE_SIZE_2M, pa(0x20_0000), 0);
  tlb.insert(va(0x4000_0000), PAGE_SIZE_1G, pa(0x4000_0000), TLB_GLOBAL);
  tlb.insert(va(0x4000_2000), PAGE_SIZE_4K, pa(0x2000), 0);
  assertEquals(tlb.flushPage(va(0x4000_1abc)), 3);
  assertEquals(tlb.entries().map((e) => e.virtAddr), [0x4000_2000]);
  assertEquals(tlb.stats.flushes, 1);
});

Deno.test("Tlb.flushAll() keeps global entries only when asked", () => {
  const tlb = new Tlb();
  tlb.insert(va(0x1000), PAGE_SIZE_4K, pa(0x1000), TLB_GLOBAL);
  tlb.insert(va(0x2000), PAGE_SIZE_4K, pa(0x2000), 0);
  tlb.insert(va(0x20_0000), PAGE_SIZE_2M, pa(0x20_0000), TLB_GLOBAL);
  assertEquals(tlb.flushAll({ keepGlobal: true }), 1);
  assertEquals(tlb.entries().map((e) => e.virtAddr), [0x1000, 0x20_0000]);
  assertEquals(tlb.flushAll(), 2);
  assertEquals(tlb.size, 0);
  assertEquals(tlb.stats.flushes, 2);
});

Deno.test("Tlb.entries() reports each entry's page, frame, size and permissions", () => {
  const tlb = new Tlb();
  tlb.insert(va(0x4000_0000), PAGE_SIZE_1G, pa(0x8000_0000), TLB_USER | TLB_NO_EXECUTE);
  const slot = tlb.insert(va(0x5123), PAGE_SIZE_4K, pa(0x7000), TLB_WRITABLE | TLB_DIRTY);
  assertEquals(tlb.entries(), [
    {
      slot,
      virtAddr: va(0x5000),
      physAddr: pa(0x7000),
      pageSizeBytes: PAGE_SIZE_4K,
      writable: true,
      user: false,
      executable: true,
      global: false,
      dirty: true,
    },
    {
      slot: tlb.capacity - TLB_WAYS,
      virtAddr: va(0x4000_0000),
      physAddr: pa(0x8000_0000),
      pageSizeBytes: PAGE_SIZE_1G,
      writable: false,
      user: true,
      executable: false,
      global: false,
      dirty: false,
    },
  ]);
});

Deno.test("Tlb rejects set counts that are not powers of two", () => {
  assertThrows(() => new Tlb({ sets4K: 3 }), RangeError, "sets4K");
  assertThrows(() => new Tlb({ sets1G: 0 }), RangeError, "sets1G");
});

Deno.test("Tlb.hit4K() hits only through an entry whose rights the installed mask allows", () => {
  const tlb = new Tlb();
  // Rights index bits: 1 writable, 2 user, 4 no-execute, 8 dirty (hal/access_rights.ts).
  const writableAndDirty = 1 << (1 | 8);
  tlb.setHitMasks(0xffff, writableAndDirty, 0);
  assertEquals(tlb.hit4K(va(0x5123), "read"), TLB_NO_4K_ENTRY);
  tlb.insert(va(0x5000), PAGE_SIZE_4K, pa(0x7000), TLB_WRITABLE);
  assertEquals(tlb.physAddrAt(tlb.hit4K(va(0x5123), "read"), va(0x5123)), 0x7123);
  assertEquals(tlb.hit4K(va(0x5123), "write"), TLB_4K_DENIED, "D not known set");
  assertEquals(tlb.hit4K(va(0x5123), "fetch"), TLB_4K_DENIED);
  tlb.insert(va(0x5000), PAGE_SIZE_4K, pa(0x7000), TLB_WRITABLE | TLB_DIRTY);
  assertEquals(tlb.physAddrAt(tlb.hit4K(va(0x5ffc), "write"), va(0x5ffc)), 0x7ffc);
  assertEquals(tlb.stats.hits, 2, "only the hits are counted");
  assertEquals(tlb.stats.misses, 0);
  tlb.setHitMasks(0, 0, 0);
  assertEquals(tlb.hit4K(va(0x5123), "read"), TLB_4K_DENIED);
});

Deno.test("Tlb.hit4K() never matches an address that is not a 48-bit integer", () => {
  const tlb = new Tlb();
  tlb.setHitMasks(0xffff, 0xffff, 0xffff);
  tlb.insert(va(0), PAGE_SIZE_4K, pa(0x7000), TLB_WRITABLE);
  for (const bad of [0.5, -4096, -1, NaN, 2 ** 48, 2 ** 48 + 0x123]) {
    assertEquals(tlb.hit4K(va(bad), "read"), TLB_NO_4K_ENTRY, `address ${bad}`);
  }
});

Deno.test("Tlb.lookupLarge() searches only the 2 MiB and 1 GiB entries and counts the lookup", () => {
  const tlb = new Tlb();
  tlb.insert(va(0x4000_0000), PAGE_SIZE_4K, pa(0x1000), 0);
  assertEquals(tlb.lookupLarge(va(0x4000_0000)), -1);
  tlb.insert(va(0x4000_0000), PAGE_SIZE_2M, pa(0x60_0000), TLB_GLOBAL);
  const slot = tlb.lookupLarge(va(0x4010_0000));
  assertEquals(tlb.physAddrAt(slot, va(0x4010_0000)), 0x70_0000);
  assertEquals(tlb.flagsAt(slot), TLB_GLOBAL);
  assertEquals(tlb.stats, { hits: 1, misses: 1, flushes: 0 });
});

Deno.test("Tlb keeps every flag of an entry beside its translation, for any frame distance", () => {
  const tlb = new Tlb();
  const all = TLB_WRITABLE | TLB_USER | TLB_DIRTY | TLB_GLOBAL | TLB_NO_EXECUTE;
  const cases = [
    { virt: 0x7fff_ffff_f000, phys: 0x1000, flags: all }, // negative translation
    { virt: 0x1000, phys: 0xf_ffff_f000_0000, flags: TLB_USER | TLB_GLOBAL }, // near 2^52
    { virt: 0xffff_8000_0000_0000 % 2 ** 48, phys: 0x40_0000, flags: TLB_NO_EXECUTE },
  ];
  for (const { virt, phys, flags } of cases) {
    const slot = tlb.insert(va(virt), PAGE_SIZE_4K, pa(phys), flags);
    assertEquals(tlb.flagsAt(slot), flags);
    assertEquals(tlb.physAddrAt(slot, va(virt + 0xabc)), phys + 0xabc);
  }
  assertEquals(tlb.flushAll({ keepGlobal: true }), 1, "only the entry without G goes");
});

Deno.test("tlbRightsIndex() maps each TLB flag to its rights bit and ignores the rest", () => {
  const pairs = [
    [TLB_WRITABLE, RIGHTS_WRITABLE],
    [TLB_USER, RIGHTS_USER],
    [TLB_NO_EXECUTE, RIGHTS_NO_EXECUTE],
    [TLB_DIRTY, RIGHTS_DIRTY],
  ];
  for (let combination = 0; combination < 1 << pairs.length; combination++) {
    let flags = TLB_GLOBAL;
    let expected = 0;
    pairs.forEach(([flag, right], bit) => {
      if ((combination & (1 << bit)) !== 0) {
        flags |= flag;
        expected |= right;
      }
    });
    assertEquals(tlbRightsIndex(flags), expected, `flags ${flags.toString(2)}`);
  }
});
