import { PAGE_SIZE_4K, type PhysAddr, type VirtAddr } from "../../hal/mod.ts";
import { assert, assertEquals, assertThrows } from "../../testing/mod.ts";
import { bootTestKernel } from "../../tests/_boot_kernel.ts";
import { Page, PAGE_COPY_ON_WRITE, PAGE_USER, PAGE_WRITABLE } from "../mm/mod.ts";
import { ADDRESS_SPACE_TABLE_WORDS, AddressSpaceTable } from "./address_space_table.ts";
import { CommandError } from "./command.ts";

const va = (value: number) => value as VirtAddr;
const RW_USER = PAGE_WRITABLE | PAGE_USER;

Deno.test("AddressSpaceTable.fork() shares owned pages, maps raw ones again, declares lazy regions again", () => {
  const { kernel } = bootTestKernel();
  const { frames, machine, pageFaults } = kernel;
  const before = frames.stats().freeFrames;
  const words = new Uint32Array(ADDRESS_SPACE_TABLE_WORDS);
  const table = new AddressSpaceTable(kernel, words);
  const parent = table.create();
  assertEquals([words[2], words[3]], [parent.space.pml4Addr, 0], "slot 1's PML4 is in the table");
  const owned = Page.alloc(frames);
  const ownedPa = owned.physAddr;
  parent.space.mapPage(va(0x40_0000), owned, RW_USER);
  parent.space.map(va(0x60_0000), 0x20_0000 as PhysAddr, RW_USER, 2 * 2 ** 20);
  pageFaults.declareLazy(parent.space, va(0x80_0000), 4 * PAGE_SIZE_4K, RW_USER);
  const result = table.fork(parent.index);
  const child = result.child.space;
  assertEquals([result.sharedPages, result.rawMappings, result.lazyRegions], [1, 1, 1]);
  assertEquals(child.mapping(va(0x40_0000))?.physAddr, ownedPa);
  assertEquals(child.mapping(va(0x40_0000))?.flags, PAGE_USER | PAGE_COPY_ON_WRITE);
  assertEquals(frames.metadata.refcount((ownedPa / PAGE_SIZE_4K) as never), 2);
  assertEquals(child.translate(va(0x6f_ffff)), 0x2f_ffff);
  assertEquals(pageFaults.lazyRegions(child).length, 1);
  // The kernel half is shared: a direct-map address translates in the child.
  assertEquals(child.translate(va(2 ** 47 + 0x10_0000)), 0x10_0000);
  // Demand-zero in the child after the fork gives it its own frame.
  table.switchTo(result.child.index);
  machine.mmu.writeVirt8(va(0x80_0010), 1);
  assert(
    child.mapping(va(0x80_0000)) !== undefined && parent.space.mapping(va(0x80_0000)) === undefined,
  );
  assertEquals(table.current?.index, result.child.index);
  assertThrows(() => table.drop(result.child.index), CommandError, "switch to another one first");
  assertThrows(() => table.drop(0), CommandError, "the kernel's");
  table.switchTo(0);
  table.drop(result.child.index);
  assertEquals(frames.metadata.refcount((ownedPa / PAGE_SIZE_4K) as never), 1);
  assertEquals(table.check(), undefined);
  table[Symbol.dispose]();
  assertEquals(frames.stats().freeFrames, before, "every frame came back");
  assertEquals([...words], new Array(ADDRESS_SPACE_TABLE_WORDS).fill(0));
});

Deno.test("AddressSpaceTable holds 16 address spaces and says so when full", () => {
  const { kernel } = bootTestKernel();
  const table = new AddressSpaceTable(kernel, new Uint32Array(ADDRESS_SPACE_TABLE_WORDS));
  for (let i = 1; i < 16; i++) assertEquals(table.create().index, i);
  assertThrows(() => table.create(), CommandError, "holds 16 address spaces: drop one first");
  assertThrows(() => table.get(16), CommandError, "no address space 16");
  table[Symbol.dispose]();
  table[Symbol.dispose]();
});
