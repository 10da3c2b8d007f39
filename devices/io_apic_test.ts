import { VirtualClock } from "../hal/mod.ts";
import { assertEquals, assertThrows } from "../testing/mod.ts";
import { APIC_DELIVERY_FIXED, type ApicBus, SystemApicBus } from "./apic_bus.ts";
import {
  IoApic,
  IOAPIC_IOREGSEL,
  IOAPIC_IOWIN,
  IOAPIC_REG_ARBITRATION,
  IOAPIC_REG_ID,
  IOAPIC_REG_REDIRECTION_BASE,
  IOAPIC_REG_VERSION,
  IOAPIC_RTE_ACTIVE_LOW,
  IOAPIC_RTE_DELIVERY_STATUS,
  IOAPIC_RTE_LEVEL,
  IOAPIC_RTE_LOGICAL,
  IOAPIC_RTE_MASKED,
  IOAPIC_RTE_REMOTE_IRR,
} from "./io_apic.ts";
import { LAPIC_EOI, LAPIC_SVR, LAPIC_SVR_ENABLE, LocalApic } from "./local_apic.ts";

/** An I/O APIC and a software-enabled local APIC (ID 0) on one bus. */
function rig() {
  const bus = new SystemApicBus();
  const lapic = new LocalApic({ apicId: 0, clock: new VirtualClock(), bus });
  lapic.mmioWrite(LAPIC_SVR, LAPIC_SVR_ENABLE | 0xff, 4);
  const ioApic = new IoApic({ id: 1, bus });
  bus.attachLocalApic(lapic);
  bus.attachIoApic(ioApic);
  const readReg = (index: number) => {
    ioApic.mmioWrite(IOAPIC_IOREGSEL, index, 4);
    return ioApic.mmioRead(IOAPIC_IOWIN, 4);
  };
  const writeReg = (index: number, value: number) => {
    ioApic.mmioWrite(IOAPIC_IOREGSEL, index, 4);
    ioApic.mmioWrite(IOAPIC_IOWIN, value, 4);
  };
  const route = (pin: number, low: number, destination = 0) => {
    writeReg(IOAPIC_REG_REDIRECTION_BASE + 2 * pin + 1, destination << 24);
    writeReg(IOAPIC_REG_REDIRECTION_BASE + 2 * pin, low);
  };
  const take = () => {
    const vector = lapic.pendingVector();
    if (vector >= 0) lapic.acknowledge(vector);
    return vector;
  };
  const eoi = () => lapic.mmioWrite(LAPIC_EOI, 0, 4);
  return { bus, lapic, ioApic, readReg, writeReg, route, take, eoi };
}

Deno.test("IoApic answers through IOREGSEL and IOWIN: ID, version 0x11 with 24 pins, arbitration ID", () => {
  const { ioApic, readReg, writeReg } = rig();
  assertEquals(readReg(IOAPIC_REG_VERSION), 0x0017_0011);
  assertEquals(readReg(IOAPIC_REG_ID), 1 << 24);
  writeReg(IOAPIC_REG_ID, 0xffff_ffff);
  assertEquals(readReg(IOAPIC_REG_ID), 0x0f00_0000, "only bits 27:24 hold the ID");
  assertEquals(readReg(IOAPIC_REG_ARBITRATION), 0x0f00_0000);
  writeReg(IOAPIC_REG_VERSION, 0);
  assertEquals(readReg(IOAPIC_REG_VERSION), 0x0017_0011, "read only");
  assertEquals(readReg(0x40), 0, "no register 0x40: reads 0");
  assertEquals(ioApic.mmioRead(IOAPIC_IOREGSEL, 4), 0x40, "IOREGSEL reads back");
  assertEquals(ioApic.mmioRead(0x08, 4), 0, "nothing between the two registers");
});

Deno.test("IoApic redirection entries reset masked and keep their read-only bits on writes", () => {
  const { readReg, writeReg } = rig();
  for (let pin = 0; pin < 24; pin++) {
    assertEquals(readReg(IOAPIC_REG_REDIRECTION_BASE + 2 * pin), IOAPIC_RTE_MASKED);
  }
  writeReg(IOAPIC_REG_REDIRECTION_BASE + 2 * 5, 0xffff_ffff);
  assertEquals(
    readReg(IOAPIC_REG_REDIRECTION_BASE + 2 * 5),
    0x0001_afff,
    "vector, mode, dest mode, polarity, trigger, mask; not delivery status or Remote IRR",
  );
  writeReg(IOAPIC_REG_REDIRECTION_BASE + 2 * 5 + 1, 0xffff_ffff);
  assertEquals(readReg(IOAPIC_REG_REDIRECTION_BASE + 2 * 5 + 1), 0xff00_0000, "destination only");
  assertThrows(() => rig().ioApic.setPinLevel(24, true), RangeError, "pin 24");
});

