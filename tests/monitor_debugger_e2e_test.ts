/**
 * End-to-end tests of the monitor as a memory-management debugger: every
 * command of issue 11 and the corruption checks of issue 8 §6, piped through
 * `main.ts` as a user would, with good and bad arguments. Addresses are read
 * from the output, never assumed, so the tests hold when the kernel's boot
 * allocations change.
 */

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../testing/mod.ts";
import { runMain } from "./_cli.ts";
import { type MonitorRun, outputOf, outputsOf, runMonitor } from "./_monitor.ts";

/** The first capture of `pattern` in `text`, or a failed assertion. */
function capture(text: string, pattern: RegExp): string {
  const match = pattern.exec(text);
  assert(match !== null && match[1] !== undefined, `${pattern} in:\n${text}`);
  return match[1];
}

/** `0x...` plus `offset`, as hex. */
function hexPlus(text: string, offset: number): string {
  return `0x${(parseInt(text, 16) + offset).toString(16)}`;
}

/** The direct-map address of physical address `pa` (hex text). */
function directMap(pa: string): string {
  return `0xffff8000${parseInt(pa, 16).toString(16).padStart(8, "0")}`;
}

/** Asserts every listed command printed exactly the expected one line. */
function assertLines(run: MonitorRun, lines: readonly (readonly [string, string])[]): void {
  for (const [command, expected] of lines) assertEquals(outputOf(run, command), `${expected}\n`);
}

Deno.test("monitor: regs decodes the control registers, EFER, RFLAGS.IF and the CPL", async () => {
  const run = await runMonitor("regs\nregs now\n", ["--keep-going"]);
  assertEquals(run.code, 0, run.stderr);
  const regs = outputOf(run, "regs").split("\n");
  assertEquals(regs[0], "regs: CPL 0 (kernel mode), RFLAGS.IF 1 (interrupts enabled)");
  assertEquals(regs[1], "  CR0   0x0000000080010001  PG WP PE");
  assertEquals(regs[2], "  CR2   0x0000000000000000  the last page-fault address");
  assertMatch(
    regs[3],
    /^ {2}CR3 {3}0x0{10}[0-9a-f]{6} {2}PML4 at 0x[0-9a-f]+ \(address space 0\)$/,
  );
  assertEquals(regs[4], "  CR4   0x00000000000000a0  PGE PAE");
  assertEquals(regs[5], "  EFER  0x0000000000000900  NXE LME");
  assertEquals(outputOf(run, "regs now"), "regs: expected no arguments, got 1 (usage: regs)\n");
});

Deno.test("monitor: xp dumps physical memory, x is peek, and both refuse bad input", async () => {
  const run = await runMonitor(
    [
      "xp 0x100000 32",
      "x 0xffff800000100000 4",
      "peek 0xffff800000100000 4",
      "xp 0x100000 0",
      "xp zz",
      "xp 0x9f000",
      "x 0x0000800000000000",
    ].join("\n"),
    ["--keep-going"],
  );
  assertEquals(run.code, 0, run.stderr);
  // The kernel image starts with the multiboot2 header magic 0xe85250d6.
  assertMatch(
    outputOf(run, "xp 0x100000 32"),
    /^0x000000100000 {2}d6 50 52 e8 (\w\w ){4} (\w\w ){7}\w\w {2}\|.{16}\|\n0x000000100010 /,
  );
  assertEquals(outputOf(run, "x 0xffff800000100000 4"), outputOf(run, "peek 0xffff800000100000 4"));
  assertLines(run, [
    ["xp 0x100000 0", 'xp: expected a length in bytes from 1 to 4096, got "0"'],
    ["xp zz", 'xp: expected a physical address (0x... hex or decimal, below 2^52), got "zz"'],
    ["xp 0x9f000", "xp: bus error at physical address 0x9f000 (16 bytes): not RAM"],
    [
      "x 0x0000800000000000",
      "x: general protection fault: non-canonical address 0x0000800000000000",
    ],
  ]);
});

