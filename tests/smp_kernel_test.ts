/**
 * The kernel on several CPUs, in-process: bring-up, the bound on a CPU that
 * never answers, IPIs, another CPU's TLB, an AP's panic, and the stress with
 * its two negative controls. Each test boots its own machine and always
 * shuts it down (every AP Worker ends on its own).
 */

import { assert, assertEquals, assertMatch, assertThrows } from "../testing/asserts.ts";
import type { PhysAddr } from "../hal/mod.ts";
import { KernelPanic, Page, SMP_FUNCTIONS } from "../kernel/mod.ts";
import { bootSmpKernel, type SmpTestBoot } from "./_smp_kernel.ts";

/** How long each stress runs, in ms: seconds, not minutes (the suite runs on 2 cores). */
const STRESS_MS = 1500;
/** The negative controls run until they catch the bug, at most this long. */
const CONTROL_MAX_MS = 8000;

function assertGreater(actual: number, expected: number, message?: string): void {
  assert(actual > expected, `${message ?? "value"}: ${actual} is not above ${expected}`);
}

async function withSmpKernel(
  options: Parameters<typeof bootSmpKernel>[0],
  body: (boot: SmpTestBoot) => void | Promise<void>,
): Promise<void> {
  const boot = await bootSmpKernel(options);
  try {
    await body(boot);
  } finally {
    assertEquals(await boot.shutdown(), [], "every AP Worker ends on its own");
  }
}

function sharedSpace(boot: SmpTestBoot) {
  const { kernel } = boot;
  return () => kernel.createAddressSpace(kernel.frames, kernel.machine.cpu, {});
}

Deno.test("Kernel.boot() on 4 CPUs starts every AP, lists each in the log and passes the self-tests", async () => {
  await withSmpKernel({ cpuCount: 4, config: { selftest: true } }, ({ kernel, serialText }) => {
    const log = serialText();
    for (let cpu = 1; cpu < 4; cpu++) {
      assertMatch(log, new RegExp(`smp: CPU ${cpu} \\(APIC ID ${cpu}\\) online after \\d+ ms`));
    }
    assertMatch(log, /smp: 4 of 4 CPUs online/);
    assertEquals(kernel.selftestResults?.filter((result) => !result.passed), []);
    const cpus = kernel.smp!.cpus();
    assertEquals(cpus.map((cpu) => cpu.state), ["online", "online", "online", "online"]);
    // Every CPU runs on the kernel's page tables.
    const kernelPml4 = kernel.kernelSpace.addressSpace.pml4Addr;
    assertEquals(cpus.map((cpu) => cpu.cr3), [kernelPml4, kernelPml4, kernelPml4, kernelPml4]);
  });
});

Deno.test("Kernel.boot() reports a CPU that does not come online within the bound and leaves it out", async () => {
  await withSmpKernel(
    { cpuCount: 3, deadCpus: [2], config: { smp: { apOnlineTimeoutMs: 300 } } },
    ({ kernel, serialText }) => {
      assertMatch(
        serialText(),
        /smp: WARN: CPU 2 \(APIC ID 2\) did not come online within 300 ms: left out/,
      );
      assertMatch(serialText(), /smp: 2 of 3 CPUs online/);
      assertEquals(kernel.smp!.onlineMask, 0b011);
      assertThrows(() => kernel.smp!.sendIpi(2, 0x40), Error, "CPU 2 is not online");
    },
  );
});

Deno.test("an IPI the kernel sends runs on the CPU it names", async () => {
  await withSmpKernel({ cpuCount: 2 }, ({ kernel }) => {
    const smp = kernel.smp!;
    const others = () => {
      const info = smp.cpus()[1];
      return info.interrupts - info.ticks - info.calls - info.shootdowns;
    };
    const before = others();
    for (let i = 1; i <= 3; i++) {
      smp.sendIpi(1, 0x40);
      // One at a time: a second IPI of a vector still requested collapses into its IRR bit.
      const deadline = performance.now() + 10_000;
      while (others() - before < i && performance.now() < deadline) kernel.machine.cpu.pause();
    }
    assertGreater(others() - before, 2, "the 3 IPIs ran on CPU 1");
    assertThrows(() => smp.sendIpi(1, 3), Error, "expected 16 to 255");
  });
});

Deno.test("another CPU's TLB can be read: it lists the translations that CPU cached", async () => {
  await withSmpKernel({ cpuCount: 2 }, ({ kernel }) => {
    const entries = kernel.smp!.tlbEntries(1);
    assertGreater(entries.length, 0);
    // The AP reached its local APIC through the MMIO window.
    assert(entries.some((entry) => entry.physAddr === 0xfee00000), "the APIC page is cached");
  });
});

