import { createPc, installAcpiTables } from "../../devices/mod.ts";
import {
  type FirmwareAcpiTables,
  pcMemoryMap,
  type PhysAddr,
  PhysicalMemory,
  ramRangesFor,
  VirtualClock,
} from "../../hal/mod.ts";
import { assert, assertEquals, assertThrows, Xorshift32 } from "../../testing/mod.ts";
import { AcpiError } from "./acpi_error.ts";
import { type AcpiTables, parseAcpiTables, type RsdpCandidate } from "./acpi_tables.ts";

/** RAM with the PC firmware's ACPI tables in it, and helpers to damage them. */
function firmware() {
  const memoryMap = pcMemoryMap(16 * 2 ** 20);
  const memory = new PhysicalMemory(ramRangesFor(memoryMap));
  const pc = createPc(memory, new VirtualClock(), { serialSink: () => {} });
  const acpi = installAcpiTables(pc, memory, memoryMap) as FirmwareAcpiTables;
  const table = (signature: string) => acpi.tables.find((t) => t.signature === signature)!;
  /** Recomputes the checksum (byte 9) of the table at `address`, as a forger would. */
  const fixChecksum = (address: number) => {
    const length = memory.read32((address + 4) as PhysAddr);
    // A forged length the parser refuses anyway (beyond 1 MiB or RAM) needs no checksum.
    if (length > 2 ** 20 || !memory.isRam(address, length)) return;
    memory.write8((address + 9) as PhysAddr, 0);
    let sum = 0;
    for (let i = 0; i < length; i++) sum += memory.u8[address + i];
    memory.write8((address + 9) as PhysAddr, (256 - (sum & 0xff)) & 0xff);
  };
  const restore = () => memory.writeBytes(acpi.baseAddress, acpi.image);
  const v2 = (): RsdpCandidate => ({
    bytes: acpi.rsdp.slice(),
    source: "MBI tag 15",
    kind: "acpi2",
  });
  const parse = (candidates: RsdpCandidate[] = [v2()]) => parseAcpiTables(memory, candidates);
  return { memory, acpi, table, fixChecksum, restore, v2, parse };
}

function withChecksums(rsdp: Uint8Array): Uint8Array {
  rsdp[8] = 0;
  rsdp[8] = (256 - (rsdp.subarray(0, 20).reduce((a, b) => a + b, 0) & 0xff)) & 0xff;
  rsdp[32] = 0;
  rsdp[32] = (256 - (rsdp.reduce((a, b) => a + b, 0) & 0xff)) & 0xff;
  return rsdp;
}

Deno.test("parseAcpiTables() follows RSDP -> XSDT -> FACP/DSDT, APIC and HPET and decodes them", () => {
  const { acpi, table, parse } = firmware();
  const parsed = parse();
  assertEquals(parsed.rsdp.revision, 2);
  assertEquals(parsed.root.signature, "XSDT");
  assertEquals(parsed.tables.map((t) => t.signature), ["XSDT", "FACP", "APIC", "HPET", "DSDT"]);
  assertEquals(parsed.tables.map((t) => t.address), [
    table("XSDT").address,
    table("FACP").address,
    table("APIC").address,
    table("HPET").address,
    table("DSDT").address,
  ]);
  assertEquals(parsed.madt, {
    localApicAddress: 0xfee00000,
    isPcAtCompatible: true,
    processors: [{ processorUid: 0, apicId: 0, isEnabled: true, isOnlineCapable: false }],
    ioApics: [{ id: 1, address: 0xfec00000, gsiBase: 0 }],
    overrides: [{ sourceIrq: 0, gsi: 2, polarity: "bus-default", trigger: "bus-default" }],
    nmis: [{ processorUid: 0xff, lint: 1, polarity: "bus-default", trigger: "bus-default" }],
    skippedTypes: [],
  });
  assertEquals(parsed.hpet?.address, 0xfed00000);
  assertEquals([parsed.hpet?.comparatorCount, parsed.hpet?.isCounter64Bit], [3, true]);
  assertEquals(parsed.fadt?.dsdtAddress, table("DSDT").address);
  assertEquals(parsed.fadt?.isHardwareReduced, true);
  assertEquals(parsed.warnings, []);
  assert(acpi.tables.length === 7);
});

