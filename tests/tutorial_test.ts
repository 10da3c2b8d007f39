/**
 * Runs docs/tutorial.md as a reader would: every `ts` block is a file
 * (`file=lab/NAME.ts`, a later block replacing an earlier one), every `sh`
 * block is run in a checkout where those files are in a `lab/`-like folder
 * (after type-checking them), and every `text output` block must appear, line
 * by line and in order, in what the command before it printed.
 *
 * @module
 */

import { assert, assertEquals } from "../testing/mod.ts";
import { runCommand } from "./_cli.ts";

const REPO = new URL("../", import.meta.url).pathname;
const TUTORIAL = `${REPO}docs/tutorial.md`;

interface Block {
  readonly language: string;
  readonly attributes: string;
  readonly body: string;
}

function fencedBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  for (const match of markdown.matchAll(/^```(\S+)([^\n]*)\n([\s\S]*?)^```$/gm)) {
    blocks.push({ language: match[1], attributes: match[2].trim(), body: match[3] });
  }
  return blocks;
}

/** Whether `expected` lines appear in `actual`, in order (other lines may come between). */
function containsInOrder(actual: readonly string[], expected: readonly string[]): boolean {
  let next = 0;
  for (const line of actual) if (next < expected.length && line === expected[next]) next++;
  return next === expected.length;
}

/** A boot command of the tutorial, with the files as they stand when it is given. */
interface Step {
  readonly command: string;
  readonly files: ReadonlyMap<string, string>;
  readonly expectedOutputs: string[][];
}

/** The tutorial as steps: each boot command, the lab's files at that point, the outputs after it. */
function tutorialSteps(blocks: readonly Block[]): Step[] {
  const files = new Map<string, string>();
  const steps: Step[] = [];
  for (const block of blocks) {
    if (block.language === "ts") {
      const file = /file=lab\/([\w.]+\.ts)/.exec(block.attributes)?.[1];
      assert(file !== undefined, `a ts block without file=lab/NAME.ts: ${block.body.slice(0, 60)}`);
      files.set(file, block.body);
    } else if (block.language === "sh") {
      for (const line of block.body.trim().split("\n")) {
        if (line === "mkdir lab") continue; // the temporary folders stand for it
        assert(line.startsWith(BOOT_PREFIX), `an sh line the test cannot run: ${line}`);
        steps.push({ command: line, files: new Map(files), expectedOutputs: [] });
      }
    } else if (block.language === "text" && block.attributes === "output") {
      assert(steps.length > 0, "an output block before any command");
      steps[steps.length - 1].expectedOutputs.push(block.body.trimEnd().split("\n"));
    }
  }
  return steps;
}

const BOOT_PREFIX = "deno task boot -- ";

Deno.test("docs/tutorial.md: every file type-checks, every command boots, every output is what it says", async () => {
  const steps = tutorialSteps(fencedBlocks(await Deno.readTextFile(TUTORIAL)));
  assertEquals(steps.length, 5, "the tutorial's boot commands");
  assertEquals(steps.flatMap((step) => step.expectedOutputs).length, 4, "its output blocks");
  // One folder per step at the top of the checkout, so "../sdk/mod.ts" resolves as in lab/.
  const labDirs: string[] = [];
  try {
    for (const step of steps) {
      const dir = await Deno.makeTempDir({ dir: REPO, prefix: ".tutorial_lab_" });
      labDirs.push(dir.slice(REPO.length));
      for (const [name, source] of step.files) await Deno.writeTextFile(`${dir}/${name}`, source);
    }
    const sources = steps.flatMap((step, i) =>
      [...step.files.keys()].map((f) => `${labDirs[i]}/${f}`)
    );
    const check = await runCommand(Deno.execPath(), ["check", ...sources], { cwd: REPO });
    assertEquals(check.code, 0, `the tutorial's files do not type-check:\n${check.stderr}`);
    for (const [i, step] of steps.entries()) {
      const args = step.command.slice(BOOT_PREFIX.length).split(" ").map((word) =>
        word.replace(/^lab\//, `${labDirs[i]}/`)
      );
      const boot = await runCommand(Deno.execPath(), ["task", "--quiet", "boot", "--", ...args], {
        cwd: REPO,
      });
      assertEquals(boot.code, 0, `${step.command}\n${boot.stderr}`);
      for (const expected of step.expectedOutputs) {
        assert(
          containsInOrder(boot.stdout.split("\n"), expected),
          `${step.command}: expected, in order:\n${expected.join("\n")}\ngot:\n${boot.stdout}`,
        );
      }
    }
  } finally {
    for (const dir of labDirs) await Deno.remove(`${REPO}${dir}`, { recursive: true });
  }
});
