import { VirtualClock } from "../hal/mod.ts";
import { assert, assertEquals, assertThrows, Xorshift32 } from "../testing/mod.ts";
import {
  APIC_DELIVERY_EXTINT,
  APIC_DELIVERY_FIXED,
  APIC_DELIVERY_LOWEST_PRIORITY,
  APIC_DELIVERY_NMI,
  APIC_SHORTHAND_ALL_EXCLUDING_SELF,
  APIC_SHORTHAND_SELF,
  type ApicBus,
  SystemApicBus,
} from "./apic_bus.ts";
import {
  LAPIC_DELIVERY_STATUS,
  LAPIC_DFR,
  LAPIC_EOI,
  LAPIC_ESR,
  LAPIC_ESR_ILLEGAL_REGISTER,
  LAPIC_ESR_RECEIVE_ILLEGAL_VECTOR,
  LAPIC_ESR_REDIRECTABLE_IPI,
  LAPIC_ESR_SEND_ILLEGAL_VECTOR,
  LAPIC_ICR_ASSERT,
  LAPIC_ICR_HIGH,
  LAPIC_ICR_LOGICAL,
  LAPIC_ICR_LOW,
  LAPIC_ID,
  LAPIC_IRR,
  LAPIC_ISR,
  LAPIC_LDR,
  LAPIC_LVT_ERROR,
  LAPIC_LVT_LINT0,
  LAPIC_LVT_LINT1,
  LAPIC_LVT_MASKED,
  LAPIC_LVT_PERFORMANCE,
  LAPIC_LVT_THERMAL,
  LAPIC_LVT_TIMER,
  LAPIC_PPR,
  LAPIC_SVR,
  LAPIC_SVR_ENABLE,
  LAPIC_TIMER_CURRENT_COUNT,
  LAPIC_TIMER_DIVIDE,
  LAPIC_TIMER_INITIAL_COUNT,
  LAPIC_TIMER_PERIODIC,
  LAPIC_TMR,
  LAPIC_TPR,
  LAPIC_VERSION,
  lapicTimerDivisor,
  LOCAL_APIC_STATE_BYTES,
  LocalApic,
} from "./local_apic.ts";

const ICR_SHORTHAND_SHIFT = 18;

/** A local APIC on its own bus, software-enabled with spurious vector 0xFF. */
function rig(options: { apicId?: number; bus?: ApicBus; clock?: VirtualClock } = {}) {
  const clock = options.clock ?? new VirtualClock();
  const bus = options.bus ?? new SystemApicBus();
  const apic = new LocalApic({ apicId: options.apicId ?? 0, clock, bus });
  if (bus instanceof SystemApicBus) bus.attachLocalApic(apic);
  const read = (offset: number) => apic.mmioRead(offset, 4);
  const write = (offset: number, value: number) => apic.mmioWrite(offset, value, 4);
  write(LAPIC_SVR, LAPIC_SVR_ENABLE | 0xff);
  /** Takes the vector the core would take now, as INTA does, or returns -1. */
  const take = () => {
    const vector = apic.pendingVector();
    if (vector >= 0) apic.acknowledge(vector);
    return vector;
  };
  const readEsr = () => {
    write(LAPIC_ESR, 0);
    return read(LAPIC_ESR);
  };
  return { clock, bus, apic, read, write, take, readEsr };
}

function vectorsIn(read: (offset: number) => number, first: number): number[] {
  const vectors: number[] = [];
  for (let word = 0; word < 8; word++) {
    const bits = read(first + word * 0x10);
    for (let bit = 0; bit < 32; bit++) if ((bits >>> bit) & 1) vectors.push(word * 32 + bit);
  }
  return vectors;
}

