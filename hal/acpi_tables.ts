/**
 * The firmware's ACPI tables (ACPI specification 6.3; the layouts used are
 * in docs/acpi.md): an RSDP (revision 2) pointing at an XSDT and an RSDT,
 * which list the FADT ("FACP"), the MADT ("APIC") and the HPET table; the
 * FADT points at the DSDT, whose AML describes COM1 and the HPET.
 *
 * {@linkcode buildAcpiTables} lays them out from a base address (16-byte
 * aligned each, RSDP first) and fills in every checksum, so each table's
 * bytes sum to 0 mod 256 (and the RSDP's first 20 bytes too). The FADT
 * declares a hardware-reduced ACPI platform: this PC has none of the ACPI
 * fixed hardware (PM timer, PM1 event and control blocks, SCI), so it
 * describes none, and the FACS becomes optional.
 *
 * @module
 */

import { alignUp, hex, type PhysAddr } from "./address.ts";
import {
  amlDevice,
  amlEisaId,
  amlInteger,
  amlIoPorts,
  amlIrq,
  amlMemory32Fixed,
  amlName,
  amlResourceTemplate,
  amlScope,
} from "./_aml.ts";

/** Bytes of a revision-2 RSDP. */
export const RSDP_V2_SIZE_BYTES = 36;
/** Bytes of the RSDP part that revision 0 defines (and its first checksum covers). */
export const RSDP_V1_PART_BYTES = 20;
/** Bytes of the header every system description table starts with. */
export const ACPI_SDT_HEADER_BYTES = 36;
/** The OEM ID in every table the simulated firmware writes. */
export const ACPI_FIRMWARE_OEM_ID = "KSIM  ";
/** Alignment of each table in the ACPI area. */
export const ACPI_TABLE_ALIGN_BYTES = 16;
/** The RSDP's signature. */
export const RSDP_SIGNATURE = "RSD PTR ";
/** FADT Flags bit 20: HW_REDUCED_ACPI. */
export const FADT_HW_REDUCED_ACPI = 1 << 20;
/** FADT IA-PC boot architecture bit 0: legacy (ISA) devices present. */
const FADT_BOOT_LEGACY_DEVICES = 1 << 0;
/** FADT IA-PC boot architecture bit 2: VGA not present. */
const FADT_BOOT_VGA_NOT_PRESENT = 1 << 2;
/** FADT IA-PC boot architecture bit 3: MSI not supported. */
const FADT_BOOT_MSI_NOT_SUPPORTED = 1 << 3;
/** FADT IA-PC boot architecture bit 5: CMOS RTC not present. */
const FADT_BOOT_CMOS_RTC_NOT_PRESENT = 1 << 5;
/** MADT flags bit 0: PCAT_COMPAT, a dual 8259 is installed. */
const MADT_PCAT_COMPAT = 1 << 0;
/** MADT structure type 0: processor local APIC. */
const MADT_TYPE_LOCAL_APIC = 0;
/** MADT structure type 1: I/O APIC. */
const MADT_TYPE_IO_APIC = 1;
/** MADT structure type 2: interrupt source override. */
const MADT_TYPE_INTERRUPT_OVERRIDE = 2;
/** MADT structure type 4: local APIC NMI. */
const MADT_TYPE_LOCAL_APIC_NMI = 4;
/** MADT local APIC flags bit 0: enabled. */
const MADT_LOCAL_APIC_ENABLED = 1 << 0;

const RSDP_REVISION = 2;
const XSDT_REVISION = 1;
const RSDT_REVISION = 1;
const FADT_REVISION = 6;
const FADT_MINOR_REVISION = 3;
const FADT_SIZE_BYTES = 276;
const MADT_REVISION = 5;
const HPET_TABLE_REVISION = 1;
const HPET_TABLE_SIZE_BYTES = 56;
const DSDT_REVISION = 2; // 64-bit AML integers
const CREATOR_ID = "KSIM";
const OEM_REVISION = 1;
const CREATOR_REVISION = 1;
const GAS_SYSTEM_MEMORY = 0;
const GAS_BIT_WIDTH_64 = 64;
const GAS_ACCESS_QWORD = 4;
const PM_PROFILE_DESKTOP = 1;
const MADT_LOCAL_APIC_BYTES = 8;
const MADT_IO_APIC_BYTES = 12;
const MADT_OVERRIDE_BYTES = 10;
const MADT_NMI_BYTES = 6;
const MADT_FIXED_BYTES = 44;
const COM1_PORT_COUNT = 8;

/** One processor of the MADT. */
export interface AcpiProcessor {
  /** ACPI processor UID. */
  readonly processorUid: number;
  /** Its local APIC ID. */
  readonly apicId: number;
}

