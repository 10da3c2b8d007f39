import { pcMemoryMap, PhysicalMemory, ramRangesFor, VirtualClock } from "../hal/mod.ts";
import { assertEquals } from "../testing/mod.ts";
import {
  Hpet,
  HPET_CAPABILITIES,
  HPET_CONFIGURATION,
  HPET_ENABLE_CNF,
  HPET_INTERRUPT_STATUS,
  HPET_MAIN_COUNTER,
  HPET_PERIOD_FS,
  HPET_ROUTE_CAPABILITY,
  HPET_TIMER_COMPARATOR,
  HPET_TIMER_CONFIGURATION,
  HPET_TIMER_STRIDE,
  HPET_TN_32MODE,
  HPET_TN_INT_ENB,
  HPET_TN_INT_ROUTE_SHIFT,
  HPET_TN_INT_TYPE_LEVEL,
  HPET_TN_PER_INT_CAP,
  HPET_TN_SIZE_CAP,
  HPET_TN_TYPE_PERIODIC,
  HPET_TN_VAL_SET,
} from "./hpet.ts";
import { IOAPIC_IOREGSEL, IOAPIC_IOWIN, IOAPIC_REG_REDIRECTION_BASE } from "./io_apic.ts";
import { LAPIC_EOI } from "./local_apic.ts";
import { createPc } from "./pc.ts";

/** An HPET whose pins record every level change. */
function rig() {
  const clock = new VirtualClock();
  const pinLog: string[] = [];
  const hpet = new Hpet({
    clock,
    pins: { setPinLevel: (pin, isHigh) => pinLog.push(`${pin}${isHigh ? "+" : "-"}`) },
  });
  const read = (offset: number) => hpet.mmioRead(offset, 4);
  const write = (offset: number, value: number) => hpet.mmioWrite(offset, value, 4);
  const timer = (n: number, offset: number) => offset + n * HPET_TIMER_STRIDE;
  const run = (ns: number) => {
    clock.advanceNs(ns);
    hpet.advanceTo(clock.nowNs());
  };
  return { clock, hpet, pinLog, read, write, timer, run };
}

const TICK_NS = HPET_PERIOD_FS / 1e6; // 10 ns per count

Deno.test("Hpet capabilities: revision 1, three 64-bit periodic-capable timers, Intel, period in femtoseconds", () => {
  const { read, timer } = rig();
  assertEquals(read(HPET_CAPABILITIES), 0x8086_2201);
  assertEquals(read(HPET_CAPABILITIES + 4), 10_000_000);
  for (let n = 0; n < 3; n++) {
    assertEquals(read(timer(n, HPET_TIMER_CONFIGURATION)), HPET_TN_PER_INT_CAP | HPET_TN_SIZE_CAP);
    assertEquals(read(timer(n, HPET_TIMER_CONFIGURATION) + 4), HPET_ROUTE_CAPABILITY);
  }
  assertEquals(read(timer(3, HPET_TIMER_CONFIGURATION)), 0, "no fourth timer");
});

Deno.test("Hpet main counter: halted at reset, counts at 100 MHz when enabled, holds when halted", () => {
  const { read, write, run, hpet } = rig();
  run(1000);
  assertEquals(read(HPET_MAIN_COUNTER), 0);
  write(HPET_CONFIGURATION, HPET_ENABLE_CNF);
  run(1234);
  assertEquals(read(HPET_MAIN_COUNTER), 123);
  write(HPET_CONFIGURATION, 0);
  run(10_000);
  assertEquals(hpet.mainCounter(), 123);
  write(HPET_MAIN_COUNTER + 4, 1);
  write(HPET_MAIN_COUNTER, 0xffff_fff0);
  write(HPET_CONFIGURATION, HPET_ENABLE_CNF);
  run(20 * TICK_NS);
  assertEquals(
    [read(HPET_MAIN_COUNTER + 4), read(HPET_MAIN_COUNTER)],
    [2, 4],
    "carries into the high half",
  );
});

