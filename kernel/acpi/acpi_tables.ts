/**
 * The kernel's ACPI discovery (docs/acpi.md): from the RSDP the boot loader
 * copied into the MBI, through the XSDT (or the RSDT) to the FADT and its
 * DSDT, the MADT and the HPET table, with the same rigour as the multiboot2
 * parser. Nothing is trusted: every pointer must land in RAM, every table's
 * signature, length and checksum are checked before a field is read, and
 * every field read is bounded by the table it belongs to.
 *
 * What is fatal and what is a warning: a bad RSDP, root table, FADT, DSDT,
 * MADT or HPET table throws {@linkcode AcpiError} (the kernel then logs it
 * and falls back to the 8259 and the PIT). A root entry that points at
 * nothing readable, a table of another kind with a bad checksum, or a
 * second table with the signature of one already found is skipped with a
 * warning, as Linux does.
 *
 * @module
 */

import type { PhysAddr, PhysicalMemory } from "../../hal/mod.ts";
import { AcpiError } from "./acpi_error.ts";
import { type Fadt, parseFadt } from "./fadt.ts";
import { type HpetTable, parseHpetTable } from "./hpet_table.ts";
import { type Madt, parseMadt } from "./madt.ts";
import { parseRsdp, type Rsdp } from "./rsdp.ts";
import { ACPI_HEADER_BYTES, type AcpiTableHeader, readSystemTable } from "./system_table.ts";

/** Signatures of the tables the kernel uses: a bad one is fatal. */
const USED_SIGNATURES: readonly string[] = ["FACP", "APIC", "HPET"];
const XSDT_ENTRY_BYTES = 8;
const RSDT_ENTRY_BYTES = 4;
const FACS_MIN_BYTES = 64;

/** An RSDP copy from the MBI and where it came from. */
export interface RsdpCandidate {
  /** The bytes of the tag's payload. */
  readonly bytes: Uint8Array;
  /** `MBI tag 15` or `MBI tag 14`. */
  readonly source: string;
  /** Tag 14 carries an ACPI 1.0 RSDP (its first 20 bytes count), tag 15 an ACPI 2.0+ one. */
  readonly kind: "acpi1" | "acpi2";
}

/** Everything the kernel learnt from ACPI. */
export interface AcpiTables {
  /** The RSDP used. */
  readonly rsdp: Rsdp;
  /** The root table used: the XSDT, or the RSDT. */
  readonly root: AcpiTableHeader;
  /** Every table found and checked: the root, each listed table, the DSDT. */
  readonly tables: readonly AcpiTableHeader[];
  /** The FADT, if listed. */
  readonly fadt: Fadt | undefined;
  /** The MADT, if listed. */
  readonly madt: Madt | undefined;
  /** The HPET table, if listed. */
  readonly hpet: HpetTable | undefined;
  /** What was skipped or odd, one sentence each. */
  readonly warnings: readonly string[];
}

/**
 * Parses the ACPI tables reachable from the first usable RSDP candidate.
 *
 * @param memory Physical memory, where the tables are.
 * @param candidates RSDP copies, best first (tag 15, then tag 14).
 * @returns The tables.
 * @throws {AcpiError} When no candidate leads to a valid set of used tables.
 */
