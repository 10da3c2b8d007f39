import {
  type AccessWidth,
  COM1_PORT_BASE,
  CpuContext,
  DeviceBus,
  InterruptController,
  IRQ_COM1,
  PhysicalMemory,
  type PortDevice,
} from "../../hal/mod.ts";
import {
  Uart16550,
  type Uart16550Options,
  UART_FCR,
  UART_LSR,
  UART_PORT_COUNT,
  UART_SCR,
} from "../../devices/mod.ts";
import { KernelError } from "../errors.ts";
import { assert, assertEquals, assertThrows, Xorshift32 } from "../../testing/mod.ts";
import { SERIAL_COM1_PORT, SerialPort } from "./serial_port.ts";
import { identifyUart } from "./uart_identify.ts";
import { legacyIrqRouting } from "./_test_interrupts.ts";

interface Machine {
  readonly bus: DeviceBus;
  readonly pic: InterruptController;
  readonly cpu: CpuContext;
}

function bareMachine(): Machine {
  const bus = new DeviceBus(PhysicalMemory.contiguous(4096));
  const pic = new InterruptController();
  return { bus, pic, cpu: new CpuContext(bus, pic) };
}

interface UartMachine extends Machine {
  readonly uart: Uart16550;
  readonly sent: number[];
}

function uartMachine(options: Partial<Uart16550Options> = {}): UartMachine {
  const machine = bareMachine();
  const sent: number[] = [];
  const uart = new Uart16550({
    interrupts: machine.pic,
    sink: (byte) => sent.push(byte),
    ...options,
  });
  machine.bus.claimPorts(COM1_PORT_BASE, UART_PORT_COUNT, uart);
  return { ...machine, uart, sent };
}

/** Wraps a device so a test can change what some registers do. */
class PortDeviceWrapper implements PortDevice {
  readonly name = "wrapped-uart";
  readonly #inner: PortDevice;
  readonly #read: (offset: number, inner: () => number) => number;
  readonly #write: (offset: number, value: number, inner: () => void) => void;

  constructor(
    inner: PortDevice,
    hooks: {
      read?: (offset: number, inner: () => number) => number;
      write?: (offset: number, value: number, inner: () => void) => void;
    },
  ) {
    this.#inner = inner;
    this.#read = hooks.read ?? ((_offset, next) => next());
    this.#write = hooks.write ?? ((_offset, _value, next) => next());
  }

  portRead(offset: number, width: AccessWidth): number {
    return this.#read(offset, () => this.#inner.portRead(offset, width));
  }

  portWrite(offset: number, value: number, width: AccessWidth): void {
    this.#write(offset, value, () => this.#inner.portWrite(offset, value, width));
  }
}

function wrappedUartMachine(
  hooks: (uart: Uart16550) => ConstructorParameters<typeof PortDeviceWrapper>[1],
  options: Partial<Uart16550Options> = {},
): UartMachine {
  const machine = bareMachine();
  const sent: number[] = [];
  const uart = new Uart16550({
    interrupts: machine.pic,
    sink: (byte) => sent.push(byte),
    ...options,
  });
  machine.bus.claimPorts(COM1_PORT_BASE, UART_PORT_COUNT, new PortDeviceWrapper(uart, hooks(uart)));
  return { ...machine, uart, sent };
}

/** A fake UART: a plain register file whose LSR reads a fixed value. */
class FakeUart implements PortDevice {
  readonly name = "fake-uart";
  readonly registers = new Uint8Array(UART_PORT_COUNT);
  lsrReads = 0;
  readonly #lsr: number;

  constructor(lsr: number) {
    this.#lsr = lsr;
  }

  portRead(offset: number): number {
    if (offset === UART_LSR) {
      this.lsrReads++;
      return this.#lsr;
    }
    return this.registers[offset];
  }

  portWrite(offset: number, value: number): void {
    this.registers[offset] = value;
  }
}

function randomBytes(seed: number, count: number): Uint8Array {
  const rng = new Xorshift32(seed);
  return Uint8Array.from({ length: count }, () => rng.below(256));
}

// --- init -------------------------------------------------------------------------

Deno.test("SerialPort.init() leaves the UART in 8N1 at divisor 1 with FIFOs on and OUT2 set", () => {
  const m = uartMachine();
  new SerialPort(m.cpu).init();
  const state = m.uart.saveState();
  assertEquals(state.lcr, 0x03, "8N1, DLAB clear");
  assertEquals(state.divisor, 1);
  assertEquals(m.uart.baudRate, 115200);
  assertEquals(state.fcr, 0xc1, "FIFOs on, RX trigger 14");
  assertEquals(state.mcr, 0x0b, "DTR | RTS | OUT2, loopback off");
  assertEquals(state.ier, 0);
  assertEquals(m.sent, [], "the self-test byte never reaches the line");
  assertEquals(m.uart.rxFreeSpace(), 16);
});