Deno.test("LocalApic resets as the SDM says: ID, version 0x14 with six LVT entries, SVR 0xFF, LVTs masked", () => {
  const apic = new LocalApic({ apicId: 3, clock: new VirtualClock(), bus: new SystemApicBus() });
  const read = (offset: number) => apic.mmioRead(offset, 4);
  assertEquals(read(LAPIC_ID), 3 << 24);
  assertEquals(read(LAPIC_VERSION), 0x0005_0014);
  assertEquals(read(LAPIC_SVR), 0xff);
  assertEquals(apic.isSoftwareEnabled, false);
  assertEquals(read(LAPIC_DFR), 0xffff_ffff);
  for (const lvt of [LAPIC_LVT_TIMER, LAPIC_LVT_THERMAL, LAPIC_LVT_PERFORMANCE, LAPIC_LVT_LINT0]) {
    assertEquals(read(lvt), LAPIC_LVT_MASKED);
  }
  assertEquals([read(LAPIC_TPR), read(LAPIC_PPR), read(LAPIC_TIMER_INITIAL_COUNT)], [0, 0, 0]);
  assertThrows(
    () => new LocalApic({ apicId: 256, clock: new VirtualClock(), bus: new SystemApicBus() }),
    RangeError,
    "APIC ID 256",
  );
});

Deno.test("LocalApic takes a vector only when its priority class is above the PPR's", () => {
  const { apic, write, read, take } = rig();
  write(LAPIC_TPR, 0x45);
  apic.receive(APIC_DELIVERY_FIXED, 0x4f, false);
  assertEquals(apic.pendingVector(), -1, "class 4 is not above TPR class 4");
  apic.receive(APIC_DELIVERY_FIXED, 0x51, false);
  assertEquals(take(), 0x51);
  assertEquals(read(LAPIC_PPR), 0x50, "the in-service class is above the TPR's");
  write(LAPIC_EOI, 0);
  assertEquals(read(LAPIC_PPR), 0x45, "back to the TPR, sub-class included");
  write(LAPIC_TPR, 0x30);
  assertEquals(take(), 0x4f);
  assertEquals(vectorsIn(read, LAPIC_ISR), [0x4f]);
});

Deno.test("LocalApic nests by class: a higher class interrupts, the same class waits for EOI", () => {
  const { apic, write, read, take } = rig();
  apic.receive(APIC_DELIVERY_FIXED, 0x41, false);
  assertEquals(take(), 0x41);
  apic.receive(APIC_DELIVERY_FIXED, 0x45, false);
  apic.receive(APIC_DELIVERY_FIXED, 0x61, false);
  assertEquals(take(), 0x61, "class 6 nests over class 4");
  assertEquals(vectorsIn(read, LAPIC_ISR), [0x41, 0x61]);
  assertEquals(take(), -1, "0x45 waits behind 0x41 and 0x61");
  write(LAPIC_EOI, 0);
  assertEquals(vectorsIn(read, LAPIC_ISR), [0x41], "EOI ends the highest in service first");
  assertEquals(take(), -1, "0x45 is in 0x41's class");
  write(LAPIC_EOI, 0);
  assertEquals(take(), 0x45);
  assertEquals(vectorsIn(read, LAPIC_IRR), []);
});

Deno.test("LocalApic keeps one request per vector in the IRR and one in the ISR", () => {
  const { apic, read, take } = rig();
  apic.receive(APIC_DELIVERY_FIXED, 0x80, false);
  assertEquals(take(), 0x80);
  apic.receive(APIC_DELIVERY_FIXED, 0x80, false);
  apic.receive(APIC_DELIVERY_FIXED, 0x80, false); // collapses into the same IRR bit
  assertEquals(vectorsIn(read, LAPIC_IRR), [0x80]);
  assertEquals(vectorsIn(read, LAPIC_ISR), [0x80]);
});

