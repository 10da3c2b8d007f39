/**
 * The interactive console on a real pseudo-terminal: `main.ts` runs under
 * util-linux `script`, which gives it a terminal as stdin and stdout, and the
 * test types into it as a user would (raw mode, kernel-side echo and
 * backspace, Ctrl-A x to quit).
 */

import { assert, assertEquals, assertStringIncludes } from "../testing/mod.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Why the test cannot run here, or undefined when it can. */
function missingTool(): string | undefined {
  try {
    const { success } = new Deno.Command("script", { args: ["--version"], stdout: "null" })
      .outputSync();
    if (success) return undefined;
  } catch {
    // Not installed.
  }
  return "util-linux `script` is not installed: the pseudo-terminal test is skipped";
}

const skipReason = missingTool();
if (skipReason !== undefined) console.warn(skipReason);

/** A program running on a pseudo-terminal, with what it printed so far. */
class TerminalSession {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reading: Promise<void>;
  #output = "";

  constructor(command: string) {
    this.#child = new Deno.Command("script", {
      // -q quiet, -e return the program's status, -f flush output at once.
      args: ["-qefc", command, "/dev/null"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", TERM: "dumb" },
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#reading = this.#read();
  }

  /** Everything the terminal showed, with the terminal's CR LF as LF. */
  get output(): string {
    return this.#output.replaceAll("\r\n", "\n");
  }

  /** Types `text` (raw bytes: "\x7f" is backspace, "\r" is Enter). */
  async type(text: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(text));
  }

