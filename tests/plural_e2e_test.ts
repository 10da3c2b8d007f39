/**
 * Counts a user reads are singular for one: the boot log's memory map and
 * frame pools, and the monitor's output.
 */

import { assertEquals, assertStringIncludes } from "../testing/mod.ts";
import { MbiWriter } from "../hal/mod.ts";
import { runMain } from "./_cli.ts";

Deno.test("main.ts says 1 region and 1 frame in the boot log and the monitor", async () => {
  const oneRegion = new MbiWriter().memoryMap([{ base: 0, length: 64 * 2 ** 20, type: 1 }]);
  // A one-frame region below 1 MiB makes a one-frame pool.
  const oneFramePool = new MbiWriter().memoryMap([
    { base: 0x8000, length: 0x1000, type: 1 },
    { base: 0x100000, length: 63 * 2 ** 20, type: 1 },
  ]);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/one-region.mbi`, oneRegion.finish());
    await Deno.writeFile(`${dir}/one-frame.mbi`, oneFramePool.finish());
    const region = await runMain(["--clock", "virtual", "--mbi", `${dir}/one-region.mbi`]);
    assertEquals(region.code, 0, region.stderr);
    assertStringIncludes(region.stdout, "mem: memory map (1 region):\n");
    const oneFrameArgs = ["--mbi", `${dir}/one-frame.mbi`, "--mbi-addr", "0x200000"];
    const frame = await runMain(["--clock", "virtual", ...oneFrameArgs]);
    assertEquals(frame.code, 0, frame.stderr);
    assertStringIncludes(frame.stdout, "mem: memory map (2 regions):\n");
    assertStringIncludes(frame.stdout, "frames: pool 0x000000008000: 1 frame (4 KiB), ");
    const monitor = await runMain(
      ["--clock", "virtual", "--quiet", "--console", ...oneFrameArgs],
      new TextEncoder().encode("meminfo\nkmalloc 1\n"),
    );
    assertEquals(monitor.code, 0, monitor.stderr);
    assertStringIncludes(monitor.stdout, "  pool 0x000000008000: 1 frame, 0 free, ");
    assertStringIncludes(monitor.stdout, "(1 byte asked, ");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
