import { assert, assertEquals, assertThrows } from "../testing/asserts.ts";
import {
  DEBUG_CONSOLE_PORT,
  HostClock,
  HPET_BASE,
  LOCAL_APIC_BASE,
  type PhysAddr,
  PhysicalMemory,
  VirtualClock,
} from "../hal/mod.ts";
import { createPc, LAPIC_ICR_HIGH, LAPIC_ICR_LOW, LAPIC_SVR, type Pc } from "./mod.ts";
import { HPET_CAPABILITIES } from "./hpet.ts";

const WORKER_URL = new URL("./_smp_test_worker.ts", import.meta.url);
const PROGRAM_VECTOR = 8;
const PROGRAM = PROGRAM_VECTOR * 4096;
const DONE = PROGRAM + 4092;
const DATA = 0x9000;
const WAIT_MS = 10_000;
const INIT_IPI = 0b101 << 8 | 1 << 14;
const STARTUP_IPI = 0b110 << 8 | 1 << 14;
const NMI_IPI = 0b100 << 8 | 1 << 14;
const APIC_ENABLE = 0x1ff;

/** Builds a PC of `cpuCount` CPUs, runs `body`, and always shuts the board down. */
async function withSmpPc(
  cpuCount: number,
  body: (pc: Pc, debugBytes: number[]) => void | Promise<void>,
): Promise<void> {
  const debugBytes: number[] = [];
  const pc = createPc(PhysicalMemory.contiguous(16 * 2 ** 20), new HostClock(), {
    serialSink: () => {},
    debugSink: (byte) => debugBytes.push(byte),
    smp: { cpuCount, cpuWorkerUrl: WORKER_URL },
  });
  try {
    await body(pc, debugBytes);
  } finally {
    const stuck = await pc.smp!.shutdown();
    assertEquals(stuck, [], "every AP Worker ends on its own");
  }
}

/** Writes a program (triples of words) at the start-up page. */
function writeProgram(pc: Pc, ops: readonly (readonly [number, number?, number?])[]): void {
  const memory = pc.machine.memory;
  ops.forEach(([op, a = 0, b = 0], i) => {
    memory.write32((PROGRAM + 12 * i) as PhysAddr, op);
    memory.write32((PROGRAM + 12 * i + 4) as PhysAddr, a);
    memory.write32((PROGRAM + 12 * i + 8) as PhysAddr, b);
  });
}

/** The BSP sends an IPI through its local APIC's ICR. */
function sendIpi(pc: Pc, destination: number, low: number): void {
  pc.localApic.mmioWrite(LAPIC_ICR_HIGH, destination << 24, 4);
  pc.localApic.mmioWrite(LAPIC_ICR_LOW, low, 4);
}

function startAp(pc: Pc, cpu: number): void {
  sendIpi(pc, cpu, INIT_IPI);
  sendIpi(pc, cpu, STARTUP_IPI | PROGRAM_VECTOR);
  sendIpi(pc, cpu, STARTUP_IPI | PROGRAM_VECTOR);
}

/** The BSP spins at instruction boundaries (serving the APs) until `done` holds. */
function spinUntil(pc: Pc, done: () => boolean, what: string): void {
  const deadline = performance.now() + WAIT_MS;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    pc.machine.cpu.pause();
    Atomics.wait(nap, 0, 0, 1);
  }
}

function word(pc: Pc, pa: number): number {
  return Atomics.load(pc.machine.memory.i32, pa / 4);
}

Deno.test("createPc() refuses several CPUs on a virtual clock", () => {
  assertThrows(
    () =>
      createPc(PhysicalMemory.contiguous(16 * 2 ** 20), new VirtualClock(), {
        serialSink: () => {},
        smp: { cpuCount: 2, cpuWorkerUrl: WORKER_URL },
      }),
    RangeError,
    "needs the host clock",
  );
});

