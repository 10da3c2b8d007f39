/**
 * Monitor commands about the CPUs (docs/smp.md, "Monitor"): `cpus` (each
 * CPU's APIC ID, state, CR3, TLB and interrupt counters, locks held),
 * `locks` (every spinlock's contention), `ipi CPU VECTOR`, `shootdown
 * [on|off]` (the teaching switch) and `stress [SECONDS]`. With one CPU they
 * describe that CPU, and the stress runs on it alone.
 *
 * @module
 */

import { hex, VirtualClock } from "../../hal/mod.ts";
import { LOCAL_TIMER_VECTOR } from "../interrupts/mod.ts";
import type { AddressSpaceLike } from "../mm/mod.ts";
import {
  runSingleCpuStress,
  type SmpCpuInfo,
  STRESS_COUNTERS,
  type StressCounts,
  type StressOptions,
  type StressReport,
} from "../smp/mod.ts";
import type { Kernel } from "../kernel.ts";
import { parseInteger } from "./_args.ts";
import { stockSpaceOf } from "./address_space_table.ts";
import { plural } from "./_format.ts";
import { type Command, type CommandContext, CommandError } from "./command.ts";

/** The stress's length when `stress` is given none, in seconds. */
export const STRESS_DEFAULT_SECONDS = 2;
/** The longest `stress` accepted, in seconds. */
const STRESS_MAX_SECONDS = 600;
/** Rounds per CPU per second of a stress on a virtual clock (time does not pass there). */
export const STRESS_ROUNDS_PER_VIRTUAL_SECOND = 2000;
/** The seed every `stress` starts from (CPU n: seed + n). */
const STRESS_SEED = 1;

