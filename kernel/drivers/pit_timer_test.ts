import { assert, assertEquals, assertThrows } from "../../testing/mod.ts";
import {
  type AccessWidth,
  CpuContext,
  DeviceBus,
  InterruptController,
  physAddr,
  PhysicalMemory,
  PIT_PORT_BASE,
  type PortDevice,
  VirtualClock,
} from "../../hal/mod.ts";
import { Pit8254, PIT_PORT_COUNT } from "../../devices/mod.ts";
import { PIT_TIMER_MAX_HZ, PIT_TIMER_MIN_HZ, PitTimer, TimerFrequencyError } from "./pit_timer.ts";
import { legacyIrqRouting, NO_IRQ_ROUTING } from "./_test_interrupts.ts";

const NS_PER_MS = 1_000_000;
const NS_PER_SECOND = 1_000_000_000;

/** A CPU on a bus with RAM and, if given, `device` on the PIT ports. */
function cpuWith(device?: PortDevice) {
  const bus = new DeviceBus(new PhysicalMemory([{ base: physAddr(0), sizeBytes: 4096 }]));
  if (device) bus.claimPorts(PIT_PORT_BASE, PIT_PORT_COUNT, device);
  const pic = new InterruptController();
  return { cpu: new CpuContext(bus, pic), pic };
}

/** A machine with a real PIT on a virtual clock. */
function machine() {
  const clock = new VirtualClock();
  const pic = new InterruptController();
  const pit = new Pit8254({ clock, pic });
  const bus = new DeviceBus(new PhysicalMemory([{ base: physAddr(0), sizeBytes: 4096 }]));
  bus.claimPorts(PIT_PORT_BASE, PIT_PORT_COUNT, pit);
  const cpu = new CpuContext(bus, pic);
  const irqs = legacyIrqRouting(bus, pic, cpu);
  return {
    clock,
    pit,
    cpu,
    irqs,
    /** Runs `durationNs` of machine time in `stepNs` steps, delivering interrupts after each. */
    run(durationNs: number, stepNs: number) {
      for (let elapsedNs = 0; elapsedNs < durationNs; elapsedNs += stepNs) {
        clock.advanceNs(Math.min(stepNs, durationNs - elapsedNs));
        pit.advanceTo(clock.nowNs());
        cpu.deliverPendingInterrupts();
      }
    },
  };
}

/** Records the driver's port I/O and answers reads from a queue. */
class PortRecorder implements PortDevice {
  readonly name = "recorder";
  readonly log: string[] = [];
  readonly replies: number[] = [];

  portRead(offset: number, _width: AccessWidth): number {
    const value = this.replies.shift() ?? 0xff;
    this.log.push(`in ${hex(PIT_PORT_BASE + offset)} -> ${hex(value)}`);
    return value;
  }