Deno.test("an AP waits in reset until INIT and a start-up IPI, then runs from vector * 4 KiB", async () => {
  await withSmpPc(2, (pc) => {
    writeProgram(pc, [[8, DATA, 0x1234], [0]]);
    assertEquals(pc.smp!.runState(1), "reset");
    assertEquals(word(pc, DATA), 0);
    sendIpi(pc, 1, STARTUP_IPI | PROGRAM_VECTOR);
    assertEquals(pc.smp!.runState(1), "reset", "a SIPI without INIT first is ignored");
    startAp(pc, 1);
    spinUntil(pc, () => word(pc, DONE) === 1, "the program to end");
    assertEquals(word(pc, DATA), 0x1234);
    assertEquals(pc.smp!.control.messageCounts(1), { inits: 1, startups: 3, nmis: 0 });
  });
});

Deno.test("port I/O and MMIO from an AP reach the board's devices through its mailbox", async () => {
  await withSmpPc(2, (pc, debugBytes) => {
    writeProgram(pc, [
      [1, DEBUG_CONSOLE_PORT, 0x68],
      [1, DEBUG_CONSOLE_PORT, 0x69],
      [3, HPET_BASE + HPET_CAPABILITIES, DATA],
      [0],
    ]);
    startAp(pc, 1);
    spinUntil(pc, () => word(pc, DONE) === 1, "the program to end");
    assertEquals(String.fromCharCode(...debugBytes), "hi");
    assertEquals(word(pc, DATA) >>> 0, pc.hpet.mmioRead(HPET_CAPABILITIES, 4));
    assertEquals(pc.smp!.mailboxes.served[1], 3);
  });
});

Deno.test("a fixed IPI from the BSP runs the AP's handler, and the AP's IPI runs the BSP's", async () => {
  await withSmpPc(2, (pc) => {
    const ready = DATA;
    const count = DATA + 4;
    writeProgram(pc, [
      [4, LOCAL_APIC_BASE + LAPIC_SVR, APIC_ENABLE],
      [5, 0x40, count],
      [8, ready, 1],
      [6, count, 1],
      [7, 0, 0x41 | 1 << 14], // fixed IPI to APIC 0, vector 0x41
      [0],
    ]);
    let bspTaken = 0;
    pc.machine.cpu.setInterruptHandler(0x41, () => {
      bspTaken++;
      pc.localApic.mmioWrite(0xb0, 0, 4);
    });
    pc.machine.cpu.sti();
    startAp(pc, 1);
    spinUntil(pc, () => word(pc, ready) === 1, "the AP's handler");
    sendIpi(pc, 1, 0x40 | 1 << 14);
    spinUntil(pc, () => bspTaken === 1 && word(pc, DONE) === 1, "both IPIs");
    assertEquals(word(pc, count), 1);
  });
});

Deno.test("an interrupt the I/O APIC routes to an AP runs on that AP", async () => {
  await withSmpPc(3, (pc) => {
    const ready = DATA;
    const count = DATA + 4;
    writeProgram(pc, [
      [4, LOCAL_APIC_BASE + LAPIC_SVR, APIC_ENABLE],
      [5, 0x51, count],
      [8, ready, 1],
      [6, count, 1],
      [0],
    ]);
    startAp(pc, 2);
    spinUntil(pc, () => word(pc, ready) === 1, "the AP's handler");
    // Pin 9: edge, active high, fixed, vector 0x51, physical destination APIC 2.
    pc.ioApic.mmioWrite(0x00, 0x10 + 2 * 9 + 1, 4);
    pc.ioApic.mmioWrite(0x10, 2 << 24, 4);
    pc.ioApic.mmioWrite(0x00, 0x10 + 2 * 9, 4);
    pc.ioApic.mmioWrite(0x10, 0x51, 4);
    pc.ioApic.setPinLevel(9, true);
    spinUntil(pc, () => word(pc, DONE) === 1, "the routed interrupt");
    assertEquals(word(pc, count), 1);
    assertEquals(pc.smp!.runState(1), "reset", "CPU 1 was never started");
  });
});

Deno.test("an NMI from an AP runs the BSP's NMI handler at its next instruction boundary", async () => {
  await withSmpPc(2, (pc) => {
    writeProgram(pc, [[7, 0, NMI_IPI], [0]]);
    let nmis = 0;
    pc.machine.cpu.setInterruptHandler(2, () => nmis++);
    startAp(pc, 1);
    spinUntil(pc, () => nmis === 1, "the NMI");
    assertEquals(pc.smp!.control.messageCounts(0).nmis, 1);
  });
});