Deno.test("IoApic edge pin: a rising edge sends the vector; an edge on a masked pin is lost", () => {
  const { ioApic, route, take, eoi } = rig();
  route(4, 0x34);
  ioApic.setPinLevel(4, true);
  ioApic.setPinLevel(4, true); // still high: no new edge
  assertEquals(take(), 0x34);
  eoi();
  assertEquals(take(), -1);
  ioApic.setPinLevel(4, false);
  route(4, 0x34 | IOAPIC_RTE_MASKED);
  ioApic.setPinLevel(4, true);
  route(4, 0x34);
  assertEquals(take(), -1, "the masked edge was not held");
  ioApic.setPinLevel(4, false);
  ioApic.setPinLevel(4, true);
  assertEquals(take(), 0x34);
  assertEquals(ioApic.messagesSent[4], 2);
});

Deno.test("IoApic level pin: Remote IRR holds it until the local APIC's EOI, then it sends again if still active", () => {
  const { ioApic, readReg, route, take, eoi } = rig();
  route(9, 0x59 | IOAPIC_RTE_LEVEL);
  ioApic.setPinLevel(9, true);
  assertEquals(
    readReg(IOAPIC_REG_REDIRECTION_BASE + 18) & IOAPIC_RTE_REMOTE_IRR,
    IOAPIC_RTE_REMOTE_IRR,
  );
  assertEquals(take(), 0x59);
  ioApic.setPinLevel(9, false);
  ioApic.setPinLevel(9, true);
  assertEquals(take(), -1, "Remote IRR: no new message before the EOI");
  eoi(); // TMR says level: the EOI reaches the I/O APIC
  assertEquals(take(), 0x59, "still active after the EOI: sent again");
  ioApic.setPinLevel(9, false);
  eoi();
  assertEquals(readReg(IOAPIC_REG_REDIRECTION_BASE + 18) & IOAPIC_RTE_REMOTE_IRR, 0);
  assertEquals(take(), -1, "inactive after the EOI: nothing more");
});

Deno.test("IoApic level pin masked while active sends once unmasked", () => {
  const { ioApic, route, take } = rig();
  route(10, 0x5a | IOAPIC_RTE_LEVEL | IOAPIC_RTE_MASKED);
  ioApic.setPinLevel(10, true);
  assertEquals(take(), -1);
  route(10, 0x5a | IOAPIC_RTE_LEVEL);
  assertEquals(take(), 0x5a);
});

Deno.test("IoApic active-low pins assert on low: a falling edge, or a low level", () => {
  const { ioApic, route, take, eoi } = rig();
  ioApic.setPinLevel(11, true); // idle high, as active-low lines rest
  route(11, 0x5b | IOAPIC_RTE_ACTIVE_LOW);
  assertEquals(take(), -1);
  ioApic.setPinLevel(11, false);
  assertEquals(take(), 0x5b);
  eoi();
  ioApic.setPinLevel(12, false);
  route(12, 0x5c | IOAPIC_RTE_ACTIVE_LOW | IOAPIC_RTE_LEVEL);
  assertEquals(take(), 0x5c, "a low level on an active-low level pin is active");
});

Deno.test("IoApic keeps a level message no local APIC accepts pending, and sends by logical destination", () => {
  const { lapic, ioApic, readReg, route, take } = rig();
  lapic.mmioWrite(LAPIC_SVR, 0xff, 4); // software-disabled: accepts no fixed interrupt
  route(13, 0x5d | IOAPIC_RTE_LEVEL);
  ioApic.setPinLevel(13, true);
  const low = readReg(IOAPIC_REG_REDIRECTION_BASE + 26);
  assertEquals(
    low & (IOAPIC_RTE_DELIVERY_STATUS | IOAPIC_RTE_REMOTE_IRR),
    IOAPIC_RTE_DELIVERY_STATUS,
  );
  lapic.mmioWrite(LAPIC_SVR, LAPIC_SVR_ENABLE | 0xff, 4);
  lapic.mmioWrite(0x0d0, 0x01 << 24, 4); // LDR: logical ID 1 (flat)
  route(14, 0x5e | IOAPIC_RTE_LOGICAL, 0x01);
  ioApic.setPinLevel(14, true);
  assertEquals(take(), 0x5e);
});

Deno.test("IoApic delivers through the ApicBus interface with the entry's fields", () => {
  const messages: unknown[] = [];
  const bus: ApicBus = {
    deliver: (...fields) => {
      messages.push(fields);
      return 1;
    },
    broadcastEoi: () => {},
  };
  const ioApic = new IoApic({ id: 2, bus });
  ioApic.mmioWrite(IOAPIC_IOREGSEL, IOAPIC_REG_REDIRECTION_BASE + 2 * 3 + 1, 4);
  ioApic.mmioWrite(IOAPIC_IOWIN, 0x07 << 24, 4);
  ioApic.mmioWrite(IOAPIC_IOREGSEL, IOAPIC_REG_REDIRECTION_BASE + 2 * 3, 4);
  ioApic.mmioWrite(IOAPIC_IOWIN, 0x33 | IOAPIC_RTE_LEVEL, 4);
  ioApic.setPinLevel(3, true);
  assertEquals(messages, [[-1, 0, false, 7, APIC_DELIVERY_FIXED, 0x33, true]]);
});
