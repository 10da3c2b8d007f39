import { parseArgs as nodeParseArgs } from "node:util";
import { assertEquals, Xorshift32 } from "../testing/mod.ts";
import { parseArgs } from "./_parse_args.ts";

const OPTIONS = {
  memory: { type: "string", short: "m" },
  module: { type: "string", multiple: true },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
  debug: { type: "boolean" },
  cmdline: { type: "string" },
} as const;

/** Pieces command lines are made of: options in every spelling, values, dashes, strays. */
const WORDS = [
  "--memory",
  "-m",
  "--memory=1G",
  "-m2G",
  "--module",
  "--module=a.bin",
  "--quiet",
  "-q",
  "-qh",
  "-qm",
  "-qm4G",
  "-hq",
  "--help",
  "-h",
  "--debug",
  "--debug=yes",
  "--cmdline",
  "--cmdline=-s",
  "1G",
  "a.bin",
  "-s single",
  "-1",
  "-",
  "--",
  "--bogus",
  "-x",
  "-qx",
  "stray",
  "--=x",
  "",
];

/** The outcome of a parse as plain data: the result, or the error's class and message. */
function outcome(parse: () => unknown): unknown {
  try {
    return JSON.parse(JSON.stringify(parse()));
  } catch (error) {
    return { error: (error as Error).name, message: (error as Error).message };
  }
}

Deno.test("parseArgs() gives node:util parseArgs's tokens, values and errors on random command lines", () => {
  const rng = new Xorshift32(0x5eed_a11);
  for (let run = 0; run < 4000; run++) {
    const args = Array.from({ length: rng.below(6) }, () => WORDS[rng.below(WORDS.length)]);
    const ours = outcome(() => parseArgs({ args, options: OPTIONS }));
    const node = outcome(() =>
      nodeParseArgs({ args, options: OPTIONS, strict: true, allowPositionals: true, tokens: true })
    );
    assertEquals(ours, node, JSON.stringify(args));
  }
});
