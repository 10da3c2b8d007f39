import { assert, assertEquals, assertThrows } from "../testing/mod.ts";
import {
  InterruptController,
  IRQ_TIMER,
  nsAtCycles,
  PIT_PORT_BASE,
  VirtualClock,
} from "../hal/mod.ts";
import { Pit8254, type Pit8254State, PIT_INPUT_FREQUENCY_HZ } from "./pit8254.ts";

const CONTROL_PORT = 0x43;
// Control words: SC1 SC0 RW1 RW0 M2 M1 M0 BCD.
const LSB = 0b01 << 4;
const MSB = 0b10 << 4;
const LOHI = 0b11 << 4;
const BCD = 1;
const mode = (m: number) => m << 1;
const counter = (c: number) => c << 6;
const READ_BACK = 0b11 << 6;
const READ_BACK_COUNT_ONLY = READ_BACK | 1 << 4; // STATUS# = 1
const READ_BACK_STATUS_ONLY = READ_BACK | 1 << 5; // COUNT# = 1
const STATUS_OUT = 0x80;
const STATUS_NULL_COUNT = 0x40;

/** A fresh PIT on a virtual clock at time 0, and port helpers in real port numbers. */
function setup(startNs = 0) {
  const clock = new VirtualClock(startNs);
  const pic = new InterruptController();
  const pit = new Pit8254({ clock, pic });
  const outb = (port: number, value: number) => pit.portWrite(port - PIT_PORT_BASE, value, 1);
  const inb = (port: number) => pit.portRead(port - PIT_PORT_BASE, 1);
  return {
    clock,
    pic,
    pit,
    outb,
    inb,
    /** Programs counter `c` with a control word and a lobyte/hibyte count. */
    program(c: number, control: number, count: number) {
      outb(CONTROL_PORT, counter(c) | control);
      outb(PIT_PORT_BASE + c, count & 0xff);
      outb(PIT_PORT_BASE + c, count >> 8);
    },
    /** Moves machine time to the first instant at which `tick` input cycles have elapsed. */
    advanceToTick(tick: number) {
      clock.advanceNs(nsAtCycles(tick, PIT_INPUT_FREQUENCY_HZ, "ceil") - clock.nowNs());
      pit.advanceTo(clock.nowNs());
    },
    /** Latches counter `c` (lobyte/hibyte access) and reads it. */
    latchedCount(c: number): number {
      outb(CONTROL_PORT, counter(c));
      const low = inb(PIT_PORT_BASE + c);
      return (inb(PIT_PORT_BASE + c) << 8) | low;
    },
    /** Latches counter `c`'s status with the read-back command and reads it. */
    status(c: number): number {
      outb(CONTROL_PORT, READ_BACK_STATUS_ONLY | (2 << c));
      return inb(PIT_PORT_BASE + c);
    },
    /** Takes the pending IRQ 0 as a CPU would; returns whether there was one. */
    takeIrq0(): boolean {
      if (pic.pendingIrq() !== IRQ_TIMER) return false;
      pic.acknowledge(IRQ_TIMER);
      pic.endOfInterrupt();
      return true;
    },
  };
}

Deno.test("Pit8254 echoes the control word's mode bits in the status byte", () => {
  const m = setup();
  m.outb(CONTROL_PORT, counter(0) | LOHI | mode(2));
  assertEquals(m.status(0), STATUS_OUT | STATUS_NULL_COUNT | 0x34);
  m.outb(CONTROL_PORT, counter(1) | LSB | mode(0) | BCD);
  assertEquals(m.status(1), STATUS_NULL_COUNT | 0x11); // mode 0: OUT low
  m.outb(CONTROL_PORT, counter(2) | MSB | mode(5));
  assertEquals(m.status(2), STATUS_OUT | STATUS_NULL_COUNT | 0x2a);
});

Deno.test("Pit8254 clears null count once the written count is loaded on the next cycle", () => {
  const m = setup();
  m.program(0, LOHI | mode(2), 1000);
  assertEquals(m.status(0) & STATUS_NULL_COUNT, STATUS_NULL_COUNT);
  m.advanceToTick(1);
  assertEquals(m.status(0), STATUS_OUT | 0x34);
  assertEquals(m.latchedCount(0), 1000);
});