Deno.test("parseAcpiTables() checks the RSDP: signature, both checksums, length, revision", () => {
  const { acpi, parse } = firmware();
  const cases: [string, (rsdp: Uint8Array) => Uint8Array, string][] = [
    ["short", (r) => r.slice(0, 19), "fewer than the 20 of an RSDP"],
    ["signature", (r) => withChecksums(Object.assign(r, { 0: 0x72 })), 'signature "rSD PTR "'],
    ["checksum", (r) => Object.assign(r, { 8: r[8] ^ 1 }), "checksum fails: its first 20 bytes"],
    ["extended checksum", (r) => Object.assign(r, { 32: r[32] ^ 1 }), "extended checksum fails"],
    ["length", (r) => withChecksums(Object.assign(r, { 20: 100 })), "length 100 is outside 36..36"],
    ["revision 2, 20 bytes", (r) => r.slice(0, 20), "revision 2 needs 36 bytes"],
  ];
  for (const [what, damage, message] of cases) {
    const error = assertThrows(
      () => parse([{ bytes: damage(acpi.rsdp.slice()), source: "MBI tag 15", kind: "acpi2" }]),
      AcpiError,
      message,
    );
    assertEquals(error.signature, "RSDP", what);
  }
});

Deno.test("parseAcpiTables() falls back from a bad tag 15 to tag 14, and from a bad XSDT to the RSDT", () => {
  const { acpi, table, memory, parse } = firmware();
  const bad = acpi.rsdp.slice();
  bad[32] ^= 1;
  const v1: RsdpCandidate = { bytes: acpi.rsdp.slice(0, 20), source: "MBI tag 14", kind: "acpi1" };
  const parsed = parse([{ bytes: bad, source: "MBI tag 15", kind: "acpi2" }, v1]);
  assertEquals([parsed.rsdp.source, parsed.root.signature], ["MBI tag 14", "RSDT"]);
  assertEquals(parsed.warnings.length, 1);
  memory.write8((table("XSDT").address + 40) as PhysAddr, 0x55); // breaks its checksum
  const fallback = parse();
  assertEquals(fallback.root.signature, "RSDT");
  assert(fallback.madt !== undefined, "the RSDT lists the same tables");
  assert(/XSDT at 0x[0-9a-f]+: checksum fails.*; using the RSDT/.test(fallback.warnings[0]));
});

Deno.test("parseAcpiTables() skips a root entry into nothing with a warning, refuses a bad used table", () => {
  const { table, memory, fixChecksum, restore, parse } = firmware();
  const xsdt = table("XSDT").address;
  memory.write32((xsdt + 36 + 8 * 2) as PhysAddr, 0xd0000000); // HPET entry -> a hole
  fixChecksum(xsdt);
  const parsed = parse();
  assertEquals(parsed.hpet, undefined);
  assert(parsed.warnings.some((w) => w.includes("XSDT entry 2 points outside RAM; skipped")));
  restore();
  memory.write8((table("APIC").address + 50) as PhysAddr, 0x99);
  const error = assertThrows(() => parse(), AcpiError, "checksum fails");
  assertEquals([error.signature, error.address], ["APIC", table("APIC").address]);
});

Deno.test("parseAcpiTables() refuses MADT structures that break the specification", () => {
  const { table, memory, fixChecksum, restore, parse } = firmware();
  const madt = table("APIC").address;
  // Structures: local APIC at 44, I/O APIC at 52, override at 64, NMI at 74.
  const cases: [string, number, number, string][] = [
    ["a structure shorter than its type", 53, 6, "(type 1) has length 6, needs 12"],
    ["a structure past the table", 75, 40, "(type 4) has length 40, outside the table"],
    ["a zero length", 45, 0, "has length 0"],
    ["an ISA IRQ above 15", 67, 16, "ISA IRQ 16 is above 15"],
    ["a non-ISA bus", 66, 1, "bus 1 is not ISA"],
    ["reserved polarity 10", 72, 0b10, "polarity 10 is reserved"],
    ["reserved trigger 10", 72, 0b1000, "trigger mode 10 is reserved"],
    ["LINT2", 79, 2, "LINT2 does not exist"],
    ["a misaligned local APIC", 37, 0x01, "is not a 4 KiB aligned page"],
  ];
  for (const [what, offset, value, message] of cases) {
    restore();
    memory.write8((madt + offset) as PhysAddr, value);
    fixChecksum(madt);
    const error = assertThrows(() => parse(), AcpiError, message);
    assertEquals(error.signature, "APIC", what);
  }
});

