/**
 * Identifies the UART at a base port the way Linux's 8250 `autoconfig()`
 * does, through port I/O only (docs/uart16550.md, "How Linux recognises a 16550A").
 *
 * The kernel knows the UART only through its registers, so the register map
 * below is the kernel's own copy of the 16550A's (as Linux's
 * `serial_reg.h`), not an import from the device model.
 *
 * @module
 */

import type { CpuContext } from "../../hal/mod.ts";
import {
  DLL,
  DLM,
  FCR,
  FCR_CLEAR_RX,
  FCR_CLEAR_TX,
  FCR_ENABLE,
  IER,
  IIR,
  LCR,
  LCR_8N1,
  LCR_DLAB,
  LSR,
  LSR_DR,
  MCR,
  MCR_LOOP,
  MSR,
  RBR,
  SCR,
  THR,
} from "./_uart_registers.ts";

/** The UART types {@linkcode identifyUart} tells apart. */
export type UartType = "none" | "8250" | "16450" | "16550" | "16550A";

// Registers and bits beyond the shared set, for telling chips apart.
const EFR = 2; // enhanced features on 16650 and later, visible with LCR = 0xBF

const LCR_CONF_MODE_A = 0x80; // Linux: DLAB, where a 16650 V1 shows its EFR
const LCR_CONF_MODE_B = 0xbf; // Linux: where 16650 V2 and later show their EFR
const LCR_NS_BANK_2 = 0xe0; // Linux: National SuperIO register bank 2 (EXCR1 at offset 2)
const FCR_64_BYTE = 0x20; // TI16750: 64-byte FIFO enable
const IER_UUE = 0x40; // XScale: UART unit enable
const IIR_FIFO_BITS_SHIFT = 6; // IIR bits 7:6 = 11 when FIFOs work
const IIR_64_BYTE_FIFO = 0x20; // TI16750: IIR bit 5
const MCR_LOOP_PROBE = MCR_LOOP | 0x0a; // LOOP + OUT2 + RTS: MSR must read DCD + CTS
const MSR_LOOP_PROBE_EXPECTED = 0x90;
const FIFO_PROBE_BYTES = 256;
const FIFO_SIZE_16550A_BYTES = 16;

/**
 * Probes the UART at `basePort` with Linux's autoconfig sequence and says
 * what it is: `"none"` when nothing answers (an empty ISA bus reads all
 * ones) or the loopback test fails, `"8250"` or `"16450"` (no FIFO; told
 * apart by the scratch register), `"16550"` (FIFO bits say 10, a broken
 * FIFO), or `"16550A"` when it passes every check: IIR bits 7:6 = 11, no
 * EFR at LCR 0x80 or 0xBF, IIR bit 4 not following MCR.LOOP, IIR bit 5 not
 * set by FCR = 0x21, IER bit 6 not sticking, and a 16-byte FIFO.
 *
 * A FIFO UART that fails one of the 16550A checks (a 16650, 16750, XScale or
 * a FIFO of another size) is reported as `"16550"`, the type Linux drives
 * without trusting the FIFO, so a caller stays on the safe side. IIR bits
 * 7:6 = 01 (Linux's "unknown") is reported as `"none"`.
 *
 * The CPU's interrupt flag is cleared during the probe and restored after
 * it, and the UART's IER is 0 except for the IER test itself. The
 * registers it touches are restored: LCR, divisor, MCR, IER and SCR; FCR is
 * write-only, so the FIFOs are left cleared, enabled if IIR showed them on
 * at the start (trigger level 1) and disabled otherwise. The FIFO size probe
 * sends 256 bytes through loopback and reads back what arrived at once; a
 * transmitter paced by a clock that does not run during the probe counts
 * fewer and so is reported as `"16550"`.
 *
 * @param cpu The CPU whose port I/O reaches the UART.
 * @param basePort The UART's first port, e.g. 0x3F8 for COM1.
 * @returns The UART type; never throws for an absent or odd device.
 * @example
 * ```ts ignore
 * const type = identifyUart(cpu, 0x3f8); // "16550A" on the simulated PC
 * ```
 */
export function identifyUart(cpu: CpuContext, basePort: number): UartType {
  // As Linux (spin_lock_irqsave): the IER probe can raise the UART's IRQ, and
  // the kernel's handler must not run in the middle of the probe.
  const wereInterruptsEnabled = cpu.interruptsEnabled;
  cpu.cli();
  try {
    return probe(new UartPorts(cpu, basePort));
  } finally {
    if (wereInterruptsEnabled) cpu.sti();
  }
}

