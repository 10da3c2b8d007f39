/**
 * Builds the standalone binary with `deno task compile`'s script and checks
 * that it boots exactly like `deno run main.ts`. It needs Deno's `denort` runtime, which
 * `deno compile` downloads; where that is impossible, set DENORT_BIN to a
 * local copy. Without one the test is skipped and says why.
 */

import { assertEquals, assertMatch } from "../testing/mod.ts";
import { runMain } from "./_cli.ts";

const denortBin = Deno.env.get("DENORT_BIN");
const skipReason = denortBin === undefined
  ? "DENORT_BIN is not set and Deno's denort runtime cannot be downloaded here"
  : undefined;

Deno.test({
  name: `deno compile builds a binary that boots like main.ts${
    skipReason ? ` (skipped: ${skipReason})` : ""
  }`,
  ignore: skipReason !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const binary = `${dir}/kernelsim`;
      const root = new URL("..", import.meta.url).pathname;
      // As `deno task compile` runs it: the script checks DENORT_BIN and the binary it built.
      const compile = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-write",
          "--allow-run",
          "--allow-env=DENORT_BIN",
          `${root}scripts/compile.ts`,
          "--output",
          binary,
        ],
        env: { DENORT_BIN: denortBin!, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(compile.code, 0, new TextDecoder().decode(compile.stderr));
      const run = async (args: string[]) => {
        const out = await new Deno.Command(binary, { args, stdout: "piped", stderr: "piped" })
          .output();
        const text = new TextDecoder();
        return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
      };
      const version = await run(["--version"]);
      assertMatch(version.stdout, /^kernelsim \d+\.\d+\.\d+\n$/, `DENORT_BIN is not a denort`);
      const args = ["--clock", "virtual", "--memory", "256M", "--report", "json"];
      const [compiled, interpreted] = await Promise.all([run(args), runMain(args)]);
      assertEquals(compiled.code, 0, compiled.stderr);
      assertEquals(compiled.stdout, interpreted.stdout);
      assertEquals(compiled.stderr, interpreted.stderr);
      const bad = await run(["--memory", "1K"]);
      assertEquals(bad.code, 2);
      // The CPU Worker is in the binary: several CPUs boot from it too.
      const smp = await run(["--smp", "2", "--selftest", "--no-console", "-q"]);
      assertEquals(smp.code, 0, smp.stderr);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