/** The CPU commands, in help order. */
export const smpCommands: readonly Command[] = [
  {
    name: "cpus",
    usage: "",
    summary: "each CPU: APIC ID, state, CR3, TLB hits/misses, interrupts taken, locks held",
    arity: [0, 0],
    run(_args, context) {
      const infos = cpuInfos(context.kernel);
      printTable(
        context,
        [
          "CPU",
          "APIC ID",
          "state",
          "CR3",
          "TLB hits",
          "misses",
          "interrupts",
          "ticks",
          "locks held",
        ],
        infos.map((info) => [
          String(info.cpu),
          String(info.apicId),
          info.state,
          hex(info.cr3),
          String(info.tlb.hits),
          String(info.tlb.misses),
          String(info.interrupts),
          String(info.ticks),
          String(info.locksHeld),
        ]),
      );
      const online = infos.filter((info) => info.state === "online" || info.state === "busy");
      context.print(
        `cpus: ${online.length} of ${plural(infos.length, "CPU")} online` +
          (context.kernel.smp === undefined ? "" : `; counters as each CPU published them now`),
      );
    },
  },
  {
    name: "locks",
    usage: "",
    summary: "every spinlock: acquisitions, contended ones, spins and sleeps, longest wait",
    arity: [0, 0],
    run(_args, context) {
      const smp = context.kernel.smp;
      if (smp === undefined) {
        context.print("locks: one CPU: the kernel takes no spinlocks (a layer for several CPUs)");
        return;
      }
      printTable(
        context,
        ["lock", "holder", "taken", "contended", "spins", "sleeps", "longest wait"],
        smp.locks().map((lock) => [
          lock.isRemoved ? `${lock.name} (removed)` : lock.name,
          lock.holder < 0 ? "-" : `CPU ${lock.holder}`,
          String(lock.acquisitions),
          String(lock.contended),
          String(lock.spins),
          String(lock.sleeps),
          `${lock.longestWaitUs} us`,
        ]),
      );
    },
  },
  {
    name: "ipi",
    usage: "CPU VECTOR",
    summary: "send a fixed IPI with VECTOR (16-255) to CPU through the local APIC's ICR",
    arity: [2, 2],
    run(args, context) {
      const kernel = context.kernel;
      const cpuCount = kernel.smp?.cpuCount ?? 1;
      const cpu = parseInteger(args.words[0], "a CPU", 0, cpuCount - 1);
      const vector = parseInteger(args.words[1], "a vector", 16, 255);
      const lapic = kernel.interrupts.lapic;
      if (lapic === undefined) {
        throw new CommandError(
          `legacy interrupt mode (${kernel.interrupts.legacyReason}): no local APIC sends IPIs`,
        );
      }
      if (kernel.smp === undefined) {
        lapic.sendFixedIpi(vector, "self");
      } else {
        try {
          kernel.smp.sendIpi(cpu, vector);
        } catch (error) {
          throw new CommandError(error instanceof Error ? error.message : String(error));
        }
      }
      const apicId = kernel.smp?.area.apicIdOf(cpu) ?? lapic.id();
      context.print(
        `ipi: vector ${hex(vector, 2)} sent to CPU ${cpu} (APIC ID ${apicId})` +
          (vector === LOCAL_TIMER_VECTOR ? ": the timer's vector, an extra tick" : ""),
      );
    },
  },
  {
    name: "shootdown",
    usage: "[on|off]",
    summary: "TLB shootdown counters; off is the teaching switch: other CPUs keep stale entries",
    arity: [0, 1],
    completions: [["on", "off"]],
    run(args, context) {
      const smp = context.kernel.smp;
      const [action] = args.words;
      if (action !== undefined && action !== "on" && action !== "off") {
        throw new CommandError(
          `expected shootdown, shootdown on or shootdown off, got "${action}"`,
        );
      }
      if (smp === undefined) {
        context.print("shootdown: one CPU: an unmap needs only this CPU's INVLPG");
        return;
      }
      if (action !== undefined) smp.setSwitches({ shootdown: action === "on" });
      const stats = smp.services.shootdown.stats();
      context.print(
        `shootdown: ${
          stats.isOn ? "on" : "OFF (teaching switch: other CPUs keep stale translations)"
        }; ` +
          `${plural(stats.rounds, "round")}, ${plural(stats.ipis, "IPI")} sent, ` +
          `${plural(stats.skipped, "invalidation")} kept from other CPUs while off`,
      );
    },
  },
  {
    name: "stress",
    usage: "[SECONDS]",
    summary: "run the SMP stress on every CPU (default 2 s) and check that nothing was lost",
    details: [
      "every CPU allocates and frees frames, pages, runs and heap blocks, passes page",
      "references to the others through a ring in RAM, and maps, touches, protects and",
      "unmaps pages of one address space while the others read through it; at the end",
      "every frame must be back, every invariant hold, and no read have been stale",
      "(on a virtual clock: 2000 rounds per CPU per second instead of wall time)",
    ],
    arity: [0, 1],
    run(args, context) {
      const seconds = args.words[0] === undefined
        ? STRESS_DEFAULT_SECONDS
        : parseSeconds(args.words[0]);
      const kernel = context.kernel;
      const isVirtual = kernel.machine.clock instanceof VirtualClock;
      const options: StressOptions = {
        durationMs: seconds * 1000,
        rounds: isVirtual
          ? Math.max(1, Math.round(seconds * STRESS_ROUNDS_PER_VIRTUAL_SECOND))
          : undefined,
        seed: STRESS_SEED,
      };
      const report = context.withoutFaultNarration(() => runKernelStress(kernel, options));
      // The stress ends in the kernel's space: the current one is loaded again.
      const current = context.spaces.current;
      if (current !== undefined && !current.space.isActive) current.space.activate();
      printStress(context, report, isVirtual, kernel.smp?.services.shootdown.stats().isOn ?? true);
    },
  },
];

/** Runs the stress on every CPU of `kernel`. */
function runKernelStress(kernel: Kernel, options: StressOptions): StressReport {
  const kernelSpace = kernel.kernelSpace.addressSpace;
  const stock = stockSpaceOf(kernelSpace);
  if (stock === undefined) {
    throw new CommandError("the stress needs the stock page-table mapper");
  }
  const createSpace = (): AddressSpaceLike =>
    kernel.createAddressSpace(kernel.frames, kernel.machine.cpu, { kernelHalfOf: stock });
  if (kernel.smp !== undefined) return kernel.smp.stress(options, createSpace);
  return runSingleCpuStress(
    kernel.machine,
    kernel.frames,
    kernel.heap,
    kernelSpace,
    createSpace,
    options,
  );
}