Deno.test("Hpet comparators reset to all ones and read back both halves", () => {
  const { read } = rig();
  assertEquals([read(HPET_TIMER_COMPARATOR), read(HPET_TIMER_COMPARATOR + 4)], [
    0xffff_ffff,
    0xffff_ffff,
  ]);
});

Deno.test("Hpet one-shot comparator: one edge on its pin when the counter reaches it, then none", () => {
  const { read, write, run, timer, pinLog, hpet } = rig();
  write(timer(1, HPET_TIMER_CONFIGURATION), HPET_TN_INT_ENB | (21 << HPET_TN_INT_ROUTE_SHIFT));
  write(timer(1, HPET_TIMER_COMPARATOR), 500);
  write(timer(1, HPET_TIMER_COMPARATOR) + 4, 0);
  write(HPET_CONFIGURATION, HPET_ENABLE_CNF);
  assertEquals(hpet.nextEventNs(), 500 * TICK_NS);
  run(500 * TICK_NS - 1);
  assertEquals(pinLog, []);
  run(1);
  assertEquals(pinLog, ["21+", "21-"]);
  run(10_000_000);
  assertEquals(pinLog.length, 2, "a 64-bit one-shot fires once");
  assertEquals(read(HPET_INTERRUPT_STATUS), 0, "edge mode leaves the status alone");
  assertEquals(hpet.nextEventNs(), Infinity);
});

Deno.test("Hpet one-shot in 32-bit mode fires again each time the low half wraps", () => {
  const { write, run, timer, pinLog, hpet } = rig();
  write(
    timer(0, HPET_TIMER_CONFIGURATION),
    HPET_TN_INT_ENB | HPET_TN_32MODE | (20 << HPET_TN_INT_ROUTE_SHIFT),
  );
  write(timer(0, HPET_TIMER_COMPARATOR), 100);
  write(HPET_CONFIGURATION, HPET_ENABLE_CNF);
  run(100 * TICK_NS);
  assertEquals(pinLog.length, 2);
  assertEquals(hpet.nextEventNs(), (100 + 2 ** 32) * TICK_NS);
});

Deno.test("Hpet periodic comparator: Tn_VAL_SET loads the accumulator, then it reloads every period", () => {
  const { read, write, run, timer, pinLog } = rig();
  const config = HPET_TN_INT_ENB | HPET_TN_TYPE_PERIODIC | (22 << HPET_TN_INT_ROUTE_SHIFT);
  write(timer(2, HPET_TIMER_CONFIGURATION), config | HPET_TN_VAL_SET);
  write(timer(2, HPET_TIMER_COMPARATOR), 300); // accumulator (and period)
  assertEquals(
    read(timer(2, HPET_TIMER_CONFIGURATION)) & HPET_TN_VAL_SET,
    0,
    "cleared by the write",
  );
  write(timer(2, HPET_TIMER_CONFIGURATION), config | HPET_TN_VAL_SET);
  write(timer(2, HPET_TIMER_COMPARATOR) + 4, 0); // high half (reset: all ones)
  write(timer(2, HPET_TIMER_COMPARATOR), 200); // period only
  write(HPET_CONFIGURATION, HPET_ENABLE_CNF);
  const edges: number[] = [];
  for (let step = 0; step < 100; step++) {
    const before = pinLog.length;
    run(10 * TICK_NS);
    if (pinLog.length > before) edges.push(read(HPET_MAIN_COUNTER));
  }
  assertEquals(edges, [300, 500, 700, 900]);
  assertEquals(
    read(timer(2, HPET_TIMER_COMPARATOR)),
    1100,
    "the accumulator moved on by the period",
  );
});

