import type { DevicePlugin } from "../devices/mod.ts";
import { type FrameNumber, PAGE_SIZE_4K } from "../hal/mod.ts";
import { type Command, executeLine, MONITOR_COMMANDS } from "../kernel/monitor/mod.ts";
import { KernelPanic } from "../kernel/mod.ts";
import {
  availableFrameRuns,
  createStockFrameProvider,
  type FrameProvider,
  type FrameProviderFactory,
} from "../kernel/mm/mod.ts";
import createBitmapFrames from "../examples/bitmap_frames.ts";
import createSimplePageMapper from "../examples/simple_page_mapper.ts";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../testing/mod.ts";
import { bootTestKernel } from "./_boot_kernel.ts";

Deno.test("Kernel.boot() with a user's frame provider reports it, its statistics and green self-tests", () => {
  const { kernel } = bootTestKernel({
    parts: { frames: { name: "examples/bitmap_frames.ts", create: createBitmapFrames } },
  });
  const report = kernel.report();
  assertEquals(report.parts.frames, "examples/bitmap_frames.ts");
  assertEquals(report.parts.heap, "stock");
  assert(report.frames.details !== undefined && report.frames.details.allocations > 0);
  const failed = kernel.selftests().map((test) => {
    try {
      test.run();
      return "";
    } catch (error) {
      return `${test.name}: ${error}`;
    }
  }).filter((line) => line !== "");
  assertEquals(failed, []);
});

Deno.test("Kernel.boot() with a user's mapper builds the kernel's space with it and no recursive entry", () => {
  const { kernel, pc } = bootTestKernel({
    parts: { pageMapper: { name: "mapper.ts", create: createSimplePageMapper } },
  });
  assertEquals(kernel.parts.pageMapper, "mapper.ts");
  assert(kernel.kernelSpace.addressSpace.isActive);
  assert(!kernel.kernelSpace.hasRecursiveMapping);
  // The heap's blocks are reached through the user's direct map.
  const va = kernel.heap.kmalloc(64);
  pc.machine.mmu.writeVirt32(va, 0xfeed);
  assertEquals(pc.machine.mmu.readVirt32(va), 0xfeed);
});

/** The stock provider, except that it claims the frames of its own state are free. */
const leakyStateFrames: FrameProviderFactory = (env) => {
  const stock = createStockFrameProvider(env);
  const own = new Set<number>();
  for (const range of stock.metadataRanges()) {
    for (let pa: number = range.base; pa < range.base + range.length; pa += PAGE_SIZE_4K) {
      own.add(pa / PAGE_SIZE_4K);
    }
  }
  return new Proxy(stock, {
    get(target, property) {
      if (property === "stateOf") {
        return (frame: FrameNumber) => own.has(frame) ? "free" : target.stateOf(frame);
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as FrameProvider;
};

Deno.test("Kernel.boot() panics when a frame provider would hand out its own state frames", () => {
  const panic = assertThrows(
    () => bootTestKernel({ parts: { frames: { name: "leaky.ts", create: leakyStateFrames } } }),
    KernelPanic,
  );
  assertStringIncludes(panic.message, "InvalidPart: Frame provider reports frame 0x");
  assertStringIncludes(panic.message, "(its own state) as free: it must be reserved");
});

Deno.test("availableFrameRuns() cuts reservations out of the usable regions, rounding each the safe way", () => {
  assertEquals(
    availableFrameRuns(
      [{ base: 0x800, length: 0x9f000 }, { base: 0x100000, length: 0x100000 }],
      [{ base: 0x10_0800, length: 0x10 }, { base: 0x1f_f000, length: 0x2000 }],
    ),
    [{ firstFrame: 1, endFrame: 0x9f }, { firstFrame: 0x101, endFrame: 0x1ff }],
  );
});

const stampCommand: Command = {
  name: "stamp",
  usage: "",
  summary: "print a stamp",
  arity: [0, 0],
  run: (_args, context) => context.print("stamped"),
};

Deno.test("a driver's init runs at boot with a log, and its commands reach the monitor", () => {
  const seen: string[] = [];
  const { kernel, serialText } = bootTestKernel({
    parts: {
      drivers: [{
        name: "stamp",
        init: ({ hardware, log }) => {
          seen.push(typeof hardware.cpu.inb);
          log("stamp device ready");
        },
        commands: [stampCommand],
      }],
    },
  });
  assertEquals(seen, ["function"]);
  assertStringIncludes(serialText(), "stamp: stamp device ready");
  assertEquals(kernel.commands, [stampCommand]);
  const printed: string[] = [];
  const context = {
    kernel,
    addressSpace: kernel.kernelSpace.addressSpace,
    pages: new Map(),
    allocations: new Set(),
    commands: [...MONITOR_COMMANDS, ...kernel.commands],
    consoleStats: () => ({
      queuedBytes: 0,
      queueCapacityBytes: 0,
      droppedBytes: 0,
      linesRun: 0,
      linesTooLong: 0,
      lineCapacityBytes: 0,
    }),
    print: (text: string) => printed.push(text),
    halt: () => {},
    panic: (): never => {
      throw new Error("panic");
    },
  };
  assertEquals(executeLine("stamp", context as never), "ran");
  assertEquals(printed, ["stamped"]);
});

Deno.test("Kernel.boot() panics when a driver's command takes a name already used", () => {
  const panic = assertThrows(
    () =>
      bootTestKernel({
        parts: { drivers: [{ name: "dup", commands: [{ ...stampCommand, name: "help" }] }] },
      }),
    KernelPanic,
  );
  assertStringIncludes(
    panic.message,
    'Driver dup cannot add monitor command "help": the name is taken',
  );
});

Deno.test("createPc() attaches extra devices on their ports and refuses an overlapping claim", () => {
  const echo: DevicePlugin = {
    name: "echo",
    attach(board) {
      let last = 0;
      board.claimPorts(0x300, 1, {
        name: "echo",
        portRead: () => last,
        portWrite: (_offset, value) => {
          last = value;
        },
      });
    },
  };
  const { pc } = bootTestKernel({ devices: [echo] });
  pc.machine.cpu.outb(0x300, 0x5a);
  assertEquals(pc.machine.cpu.inb(0x300), 0x5a);
  const clash: DevicePlugin = {
    name: "clash",
    attach: (board) =>
      board.claimPorts(0x3f8, 1, { name: "clash", portRead: () => 0, portWrite() {} }),
  };
  assertThrows(() => bootTestKernel({ devices: [clash] }), RangeError, "already claimed by");
});
