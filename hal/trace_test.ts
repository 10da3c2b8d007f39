import { assertEquals, assertMatch, assertThrows, collectingTracer } from "../testing/mod.ts";
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
  Tracer,
} from "./trace.ts";

const MiB = 2 ** 20;

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
