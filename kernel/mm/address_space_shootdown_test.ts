import { assertEquals } from "../../testing/asserts.ts";
import type { VirtAddr } from "../../hal/mod.ts";
import { AddressSpace, type TlbShootdownHook } from "./address_space.ts";
import { Page } from "./page.ts";
import { bootTestMachine } from "./_test_machine.ts";

/** A hook that records each call, with the state of the frame or table it is about. */
function recordingHook(look: () => string): { hook: TlbShootdownHook; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    hook: {
      invalidatePage: (va, isGlobal) =>
        calls.push(`page 0x${va.toString(16)} ${isGlobal} ${look()}`),
      tableUnlinked: () => calls.push(`table ${look()}`),
    },
  };
}

Deno.test("AddressSpace with a shootdown hook: the hook runs for each changed leaf before its frame is freed", () => {
  const { frames, cpu } = bootTestMachine();
  let watched = 0;
  const { hook, calls } = recordingHook(() => frames.stateOf(watched as never));
  using space = AddressSpace.create(frames, cpu, { shootdown: hook });
  const va = 0x40_0000 as VirtAddr;
  const page = Page.alloc(frames);
  watched = page.frame;
  space.mapPage(va, page, { writable: true });
  assertEquals(calls.length, 0, "a new mapping over a not-present entry needs no invalidation");
  space.protect(va, {});
  space.unmap(va);
  // Each call saw the page's frame still allocated: the hook came first, the free after.
  assertEquals(calls.slice(0, 2), [
    "page 0x400000 false allocated",
    "page 0x400000 false allocated",
  ]);
  assertEquals(frames.stateOf(watched as never), "free");
  // The unmap emptied three tables: each was unlinked (hook) before it was freed.
  assertEquals(calls.slice(2).map((call) => call.split(" ")[0]), ["table", "table", "table"]);
});

Deno.test("AddressSpace with a shootdown hook: global leaves and range operations go to the hook page by page", () => {
  const { frames, cpu } = bootTestMachine();
  const { hook, calls } = recordingHook(() => "");
  using space = AddressSpace.create(frames, cpu, { shootdown: hook });
  space.mapRange(0x40_0000 as VirtAddr, 0x20_0000 as never, 40 * 4096, { global: true });
  space.unmapRange(0x40_0000 as VirtAddr, 40 * 4096);
  const pages = calls.filter((call) => call.startsWith("page"));
  assertEquals(pages.length, 40, "no deferred whole flush: every page, before its frame may go");
  assertEquals(pages[0], "page 0x400000 true ");
});

Deno.test("AddressSpace.attach() sees the tables another handle made, and its dispose only detaches", () => {
  const { frames, cpu } = bootTestMachine();
  using space = AddressSpace.create(frames, cpu);
  space.map(0x40_0000 as VirtAddr, 0x20_0000 as never, { writable: true });
  const other = AddressSpace.attach(frames, cpu, space.pml4Addr);
  assertEquals(other.translate(0x40_0123 as VirtAddr), 0x20_0123);
  other.unmap(0x40_0000 as VirtAddr);
  assertEquals(space.translate(0x40_0000 as VirtAddr), undefined);
  const free = frames.stats().freeFrames;
  other[Symbol.dispose]();
  assertEquals(frames.stats().freeFrames, free, "the creator's handle frees the tables");
  space.map(0x40_0000 as VirtAddr, 0x20_0000 as never, {});
});
