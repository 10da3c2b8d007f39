import { assert, assertEquals } from "../testing/mod.ts";
import { ExitStatus, signalExitStatus, TERMINATION_SIGNALS } from "./exit_status.ts";
import { HELP_TEXT } from "./options.ts";

/** Every status main.ts can exit with. */
const ALL_STATUSES = [
  ...Object.values(ExitStatus),
  ...Object.keys(TERMINATION_SIGNALS).map((signal) =>
    signalExitStatus(signal as keyof typeof TERMINATION_SIGNALS)
  ),
];

Deno.test("signalExitStatus() is 128 plus the signal's number", () => {
  assertEquals(signalExitStatus("SIGHUP"), 129);
  assertEquals(signalExitStatus("SIGINT"), 130);
  assertEquals(signalExitStatus("SIGTERM"), 143);
});

Deno.test("every exit status is documented in --help and in the README's table", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const table = readme.slice(readme.indexOf("Exit status (also in `--help`)"));
  const help = HELP_TEXT.slice(HELP_TEXT.indexOf("Exit status:"));
  for (const status of ALL_STATUSES) {
    const listed = new RegExp(`^\\s*(\\d+, )*${status}\\b`, "m");
    assert(listed.test(help), `--help lists exit status ${status}`);
    const row = new RegExp(`^\\| (\\d+, )*${status}\\b`, "m");
    assert(row.test(table), `the README lists exit status ${status}`);
  }
});
