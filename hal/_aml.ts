/**
 * The few ACPI Machine Language encodings the firmware's DSDT needs (ACPI
 * specification, chapter "ACPI Machine Language (AML) Specification", and
 * "Resource Data Types for ACPI"; summarised in docs/acpi.md): scopes,
 * devices, named integers and EISA IDs, and resource templates with I/O
 * ports, IRQs and fixed memory ranges.
 *
 * @module
 */

const SCOPE_OP = 0x10;
const NAME_OP = 0x08;
const BUFFER_OP = 0x11;
const EXT_OP_PREFIX = 0x5b;
const DEVICE_OP = 0x82;
const ROOT_CHAR = 0x5c; // '\'
const ZERO_OP = 0x00;
const ONE_OP = 0x01;
const BYTE_PREFIX = 0x0a;
const WORD_PREFIX = 0x0b;
const DWORD_PREFIX = 0x0c;
const NAME_SEG_BYTES = 4;
// PkgLength: one byte holds up to 63; longer lengths use 1 to 3 more bytes.
const PKG_ONE_BYTE_MAX = 0x3f;
const PKG_EXTRA_BYTES_SHIFT = 6;
// Small resource items: tag byte = type << 3 | length.
const RESOURCE_IRQ_NO_FLAGS = (0x04 << 3) | 2;
const RESOURCE_IO = (0x08 << 3) | 7;
const RESOURCE_END = (0x0f << 3) | 1;
const IO_DECODE_16 = 0x01;
// Large resource items: tag byte with bit 7 set, then a 16-bit length.
const RESOURCE_MEMORY32_FIXED = 0x86;
const MEMORY32_FIXED_LENGTH = 9;
const MEMORY_READ_WRITE = 0x01;
const EISA_LETTER_BASE = 0x40;

/** A sequence of AML bytes. */
export type AmlBytes = readonly number[];

/** `Scope (path) { ... }` for a root path such as `\_SB_`. */
export function amlScope(rootPath: string, ...terms: AmlBytes[]): AmlBytes {
  return [SCOPE_OP, ...withPkgLength([ROOT_CHAR, ...nameSeg(rootPath), ...terms.flat()])];
}

/** `Device (NAME) { ... }`. */
export function amlDevice(name: string, ...terms: AmlBytes[]): AmlBytes {
  return [EXT_OP_PREFIX, DEVICE_OP, ...withPkgLength([...nameSeg(name), ...terms.flat()])];
}

/** `Name (NAME, value)`. */
export function amlName(name: string, value: AmlBytes): AmlBytes {
  return [NAME_OP, ...nameSeg(name), ...value];
}

/** An integer constant in its shortest encoding (Zero, One, Byte, Word or DWord). */
export function amlInteger(value: number): AmlBytes {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new RangeError(`AML integer ${value} is not a 32-bit unsigned value`);
  }
  if (value === 0) return [ZERO_OP];
  if (value === 1) return [ONE_OP];
  if (value <= 0xff) return [BYTE_PREFIX, value];
  if (value <= 0xffff) return [WORD_PREFIX, ...le(value, 2)];
  return [DWORD_PREFIX, ...le(value, 4)];
}

/** `EisaId ("PNP0501")`: three letters and four hex digits packed into a DWord. */
export function amlEisaId(id: string): AmlBytes {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new RangeError(`Invalid EISA ID "${id}"`);
  const letters = [0, 1, 2].map((i) => id.charCodeAt(i) - EISA_LETTER_BASE);
  const vendor = (letters[0] << 10) | (letters[1] << 5) | letters[2];
  const product = parseInt(id.slice(3), 16);
  // Stored big-endian byte by byte: vendor high, vendor low, product high, product low.
  return [DWORD_PREFIX, vendor >> 8, vendor & 0xff, product >> 8, product & 0xff];
}

/** `ResourceTemplate () { ... }`: a buffer of resource items and the end tag. */
export function amlResourceTemplate(...items: AmlBytes[]): AmlBytes {
  const data = [...items.flat(), RESOURCE_END, 0]; // checksum 0: "treat as correct"
  return [BUFFER_OP, ...withPkgLength([...amlInteger(data.length), ...data])];
}

/** `IO (Decode16, base, base, 1, length)`: a fixed run of I/O ports. */
export function amlIoPorts(base: number, lengthPorts: number): AmlBytes {
  return [RESOURCE_IO, IO_DECODE_16, ...le(base, 2), ...le(base, 2), 1, lengthPorts];
}

/** `IRQNoFlags () {irq}`: an edge-triggered, active-high ISA IRQ. */
export function amlIrq(irq: number): AmlBytes {
  return [RESOURCE_IRQ_NO_FLAGS, ...le(1 << irq, 2)];
}

/** `Memory32Fixed (ReadWrite, base, length)`. */
export function amlMemory32Fixed(base: number, lengthBytes: number): AmlBytes {
  return [
    RESOURCE_MEMORY32_FIXED,
    ...le(MEMORY32_FIXED_LENGTH, 2),
    MEMORY_READ_WRITE,
    ...le(base, 4),
    ...le(lengthBytes, 4),
  ];
}

/** A 4-character name segment, padded with `_`. */
function nameSeg(name: string): number[] {
  if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(name)) throw new RangeError(`Invalid AML name "${name}"`);
  return [...name.padEnd(NAME_SEG_BYTES, "_")].map((char) => char.charCodeAt(0));
}

/** `body` preceded by its PkgLength, which counts itself. */
function withPkgLength(body: number[]): number[] {
  for (let extra = 0; extra <= 3; extra++) {
    const total = body.length + 1 + extra;
    if (extra === 0 && total <= PKG_ONE_BYTE_MAX) return [total, ...body];
    if (extra > 0 && total < 2 ** (4 + 8 * extra)) {
      const lead = (extra << PKG_EXTRA_BYTES_SHIFT) | (total & 0x0f);
      const rest = [];
      for (let i = 0; i < extra; i++) rest.push((total >>> (4 + 8 * i)) & 0xff);
      return [lead, ...rest, ...body];
    }
  }
  throw new RangeError(`AML package of ${body.length} bytes is too long`);
}

function le(value: number, bytes: number): number[] {
  const out = [];
  for (let i = 0; i < bytes; i++) out.push(Math.floor(value / 2 ** (8 * i)) & 0xff);
  return out;
}
