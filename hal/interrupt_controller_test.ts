import { assertEquals, assertThrows } from "../testing/mod.ts";
import { InterruptController } from "./interrupt_controller.ts";

Deno.test("InterruptController latches a rising edge once, as an edge-triggered 8259", () => {
  const pic = new InterruptController();
  pic.raise(4);
  pic.raise(4); // still high: no new edge
  assertEquals(pic.pendingIrq(), 4);
  pic.acknowledge(4);
  pic.endOfInterrupt();
  assertEquals(pic.pendingIrq(), -1, "a line left high raises nothing new");
  pic.lower(4);
  pic.raise(4);
  assertEquals(pic.pendingIrq(), 4, "a new edge after lowering is a new request");
  assertEquals(pic.raisedCount[4], 2);
});

Deno.test("InterruptController gives the lowest-numbered request first and nests by priority", () => {
  const pic = new InterruptController();
  pic.raise(4);
  pic.raise(0);
  assertEquals(pic.pendingIrq(), 0);
  pic.acknowledge(0);
  assertEquals(pic.pendingIrq(), -1, "IRQ 4 waits while IRQ 0 is in service");
  pic.endOfInterrupt();
  assertEquals(pic.pendingIrq(), 4);
});

Deno.test("InterruptController masks lines and rejects invalid ones", () => {
  const pic = new InterruptController();
  pic.setMask(4, "masked");
  pic.raise(4);
  assertEquals(pic.pendingIrq(), -1);
  pic.setMask(4, "unmasked");
  assertEquals(pic.pendingIrq(), 4, "the request waited behind the mask");
  assertThrows(() => pic.raise(16), RangeError, "Invalid IRQ line 16");
});

/** The pair on its ports, as a kernel reaches it. */
function ports() {
  const pic = new InterruptController();
  const out = (port: number, value: number) =>
    (port < 0xa0 ? pic.masterPorts : pic.slavePorts).portWrite(port & 1, value, 1);
  const inb = (port: number) =>
    (port < 0xa0 ? pic.masterPorts : pic.slavePorts).portRead(port & 1, 1);
  const initialise = (masterBase: number, slaveBase: number, icw4 = 0x01) => {
    out(0x20, 0x11);
    out(0xa0, 0x11);
    out(0x21, masterBase);
    out(0xa1, slaveBase);
    out(0x21, 0x04);
    out(0xa1, 0x02);
    out(0x21, icw4);
    out(0xa1, icw4);
  };
  return { pic, out, inb, initialise };
}

Deno.test("InterruptController starts with the BIOS vector bases and takes new ones from ICW2", () => {
  const { pic, inb, out, initialise } = ports();
  assertEquals([pic.vectorOf(0), pic.vectorOf(7), pic.vectorOf(8), pic.vectorOf(15)], [
    0x08,
    0x0f,
    0x70,
    0x77,
  ]);
  out(0x21, 0x5a);
  initialise(0x30, 0x38);
  assertEquals([pic.vectorOf(4), pic.vectorOf(9)], [0x34, 0x39]);
  assertEquals(inb(0x21), 0, "ICW1 clears the mask");
  out(0x21, 0xfb);
  out(0xa1, 0xff);
  assertEquals([inb(0x21), inb(0xa1), pic.maskBits], [0xfb, 0xff, 0xfffb]);
});

Deno.test("InterruptController cascade: the slave's lines rank between IRQ 1 and IRQ 3 and need EOI on both chips", () => {
  const { pic, out, initialise } = ports();
  initialise(0x20, 0x28);
  pic.raise(3);
  pic.raise(9);
  assertEquals(pic.pendingIrq(), 9);
  pic.acknowledge(9);
  assertEquals(pic.inServiceBits, (1 << 9) | (1 << 2), "slave IR1 and master IR2 in service");
  pic.raise(8);
  assertEquals(pic.pendingIrq(), -1, "the cascade is in service on the master");
  out(0xa0, 0x20); // EOI to the slave only
  assertEquals(pic.pendingIrq(), -1, "the master still has IR2 in service");
  out(0x20, 0x20);
  assertEquals(pic.pendingIrq(), 8);
  pic.acknowledge(8);
  pic.endOfInterrupt(); // both chips
  assertEquals(pic.pendingIrq(), 3);
});

Deno.test("InterruptController reads IRR or ISR after OCW3 and ends a given level with a specific EOI", () => {
  const { pic, out, inb, initialise } = ports();
  initialise(0x20, 0x28);
  pic.raise(1);
  pic.raise(5);
  assertEquals(inb(0x20), 0b0010_0010, "IRR by default after ICW1");
  pic.acknowledge(1);
  out(0x20, 0x0b);
  assertEquals(inb(0x20), 0b0000_0010, "ISR");
  out(0x20, 0x0a);
  assertEquals(inb(0x20), 0b0010_0000, "IRR again");
  out(0x20, 0x60 | 5); // specific EOI for level 5: nothing there
  assertEquals(pic.inServiceBits, 0b10);
  out(0x20, 0x60 | 1);
  assertEquals(pic.inServiceBits, 0);
});

Deno.test("InterruptController in automatic EOI mode (ICW4 bit 1) keeps nothing in service", () => {
  const { pic, initialise } = ports();
  initialise(0x20, 0x28, 0x03);
  pic.raise(4);
  pic.acknowledge(4);
  assertEquals(pic.inServiceBits, 0);
  pic.raise(0);
  assertEquals(pic.pendingIrq(), 0);
});

Deno.test("InterruptController refuses IRQ 2, the cascade input", () => {
  assertThrows(() => new InterruptController().raise(2), RangeError, "cascade");
});