/** One I/O APIC of the MADT. */
export interface AcpiIoApic {
  /** I/O APIC ID. */
  readonly id: number;
  /** Physical address of its registers. */
  readonly address: number;
  /** The first global system interrupt (GSI) its pin 0 serves. */
  readonly gsiBase: number;
}

/** An interrupt source override: ISA IRQ `sourceIrq` arrives on GSI `gsi`. */
export interface AcpiInterruptOverride {
  /** The ISA IRQ. */
  readonly sourceIrq: number;
  /** The GSI it is wired to. */
  readonly gsi: number;
  /** MPS INTI flags: polarity in bits 1:0, trigger mode in bits 3:2 (0: bus default). */
  readonly flags: number;
}

/** What the firmware describes: the machine's interrupt hardware, timers and legacy devices. */
export interface AcpiPlatform {
  /** The local APIC's physical address. */
  readonly localApicAddress: number;
  /** The processors. */
  readonly processors: readonly AcpiProcessor[];
  /** The I/O APICs. */
  readonly ioApics: readonly AcpiIoApic[];
  /** The interrupt source overrides. */
  readonly overrides: readonly AcpiInterruptOverride[];
  /** Which LINT input carries NMI on every processor (MADT local APIC NMI, UID 0xFF). */
  readonly nmiLint: number;
  /** The HPET: its registers and the low half of its capabilities (the event timer block ID). */
  readonly hpet: { readonly address: number; readonly eventTimerBlockId: number };
  /** COM1, for the DSDT: its first port and IRQ. */
  readonly com1: { readonly port: number; readonly irq: number };
  /** Bytes of HPET register space, for the DSDT. */
  readonly hpetSizeBytes: number;
}

/** One table as laid out in memory. */
export interface AcpiTableImage {
  /** Its signature (`RSDP` for the RSDP, whose own is `RSD PTR `). */
  readonly signature: string;
  /** Its physical address. */
  readonly address: PhysAddr;
  /** Its bytes. */
  readonly bytes: Uint8Array;
}

/** The tables {@linkcode buildAcpiTables} laid out. */
export interface FirmwareAcpiTables {
  /** The RSDP (36 bytes, revision 2), as the boot loader hands it over. */
  readonly rsdp: Uint8Array;
  /** Every table, RSDP first, in address order. */
  readonly tables: readonly AcpiTableImage[];
  /** Where the image starts. */
  readonly baseAddress: PhysAddr;
  /** All the tables with their padding, to copy to `baseAddress`. */
  readonly image: Uint8Array;
}

/**
 * Builds the firmware's ACPI tables for `platform`, laid out from
 * `baseAddress`.
 *
 * @param platform What to describe.
 * @param baseAddress Where the image will be copied: 16-byte aligned, and it
 *   must end below 4 GiB (the RSDT holds 32-bit addresses).
 * @returns The tables, their addresses and the image.
 * @throws {RangeError} For a misaligned base or an image crossing 4 GiB.
 * @example
 * ```ts ignore
 * const acpi = buildAcpiTables(platform, 0x7fe0000 as PhysAddr);
 * memory.writeBytes(acpi.baseAddress, acpi.image);
 * ```
 */
export function buildAcpiTables(platform: AcpiPlatform, baseAddress: PhysAddr): FirmwareAcpiTables {
  if (!Number.isSafeInteger(baseAddress) || baseAddress % ACPI_TABLE_ALIGN_BYTES !== 0) {
    throw new RangeError(`ACPI tables need a 16-byte aligned base, not ${hex(baseAddress)}`);
  }
  const dsdt = buildDsdt(platform);
  const madt = buildMadt(platform);
  const hpet = buildHpetTable(platform);
  // Addresses: RSDP, XSDT, RSDT, FACP, DSDT, APIC, HPET, each aligned.
  const sizes = [RSDP_V2_SIZE_BYTES, xsdtSize(3), rsdtSize(3), FADT_SIZE_BYTES, dsdt.length];
  sizes.push(madt.length, hpet.length);
  const addresses: number[] = [];
  let cursor = baseAddress as number;
  for (const size of sizes) {
    addresses.push(cursor);
    cursor = alignUp(cursor + size, ACPI_TABLE_ALIGN_BYTES);
  }
  if (cursor > 2 ** 32) {
    throw new RangeError(`ACPI tables at ${hex(baseAddress)} would cross 4 GiB`);
  }
  const [rsdpAt, xsdtAt, rsdtAt, fadtAt, dsdtAt, madtAt, hpetAt] = addresses;
  const listed = [fadtAt, madtAt, hpetAt];
  const tables: AcpiTableImage[] = [
    { signature: "RSDP", address: rsdpAt as PhysAddr, bytes: buildRsdp(xsdtAt, rsdtAt) },
    { signature: "XSDT", address: xsdtAt as PhysAddr, bytes: buildXsdt(listed) },
    { signature: "RSDT", address: rsdtAt as PhysAddr, bytes: buildRsdt(listed) },
    { signature: "FACP", address: fadtAt as PhysAddr, bytes: buildFadt(dsdtAt) },
    { signature: "DSDT", address: dsdtAt as PhysAddr, bytes: dsdt },
    { signature: "APIC", address: madtAt as PhysAddr, bytes: madt },
    { signature: "HPET", address: hpetAt as PhysAddr, bytes: hpet },
  ];
  const image = new Uint8Array(cursor - baseAddress);
  for (const table of tables) image.set(table.bytes, table.address - baseAddress);
  return { rsdp: tables[0].bytes, tables, baseAddress, image };
}