Deno.test("Pit8254 decodes modes 6 and 7 as 2 and 3 but reports them as written", () => {
  const m = setup();
  m.outb(CONTROL_PORT, counter(0) | LOHI | mode(6));
  m.outb(PIT_PORT_BASE, 100);
  m.outb(PIT_PORT_BASE, 0);
  m.advanceToTick(1 + 100 * 3);
  assertEquals(m.pit.ticksElapsed, 3); // periodic: mode 2
  assertEquals(m.status(0) & 0x3f, LOHI | mode(6));
  m.outb(CONTROL_PORT, counter(2) | LSB | mode(7));
  m.outb(PIT_PORT_BASE + 2, 10);
  m.advanceToTick(1 + 300 + 1 + 7); // 7 cycles after loading: low half of a mode 3 period
  assertEquals(m.status(2) & STATUS_OUT, 0);
});

Deno.test("Pit8254 takes a lobyte-only, hibyte-only or lobyte-then-hibyte count", () => {
  // Mode 0 raises IRQ 0 exactly count + 1 cycles after the write, which reveals the count.
  for (
    const [access, bytes, count] of [
      [LSB, [0x34], 0x34],
      [MSB, [0x01], 0x100],
      [LOHI, [0x02, 0x01], 0x102],
    ] as const
  ) {
    const m = setup();
    m.outb(CONTROL_PORT, counter(0) | access | mode(0));
    for (const byte of bytes) m.outb(PIT_PORT_BASE, byte);
    m.advanceToTick(count);
    assertEquals(m.pit.ticksElapsed, 0, `count ${count}`);
    m.advanceToTick(count + 1);
    assertEquals(m.pit.ticksElapsed, 1, `count ${count}`);
  }
});

Deno.test("Pit8254 reads the count back per the access mode", () => {
  const m = setup();
  m.outb(CONTROL_PORT, counter(1) | LSB | mode(2));
  m.outb(PIT_PORT_BASE + 1, 0xab);
  m.outb(CONTROL_PORT, counter(2) | MSB | mode(2));
  m.outb(PIT_PORT_BASE + 2, 0x12);
  m.program(0, LOHI | mode(2), 0x1234);
  m.advanceToTick(1);
  assertEquals(m.inb(PIT_PORT_BASE + 1), 0xab);
  assertEquals(m.inb(PIT_PORT_BASE + 1), 0xab); // no byte toggle in lobyte-only access
  assertEquals(m.inb(PIT_PORT_BASE + 2), 0x12);
  assertEquals(m.inb(PIT_PORT_BASE), 0x34);
  assertEquals(m.inb(PIT_PORT_BASE), 0x12);
  assertEquals(m.inb(PIT_PORT_BASE), 0x34);
});

Deno.test("Pit8254 sequences reads and writes of a two-byte count separately", () => {
  const m = setup();
  m.program(0, LOHI | mode(2), 0x1234);
  m.advanceToTick(1);
  assertEquals(m.inb(PIT_PORT_BASE), 0x34);
  m.outb(PIT_PORT_BASE, 0x00); // first byte of a new count: does not disturb the read
  assertEquals(m.inb(PIT_PORT_BASE), 0x12);
  m.outb(PIT_PORT_BASE, 0x20); // second byte: count 0x2000, loaded at the end of the period
  m.advanceToTick(1 + 0x1234);
  assertEquals(m.latchedCount(0), 0x2000);
});

Deno.test("Pit8254 counter latch freezes the value until it is read", () => {
  const m = setup();
  m.program(0, LOHI | mode(2), 1000);
  m.advanceToTick(1 + 100);
  m.outb(CONTROL_PORT, counter(0)); // latch: 900
  m.advanceToTick(1 + 500);
  m.outb(CONTROL_PORT, counter(0)); // ignored: the first latch is unread
  assertEquals(m.inb(PIT_PORT_BASE), 900 & 0xff);
  m.advanceToTick(1 + 600);
  assertEquals(m.inb(PIT_PORT_BASE), 900 >> 8);
  // Released: reads are live again, and a new latch takes the current value.
  assertEquals(m.inb(PIT_PORT_BASE) | (m.inb(PIT_PORT_BASE) << 8), 400);
  assertEquals(m.latchedCount(0), 400);
});

