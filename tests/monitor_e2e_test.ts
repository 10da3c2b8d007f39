/**
 * End-to-end tests of the kernel monitor: scripts piped into `main.ts
 * --console` (and `--script FILE`) go through COM1's receive path with flow
 * control, and every command's output is checked.
 */

import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
  Xorshift32,
} from "../testing/mod.ts";
import { runMain } from "./_cli.ts";
import { BANNER, outputOf, PROMPT, runMonitor } from "./_monitor.ts";

Deno.test("monitor: help lists every command with one line each", async () => {
  const run = await runMonitor("help\nhelp alloc\n");
  assertEquals(run.code, 0, run.stderr);
  const [commandPart, notes] = outputOf(run, "help").split("\n\n");
  const lines = commandPart.split("\n");
  const names = lines.map((line) => line.split(" ")[0]);
  assertEquals(names, [
    "help",
    "meminfo",
    "mmap",
    "alloc",
    "free",
    "pages",
    "leaks",
    "heap",
    "kmalloc",
    "kfree",
    "regs",
    "xp",
    "dump",
    "vmmap",
    "map",
    "unmap[!]",
    "protect",
    "translate",
    "pt",
    "peek",
    "x",
    "poke[!]",
    "tlb",
    "invlpg",
    "as",
    "acpi",
    "lapic",
    "ioapic",
    "irq",
    "mmio",
    "cpus",
    "locks",
    "ipi",
    "shootdown",
    "stress",
    "selftest",
    "uptime",
    "serial",
    "echo",
    "expect",
    "halt",
    "panic",
  ]);
  for (const line of lines) assertMatch(line, /^\S.{20,} {2,}\S.*\S$/);
  // After the commands: how to quit, what Ctrl-C does, the flag legend, the range convention.
  assertStringIncludes(notes, "Ctrl-A x quits kernelsim");
  assertStringIncludes(notes, "Ctrl-C discards it");
  assertStringIncludes(
    notes,
    "flags: RW writable, US user, NX no-execute, G global, A accessed, D dirty",
  );
  assertStringIncludes(notes, "ranges print as FIRST-LAST, both ends inclusive");
  assertMatch(outputOf(run, "help alloc"), /^alloc N {2,}allocate N frames as page handles/);
});

Deno.test("monitor: meminfo, mmap and heap show the allocators' state", async () => {
  const run = await runMonitor("meminfo\nmmap\nkmalloc 100\nheap\n");
  assertEquals(run.code, 0, run.stderr);
  const meminfo = outputOf(run, "meminfo");
  assertMatch(
    meminfo,
    /^frames: 32639 total, \d+ free, 323 reserved, \d+ allocated \([\d.]+ MiB free\)\n/,
  );
  assertMatch(
    meminfo,
    /\n {2}pool 0x000000000000: 159 frames, 0 free, 159 reserved, 0 allocated\n/,
  );
  assertMatch(
    meminfo,
    /\n {2}pool 0x000000100000: 32480 frames, \d+ free, 164 reserved, \d+ allocated\n/,
  );
  assertMatch(meminfo, /\nheap: 0 bytes in use by 0 allocations, \d+ bytes free, \d+ frames? held/);
  assertStringIncludes(meminfo, "\nmonitor: 0 page handles held, 0 kmalloc blocks\n");
  assertEquals(
    outputOf(run, "mmap"),
    [
      "base               end                      size  type",
      "0x0000000000000000 0x000000000009fbff    639 KiB  available",
      "0x000000000009fc00 0x00000000000fffff    385 KiB  reserved",
      "0x0000000000100000 0x0000000007fdffff  126.9 MiB  available",
      "0x0000000007fe0000 0x0000000007ffffff    128 KiB  ACPI reclaimable",
      "0x00000000fffc0000 0x00000000ffffffff    256 KiB  reserved",
      "",
    ].join("\n"),
  );
  const va = /^kmalloc: (0xffff8000[0-9a-f]{8}) \(100 bytes asked, 112 usable\)\n$/.exec(
    outputOf(run, "kmalloc 100"),
  )?.[1];
  assert(va !== undefined, outputOf(run, "kmalloc 100"));
  const heap = outputOf(run, "heap");
  assertMatch(
    heap,
    /^kmem heap: \d+ frames mapped \(\d+ bytes\), 112 bytes in use by 1 allocation,/,
  );
  assertMatch(heap, new RegExp(`\\n${va.slice(0, -3)}000 +slab +1 +112 B +1/36 +partial\\n`));
});

