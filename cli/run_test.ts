import { assertEquals } from "../testing/mod.ts";
import { type CliHost, runCli } from "./run.ts";

function host(stdoutWrite: (bytes: Uint8Array) => number): CliHost & { errors: string[] } {
  const errors: string[] = [];
  const decoder = new TextDecoder();
  return {
    errors,
    stdout: { writeSync: stdoutWrite },
    stderr: {
      writeSync: (bytes) => {
        errors.push(decoder.decode(bytes));
        return bytes.length;
      },
    },
    stdin: {
      isTerminal: () => false,
      setRaw: () => {},
      read: () => Promise.resolve(null),
    },
    readFile: () => {
      throw new Deno.errors.NotFound("no file");
    },
    createFile: () => {
      throw new Deno.errors.PermissionDenied("read-only");
    },
  };
}

Deno.test("runCli() ends quietly with status 0 when stdout is closed (| head)", async () => {
  const closed = host(() => {
    throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)");
  });
  assertEquals(await runCli(["--clock", "virtual"], closed), 0);
  assertEquals(closed.errors, []);
});

Deno.test("runCli() reports an unwritable --report html file in one line, status 2", async () => {
  const sink = host((bytes) => bytes.length);
  const status = await runCli(["--clock", "virtual", "--report", "html", "out.html"], sink);
  assertEquals(status, 2);
  assertEquals(sink.errors, ['kernelsim: Cannot write "out.html": permission denied\n']);
});

Deno.test("runCli() on a terminal restores it and returns 128+signal when a signal arrives", async () => {
  for (const [signal, status] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const) {
    const rawModes: boolean[] = [];
    let raise: ((signal: "SIGINT" | "SIGTERM" | "SIGHUP") => void) | undefined;
    let isTrapped = false;
    const output: string[] = [];
    const decoder = new TextDecoder();
    const terminal = host((bytes) => {
      output.push(decoder.decode(bytes));
      // The prompt is up: the user's terminal gets the signal.
      if (output.join("").endsWith("kernelsim> ")) setTimeout(() => raise?.(signal), 0);
      return bytes.length;
    });
    const exitStatus = await runCli(["--clock", "virtual", "--quiet"], {
      ...terminal,
      stdin: {
        isTerminal: () => true,
        setRaw: (mode) => rawModes.push(mode),
        read: () => new Promise<null>(() => {}), // the user types nothing
      },
      onTerminationSignal(handler) {
        raise = handler;
        isTrapped = true;
        return () => {
          isTrapped = false;
        };
      },
    });
    assertEquals(exitStatus, status);
    assertEquals(rawModes, [true, false], "raw mode on, then restored");
    assertEquals(isTrapped, false, "the handler is removed");
    assertEquals(terminal.errors.join(""), `\nkernelsim: terminated by ${signal}\n`);
  }
});
