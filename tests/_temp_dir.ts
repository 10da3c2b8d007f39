/**
 * A temporary directory for the length of a test body.
 *
 * @module
 */

/** Runs `body` with a fresh temporary directory, removed afterwards whatever happens. */
export async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kernelsim_test_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