/** The autoconfig sequence proper; see {@linkcode identifyUart}. */
function probe(port: UartPorts): UartType {
  // Linux assumes DLAB is clear; make sure offsets 0 and 1 are RBR/IER.
  const savedLcr = port.read(LCR);
  port.write(LCR, savedLcr & ~LCR_DLAB);

  // Step 1: IER exists (bits 3:0 read back 0 and then 0x0F).
  const savedIer = port.read(IER);
  port.write(IER, 0);
  const ierCleared = port.read(IER) & 0x0f;
  port.write(IER, 0x0f);
  const ierSet = port.read(IER) & 0x0f;
  port.write(IER, 0);
  if (ierCleared !== 0 || ierSet !== 0x0f) {
    port.write(IER, savedIer);
    port.write(LCR, savedLcr);
    return "none";
  }

  // Step 2: loopback wires RTS to CTS and OUT2 to DCD.
  const savedMcr = port.read(MCR);
  const savedScr = port.read(SCR);
  const wereFifosOn = (port.read(IIR) >> IIR_FIFO_BITS_SHIFT) === 3;
  port.write(MCR, MCR_LOOP_PROBE);
  const msr = port.read(MSR) & 0xf0;
  port.write(MCR, savedMcr);
  let type: UartType = "none";
  if (msr === MSR_LOOP_PROBE_EXPECTED) {
    // Step 3: clear a possible EFR, then see what the FIFO bits say.
    port.write(LCR, LCR_CONF_MODE_B);
    port.write(EFR, 0);
    port.write(LCR, 0);
    port.write(FCR, FCR_ENABLE);
    switch (port.read(IIR) >> IIR_FIFO_BITS_SHIFT) {
      case 0:
        type = hasScratchRegister(port) ? "16450" : "8250";
        break;
      case 2:
        type = "16550";
        break;
      case 3:
        type = isPlain16550A(port) ? "16550A" : "16550";
        break;
      default:
        type = "none";
    }
  }

  // Put back what the probe changed; clear the FIFOs and stale status it left.
  port.write(LCR, 0);
  port.write(MCR, savedMcr);
  port.write(FCR, FCR_ENABLE | FCR_CLEAR_RX | FCR_CLEAR_TX);
  port.write(FCR, wereFifosOn ? FCR_ENABLE : 0);
  port.read(LSR);
  port.read(RBR);
  port.read(MSR);
  port.write(SCR, savedScr);
  port.write(IER, savedIer);
  port.write(LCR, savedLcr);
  return type;
}

/** Steps 4 to 6: the checks that tell a plain 16550A from its relatives. */
function isPlain16550A(port: UartPorts): boolean {
  // Step 4: offset 2 reads as EFR under LCR 0x80 or 0xBF on a 16650; a
  // 16550A shows its (non-zero) IIR there.
  port.write(LCR, LCR_CONF_MODE_A);
  const efrA = port.read(EFR);
  port.write(LCR, LCR_CONF_MODE_B);
  const efrB = port.read(EFR);
  port.write(LCR, 0);
  if (efrA === 0 || efrB === 0) return false;

  // Step 5a: a National SuperIO mirrors MCR.LOOP in EXCR1 bit 4 (bank 2).
  const mcr = port.read(MCR);
  port.write(LCR, LCR_NS_BANK_2);
  let excr1 = port.read(IIR);
  port.write(LCR, 0);
  if (((excr1 ^ mcr) & MCR_LOOP) === 0) {
    port.write(MCR, mcr ^ MCR_LOOP);
    port.write(LCR, LCR_NS_BANK_2);
    excr1 = port.read(IIR);
    port.write(LCR, 0);
    port.write(MCR, mcr);
    if (((excr1 ^ mcr) & MCR_LOOP) !== 0) return false;
  }

  // Step 5b: a TI16750 sets IIR bit 5 when FCR asks for its 64-byte FIFO.
  port.write(FCR, FCR_ENABLE | FCR_64_BYTE);
  const iirPlain = port.read(IIR);
  port.write(FCR, FCR_ENABLE);
  port.write(LCR, LCR_CONF_MODE_A);
  port.write(FCR, FCR_ENABLE | FCR_64_BYTE);
  const iirDlab = port.read(IIR);
  port.write(FCR, FCR_ENABLE);
  port.write(LCR, 0);
  if (((iirPlain | iirDlab) & IIR_64_BYTE_FIFO) !== 0) return false;

  // Step 5c: an XScale keeps IER bit 6 (UART unit enable).
  port.write(IER, IER_UUE);
  const ier = port.read(IER);
  port.write(IER, 0);
  if ((ier & IER_UUE) !== 0) return false;

  // Step 6: the FIFO holds 16 bytes.
  return fifoSizeBytes(port) === FIFO_SIZE_16550A_BYTES;
}

/** Linux `size_fifo()`: sends 256 bytes through loopback and counts what the RX FIFO kept. */
function fifoSizeBytes(port: UartPorts): number {
  const oldMcr = port.read(MCR);
  port.write(FCR, FCR_ENABLE | FCR_CLEAR_RX | FCR_CLEAR_TX);
  port.write(MCR, MCR_LOOP);
  port.write(LCR, LCR_DLAB);
  const oldDivisor = port.read(DLL) | (port.read(DLM) << 8);
  port.write(DLL, 1);
  port.write(DLM, 0);
  port.write(LCR, LCR_8N1);
  for (let i = 0; i < FIFO_PROBE_BYTES; i++) port.write(THR, i);
  let count = 0;
  while (count < FIFO_PROBE_BYTES && (port.read(LSR) & LSR_DR) !== 0) {
    port.read(RBR);
    count++;
  }
  port.write(FCR, FCR_ENABLE | FCR_CLEAR_RX | FCR_CLEAR_TX);
  port.write(MCR, oldMcr);
  port.write(LCR, LCR_DLAB);
  port.write(DLL, oldDivisor & 0xff);
  port.write(DLM, oldDivisor >>> 8);
  port.write(LCR, 0);
  return count;
}

/** Linux `autoconfig_8250()`: a 16450 has a scratch register, an 8250 does not. */
function hasScratchRegister(port: UartPorts): boolean {
  port.write(SCR, 0xa5);
  const first = port.read(SCR);
  port.write(SCR, 0x5a);
  const second = port.read(SCR);
  return first === 0xa5 && second === 0x5a;
}

/** Register access relative to a base port. */
class UartPorts {
  readonly #cpu: CpuContext;
  readonly #basePort: number;

  constructor(cpu: CpuContext, basePort: number) {
    this.#cpu = cpu;
    this.#basePort = basePort;
  }

  read(offset: number): number {
    return this.#cpu.inb(this.#basePort + offset);
  }

  write(offset: number, value: number): void {
    this.#cpu.outb(this.#basePort + offset, value);
  }
}