Deno.test("halting the BSP stops every AP, even one waiting for an interrupt", async () => {
  await withSmpPc(2, (pc) => {
    writeProgram(pc, [
      [4, LOCAL_APIC_BASE + LAPIC_SVR, APIC_ENABLE],
      [5, 0x40, DATA + 4],
      [8, DATA, 1],
      [6, DATA + 4, 1],
      [0],
    ]);
    startAp(pc, 1);
    spinUntil(pc, () => word(pc, DATA) === 1, "the AP to wait");
    pc.machine.halt("test");
    spinUntil(pc, () => pc.smp!.runState(1) === "exited", "the AP to stop");
    assert(word(pc, DONE) === 0, "the program never ended");
  });
});

Deno.test("port writes from several APs at once all reach the device: none is lost", async () => {
  await withSmpPc(4, (pc, debugBytes) => {
    // Each AP runs its own copy of the program: a page per vector.
    for (let cpu = 1; cpu < 4; cpu++) {
      const page = (PROGRAM_VECTOR + cpu) * 4096;
      const ops = [[9, DEBUG_CONSOLE_PORT, 0x40 + cpu], [0]];
      ops.forEach(([op, a = 0, b = 0], i) => {
        pc.machine.memory.write32((page + 12 * i) as PhysAddr, op);
        pc.machine.memory.write32((page + 12 * i + 4) as PhysAddr, a);
        pc.machine.memory.write32((page + 12 * i + 8) as PhysAddr, b);
      });
      sendIpi(pc, cpu, INIT_IPI);
      sendIpi(pc, cpu, STARTUP_IPI | (PROGRAM_VECTOR + cpu));
    }
    const done = (cpu: number) => word(pc, (PROGRAM_VECTOR + cpu) * 4096 + 4092) === 1;
    spinUntil(pc, () => done(1) && done(2) && done(3), "every AP's writes");
    for (let cpu = 1; cpu < 4; cpu++) {
      assertEquals(debugBytes.filter((byte) => byte === 0x40 + cpu).length, 200, `CPU ${cpu}`);
    }
    assertEquals(debugBytes.length, 600);
  });
});

Deno.test("a fixed IPI to all but self reaches every other CPU's handler", async () => {
  await withSmpPc(3, (pc) => {
    for (let cpu = 1; cpu < 3; cpu++) {
      const page = (PROGRAM_VECTOR + cpu) * 4096;
      const ready = DATA + 16 * cpu;
      const ops = [
        [4, LOCAL_APIC_BASE + LAPIC_SVR, APIC_ENABLE],
        [5, 0x44, ready + 4],
        [8, ready, 1],
        [6, ready + 4, 1],
        [0],
      ];
      ops.forEach(([op, a = 0, b = 0], i) => {
        pc.machine.memory.write32((page + 12 * i) as PhysAddr, op);
        pc.machine.memory.write32((page + 12 * i + 4) as PhysAddr, a);
        pc.machine.memory.write32((page + 12 * i + 8) as PhysAddr, b);
      });
      sendIpi(pc, cpu, INIT_IPI);
      sendIpi(pc, cpu, STARTUP_IPI | (PROGRAM_VECTOR + cpu));
    }
    spinUntil(pc, () => word(pc, DATA + 16) === 1 && word(pc, DATA + 32) === 1, "both handlers");
    let bspTaken = 0;
    pc.machine.cpu.setInterruptHandler(0x44, () => bspTaken++);
    pc.machine.cpu.sti();
    sendIpi(pc, 0, 0x44 | 1 << 14 | 0b11 << 18); // shorthand 11: all excluding self
    const done = (cpu: number) => word(pc, (PROGRAM_VECTOR + cpu) * 4096 + 4092) === 1;
    spinUntil(pc, () => done(1) && done(2), "the IPI on both APs");
    assertEquals(bspTaken, 0, "not the sender");
  });
});