  portWrite(offset: number, value: number, _width: AccessWidth): void {
    this.log.push(`out ${hex(PIT_PORT_BASE + offset)} <- ${hex(value)}`);
  }
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(2, "0")}`;
}

Deno.test("PitTimer.programPeriodic() writes mode 2 and the divisor, lobyte then hibyte", () => {
  const recorder = new PortRecorder();
  const { cpu } = cpuWith(recorder);
  const timer = new PitTimer(cpu, NO_IRQ_ROUTING);
  timer.programPeriodic(100);
  assertEquals(timer.divisor, 11_932); // round(1193182 / 100)
  assertEquals(recorder.log, ["out 0x43 <- 0x34", "out 0x40 <- 0x9c", "out 0x40 <- 0x2e"]);
});

Deno.test("PitTimer.programPeriodic() uses mode 3 for a square wave", () => {
  const recorder = new PortRecorder();
  const timer = new PitTimer(cpuWith(recorder).cpu, NO_IRQ_ROUTING);
  timer.programPeriodic(1000, { mode: "square-wave" });
  assertEquals(recorder.log, ["out 0x43 <- 0x36", "out 0x40 <- 0xa9", "out 0x40 <- 0x04"]);
});

Deno.test("PitTimer.programPeriodic() accepts 19..1193182 Hz and rounds the divisor", () => {
  const timer = new PitTimer(cpuWith().cpu, NO_IRQ_ROUTING);
  timer.programPeriodic(PIT_TIMER_MIN_HZ);
  assertEquals(timer.divisor, 62_799);
  timer.programPeriodic(PIT_TIMER_MAX_HZ);
  assertEquals(timer.divisor, 1);
  timer.programPeriodic(1_000);
  assertEquals(timer.divisor, 1_193); // 1193.182 rounds down
  timer.programPeriodic(60);
  assertEquals(timer.divisor, 19_886); // 19886.37 rounds down
});

Deno.test("PitTimer.programPeriodic() rejects a rate outside 19..1193182 Hz", () => {
  const recorder = new PortRecorder();
  const timer = new PitTimer(cpuWith(recorder).cpu, NO_IRQ_ROUTING);
  for (const frequencyHz of [18, 0, -100, 1_193_183, Number.NaN, Infinity]) {
    const error = assertThrows(
      () => timer.programPeriodic(frequencyHz),
      TimerFrequencyError,
      "expected a rate in 19..1193182 Hz",
    );
    assertEquals(error.frequencyHz, frequencyHz);
    assertEquals([error.minHz, error.maxHz], [19, 1_193_182]);
    assert(error instanceof RangeError);
  }
  assertEquals(
    assertThrows(() => timer.programPeriodic(18), TimerFrequencyError).message,
    "Cannot program the timer at 18 Hz: expected a rate in 19..1193182 Hz",
  );
  assertEquals(recorder.log, []); // nothing was written
  assertEquals(timer.divisor, 0);
});

Deno.test("PitTimer.readCounter() latches counter 0 and reads lobyte then hibyte", () => {
  const recorder = new PortRecorder();
  recorder.replies.push(0x34, 0x12);
  const timer = new PitTimer(cpuWith(recorder).cpu, NO_IRQ_ROUTING);
  assertEquals(timer.readCounter(), 0x1234);
  assertEquals(recorder.log, ["out 0x43 <- 0x00", "in 0x40 -> 0x34", "in 0x40 -> 0x12"]);
});

Deno.test("PitTimer.readCounter() follows the PIT's count down", () => {
  const m = machine();
  const timer = new PitTimer(m.cpu, m.irqs);
  timer.programPeriodic(100);
  m.clock.advanceNs(1_000_000); // 1193.18 cycles: 1 to load the count, 1192 counted
  assertEquals(timer.readCounter(), 11_932 - 1_192);
});

Deno.test("PitTimer at 100 Hz measures 1 s of virtual time within one tick", () => {
  const m = machine();
  const timer = new PitTimer(m.cpu, m.irqs);
  timer.programPeriodic(100);
  m.cpu.sti();
  m.run(NS_PER_SECOND, NS_PER_MS);
  // The first tick comes one period plus one load cycle after programming.
  assertEquals(timer.tickCount, 99);
  assertEquals(m.pit.ticksElapsed, 99);
  const errorNs = Math.abs(timer.uptimeNs() - NS_PER_SECOND);
  assert(errorNs < timer.periodNs, `uptime ${timer.uptimeNs()} ns is off by ${errorNs} ns`);
  assertEquals(timer.uptimeNs(), 990_014_934); // 99 × 11932 cycles, floored to the ns
});

Deno.test("PitTimer uptime is the same on every run (deterministic)", () => {
  const uptimes = [1, 2, 3].map(() => {
    const m = machine();
    const timer = new PitTimer(m.cpu, m.irqs);
    timer.programPeriodic(250, { mode: "square-wave" });
    m.cpu.sti();
    m.run(3 * NS_PER_SECOND, 700_000);
    return [timer.tickCount, timer.uptimeNs()];
  });
  assertEquals(uptimes[1], uptimes[0]);
  assertEquals(uptimes[2], uptimes[0]);
  assertEquals(uptimes[0][0], 749);
});

Deno.test("PitTimer ticks follow the PIT's next event when the machine skips idle time", () => {
  const m = machine();
  const timer = new PitTimer(m.cpu, m.irqs);
  timer.programPeriodic(1000);
  m.cpu.sti();
  // A halted machine on a virtual clock jumps straight to the next timer interrupt.
  while (m.clock.nowNs() < NS_PER_SECOND) {
    m.clock.advanceNs(m.pit.nextEventNs() - m.clock.nowNs());
    m.pit.advanceTo(m.clock.nowNs());
    assert(m.cpu.hlt(), "hlt found no interrupt at the timer's next event");
  }
  assertEquals(timer.tickCount, m.pit.ticksElapsed);
  assert(Math.abs(timer.uptimeNs() - m.clock.nowNs()) < timer.periodNs);
});

Deno.test("PitTimer runs the tick handler on every IRQ 0 with the tick count", () => {
  const m = machine();
  const timer = new PitTimer(m.cpu, m.irqs);
  const seen: number[] = [];
  timer.setTickHandler((tickCount) => seen.push(tickCount));
  timer.programPeriodic(1000);
  m.cpu.sti();
  m.run(5 * NS_PER_MS + 1_000, 100_000);
  assertEquals(seen, [1, 2, 3, 4, 5]);
  timer.setTickHandler(undefined);
  m.run(2 * NS_PER_MS, 100_000);
  assertEquals(seen.length, 5);
  assertEquals(timer.tickCount, 7);
});

Deno.test("PitTimer keeps its uptime when reprogrammed to another rate", () => {
  const m = machine();
  const timer = new PitTimer(m.cpu, m.irqs);
  timer.programPeriodic(100);
  m.cpu.sti();
  m.run(NS_PER_SECOND / 2, NS_PER_MS);
  const halfTicks = timer.tickCount;
  timer.programPeriodic(1000);
  m.run(NS_PER_SECOND / 2, 100_000);
  assertEquals(halfTicks, 49);
  // The partial 100 Hz period cut short by reprogramming is lost: under 10 ms.
  const errorNs = NS_PER_SECOND - timer.uptimeNs();
  assert(errorNs >= 0 && errorNs < 10 * NS_PER_MS + NS_PER_MS, `off by ${errorNs} ns`);
});