Deno.test("Pit8254 releases a lobyte-only latch after one read", () => {
  const m = setup();
  m.outb(CONTROL_PORT, counter(0) | LSB | mode(2));
  m.outb(PIT_PORT_BASE, 200);
  m.advanceToTick(1 + 50);
  m.outb(CONTROL_PORT, counter(0));
  m.advanceToTick(1 + 60);
  assertEquals(m.inb(PIT_PORT_BASE), 150);
  assertEquals(m.inb(PIT_PORT_BASE), 140);
});

Deno.test("Pit8254 read-back latches status then count of each selected counter", () => {
  const m = setup();
  m.program(0, LOHI | mode(2), 1000);
  m.program(2, LOHI | mode(0), 50);
  m.advanceToTick(11);
  m.outb(CONTROL_PORT, READ_BACK | 0b101 << 1); // count and status of counters 0 and 2
  m.advanceToTick(21);
  m.outb(CONTROL_PORT, READ_BACK | 0b101 << 1); // ignored: both are still latched
  assertEquals(m.inb(PIT_PORT_BASE), STATUS_OUT | 0x34);
  assertEquals(m.inb(PIT_PORT_BASE) | (m.inb(PIT_PORT_BASE) << 8), 990);
  assertEquals(m.inb(PIT_PORT_BASE + 2), 0x30); // mode 0 before terminal count: OUT low
  assertEquals(m.inb(PIT_PORT_BASE + 2) | (m.inb(PIT_PORT_BASE + 2) << 8), 40);
  // Count only, then status only.
  m.outb(CONTROL_PORT, READ_BACK_COUNT_ONLY | 0b001 << 1);
  m.advanceToTick(31);
  assertEquals(m.inb(PIT_PORT_BASE) | (m.inb(PIT_PORT_BASE) << 8), 980);
  m.outb(CONTROL_PORT, READ_BACK_STATUS_ONLY | 0b001 << 1);
  assertEquals(m.inb(PIT_PORT_BASE), STATUS_OUT | 0x34);
  assertEquals(m.inb(PIT_PORT_BASE) | (m.inb(PIT_PORT_BASE) << 8), 970); // live
});

Deno.test("Pit8254 mode 2 raises one IRQ 0 edge per period when advanced a period at a time", () => {
  const m = setup();
  const divisor = 1193; // about 1 kHz
  m.program(0, LOHI | mode(2), divisor);
  let irqCount = 0;
  for (let k = 1; k <= 50; k++) {
    m.advanceToTick(k * divisor); // one cycle before the edge (the count loads at tick 1)
    assert(!m.takeIrq0(), `early IRQ 0 in period ${k}`);
    m.advanceToTick(1 + k * divisor);
    assert(m.takeIrq0(), `no IRQ 0 at the end of period ${k}`);
    irqCount++;
  }
  assertEquals(irqCount, 50);
  assertEquals(m.pit.ticksElapsed, 50);
  assertEquals(m.pic.raisedCount[IRQ_TIMER], 50);
  assert(!m.pic.isHigh(IRQ_TIMER)); // each edge is a raise then a lower
});

Deno.test("Pit8254 mode 2 counts from N down to 1 and OUT pulses low at 1", () => {
  const m = setup();
  m.program(0, LOHI | mode(2), 5);
  const counts: number[] = [];
  const outs: number[] = [];
  for (let tick = 1; tick <= 11; tick++) {
    m.advanceToTick(tick);
    counts.push(m.latchedCount(0));
    outs.push(m.status(0) >> 7);
  }
  assertEquals(counts, [5, 4, 3, 2, 1, 5, 4, 3, 2, 1, 5]);
  assertEquals(outs, [1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1]);
});

Deno.test("Pit8254 coalesces periods between two advances into one IRQ 0 edge", () => {
  const m = setup();
  m.program(0, LOHI | mode(2), 1000);
  m.advanceToTick(1 + 10 * 1000 + 5);
  assertEquals(m.pit.ticksElapsed, 10);
  assertEquals(m.pic.raisedCount[IRQ_TIMER], 1);
  assert(m.takeIrq0());
  assert(!m.takeIrq0());
});