  /** Waits until the output contains `text` after position `from`; returns where it ends. */
  async waitFor(text: string, from = 0, timeoutMs = 20_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.output.indexOf(text, from);
      if (index >= 0) return index + text.length;
      if (Date.now() > deadline) {
        throw new Error(`Timed out waiting for ${JSON.stringify(text)}; got:\n${this.output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /**
   * Closes the input and waits for the program's exit status; a program
   * still running after `timeoutMs` (a test that failed half-way) is killed.
   */
  async finish(timeoutMs = 5_000): Promise<number> {
    await this.#writer.close().catch(() => {});
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), timeoutMs);
    const status = await this.#child.status;
    clearTimeout(timer);
    await this.#reading;
    await this.#child.stderr.cancel();
    return status.code;
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of this.#child.stdout) {
      this.#output += decoder.decode(chunk, { stream: true });
    }
  }
}

/** main.ts with its monitor on the terminal: quiet boot, virtual clock. */
const KERNELSIM = `${Deno.execPath()} run --quiet --allow-read ${MAIN} --clock virtual --quiet`;

/**
 * Runs `command` on a pseudo-terminal and lets `drive` type into it; the
 * session is finished either way (a program still running because `drive`
 * failed half-way is killed).
 *
 * @returns The program's exit status and everything the terminal showed.
 */
async function onTerminal(
  command: string,
  drive: (session: TerminalSession) => Promise<void>,
): Promise<{ code: number; output: string }> {
  const session = new TerminalSession(command);
  let code: number;
  try {
    await drive(session);
  } finally {
    code = await session.finish();
  }
  return { code, output: session.output };
}

/** Asserts that `stty -a`, run after main.ts, shows the terminal back in cooked mode (icanon, echo). */
function assertCookedMode(output: string): void {
  const stty = output.slice(output.indexOf("speed"));
  assert(/(^|\s)icanon(\s|$)/.test(stty) && /(^|\s)echo(\s|$)/.test(stty), stty);
}

Deno.test({
  name: "main.ts on a terminal: prompt, kernel-side echo and backspace, Ctrl-A x quits",
  ignore: skipReason !== undefined,
  async fn() {
    const { code, output } = await onTerminal(KERNELSIM, async (session) => {
      // --quiet hides the boot log; a terminal on stdin starts the monitor by default.
      let seen = await session.waitFor("kernelsim> ");
      // A typo fixed with a backspace (DEL, as a terminal sends): "helo" -> "hel" -> "hello".
      await session.type("echo helo");
      seen = await session.waitFor("echo helo", seen);
      await session.type("\x7flo world\r");
      seen = await session.waitFor("kernelsim> ", seen);
      const exchange = session.output.slice(session.output.lastIndexOf("kernelsim> echo"));
      // The kernel echoed every key, erased with "\b \b", and ran the fixed line.
      assertEquals(exchange, "kernelsim> echo helo\b \blo world\nhello world\nkernelsim> ");
      // Backspace at the start of a line erases nothing; Ctrl-U drops a line.
      await session.type("\x7fbogus\x15uptime\r");
      seen = await session.waitFor("timer tick", seen);
      await session.waitFor("kernelsim> ", seen);
      // Ctrl-A Ctrl-A sends a literal Ctrl-A (ignored by the line editor); Ctrl-A x quits.
      await session.type("\x01\x01\x01x");
      await session.waitFor("kernelsim: terminated by Ctrl-A x", seen);
    });
    assertEquals(code, 0, output);
    assert(!output.includes("Uncaught"), output);
    assertStringIncludes(output, "bogus" + "\b \b".repeat(5) + "uptime\nup ");
  },
});

Deno.test({
  name: "main.ts on a terminal: halt ends the session with status 0 and restores the terminal",
  ignore: skipReason !== undefined,
  async fn() {
    // `stty -a` after main.ts shows whether the terminal is back in cooked mode (icanon, echo).
    const { code, output } = await onTerminal(`${KERNELSIM}; stty -a`, async (session) => {
      const seen = await session.waitFor("kernelsim> ");
      await session.type("halt\r");
      await session.waitFor("halt: halting the machine", seen);
      await session.waitFor("icanon", seen);
    });
    assertEquals(code, 0, output);
    assertCookedMode(output);
  },
});

Deno.test({
  name:
    "main.ts on a terminal: Tab completes, Up recalls, cursor keys edit, Ctrl-A h lists the keys",
  ignore: skipReason !== undefined,
  async fn() {
    const { code, output } = await onTerminal(KERNELSIM, async (session) => {
      let seen = await session.waitFor("kernelsim> ");
      // Tab completes the only command starting with "ec".
      await session.type("ec\t");
      seen = await session.waitFor("echo ", seen);
      await session.type("hi\r");
      seen = await session.waitFor("hi\nkernelsim> ", seen);
      // Up recalls "echo hi"; Left twice puts the cursor before "hi"; "x" goes there.
      await session.type("\x1b[A");
      seen = await session.waitFor("echo hi", seen);
      await session.type("\x1b[D\x1b[Dx\r");
      seen = await session.waitFor("xhi\nkernelsim> ", seen);
      // Home and End: a missing first letter and a last one added.
      await session.type("cho there\x1b[He\x1b[F!\r");
      seen = await session.waitFor("there!\nkernelsim> ", seen);
      // Tab on an ambiguous prefix lists the matches and reprints the line.
      await session.type("he\t");
      seen = await session.waitFor("help  heap\nkernelsim> he", seen);
      await session.type("\x15");
      // Ctrl-A h lists the keys and the kernel redraws the prompt and the line.
      await session.type("upt\x01h");
      seen = await session.waitFor("Ctrl-C         discard the line", seen);
      seen = await session.waitFor("^R\nkernelsim> upt", seen);
      await session.type("ime\r");
      seen = await session.waitFor("timer tick", seen);
      await session.type("\x01x");
      await session.waitFor("kernelsim: terminated by Ctrl-A x", seen);
    });
    assertEquals(code, 0, output);
    assert(!output.includes("Uncaught"), output);
    // What ran: the completed, recalled and edited lines.
    for (const line of ["\nhi\n", "\nxhi\n", "\nthere!\n"]) {
      assertStringIncludes(output, line);
    }
  },
});

for (const [signal, status] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const) {
  Deno.test({
    name: `main.ts on a terminal: ${signal} restores the terminal and exits with ${status}`,
    ignore: skipReason !== undefined,
    async fn() {
      // The inner shell prints its pid and becomes main.ts (exec), so the test
      // knows whom to signal; the outer shell then shows the status and the
      // terminal's mode (icanon and echo are back on in cooked mode).
      const command = `sh -c 'echo "pid $$"; exec ${KERNELSIM}'; echo "status $?"; stty -a`;
      const { output } = await onTerminal(command, async (session) => {
        await session.waitFor("kernelsim> ");
        const pid = Number(/pid (\d+)/.exec(session.output)?.[1]);
        assert(pid > 0, session.output);
        Deno.kill(pid, signal);
        await session.waitFor("icanon");
      });
      assertCookedMode(output);
      assertStringIncludes(output, `kernelsim: terminated by ${signal}\n`);
      assertStringIncludes(output, `status ${status}\n`);
    },
  });
}
