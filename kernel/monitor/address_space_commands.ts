/**
 * The `as` command: address spaces made, listed, loaded into CR3, forked
 * copy-on-write and dropped, as a kernel does for processes (see
 * `address_space_table.ts`). With `map VA zero`, `poke` and `pages` it shows
 * demand-zero and copy-on-write faults happen, one narrated line each.
 *
 * @module
 */

import { hex, HIGHER_HALF_START, type VirtAddr } from "../../hal/mod.ts";
import { PAGE_COPY_ON_WRITE } from "../mm/mod.ts";
import { parseInteger } from "./_args.ts";
import { plural } from "./_format.ts";
import { type AddressSpaceSlot, MAX_ADDRESS_SPACES } from "./address_space_table.ts";
import { type Command, type CommandContext, CommandError } from "./command.ts";

const SUBCOMMANDS = ["list", "new", "switch", "fork", "drop"];

/** The address space commands, in help order. */
export const addressSpaceCommands: readonly Command[] = [
  {
    name: "as",
    usage: "ACTION [N]",
    summary: "address spaces: list, new, switch N (CR3), fork N (copy-on-write), drop N",
    details: [
      "as list       every address space; * marks the one in CR3 (as alone does the same)",
      "as new        an empty lower half; the kernel half is shared with address space 0",
      "as switch N   load address space N into CR3 (non-global TLB entries are flushed)",
      "as fork N     a copy of N's lower half: owned pages shared copy-on-write (refcount + 1),",
      "              raw mappings mapped again, demand-zero regions declared again",
      "as drop N     free N's page tables and drop its references (not 0, not the one in CR3)",
    ],
    arity: [0, 2],
    completions: [SUBCOMMANDS],
    run(args, context) {
      const [action = "list", number] = args.words;
      const needsNumber = action === "switch" || action === "fork" || action === "drop";
      if (!SUBCOMMANDS.includes(action)) {
        throw new CommandError(`expected ${SUBCOMMANDS.join(", ")}, got "${action}"`);
      }
      if (needsNumber !== (number !== undefined)) {
        throw new CommandError(
          needsNumber ? `${action} needs an address space number N` : `${action} takes no N`,
        );
      }
      const spaces = context.spaces;
      const index = needsNumber
        ? parseInteger(number, "an address space number", 0, MAX_ADDRESS_SPACES - 1)
        : 0;
      switch (action) {
        case "list": {
          const slots = spaces.slots();
          context.print(`as: ${plural(slots.length, "address space")}; * marks the one in CR3`);
          for (const slot of slots) context.print(describeSlot(context, slot));
          return;
        }
        case "new": {
          const slot = spaces.create();
          context.print(
            `as: created address space ${slot.index} (PML4 at ${hex(slot.space.pml4Addr)}), ` +
              `its lower half empty, the kernel half shared; as switch ${slot.index} loads it`,
          );
          return;
        }
        case "switch": {
          const tlb = context.kernel.machine.cpu.tlb;
          const before = tlb.size;
          const slot = spaces.switchTo(index);
          context.print(
            `as: CR3 = ${hex(slot.space.pml4Addr)}: address space ${index} is current ` +
              `(${
                plural(before - tlb.size, "TLB entry", "TLB entries")
              } flushed, global ones kept)`,
          );
          return;
        }
        case "fork": {
          const result = spaces.fork(index);
          context.print(
            `as: forked address space ${index} into ${result.child.index} (PML4 at ` +
              `${hex(result.child.space.pml4Addr)}): ` +
              `${plural(result.sharedPages, "page")} shared copy-on-write, ` +
              `${plural(result.rawMappings, "raw mapping")} copied, ` +
              `${plural(result.lazyRegions, "demand-zero region")} declared again`,
          );
          return;
        }
        case "drop": {
          const { space } = spaces.get(index);
          const stats = index === 0 ? undefined : space.stats();
          spaces.drop(index);
          context.print(
            `as: dropped address space ${index}: ` +
              `${plural(stats?.pageTableFrames ?? 0, "page table")} freed, ` +
              `${plural(stats?.ownedPages ?? 0, "page reference")} dropped`,
          );
          return;
        }
      }
    },
  },
];

/** One `as list` line. */
function describeSlot(context: CommandContext, slot: AddressSpaceSlot): string {
  const { index, space } = slot;
  const stats = space.stats();
  const lower = space.mappings(0 as VirtAddr, HIGHER_HALF_START);
  const cow = lower.filter((leaf) => (leaf.flags & PAGE_COPY_ON_WRITE) !== 0).length;
  const regions = context.kernel.pageFaults.lazyRegions(space).length;
  const mapped = stats.pages4K + stats.pages2M + stats.pages1G;
  return `${space.isActive ? "*" : " "} ${String(index).padEnd(2)} PML4 at ` +
    `${hex(space.pml4Addr).padEnd(10)} ${index === 0 ? "the kernel's: " : ""}` +
    `${plural(stats.pageTableFrames, "page table")}, ${plural(mapped, "page")} mapped ` +
    `(${lower.length} in the lower half, ${cow} copy-on-write), ` +
    `${plural(regions, "demand-zero region")}`;
}
