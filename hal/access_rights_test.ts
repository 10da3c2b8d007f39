import {
  ACCESS_FETCH,
  ACCESS_READ,
  ACCESS_WRITE,
  AccessRights,
  type ProtectionMode,
  RIGHTS_DIRTY,
  RIGHTS_INDEX_COUNT,
  RIGHTS_NO_EXECUTE,
  RIGHTS_USER,
  RIGHTS_WRITABLE,
} from "./access_rights.ts";
import { CR0_PE, CR0_PG, CR0_WP, CR4_SMAP, CR4_SMEP, EFER_NXE } from "./control_registers.ts";
import { assertEquals } from "../testing/mod.ts";

/** SDM vol. 3A, 4.6.1, written out case by case, independently of the masks. */
function referenceAllows(mode: ProtectionMode, index: number, kind: number): boolean {
  const writable = (index & RIGHTS_WRITABLE) !== 0;
  const user = (index & RIGHTS_USER) !== 0;
  const executeDisabled = (index & RIGHTS_NO_EXECUTE) !== 0 && (mode.efer & EFER_NXE) !== 0;
  if (mode.cpl === 3) {
    if (kind === ACCESS_READ) return user;
    if (kind === ACCESS_WRITE) return user && writable;
    return user && !executeDisabled;
  }
  if (kind === ACCESS_FETCH) return !executeDisabled && !(user && (mode.cr4 & CR4_SMEP) !== 0);
  if (user && (mode.cr4 & CR4_SMAP) !== 0 && !mode.alignmentCheck) return false;
  if (kind === ACCESS_WRITE) return writable || (mode.cr0 & CR0_WP) === 0;
  return true;
}

Deno.test("AccessRights masks agree with the SDM rules in every protection mode", () => {
  const rights = new AccessRights();
  let modes = 0;
  for (const cpl of [0, 3]) {
    for (const cr0 of [CR0_PE | CR0_PG, CR0_PE | CR0_PG | CR0_WP, CR0_PE | CR0_WP]) {
      for (const cr4 of [0, CR4_SMEP, CR4_SMAP, CR4_SMEP | CR4_SMAP]) {
        for (const efer of [0, EFER_NXE]) {
          for (const alignmentCheck of [false, true]) {
            const mode = { cr0, cr4, efer, cpl, alignmentCheck };
            rights.update(mode);
            modes++;
            for (const kind of [ACCESS_READ, ACCESS_WRITE, ACCESS_FETCH]) {
              for (let index = 0; index < RIGHTS_INDEX_COUNT; index++) {
                const allowed = referenceAllows(mode, index, kind);
                const where = `mode ${JSON.stringify(mode)}, kind ${kind}, rights ${index}`;
                assertEquals(((rights.allowed[kind] >>> index) & 1) === 1, allowed, where);
                const hits = allowed && (cr0 & CR0_PG) !== 0 &&
                  (kind !== ACCESS_WRITE || (index & RIGHTS_DIRTY) !== 0);
                assertEquals(((rights.hit[kind] >>> index) & 1) === 1, hits, `${where} (hit)`);
              }
            }
          }
        }
      }
    }
  }
  assertEquals(modes, 96);
});