Deno.test("a panic on an AP stops every CPU, and the boot CPU prints which one panicked", async () => {
  await withSmpKernel({ cpuCount: 3 }, ({ kernel, serialText }) => {
    using page = Page.alloc(kernel.frames); // zeroed: no stress block there
    const panic = assertThrows(() => {
      kernel.smp!.services.calls.call(0b010, SMP_FUNCTIONS.runStress, page.physAddr as PhysAddr);
      const deadline = performance.now() + 10_000;
      while (performance.now() < deadline) kernel.machine.cpu.pause(); // the NMI arrives here
    }, KernelPanic);
    assertEquals(panic.cpu, 1);
    assertMatch(
      serialText(),
      /KERNEL PANIC \(CPU 1\): InvalidAddress: No stress block at 0x[0-9a-f]+/,
    );
    assert(kernel.machine.haltReason !== undefined, "the machine halted");
  });
});

Deno.test("the stress on 2 CPUs loses no frame, reads nothing stale and passes every end check", async () => {
  await withSmpKernel({ cpuCount: 2 }, (boot) => {
    const report = boot.kernel.smp!.stress({ durationMs: STRESS_MS, seed: 11 }, sharedSpace(boot));
    const problems = report.cpus.map((cpu) => cpu.firstProblem).filter((p) => p !== undefined);
    assertEquals(problems, []);
    assertEquals(report.checkFailures, []);
    assertEquals(report.unfinishedCpus, []);
    assertEquals(report.freeFramesAfter, report.freeFramesBefore);
    assertEquals(report.refcountChanges, 0);
    assertEquals(report.totals.staleReads, 0);
    assertEquals(report.totals.doubleHandOuts, 0);
    assertEquals(report.cpuCount, 2);
    for (const cpu of report.cpus) {
      assertGreater(cpu.counts.rounds, 0, `CPU ${cpu.cpu} took part`);
      assertGreater(cpu.counts.unmaps, 0, `CPU ${cpu.cpu} unmapped pages others read`);
    }
    assertGreater(report.totals.pagesFromOtherCpus, 0, "page references crossed CPUs");
    assertGreater(report.totals.reads, 0);
  });
});

Deno.test("with TLB shootdown off (the teaching switch), the stress sees stale reads", async () => {
  await withSmpKernel({ cpuCount: 2 }, (boot) => {
    const smp = boot.kernel.smp!;
    smp.setSwitches({ shootdown: false });
    let staleReads = 0;
    const deadline = performance.now() + CONTROL_MAX_MS;
    while (staleReads === 0 && performance.now() < deadline) {
      const report = smp.stress({ durationMs: 500, seed: 5 }, sharedSpace(boot));
      staleReads += report.totals.staleReads;
    }
    smp.setSwitches({ shootdown: true });
    assertGreater(staleReads, 0, "a CPU read a page through a translation its unmap left behind");
  });
});

Deno.test("with the frame allocator's lock removed (a test-only switch), the stress sees lost or twice-handed-out frames", async () => {
  await withSmpKernel({ cpuCount: 2 }, (boot) => {
    const smp = boot.kernel.smp!;
    smp.setSwitches({ frameCaches: false }); // every allocation reaches the allocator
    smp.framesLock.setRemoved(true);
    let detected = false;
    const deadline = performance.now() + CONTROL_MAX_MS;
    while (!detected && performance.now() < deadline) {
      const report = smp.stress(
        { durationMs: 500, seed: 9, framesOnly: true },
        sharedSpace(boot),
      );
      detected = report.totals.doubleHandOuts > 0 ||
        report.freeFramesAfter !== report.freeFramesBefore ||
        report.checkFailures.some((failure) => /frame allocator|frames lost/.test(failure));
    }
    assert(detected, "the race on the allocator's bitmap was caught");
  });
});

Deno.test("the frame churn runs on every CPU of the mask at once and gives every frame back", async () => {
  await withSmpKernel({ cpuCount: 2 }, ({ kernel }) => {
    const smp = kernel.smp!;
    const free = kernel.frames.stats().freeFrames;
    for (const frameCaches of [true, false]) {
      smp.setSwitches({ frameCaches });
      const result = smp.churnFrames(0b11, 5000);
      assertEquals(result.cpuCount, 2);
      assertEquals(result.pairsPerCpu, 5000);
      assertGreater(result.nsPerPair, 0);
    }
    smp.setSwitches({ frameCaches: true });
    assertEquals(kernel.frames.stats().freeFrames, free);
    kernel.frames.checkInvariants?.();
  });
});

Deno.test("an AP's device reads go through its mailbox, and the boot CPU has none", async () => {
  await withSmpKernel({ cpuCount: 2 }, ({ kernel, pc }) => {
    const smp = kernel.smp!;
    const served = pc.smp!.mailboxes.served[1];
    assertGreater(smp.deviceRoundTrip(1, 100), 0);
    assertEquals(pc.smp!.mailboxes.served[1] - served, 100);
    assertThrows(() => smp.deviceRoundTrip(0, 1), Error, "its devices need no mailbox");
  });
});
