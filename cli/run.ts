/**
 * What `main.ts` does, as a function of its arguments and host streams so
 * tests can run it in-process: parse options, build the PC, load the kernel
 * with the multiboot2 boot loader, boot it, and print the report.
 *
 * Exit statuses: 0 booted, 1 the kernel panicked or the boot loader refused,
 * 2 bad command line or unreadable input file.
 *
 * @module
 */

import denoConfig from "../deno.json" with { type: "json" };
import { createPc } from "../devices/mod.ts";
import {
  BootLoaderError,
  createClock,
  type LoadedKernel,
  loadMultiboot2,
  loadRawMbi,
  pcMemoryMap,
  PhysicalMemory,
  ramRangesFor,
  ramRangesForRawMbi,
} from "../hal/mod.ts";
import { buildKernelImage, Kernel, KernelPanic } from "../kernel/mod.ts";
import { ByteWriter, type SyncWriter } from "./byte_writer.ts";
import { type CliOptions, HELP_TEXT, parseCliOptions, UsageError } from "./options.ts";

/** The project version, from deno.json. */
export const VERSION: string = denoConfig.version;

/** Host streams and file access the CLI uses. */
export interface CliHost {
  /** Standard output. */
  readonly stdout: SyncWriter;
  /** Standard error. */
  readonly stderr: SyncWriter;
  /** Reads a whole file; throws a Deno error if it cannot. */
  readFile(path: string): Uint8Array;
}

/** A failure the CLI reports as one line with an exit status. */
class CliFailure extends Error {
  readonly status: number;

  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

/** Runs the CLI; returns the process exit status. */
export function runCli(args: readonly string[], host: CliHost): number {
  const stderr = new ByteWriter(host.stderr);
  try {
    return boot(parseCliOptions(args), host);
  } catch (error) {
    const [message, status] = error instanceof UsageError
      ? [error.message, 2]
      : error instanceof CliFailure
      ? [error.message, error.status]
      : [`Internal error: ${error instanceof Error ? error.message : String(error)}`, 70];
    writeText(stderr, `kernelsim: ${message}\n`);
    return status;
  }
}

function boot(options: CliOptions, host: CliHost): number {
  if (options.help) {
    writeText(new ByteWriter(host.stdout), HELP_TEXT);
    return 0;
  }
  if (options.version) {
    writeText(new ByteWriter(host.stdout), `kernelsim ${VERSION}\n`);
    return 0;
  }
  const kernelImage = buildKernelImage();
  const mbiBytes = options.mbiPath === undefined ? undefined : readInput(host, options.mbiPath);
  const modules = options.modules.map((module) => ({
    name: module.path,
    bytes: readInput(host, module.path),
    string: module.string,
  }));
  const memoryMap = pcMemoryMap(options.memoryBytes);
  const memory = hostGuard(() =>
    new PhysicalMemory(
      mbiBytes === undefined ? ramRangesFor(memoryMap) : ramRangesForRawMbi(mbiBytes, {
        mbiAddress: options.mbiAddress,
        kernelImageSizeBytes: kernelImage.length,
      }),
    )
  );
  // With a JSON report on stdout, the serial console goes to stderr.
  const console = new ByteWriter(
    options.quiet ? undefined : options.report === "json" ? host.stderr : host.stdout,
  );
  const clock = createClock(options.clock);
  const pc = createPc(memory, clock, { serialSink: (byte) => console.writeByte(byte) });
  const loaded: LoadedKernel = hostGuard(() =>
    mbiBytes === undefined
      ? loadMultiboot2(memory, kernelImage, {
        memoryMap,
        loaderVersion: VERSION,
        cmdline: options.cmdline,
        modules,
      })
      : loadRawMbi(memory, mbiBytes, { mbiAddress: options.mbiAddress, kernelImage })
  );
  let kernel: Kernel;
  try {
    kernel = Kernel.boot(pc.machine, loaded.magic, loaded.mbiAddress, {
      version: VERSION,
      selftest: options.selftest,
      debug: options.debug,
    });
  } catch (error) {
    console.flush();
    if (error instanceof KernelPanic) {
      // The panic line is on the serial console; repeat it where a quiet or
      // report-reading user still sees it.
      if (options.quiet) writeText(new ByteWriter(host.stderr), `${error.message}\n`);
      return 1;
    }
    throw error;
  }
  console.flush();
  if (options.report === "json") {
    writeText(new ByteWriter(host.stdout), JSON.stringify(kernel.report(), null, 2) + "\n");
  }
  return 0;
}

function readInput(host: CliHost, path: string): Uint8Array {
  try {
    return host.readFile(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : error instanceof Deno.errors.IsADirectory
      ? "is a directory"
      : error instanceof Error
      ? error.message
      : String(error);
    throw new CliFailure(`Cannot read "${path}": ${reason}`, 2);
  }
}

/** Runs host-side machine setup, turning its typed errors into one-line failures. */
function hostGuard<T>(setup: () => T): T {
  try {
    return setup();
  } catch (error) {
    if (error instanceof BootLoaderError) {
      throw new CliFailure(`Boot loader: ${error.message}`, 1);
    }
    if (error instanceof RangeError) throw new CliFailure(`Machine: ${error.message}`, 1);
    throw error;
  }
}

function writeText(writer: ByteWriter, text: string): void {
  for (const byte of new TextEncoder().encode(text)) writer.writeByte(byte);
  writer.flush();
}