Deno.test("SerialPort.init() programs a configured divisor", () => {
  const m = uartMachine();
  new SerialPort(m.cpu, { divisor: 3 }).init();
  assertEquals(m.uart.divisor, 3);
  assertEquals(m.uart.baudRate, 38400);
});

Deno.test("SerialPort constructor rejects a divisor outside 1 to 65535", () => {
  const m = bareMachine();
  assertThrows(() => new SerialPort(m.cpu, { divisor: 0 }), RangeError, "divisor 0");
  assertThrows(() => new SerialPort(m.cpu, { divisor: 65536 }), RangeError, "65536");
  assertThrows(() => new SerialPort(m.cpu, { maxPolls: 0 }), RangeError, "poll bound 0");
});

Deno.test("SerialPort.init() fails with DeviceNotFound on an empty bus", () => {
  const m = bareMachine();
  const error = assertThrows(() => new SerialPort(m.cpu).init(), KernelError, "0x3f8");
  assertEquals(error.code, "DeviceNotFound");
  assert(error.message.includes("scratch register read back 0xff"), error.message);
});

Deno.test("SerialPort.init() fails with DeviceNotFound when no loopback byte comes back", () => {
  const m = bareMachine();
  m.bus.claimPorts(SERIAL_COM1_PORT, UART_PORT_COUNT, new FakeUart(0x60));
  const error = assertThrows(
    () => new SerialPort(m.cpu, { maxPolls: 100 }).init(),
    KernelError,
    "failed its loopback self-test: sent 0xae, nothing came back",
  );
  assertEquals(error.code, "DeviceNotFound");
});

Deno.test("SerialPort.init() fails with DeviceNotFound when loopback returns the wrong byte", () => {
  const m = wrappedUartMachine(() => ({
    read: (offset, next) => offset === 0 ? next() ^ 0x01 : next(),
  }));
  const error = assertThrows(
    () => new SerialPort(m.cpu).init(),
    KernelError,
    "sent 0xae, read back 0xaf",
  );
  assertEquals(error.code, "DeviceNotFound");
  assertEquals(m.uart.saveState().ier, 0, "interrupts stay off after a failed init");
});

// --- write -------------------------------------------------------------------------

Deno.test("SerialPort.write() delivers bytes to the line in order, more than 16 at a time", () => {
  const m = uartMachine();
  const serial = new SerialPort(m.cpu);
  serial.init();
  const bytes = randomBytes(42, 1000);
  assertEquals(serial.write(bytes), 1000);
  assertEquals(serial.write(bytes.subarray(0, 5)), 5);
  assertEquals(m.sent, [...bytes, ...bytes.subarray(0, 5)]);
  assertEquals(serial.bytesWritten, 1005);
  assertEquals(serial.droppedBytes, 0);
});

Deno.test("SerialPort.writeString() sends UTF-8 like TextEncoder", () => {
  const m = uartMachine();
  const serial = new SerialPort(m.cpu);
  serial.init();
  const text = "Hello, wörld € 世界 🦕\n\ud800!";
  const expected = [...new TextEncoder().encode(text)];
  assertEquals(serial.writeString(text), expected.length);
  assertEquals(m.sent, expected);
});

Deno.test("SerialPort.write() keeps up with a paced transmitter, filling 16 bytes per THRE", () => {
  // The machine's clock advances one character time on every LSR poll.
  let lsrPolls = 0;
  const m = wrappedUartMachine((uart) => ({
    read: (offset, next) => {
      if (offset === UART_LSR) {
        lsrPolls++;
        uart.advanceCharacterTimes(1);
      }
      return next();
    },
  }), { txPacing: "per-character-time" });
  const serial = new SerialPort(m.cpu);
  serial.init();
  lsrPolls = 0;
  const bytes = randomBytes(9, 200);
  assertEquals(serial.write(bytes), 200);
  m.uart.advanceCharacterTimes(20);
  assertEquals(m.sent, [...bytes], "no byte lost to a full TX FIFO");
  assert(lsrPolls >= 200 - 17, "the driver waited for the line");
});

Deno.test("SerialPort.write() does not wait for CTS when there is no cable", () => {
  const m = uartMachine({ lineState: "no-cable" });
  const serial = new SerialPort(m.cpu);
  serial.init();
  assertEquals(serial.writeString("still here\n"), 11);
  assertEquals(m.sent.length, 11);
});