/** The byte that makes `bytes` (with that byte still 0) sum to 0 mod 256. */
export function acpiChecksumByte(bytes: Uint8Array): number {
  let sum = 0;
  for (const byte of bytes) sum = (sum + byte) & 0xff;
  return (256 - sum) & 0xff;
}

function xsdtSize(entries: number): number {
  return ACPI_SDT_HEADER_BYTES + 8 * entries;
}

function rsdtSize(entries: number): number {
  return ACPI_SDT_HEADER_BYTES + 4 * entries;
}

/** Little-endian writer over a fixed-size table. */
class TableWriter {
  readonly bytes: Uint8Array;
  readonly #view: DataView;

  constructor(sizeBytes: number) {
    this.bytes = new Uint8Array(sizeBytes);
    this.#view = new DataView(this.bytes.buffer);
  }

  u8(at: number, value: number): void {
    this.#view.setUint8(at, value);
  }

  u16(at: number, value: number): void {
    this.#view.setUint16(at, value, true);
  }

  u32(at: number, value: number): void {
    this.#view.setUint32(at, value, true);
  }

  u64(at: number, value: number): void {
    this.#view.setUint32(at, value % 2 ** 32, true);
    this.#view.setUint32(at + 4, Math.floor(value / 2 ** 32), true);
  }

  ascii(at: number, text: string): void {
    for (let i = 0; i < text.length; i++) this.bytes[at + i] = text.charCodeAt(i);
  }

  /** A generic address structure (12 bytes) for system memory. */
  gasMemory(at: number, address: number): void {
    this.u8(at, GAS_SYSTEM_MEMORY);
    this.u8(at + 1, GAS_BIT_WIDTH_64);
    this.u8(at + 2, 0); // bit offset
    this.u8(at + 3, GAS_ACCESS_QWORD);
    this.u64(at + 4, address);
  }

  /** The 36-byte header with its checksum, once the body is written. */
  header(signature: string, revision: number, oemTableId: string): Uint8Array {
    this.ascii(0, signature);
    this.u32(4, this.bytes.length);
    this.u8(8, revision);
    this.ascii(10, ACPI_FIRMWARE_OEM_ID);
    this.ascii(16, oemTableId.padEnd(8, " "));
    this.u32(24, OEM_REVISION);
    this.ascii(28, CREATOR_ID);
    this.u32(32, CREATOR_REVISION);
    this.u8(9, 0);
    this.u8(9, acpiChecksumByte(this.bytes));
    return this.bytes;
  }
}

function buildRsdp(xsdtAddress: number, rsdtAddress: number): Uint8Array {
  const w = new TableWriter(RSDP_V2_SIZE_BYTES);
  w.ascii(0, RSDP_SIGNATURE);
  w.ascii(9, ACPI_FIRMWARE_OEM_ID);
  w.u8(15, RSDP_REVISION);
  w.u32(16, rsdtAddress);
  w.u32(20, RSDP_V2_SIZE_BYTES);
  w.u64(24, xsdtAddress);
  w.u8(8, acpiChecksumByte(w.bytes.subarray(0, RSDP_V1_PART_BYTES)));
  w.u8(32, acpiChecksumByte(w.bytes));
  return w.bytes;
}

function buildXsdt(entries: readonly number[]): Uint8Array {
  const w = new TableWriter(xsdtSize(entries.length));
  entries.forEach((address, i) => w.u64(ACPI_SDT_HEADER_BYTES + 8 * i, address));
  return w.header("XSDT", XSDT_REVISION, "KSIMXSDT");
}

function buildRsdt(entries: readonly number[]): Uint8Array {
  const w = new TableWriter(rsdtSize(entries.length));
  entries.forEach((address, i) => w.u32(ACPI_SDT_HEADER_BYTES + 4 * i, address));
  return w.header("RSDT", RSDT_REVISION, "KSIMRSDT");
}

