/**
 * Access rights: which translations allow which accesses in the CPU's current
 * protection mode (Intel SDM vol. 3A, 4.6 "Access rights"), precomputed so that
 * a TLB hit checks its permissions with one shift and one AND.
 *
 * The permissions of a translation fit in a 4-bit rights index: writable (R/W
 * set at every level of the walk), user (U/S set at every level), no-execute
 * (XD set at some level while EFER.NXE was set) and dirty (the leaf's D bit
 * known to be set). For each kind of access the CPU keeps a 16-bit mask whose
 * bit i says whether a translation with rights index i allows it. The masks
 * depend only on the protection mode (CPL, CR0.WP, CR4.SMEP, CR4.SMAP,
 * EFLAGS.AC, EFER.NXE, and CR0.PG for TLB use), so the CPU recomputes them when
 * one of those changes, never on an access.
 *
 * @module
 */

import { CR0_PG, CR0_WP, CR4_SMAP, CR4_SMEP, EFER_NXE } from "./control_registers.ts";

/** Access kind: a data read. */
export const ACCESS_READ = 0;
/** Access kind: a data write. */
export const ACCESS_WRITE = 1;
/** Access kind: an instruction fetch. */
export const ACCESS_FETCH = 2;
/** The kind of an access as a small integer, for the masks' indices. */
export type AccessKind = typeof ACCESS_READ | typeof ACCESS_WRITE | typeof ACCESS_FETCH;
/** How many access kinds there are. */
const ACCESS_KIND_COUNT = 3;

/** Rights index bit: R/W was set at every level. */
export const RIGHTS_WRITABLE = 1;
/** Rights index bit: U/S was set at every level (a user page). */
export const RIGHTS_USER = 2;
/** Rights index bit: XD was set at some level while EFER.NXE was set. */
export const RIGHTS_NO_EXECUTE = 4;
/** Rights index bit: the leaf's D bit is known to be set. */
export const RIGHTS_DIRTY = 8;
/** How many rights indices there are (so masks have this many bits). */
export const RIGHTS_INDEX_COUNT = 16;

/** The processor state that decides access rights; `CpuContext` has it. */
export interface ProtectionMode {
  /** CR0 (PG, WP). */
  readonly cr0: number;
  /** CR4 (SMEP, SMAP). */
  readonly cr4: number;
  /** EFER (NXE). */
  readonly efer: number;
  /** The current privilege level: 3 is user mode, 0 to 2 supervisor. */
  readonly cpl: number;
  /** EFLAGS.AC, which lets SMAP-protected supervisor data accesses through. */
  readonly alignmentCheck: boolean;
}

/**
 * Whether an access of `kind` through a translation with `rightsIndex` is
 * allowed in `mode` (SDM 4.6): user mode needs a user page, a writable one to
 * write and an executable one to fetch; supervisor mode may not fetch from an
 * XD page or, with SMEP, a user page, may not touch user data with SMAP unless
 * AC is set, and may not write a read-only page while CR0.WP is set.
 */
function isAllowed(mode: ProtectionMode, rightsIndex: number, kind: AccessKind): boolean {
  const isWritable = (rightsIndex & RIGHTS_WRITABLE) !== 0;
  const isUserPage = (rightsIndex & RIGHTS_USER) !== 0;
  const isNoExecute = (rightsIndex & RIGHTS_NO_EXECUTE) !== 0 && (mode.efer & EFER_NXE) !== 0;
  if (mode.cpl === 3) {
    return isUserPage && !(kind === ACCESS_WRITE && !isWritable) &&
      !(kind === ACCESS_FETCH && isNoExecute);
  }
  if (kind === ACCESS_FETCH) return !isNoExecute && !(isUserPage && (mode.cr4 & CR4_SMEP) !== 0);
  const isSmapDenied = isUserPage && (mode.cr4 & CR4_SMAP) !== 0 && !mode.alignmentCheck;
  const isWpDenied = kind === ACCESS_WRITE && !isWritable && (mode.cr0 & CR0_WP) !== 0;
  return !isSmapDenied && !isWpDenied;
}

/** The rights masks of one CPU, recomputed by {@linkcode AccessRights.update}. */
export class AccessRights {
  /**
   * Per access kind (index {@linkcode AccessKind}): bit i is set when a
   * translation with rights index i allows the access.
   */
  readonly allowed: Int32Array = new Int32Array(ACCESS_KIND_COUNT);
  /**
   * Per access kind: bit i is set when a TLB entry with rights index i can
   * serve the access without a walk: it is allowed, for a write the D bit is
   * known to be set, and paging is on (every mask is 0 while CR0.PG is clear).
   */
  readonly hit: Int32Array = new Int32Array(ACCESS_KIND_COUNT);

  /**
   * Recomputes every mask for `mode`. The CPU calls it whenever CR0, CR4,
   * EFER, the CPL or EFLAGS.AC changes.
   *
   * @param mode The protection state, normally the CpuContext itself.
   */
  update(mode: ProtectionMode): void {
    const isPaging = (mode.cr0 & CR0_PG) !== 0;
    for (let kind = 0 as AccessKind; kind < ACCESS_KIND_COUNT; kind++) {
      let allowed = 0;
      let hit = 0;
      for (let index = 0; index < RIGHTS_INDEX_COUNT; index++) {
        if (!isAllowed(mode, index, kind)) continue;
        allowed |= 1 << index;
        if (isPaging && (kind !== ACCESS_WRITE || (index & RIGHTS_DIRTY) !== 0)) hit |= 1 << index;
      }
      this.allowed[kind] = allowed;
      this.hit[kind] = hit;
    }
  }
}
