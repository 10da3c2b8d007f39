import type { Mmu } from "../hal/mod.ts";
import { assert, assertEquals, assertMatch } from "../testing/mod.ts";
import { bootTestKernel } from "../tests/_boot_kernel.ts";
import { KernelError } from "./errors.ts";
import { type FrameProvider, Page } from "./mm/mod.ts";
import { memorySelftests, runSelftests, type Selftest } from "./selftest.ts";

const MIB = 2 ** 20;

/** `frames`, except that `allocate()` runs out of memory on call number `failAt`. */
function allocatorFailingAt(frames: FrameProvider, failAt: number): FrameProvider {
  let calls = 0;
  return new Proxy(frames, {
    get(target, key) {
      if (key === "allocate") {
        return () => {
          if (++calls === failAt) throw new KernelError("OutOfMemory", "injected failure");
          return target.allocate();
        };
      }
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

Deno.test("runSelftests() fails a test that leaks frames or heap bytes, naming the leak", () => {
  const { kernel } = bootTestKernel({ memoryBytes: 32 * MIB });
  const { frames, heap } = kernel;
  const kept: Page[] = [];
  const tests: Selftest[] = [
    { name: "clean", run: () => Page.alloc(frames)[Symbol.dispose]() },
    { name: "keeps pages", run: () => kept.push(Page.alloc(frames), Page.alloc(frames)) },
    { name: "keeps one page", run: () => kept.push(Page.alloc(frames)) },
    { name: "keeps a block", run: () => void heap.kmalloc(100) },
  ];
  const results = runSelftests(tests, { frames, heap });
  assertEquals(results.map((result) => [result.name, result.passed]), [
    ["clean", true],
    ["keeps pages", false],
    ["keeps one page", false],
    ["keeps a block", false],
  ]);
  assertEquals(results[1].detail, "leaked 2 frames");
  assertEquals(results[2].detail, "leaked 1 frame");
  assertMatch(results[3].detail, /^leaked 1\d\d heap bytes$/);
  for (const page of kept) page[Symbol.dispose]();
});

Deno.test("runSelftests() keeps a test's own failure and adds the leak after it", () => {
  const { kernel } = bootTestKernel({ memoryBytes: 32 * MIB });
  const { frames, heap } = kernel;
  const page = { held: undefined as Page | undefined };
  const [result] = runSelftests([{
    name: "fails holding a page",
    run() {
      page.held = Page.alloc(frames);
      throw new Error("check failed");
    },
  }], { frames, heap });
  assertEquals(result.detail, "check failed; leaked 1 frame");
  page.held?.[Symbol.dispose]();
});

Deno.test("A memory self-test that fails part-way gives back what it took, so the rest pass", () => {
  const { kernel } = bootTestKernel({ memoryBytes: 32 * MIB });
  const { frames, heap } = kernel;
  const available = () => frames.stats().freeFrames + heap.stats().bytesMapped / 4096;
  const availableBefore = available();
  const mmu: Mmu = kernel.machine.mmu;
  // The first test's 600th allocation fails: it holds 599 frames at that point.
  const tests = memorySelftests({ frames: allocatorFailingAt(frames, 600), heap, mmu });
  const results = runSelftests(tests, { frames, heap });
  assertEquals(results[0].passed, false);
  assertEquals(results[0].detail, "injected failure", "the real reason, and no leak");
  assert(results.slice(1).every((result) => result.passed), JSON.stringify(results));
  assertEquals(available(), availableBefore, "frames free or cached by the heap");
  assertEquals(heap.stats().bytesInUse, 0);
});

Deno.test("Kernel.runSelftests() passes every stock self-test with nothing leaked", () => {
  const { kernel } = bootTestKernel({ memoryBytes: 32 * MIB });
  const results = kernel.runSelftests();
  assertEquals(results.filter((result) => !result.passed), []);
  assertEquals(results.length, kernel.selftests().length);
});
