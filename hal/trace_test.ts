import { assert, assertEquals, assertMatch, assertThrows } from "../testing/mod.ts";
import { Uart16550 } from "../devices/mod.ts";
import { FrameAllocator, KmemHeap } from "../kernel/mm/mod.ts";
import { bootTestKernel } from "../tests/_boot_kernel.ts";
import {
  CpuContext,
  CR0_PE,
  CR0_PG,
  CR4_PAE,
  CR4_PGE,
  DeviceBus,
  EFER_LME,
  EFER_NXE,
  encodeEntryHigh,
  encodeEntryLow,
  InterruptController,
  Mmu,
  PageFault,
  type PhysAddr,
  PhysicalMemory,
  PTE_G,
  PTE_HIGH_NX,
  PTE_P,
  PTE_PS,
  PTE_RW,
  type VirtAddr,
  writeEntry,
} from "./mod.ts";
import {
  parseTraceCategories,
  TRACE_ALL,
  TRACE_IRQ,
  TRACE_MM,
  TRACE_MMU,
  TRACE_UART,
  type TraceCategory,
  Tracer,
} from "./trace.ts";

const MiB = 2 ** 20;

/** A tracer for `categories` that collects its lines. */
function collectingTracer(
  categories: number | readonly TraceCategory[],
  nowNs?: () => number,
): { tracer: Tracer; lines: string[] } {
  const lines: string[] = [];
  return { tracer: new Tracer({ categories, sink: (line) => lines.push(line), nowNs }), lines };
}

Deno.test("parseTraceCategories() turns a comma-separated list into a bitmask", () => {
  assertEquals(parseTraceCategories("mm,mmu"), TRACE_MM | TRACE_MMU);
  assertEquals(parseTraceCategories(" uart , IRQ "), TRACE_UART | TRACE_IRQ);
  assertEquals(parseTraceCategories("mm,mm"), TRACE_MM);
  assertEquals(parseTraceCategories("all"), TRACE_ALL);
  assertEquals(parseTraceCategories("irq,all"), TRACE_ALL);
});

Deno.test("parseTraceCategories() rejects an unknown name, listing the accepted ones", () => {
  const error = assertThrows(() => parseTraceCategories("mm,disk"), RangeError, `"disk"`);
  assertMatch(error.message, /mm, mmu, uart, irq or all/);
  assertThrows(() => parseTraceCategories(""), RangeError, "mm, mmu, uart, irq or all");
  assertThrows(() => parseTraceCategories(" , "), RangeError, "expected one or more");
});

Deno.test("Tracer.emit() writes one timestamped line per event", () => {
  let nowNs = 1_234_000;
  const { tracer, lines } = collectingTracer(["mm"], () => nowNs);
  tracer.emit("mm", "alloc frame 0x1234 (pa 0x1234000)");
  nowNs = 12_500_000_000;
  tracer.emit("mm", "free frame 0x1234 (pa 0x1234000)");
  assertEquals(lines, [
    "[    0.001234] mm: alloc frame 0x1234 (pa 0x1234000)\n",
    "[   12.500000] mm: free frame 0x1234 (pa 0x1234000)\n",
  ]);
  assertEquals(tracer.lineCount, 2);
});

Deno.test("Tracer writes nothing for categories that are off", () => {
  let sinkCalls = 0;
  let clockCalls = 0;
  const tracer = new Tracer({
    categories: 0,
    sink: () => sinkCalls++,
    nowNs: () => clockCalls++,
  });
  assertEquals([tracer.mm, tracer.mmu, tracer.uart, tracer.irq], [false, false, false, false]);
  for (const category of ["mm", "mmu", "uart", "irq"] as const) {
    assertEquals(tracer.isOn(category), false);
    tracer.emit(category, "ignored");
  }
  assertEquals([sinkCalls, clockCalls], [0, 0]);
});

Deno.test("Tracer.setMask() switches categories on and off", () => {
  const { tracer, lines } = collectingTracer(TRACE_MMU);
  assertEquals([tracer.mm, tracer.mmu], [false, true]);
  tracer.setMask(TRACE_MM | 0x100);
  assertEquals([tracer.mm, tracer.mmu, tracer.mask], [true, false, TRACE_MM]);
  tracer.emit("mmu", "dropped");
  tracer.emit("mm", "kept");
  assertEquals(lines, ["[    0.000000] mm: kept\n"]);
});

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