export function parseAcpiTables(
  memory: PhysicalMemory,
  candidates: readonly RsdpCandidate[],
): AcpiTables {
  const warnings: string[] = [];
  let rsdp: Rsdp | undefined;
  let firstError: AcpiError | undefined;
  for (const candidate of candidates) {
    try {
      rsdp = parseRsdp(candidate.bytes, candidate.source, candidate.kind);
      break;
    } catch (error) {
      if (!(error instanceof AcpiError)) throw error;
      firstError ??= error;
      warnings.push(`${error.message}; trying the next RSDP`);
    }
  }
  if (rsdp === undefined) {
    throw firstError ?? new AcpiError("RSDP", -1, "the boot information carries none");
  }
  const root = readRoot(memory, rsdp, warnings);
  const tables: AcpiTableHeader[] = [root.header];
  const found = new Map<string, ReturnType<typeof readSystemTable>>();
  const entryBytes = root.header.signature === "XSDT" ? XSDT_ENTRY_BYTES : RSDT_ENTRY_BYTES;
  const entryCount = (root.header.length - ACPI_HEADER_BYTES) / entryBytes;
  for (let i = 0; i < entryCount; i++) {
    const at = ACPI_HEADER_BYTES + i * entryBytes;
    const what = `${root.header.signature} entry ${i}`;
    const address = entryBytes === XSDT_ENTRY_BYTES
      ? root.table.u64(at, what)
      : root.table.u32(at, what);
    if (address === 0) {
      warnings.push(`${what} is empty (address 0); skipped`);
      continue;
    }
    let table;
    try {
      table = readSystemTable(memory, address, undefined, what);
    } catch (error) {
      if (!(error instanceof AcpiError) || USED_SIGNATURES.includes(error.signature)) throw error;
      warnings.push(`${error.message}; skipped`);
      continue;
    }
    const signature = table.header.signature;
    if (found.has(signature) && signature !== "SSDT") {
      warnings.push(`${what}: a second ${signature} table at 0x${address.toString(16)}; skipped`);
      continue;
    }
    found.set(signature, table);
    tables.push(table.header);
  }
  const fadtTable = found.get("FACP");
  const fadt = fadtTable === undefined ? undefined : parseFadt(fadtTable);
  if (fadt !== undefined) {
    warnings.push(...fadt.warnings);
    tables.push(
      readSystemTable(memory, fadt.dsdtAddress, "DSDT", "the FADT's DSDT pointer").header,
    );
    if (fadt.facsAddress !== 0) checkFacs(memory, fadt.facsAddress);
  }
  const madtTable = found.get("APIC");
  const hpetTable = found.get("HPET");
  return {
    rsdp,
    root: root.header,
    tables,
    fadt,
    madt: madtTable === undefined ? undefined : parseMadt(madtTable),
    hpet: hpetTable === undefined ? undefined : parseHpetTable(hpetTable),
    warnings,
  };
}

/** The XSDT when the RSDP gives one that checks out, else the RSDT. */
function readRoot(memory: PhysicalMemory, rsdp: Rsdp, warnings: string[]) {
  if (rsdp.xsdtAddress !== 0) {
    try {
      const xsdt = readSystemTable(memory, rsdp.xsdtAddress, "XSDT", "the RSDP's XSDT pointer");
      checkEntries(xsdt.table.length, XSDT_ENTRY_BYTES, xsdt.table.error.bind(xsdt.table));
      return xsdt;
    } catch (error) {
      if (!(error instanceof AcpiError) || rsdp.rsdtAddress === 0) throw error;
      warnings.push(`${error.message}; using the RSDT`);
    }
  }
  if (rsdp.rsdtAddress === 0) throw new AcpiError("RSDP", -1, "names neither an XSDT nor an RSDT");
  const rsdt = readSystemTable(memory, rsdp.rsdtAddress, "RSDT", "the RSDP's RSDT pointer");
  checkEntries(rsdt.table.length, RSDT_ENTRY_BYTES, rsdt.table.error.bind(rsdt.table));
  return rsdt;
}

function checkEntries(
  lengthBytes: number,
  entryBytes: number,
  error: (problem: string) => AcpiError,
): void {
  if ((lengthBytes - ACPI_HEADER_BYTES) % entryBytes !== 0) {
    throw error(
      `length ${lengthBytes} is not the header plus whole ${entryBytes}-byte entries`,
    );
  }
}

/** The FACS has a signature and a length, but no checksum. */
function checkFacs(memory: PhysicalMemory, address: number): void {
  if (!memory.isRam(address, FACS_MIN_BYTES)) {
    throw new AcpiError("FACS", address, "the FADT's FACS pointer points outside RAM");
  }
  const bytes = memory.readBytes(address as PhysAddr, 8);
  const signature = String.fromCharCode(...bytes.subarray(0, 4));
  const length = new DataView(bytes.buffer).getUint32(4, true);
  if (signature !== "FACS" || length < FACS_MIN_BYTES) {
    throw new AcpiError(
      "FACS",
      address,
      `the FADT's FACS pointer points at "${signature}" of length ${length}`,
    );
  }
}