Deno.test("Pit8254 mode 0 fires once, N + 1 cycles after the count is written", () => {
  const m = setup();
  m.program(0, LOHI | mode(0), 100);
  m.advanceToTick(100);
  assertEquals(m.status(0) & STATUS_OUT, 0);
  assert(!m.takeIrq0());
  m.advanceToTick(101);
  assertEquals(m.status(0) & STATUS_OUT, STATUS_OUT);
  assert(m.takeIrq0());
  assertEquals(m.pit.nextEventNs(), Infinity);
  m.advanceToTick(102);
  assertEquals(m.latchedCount(0), 0xffff); // the counter wraps and keeps counting
  m.advanceToTick(101 + 3 * 65_536);
  assertEquals(m.pit.ticksElapsed, 1);
  assert(!m.takeIrq0());
});

Deno.test("Pit8254 mode 0 stops counting when the first byte of a new count is written", () => {
  const m = setup();
  m.program(0, LOHI | mode(0), 1000);
  m.advanceToTick(1 + 100);
  m.outb(PIT_PORT_BASE, 16); // low byte of count 16
  m.advanceToTick(1 + 5000);
  assertEquals(m.status(0), STATUS_NULL_COUNT | 0x30);
  assertEquals(m.latchedCount(0), 900);
  assertEquals(m.pit.ticksElapsed, 0);
  m.outb(PIT_PORT_BASE, 0); // high byte: loaded on the next cycle
  m.advanceToTick(1 + 5000 + 16);
  assertEquals(m.pit.ticksElapsed, 0);
  m.advanceToTick(1 + 5000 + 17);
  assertEquals(m.pit.ticksElapsed, 1);
});

Deno.test("Pit8254 count 0 means 65536 in binary and 10000 in BCD", () => {
  const binary = setup();
  binary.program(0, LOHI | mode(2), 0);
  binary.advanceToTick(1);
  assertEquals(binary.latchedCount(0), 0);
  binary.advanceToTick(2);
  assertEquals(binary.latchedCount(0), 0xffff);
  binary.advanceToTick(65_536);
  assertEquals(binary.pit.ticksElapsed, 0);
  binary.advanceToTick(1 + 65_536);
  assertEquals(binary.pit.ticksElapsed, 1);

  const bcd = setup();
  bcd.program(0, LOHI | mode(2) | BCD, 0);
  bcd.advanceToTick(2);
  assertEquals(bcd.latchedCount(0), 0x9999);
  bcd.advanceToTick(10_000);
  assertEquals(bcd.pit.ticksElapsed, 0);
  bcd.advanceToTick(1 + 10_000);
  assertEquals(bcd.pit.ticksElapsed, 1);
});

Deno.test("Pit8254 counts BCD digits in BCD mode", () => {
  const m = setup();
  m.program(0, LOHI | mode(2) | BCD, 0x0100);
  m.advanceToTick(1);
  assertEquals(m.latchedCount(0), 0x0100);
  m.advanceToTick(2);
  assertEquals(m.latchedCount(0), 0x0099);
  m.advanceToTick(1 + 100);
  assertEquals(m.pit.ticksElapsed, 1);
});

Deno.test("Pit8254 mode 3 with an even count: half high, half low, counting by 2", () => {
  const m = setup();
  m.program(0, LOHI | mode(3), 10);
  const counts: number[] = [];
  const outs: number[] = [];
  for (let tick = 1; tick <= 11; tick++) {
    m.advanceToTick(tick);
    counts.push(m.latchedCount(0));
    outs.push(m.status(0) >> 7);
  }
  assertEquals(counts, [10, 8, 6, 4, 2, 10, 8, 6, 4, 2, 10]);
  assertEquals(outs, [1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1]);
  assertEquals(m.pit.ticksElapsed, 1); // OUT rose at tick 11
});

Deno.test("Pit8254 mode 3 with an odd count: high (N + 1) / 2 cycles, low (N - 1) / 2", () => {
  const m = setup();
  m.program(0, LOHI | mode(3), 5);
  const counts: number[] = [];
  const outs: number[] = [];
  for (let tick = 1; tick <= 11; tick++) {
    m.advanceToTick(tick);
    counts.push(m.latchedCount(0));
    outs.push(m.status(0) >> 7);
  }
  assertEquals(counts, [4, 2, 0, 4, 2, 4, 2, 0, 4, 2, 4]);
  assertEquals(outs, [1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1]);
  assertEquals(m.pit.ticksElapsed, 2); // OUT rose at ticks 6 and 11
});

