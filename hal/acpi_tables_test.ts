import { assert, assertEquals, assertThrows } from "../testing/mod.ts";
import type { PhysAddr } from "./address.ts";
import { amlEisaId, amlInteger, amlName, amlScope } from "./_aml.ts";
import {
  ACPI_SDT_HEADER_BYTES,
  type AcpiPlatform,
  buildAcpiTables,
  FADT_HW_REDUCED_ACPI,
  RSDP_V1_PART_BYTES,
  RSDP_V2_SIZE_BYTES,
} from "./acpi_tables.ts";

const PLATFORM: AcpiPlatform = {
  localApicAddress: 0xfee00000,
  processors: [{ processorUid: 0, apicId: 0 }, { processorUid: 1, apicId: 2 }],
  ioApics: [{ id: 4, address: 0xfec00000, gsiBase: 0 }],
  overrides: [{ sourceIrq: 0, gsi: 2, flags: 0 }, { sourceIrq: 9, gsi: 9, flags: 0xd }],
  nmiLint: 1,
  hpet: { address: 0xfed00000, eventTimerBlockId: 0x80862201 },
  hpetSizeBytes: 0x400,
  com1: { port: 0x3f8, irq: 4 },
};
const BASE = 0x7fe0000 as PhysAddr;

function sum(bytes: Uint8Array): number {
  return bytes.reduce((total, byte) => (total + byte) & 0xff, 0);
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

Deno.test("buildAcpiTables() lays out RSDP, XSDT, RSDT, FACP, DSDT, APIC and HPET, each summing to 0", () => {
  const acpi = buildAcpiTables(PLATFORM, BASE);
  assertEquals(acpi.tables.map((t) => t.signature), [
    "RSDP",
    "XSDT",
    "RSDT",
    "FACP",
    "DSDT",
    "APIC",
    "HPET",
  ]);
  for (const table of acpi.tables) {
    assertEquals(table.address % 16, 0, `${table.signature} aligned`);
    assertEquals(
      acpi.image.subarray(table.address - BASE, table.address - BASE + table.bytes.length),
      table.bytes,
      `${table.signature} is in the image at its address`,
    );
    assertEquals(sum(table.bytes), 0, `${table.signature} checksum`);
    if (table.signature !== "RSDP") {
      assertEquals(new TextDecoder().decode(table.bytes.subarray(0, 4)), table.signature);
      assertEquals(view(table.bytes).getUint32(4, true), table.bytes.length, "length field");
    }
  }
  const rsdp = acpi.rsdp;
  assertEquals(rsdp.length, RSDP_V2_SIZE_BYTES);
  assertEquals(sum(rsdp.subarray(0, RSDP_V1_PART_BYTES)), 0, "the ACPI 1.0 part checks on its own");
  assertEquals(rsdp[15], 2, "revision 2");
});

Deno.test("buildAcpiTables() points RSDP -> XSDT and RSDT -> FACP, APIC, HPET, and FACP -> DSDT", () => {
  const acpi = buildAcpiTables(PLATFORM, BASE);
  const at = Object.fromEntries(acpi.tables.map((t) => [t.signature, t]));
  const rsdp = view(acpi.rsdp);
  assertEquals(rsdp.getUint32(16, true), at.RSDT.address);
  assertEquals(rsdp.getUint32(24, true), at.XSDT.address);
  const listed = [at.FACP.address, at.APIC.address, at.HPET.address];
  const xsdt = view(at.XSDT.bytes);
  const rsdt = view(at.RSDT.bytes);
  assertEquals([0, 1, 2].map((i) => xsdt.getUint32(ACPI_SDT_HEADER_BYTES + 8 * i, true)), listed);
  assertEquals([0, 1, 2].map((i) => rsdt.getUint32(ACPI_SDT_HEADER_BYTES + 4 * i, true)), listed);
  const fadt = view(at.FACP.bytes);
  assertEquals([fadt.getUint32(40, true), fadt.getUint32(140, true)], [
    at.DSDT.address,
    at.DSDT.address,
  ]);
  assertEquals(fadt.getUint32(112, true) & FADT_HW_REDUCED_ACPI, FADT_HW_REDUCED_ACPI);
  assertEquals(at.FACP.bytes.length, 276, "ACPI 6 FADT");
});

Deno.test("buildAcpiTables() writes the MADT's CPUs, I/O APIC, overrides and NMI, and the HPET's block", () => {
  const acpi = buildAcpiTables(PLATFORM, BASE);
  const madt = acpi.tables.find((t) => t.signature === "APIC")!.bytes;
  const m = view(madt);
  assertEquals([m.getUint32(36, true), m.getUint32(40, true)], [0xfee00000, 1]);
  const entries: number[][] = [];
  for (let at = 44; at < madt.length; at += madt[at + 1]) {
    entries.push([...madt.subarray(at, at + madt[at + 1])]);
  }
  assertEquals(entries, [
    [0, 8, 0, 0, 1, 0, 0, 0],
    [0, 8, 1, 2, 1, 0, 0, 0],
    [1, 12, 4, 0, 0x00, 0x00, 0xc0, 0xfe, 0, 0, 0, 0],
    [2, 10, 0, 0, 2, 0, 0, 0, 0, 0],
    [2, 10, 0, 9, 9, 0, 0, 0, 0xd, 0],
    [4, 6, 0xff, 0, 0, 1],
  ]);
  const hpet = view(acpi.tables.find((t) => t.signature === "HPET")!.bytes);
  assertEquals(hpet.getUint32(36, true), 0x80862201);
  assertEquals([hpet.getUint8(40), hpet.getUint32(44, true)], [0, 0xfed00000], "system memory");
});

Deno.test("buildAcpiTables() refuses a misaligned base and tables that would cross 4 GiB", () => {
  assertThrows(
    () => buildAcpiTables(PLATFORM, (BASE + 8) as PhysAddr),
    RangeError,
    "16-byte aligned",
  );
  assertThrows(() => buildAcpiTables(PLATFORM, (2 ** 32 - 64) as PhysAddr), RangeError, "4 GiB");
});

Deno.test("The AML encoder packs EISA IDs, picks the shortest integers and grows PkgLength past 63 bytes", () => {
  assertEquals(amlEisaId("PNP0501"), [0x0c, 0x41, 0xd0, 0x05, 0x01]);
  assertEquals(amlEisaId("PNP0103"), [0x0c, 0x41, 0xd0, 0x01, 0x03]);
  assertEquals([amlInteger(0), amlInteger(1), amlInteger(0x80), amlInteger(0x1234)], [
    [0x00],
    [0x01],
    [0x0a, 0x80],
    [0x0b, 0x34, 0x12],
  ]);
  assertEquals(amlInteger(0xfed00000), [0x0c, 0x00, 0x00, 0xd0, 0xfe]);
  const short = amlScope("_SB_");
  assertEquals(short, [0x10, 0x06, 0x5c, 0x5f, 0x53, 0x42, 0x5f]);
  const names = Array.from({ length: 10 }, (_, i) => amlName(`N${i}`, amlInteger(0x1234)));
  const long = amlScope("_SB_", ...names); // 5 + 10 * 8 body bytes: a 2-byte PkgLength
  const total = long.length - 1;
  assertEquals([long[1] >> 6, (long[1] & 0x0f) | (long[2] << 4)], [1, total]);
  assertThrows(() => amlEisaId("pnp0501"), RangeError);
  assertThrows(() => amlInteger(-1), RangeError);
  assert(total > 63);
});
