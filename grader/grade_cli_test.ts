import { assert, assertEquals, assertMatch, assertStringIncludes } from "../testing/mod.ts";
import { type GradeHost, runGradeCli } from "./grade_cli.ts";
import { importModule } from "../tests/_import_module.ts";
import { gradeInProcess } from "./grade.ts";

/** A host that records what the CLI writes. */
function fakeHost(writeFails = false) {
  const out: string[] = [];
  const err: string[] = [];
  const files = new Map<string, string>();
  const decoder = new TextDecoder();
  const host: GradeHost = {
    stdout: { writeSync: (bytes) => (out.push(decoder.decode(bytes)), bytes.length) },
    stderr: { writeSync: (bytes) => (err.push(decoder.decode(bytes)), bytes.length) },
    writeTextFile: (path, text) => {
      if (writeFails) throw new Error(`Permission denied (os error 13): '${path}'`);
      files.set(path, text);
    },
    randomSeed: () => 4242,
  };
  return { host, stdout: () => out.join(""), stderr: () => err.join(""), files };
}

const grade = (request: Parameters<typeof gradeInProcess>[0]) =>
  gradeInProcess(request, importModule);

const USAGE_ERRORS: [string[], string][] = [
  [[], "Name the part to grade: --frames, --pagetable, --heap or --cow FILE (or stock)"],
  [["--frames", "stock", "--cow", "stock"], "Grade one part at a time: got --frames and --cow"],
  [["--frames", ""], "Option --frames needs a file (or stock)"],
  [["--frames"], "Option --frames needs a value: see --help"],
  [
    ["--frames", "stock", "--seed", "-1"],
    'Option --seed: write a value starting with "-" as --seed=VALUE',
  ],
  [
    ["--frames", "stock", "--seed=-1"],
    'Invalid --seed "-1": expected an integer from 0 to 4294967295',
  ],
  [
    ["--frames", "stock", "--seed", "4294967296"],
    'Invalid --seed "4294967296": expected an integer from 0 to 4294967295',
  ],
  [
    ["--frames", "stock", "--pass-mark", "abc"],
    'Invalid --pass-mark "abc": expected a percentage from 0 to 100',
  ],
  [
    ["--frames", "stock", "--user-timeout", "0"],
    'Invalid --user-timeout "0": expected seconds from 0.001 to 3600, e.g. 5 or 0.5',
  ],
  [
    ["--frames", "stock", "--frame-order", "highest"],
    'Invalid --frame-order "highest": expected any or lowest',
  ],
  [
    ["--cow", "stock", "--frame-order", "any"],
    "Option --frame-order is for the frames lab (--frames)",
  ],
  [["--frames", "stock", "--json=yes"], "Option --json takes no value"],
  [
    ["--frames", "stock", "extra"],
    'Unexpected argument "extra": name the module with --frames FILE and so on',
  ],
  [["--frames", "stock", "--junit", ""], "Option --junit needs a file name"],
];

for (const [args, message] of USAGE_ERRORS) {
  Deno.test(`runGradeCli(${JSON.stringify(args)}) prints one line and returns 2`, async () => {
    const fake = fakeHost();
    assertEquals(await runGradeCli(args, fake.host, grade), 2);
    assertEquals(fake.stderr(), `kernelsim grade: ${message}\n`);
    assertEquals(fake.stdout(), "");
  });
}

Deno.test("runGradeCli() uses a fresh seed when none is given and prints it for --seed to reproduce", async () => {
  const fake = fakeHost();
  assertEquals(await runGradeCli(["--", "--frames", "stock"], fake.host, grade), 0);
  assertStringIncludes(fake.stdout(), "module stock, seed 4242, frame order any");
  assertStringIncludes(fake.stdout(), "Reproduce: deno task grade -- --frames stock --seed 4242\n");
});

Deno.test("runGradeCli() --frame-order lowest adds frames.order and keeps the option in the reproduce line", async () => {
  const fake = fakeHost();
  assertEquals(
    await runGradeCli(
      ["--frames", "stock", "--seed", "0x10", "--frame-order", "lowest", "--json"],
      fake.host,
      grade,
    ),
    0,
  );
  const card = JSON.parse(fake.stdout());
  assertEquals([card.seed, card.options, card.total], [16, { frameOrder: "lowest" }, 110]);
  assert(card.checks.some((check: { id: string }) => check.id === "frames.order"));
});

Deno.test("runGradeCli() writes --junit FILE, or returns 2 with one line when it cannot", async () => {
  const ok = fakeHost();
  assertEquals(
    await runGradeCli(["--cow", "stock", "--seed", "1", "--junit", "out.xml"], ok.host, grade),
    0,
  );
  assertMatch(
    ok.files.get("out.xml") ?? "",
    /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites /,
  );
  const failing = fakeHost(true);
  assertEquals(
    await runGradeCli(
      ["--cow", "stock", "--seed", "1", "--junit", "/no/out.xml"],
      failing.host,
      grade,
    ),
    2,
  );
  assertEquals(
    failing.stderr(),
    "kernelsim grade: Cannot write /no/out.xml: Permission denied (os error 13): '/no/out.xml'\n",
  );
});

Deno.test("runGradeCli() --help prints the help and returns 0 without grading", async () => {
  const fake = fakeHost();
  assertEquals(
    await runGradeCli(["--help"], fake.host, () => Promise.reject(new Error("graded"))),
    0,
  );
  assertStringIncludes(fake.stdout(), "Usage: deno task grade -- --frames FILE [options]");
});