Deno.test("monitor: alloc, pages, map, translate, pt, peek, poke, unmap and free", async () => {
  // The first allocation decides the frame addresses the rest of the script uses.
  const first = await runMonitor("alloc 3\n");
  const match = /^alloc: 3 frames: (0x[0-9a-f]+) (0x[0-9a-f]+) (0x[0-9a-f]+)\n$/.exec(
    outputOf(first, "alloc 3"),
  );
  assert(match !== null, first.transcript);
  const [pa1, pa2, pa3] = match.slice(1);
  const va = "0x0000000000400000";
  const run = await runMonitor(
    [
      "alloc 3",
      "pages",
      `map ${va} ${pa2} rw`,
      "pages",
      `translate 0x400123`,
      `pt ${va}`,
      `poke 0x400010 0x4142434445464748 8`,
      `peek 0x400008 24`,
      `poke 0x400000 0x2a`,
      `poke 0x400ffc 0xffffffffffffffff 8`,
      `peek 0x400ff8 8`,
      `peek ${va} 1`,
      `unmap ${va}`,
      `translate ${va}`,
      `peek ${va}`,
      `free ${pa2}`,
      `free ${pa2}`,
      "pages",
      "free all",
      "pages",
      "map 0x500000 0x1000 rx",
      "translate 0x500fff",
      "unmap 0x500000",
    ].join("\n"),
    ["--keep-going"],
  );
  assertEquals(run.code, 0, run.stderr);
  assertEquals(outputOf(run, "alloc 3"), `alloc: 3 frames: ${pa1} ${pa2} ${pa3}\n`);
  const pages = run.exchanges.filter((e) => e.command === "pages").map((e) => e.output);
  assertEquals(
    pages[0],
    [
      "pages: 3 page handles held by the monitor",
      `  ${pa1.padEnd(12)}  frame ${pa1.slice(0, -3).padEnd(8)}  refcount 1`,
      `  ${pa2.padEnd(12)}  frame ${pa2.slice(0, -3).padEnd(8)}  refcount 1`,
      `  ${pa3.padEnd(12)}  frame ${pa3.slice(0, -3).padEnd(8)}  refcount 1`,
      "",
    ].join("\n"),
  );
  assertEquals(
    outputOf(run, `map ${va} ${pa2} rw`),
    `map: ${va} -> ${pa2} (4 KiB page, RW -- NX - - -) (the mapping holds a reference: refcount 2)\n`,
  );
  assertStringIncludes(
    pages[1],
    `  ${pa2.padEnd(12)}  frame ${pa2.slice(0, -3).padEnd(8)}  refcount 2\n`,
  );
  assertEquals(
    outputOf(run, "translate 0x400123"),
    `translate: 0x0000000000400123 -> ${
      pa2.slice(0, -3)
    }123 (4 KiB page, RW -- NX - - -, sw: OWN)\n`,
  );
  const pt = outputOf(run, `pt ${va}`).split("\n");
  assertMatch(pt[0], /^pt: 0x0000000000400000 in address space 0, PML4 at 0x[0-9a-f]+ \(CR3\)$/);
  assertEquals(
    pt[1],
    "  index: PML4 0 (bits 47:39), PDPT 0 (bits 38:30), PD 2 (bits 29:21), PT 0 (bits 20:12), " +
      "offset 0x0 (bits 11:0)",
  );
  // A supervisor page: no U/S on the way down; the live-entry counts are labelled software.
  const table = / {2}-> table 0x[0-9a-f]+ {2}sw: bits 61:52 = 1 live entry below$/;
  assertMatch(pt[2], /^ {2}PML4\[0\] {3}at 0x[0-9a-f]{12} = 0x0010[0-9a-f]{12} {2}RW -- -- - - -/);
  assertMatch(pt[2], table);
  assertMatch(pt[3], /^ {2}PDPT\[0\] {3}at 0x[0-9a-f]{12} = 0x0010[0-9a-f]{12} {2}RW -- -- - - -/);
  assertMatch(pt[4], /^ {2}PD\[2\] {5}at 0x[0-9a-f]{12} = 0x0010[0-9a-f]{12} {2}RW -- -- - - -/);
  assertMatch(
    pt[5],
    /^ {2}PT\[0\] {5}at 0x[0-9a-f]{12} = 0x8[0-9a-f]{15} {2}RW -- NX - - - {2}-> frame 0x[0-9a-f]+ {2}sw: bit 9 OWN \(holds a reference\)$/,
  );
  assertEquals(
    pt[6],
    `  -> ${pa2} (4 KiB page; the MMU combines the levels: RW -- NX -)`,
  );
  assertEquals(
    outputOf(run, "poke 0x400010 0x4142434445464748 8"),
    "poke: wrote 0x4142434445464748 at 0x0000000000400010\n",
  );
  assertEquals(
    outputOf(run, "peek 0x400008 24"),
    "0x0000000000400008  00 00 00 00 00 00 00 00  48 47 46 45 44 43 42 41  |........HGFEDCBA|\n" +
      "0x0000000000400018  00 00 00 00 00 00 00 00                           |........|\n",
  );
  assertEquals(outputOf(run, "poke 0x400000 0x2a"), "poke: wrote 0x2a at 0x0000000000400000\n");
  assertStringIncludes(outputOf(run, `peek ${va} 1`), " 2a ");
  // An 8-byte store into the unmapped next page faults and writes no byte.
  assertEquals(
    outputOf(run, "poke 0x400ffc 0xffffffffffffffff 8"),
    "poke: page fault at 0x0000000000401000: not-present supervisor write (error code 0x2)\n",
  );
  assertStringIncludes(outputOf(run, "peek 0x400ff8 8"), " 00 00 00 00 00 00 00 00 ");
  assertEquals(
    outputOf(run, `unmap ${va}`),
    `unmap: ${va} no longer maps ${pa2} (4 KiB page; its reference dropped, refcount now 1)\n`,
  );
  assertEquals(outputOf(run, `translate ${va}`), `translate: ${va} is not mapped\n`);
  assertEquals(
    outputOf(run, `peek ${va}`),
    `peek: page fault at ${va}: not-present supervisor read (error code 0x0)\n`,
  );
  const frees = run.exchanges.filter((e) => e.command === `free ${pa2}`).map((e) => e.output);
  assertEquals(frees, [
    `free: dropped the handle to ${pa2}: refcount 0, the frame is free again\n`,
    `free: the monitor holds no page handle for ${pa2} (see pages)\n`,
  ]);
  assertEquals(outputOf(run, "free all"), "free: dropped 2 page handles\n");
  assertEquals(pages[3], "pages: the monitor holds no page handles (alloc N makes some)\n");
  assertEquals(
    outputOf(run, "map 0x500000 0x1000 rx"),
    "map: 0x0000000000500000 -> 0x1000 (4 KiB page, -- -- -- - - -) (the mapping owns no reference)\n",
  );
  assertEquals(
    outputOf(run, "translate 0x500fff"),
    "translate: 0x0000000000500fff -> 0x1fff (4 KiB page, -- -- -- - - -)\n",
  );
  assertEquals(
    outputOf(run, "unmap 0x500000"),
    "unmap: 0x0000000000500000 no longer maps 0x1000 (4 KiB page)\n",
  );
});