Deno.test("SerialPort.write() drops bytes instead of hanging when THRE never sets", () => {
  const m = bareMachine();
  const fake = new FakeUart(0x00);
  m.bus.claimPorts(SERIAL_COM1_PORT, UART_PORT_COUNT, fake);
  const serial = new SerialPort(m.cpu, { maxPolls: 1000 });
  assertEquals(serial.write(new Uint8Array(40)), 0);
  assertEquals(fake.lsrReads, 1000, "one bounded wait for the whole call");
  assertEquals(serial.droppedBytes, 40);
  assertEquals(serial.writeString("abc"), 0);
  assertEquals(fake.lsrReads, 1001, "a stuck transmitter gets one poll per call");
  assertEquals(serial.droppedBytes, 43);
  assertEquals(serial.bytesWritten, 0);
});

Deno.test("SerialPort.write() restores the interrupt flag it found", () => {
  const m = uartMachine();
  const serial = new SerialPort(m.cpu);
  serial.init();
  serial.writeString("a");
  assert(!m.cpu.interruptsEnabled);
  m.cpu.sti();
  serial.writeString("b");
  assert(m.cpu.interruptsEnabled);
});

// --- receive -------------------------------------------------------------------------

function receivingMachine(options: Partial<Uart16550Options> = {}) {
  const m = uartMachine(options);
  const serial = new SerialPort(m.cpu);
  serial.init();
  serial.connectInterrupts(legacyIrqRouting(m.bus, m.pic, m.cpu));
  const received: number[] = [];
  serial.enableReceiveInterrupts((byte) => received.push(byte));
  return { ...m, serial, received };
}

Deno.test("SerialPort delivers received bytes through IRQ 4 only after sti", () => {
  const m = receivingMachine();
  for (const byte of [0x68, 0x69]) assert(m.uart.receive(byte));
  m.uart.advanceCharacterTimes(4); // below the trigger level: the timeout reports them
  assert(m.pic.isHigh(IRQ_COM1));
  assertEquals(m.cpu.hlt(), false, "IF clear: nothing is delivered");
  assertEquals(m.received, []);
  m.cpu.sti();
  assertEquals(m.received, [0x68, 0x69]);
  assert(!m.pic.isHigh(IRQ_COM1), "the handler drained every cause");
  assertEquals(m.serial.bytesReceived, 2);
});

Deno.test("SerialPort receives a burst fed with flow control in order and loses nothing", () => {
  const m = receivingMachine();
  m.cpu.sti();
  const bytes = randomBytes(1234, 1000);
  let fed = 0;
  let rounds = 0;
  while (m.received.length < bytes.length) {
    while (fed < bytes.length && m.uart.receive(bytes[fed])) fed++;
    // Trigger level 14 raises the IRQ; a tail below it waits for the timeout.
    m.uart.advanceCharacterTimes(4);
    m.cpu.hlt();
    rounds++;
    assert(rounds < 1000, "no progress");
  }
  assertEquals(m.received, [...bytes]);
  assertEquals(m.serial.bytesReceived, 1000);
  assertEquals(m.serial.overruns, 0);
  assertEquals(rounds, Math.ceil(1000 / 16));
});

Deno.test("SerialPort receives at the trigger level without waiting for a timeout", () => {
  const m = receivingMachine();
  m.cpu.sti();
  const bytes = randomBytes(5, 14);
  for (const byte of bytes) assert(m.uart.receive(byte));
  assertEquals(m.received, [], "the controller delivers at the next instruction boundary");
  m.cpu.hlt();
  assertEquals(m.received, [...bytes]);
});

Deno.test("SerialPort counts an overrun when the sender ignores flow control", () => {
  const m = receivingMachine();
  for (let i = 0; i < 20; i++) m.uart.receiveFromLine(i);
  m.cpu.sti();
  assertEquals(m.serial.overruns, 1);
  assertEquals(m.received, Array.from({ length: 16 }, (_, i) => i));
});

Deno.test("SerialPort delivers a byte that arrives with a parity error", () => {
  const m = receivingMachine();
  m.cpu.sti();
  m.uart.receiveFromLine(0x7e, "parity-error");
  m.cpu.hlt();
  assertEquals(m.received, [0x7e]);
  assert(!m.pic.isHigh(IRQ_COM1));
});

