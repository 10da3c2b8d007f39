import { assert, assertEquals } from "../testing/mod.ts";
import { TRACE_MM } from "../hal/mod.ts";
import { bootTestKernel } from "../tests/_boot_kernel.ts";
import { extendedReportSections } from "./report_sections.ts";
import { scanPageTables } from "./page_table_scan.ts";
import { createTraceOutput } from "./tracing.ts";

Deno.test("extendedReportSections() reads the allocator, heap, paging, UART and interrupts", () => {
  const { kernel, pc, serialText } = bootTestKernel({ memoryBytes: 64 * 2 ** 20 });
  const va = kernel.heap.kmalloc(100);
  kernel.heap.kfree(kernel.heap.kmalloc(5000));
  const frame = kernel.frames.allocate();
  assert(pc.machine.waitForInterrupt() > 0, "a timer tick");
  const sections = extendedReportSections(kernel);

  const stats = kernel.frames.stats();
  assertEquals(sections.frames.allocatedFrames, stats.allocatedFrames);
  assertEquals(
    sections.frames.pools.reduce((sum, p) => sum + p.allocatedFrames + p.reservedFrames, 0),
    stats.allocatedFrames + stats.reservedFrames,
  );
  assertEquals(sections.heap.liveAllocations, 1);
  assertEquals(sections.heap.frees, sections.heap.allocations - 1);
  assert(sections.heap.sizeClasses.some((c) => c.objectSizeBytes === 112 && c.objectsInUse === 1));
  assertEquals(sections.heap.framesMapped * 4096, sections.heap.bytesMapped);

  const cr3 = kernel.machine.cpu.cr3;
  if (cr3 !== 0) {
    const scan = scanPageTables(kernel.machine.memory, cr3);
    assert("tableFrames" in sections.paging);
    assertEquals(sections.paging.tableFrames, scan.tableFrames.length);
    assertEquals(sections.paging.mappedBytes, scan.mappedBytes);
  } else {
    assertEquals(sections.paging, { isEnabled: false, rootAddress: 0 });
  }

  // The kernel's serial driver counted every byte the console printed.
  assertEquals(sections.uart.bytesTransmitted, new TextEncoder().encode(serialText()).length);
  assertEquals(sections.uart.overruns, 0);
  assertEquals(sections.interrupts.perIrq.length, 16);
  assert(sections.interrupts.perIrq[0] >= 1, "IRQ 0 delivered (the calibration ticks)");
  assertEquals(
    sections.interrupts.perVector.reduce((sum, entry) => sum + entry.count, 0),
    sections.interrupts.delivered,
    "every delivery ran an installed handler",
  );
  const { routing } = sections.interrupts;
  assertEquals(routing.mode, "apic");
  assertEquals(routing.timer.source, "local APIC timer");
  const timerRoute = routing.isaIrqs.find((route) => route.irq === 0)!;
  assertEquals([timerRoute.gsi, timerRoute.pin, timerRoute.overridden], [2, 2, true]);
  assert(
    sections.interrupts.perVector.some((e) => e.vector === routing.timer.vector && e.count >= 1),
    "the local APIC timer ticked",
  );
  assertEquals(JSON.parse(JSON.stringify(sections)), sections, "plain JSON-able data");
  kernel.frames.free(frame);
  kernel.heap.kfree(va);
});

Deno.test("createTraceOutput() buffers trace lines to a file and writes them on flush", () => {
  const written: string[] = [];
  const stream = {
    writeSync(bytes: Uint8Array): number {
      written.push(new TextDecoder().decode(bytes));
      return bytes.length;
    },
  };
  const buffered = createTraceOutput(TRACE_MM, { kind: "file", stream }, () => 2_000_000);
  buffered.tracer.emit("mm", "alloc frame 0x100 (pa 0x100000)");
  assertEquals(written, []);
  buffered.flush();
  assertEquals(written, ["[    0.002000] mm: alloc frame 0x100 (pa 0x100000)\n"]);
});
