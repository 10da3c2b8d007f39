import { KernelError, UserCodeError } from "../kernel/mod.ts";
import { FrameAllocator, FrameMetadata } from "../kernel/mm/mod.ts";
import { PhysicalMemory } from "../hal/mod.ts";
import { EarlyFrameAllocator } from "../kernel/mm/mod.ts";
import { assert, assertEquals, assertStringIncludes } from "../testing/mod.ts";
import { importModule } from "../tests/_import_module.ts";
import {
  loadDeviceModule,
  loadKernelModule,
  loadPartModule,
  type PartKind,
  UserModuleError,
} from "./user_module.ts";

const REPO = new URL("../", import.meta.url).pathname;
const SDK = new URL("./mod.ts", import.meta.url).href;

/** Writes `source` as a module in a fresh temporary directory; returns its path. */
async function moduleFile(name: string, source: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kernelsim_user_module_" });
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, source.replaceAll("SDK", SDK));
  return path;
}

async function loadFailure(load: () => Promise<unknown>): Promise<string> {
  try {
    await load();
  } catch (error) {
    assert(error instanceof UserModuleError, `expected a UserModuleError, got ${error}`);
    assert(!error.message.includes("\n"), "one line");
    return error.message;
  }
  throw new Error("the load succeeded");
}

Deno.test("loadPartModule() loads examples/bitmap_frames.ts, and its provider works on a fresh machine", async () => {
  const part = await loadPartModule("frames", "examples/bitmap_frames.ts", {
    baseDir: REPO,
    importModule,
  });
  assertEquals(part.name, "examples/bitmap_frames.ts");
  const memory = PhysicalMemory.contiguous(16 * 2 ** 20);
  const usableRegions = [{ base: 2 ** 20, length: 15 * 2 ** 20 }];
  const early = new EarlyFrameAllocator(usableRegions, []);
  const frames = part.create({ memory, usableRegions, reservations: [], early, debug: false });
  assert(frames.metadata instanceof FrameMetadata);
  const before = frames.stats().freeFrames;
  const frame = frames.allocate();
  assertEquals(frames.stateOf(frame), "allocated");
  frames.free(frame);
  assertEquals(frames.stats().freeFrames, before);
});

Deno.test("loadPartModule() refuses a missing file, a directory and a remote URL in one line", async () => {
  assertEquals(
    await loadFailure(() =>
      loadPartModule("frames", "no_such_module.ts", { baseDir: REPO, importModule })
    ),
    "Cannot load no_such_module.ts: no such file",
  );
  assertEquals(
    await loadFailure(() => loadPartModule("frames", "examples", { baseDir: REPO, importModule })),
    "Cannot load examples: not a file",
  );
  assertEquals(
    await loadFailure(() =>
      loadPartModule("heap", "https://example.com/heap.ts", { importModule })
    ),
    "https://example.com/heap.ts: only local files can be loaded",
  );
});

Deno.test("loadPartModule() reports a syntax error and a throwing top level", async () => {
  const syntax = await moduleFile("syntax.ts", "export default function (: number {}\n");
  assertStringIncludes(
    await loadFailure(() => loadPartModule("frames", syntax, { importModule })),
    "syntax error",
  );
  const throwing = await moduleFile("throwing.ts", 'throw new RangeError("no config");\n');
  assertEquals(
    await loadFailure(() => loadPartModule("frames", throwing, { importModule })),
    `Cannot load ${throwing}: its top level threw RangeError: no config`,
  );
});

Deno.test("loadPartModule() refuses a module whose default export is not a factory", async () => {
  const none = await moduleFile("none.ts", "export const frames = 1;\n");
  assertEquals(
    await loadFailure(() => loadPartModule("frames", none, { importModule })),
    `${none}: the default export must be a FrameProviderFactory (a function), found nothing`,
  );
  const object = await moduleFile("object.ts", "export default { allocate() {} };\n");
  assertStringIncludes(
    await loadFailure(() => loadPartModule("pagetable", object, { importModule })),
    "must be a PageMapperFactory (a function), found an object",
  );
});

const SHAPES: [PartKind, string, string][] = [
  ["frames", "() => ({})", "the factory returned an object without allocate()"],
  ["frames", "() => 42", "the factory returned number 42"],
  [
    "frames",
    `(env) => { const f = FrameAllocator.create(new PhysicalMemory([{ base: 0, sizeBytes: 2 ** 26 }]), { usableRegions: env.usableRegions }); return f; }`,
    "the factory returned an object whose memory is not env.memory",
  ],
  [
    "pagetable",
    "() => ({ pml4Addr: 0x1000, map() {}, unmap() {}, protect() {}, translate() {} })",
    "the factory returned an object without [Symbol.dispose]()",
  ],
  [
    "heap",
    "() => ({ kmalloc() {}, kfree() {}, stats() {} })",
    "the factory returned an object without usableSize()",
  ],
  ["faults", "() => null", "the factory returned null"],
];

