/**
 * The monitor transcripts in the README are real: each block marked
 * `<!-- transcript checked by tests/readme_transcripts_test.ts, run with: ARGS -->`
 * is run (its commands are the lines after each prompt, piped into
 * `main.ts --clock virtual --console ARGS`) and must equal what the monitor
 * prints, byte for byte.
 *
 * When the kernel's output changes on purpose (new boot allocations move the
 * frame addresses), regenerate the blocks with:
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-run tests/readme_transcripts_test.ts --update
 * ```
 */

import { assert, assertEquals } from "../testing/mod.ts";
import { PROMPT, runMonitor } from "./_monitor.ts";

const README = new URL("../README.md", import.meta.url);
const MARKER =
  /<!-- transcript checked by tests\/readme_transcripts_test\.ts, run with: (.*?) -->\n\n```text\n([^]*?)```\n/g;

/** One marked block of the README. */
interface TranscriptBlock {
  /** Offset of the block's text (after the opening fence). */
  readonly start: number;
  /** Offset of the closing fence. */
  readonly end: number;
  /** Extra arguments for `main.ts`. */
  readonly args: readonly string[];
  /** The transcript as written in the README. */
  readonly text: string;
}

function transcriptBlocks(readme: string): TranscriptBlock[] {
  return [...readme.matchAll(MARKER)].map((match) => {
    const start = (match.index ?? 0) + match[0].length - match[2].length - "```\n".length;
    return {
      start,
      end: start + match[2].length,
      args: match[1].split(" ").filter((arg) => arg !== ""),
      text: match[2],
    };
  });
}

/** What the monitor prints for the block's commands. */
async function actualTranscript(block: TranscriptBlock): Promise<string> {
  const commands = block.text.split("\n")
    .filter((line) => line.startsWith(PROMPT))
    .map((line) => line.slice(PROMPT.length));
  const run = await runMonitor(commands.join("\n") + "\n", block.args);
  assertEquals(run.code, 0, run.stderr);
  // The prompt left open at the end of input is not part of the walkthrough.
  return run.transcript.replace(new RegExp(`${PROMPT}\\n$`), "");
}

Deno.test("README: every monitor transcript is what the monitor prints", async () => {
  const readme = await Deno.readTextFile(README);
  const blocks = transcriptBlocks(readme);
  assert(blocks.length >= 2, "the README's walkthrough and bad-input transcripts are marked");
  for (const block of blocks) {
    assertEquals(
      await actualTranscript(block),
      block.text,
      "README transcript drifted: regenerate it with " +
        "deno run --allow-read --allow-write --allow-run tests/readme_transcripts_test.ts --update",
    );
  }
});

if (import.meta.main && Deno.args.includes("--update")) {
  let readme = await Deno.readTextFile(README);
  // Last block first, so the offsets of the earlier ones stay valid.
  for (const block of transcriptBlocks(readme).reverse()) {
    readme = readme.slice(0, block.start) + await actualTranscript(block) + readme.slice(block.end);
  }
  await Deno.writeTextFile(README, readme);
}
