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