Deno.test("Pit8254 mode 2 loads a count written while counting at the end of the period", () => {
  const m = setup();
  m.program(0, LOHI | mode(2), 100);
  m.advanceToTick(1 + 30);
  m.outb(PIT_PORT_BASE, 50);
  m.outb(PIT_PORT_BASE, 0);
  assertEquals(m.status(0) & STATUS_NULL_COUNT, STATUS_NULL_COUNT);
  assertEquals(m.pit.nextEventNs(), nsAtCycles(101, PIT_INPUT_FREQUENCY_HZ, "ceil"));
  m.advanceToTick(100);
  assertEquals(m.latchedCount(0), 1); // still the old period
  m.advanceToTick(101);
  assertEquals(m.latchedCount(0), 50);
  assertEquals(m.status(0) & STATUS_NULL_COUNT, 0);
  assertEquals(m.pit.ticksElapsed, 1);
  m.advanceToTick(101 + 2 * 50);
  assertEquals(m.pit.ticksElapsed, 3);
});

Deno.test("Pit8254 mode 2 counts the edges on both sides of a reload in one advance", () => {
  const m = setup();
  m.program(0, LOHI | mode(2), 100);
  m.advanceToTick(1 + 30);
  m.outb(PIT_PORT_BASE, 50);
  m.outb(PIT_PORT_BASE, 0);
  m.advanceToTick(101 + 2 * 50 + 10);
  assertEquals(m.pit.ticksElapsed, 3);
  assertEquals(m.latchedCount(0), 40);
});

Deno.test("Pit8254 mode 3 loads a count written in the high half at the end of that half", () => {
  const m = setup();
  m.program(0, LOHI | mode(3), 100);
  m.advanceToTick(1 + 10);
  m.outb(PIT_PORT_BASE, 40);
  m.outb(PIT_PORT_BASE, 0);
  m.advanceToTick(50);
  assertEquals(m.latchedCount(0), 2); // old count, high half
  m.advanceToTick(51);
  assertEquals(m.latchedCount(0), 40); // new count, starting in its low half
  assertEquals(m.status(0) & (STATUS_OUT | STATUS_NULL_COUNT), 0);
  m.advanceToTick(70);
  assertEquals(m.pit.ticksElapsed, 0);
  m.advanceToTick(71); // the new low half (20 cycles) ends: OUT rises
  assertEquals(m.pit.ticksElapsed, 1);
  m.advanceToTick(111);
  assertEquals(m.pit.ticksElapsed, 2);
});

Deno.test("Pit8254 mode 4 strobes OUT low once, N + 1 cycles after the count", () => {
  const m = setup();
  m.program(0, LOHI | mode(4), 10);
  m.advanceToTick(11);
  assertEquals(m.status(0) & STATUS_OUT, 0);
  assertEquals(m.pit.ticksElapsed, 0);
  m.advanceToTick(12);
  assertEquals(m.status(0) & STATUS_OUT, STATUS_OUT);
  m.advanceToTick(1_000_000);
  assertEquals(m.pit.ticksElapsed, 1);
});

Deno.test("Pit8254 modes 1 and 5 wait for a gate trigger that never comes", () => {
  for (const m1or5 of [1, 5]) {
    const m = setup();
    m.program(0, LOHI | mode(m1or5), 10);
    m.advanceToTick(1_000);
    assertEquals(m.pit.ticksElapsed, 0);
    assertEquals(m.status(0), STATUS_OUT | STATUS_NULL_COUNT | LOHI | mode(m1or5));
    assertEquals(m.pit.nextEventNs(), Infinity);
  }
});

Deno.test("Pit8254 counters 1 and 2 never raise IRQ 0", () => {
  const m = setup();
  m.program(1, LOHI | mode(2), 18);
  m.program(2, LOHI | mode(3), 1331);
  m.advanceToTick(1_000_000);
  assertEquals(m.pit.ticksElapsed, 0);
  assertEquals(m.pic.raisedCount[IRQ_TIMER], 0);
  assertEquals(m.pit.nextEventNs(), Infinity);
});

