/**
 * The stock page-fault policy behind a wrapper that knows each address
 * space by its PML4 (as the policy does), for the copy-on-write variants:
 * each variant changes what happens on one kind of fault.
 *
 * @module
 */

import {
  type AddressSpaceLike,
  createStockPageFaultPolicy,
  PAGE_SIZE_4K,
  type PageFault,
  type PageFaultCounts,
  type PageFaultPolicy,
  type PageFaultPolicyEnv,
  type PageFaultPolicyFactory,
  type PageFaultResolution,
} from "../../sdk/mod.ts";

/** What a variant does with a fault before (or instead of) the stock policy. */
export interface FaultHook {
  /**
   * Called for every fault with its address space; returns a resolution to
   * take over, or undefined to let the stock policy handle it.
   */
  before?(fault: PageFault, space: AddressSpaceLike | undefined): PageFaultResolution | undefined;
  /** Called after the stock policy handled a fault; `copied` if it copied a shared page. */
  after?(fault: PageFault, space: AddressSpaceLike | undefined, copied: boolean): void;
  /** Adjusts the counts the policy reports. */
  counts?(stock: PageFaultCounts): PageFaultCounts;
}

/**
 * The stock policy with `hook` in its fault path.
 *
 * @param makeHook Builds the hook for one policy from its environment.
 * @returns A `--faults` module's default export.
 */
export function wrappedPolicy(
  makeHook: (env: PageFaultPolicyEnv) => FaultHook,
): PageFaultPolicyFactory {
  return (env) => {
    const stock = createStockPageFaultPolicy(env);
    const hook = makeHook(env);
    const spaces = new Map<number, AddressSpaceLike>();
    const spaceOf = () => spaces.get(env.cpu.cr3 - (env.cpu.cr3 % PAGE_SIZE_4K));
    const policy: PageFaultPolicy = {
      get counts() {
        return hook.counts?.(stock.counts) ?? stock.counts;
      },
      handle(fault) {
        const space = spaceOf();
        const taken = hook.before?.(fault, space);
        if (taken !== undefined) return taken;
        const copiesBefore = stock.counts.copyOnWriteCopies;
        const result = stock.handle(fault);
        hook.after?.(fault, space, stock.counts.copyOnWriteCopies > copiesBefore);
        return result;
      },
      attach(space) {
        spaces.set(space.pml4Addr, space);
        stock.attach(space);
      },
      detach(space) {
        spaces.delete(space.pml4Addr);
        stock.detach(space);
      },
      declareLazy(space, va, sizeBytes, flags) {
        spaces.set(space.pml4Addr, space);
        stock.declareLazy(space, va, sizeBytes, flags);
      },
      shareCopyOnWrite(src, dst, va, sizeBytes) {
        spaces.set(src.pml4Addr, src);
        spaces.set(dst.pml4Addr, dst);
        return stock.shareCopyOnWrite(src, dst, va, sizeBytes);
      },
      lazyRegions: (space) => stock.lazyRegions(space),
      [Symbol.dispose]: () => stock[Symbol.dispose](),
    };
    env.mmu.setPageFaultHandler((fault) => policy.handle(fault));
    return policy;
  };
}
