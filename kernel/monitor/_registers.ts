/**
 * The named bits of the control registers and EFER, for `regs` (Intel SDM
 * vol. 3A, 2.5 "Control Registers" and 2.2.1 "Extended Feature Enable
 * Register"; summarised in `docs/control_registers.md`).
 *
 * @module
 */

/** One named bit of a register. */
export interface RegisterBit {
  /** Its bit number. */
  readonly bit: number;
  /** Its name in the SDM. */
  readonly name: string;
}

/** CR0's defined bits. */
export const CR0_BITS: readonly RegisterBit[] = [
  { bit: 0, name: "PE" }, // protected mode
  { bit: 1, name: "MP" }, // monitor coprocessor
  { bit: 2, name: "EM" }, // x87 emulation
  { bit: 3, name: "TS" }, // task switched
  { bit: 4, name: "ET" }, // extension type
  { bit: 5, name: "NE" }, // numeric error
  { bit: 16, name: "WP" }, // supervisor writes honour read-only pages
  { bit: 18, name: "AM" }, // alignment mask
  { bit: 29, name: "NW" }, // not write-through
  { bit: 30, name: "CD" }, // cache disable
  { bit: 31, name: "PG" }, // paging
];

/** CR3's flag bits below the PML4 address (with CR4.PCIDE clear). */
export const CR3_BITS: readonly RegisterBit[] = [
  { bit: 3, name: "PWT" }, // page-level write-through for the PML4
  { bit: 4, name: "PCD" }, // page-level cache disable for the PML4
];

/** CR4's defined bits. */
export const CR4_BITS: readonly RegisterBit[] = [
  { bit: 0, name: "VME" },
  { bit: 1, name: "PVI" },
  { bit: 2, name: "TSD" },
  { bit: 3, name: "DE" },
  { bit: 4, name: "PSE" }, // 4 MiB pages in 32-bit paging
  { bit: 5, name: "PAE" }, // physical address extension: needed for 4-level paging
  { bit: 6, name: "MCE" },
  { bit: 7, name: "PGE" }, // global pages
  { bit: 8, name: "PCE" },
  { bit: 9, name: "OSFXSR" },
  { bit: 10, name: "OSXMMEXCPT" },
  { bit: 11, name: "UMIP" },
  { bit: 12, name: "LA57" }, // 5-level paging
  { bit: 13, name: "VMXE" },
  { bit: 14, name: "SMXE" },
  { bit: 16, name: "FSGSBASE" },
  { bit: 17, name: "PCIDE" },
  { bit: 18, name: "OSXSAVE" },
  { bit: 20, name: "SMEP" }, // supervisor fetches from user pages fault
  { bit: 21, name: "SMAP" }, // supervisor data accesses to user pages fault
  { bit: 22, name: "PKE" }, // protection keys
  { bit: 23, name: "CET" },
  { bit: 24, name: "PKS" },
];

/** EFER's defined bits. */
export const EFER_BITS: readonly RegisterBit[] = [
  { bit: 0, name: "SCE" }, // SYSCALL enable
  { bit: 8, name: "LME" }, // long mode enable
  { bit: 10, name: "LMA" }, // long mode active
  { bit: 11, name: "NXE" }, // execute-disable bit enable
];

/**
 * The names of the bits set in `value`, highest bit first (as the SDM's
 * register pictures read), and any set bit no name covers as `bit N`.
 *
 * @example
 * ```ts
 * import { CR0_BITS, setBitNames } from "./_registers.ts";
 * setBitNames(0x8001_0001, CR0_BITS); // ["PG", "WP", "PE"]
 * ```
 */
export function setBitNames(value: number, bits: readonly RegisterBit[]): string[] {
  const names: string[] = [];
  for (let bit = 31; bit >= 0; bit--) {
    if (((value >>> bit) & 1) === 0) continue;
    names.push(bits.find((named) => named.bit === bit)?.name ?? `bit ${bit}`);
  }
  return names;
}
