import { assert, assertEquals, assertThrows } from "../testing/mod.ts";
import {
  CLI_OPTION_SPECS,
  DEFAULT_USER_TIMEOUT_MS,
  hasUserModules,
  HELP_TEXT,
  parseCliOptions,
  parseMemorySize,
  parseModuleOption,
  UsageError,
} from "./options.ts";

Deno.test("parseMemorySize() accepts K, M and G suffixes and bare MiB", () => {
  assertEquals(parseMemorySize("16M"), 16 * 2 ** 20);
  assertEquals(parseMemorySize("65536K"), 64 * 2 ** 20);
  assertEquals(parseMemorySize("1G"), 2 ** 30);
  assertEquals(parseMemorySize("64g"), 64 * 2 ** 30);
  assertEquals(parseMemorySize("2GiB"), 2 * 2 ** 30);
  assertEquals(parseMemorySize("256"), 256 * 2 ** 20);
});

Deno.test("parseMemorySize() rejects sizes outside 16M..64G and garbage", () => {
  for (const bad of ["15M", "65G", "0", "", "1T", "abc", "-1G", "1.5G", "16385K0"]) {
    assertThrows(() => parseMemorySize(bad), UsageError, "--memory");
  }
  assertThrows(() => parseMemorySize("16386K"), UsageError, "4 KiB frames");
});

Deno.test("parseModuleOption() splits FILE=string and defaults to the file name", () => {
  assertEquals(parseModuleOption("dir/initrd.img"), {
    path: "dir/initrd.img",
    string: "initrd.img",
  });
  assertEquals(parseModuleOption("a.bin=root=/dev/sda1"), {
    path: "a.bin",
    string: "root=/dev/sda1",
  });
  assertThrows(() => parseModuleOption("=x"), UsageError);
});

Deno.test("parseCliOptions() reads every option", () => {
  const options = parseCliOptions([
    "--memory=1G",
    "--cmdline",
    "console=ttyS0",
    "--module",
    "a.bin",
    "--module",
    "b.bin=two",
    "--report",
    "json",
    "--quiet",
    "--selftest",
    "--debug",
  ]);
  assertEquals(options.memoryBytes, 2 ** 30);
  assertEquals(options.cmdline, "console=ttyS0");
  assertEquals(options.modules.map((m) => m.string), ["a.bin", "two"]);
  assertEquals(options.report, "json");
  assertEquals([options.quiet, options.selftest, options.debug], [true, true, true]);
});

Deno.test("parseCliOptions() gives one clear line for bad options", () => {
  assertThrows(() => parseCliOptions(["--bogus"]), UsageError, "Unknown option --bogus");
  assertThrows(() => parseCliOptions(["--memory"]), UsageError, "--memory needs a value");
  assertThrows(() => parseCliOptions(["--report", "xml"]), UsageError, "expected json");
  assertThrows(() => parseCliOptions(["--mbi-addr", "0x1000"]), UsageError, "needs --mbi");
  assertThrows(
    () => parseCliOptions(["--mbi", "f", "--mbi-addr", "0x1001"]),
    UsageError,
    "aligned",
  );
  assertThrows(() => parseCliOptions(["--mbi", "f", "--mbi-addr", "zz"]), UsageError, "--mbi-addr");
  assertThrows(() => parseCliOptions(["stray"]), UsageError, "Unexpected argument");
  assertThrows(() => parseCliOptions(["--quiet=yes"]), UsageError, "takes no value");
});

Deno.test("parseCliOptions() takes --clock host or virtual, host by default", () => {
  assertEquals(parseCliOptions([]).clock, "host");
  assertEquals(parseCliOptions(["--clock", "virtual"]).clock, "virtual");
  assertThrows(() => parseCliOptions(["--clock", "fast"]), UsageError, "expected virtual or host");
});

