/**
 * Tracing across layers: the kernel's allocators, the UART model and a whole
 * traced boot write their `--trace` lines.
 */

import { Uart16550 } from "../devices/mod.ts";
import { InterruptController, PhysicalMemory, TRACE_ALL, TRACE_MM } from "../hal/mod.ts";
import { FrameAllocator, KmemHeap } from "../kernel/mod.ts";
import { assert, assertEquals, assertMatch, collectingTracer } from "../testing/mod.ts";
import { bootTestKernel } from "./_boot_kernel.ts";

const MiB = 2 ** 20;

function testAllocator(): FrameAllocator {
  const memory = PhysicalMemory.contiguous(16 * MiB);
  return FrameAllocator.create(memory, {
    usableRegions: [{ base: 0, length: 16 * MiB }],
    exclusions: [{ base: 0, length: MiB }],
  });
}

Deno.test("FrameAllocator traces allocations and frees with mm on", () => {
  const frames = testAllocator();
  const { tracer, lines } = collectingTracer(["mm"]);
  frames.setTracer(tracer);
  const frame = frames.allocate();
  frames.free(frame);
  const run = frames.allocateContiguous(8, 8);
  frames.freeContiguous(run, 8);
  const text = lines.join("");
  assertMatch(text, /^\[ +0\.000000\] mm: alloc frame 0x[0-9a-f]+ \(pa 0x[0-9a-f]+000\)$/m);
  assertMatch(text, new RegExp(`mm: free frame 0x${frame.toString(16)} \\(pa 0x[0-9a-f]+\\)`));
  assertMatch(text, /mm: alloc 8 frames 0x[0-9a-f]+\.\.0x[0-9a-f]+ \(pa 0x[0-9a-f]+\), align 8/);
  assertMatch(text, /mm: free 8 frames 0x[0-9a-f]+\.\.0x[0-9a-f]+ \(pa 0x[0-9a-f]+\)/);
  assertEquals(lines.length, 4);
});

Deno.test("FrameAllocator traces nothing when mm is off or no tracer is set", () => {
  const frames = testAllocator();
  const { tracer, lines } = collectingTracer(TRACE_ALL & ~TRACE_MM);
  frames.setTracer(tracer);
  frames.free(frames.allocate());
  frames.setTracer(undefined);
  frames.free(frames.allocate());
  assertEquals(lines, []);
});

Deno.test("KmemHeap traces kmalloc, krealloc and kfree with mm on", () => {
  const frames = testAllocator();
  const heap = KmemHeap.create(frames.memory, frames, { directMapOffset: 2 ** 47 });
  const { tracer, lines } = collectingTracer(["mm"]);
  heap.setTracer(tracer);
  const va = heap.kmalloc(100);
  const moved = heap.krealloc(va, 3000);
  heap.kfree(moved);
  const text = lines.join("");
  assertMatch(text, /mm: kmalloc 100 bytes -> 0xffff8000[0-9a-f]{8}\n/);
  assertMatch(text, /mm: krealloc 0xffff8000[0-9a-f]{8} to 3000 bytes -> 0xffff8000[0-9a-f]{8}\n/);
  assertMatch(text, /mm: kfree 0xffff8000[0-9a-f]{8} \(\d+ bytes\)\n/);
  // The heap's own frame allocations are traced by the allocator, not here.
  assert(!text.includes("alloc frame"));
});

Deno.test("Uart16550 traces bytes and IRQ line changes with uart on", () => {
  const interrupts = new InterruptController();
  const uart = new Uart16550({ interrupts });
  const { tracer, lines } = collectingTracer(["uart"]);
  uart.setTracer(tracer);
  uart.portWrite(0, 0x41, 1); // THR
  uart.portWrite(4, 0x08, 1); // MCR: OUT2 lets the IRQ through
  uart.portWrite(1, 0x01, 1); // IER: received data available
  assert(uart.receive(0x0a));
  assertEquals(uart.portRead(0, 1), 0x0a); // RBR
  assertEquals(lines.map((line) => line.slice(15)), [
    "uart: uart16550@0x3f8 tx 0x41 'A'\n",
    "uart: uart16550@0x3f8 rx 0x0a '\\n'\n",
    "uart: uart16550@0x3f8 raise IRQ 4 (received data)\n",
    "uart: uart16550@0x3f8 lower IRQ 4\n",
  ]);
  assertEquals([uart.transmittedByteCount, uart.receivedByteCount, uart.overrunCount], [1, 1, 0]);
});

Deno.test("Uart16550 traces and counts a receiver overrun", () => {
  const uart = new Uart16550({ interrupts: new InterruptController() });
  const { tracer, lines } = collectingTracer(["uart"]);
  uart.setTracer(tracer);
  uart.receiveFromLine(0x31);
  uart.receiveFromLine(0x32); // FIFOs off: RBR still holds 0x31
  assertEquals(lines[1].slice(15), "uart: uart16550@0x3f8 rx 0x32 '2' (overrun, RBR replaced)\n");
  assertEquals(uart.overrunCount, 1);
});

Deno.test("A traced boot writes uart and irq lines; the kernel's allocators trace mm", () => {
  const { tracer, lines } = collectingTracer(TRACE_ALL);
  const boot = bootTestKernel({
    memoryBytes: 16 * MiB,
    beforeBoot: (pc) => {
      pc.machine.setTracer(tracer);
      pc.uart.setTracer(tracer);
    },
  });
  const { kernel, serialText } = boot;
  const text = lines.join("");
  // Every byte the console printed is a tx line (loopback self-test bytes too).
  const printed = [...serialText()].filter((ch) => ch === "k").length;
  const txK = lines.filter((line) => line.endsWith(" tx 0x6b 'k'\n")).length;
  assertEquals(txK, printed);
  assertMatch(
    text,
    /uart: uart16550@0x3f8 tx 0x[0-9a-f]{2} \(loopback\)|tx 0x[0-9a-f]{2} '.' \(loopback\)/,
  );
  const { pc } = boot;
  assert(pc.machine.waitForInterrupt() > 0, "the timer fires");
  assertMatch(lines.join(""), /irq: deliver vector 0xec from the local APIC\n/);
  kernel.frames.setTracer?.(tracer);
  kernel.heap.setTracer?.(tracer);
  kernel.heap.kfree(kernel.heap.kmalloc(64));
  assertMatch(lines.join(""), /mm: kmalloc 64 bytes -> 0x[0-9a-f]+\n.*mm: kfree /s);
});
