import { GeneralProtection } from "../../hal/mod.ts";
import { assert, assertEquals, assertThrows } from "../../testing/mod.ts";
import { parseFlagLetters, parseInteger, parsePhysAddr, parseVirtAddr } from "./_args.ts";
import { describeError } from "./_format.ts";
import { CommandError, synopsis } from "./command.ts";
import { MONITOR_COMMANDS, parseLine } from "./commands.ts";
import { KernelError } from "../errors.ts";

Deno.test("parseLine() splits the command name from its words and keeps the rest verbatim", () => {
  assertEquals(parseLine("  alloc   3 "), {
    name: "alloc",
    args: { words: ["3"], rest: "  3 ", force: false },
  });
  assertEquals(parseLine("echo  a  b ")?.args.rest, " a  b ");
  assertEquals(parseLine("halt")?.args, { words: [], rest: "", force: false });
  assertEquals(parseLine(""), undefined);
  assertEquals(parseLine(" \t "), undefined);
  // The force suffix, and comment lines.
  assertEquals(parseLine("unmap! 0x1000"), {
    name: "unmap",
    args: { words: ["0x1000"], rest: "0x1000", force: true },
  });
  assertEquals(parseLine("!")?.name, "!");
  assertEquals(parseLine("# a comment"), undefined);
  assertEquals(parseLine("   #indented comment"), undefined);
  assertEquals(parseLine("echo # not a comment")?.args.rest, "# not a comment");
});

Deno.test("parseInteger() accepts decimal and hex and names the range it expects", () => {
  assertEquals(parseInteger("42", "a frame count", 1, 1048576), 42);
  assertEquals(parseInteger("0x1_000", "a frame count", 1, 1048576), 4096);
  for (const bad of ["x", "0", "1048577", "-1", "1.5", "0x", ""]) {
    assertThrows(
      () => parseInteger(bad, "a frame count", 1, 1048576),
      CommandError,
      `expected a frame count from 1 to 1048576, got "${bad}"`,
    );
  }
});

Deno.test("parseVirtAddr() reads canonical addresses and faults on non-canonical ones", () => {
  assertEquals(parseVirtAddr("0x400000"), 0x400000);
  assertEquals(parseVirtAddr("4096"), 4096);
  assertEquals(parseVirtAddr("0xffff800000001000"), 2 ** 47 + 0x1000);
  assertEquals(parseVirtAddr("18446603336221200384"), 2 ** 47 + 0x1000);
  assertThrows(() => parseVirtAddr("0x0000800000000000"), GeneralProtection, "Non-canonical");
  assertThrows(() => parseVirtAddr("140737488355328"), GeneralProtection, "Non-canonical");
  for (const bad of ["zz", "0x", "0x12345678901234567", "18446744073709551616", "-4"]) {
    assertThrows(() => parseVirtAddr(bad), CommandError, "expected a virtual address");
  }
});

Deno.test("parsePhysAddr() reads physical addresses below 2^52", () => {
  assertEquals(parsePhysAddr("0x18b000"), 0x18b000);
  assertThrows(() => parsePhysAddr("0x10000000000000"), CommandError, "below 2^52");
  assertThrows(() => parsePhysAddr("page"), CommandError, `got "page"`);
});

Deno.test("parseFlagLetters() reads r, w, x, u, g and rejects anything else", () => {
  assertEquals(parseFlagLetters("rw"), {
    writable: true,
    executable: false,
    user: false,
    global: false,
  });
  assertEquals(parseFlagLetters("RWXUG"), {
    writable: true,
    executable: true,
    user: true,
    global: true,
  });
  assertThrows(() => parseFlagLetters("rq"), CommandError, "made of r, w, x, u, g");
});

Deno.test("describeError() gives one lower-case line per kind of error", () => {
  assertEquals(
    describeError(new KernelError("DoubleFree", "Cannot free frame 0x10: already free")),
    "cannot free frame 0x10: already free (DoubleFree)",
  );
  assertEquals(
    describeError(new GeneralProtection("Non-canonical address 0x0000800000000000")),
    "general protection fault: non-canonical address 0x0000800000000000",
  );
  assertEquals(describeError(new RangeError("Invalid length -1\nstack")), "invalid length -1");
  assertEquals(describeError("boom"), "unexpected string: boom");
});

Deno.test("MONITOR_COMMANDS has one line of help per command and no duplicate names", () => {
  const names = MONITOR_COMMANDS.map((command) => command.name);
  assertEquals(new Set(names).size, names.length);
  for (const name of ["help", "meminfo", "mmap", "alloc", "free", "pages", "heap", "kmalloc"]) {
    assert(names.includes(name), name);
  }
  for (const name of ["kfree", "map", "unmap", "translate", "pt", "peek", "poke", "tlb"]) {
    assert(names.includes(name), name);
  }
  for (const name of ["selftest", "uptime", "echo", "halt", "panic", "serial"]) {
    assert(names.includes(name), name);
  }
  for (const command of MONITOR_COMMANDS) {
    assert(!command.summary.includes("\n"), `${command.name}: one line`);
    assert(synopsis(command).length < 26, `${command.name}: synopsis fits the help column`);
  }
});
