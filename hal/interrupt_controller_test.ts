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