Deno.test("Pit8254.nextEventNs() is the time of counter 0's next IRQ 0 edge", () => {
  const m = setup();
  assertEquals(m.pit.nextEventNs(), Infinity);
  m.program(0, LOHI | mode(2), 1000);
  for (let k = 1; k <= 5; k++) {
    const eventNs = m.pit.nextEventNs();
    assertEquals(eventNs, nsAtCycles(1 + k * 1000, PIT_INPUT_FREQUENCY_HZ, "ceil"));
    m.clock.advanceNs(eventNs - 1 - m.clock.nowNs());
    m.pit.advanceTo(m.clock.nowNs());
    assert(!m.takeIrq0());
    m.clock.advanceNs(1);
    m.pit.advanceTo(m.clock.nowNs());
    assert(m.takeIrq0());
  }
});

Deno.test("Pit8254 port accesses catch up with the clock by themselves", () => {
  const m = setup();
  m.program(0, LOHI | mode(2), 1000);
  m.clock.advanceNs(nsAtCycles(1 + 1000 + 250, PIT_INPUT_FREQUENCY_HZ, "ceil"));
  assertEquals(m.latchedCount(0), 750);
  assert(m.takeIrq0());
});

Deno.test("Pit8254 ignores a time earlier than one already seen", () => {
  const m = setup();
  m.program(0, LOHI | mode(2), 100);
  m.advanceToTick(1 + 150);
  m.pit.advanceTo(0);
  assertEquals(m.latchedCount(0), 50);
  assertEquals(m.pit.ticksElapsed, 1);
});

Deno.test("Pit8254 control port reads as a floating bus", () => {
  const m = setup();
  assertEquals(m.inb(CONTROL_PORT), 0xff);
});

Deno.test("Pit8254 starts idle: no IRQ until software programs it", () => {
  const m = setup();
  m.advanceToTick(10_000_000);
  assertEquals(m.pit.ticksElapsed, 0);
  assertEquals(m.status(0), STATUS_NULL_COUNT | 0x30);
});

Deno.test("Pit8254.saveState() round-trips through JSON mid-sequence", () => {
  const m = setup();
  m.program(0, LOHI | mode(3), 100);
  m.program(1, LSB | mode(2) | BCD, 0x55);
  m.advanceToTick(1 + 10);
  m.outb(PIT_PORT_BASE, 40); // a count pending until the end of the high half
  m.outb(PIT_PORT_BASE, 0);
  m.outb(CONTROL_PORT, counter(0)); // a latch, half read
  m.inb(PIT_PORT_BASE);
  m.outb(PIT_PORT_BASE + 2, 7); // a half-written count
  const state = m.pit.saveState();

  const copy = setup(m.clock.nowNs());
  copy.pit.restoreState(JSON.parse(JSON.stringify(state)) as Pit8254State);
  assertEquals(copy.pit.saveState(), state);
  for (const machine of [m, copy]) machine.advanceToTick(1_000);
  assertEquals(copy.pit.saveState(), m.pit.saveState());
  assertEquals(copy.inb(PIT_PORT_BASE), m.inb(PIT_PORT_BASE));
  assertEquals(copy.latchedCount(0), m.latchedCount(0));
  assertEquals(copy.inb(PIT_PORT_BASE + 1), m.inb(PIT_PORT_BASE + 1));
  assertEquals(copy.pit.ticksElapsed, m.pit.ticksElapsed);
  assertEquals(copy.pit.nextEventNs(), m.pit.nextEventNs());
});

Deno.test("Pit8254.restoreState() rejects a malformed state and keeps its own", () => {
  const m = setup();
  m.program(0, LOHI | mode(2), 100);
  const before = m.pit.saveState();
  const broken = structuredClone(before);
  broken.counters[1].originTick = Number.NaN;
  assertThrows(() => m.pit.restoreState(broken), TypeError, "counter 1 originTick");
  assertThrows(
    () => m.pit.restoreState({ ...before, counters: before.counters.slice(1) }),
    TypeError,
    "expected 3 counters",
  );
  assertEquals(m.pit.saveState(), before);
});
