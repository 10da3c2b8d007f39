/**
 * SMP benchmarks (docs/benchmarks.md, "SMP"): frame allocate+free
 * throughput with 1 and 2 CPUs, per-CPU caches on and off; the cost of one
 * TLB shootdown round trip; the device-mailbox round trip of an AP's port
 * read; and the boot of a 16-CPU machine until every CPU is online.
 *
 * The figures are wall time per operation on the boot CPU's thread. The
 * 2-CPU figures are the time per pair over both CPUs: the reciprocal of the
 * throughput, which halves when the CPUs scale. They depend on the host
 * giving each Worker a core of its own, which a busy 2-core machine does not
 * always do.
 *
 * Run: `deno bench --allow-read bench/smp_bench.ts` (or `deno task bench`).
 *
 * @module
 */

import { createPc, installAcpiTables } from "../devices/mod.ts";
import {
  HostClock,
  loadMultiboot2,
  pcMemoryMap,
  PhysicalMemory,
  ramRangesFor,
  type VirtAddr,
} from "../hal/mod.ts";
import { buildKernelImage, DIRECT_MAP_BASE, Kernel } from "../kernel/mod.ts";
import { bootSmpKernel, CPU_WORKER_URL } from "../tests/_smp_kernel.ts";
import { CHURN_PAIRS, FIGURES, MAILBOX_READS, SHOOTDOWN_ROUNDS } from "./_figures.ts";
import { addFloorBench } from "./_floor.ts";

/** CPUs of the boot benchmark. */
const BOOT_CPUS = 16;
/** A global kernel page every CPU caches: the direct map's second page. */
const GLOBAL_PAGE = (DIRECT_MAP_BASE + 0x1000) as VirtAddr;

addFloorBench();

// One machine of 2 CPUs for every bench but the boot's; the process ends with the benches.
const boot = await bootSmpKernel({ cpuCount: 2 });
const smp = boot.kernel.smp!;

const churns = [
  { figure: FIGURES.churn1Cached, cpuMask: 0b01, frameCaches: true },
  { figure: FIGURES.churn1Locked, cpuMask: 0b01, frameCaches: false },
  { figure: FIGURES.churn2Cached, cpuMask: 0b11, frameCaches: true },
  { figure: FIGURES.churn2Locked, cpuMask: 0b11, frameCaches: false },
];
for (const { figure, cpuMask, frameCaches } of churns) {
  Deno.bench({
    name: figure.name,
    group: "smp frames",
    n: 30,
    warmup: 3,
    fn(b) {
      smp.setSwitches({ frameCaches });
      b.start();
      const result = smp.churnFrames(cpuMask, CHURN_PAIRS);
      b.end();
      if (result.pairsPerCpu !== CHURN_PAIRS) throw new Error("The churn did not run");
    },
  });
}

Deno.bench({
  name: FIGURES.shootdown.name,
  group: "smp",
  n: 30,
  warmup: 3,
  fn() {
    const shootdown = smp.services.shootdown;
    const before = shootdown.stats().rounds;
    for (let i = 0; i < SHOOTDOWN_ROUNDS; i++) shootdown.invalidatePage(GLOBAL_PAGE, true, true, 0);
    if (shootdown.stats().rounds - before !== SHOOTDOWN_ROUNDS) {
      throw new Error("A shootdown did not reach the other CPU");
    }
  },
});

Deno.bench({
  name: FIGURES.mailbox.name,
  group: "smp",
  n: 30,
  warmup: 3,
  fn() {
    smp.deviceRoundTrip(1, MAILBOX_READS);
  },
});

Deno.bench({
  name: FIGURES.smpBoot16.name,
  group: "smp boot",
  n: 5,
  warmup: 1,
  async fn(b) {
    const memoryMap = pcMemoryMap(128 * 2 ** 20);
    const memory = new PhysicalMemory(ramRangesFor(memoryMap));
    b.start();
    const pc = createPc(memory, new HostClock(), {
      serialSink: () => {},
      smp: { cpuCount: BOOT_CPUS, cpuWorkerUrl: CPU_WORKER_URL },
    });
    const acpi = installAcpiTables(pc, memory, memoryMap);
    const loaded = loadMultiboot2(memory, buildKernelImage(), {
      memoryMap,
      loaderVersion: "bench",
      cmdline: "",
      modules: [],
      rsdp: acpi?.rsdp,
    });
    const kernel = Kernel.boot(pc.machine, loaded.magic, loaded.mbiAddress, { version: "bench" });
    b.end();
    const online = kernel.smp?.onlineMask ?? 0;
    await pc.smp!.shutdown();
    if (online !== 2 ** BOOT_CPUS - 1) {
      throw new Error(`Only CPUs ${online.toString(2)} came online`);
    }
  },
});
