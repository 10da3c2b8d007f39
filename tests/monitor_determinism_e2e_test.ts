/**
 * With `--clock virtual` a monitor script is a reproducible experiment: the
 * same script gives byte-identical output on every run. Proven here for a
 * script that uses every command `help` lists (a command added later fails
 * this test until the script uses it too).
 */

import { assert, assertEquals } from "../testing/mod.ts";
import { runMain } from "./_cli.ts";
import { outputOf, runMonitor } from "./_monitor.ts";

Deno.test("monitor: a script using every command prints byte-identical output on the virtual clock", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Frame and heap addresses the script needs (the same on every run, as the test shows).
    const probe = await runMonitor("alloc 2\nkmalloc 64\n");
    const [frame1, frame2] = outputOf(probe, "alloc 2").trim().split(": ")[2].split(" ");
    const block = outputOf(probe, "kmalloc 64").split(" ")[1];
    const script = [
      "# every monitor command once (and the forms that matter)",
      "help",
      "help map",
      "meminfo",
      "mmap",
      "alloc 2",
      `free ${frame1}`,
      "kmalloc 64",
      "heap",
      `kfree ${block}`,
      "regs",
      `xp ${frame2} 32`,
      `dump 0x100000 0x1000 ${dir}/dump.bin`,
      "map 0x400000 zero 2",
      "poke 0x400008 0x1122334455667788 8",
      `map 0x600000 ${frame2} rw`,
      "vmmap",
      "translate 0x400008",
      "pt 0x400008",
      "peek 0x400000 16",
      "x 0x600000 16",
      "protect 0x400000 r",
      "poke 0x400000 1",
      "poke 0xffffffff80100000 1",
      "unmap 0x600000",
      "unmap 0xffff800000000000",
      "tlb",
      "invlpg 0x400000",
      "tlb flush",
      "tlb flush global",
      "as new",
      "as fork 0",
      "as switch 2",
      "poke 0x401000 2",
      "pages",
      "as switch 0",
      "as list",
      "as drop 1",
      "acpi",
      "lapic",
      "ioapic",
      "irq",
      "mmio",
      "cpus",
      "locks",
      "ipi 0 0x40",
      "tlb 0",
      "shootdown",
      "stress 0.25",
      "leaks",
      "selftest",
      "uptime",
      "serial",
      "echo done",
      "expect ^done$",
      "halt",
    ].join("\n");
    const runs = [];
    for (let i = 0; i < 2; i++) runs.push(await runMonitor(script, ["--keep-going"]));
    assertEquals(runs[0].code, 0, runs[0].stderr);
    assertEquals(runs[1].stdout, runs[0].stdout);
    assertEquals(runs[1].stderr, runs[0].stderr);
    // The script uses every command help lists, but panic, which gets its own runs below.
    const names = outputOf(runs[0], "help").split("\n\n")[0].split("\n")
      .map((line) => line.split(" ")[0].replace("[!]", ""));
    const used = new Set(script.split("\n").map((line) => line.split(" ")[0].replace("!", "")));
    const unused = names.filter((name) => !used.has(name));
    assertEquals(unused, ["panic"], "commands the script does not use");
    // Every command ran: no unknown command, and only the refusals meant to be there failed.
    assert(!runs[0].transcript.includes("unknown command"), runs[0].transcript);
    const panics = await Promise.all(
      [0, 1].map(() =>
        runMain(
          ["--clock", "virtual", "--console"],
          new TextEncoder().encode("uptime\npanic now\n"),
        )
      ),
    );
    assertEquals(panics[0].code, 1);
    assertEquals(panics[1].stdout, panics[0].stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