/** Prints the stress's figures; throws if an end check failed. */
function printStress(
  context: CommandContext,
  report: StressReport,
  isVirtual: boolean,
  isShootdownOn: boolean,
): void {
  const { totals } = report;
  const line = (name: string, c: StressCounts) => [
    name,
    String(c.rounds),
    String(c.framesAllocated + c.framesFreed),
    String(c.pagesSent + c.pagesReceived),
    String(c.pagesFromOtherCpus),
    String(c.contiguousRuns),
    String(c.heapAllocations + c.heapFrees),
    String(c.maps),
    String(c.unmaps),
    String(c.reads),
    String(c.staleReads),
  ];
  const rows = report.cpus.map((cpu) => line(String(cpu.cpu), cpu.counts));
  if (report.cpus.length > 1) rows.push(line("all", totals));
  printTable(
    context,
    [
      "CPU",
      "rounds",
      "frames",
      "pages",
      "from others",
      "runs",
      "heap",
      "maps",
      "unmaps",
      "reads",
      "stale",
    ],
    rows,
  );
  const operations = STRESS_COUNTERS.filter((counter) =>
    counter !== "rounds" && counter !== "staleReads" && counter !== "doubleHandOuts" &&
    counter !== "errors" && counter !== "readFaults"
  ).reduce((sum, counter) => sum + totals[counter], 0);
  context.print(
    isVirtual
      ? `stress: ${plural(report.cpuCount, "CPU")}, ${plural(totals.rounds, "round")} ` +
        `(virtual clock), ${plural(operations, "operation")}`
      : `stress: ${plural(report.cpuCount, "CPU")} for ${
        (report.elapsedMs / 1000).toFixed(2)
      } s, ` +
        `${plural(operations, "operation")} (${
          Math.round(operations / report.elapsedMs * 1000)
        } per s)`,
  );
  context.print(
    `stress: frames free (with the heap's): ${report.freeFramesBefore} before, ` +
      `${report.freeFramesAfter} after; ${plural(totals.protects, "protect")}, ` +
      `${plural(totals.readFaults, "read")} of unmapped slots faulted`,
  );
  const problems = report.cpus.flatMap((cpu) =>
    cpu.firstProblem === undefined ? [] : [cpu.firstProblem]
  );
  for (const problem of problems) context.print(`  ${problem}`);
  for (const failure of report.checkFailures) context.print(`  check failed: ${failure}`);
  if (report.unfinishedCpus.length > 0) {
    context.print(`  CPUs ${report.unfinishedCpus.join(", ")} did not finish in time`);
  }
  const staleExpected = !isShootdownOn && totals.doubleHandOuts === 0 && totals.errors === 0 &&
    report.checkFailures.length === 0 && report.unfinishedCpus.length === 0;
  if (staleExpected && totals.staleReads > 0) {
    context.print(
      `stress: ${plural(totals.staleReads, "stale read")}, as expected with shootdown off`,
    );
    return;
  }
  const failures = totals.staleReads + totals.doubleHandOuts + totals.errors +
    report.checkFailures.length + report.unfinishedCpus.length;
  if (failures > 0) {
    throw new CommandError(
      `${plural(totals.staleReads, "stale read")}, ${plural(totals.doubleHandOuts, "frame")} ` +
        `handed out twice, ${plural(totals.errors, "error")}, ${
          plural(report.checkFailures.length, "failed check")
        }`,
    );
  }
  context.print("stress: every frame back, no stale read, every check passed");
}

/** Every CPU's counters: from the SMP kernel, or this one CPU's. */
function cpuInfos(kernel: Kernel): SmpCpuInfo[] {
  if (kernel.smp !== undefined) return kernel.smp.cpus();
  const cpu = kernel.machine.cpu;
  const { hits, misses, flushes } = cpu.tlb.stats;
  return [{
    cpu: 0,
    apicId: kernel.interrupts.lapic?.id() ?? 0,
    state: "online",
    cr3: cpu.cr3,
    tlb: { hits, misses, flushes, entries: cpu.tlb.size },
    interrupts: cpu.interruptsDelivered,
    ticks: kernel.timer.tickCount,
    shootdowns: 0,
    calls: 0,
    locksHeld: 0,
    cachedFrames: 0,
  }];
}

function parseSeconds(text: string): number {
  const seconds = Number(text);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text) || seconds <= 0 || seconds > STRESS_MAX_SECONDS) {
    throw new CommandError(
      `expected a duration in seconds from 0.001 to ${STRESS_MAX_SECONDS}, got "${text}"`,
    );
  }
  return seconds;
}

/** Prints a table: the first column left-aligned, the others right-aligned, two spaces apart. */
function printTable(
  context: CommandContext,
  header: readonly string[],
  rows: readonly (readonly string[])[],
): void {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((r) => r[i].length)));
  for (const cells of [header, ...rows]) {
    context.print(
      cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))
        .join("  ").trimEnd(),
    );
  }
}