Deno.test("LocalApic acceptance, nesting and EOI match a reference model over seeded random operations", () => {
  const rng = new Xorshift32(0x1badb002);
  const { apic, write, read, take } = rig();
  const irr = new Set<number>();
  const isr: number[] = []; // kept sorted
  let tpr = 0;
  const ppr = () => {
    const isrv = isr.length === 0 ? 0 : isr[isr.length - 1];
    return (tpr & 0xf0) >= (isrv & 0xf0) ? tpr : isrv & 0xf0;
  };
  for (let step = 0; step < 4000; step++) {
    const op = rng.next() % 4;
    if (op === 0) {
      const vector = 16 + (rng.next() % 240);
      apic.receive(APIC_DELIVERY_FIXED, vector, false);
      irr.add(vector);
    } else if (op === 1) {
      const vector = take();
      const best = Math.max(-1, ...irr);
      const want = best >= 0 && (best & 0xf0) > (ppr() & 0xf0) ? best : -1;
      assertEquals(vector, want, `step ${step}: INTA`);
      if (want >= 0) {
        irr.delete(want);
        isr.push(want);
        isr.sort((a, b) => a - b);
      }
    } else if (op === 2) {
      write(LAPIC_EOI, 0);
      isr.pop();
    } else {
      tpr = rng.next() & 0xff;
      write(LAPIC_TPR, tpr);
    }
    assertEquals(read(LAPIC_PPR), ppr(), `step ${step}: PPR`);
    assertEquals(vectorsIn(read, LAPIC_ISR), isr, `step ${step}: ISR`);
  }
});

Deno.test("LocalApic EOI of a level-triggered vector broadcasts it to the I/O APICs, an edge one does not", () => {
  const bus = new SystemApicBus();
  const eois: number[] = [];
  bus.attachIoApic({ endOfInterrupt: (vector) => eois.push(vector) });
  const { apic, write, read, take } = rig({ bus });
  apic.receive(APIC_DELIVERY_FIXED, 0x50, true);
  assertEquals(vectorsIn(read, LAPIC_TMR), [0x50], "accepted level-triggered: TMR set");
  take();
  write(LAPIC_EOI, 0);
  assertEquals(eois, [0x50]);
  apic.receive(APIC_DELIVERY_FIXED, 0x50, false);
  assertEquals(vectorsIn(read, LAPIC_TMR), [], "accepted edge-triggered: TMR cleared");
  take();
  write(LAPIC_EOI, 0);
  assertEquals(eois, [0x50], "no broadcast for an edge vector");
  write(LAPIC_EOI, 0); // nothing in service: nothing happens
  assertEquals(eois, [0x50]);
});

Deno.test("LocalApic refuses vectors 0 to 15: ESR bits 5 and 6, and the error LVT fires", () => {
  const { apic, write, read, readEsr, take } = rig();
  write(LAPIC_LVT_ERROR, 0xfe);
  assertEquals(apic.receive(APIC_DELIVERY_FIXED, 0x0f, false), false);
  assertEquals(vectorsIn(read, LAPIC_IRR), [0xfe], "no IRR bit below 16; the error vector instead");
  assertEquals(read(LAPIC_ESR), 0, "the ESR shows nothing until written");
  assertEquals(readEsr(), LAPIC_ESR_RECEIVE_ILLEGAL_VECTOR);
  assertEquals(readEsr(), 0, "back-to-back writes clear it");
  write(LAPIC_ICR_LOW, 0x05 | LAPIC_ICR_ASSERT | (APIC_SHORTHAND_SELF << ICR_SHORTHAND_SHIFT));
  assertEquals(readEsr(), LAPIC_ESR_SEND_ILLEGAL_VECTOR);
  assertEquals(take(), 0xfe);
});

Deno.test("LocalApic flags reserved offsets in ESR bit 7 and ignores writes to read-only registers", () => {
  const { write, read, readEsr } = rig();
  assertEquals(read(0x040), 0);
  assertEquals(readEsr(), LAPIC_ESR_ILLEGAL_REGISTER);
  write(0x3f0, 1);
  assertEquals(readEsr(), LAPIC_ESR_ILLEGAL_REGISTER);
  write(LAPIC_VERSION, 0);
  write(LAPIC_PPR, 0xff);
  write(LAPIC_IRR, 0xffff_ffff);
  assertEquals([read(LAPIC_VERSION), read(LAPIC_PPR), read(LAPIC_IRR)], [0x0005_0014, 0, 0]);
  assertEquals(readEsr(), 0);
});