/** A CPU with 4-level paging on and an empty PML4 at 0x1000. */
function pagedCpu(): { memory: PhysicalMemory; cpu: CpuContext; mmu: Mmu } {
  const memory = PhysicalMemory.contiguous(16 * MiB);
  const cpu = new CpuContext(new DeviceBus(memory), new InterruptController());
  const mmu = new Mmu(cpu, memory);
  cpu.efer = EFER_LME | EFER_NXE;
  cpu.cr4 = CR4_PAE | CR4_PGE;
  cpu.cr3 = 0x1000;
  cpu.cr0 = CR0_PE | CR0_PG;
  return { memory, cpu, mmu };
}

Deno.test("Mmu traces a page fault with mmu on", () => {
  const { mmu, cpu } = pagedCpu();
  const { tracer, lines } = collectingTracer(["mmu"]);
  cpu.setTracer(tracer);
  mmu.setTracer(tracer);
  assertThrows(() => mmu.translate((2 ** 47 + 0x1000) as VirtAddr, "write"), PageFault);
  assertEquals(lines, [
    "[    0.000000] mmu: page fault at 0xffff800000001000: not-present supervisor write " +
    "(error code 0x2)\n",
    "[    0.000000] mmu: tlb flush page 0xffff800000001000 (0 removed)\n",
  ]);
});

Deno.test("Tlb traces fills and flushes with mmu on", () => {
  const { memory, mmu, cpu } = pagedCpu();
  // PML4[256] -> PDPT at 0x2000; PDPT[0] maps 1 GiB at 0, writable, global, no-execute.
  const pdpt = 0x2000 as PhysAddr;
  writeEntry(memory, (0x1000 + 256 * 8) as PhysAddr, encodeEntryLow(pdpt, PTE_P | PTE_RW), 0);
  writeEntry(
    memory,
    pdpt,
    encodeEntryLow(0 as PhysAddr, PTE_P | PTE_RW | PTE_PS | PTE_G),
    encodeEntryHigh(0 as PhysAddr, PTE_HIGH_NX),
  );
  const { tracer, lines } = collectingTracer(["mmu"]);
  cpu.setTracer(tracer);
  assertEquals(mmu.translate((2 ** 47 + 0x123) as VirtAddr, "read"), 0x123);
  assertEquals(mmu.translate((2 ** 47 + 0x456) as VirtAddr, "read"), 0x456); // a TLB hit: no line
  cpu.invlpg((2 ** 47) as VirtAddr);
  cpu.writeCr3(0x1000);
  assertEquals(lines, [
    "[    0.000000] mmu: tlb fill 0xffff800000000000 -> 0x0 (1 GiB, W G NX)\n",
    "[    0.000000] mmu: tlb flush page 0xffff800000000000 (1 removed)\n",
    "[    0.000000] mmu: tlb flush non-global (0 removed)\n",
  ]);
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

Deno.test("CpuContext traces interrupt delivery with irq on and counts it per IRQ and vector", () => {
  const pic = new InterruptController();
  const cpu = new CpuContext(new DeviceBus(PhysicalMemory.contiguous(16 * MiB)), pic);
  const { tracer, lines } = collectingTracer(["irq"]);
  cpu.setTracer(tracer);
  const seen: number[] = [];
  const irq4Vector = pic.vectorOf(4);
  cpu.setInterruptHandler(irq4Vector, (vector) => seen.push(vector));
  pic.raise(4);
  pic.raise(3);
  cpu.sti(); // IRQ 3 has no handler and gets no EOI: IRQ 4 waits behind it
  pic.endOfInterrupt();
  cpu.hlt();
  assertEquals(seen, [irq4Vector]);
  assertEquals(lines, [
    "[    0.000000] irq: deliver IRQ 3 (vector 0x0b) (no handler)\n",
    "[    0.000000] irq: deliver IRQ 4 (vector 0x0c)\n",
  ]);
  assertEquals([cpu.interruptsDeliveredPerIrq[3], cpu.interruptsDeliveredPerIrq[4]], [1, 1]);
  assertEquals(cpu.interruptsDeliveredPerVector[irq4Vector], 1);
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
  kernel.frames.setTracer(tracer);
  kernel.heap.setTracer(tracer);
  kernel.heap.kfree(kernel.heap.kmalloc(64));
  assertMatch(lines.join(""), /mm: kmalloc 64 bytes -> 0x[0-9a-f]+\n.*mm: kfree /s);
});