for (const [kind, factory, expected] of SHAPES) {
  Deno.test(`loadPartModule("${kind}") refuses a factory that returns the wrong shape: ${expected}`, async () => {
    const path = await moduleFile(
      "shape.ts",
      `import { FrameAllocator, PhysicalMemory } from "SDK";\nexport default ${factory};\n`,
    );
    const message = await loadFailure(() => loadPartModule(kind, path, { importModule }));
    assertStringIncludes(message, `${path}: ${expected}`);
    assertStringIncludes(message, "(on a scratch machine)");
  });
}

Deno.test("loadPartModule() refuses a factory that throws, naming what it threw", async () => {
  const path = await moduleFile(
    "throws.ts",
    "export default (env) => env.nothing.there;\n",
  );
  assertStringIncludes(
    await loadFailure(() => loadPartModule("heap", path, { importModule })),
    `${path}: factory threw TypeError: Cannot read properties of undefined`,
  );
});

Deno.test("a loaded part's objects are guarded: a later TypeError names the module and the call", async () => {
  const path = await moduleFile(
    "later.ts",
    `import { createStockFrameProvider } from "SDK";
export default (env) => {
  const stock = createStockFrameProvider(env);
  return new Proxy(stock, { get: (t, p) => p === "stateOf" ? () => { throw new TypeError("late"); } : (typeof t[p] === "function" ? t[p].bind(t) : t[p]) });
};\n`,
  );
  const part = await loadPartModule("frames", path, { importModule });
  const memory = PhysicalMemory.contiguous(16 * 2 ** 20);
  const usableRegions = [{ base: 2 ** 20, length: 15 * 2 ** 20 }];
  const frames = part.create({
    memory,
    usableRegions,
    reservations: [],
    early: new EarlyFrameAllocator(usableRegions, []),
    debug: false,
  });
  try {
    frames.stateOf(0 as never);
    throw new Error("stateOf returned");
  } catch (error) {
    assert(error instanceof UserCodeError);
    assertEquals(error.message, `${path}: stateOf() threw TypeError: late`);
  }
  // A part's contract errors stay what they are.
  try {
    frames.free(0x100 as never);
  } catch (error) {
    assert(error instanceof KernelError && error.code === "DoubleFree", String(error));
  }
});

Deno.test("loadKernelModule() returns an entry whose every exception is attributed", async () => {
  const path = await moduleFile(
    "kernel.ts",
    'export default (magic) => { if (magic !== 1) throw new Error("wrong magic"); };\n',
  );
  const kernel = await loadKernelModule(path, { importModule });
  kernel.create(1, 0 as never, undefined as never);
  try {
    kernel.create(2, 0 as never, undefined as never);
    throw new Error("entry returned");
  } catch (error) {
    assert(error instanceof UserCodeError);
    assertEquals(error.message, `${path}: kernel entry threw Error: wrong magic`);
  }
  const notAFunction = await moduleFile("not_function.ts", "export default 7;\n");
  assertStringIncludes(
    await loadFailure(() => loadKernelModule(notAFunction, { importModule })),
    "the default export must be a KernelEntry (magic, mbiAddress, hw) => void, found number 7",
  );
});

Deno.test("loadDeviceModule() checks the device, the driver and each command", async () => {
  const cases: [string, string][] = [
    ["export default 1;", "must be a DeviceModule { device, driver? }, found number 1"],
    ["export default {};", "has no device"],
    ['export default { device: { name: "d" } };', "has a device without attach(board)"],
    [
      'export default { device: { name: "d", attach() {} }, driver: { name: "d", commands: [{ name: "Bad Name", usage: "", summary: "", arity: [0, 0], run() {} }] } };',
      'has a command named "Bad Name"',
    ],
    [
      'export default { device: { name: "d", attach() {} }, driver: { name: "d", commands: [{ name: "ok" }] } };',
      'has a command "ok" without usage, summary, arity [min, max] and run',
    ],
  ];
  for (const [source, expected] of cases) {
    const path = await moduleFile("device.ts", `${source}\n`);
    assertStringIncludes(
      await loadFailure(() => loadDeviceModule(path, { importModule })),
      expected,
    );
  }
  const rtc = await loadDeviceModule("examples/cmos_rtc.ts", { baseDir: REPO, importModule });
  assertEquals(rtc.device.name, "cmos-rtc");
  assertEquals(rtc.driver?.commands?.map((command) => command.name), ["date", "rtc"]);
});

Deno.test("the stock frame allocator passes the loader's shape check and stays a FrameAllocator", async () => {
  const path = await moduleFile(
    "stock.ts",
    'import { createStockFrameProvider } from "SDK";\nexport default createStockFrameProvider;\n',
  );
  const part = await loadPartModule("frames", path, { importModule });
  const memory = PhysicalMemory.contiguous(16 * 2 ** 20);
  const usableRegions = [{ base: 2 ** 20, length: 15 * 2 ** 20 }];
  const early = new EarlyFrameAllocator(usableRegions, []);
  const frames = part.create({ memory, usableRegions, reservations: [], early, debug: false });
  assert(frames instanceof FrameAllocator, "the guard is transparent to instanceof");
  assertEquals(frames.stats().totalFrames, 15 * 256);
});
