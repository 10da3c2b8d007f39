/**
 * What the stock `AddressSpace` and the `MapperAddressSpace` around a user's
 * mapper share at the ends of their life, so that both keep one contract
 * (`docs/sdk.md`) in the same words: the refusal to dispose a space that is
 * active, the refusal of work after dispose, and the whole-TLB flush that
 * removes the global translations a disposed space leaves behind.
 *
 * @module
 */

import { type CpuContext, CR4_PGE, hex } from "../../hal/mod.ts";
import { KernelError } from "../errors.ts";

/**
 * The error for disposing an address space while CR3 holds it.
 *
 * @param pml4Addr The space's PML4.
 * @returns A `FrameInUse` error.
 */
export function activeDisposeError(pml4Addr: number): KernelError {
  return new KernelError(
    "FrameInUse",
    `Cannot dispose the address space at PML4 ${hex(pml4Addr)}: it is active (in CR3)`,
  );
}

/**
 * The error for `action` (`map`, `unmap`, ...) in an address space already disposed.
 *
 * @param action What was asked, as a verb.
 * @param pml4Addr The space's PML4.
 * @returns A `UseAfterDispose` error.
 */
export function useAfterDisposeError(action: string, pml4Addr: number): KernelError {
  return new KernelError(
    "UseAfterDispose",
    `Cannot ${action} in the address space at PML4 ${hex(pml4Addr)}: already disposed`,
  );
}

/**
 * Flushes every TLB entry, global ones too: toggling CR4.PGE removes them all
 * (`docs/x86_64_paging.md`; Linux's `__flush_tlb_global`); with PGE clear
 * there is no global entry and the whole TLB is flushed.
 *
 * @param cpu The CPU whose TLB is flushed.
 */
export function flushAllTranslations(cpu: CpuContext): void {
  const cr4 = cpu.cr4;
  if ((cr4 & CR4_PGE) !== 0) {
    cpu.writeCr4(cr4 & ~CR4_PGE);
    cpu.writeCr4(cr4);
  } else {
    cpu.tlb.flushAll();
  }
}