Deno.test("LocalApic software-disabled: LVTs masked for good, fixed interrupts refused, IRR held", () => {
  const { apic, write, read, take } = rig();
  write(LAPIC_LVT_LINT0, APIC_DELIVERY_EXTINT << 8);
  apic.receive(APIC_DELIVERY_FIXED, 0x70, false);
  write(LAPIC_SVR, 0xff); // clear the software enable
  assertEquals(read(LAPIC_LVT_LINT0), LAPIC_LVT_MASKED | (APIC_DELIVERY_EXTINT << 8));
  write(LAPIC_LVT_LINT0, APIC_DELIVERY_EXTINT << 8);
  assertEquals(read(LAPIC_LVT_LINT0) & LAPIC_LVT_MASKED, LAPIC_LVT_MASKED, "cannot be unmasked");
  assertEquals(apic.acceptsExtInt(), false);
  assertEquals(apic.receive(APIC_DELIVERY_FIXED, 0x71, false), false);
  assertEquals(take(), -1, "nothing is dispatched while disabled");
  assertEquals(apic.receive(APIC_DELIVERY_NMI, 0, false), true, "NMI is still accepted");
  write(LAPIC_SVR, LAPIC_SVR_ENABLE | 0xff);
  assertEquals(take(), 0x70, "the held request is dispatched once enabled");
});

Deno.test("LocalApic passes the 8259 (ExtINT) only while LINT0 is an unmasked ExtINT entry", () => {
  const { apic, write } = rig();
  assertEquals(apic.acceptsExtInt(), false, "masked after reset");
  write(LAPIC_LVT_LINT0, APIC_DELIVERY_EXTINT << 8);
  assertEquals(apic.acceptsExtInt(), true);
  write(LAPIC_LVT_LINT0, LAPIC_LVT_MASKED | (APIC_DELIVERY_EXTINT << 8));
  assertEquals(apic.acceptsExtInt(), false);
  write(LAPIC_LVT_LINT1, APIC_DELIVERY_NMI << 8);
  write(LAPIC_LVT_LINT0, APIC_DELIVERY_FIXED << 8);
  assertEquals(apic.acceptsExtInt(), false);
});

Deno.test("LocalApic sends fixed IPIs to itself, to all others, and by physical or logical destination", () => {
  const bus = new SystemApicBus();
  const a = rig({ apicId: 0, bus });
  const b = rig({ apicId: 1, bus });
  const c = rig({ apicId: 2, bus });
  a.write(LAPIC_ICR_LOW, 0x40 | LAPIC_ICR_ASSERT | (APIC_SHORTHAND_SELF << ICR_SHORTHAND_SHIFT));
  assertEquals([a.take(), b.take(), c.take()], [0x40, -1, -1], "self");
  a.write(
    LAPIC_ICR_LOW,
    0x41 | LAPIC_ICR_ASSERT | (APIC_SHORTHAND_ALL_EXCLUDING_SELF << ICR_SHORTHAND_SHIFT),
  );
  assertEquals(
    [a.apic.pendingVector(), b.take(), c.take()],
    [-1, 0x41, 0x41],
    "all excluding self",
  );
  a.write(LAPIC_ICR_HIGH, 2 << 24);
  a.write(LAPIC_ICR_LOW, 0x52 | LAPIC_ICR_ASSERT);
  assertEquals([b.apic.pendingVector(), c.take()], [-1, 0x52], "physical destination 2");
  b.write(LAPIC_LDR, 0x04 << 24); // flat model: logical ID bit 2
  a.write(LAPIC_ICR_HIGH, 0x06 << 24);
  a.write(LAPIC_ICR_LOW, 0x63 | LAPIC_ICR_ASSERT | LAPIC_ICR_LOGICAL);
  assertEquals([b.take(), c.apic.pendingVector()], [0x63, -1], "logical destination 0x06");
  assertEquals(a.read(LAPIC_ICR_LOW) & LAPIC_DELIVERY_STATUS, 0, "idle once delivered");
});

