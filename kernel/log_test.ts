import { assertEquals } from "../testing/mod.ts";
import { KernelLog } from "./log.ts";

Deno.test("KernelLog prefixes each line with machine time, subsystem and level", () => {
  let nowNs = 1_500_000;
  const lines: string[] = [];
  const log = new KernelLog(() => nowNs, "info");
  log.attachConsole((line) => lines.push(line));
  log.info("mm", "ready");
  nowNs = 2_000_000_000;
  log.warn("boot", "odd\ntwo lines");
  log.debug("mm", "dropped at level info");
  assertEquals(lines, [
    "[    0.001500] mm: ready\n",
    "[    2.000000] boot: WARN: odd\n",
    "[    2.000000] boot: WARN: two lines\n",
  ]);
});

Deno.test("KernelLog keeps early lines until a console is attached", () => {
  const log = new KernelLog(() => 0);
  log.error("serial", "no UART");
  assertEquals(log.hasConsole, false);
  assertEquals(log.pendingLines(), ["[    0.000000] serial: ERROR: no UART\n"]);
  const lines: string[] = [];
  log.attachConsole((line) => lines.push(line));
  assertEquals(lines, ["[    0.000000] serial: ERROR: no UART\n"]);
  assertEquals(log.pendingLines(), []);
});
