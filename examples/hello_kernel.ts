/**
 * The smallest kernel that boots on kernelsim: it brings up COM1 through
 * the 16550A's registers, checks the multiboot2 magic, walks the boot
 * information for the memory map, prints it, and halts.
 *
 *     deno task boot -- --kernel examples/hello_kernel.ts
 *
 * @module
 */

import { type Hardware, hex, type KernelEntry, type PhysAddr } from "../sdk/mod.ts";

/** EAX from a multiboot2 loader (Multiboot2 specification, 3.3). */
const MULTIBOOT2_MAGIC = 0x36d76289;
/** Boot information tag types (Multiboot2 specification, 3.6): end, memory map. */
const TAG_END = 0;
const TAG_MEMORY_MAP = 6;
/** COM1's ports and the 16550A's registers at offsets from it (16550A datasheet). */
const COM1 = 0x3f8;
const [THR, IER, FCR, LCR, MCR, LSR] = [0, 1, 2, 3, 4, 5]; // DLAB=1: 0 and 1 are the divisor
const LCR_DLAB = 0x80; // divisor latch access
const LCR_8N1 = 0x03; // 8 data bits, no parity, 1 stop bit
const FCR_FIFO_ON_CLEARED = 0x07; // enable, clear RX and TX FIFOs
const MCR_DTR_RTS_OUT2 = 0x0b;
const LSR_THRE = 0x20; // the transmitter can take a byte
const DIVISOR_115200 = 1; // 1.8432 MHz / 16 / 115200
const TYPE_NAMES = ["?", "available", "reserved", "ACPI reclaimable", "ACPI NVS", "bad RAM"];

function serialInit(hw: Hardware): void {
  hw.cpu.outb(COM1 + IER, 0); // no interrupts: this kernel polls
  hw.cpu.outb(COM1 + LCR, LCR_DLAB);
  hw.cpu.outb(COM1 + 0, DIVISOR_115200); // divisor low byte
  hw.cpu.outb(COM1 + 1, 0); // divisor high byte
  hw.cpu.outb(COM1 + LCR, LCR_8N1);
  hw.cpu.outb(COM1 + FCR, FCR_FIFO_ON_CLEARED);
  hw.cpu.outb(COM1 + MCR, MCR_DTR_RTS_OUT2);
}

function print(hw: Hardware, line: string): void {
  for (const byte of new TextEncoder().encode(`${line}\n`)) {
    // Wait (a bounded number of polls) until the transmitter has room.
    for (let polls = 0; polls < 10_000 && (hw.cpu.inb(COM1 + LSR) & LSR_THRE) === 0; polls++);
    hw.cpu.outb(COM1 + THR, byte);
  }
}

const kmain: KernelEntry = (magic, mbiAddress, hw) => {
  const read32 = (pa: number) => hw.memory.read32(pa as PhysAddr);
  const read64 = (pa: number) => hw.memory.read64(pa as PhysAddr);
  serialInit(hw);
  print(hw, "hello: COM1 up, 115200 8N1");
  if (magic !== MULTIBOOT2_MAGIC) {
    print(hw, `hello: EAX is ${hex(magic)}, not the multiboot2 magic: halting`);
    return hw.halt("not booted by a multiboot2 loader");
  }
  const totalSize = read32(mbiAddress);
  print(hw, `hello: boot information at ${hex(mbiAddress)}, ${totalSize} bytes`);
  let availableBytes = 0;
  // Tags follow the 8-byte header, each padded to 8 bytes: type, size, then its fields.
  for (let tag = mbiAddress + 8; tag < mbiAddress + totalSize; tag += (read32(tag + 4) + 7) & ~7) {
    const type = read32(tag);
    if (type === TAG_END) break;
    if (type !== TAG_MEMORY_MAP) continue;
    const entrySize = read32(tag + 8); // then the entry version; entries start at +16
    for (let entry = tag + 16; entry < tag + read32(tag + 4); entry += entrySize) {
      const [base, length, kind] = [read64(entry), read64(entry + 8), read32(entry + 16)];
      print(hw, `hello: ${hex(base, 16)} ${hex(length, 10)} ${TYPE_NAMES[kind] ?? "reserved"}`);
      if (kind === 1) availableBytes += length;
    }
  }
  print(hw, `hello: ${availableBytes / 1024} KiB available; nothing else to do, halting`);
  hw.halt("hello kernel finished");
};

export default kmain;
