/**
 * Bits of the control registers and EFER that the simulated CPU models
 * (Intel SDM vol. 3A, 2.5 "Control registers" and 2.2.1 "Extended feature
 * enable register"). The CPU (`hal/cpu.ts`) holds the registers; the MMU
 * and the access rights read these bits.
 *
 * @module
 */

/** CR0.PE (bit 0): protected mode. */
export const CR0_PE = 1 << 0;
/** CR0.WP (bit 16): supervisor writes honour read-only pages. */
export const CR0_WP = 1 << 16;
/** CR0.PG (bit 31): paging enabled. */
export const CR0_PG = 1 << 31;
/** CR4.PAE (bit 5): physical address extension, required for 4-level paging. */
export const CR4_PAE = 1 << 5;
/** CR4.PGE (bit 7): global pages survive CR3 writes. */
export const CR4_PGE = 1 << 7;
/** CR4.SMEP (bit 20): supervisor fetches from user pages fault. */
export const CR4_SMEP = 1 << 20;
/** CR4.SMAP (bit 21): supervisor data accesses to user pages fault unless AC. */
export const CR4_SMAP = 1 << 21;
/** EFER.LME (bit 8): long mode enable. */
export const EFER_LME = 1 << 8;
/** EFER.NXE (bit 11): execute-disable bit enable. */
export const EFER_NXE = 1 << 11;