Deno.test("SerialPort can echo from its receive handler", () => {
  const m = uartMachine();
  const serial = new SerialPort(m.cpu);
  serial.init();
  serial.connectInterrupts(legacyIrqRouting(m.bus, m.pic, m.cpu));
  serial.enableReceiveInterrupts((byte) => serial.write(Uint8Array.of(byte)));
  m.cpu.sti();
  for (const byte of [0x61, 0x62, 0x63]) assert(m.uart.receive(byte));
  m.uart.advanceCharacterTimes(4);
  m.cpu.hlt();
  assertEquals(m.sent, [0x61, 0x62, 0x63]);
});

Deno.test("SerialPort.disableReceiveInterrupts() stops delivery", () => {
  const m = receivingMachine();
  m.cpu.sti();
  m.serial.disableReceiveInterrupts();
  assert(m.uart.receive(0x41));
  m.uart.advanceCharacterTimes(4);
  m.cpu.hlt();
  assertEquals(m.received, []);
  assert(!m.pic.isHigh(IRQ_COM1));
});

// --- identifyUart ------------------------------------------------------------------

Deno.test("identifyUart() says 16550A for the UART model and restores its registers", () => {
  const m = uartMachine();
  const serial = new SerialPort(m.cpu);
  serial.init();
  m.uart.portWrite(UART_SCR, 0x3c, 1);
  m.uart.portWrite(1, 0x05, 1); // IER
  const before = m.uart.saveState();
  assertEquals(identifyUart(m.cpu, SERIAL_COM1_PORT), "16550A");
  const after = m.uart.saveState();
  assertEquals(
    [after.lcr, after.mcr, after.ier, after.scr, after.divisor],
    [before.lcr, before.mcr, before.ier, before.scr, before.divisor],
  );
  assertEquals(after.fcr & 0x01, 0x01, "FIFOs stay enabled");
  assertEquals(m.sent, [], "the probe never reaches the line");
  serial.writeString("ok");
  assertEquals(m.sent, [0x6f, 0x6b]);
});

Deno.test("identifyUart() restores the interrupt flag and leaves interrupt-driven reception working", () => {
  const m = uartMachine();
  const serial = new SerialPort(m.cpu);
  serial.init();
  serial.connectInterrupts(legacyIrqRouting(m.bus, m.pic, m.cpu));
  const received: number[] = [];
  serial.enableReceiveInterrupts((byte) => received.push(byte));
  m.cpu.sti();
  assertEquals(identifyUart(m.cpu, SERIAL_COM1_PORT), "16550A");
  assert(m.cpu.interruptsEnabled, "the interrupt flag is restored");
  assertEquals(received, [], "no loopback probe byte reached the kernel");
  assertEquals(serial.bytesReceived, 0);
  assert(m.uart.receive(0x41));
  m.uart.advanceCharacterTimes(4);
  m.cpu.hlt();
  assertEquals(received, [0x41], "reception still works after the probe");
});

Deno.test("identifyUart() says 16550A for a UART fresh from reset", () => {
  const m = uartMachine();
  assertEquals(identifyUart(m.cpu, SERIAL_COM1_PORT), "16550A");
  assertEquals(m.uart.saveState().fcr, 0, "FIFOs stay off as found");
  assertEquals(m.uart.divisor, 0x0c);
});

Deno.test("identifyUart() says none for an empty bus", () => {
  const m = bareMachine();
  assertEquals(identifyUart(m.cpu, SERIAL_COM1_PORT), "none");
});

Deno.test("identifyUart() says none when loopback does not wire the modem lines", () => {
  const m = bareMachine();
  m.bus.claimPorts(SERIAL_COM1_PORT, UART_PORT_COUNT, new FakeUart(0x60));
  assertEquals(identifyUart(m.cpu, SERIAL_COM1_PORT), "none");
});

Deno.test("identifyUart() says 16450 without FIFOs and 8250 without a scratch register", () => {
  const noFifo = wrappedUartMachine(() => ({
    write: (offset, _value, next) => offset === UART_FCR ? undefined : next(),
  }));
  assertEquals(identifyUart(noFifo.cpu, SERIAL_COM1_PORT), "16450");
  const noScratch = wrappedUartMachine(() => ({
    read: (offset, next) => offset === UART_SCR ? 0xff : next(),
    write: (offset, _value, next) => offset === UART_FCR ? undefined : next(),
  }));
  assertEquals(identifyUart(noScratch.cpu, SERIAL_COM1_PORT), "8250");
});

Deno.test("identifyUart() says 16550 for a FIFO UART that shows an EFR", () => {
  const m = wrappedUartMachine((uart) => ({
    read: (offset, next) => offset === 2 && uart.saveState().lcr === 0xbf ? 0 : next(),
  }));
  assertEquals(identifyUart(m.cpu, SERIAL_COM1_PORT), "16550");
});