/** The FADT of a hardware-reduced platform: the DSDT, flags and boot architecture. */
function buildFadt(dsdtAddress: number): Uint8Array {
  const w = new TableWriter(FADT_SIZE_BYTES);
  w.u32(40, dsdtAddress); // DSDT
  w.u8(45, PM_PROFILE_DESKTOP); // Preferred_PM_Profile
  w.u16(
    109,
    FADT_BOOT_LEGACY_DEVICES | FADT_BOOT_VGA_NOT_PRESENT | FADT_BOOT_MSI_NOT_SUPPORTED |
      FADT_BOOT_CMOS_RTC_NOT_PRESENT,
  ); // IAPC_BOOT_ARCH
  w.u32(112, FADT_HW_REDUCED_ACPI); // Flags
  w.u8(131, FADT_MINOR_REVISION); // FADT Minor Version
  w.u64(140, dsdtAddress); // X_DSDT
  return w.header("FACP", FADT_REVISION, "KSIMFACP");
}

function buildDsdt(platform: AcpiPlatform): Uint8Array {
  const aml = amlScope(
    "_SB_",
    amlDevice(
      "COM1",
      amlName("_HID", amlEisaId("PNP0501")),
      amlName("_UID", amlInteger(1)),
      amlName(
        "_CRS",
        amlResourceTemplate(
          amlIoPorts(platform.com1.port, COM1_PORT_COUNT),
          amlIrq(platform.com1.irq),
        ),
      ),
    ),
    amlDevice(
      "HPET",
      amlName("_HID", amlEisaId("PNP0103")),
      amlName("_UID", amlInteger(0)),
      amlName(
        "_CRS",
        amlResourceTemplate(amlMemory32Fixed(platform.hpet.address, platform.hpetSizeBytes)),
      ),
    ),
  );
  const w = new TableWriter(ACPI_SDT_HEADER_BYTES + aml.length);
  w.bytes.set(aml, ACPI_SDT_HEADER_BYTES);
  return w.header("DSDT", DSDT_REVISION, "KSIMDSDT");
}

function buildMadt(platform: AcpiPlatform): Uint8Array {
  const size = MADT_FIXED_BYTES + MADT_LOCAL_APIC_BYTES * platform.processors.length +
    MADT_IO_APIC_BYTES * platform.ioApics.length +
    MADT_OVERRIDE_BYTES * platform.overrides.length + MADT_NMI_BYTES;
  const w = new TableWriter(size);
  w.u32(36, platform.localApicAddress);
  w.u32(40, MADT_PCAT_COMPAT);
  let at = MADT_FIXED_BYTES;
  for (const cpu of platform.processors) {
    w.u8(at, MADT_TYPE_LOCAL_APIC);
    w.u8(at + 1, MADT_LOCAL_APIC_BYTES);
    w.u8(at + 2, cpu.processorUid);
    w.u8(at + 3, cpu.apicId);
    w.u32(at + 4, MADT_LOCAL_APIC_ENABLED);
    at += MADT_LOCAL_APIC_BYTES;
  }
  for (const ioApic of platform.ioApics) {
    w.u8(at, MADT_TYPE_IO_APIC);
    w.u8(at + 1, MADT_IO_APIC_BYTES);
    w.u8(at + 2, ioApic.id);
    w.u32(at + 4, ioApic.address);
    w.u32(at + 8, ioApic.gsiBase);
    at += MADT_IO_APIC_BYTES;
  }
  for (const override of platform.overrides) {
    w.u8(at, MADT_TYPE_INTERRUPT_OVERRIDE);
    w.u8(at + 1, MADT_OVERRIDE_BYTES);
    w.u8(at + 2, 0); // bus: ISA
    w.u8(at + 3, override.sourceIrq);
    w.u32(at + 4, override.gsi);
    w.u16(at + 8, override.flags);
    at += MADT_OVERRIDE_BYTES;
  }
  w.u8(at, MADT_TYPE_LOCAL_APIC_NMI);
  w.u8(at + 1, MADT_NMI_BYTES);
  w.u8(at + 2, 0xff); // every processor
  w.u16(at + 3, 0); // flags: bus defaults
  w.u8(at + 5, platform.nmiLint);
  return w.header("APIC", MADT_REVISION, "KSIMAPIC");
}

function buildHpetTable(platform: AcpiPlatform): Uint8Array {
  const w = new TableWriter(HPET_TABLE_SIZE_BYTES);
  w.u32(36, platform.hpet.eventTimerBlockId);
  w.gasMemory(40, platform.hpet.address);
  w.u8(52, 0); // HPET number
  w.u16(53, 0); // minimum clock tick in periodic mode: no constraint
  w.u8(55, 0); // page protection: none given
  return w.header("HPET", HPET_TABLE_REVISION, "KSIMHPET");
}