Deno.test("monitor: leaks lists frames held by page handles, with sites under --debug", async () => {
  const run = await runMonitor("leaks\nalloc 1\nleaks\n", ["--debug"]);
  assertEquals(run.code, 0, run.stderr);
  const before = Number(/^leaks: (\d+) frames/.exec(run.exchanges[0].output)?.[1]);
  const after = /^leaks: (\d+) frames held by page handles\n([^]*)$/.exec(run.exchanges[2].output);
  assert(after !== null, run.exchanges[2].output);
  assertEquals(Number(after[1]), before + 1, "the monitor's new page is listed");
  assertMatch(after[2], /^ {2}0x18[0-9a-f]000 +refcount 1 {2}AddressSpace\.create \(/);
  const plain = await runMonitor("leaks\n");
  assertStringIncludes(outputOf(plain, "leaks"), "boot with --debug to record allocation sites");
});

Deno.test("monitor: kmalloc and kfree, with double and invalid frees reported", async () => {
  const first = await runMonitor("kmalloc 5000\n");
  const va = /^kmalloc: (0xffff8000[0-9a-f]{8}) /.exec(outputOf(first, "kmalloc 5000"))?.[1];
  assert(va !== undefined, first.transcript);
  const run = await runMonitor(
    `kmalloc 5000\nkfree ${va}\nkfree ${va}\nkfree 0xffff800000000010\nkmalloc 0\nkmalloc 67108865\n`,
  );
  // Four commands failed: a piped session exits 4 and names the first.
  assertEquals(run.code, 4);
  assertEquals(
    run.stderr,
    `kernelsim: 4 monitor commands failed, the first on line 3: kfree ${va} ` +
      "(exit status 4; --keep-going exits 0)\n",
  );
  assertMatch(outputOf(run, "kmalloc 5000"), /^kmalloc: 0x\w+ \(5000 bytes asked, \d+ usable\)\n$/);
  const frees = run.exchanges.filter((e) => e.command === `kfree ${va}`).map((e) => e.output);
  assertMatch(frees[0], /^kfree: freed 0xffff8000[0-9a-f]{8} \(\d+ bytes\)\n$/);
  assertMatch(frees[1], /^kfree: .+ \((DoubleFree|InvalidFree)\)\n$/);
  assertMatch(outputOf(run, "kfree 0xffff800000000010"), /^kfree: .+ \(InvalidFree\)\n$/);
  assertEquals(
    outputOf(run, "kmalloc 0"),
    'kmalloc: expected a size in bytes from 1 to 67108864, got "0"\n',
  );
  assertEquals(
    outputOf(run, "kmalloc 67108865"),
    'kmalloc: expected a size in bytes from 1 to 67108864, got "67108865"\n',
  );
});

Deno.test("monitor: peek and poke fault at 0, at non-canonical and read-only addresses", async () => {
  const run = await runMonitor(
    [
      "peek 0",
      "poke 0 1",
      "peek 0x0000800000000000",
      "peek 0xffff7fffffffffff",
      "poke! 0xffffffff80100000 0x90",
      "peek 0xffff800000100000 32",
      "peek 0xffffffff80100000",
      "echo still here",
    ].join("\n"),
    ["--keep-going"],
  );
  assertEquals(run.code, 0, run.stderr);
  assertEquals(
    outputOf(run, "peek 0"),
    "peek: page fault at 0x0000000000000000: not-present supervisor read (error code 0x0)\n",
  );
  assertEquals(
    outputOf(run, "poke 0 1"),
    "poke: page fault at 0x0000000000000000: not-present supervisor write (error code 0x2)\n",
  );
  assertEquals(
    outputOf(run, "peek 0x0000800000000000"),
    "peek: general protection fault: non-canonical address 0x0000800000000000\n",
  );
  assertEquals(
    outputOf(run, "peek 0xffff7fffffffffff"),
    "peek: general protection fault: non-canonical address 0xffff7fffffffffff\n",
  );
  assertEquals(
    outputOf(run, "poke! 0xffffffff80100000 0x90"),
    "poke: page fault at 0xffffffff80100000: protection supervisor write (error code 0x3)\n",
  );
  // The kernel image's first bytes: the multiboot2 header magic 0xe85250d6.
  const dump = outputOf(run, "peek 0xffff800000100000 32").split("\n");
  assertEquals(dump.length, 3);
  assertMatch(
    dump[0],
    /^0xffff800000100000 {2}d6 50 52 e8 (\w\w ){4} (\w\w ){7}\w\w {2}\|.{16}\|$/,
  );
  assertMatch(dump[1], /^0xffff800000100010 {2}(\w\w ){8} (\w\w ){7}\w\w {2}\|.{16}\|$/);
  assertMatch(outputOf(run, "peek 0xffffffff80100000"), /^0xffffffff80100000 {2}d6 50 52 e8 /);
  assertEquals(outputOf(run, "echo still here"), "still here\n");
});

Deno.test("monitor: tlb, selftest, uptime, serial and echo", async () => {
  const run = await runMonitor(
    "peek 0xffff800000100000\ntlb\nselftest\nuptime\nserial\necho  spaced   out  \necho\n",
  );
  assertEquals(run.code, 0, run.stderr);
  const tlb = outputOf(run, "tlb").split("\n");
  assertMatch(
    tlb[0],
    /^tlb: \d+ of 292 entries in use; \d+ hits?, \d+ miss(es)? \(\d+\.\d% hits\); \d+ flush(es)?$/,
  );
  assert(
    tlb.some((line) =>
      /^ {2}0xffff800000100000 -> 0x0000001\w{5} +\S+ \w+ {2}RW -- NX G A -$/.test(line)
    ),
    outputOf(run, "tlb"),
  );
  const selftest = outputOf(run, "selftest").trimEnd().split("\n");
  const summary = selftest.pop() ?? "";
  assertMatch(summary, /^selftest: \d+ passed, 0 failed$/);
  assertEquals(Number(/(\d+) passed/.exec(summary)?.[1]), selftest.length);
  for (const line of selftest) assertMatch(line, /^pass: \w+: /);
  // The virtual clock makes uptime deterministic: no time passes while piped
  // input arrives, and this script waits for nothing.
  assertEquals(outputOf(run, "uptime"), "up 0.000000 s: 0 timer ticks at 100.000 Hz\n");
  assertMatch(
    outputOf(run, "serial"),
    /^serial: \d+ bytes received, \d+ bytes sent, 0 receiver overruns, 0 bytes not sent\n/,
  );
  assertMatch(
    outputOf(run, "serial"),
    /\nconsole: \d+\/2048 bytes queued, 0 bytes dropped, 4 lines run, 0 too long/,
  );
  assertEquals(outputOf(run, "echo  spaced   out  "), " spaced   out  \n");
  assertEquals(outputOf(run, "echo"), "\n");
});

Deno.test("monitor: a run on the virtual clock prints the same transcript every time", async () => {
  // Input that ends below the FIFO's trigger level is read after the
  // character timeout: the same machine time on every run.
  const runs = await Promise.all([runMonitor("uptime"), runMonitor("uptime")]);
  assertEquals(runs[0].transcript, runs[1].transcript);
  assertMatch(outputOf(runs[0], "uptime"), /^up \d+\.\d{6} s: \d+ timer ticks? at 100\.000 Hz\n$/);
});

Deno.test("monitor: unknown commands and bad arguments print one line and the monitor goes on", async () => {
  const lines: [string, string][] = [
    ["frobnicate 1 2", 'unknown command "frobnicate": type help for the list'],
    ["alloc x", 'alloc: expected a frame count from 1 to 1048576, got "x"'],
    ["alloc 0", 'alloc: expected a frame count from 1 to 1048576, got "0"'],
    ["alloc", "alloc: expected 1 argument, got 0 (usage: alloc N)"],
    ["alloc 1 2", "alloc: expected 1 argument, got 2 (usage: alloc N)"],
    ["alloc 40000", "alloc: cannot allocate a frame: out of memory (OutOfMemory)"],
    ["free 0x1234", "free: the monitor holds no page handle for 0x1234 (see pages)"],
    [
      "free frame",
      'free: expected a physical address (0x... hex or decimal, below 2^52), got "frame"',
    ],
    ["meminfo now", "meminfo: expected no arguments, got 1 (usage: meminfo)"],
    ["map 0x400001 0x1000 rw", "map: virtual address 0x400001 is not 4 KiB aligned"],
    ["map 0x400000 0x1001 rw", "map: physical address 0x1001 is not 4 KiB aligned"],
    [
      "map 0x400000 0x1000 rwq",
      'map: expected flags made of r, w, x, u, g (e.g. rw or rwx), got "rwq"',
    ],
    ["map 0xffff800000000000 0x1000 rw", "map: %ALREADY%"],
    ["unmap 0x400000", "unmap: 0x0000000000400000 is not mapped"],
    [
      "peek zz",
      'peek: expected a virtual address (0x... up to 16 hex digits, or decimal), got "zz"',
    ],
    ["peek 0 0", 'peek: expected a length in bytes from 1 to 4096, got "0"'],
    ["peek 0 99999", 'peek: expected a length in bytes from 1 to 4096, got "99999"'],
    ["poke 0x400000 256", 'poke: expected a 1-byte value from 0 to 255, got "256"'],
    ["poke 0x400000 1 3", 'poke: expected a width of 1, 2, 4 or 8 bytes, got "3"'],
    ["help nosuch", 'help: no command "nosuch": type help for the list'],
    [
      "kfree 0x0000800000000000",
      "kfree: general protection fault: non-canonical address 0x0000800000000000",
    ],
  ];
  const run = await runMonitor(lines.map(([line]) => line).join("\n") + "\nmeminfo\n");
  assertEquals(run.code, 4, run.stderr);
  for (const [line, expected] of lines) {
    const output = outputOf(run, line);
    assertEquals(output.split("\n").length, 2, `one line for ${line}: ${output}`);
    if (expected === "map: %ALREADY%") {
      assertMatch(output, /^map: .*already mapped.* \(PageAlreadyMapped\)\n$/);
    } else {
      assertEquals(output, `${expected}\n`);
    }
  }
  // alloc 40000 gave back what it had taken: no frame is held.
  assertMatch(outputOf(run, "meminfo"), /, 323 reserved, \d+ allocated/);
  assertStringIncludes(outputOf(run, "meminfo"), "monitor: 0 page handles held");
});

Deno.test("monitor: halt stops the machine cleanly and ignores the rest of the input", async () => {
  const run = await runMonitor("echo before\nhalt\necho after\n");
  assertEquals(run.code, 0, run.stderr);
  assertEquals(outputOf(run, "halt"), "halt: halting the machine\n");
  assert(!run.transcript.includes("after\n"), run.transcript);
  assert(run.transcript.endsWith("halt: halting the machine\n"), run.transcript);
});

Deno.test("monitor: panic prints KERNEL PANIC and exits with status 1", async () => {
  const run = await runMonitor("echo before\npanic testing the panic path\necho after\n");
  assertEquals(run.code, 1);
  assertEquals(
    outputOf(run, "panic testing the panic path"),
    "KERNEL PANIC: monitor: testing the panic path\n",
  );
  assert(!run.transcript.includes("after\n"), run.transcript);
  const quiet = await runMain(
    ["--clock", "virtual", "--console", "-q"],
    new TextEncoder().encode("panic\n"),
  );
  assertEquals(quiet.code, 1);
  // The monitor's console is shown under --quiet: the panic line is there, once.
  assertStringIncludes(quiet.stdout, "kernelsim> panic\nKERNEL PANIC: monitor: panic command\n");
  assertEquals(quiet.stderr, "");
});

Deno.test("monitor: the input's end halts the machine after the last line, even without a newline", async () => {
  const run = await runMonitor("echo one\r\necho two");
  assertEquals(run.code, 0, run.stderr);
  assertEquals(run.transcript, `${PROMPT}echo one\none\n${PROMPT}echo two\ntwo\n${PROMPT}\n`);
  assertEquals(run.stderr, "");
});

Deno.test("main.ts --script FILE runs monitor commands from a file; a missing file is exit 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/commands.txt`, "echo from a file\nalloc 1\nmeminfo\n");
    const run = await runMain(["--clock", "virtual", "--script", `${dir}/commands.txt`]);
    assertEquals(run.code, 0, run.stderr);
    assertStringIncludes(
      run.stdout,
      `${BANNER}${PROMPT}echo from a file\nfrom a file\n${PROMPT}alloc 1\n`,
    );
    assertStringIncludes(run.stdout, "monitor: 1 page handle held, 0 kmalloc blocks\n");
    const missing = await runMain(["--clock", "virtual", "--script", `${dir}/nope.txt`]);
    assertEquals(missing.code, 2);
    assertEquals(
      missing.stderr,
      `kernelsim: Cannot read --script "${dir}/nope.txt": no such file\n`,
    );
    assertEquals(missing.stdout, "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main.ts without --console boots and exits, ignoring piped stdin", async () => {
  const run = await runMain(["--clock", "virtual"], new TextEncoder().encode("panic\n"));
  assertEquals(run.code, 0, run.stderr);
  assertStringIncludes(run.stdout, "boot: kernel up\n");
  assert(!run.stdout.includes(BANNER));
});

Deno.test("main.ts --console --report json prints the report after the session", async () => {
  const run = await runMain(
    ["--clock", "virtual", "--console", "--report", "json"],
    new TextEncoder().encode("alloc 2\n"),
  );
  assertEquals(run.code, 0, run.stderr);
  assertStringIncludes(run.stderr, `${PROMPT}alloc 2\nalloc: 2 frames: `);
  const report = JSON.parse(run.stdout);
  assert(report.frames.freeFrames > 0);
});

Deno.test("monitor: a 1 MiB paste arrives intact through the UART with no overrun", async () => {
  // Seeded pseudo-random printable text in echo lines of 1 to 200 characters.
  const rng = new Xorshift32(0x1bad5eed);
  const lines: string[] = [];
  let sizeBytes = 0;
  while (sizeBytes < 2 ** 20) {
    const length = 1 + rng.below(200);
    let text = "";
    for (let i = 0; i < length; i++) text += String.fromCharCode(0x21 + rng.below(94));
    lines.push(text);
    sizeBytes += "echo ".length + length + 1;
  }
  const script = lines.map((text) => `echo ${text}\n`).join("") + "serial\n";
  const run = await runMonitor(script);
  assertEquals(run.code, 0, run.stderr);
  const expected = lines.map((text) => `${PROMPT}echo ${text}\n${text}\n`).join("");
  assert(run.transcript.startsWith(expected), "every line echoed and printed back intact");
  const serial = outputOf(run, "serial");
  assertMatch(
    serial,
    new RegExp(`^serial: ${script.length} bytes received, \\d+ bytes sent, 0 receiver overruns`),
  );
  assertStringIncludes(serial, `0 bytes dropped, ${lines.length} lines run, 0 too long`);
});