Deno.test("LocalApic shows send pending in the ICR while the bus carries the IPI", () => {
  let seenWhileSending = -1;
  const sender: { apic?: LocalApic } = {};
  const bus: ApicBus = {
    deliver: () => {
      seenWhileSending = sender.apic!.mmioRead(LAPIC_ICR_LOW, 4) & LAPIC_DELIVERY_STATUS;
      return 1;
    },
    broadcastEoi: () => {},
  };
  const { apic, write, read } = rig({ bus });
  sender.apic = apic;
  write(LAPIC_ICR_LOW, 0x40 | LAPIC_ICR_ASSERT);
  assertEquals(seenWhileSending, LAPIC_DELIVERY_STATUS);
  assertEquals(read(LAPIC_ICR_LOW) & LAPIC_DELIVERY_STATUS, 0);
});

Deno.test("LocalApic does not send lowest-priority IPIs: ESR bit 4 (redirectable IPI)", () => {
  const { write, readEsr, take } = rig();
  write(
    LAPIC_ICR_LOW,
    0x40 | (APIC_DELIVERY_LOWEST_PRIORITY << 8) | (APIC_SHORTHAND_SELF << ICR_SHORTHAND_SHIFT),
  );
  assertEquals(readEsr(), LAPIC_ESR_REDIRECTABLE_IPI);
  assertEquals(take(), -1);
});

Deno.test("lapicTimerDivisor() decodes bits 3, 1, 0 of the divide configuration", () => {
  const table = [
    [0b0000, 2],
    [0b0001, 4],
    [0b0010, 8],
    [0b0011, 16],
    [0b1000, 32],
    [
      0b1001,
      64,
    ],
    [0b1010, 128],
    [0b1011, 1],
  ];
  for (const [code, divisor] of table) assertEquals(lapicTimerDivisor(code), divisor);
  assertEquals(lapicTimerDivisor(0b0100), 2, "bit 2 is not part of the value");
});

Deno.test("LocalApic timer one-shot: counts down at bus / divisor for every divide value, fires once at 0", () => {
  for (
    const [code, divisor] of [
      [0b1011, 1],
      [0b0000, 2],
      [0b0001, 4],
      [0b0010, 8],
      [0b0011, 16],
      [
        0b1000,
        32,
      ],
      [0b1001, 64],
      [0b1010, 128],
    ]
  ) {
    const { clock, apic, write, read, take } = rig();
    write(LAPIC_TIMER_DIVIDE, code);
    write(LAPIC_LVT_TIMER, 0x40);
    write(LAPIC_TIMER_INITIAL_COUNT, 1000);
    // The bus clock is 1 GHz: one count takes `divisor` nanoseconds.
    clock.advanceNs(250 * divisor);
    assertEquals(read(LAPIC_TIMER_CURRENT_COUNT), 750, `divide by ${divisor}`);
    assertEquals(apic.nextEventNs(), 1000 * divisor);
    clock.advanceNs(750 * divisor - 1);
    apic.advanceTo(clock.nowNs());
    assertEquals(take(), -1, `divide by ${divisor}: not before`);
    clock.advanceNs(1);
    apic.advanceTo(clock.nowNs());
    assertEquals(take(), 0x40, `divide by ${divisor}: at 0`);
    assertEquals(read(LAPIC_TIMER_CURRENT_COUNT), 0, "one-shot stays at 0");
    clock.advanceNs(5000 * divisor);
    apic.advanceTo(clock.nowNs());
    write(LAPIC_EOI, 0);
    assertEquals(take(), -1, "and fires once");
    assertEquals(apic.nextEventNs(), Infinity);
  }
});