Deno.test("Hpet level interrupt: pin held and status set until software writes 1 to the status bit", () => {
  const { read, write, run, timer, pinLog } = rig();
  write(
    timer(1, HPET_TIMER_CONFIGURATION),
    HPET_TN_INT_ENB | HPET_TN_INT_TYPE_LEVEL | (23 << HPET_TN_INT_ROUTE_SHIFT),
  );
  write(timer(1, HPET_TIMER_COMPARATOR) + 4, 0);
  write(timer(1, HPET_TIMER_COMPARATOR), 50);
  write(HPET_CONFIGURATION, HPET_ENABLE_CNF);
  run(50 * TICK_NS);
  assertEquals([pinLog, read(HPET_INTERRUPT_STATUS)], [["23+"], 0b010]);
  write(HPET_INTERRUPT_STATUS, 0b001); // another timer's bit: no effect
  assertEquals(read(HPET_INTERRUPT_STATUS), 0b010);
  write(HPET_INTERRUPT_STATUS, 0b010);
  assertEquals([pinLog, read(HPET_INTERRUPT_STATUS)], [["23+", "23-"], 0]);
});

Deno.test("Hpet refuses a route outside Tn_INT_ROUTE_CAP: it reads back the old one and raises nothing", () => {
  const { read, write, timer, pinLog } = rig();
  write(timer(0, HPET_TIMER_CONFIGURATION), HPET_TN_INT_ENB | (20 << HPET_TN_INT_ROUTE_SHIFT));
  write(timer(0, HPET_TIMER_CONFIGURATION), HPET_TN_INT_ENB | (2 << HPET_TN_INT_ROUTE_SHIFT));
  assertEquals((read(timer(0, HPET_TIMER_CONFIGURATION)) >>> HPET_TN_INT_ROUTE_SHIFT) & 31, 20);
  const fresh = rig();
  fresh.write(HPET_TIMER_CONFIGURATION, HPET_TN_INT_ENB); // route 0 is not capable
  fresh.write(HPET_TIMER_COMPARATOR + 4, 0);
  fresh.write(HPET_TIMER_COMPARATOR, 10);
  fresh.write(HPET_CONFIGURATION, HPET_ENABLE_CNF);
  fresh.run(1000);
  assertEquals(fresh.pinLog, []);
  assertEquals(pinLog, []);
});

Deno.test("HPET comparator routed end to end: HPET -> I/O APIC pin 20 -> local APIC -> CPU vector", () => {
  const memoryMap = pcMemoryMap(16 * 2 ** 20);
  const clock = new VirtualClock();
  const pc = createPc(new PhysicalMemory(ramRangesFor(memoryMap)), clock, { serialSink: () => {} });
  const { machine, hpet, ioApic, localApic } = pc;
  // I/O APIC pin 20: vector 0x50, fixed, physical destination APIC 0, edge, unmasked.
  ioApic.mmioWrite(IOAPIC_IOREGSEL, IOAPIC_REG_REDIRECTION_BASE + 40 + 1, 4);
  ioApic.mmioWrite(IOAPIC_IOWIN, 0, 4);
  ioApic.mmioWrite(IOAPIC_IOREGSEL, IOAPIC_REG_REDIRECTION_BASE + 40, 4);
  ioApic.mmioWrite(IOAPIC_IOWIN, 0x50, 4);
  const seenNs: number[] = [];
  machine.cpu.setInterruptHandler(0x50, () => {
    seenNs.push(clock.nowNs());
    localApic.mmioWrite(LAPIC_EOI, 0, 4);
  });
  const config = HPET_TN_INT_ENB | HPET_TN_TYPE_PERIODIC | (20 << HPET_TN_INT_ROUTE_SHIFT);
  hpet.mmioWrite(HPET_TIMER_CONFIGURATION, config | HPET_TN_VAL_SET, 4);
  hpet.mmioWrite(HPET_TIMER_COMPARATOR + 4, 0, 4);
  hpet.mmioWrite(HPET_TIMER_CONFIGURATION, config | HPET_TN_VAL_SET, 4);
  hpet.mmioWrite(HPET_TIMER_COMPARATOR, 100_000, 4); // 1 ms, then every 1 ms
  hpet.mmioWrite(HPET_CONFIGURATION, HPET_ENABLE_CNF, 4);
  machine.cpu.sti();
  for (let i = 0; i < 3; i++) machine.waitForInterrupt();
  assertEquals(seenNs, [1_000_000, 2_000_000, 3_000_000]);
  assertEquals(ioApic.messagesSent[20], 3);
});