Deno.test("monitor: vmmap shows merged ranges with page size, flags and use", async () => {
  const run = await runMonitor(
    "map 0x400000 zero 3\npoke 0x400000 1\nvmmap\nvmmap 0\nvmmap 5\nvmmap x\n",
    ["--keep-going"],
  );
  assertEquals(run.code, 0, run.stderr);
  const vmmap = outputOf(run, "vmmap");
  assertEquals(outputOf(run, "vmmap 0"), vmmap);
  const lines = vmmap.trimEnd().split("\n");
  assertMatch(lines[0], /^vmmap: address space 0 \(PML4 at 0x[0-9a-f]+, the kernel's, in CR3\)$/);
  assertEquals(
    lines[1],
    "first              last                    size  page     flags       use",
  );
  assertEquals(
    lines[2],
    "0x0000000000400000-0x0000000000400fff     4 KiB  4 KiB    RW US NX -  demand-zero page",
  );
  assertStringIncludes(
    vmmap,
    "\n0xffff800000000000-0xffff80000009efff   636 KiB  4 KiB    RW -- NX G  " +
      "the direct map of RAM 0x0-0x9efff\n",
  );
  assertStringIncludes(
    vmmap,
    "\n0xffff800000200000-0xffff800007ffffff   126 MiB  2 MiB    RW -- NX G  " +
      "the direct map of RAM 0x100000-0x7ffffff\n",
  );
  assertStringIncludes(
    vmmap,
    "\n0xffffff0000000000-0xffffff7fffffffff   512 GiB  -                    " +
      "the recursive entry PML4[510]: this space's page tables\n",
  );
  assertStringIncludes(
    vmmap,
    "\n0xffffffff80100000-0xffffffff8017ffff   512 KiB  4 KiB    -- -- -- G  " +
      "the kernel image (physical 0x100000-0x17ffff)\n",
  );
  assert(
    vmmap.endsWith(
      "demand-zero region 0x0000000000400000-0x0000000000402fff (3 pages, RW US NX -): " +
        "1 present, the rest appear on first touch\n",
    ),
    vmmap,
  );
  assertLines(run, [
    ["vmmap 5", "vmmap: no address space 5 (see as list)"],
    ["vmmap x", 'vmmap: expected an address space from 0 to 15, got "x"'],
  ]);
});

Deno.test("monitor: pt splits the address, labels software bits, and leaves U/S off kernel tables", async () => {
  const run = await runMonitor(
    "pt 0xffff800000200000\nmap 0x400000 zero\npoke 0x400123 1\npt 0x400123\npt 0x800000\npt\n",
    ["--keep-going"],
  );
  assertEquals(run.code, 0, run.stderr);
  const kernel = outputOf(run, "pt 0xffff800000200000").split("\n");
  assertEquals(
    kernel[1],
    "  index: PML4 256 (bits 47:39), PDPT 0 (bits 38:30), PD 1 (bits 29:21), PT 0 (bits 20:12), " +
      "offset 0x0 (bits 11:0)",
  );
  // Kernel tables are supervisor-only all the way down.
  assertMatch(
    kernel[2],
    /^ {2}PML4\[256\] at 0x[0-9a-f]{12} = 0x\w{16} {2}RW -- -- - [A-] - {2}-> table/,
  );
  assertMatch(
    kernel[3],
    /^ {2}PDPT\[0\] {3}at 0x[0-9a-f]{12} = 0x\w{16} {2}RW -- -- - [A-] - {2}-> table/,
  );
  assertMatch(kernel[3], /sw: bits 61:52 = \d+ live entries below$/);
  assertMatch(
    kernel[4],
    /^ {2}PD\[1\] {5}at 0x[0-9a-f]{12} = 0x8\w{15} {2}RW -- NX G - - {2}PS {2}-> frame 0x200000$/,
  );
  assertEquals(kernel[5], "  -> 0x200000 (2 MiB page; the MMU combines the levels: RW -- NX G)");
  // A user page (demand-zero in the lower half): U/S on its path, OWN in the leaf.
  const user = outputOf(run, "pt 0x400123").split("\n");
  assertStringIncludes(user[1], "PT 0 (bits 20:12), offset 0x123 (bits 11:0)");
  for (const line of user.slice(2, 5)) assertMatch(line, / {2}RW US -- - A - {2}-> table /);
  assertMatch(
    user[5],
    / {2}RW US NX - A D {2}-> frame 0x[0-9a-f]+ {2}sw: bit 9 OWN \(holds a reference\)$/,
  );
  assertMatch(
    user[6],
    /^ {2}-> 0x[0-9a-f]+123 \(4 KiB page; the MMU combines the levels: RW US NX -\)$/,
  );
  const missing = outputOf(run, "pt 0x800000").split("\n");
  assertMatch(missing[4], /^ {2}PD\[4\] {5}at 0x[0-9a-f]{12} = 0x0{16} {2}not present$/);
  assertEquals(missing[5], "  a read faults: not-present supervisor read (error code 0x0)");
  assertEquals(outputOf(run, "pt"), "pt: expected 1 argument, got 0 (usage: pt VA)\n");
});

Deno.test("monitor: the stale-TLB lesson ends with invlpg, and tlb flush empties the TLB", async () => {
  // First run: which frames alloc gives and where the page table entry is.
  const setup = "alloc 2\nmap 0x400000 PA1 rw\npt 0x400000\n";
  const probe = await runMonitor(setup.replace("PA1", "0x0").replace("map", "echo"));
  const [pa1, pa2] = capture(outputOf(probe, "alloc 2"), /^alloc: 2 frames: (0x\w+ 0x\w+)/).split(
    " ",
  );
  const first = await runMonitor(setup.replace("PA1", pa1));
  const pt = outputOf(first, "pt 0x400000");
  const pteAddr = capture(pt, /\n {2}PT\[0\] +at (0x\w+) =/);
  const pte = capture(pt, /\n {2}PT\[0\] +at 0x\w+ = (0x\w+)/);
  // User input, not a hot path: BigInt makes the 64-bit entry exact.
  const newPte = `0x${(BigInt(pte) ^ BigInt(pa1) ^ BigInt(pa2)).toString(16)}`;
  const pokePte = `poke ${directMap(pteAddr)} ${newPte} 8`;
  const run = await runMonitor(
    [
      setup.replace("PA1", pa1).trimEnd(),
      `poke ${directMap(pa1)} 0x41`,
      `poke ${directMap(pa2)} 0x42`,
      "peek 0x400000 1",
      pokePte,
      pokePte.replace("poke", "poke!"),
      "translate 0x400000",
      "peek 0x400000 1",
      "tlb",
      "invlpg 0x400000",
      "peek 0x400000 1",
      "tlb flush",
      "tlb flush global",
      "tlb",
      "tlb flush local",
      "invlpg zz",
    ].join("\n"),
    ["--keep-going"],
  );
  assertEquals(run.code, 0, run.stderr);
  const peeks = outputsOf(run, "peek 0x400000 1").map((output) => output.slice(20, 22));
  // The old frame through the cached entry, until INVLPG drops it; then the new one.
  assertEquals(peeks, ["41", "41", "42"]);
  assertStringIncludes(outputOf(run, pokePte), "in a PT (page table) of address space 0");
  assertStringIncludes(outputOf(run, pokePte), `: poke! ${pokePte.slice(5)} writes it anyway`);
  assertMatch(outputOf(run, "translate 0x400000"), new RegExp(`-> ${pa2} \\(4 KiB page`));
  assertMatch(
    outputsOf(run, "tlb")[0],
    new RegExp(`\\n {2}0x0000000000400000 -> 0x0{6}${pa1.slice(2)} {4}4 KiB {2}RW -- NX - A -\\n`),
  );
  assertMatch(
    outputOf(run, "invlpg 0x400000"),
    new RegExp(
      `^invlpg: 0x0000000000400000: 1 entry removed \\(0x0000000000400000 -> 0x0+${pa1.slice(2)} `,
    ),
  );
  assertMatch(
    outputOf(run, "tlb flush"),
    /^tlb: reloaded CR3 \(0x\w+\): 1 entry flushed, \d+ global entr(y|ies) kept\n$/,
  );
  assertMatch(
    outputOf(run, "tlb flush global"),
    /^tlb: toggled CR4.PGE: \d+ entr(y|ies) flushed, global ones included\n$/,
  );
  assertMatch(outputsOf(run, "tlb")[1], /^tlb: 0 of 292 entries in use; /);
  assertLines(run, [
    ["tlb flush local", 'tlb: expected tlb, tlb flush or tlb flush global, got "tlb flush local"'],
    [
      "invlpg zz",
      'invlpg: expected a virtual address (0x... up to 16 hex digits, or decimal), got "zz"',
    ],
  ]);
});

Deno.test("monitor: map takes 4 KiB, 2 MiB and 1 GiB pages and warns about kernel, free and non-RAM frames", async () => {
  const run = await runMonitor(
    [
      "map 0x600000 0x200000 rw 2m",
      "translate 0x7fffff",
      "map 0x40000000 0x0 rwg 1g",
      "translate 0x40100000",
      "map 0x900000 0x9f000 rw",
      "vmmap",
      "map 0x800000 0x100000 rw 3m",
      "map 0x800000 0x100000 rw 2m",
      "map 0x800000 0x200000 rw 1g",
      "map 0x800000 0x1000",
      "map! 0x800000 0x1000 rw",
    ].join("\n"),
    ["--keep-going"],
  );
  assertEquals(run.code, 0, run.stderr);
  assertEquals(
    outputOf(run, "map 0x600000 0x200000 rw 2m"),
    "map: 0x0000000000600000 -> 0x200000 (2 MiB page, RW -- NX - - -) (the mapping owns no " +
      "reference)\nmap: warning: all 512 frames are free: the allocator may hand them out to " +
      "someone else while mapped here\n",
  );
  assertEquals(
    outputOf(run, "translate 0x7fffff"),
    "translate: 0x00000000007fffff -> 0x3fffff (2 MiB page, RW -- NX - - -)\n",
  );
  const huge = outputOf(run, "map 0x40000000 0x0 rwg 1g").split("\n");
  assertEquals(
    huge[0],
    "map: 0x0000000040000000 -> 0x0 (1 GiB page, RW -- NX G - -) (the mapping owns no reference)",
  );
  assertEquals(
    huge[1],
    "map: warning: 0x0-0x3fffffff is not all RAM (a hole, a device, or past the end of memory at " +
      "0x8000000): accesses there reach no RAM",
  );
  assertMatch(
    huge[2],
    /^map: warning: the frames hold the kernel image at 0x100000-0x17ffff and \d+ more kernel structures: writes through 0x0000000040000000 change the kernel's own state$/,
  );
  assertMatch(
    huge[3],
    /^map: warning: \d+ of the 262144 frames are free: the allocator may hand them out/,
  );
  assertEquals(
    outputOf(run, "translate 0x40100000"),
    "translate: 0x0000000040100000 -> 0x100000 (1 GiB page, RW -- NX G - -)\n",
  );
  assertStringIncludes(
    outputOf(run, "map 0x900000 0x9f000 rw"),
    "map: warning: 0x9f000-0x9ffff is not all RAM",
  );
  assertMatch(
    outputOf(run, "vmmap"),
    /\n0x0000000040000000-0x000000007fffffff {5}1 GiB {2}1 GiB {4}RW -- NX G {2}raw mapping of 0x0 \(the kernel image and \d+ more kernel structures\)\n/,
  );

  assertLines(run, [
    ["map 0x800000 0x100000 rw 3m", 'map: expected a page size of 4k, 2m or 1g, got "3m"'],
    ["map 0x800000 0x100000 rw 2m", "map: physical address 0x100000 is not 2 MiB aligned"],
    ["map 0x800000 0x200000 rw 1g", "map: virtual address 0x800000 is not 1 GiB aligned"],
    [
      "map 0x800000 0x1000",
      "map: expected VA PA FLAGS [4k|2m|1g] or VA zero [N] [FLAGS] (see help map)",
    ],
    ["map! 0x800000 0x1000 rw", "map: takes no ! (only unmap! and poke! do)"],
  ]);
});

Deno.test("monitor: map VA zero declares demand-zero pages; the first touch maps a frame, narrated", async () => {
  const run = await runMonitor(
    [
      "map 0x400000 zero 4",
      "translate 0x401000",
      "protect 0x401000 r",
      "peek 0x401ff0",
      "poke 0x402000 0x2a",
      "translate 0x402000",
      "map 0x1000000 zero 2 r",
      "poke 0x1000000 1",
      "protect 0x1000000 rw",
      "poke 0x1000000 1",
      "map 0x400000 zero",
      "map 0x400001 zero",
      "map 0x3000000 zero 0",
      "map 0x3000000 zero 2 rwq",
      "map 0x7ffffffff000 zero 2",
    ].join("\n"),
    ["--keep-going"],
  );
  assertEquals(run.code, 0, run.stderr);
  assertEquals(
    outputOf(run, "map 0x400000 zero 4"),
    "map: 0x0000000000400000-0x0000000000403fff demand-zero, 4 pages RW US NX -: " +
      "each frame appears on its first touch\n",
  );
  assertEquals(
    outputOf(run, "translate 0x401000"),
    "translate: 0x0000000000401000 is not mapped\n",
  );
  assertEquals(
    outputOf(run, "protect 0x401000 r"),
    "protect: 0x0000000000401000 is not mapped (yet: it is a demand-zero page, mapped on its " +
      "first touch)\n",
  );
  // A read maps a zeroed frame; the fault is narrated before the command's output.
  const peek = outputOf(run, "peek 0x401ff0").split("\n");
  assertMatch(
    peek[0],
    /^page fault at 0x0000000000401ff0: not-present supervisor read \(error code 0x0\): demand-zero: mapped zeroed frame 0x[0-9a-f]+$/,
  );
  assertEquals(
    peek[1],
    "0x0000000000401ff0  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|",
  );
  const poke = outputOf(run, "poke 0x402000 0x2a").split("\n");
  const frame = capture(poke[0], /mapped zeroed frame (0x\w+)$/);
  assertEquals(poke[1], "poke: wrote 0x2a at 0x0000000000402000");
  assertEquals(
    outputOf(run, "translate 0x402000"),
    `translate: 0x0000000000402000 -> ${frame} (4 KiB page, RW US NX - A D, sw: OWN)\n`,
  );
  // A read-only demand-zero page: the write maps it, then faults on protection; protect fixes it.
  const readOnly = outputsOf(run, "poke 0x1000000 1");
  assertMatch(
    readOnly[0],
    /demand-zero: mapped zeroed frame 0x\w+\npoke: page fault at 0x0000000001000000: protection supervisor write \(error code 0x3\)\n$/,
  );
  assertEquals(readOnly[1], "poke: wrote 0x01 at 0x0000000001000000\n");
  assertEquals(
    outputOf(run, "protect 0x1000000 rw"),
    "protect: 0x0000000001000000 (4 KiB page) was -- -- NX -, now RW -- NX -; its TLB entries " +
      "invalidated (INVLPG)\n",
  );
  assertLines(run, [
    [
      "map 0x400000 zero",
      "map: 0x0000000000400000-0x0000000000400fff overlaps the demand-zero region " +
      "0x0000000000400000-0x0000000000403fff",
    ],
    ["map 0x400001 zero", "map: virtual address 0x400001 is not 4 KiB aligned"],
    ["map 0x3000000 zero 0", 'map: expected a page count from 1 to 262144, got "0"'],
    [
      "map 0x3000000 zero 2 rwq",
      'map: expected flags made of r, w, x, u, g (e.g. rw or rwx), got "rwq"',
    ],
    [
      "map 0x7ffffffff000 zero 2",
      "map: 0x00007ffffffff000+2 pages runs past the end of the lower half",
    ],
  ]);
});

Deno.test("monitor: as new, switch, fork and drop; copy-on-write faults are narrated with refcounts", async () => {
  const run = await runMonitor(
    [
      "as",
      "as new",
      "as switch 1",
      "map 0x400000 zero 1",
      "poke 0x400000 7",
      "map 0xffff900000000000 0x1000 rw",
      "as fork 1",
      "as switch 2",
      "peek 0x400000 1",
      "pages",
      "protect 0x400000 rw",
      "poke 0x400000 8",
      "as switch 1",
      "poke 0x400000 9",
      "peek 0x400000 1",
      "as drop 1",
      "as switch 0",
      "as list",
      "as drop 2",
      "as drop 0",
      "as switch 9",
      "as fork 99",
      "as frob",
      "as switch",
      "as new 1",
    ].join("\n"),
    ["--keep-going"],
  );
  assertEquals(run.code, 0, run.stderr);
  assertMatch(
    outputOf(run, "as"),
    /^as: 1 address space; \* marks the one in CR3\n\* 0 {2}PML4 at 0x\w+ +the kernel's: /,
  );
  assertMatch(
    outputOf(run, "as new"),
    /^as: created address space 1 \(PML4 at 0x\w+\), its lower half empty, the kernel half shared; as switch 1 loads it\n$/,
  );
  assertMatch(
    outputsOf(run, "as switch 1")[0],
    /^as: CR3 = 0x\w+: address space 1 is current \(\d+ TLB entr(y|ies) flushed, global ones kept\)\n$/,
  );
  assertEquals(
    outputOf(run, "map 0xffff900000000000 0x1000 rw"),
    "map: 0xffff900000000000 is in the kernel half, which address space 1 shares with address " +
      "space 0: change it there (as switch 0)\n",
  );
  assertMatch(
    outputOf(run, "as fork 1"),
    /^as: forked address space 1 into 2 \(PML4 at 0x\w+\): 1 page shared copy-on-write, 0 raw mappings copied, 1 demand-zero region declared again\n$/,
  );
  const peeks = outputsOf(run, "peek 0x400000 1").map((output) => output.slice(20, 22));
  // The child reads the parent's data; after both wrote, the parent has its own.
  assertEquals(peeks, ["07", "09"]);
  const shared = capture(outputOf(run, "poke 0x400000 7"), /mapped zeroed frame (0x\w+)/);
  assertStringIncludes(
    outputOf(run, "pages"),
    `  as 1  0x0000000000400000 -> ${shared.padEnd(10)} refcount 2  copy-on-write\n` +
      `  as 2  0x0000000000400000 -> ${shared.padEnd(10)} refcount 2  copy-on-write\n`,
  );
  assertStringIncludes(outputOf(run, "protect 0x400000 rw"), "is copy-on-write");
  // The child writes: a copy; then the parent writes: the last reference, reused in place.
  assertMatch(
    outputOf(run, "poke 0x400000 8"),
    new RegExp(
      `^page fault at 0x0000000000400000: protection supervisor write \\(error code 0x3\\): ` +
        `copy-on-write: copied frame ${shared} to 0x\\w+, refcount 2 -> 1\\npoke: wrote 0x08`,
    ),
  );
  assertStringIncludes(
    outputOf(run, "poke 0x400000 9"),
    `copy-on-write: frame ${shared} has no other sharer (refcount 1), made writable in place\n`,
  );
  assertLines(run, [
    ["as drop 1", "as: address space 1 is in CR3: switch to another one first"],
    ["as drop 2", "as: dropped address space 2: 4 page tables freed, 1 page reference dropped"],
    ["as drop 0", "as: address space 0 is the kernel's: it cannot be dropped"],
    ["as switch 9", "as: no address space 9 (see as list)"],
    ["as fork 99", 'as: expected an address space number from 0 to 15, got "99"'],
    ["as frob", 'as: expected list, new, switch, fork, drop, got "frob"'],
    ["as switch", "as: switch needs an address space number N"],
    ["as new 1", "as: new takes no N"],
  ]);
  assertMatch(
    outputOf(run, "as list"),
    /\n {2}1 {2}PML4 at 0x\w+ +4 page tables, 1 page mapped \(1 in the lower half, 0 copy-on-write\), 1 demand-zero region\n\n?$|\n {2}2 /,
  );
});

Deno.test("monitor: unmap and poke refuse kernel structures until forced with unmap! and poke!", async () => {
  const run = await runMonitor(
    [
      "unmap 0xffff800000000000",
      "unmap! 0xffff800000000000",
      "peek 0xffff800000000000",
      "unmap 0xffff800000201000",
      "unmap 0x400000",
      "poke 0xffffffff80100000 0x90",
      "kmalloc 64",
      "alloc 1",
    ].join("\n"),
    ["--keep-going"],
  );
  assertEquals(run.code, 0, run.stderr);
  assertLines(run, [
    [
      "unmap 0xffff800000000000",
      "unmap: 0xffff800000000000 is in the direct map of RAM 0x0-0x9efff at " +
      "0xffff800000000000-0xffff80000009efff: the kernel reaches that memory through it; " +
      "unmap! 0xffff800000000000 removes it anyway",
    ],
    ["unmap! 0xffff800000000000", "unmap: 0xffff800000000000 no longer maps 0x0 (4 KiB page)"],
    [
      "peek 0xffff800000000000",
      "peek: page fault at 0xffff800000000000: not-present supervisor read (error code 0x0)",
    ],
    [
      "unmap 0xffff800000201000",
      "unmap: 0xffff800000201000 is inside the 2 MiB page at 0xffff800000200000: unmap its " +
      "first address",
    ],
    ["unmap 0x400000", "unmap: 0x0000000000400000 is not mapped"],
    [
      "poke 0xffffffff80100000 0x90",
      "poke: 0xffffffff80100000 is physical 0x100000, in the kernel image at 0x100000-0x17ffff: " +
      "poke! 0xffffffff80100000 0x90 writes it anyway",
    ],
  ]);
  // A block the monitor allocated and a frame it holds are its own to write.
  const block = capture(outputOf(run, "kmalloc 64"), /^kmalloc: (0x\w+)/);
  const frame = capture(outputOf(run, "alloc 1"), /^alloc: 1 frame: (0x\w+)/);
  const own = await runMonitor(
    `kmalloc 64\nalloc 1\npoke ${block} 0xffffffff 4\npoke ${directMap(frame)} 1\n` +
      `poke ${hexPlus(block, 64)} 1\n`,
  );
  assertEquals(own.code, 4, own.stderr);
  assertEquals(outputOf(own, `poke ${block} 0xffffffff 4`), `poke: wrote 0xffffffff at ${block}\n`);
  assertEquals(
    outputOf(own, `poke ${directMap(frame)} 1`),
    `poke: wrote 0x01 at ${directMap(frame)}\n`,
  );
  assertStringIncludes(
    outputOf(own, `poke ${hexPlus(block, 64)} 1`),
    "in a kmem heap slab of 64-byte objects (header, free list, objects)",
  );
});

Deno.test("monitor: poke! into the console ring is a KERNEL PANIC naming the ring, not a silent stop", async () => {
  const first = await runMonitor("serial\n");
  const ringPa = capture(outputOf(first, "serial"), /\(physical (0x\w+)\)/);
  const ring = directMap(ringPa);
  const run = await runMonitor(`poke ${ring} 0x800 4\npoke! ${ring} 0x800 4\necho never\n`);
  assertEquals(run.code, 1);
  assertStringIncludes(outputOf(run, `poke ${ring} 0x800 4`), "the monitor's console frame");
  assertEquals(
    outputOf(run, `poke! ${ring} 0x800 4`),
    `poke: wrote 0x00000800 at ${ring}\n` +
      "KERNEL PANIC: console input ring: head 2048 is outside the 2048-byte ring\n",
  );
  assert(!run.transcript.includes("never\n"), run.transcript);
  // The count, too: one past the capacity.
  const count = await runMonitor(`poke! ${directMap(hexPlus(ringPa, 4))} 2049 4\n`);
  assertEquals(count.code, 1);
  assertStringIncludes(
    count.stdout,
    "KERNEL PANIC: console input ring: count 2049 exceeds the 2048-byte ring\n",
  );
});

Deno.test("monitor: corrupting the frame allocator or the heap with poke! ends in a KERNEL PANIC naming the invariant", async () => {
  const first = await runMonitor("meminfo\nheap\n");
  const state = capture(outputOf(first, "meminfo"), /frame allocator state .* at (0x\w+)-/);
  const root = capture(outputOf(first, "heap"), /root descriptor at (0x\w+)/);
  // Pool 1's descriptor: 8 header words, then 16 words per pool.
  const desc = parseInt(state, 16) + 4 * (8 + 16);
  const descDump = await runMonitor(`xp 0x${desc.toString(16)} 48\n`);
  const words = outputOf(descDump, `xp 0x${desc.toString(16)} 48`).split("\n").slice(0, 3)
    .flatMap((line) => line.slice(16, 65).trim().split(/\s+/));
  const word = (index: number) =>
    parseInt(words.slice(4 * index, 4 * index + 4).reverse().join(""), 16);
  const frameCount = word(1);
  const bitmap = word(8);
  // The first level-1 summary word follows the level-0 words (one per 32 frames).
  const summary = bitmap + 4 * Math.ceil(frameCount / 32);
  const allocator = await runMonitor(
    `poke! ${directMap(summary.toString(16))} 0 4\nmeminfo\nalloc 1\necho never\n`,
  );
  assertEquals(allocator.code, 1);
  assertMatch(
    outputOf(allocator, "alloc 1"),
    /^KERNEL PANIC: frame allocator: pool 0x100000-0x\w+: its free-frame summary leads to (frame 0x\w+|a negative frame), outside the pool \(a summary word disagrees with the bitmap below it\)\n$/,
  );
  // A counter that disagrees with the bitmap: caught right after the poke.
  const counter = await runMonitor(`poke! ${directMap((desc + 8).toString(16))} 7 4\necho never\n`);
  assertEquals(counter.code, 1);
  assertMatch(
    counter.stdout,
    /\nKERNEL PANIC: frame allocator: pool 0x100000-0x\w+: the free counter says 7, the bitmap has \d+\n/,
  );
  const heap = await runMonitor(`poke! ${directMap(root)} 0 4\necho never\n`);
  assertEquals(heap.code, 1);
  assertStringIncludes(
    heap.stdout,
    `\nKERNEL PANIC: kmem heap: checkInvariants: root descriptor magic is wrong at physical address ${root}\n`,
  );
  assert(!heap.stdout.includes("never\n"));
});

Deno.test("monitor: expect checks the previous command's output; a failure is exit status 4 unless --keep-going", async () => {
  const script = [
    "echo hello world",
    "expect ^hello",
    "expect wor.d",
    "# comments and blank lines are skipped",
    "",
    "expect hello",
    "expect nope",
    "expect (",
    "echo done",
  ].join("\n");
  const run = await runMonitor(script);
  assertEquals(run.code, 4);
  assertEquals(
    run.stderr,
    "kernelsim: 2 monitor commands failed, the first on line 7: expect nope " +
      "(exit status 4; --keep-going exits 0)\n",
  );
  assertEquals(outputOf(run, "expect ^hello"), "expect: matched /^hello/\n");
  assertEquals(outputOf(run, "expect hello"), "expect: matched /hello/\n");
  assertEquals(
    outputOf(run, "expect nope"),
    "expect: no match for /nope/ in the previous command's output (1 line)\n",
  );
  assertMatch(outputOf(run, "expect ("), /^expect: invalid regular expression \/\(\/: .+\n$/);
  // Comments and blank lines print nothing and are not counted as lines run.
  assertEquals(outputOf(run, "# comments and blank lines are skipped"), "");
  assertEquals(outputOf(run, "echo done"), "done\n");
  const keepGoing = await runMonitor(script, ["--keep-going"]);
  assertEquals(keepGoing.code, 0, keepGoing.stderr);
  assertEquals(keepGoing.stderr, "");
  assertEquals(keepGoing.transcript, run.transcript);
  const passing = await runMonitor("echo ok\nexpect ^ok$\n");
  assertEquals(passing.code, 0, passing.stderr);
});

Deno.test("monitor: dump writes physical memory to a file, and --dump-ram writes all of it at exit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = await runMonitor(
      [
        `dump 0x100000 0x2000 ${dir}/image.bin`,
        `dump 0x9e000 0x3000 ${dir}/hole.bin`,
        `dump 0x100000 0 ${dir}/x.bin`,
        `dump 0x7fff000 0x2000 ${dir}/x.bin`,
        `dump 0x100000 16 ${dir}/no/such/dir.bin`,
        "serial",
      ].join("\n"),
      ["--keep-going", "--dump-ram", `${dir}/ram.bin`],
    );
    assertEquals(run.code, 0, run.stderr);
    assertLines(run, [
      [
        `dump 0x100000 0x2000 ${dir}/image.bin`,
        `dump: wrote 0x100000-0x101fff (8 KiB) to "${dir}/image.bin"`,
      ],
      [
        `dump 0x9e000 0x3000 ${dir}/hole.bin`,
        `dump: wrote 0x9e000-0xa0fff (12 KiB) to "${dir}/hole.bin", 8 KiB of it holes written as zeros`,
      ],
      [
        `dump 0x100000 0 ${dir}/x.bin`,
        'dump: expected a length in bytes from 1 to 134217728, got "0"',
      ],
      [
        `dump 0x7fff000 0x2000 ${dir}/x.bin`,
        "dump: 0x000007fff000+0x2000 runs past the end of physical memory (0x7ffffff is the last byte)",
      ],
      [
        `dump 0x100000 16 ${dir}/no/such/dir.bin`,
        `dump: cannot write "${dir}/no/such/dir.bin": no such file`,
      ],
    ]);
    const image = await Deno.readFile(`${dir}/image.bin`);
    assertEquals(image.length, 0x2000);
    assertEquals([...image.subarray(0, 4)], [0xd6, 0x50, 0x52, 0xe8]);
    const hole = await Deno.readFile(`${dir}/hole.bin`);
    assertEquals(hole.length, 0x3000);
    assert(hole.subarray(0x1000).every((byte) => byte === 0), "the hole reads as zeros");
    // --dump-ram: byte N of the file is physical address N, at exit.
    const ram = await Deno.readFile(`${dir}/ram.bin`);
    assertEquals(ram.length, 128 * 2 ** 20);
    assertEquals(ram.subarray(0x100000, 0x102000), image);
    const ringPa = parseInt(capture(outputOf(run, "serial"), /\(physical (0x\w+)\)/), 16);
    // The console frame's monitor words start at 0x30 with the magic "KMON".
    assertEquals(new TextDecoder().decode(ram.subarray(ringPa + 0x30, ringPa + 0x34)), "KMON");
    // A panic still dumps; an unwritable path is refused before the boot.
    const panicked = await runMain(
      ["--clock", "virtual", "--console", "-q", "--dump-ram", `${dir}/panic.bin`],
      new TextEncoder().encode("panic\n"),
    );
    assertEquals(panicked.code, 1);
    assertEquals((await Deno.stat(`${dir}/panic.bin`)).size, 128 * 2 ** 20);
    const refused = await runMain(["--clock", "virtual", "--dump-ram", `${dir}/no/such/x.bin`]);
    assertEquals(refused.code, 2);
    assertEquals(refused.stderr, `kernelsim: Cannot write "${dir}/no/such/x.bin": no such file\n`);
    assertEquals(refused.stdout, "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("monitor: help describes one command with its forms", async () => {
  const run = await runMonitor("help map\nhelp unmap!\nhelp as\n");
  assertEquals(run.code, 0, run.stderr);
  const map = outputOf(run, "help map").split("\n");
  assertMatch(map[0], /^map VA PA\|zero \.\.\. {2,}map VA to the frame at PA/);
  assertEquals(
    map[1],
    "  map VA PA FLAGS [4k|2m|1g]   map one page of that size (default 4k) to the frame at PA",
  );
  assertMatch(outputOf(run, "help unmap!"), /^unmap\[!\] VA {2,}remove the page/);
  assertStringIncludes(outputOf(run, "help as"), "  as fork N     a copy of N's lower half");
});
