import type { PhysAddr } from "../../hal/mod.ts";
import { assert, assertEquals } from "../../testing/mod.ts";
import { FrameAllocator } from "../mm/mod.ts";
import { bootTestKernel } from "../../tests/_boot_kernel.ts";
import { ADDRESS_SPACE_TABLE_WORDS, AddressSpaceTable } from "./address_space_table.ts";
import { ByteRing } from "./byte_ring.ts";
import { checkKernelIntegrity, type MonitorStructures } from "./integrity_check.ts";
import { LineEditor } from "./line_editor.ts";
import { LineHistory } from "./line_history.ts";

/** A booted kernel and the monitor structures the check covers, each breakable. */
function setup() {
  const { kernel } = bootTestKernel();
  const ringState = new Uint32Array(4);
  const editorState = new Uint32Array(8);
  const historyState = new Uint32Array(4);
  const tableWords = new Uint32Array(ADDRESS_SPACE_TABLE_WORDS);
  let monitorWordsProblem: string | undefined;
  const structures: MonitorStructures = {
    ring: new ByteRing(ringState, new Uint8Array(16)),
    editor: new LineEditor(editorState, new Uint8Array(16), () => {}),
    history: new LineHistory(historyState, new Uint8Array(64)),
    spaces: new AddressSpaceTable(kernel, tableWords),
    checkWords: () => monitorWordsProblem,
  };
  return {
    kernel,
    structures,
    ringState,
    editorState,
    historyState,
    tableWords,
    setWordsProblem: (problem: string | undefined) => {
      monitorWordsProblem = problem;
    },
    check: () => checkKernelIntegrity(kernel, structures),
  };
}

/** Corrupts with `poke`, checks the finding starts with `expected`, undoes it, checks clean. */
function expectCaught(
  rig: ReturnType<typeof setup>,
  expected: string,
  poke: () => () => void,
): void {
  const undo = poke();
  const problem = rig.check();
  assert(problem?.startsWith(expected), `expected "${expected}...", got ${problem}`);
  undo();
  assertEquals(rig.check(), undefined);
}

/** Writes `value` at physical `pa` and returns how to put the old word back. */
function pokeWord(rig: ReturnType<typeof setup>, pa: number, value: number): () => void {
  const memory = rig.kernel.machine.memory;
  const old = memory.read32(pa as PhysAddr);
  memory.write32(pa as PhysAddr, value);
  return () => memory.write32(pa as PhysAddr, old);
}

Deno.test("checkKernelIntegrity() passes a healthy kernel and names every broken structure", () => {
  const rig = setup();
  const { kernel } = rig;
  assertEquals(rig.check(), undefined);
  const frames = kernel.frames;
  assert(frames instanceof FrameAllocator, "the stock kernel's frames are the stock allocator");
  const stateAddr = frames.stateAddr;
  const heapRoot = kernel.heap.rootAddress ?? 0;
  expectCaught(rig, "frame allocator: state block magic at", () => pokeWord(rig, stateAddr, 0));
  // Pool 1's free counter: word 2 of its descriptor (8 header words, 16 per pool).
  const freeCounter = stateAddr + 4 * (8 + 16 + 2);
  expectCaught(
    rig,
    "frame allocator: pool 0x100000-0x7fdffff: the free counter says 7, the bitmap has",
    () => pokeWord(rig, freeCounter, 7),
  );
  expectCaught(
    rig,
    `kmem heap: checkInvariants: root descriptor magic is wrong`,
    () => pokeWord(rig, heapRoot, 0),
  );
  const faults = kernel.pageFaults.stateAddr ?? 0;
  expectCaught(rig, "page-fault handler: state magic", () => pokeWord(rig, faults, 1));
  expectCaught(
    rig,
    "page-fault handler: 1000 lazy regions counted, the table holds 127",
    () => pokeWord(rig, faults + 4, 1000),
  );
  expectCaught(rig, "console input ring: head 16 is outside the 16-byte ring", () => {
    rig.ringState[0] = 16;
    return () => (rig.ringState[0] = 0);
  });
  expectCaught(rig, "console line editor: cursor 3 is past the end", () => {
    rig.editorState[4] = 3;
    return () => (rig.editorState[4] = 0);
  });
  expectCaught(rig, "console history: 2 entries counted, 0 stored", () => {
    rig.historyState[1] = 2;
    return () => (rig.historyState[1] = 0);
  });
  expectCaught(rig, "monitor: magic", () => {
    rig.setWordsProblem("magic is 0x0");
    return () => rig.setWordsProblem(undefined);
  });
  expectCaught(rig, "address space table: slot 3 says PML4 0x5000", () => {
    rig.tableWords[6] = 0x5000;
    return () => (rig.tableWords[6] = 0);
  });
  expectCaught(rig, "address space table: CR3 0x5000 is no known address space", () => {
    const cr3 = kernel.machine.cpu.cr3;
    kernel.machine.cpu.cr3 = 0x5000;
    return () => (kernel.machine.cpu.cr3 = cr3);
  });
  // A user space's shared kernel-half entry that no longer matches the kernel's.
  const user = rig.structures.spaces.create();
  const shared = user.space.pml4Addr + 8 * 256;
  expectCaught(
    rig,
    "address space table: address space 1: PML4[256] shares a table the kernel's PML4 no longer points at",
    () => pokeWord(rig, rig.structures.spaces.kernelSpace.pml4Addr + 8 * 256, 0),
  );
  assert(kernel.machine.memory.read32(shared as PhysAddr) !== 0);
  rig.structures.spaces[Symbol.dispose]();
});