Deno.test("parseCliOptions() reads --console, --no-console and --script FILE", () => {
  assertEquals(parseCliOptions([]).console, undefined);
  assertEquals(parseCliOptions([]).scriptPath, undefined);
  assertEquals(parseCliOptions(["--console"]).console, true);
  assertEquals(parseCliOptions(["--no-console"]).console, false);
  assertEquals(parseCliOptions(["--script", "cmds.txt"]).scriptPath, "cmds.txt");
  assertEquals(parseCliOptions(["--script=a b.txt", "--console"]).console, true);
  assertThrows(
    () => parseCliOptions(["--console", "--no-console"]),
    UsageError,
    "--console and --no-console cannot be combined",
  );
  assertThrows(
    () => parseCliOptions(["--script", "f", "--no-console"]),
    UsageError,
    "--script and --no-console",
  );
  assertThrows(() => parseCliOptions(["--script"]), UsageError, "--script needs a value");
  assertThrows(() => parseCliOptions(["--script="]), UsageError, "--script needs a file name");
});

Deno.test("parseCliOptions() skips the -- that deno task passes on", () => {
  assertEquals(parseCliOptions(["--", "--memory", "1G"]).memoryBytes, 2 ** 30);
});

Deno.test("parseCliOptions() says how to pass a value that starts with a dash", () => {
  assertThrows(
    () => parseCliOptions(["--cmdline", "-s single"]),
    UsageError,
    'Option --cmdline got "-s single", which starts with "-": write --cmdline="-s single" to pass it',
  );
  assertThrows(
    () => parseCliOptions(["-q", "-m", "-1"]),
    UsageError,
    'Option -m got "-1", which starts with "-": write --memory=-1 to pass it as the value',
  );
  assertThrows(() => parseCliOptions(["--module", "-x.bin"]), UsageError, "--module=-x.bin");
  // Attached with "=", such a value is taken (and then checked like any other).
  assertEquals(parseCliOptions(["--cmdline=-s single"]).cmdline, "-s single");
  assertEquals(parseCliOptions(["--", "--cmdline=-s"]).cmdline, "-s");
  assertThrows(() => parseCliOptions(["--memory=-1"]), UsageError, 'Invalid --memory "-1"');
});

Deno.test("parseCliOptions() reads the user-module options and --user-timeout", () => {
  const options = parseCliOptions([
    "--frames",
    "f.ts",
    "--pagetable",
    "p.ts",
    "--heap",
    "h.ts",
    "--faults",
    "c.ts",
    "--device",
    "a.ts",
    "--device",
    "b.ts",
    "--user-timeout",
    "0.5",
  ]);
  assertEquals(options.parts, { frames: "f.ts", pagetable: "p.ts", heap: "h.ts", faults: "c.ts" });
  assertEquals(options.devicePaths, ["a.ts", "b.ts"]);
  assertEquals(options.userTimeoutMs, 500);
  assertEquals(hasUserModules(options), true);
  assertEquals(hasUserModules(parseCliOptions([])), false);
  assertEquals(parseCliOptions(["--kernel", "k.ts"]).kernelPath, "k.ts");
  assertEquals(parseCliOptions(["--kernel", "k.ts"]).userTimeoutMs, DEFAULT_USER_TIMEOUT_MS);
});

Deno.test("parseCliOptions() refuses empty module paths, bad timeouts and --kernel with the stock kernel's options", () => {
  for (
    const [args, message] of [
      [["--frames", ""], "Option --frames needs a file"],
      [["--device", ""], "Option --device needs a file"],
      [
        ["--kernel", "k.ts", "--frames", "f.ts"],
        "Options --kernel and --frames cannot be combined",
      ],
      [
        ["--kernel", "k.ts", "--report", "json"],
        "Options --kernel and --report cannot be combined",
      ],
      [["--heap", "h.ts", "--user-timeout", "0"], 'Invalid --user-timeout "0"'],
      [["--heap", "h.ts", "--user-timeout", "ten"], 'Invalid --user-timeout "ten"'],
      [["--user-timeout", "3"], "Option --user-timeout needs a module"],
    ] as const
  ) {
    assertThrows(() => parseCliOptions(args), UsageError, message);
  }
});

Deno.test("every option parseCliOptions() accepts is documented in --help and the README", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const optionsTable = readme.slice(readme.indexOf("## Command-line options"));
  for (const [name, spec] of Object.entries(CLI_OPTION_SPECS)) {
    const short = "short" in spec ? `-${spec.short}, ` : "";
    assert(HELP_TEXT.includes(`${short}--${name}`), `--help lists ${short}--${name}`);
    assert(optionsTable.includes(`| \`${short}--${name}`), `the README's table lists --${name}`);
  }
});