Deno.test("parseAcpiTables() checks the FADT's DSDT pointer and the HPET table's address space", () => {
  const { table, memory, fixChecksum, restore, parse } = firmware();
  const fadt = table("FACP").address;
  memory.write32((fadt + 140) as PhysAddr, table("APIC").address); // X_DSDT -> the MADT
  fixChecksum(fadt);
  assertThrows(() => parse(), AcpiError, `the FADT's DSDT pointer points at a "APIC" table`);
  restore();
  memory.write32((fadt + 40) as PhysAddr, table("DSDT").address + 16); // the 32-bit copy differs
  fixChecksum(fadt);
  assert(parse().warnings.some((w) => w.includes("differ; using X_DSDT")));
  restore();
  memory.write8((table("HPET").address + 40) as PhysAddr, 1); // system I/O
  fixChecksum(table("HPET").address);
  assertThrows(() => parse(), AcpiError, "address space 1, not system memory");
});

Deno.test("parseAcpiTables() rejects every seeded single-byte corruption inside a table and ignores padding", () => {
  const { acpi, memory, restore, parse } = firmware();
  const reference = JSON.stringify(parse());
  const inTable = (address: number) =>
    acpi.tables.some((t) =>
      t.signature !== "RSDP" && address >= t.address && address < t.address + t.bytes.length
    );
  const rng = new Xorshift32(0xacf1_2023);
  let rejected = 0;
  for (let i = 0; i < 400; i++) {
    restore();
    const address = acpi.baseAddress + rng.below(acpi.image.length);
    const original = memory.u8[address];
    memory.write8(address as PhysAddr, original ^ (1 + rng.below(255)));
    let result: AcpiTables | undefined;
    try {
      result = parse();
    } catch (error) {
      assert(error instanceof AcpiError, `0x${address.toString(16)}: ${String(error)}`);
      rejected++;
      continue;
    }
    if (inTable(address)) {
      // Accepted only through a logged fallback (a bad XSDT: the RSDT), or in
      // the RSDT, which the kernel does not read while the XSDT is good.
      const rsdt = acpi.tables.find((t) => t.signature === "RSDT")!;
      const isInRsdt = address >= rsdt.address && address < rsdt.address + rsdt.bytes.length;
      assert(isInRsdt || result.warnings.length > 0, `0x${address.toString(16)} accepted silently`);
    } else {
      assertEquals(
        JSON.stringify(result),
        reference,
        "a change outside every table changes nothing",
      );
    }
  }
  assert(rejected > 200, `${rejected} of 400 corruptions rejected`);
  // The RSDP copy: every single-byte change is refused.
  for (let i = 0; i < 36; i++) {
    const rsdp = acpi.rsdp.slice();
    rsdp[i] ^= 0x40;
    assertThrows(() => parse([{ bytes: rsdp, source: "MBI tag 15", kind: "acpi2" }]), AcpiError);
  }
});

Deno.test("parseAcpiTables() survives forged tables with valid checksums: an AcpiError or a result, nothing else", () => {
  const { acpi, memory, restore, fixChecksum, parse } = firmware();
  const rng = new Xorshift32(0x0f0e_1ded);
  const forgeable = acpi.tables.filter((t) => t.signature !== "RSDP");
  for (let i = 0; i < 600; i++) {
    restore();
    const target = forgeable[rng.below(forgeable.length)];
    for (let k = 1 + rng.below(4); k > 0; k--) {
      const offset = rng.below(target.bytes.length);
      memory.write8((target.address + offset) as PhysAddr, rng.below(256));
    }
    fixChecksum(target.address);
    try {
      parse();
    } catch (error) {
      assert(error instanceof AcpiError, `${target.signature}: ${String(error)}`);
    }
  }
});