Deno.test("LocalApic timer periodic: reloads the initial count and fires every period", () => {
  const { clock, apic, write, read, take } = rig();
  write(LAPIC_TIMER_DIVIDE, 0b0011); // divide by 16
  write(LAPIC_LVT_TIMER, 0x41 | LAPIC_TIMER_PERIODIC);
  write(LAPIC_TIMER_INITIAL_COUNT, 100); // 1600 ns per period
  const fired: number[] = [];
  for (let ns = 0; ns < 10_000; ns += 100) {
    clock.advanceNs(100);
    apic.advanceTo(clock.nowNs());
    if (take() === 0x41) {
      fired.push(clock.nowNs());
      write(LAPIC_EOI, 0);
    }
  }
  assertEquals(fired, [1600, 3200, 4800, 6400, 8000, 9600]);
  assertEquals(read(LAPIC_TIMER_CURRENT_COUNT), 100 - (10_000 - 9600) / 16, "reloaded at 9600");
  write(LAPIC_TIMER_INITIAL_COUNT, 0);
  assertEquals(apic.nextEventNs(), Infinity, "a zero initial count stops it");
  assertEquals(read(LAPIC_TIMER_CURRENT_COUNT), 0);
});

Deno.test("LocalApic timer: masked it keeps counting, a divide change keeps the count, an initial write restarts", () => {
  const { clock, apic, write, read, take } = rig();
  write(LAPIC_LVT_TIMER, 0x42 | LAPIC_LVT_MASKED | LAPIC_TIMER_PERIODIC);
  write(LAPIC_TIMER_DIVIDE, 0b1011); // divide by 1
  write(LAPIC_TIMER_INITIAL_COUNT, 1000);
  assertEquals(apic.nextEventNs(), Infinity, "masked: the machine need not wake for it");
  clock.advanceNs(2500);
  apic.advanceTo(clock.nowNs());
  assertEquals(take(), -1, "masked: no interrupt");
  assertEquals(read(LAPIC_TIMER_CURRENT_COUNT), 500, "but it counted and reloaded");
  write(LAPIC_TIMER_DIVIDE, 0b0000); // divide by 2 from now on
  clock.advanceNs(200);
  assertEquals(read(LAPIC_TIMER_CURRENT_COUNT), 400);
  write(LAPIC_TIMER_INITIAL_COUNT, 50);
  assertEquals(read(LAPIC_TIMER_CURRENT_COUNT), 50);
  write(LAPIC_LVT_TIMER, 0x42 | LAPIC_TIMER_PERIODIC);
  assertEquals(apic.nextEventNs(), clock.nowNs() + 100);
});

Deno.test("LocalApic keeps its state in one buffer: a second APIC over a SharedArrayBuffer sees it", () => {
  const buffer = new SharedArrayBuffer(LOCAL_APIC_STATE_BYTES);
  const clock = new VirtualClock();
  const first = new LocalApic({ apicId: 5, clock, bus: new SystemApicBus(), stateBuffer: buffer });
  first.mmioWrite(LAPIC_TPR, 0x33, 4);
  first.mmioWrite(LAPIC_SVR, LAPIC_SVR_ENABLE | 0xef, 4);
  first.receive(APIC_DELIVERY_FIXED, 0x90, true);
  const second = new LocalApic({
    apicId: 0,
    clock,
    bus: new SystemApicBus(),
    stateBuffer: buffer,
    keepState: true,
  });
  assertEquals(second.apicId, 5, "the kept state wins over the options");
  assertEquals(second.mmioRead(LAPIC_TPR, 4), 0x33);
  assertEquals(second.pendingVector(), 0x90);
  assert(second.mmioRead(LAPIC_TMR + 0x40, 4) !== 0, "TMR bit of 0x90");
  assertThrows(
    () =>
      new LocalApic({
        apicId: 0,
        clock,
        bus: new SystemApicBus(),
        stateBuffer: new ArrayBuffer(8),
      }),
    RangeError,
    "state buffer",
  );
});

Deno.test("LocalApic reads bytes of a register's low 32 bits and nothing beyond", () => {
  const { write, apic } = rig();
  write(LAPIC_TPR, 0xa5);
  assertEquals(apic.mmioRead(LAPIC_TPR, 1), 0xa5);
  assertEquals(apic.mmioRead(LAPIC_ID + 3, 1), 0);
  assertEquals(apic.mmioRead(LAPIC_VERSION + 2, 2), 0x0005);
  assertEquals(apic.mmioRead(LAPIC_TPR + 4, 4), 0, "bytes 4 to 15 of a register are undefined");
});
