/**
 * What `main.ts` does, as a function of its arguments and host streams so
 * tests can run it in-process: parse options, build the PC, load the kernel
 * with the multiboot2 boot loader, boot it, run the kernel monitor on the
 * serial console if asked (`--console`, `--script`, or stdin is a terminal),
 * and print the report.
 *
 * Exit statuses: 0 booted (and the console ended: halt, end of input or
 * Ctrl-A x), 1 the kernel panicked or the boot loader refused, 2 bad command
 * line or unreadable input file.
 *
 * @module
 */

import denoConfig from "../deno.json" with { type: "json" };
import { createPc, installAcpiTables } from "../devices/mod.ts";
import {
  BootLoaderError,
  createClock,
  type FirmwareAcpiTables,
  hex,
  type LoadedKernel,
  loadMultiboot2,
  loadRawMbi,
  pcMemoryMap,
  PhysicalMemory,
  ramRangesFor,
  ramRangesForRawMbi,
} from "../hal/mod.ts";
import { buildKernelImage, Kernel, KernelPanic } from "../kernel/mod.ts";
import { startMonitor } from "../kernel/monitor/mod.ts";
import { collectHtmlReportData } from "./html_report_data.ts";
import { renderHtmlReport } from "./html_report.ts";
import { extendedReportSections } from "./report_sections.ts";
import { attachMachineTracer, createTraceOutput } from "./tracing.ts";
import { ByteWriter, type SyncWriter } from "./byte_writer.ts";
import {
  type ConsoleInput,
  ConsoleStalled,
  type ConsoleTerminal,
  runConsoleSession,
} from "./console_session.ts";
import { type CliOptions, HELP_TEXT, parseCliOptions, UsageError } from "./options.ts";

/** The project version, from deno.json. */
export const VERSION: string = denoConfig.version;

/** A file the CLI writes (a trace), as `Deno.FsFile` is. */
export interface WritableFile extends SyncWriter {
  /** Closes the file. */
  close(): void;
}

/** Host streams and file access the CLI uses. */
export interface CliHost {
  /** Standard output. */
  readonly stdout: SyncWriter;
  /** Standard error. */
  readonly stderr: SyncWriter;
  /** Standard input, for the console. */
  readonly stdin: CliStdin;
  /** Reads a whole file; throws a Deno error if it cannot. */
  readFile(path: string): Uint8Array;
  /** Creates or truncates a file for writing; throws a Deno error if it cannot. */
  createFile(path: string): WritableFile;
}

/** Standard input as the console uses it (`Deno.stdin` fits). */
export interface CliStdin extends ConsoleTerminal {
  /** Whether stdin is a terminal (then the console is on by default, in raw mode). */
  isTerminal(): boolean;
}

/** A failure the CLI reports as one line with an exit status. */
class CliFailure extends Error {
  readonly status: number;

  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

/** Runs the CLI; resolves to the process exit status. */
export async function runCli(args: readonly string[], host: CliHost): Promise<number> {
  const stderr = new ByteWriter(host.stderr);
  try {
    return await boot(parseCliOptions(args), host);
  } catch (error) {
    // Output piped into a program that stopped reading (`| head`): end quietly.
    if (error instanceof Deno.errors.BrokenPipe) return 0;
    const [message, status] = error instanceof UsageError
      ? [error.message, 2]
      : error instanceof CliFailure
      ? [error.message, error.status]
      : [`Internal error: ${error instanceof Error ? error.message : String(error)}`, 70];
    writeText(stderr, `kernelsim: ${message}\n`);
    return status;
  }
}

async function boot(options: CliOptions, host: CliHost): Promise<number> {
  if (options.help) {
    writeText(new ByteWriter(host.stdout), HELP_TEXT);
    return 0;
  }
  if (options.version) {
    writeText(new ByteWriter(host.stdout), `kernelsim ${VERSION}\n`);
    return 0;
  }
  const kernelImage = buildKernelImage();
  const script = options.scriptPath === undefined ? undefined : readInput(host, options.scriptPath);
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
  const consoleStream = options.report === "json" ? host.stderr : host.stdout;
  // --quiet drops the boot log; the monitor's console is shown even then.
  let console = new ByteWriter(options.quiet ? undefined : consoleStream);
  const clock = createClock(options.clock);
  const pc = createPc(memory, clock, { serialSink: (byte) => console.writeByte(byte) });
  const acpi = installAcpiTables(pc, memory, memoryMap); // the firmware's tables, in the ACPI area
  if (options.dumpAcpiDir !== undefined) return dumpAcpi(host, options.dumpAcpiDir, acpi);
  const loaded: LoadedKernel = hostGuard(() =>
    mbiBytes === undefined
      ? loadMultiboot2(memory, kernelImage, {
        memoryMap,
        loaderVersion: VERSION,
        cmdline: options.cmdline,
        modules,
        rsdp: acpi?.rsdp,
      })
      : loadRawMbi(memory, mbiBytes, { mbiAddress: options.mbiAddress, kernelImage })
  );
  const traceFile = options.traceFilePath === undefined
    ? undefined
    : createOutput(host, options.traceFilePath);
  const trace = options.traceMask === 0 ? undefined : createTraceOutput(
    options.traceMask,
    traceFile ?? host.stderr,
    () => clock.nowNs(),
    // Sharing a stream with the serial console: write each line at once so they interleave.
    traceFile === undefined && consoleStream === host.stderr ? 0 : undefined,
  );
  attachMachineTracer(pc, trace?.tracer);
  try {
    const kernel = Kernel.boot(pc.machine, loaded.magic, loaded.mbiAddress, {
      version: VERSION,
      selftest: options.selftest,
      debug: options.debug,
      tracer: trace?.tracer,
      apic: !options.noApic,
    });
    console.flush();
    const inputs = consoleInputs(options, script, host.stdin);
    if (inputs.length > 0) {
      // The kernel's main loop from here on: the monitor, fed by the console session.
      console = new ByteWriter(consoleStream);
      const monitor = startMonitor(kernel);
      const end = await runConsoleSession({
        pc,
        monitor,
        flushOutput: () => {
          trace?.flush();
          console.flush();
        },
        notice: (text) => writeText(new ByteWriter(host.stderr), `${text}\n`),
        inputs,
      });
      // The last prompt is still open: end its line before the shell's prompt.
      if (end === "end-of-input") console.writeByte(0x0a);
    }
    console.flush();
    writeReport(options, host, kernel);
    return 0;
  } catch (error) {
    console.flush();
    if (error instanceof KernelPanic) {
      // The panic line is on the serial console; repeat it where a quiet or
      // report-reading user still sees it.
      if (options.quiet) writeText(new ByteWriter(host.stderr), `${error.message}\n`);
      return 1;
    }
    if (error instanceof ConsoleStalled) throw new CliFailure(error.message, 1);
    throw error;
  } finally {
    trace?.flush();
    traceFile?.close();
  }
}

/**
 * The kernel's report with the CLI's extended sections: frames, heap, UART and
 * interrupt counters, and the page-table scan folded into `paging` (whose
 * kernel fields — directMapBase, pageTableFrames, tlb, pageFaults — stay).
 */
function fullReport(kernel: Kernel): object {
  const base = kernel.report();
  const extra = extendedReportSections(kernel);
  const scan = extra.paging.isEnabled ? extra.paging : undefined;
  const { tableFrames: _sameAsPageTableFrames, ...scanFields } = scan ?? { tableFrames: 0 };
  return {
    ...base,
    ...extra,
    paging: {
      ...scanFields,
      ...base.paging,
      tlb: { ...scan?.tlb, ...base.paging.tlb },
    },
  };
}

/** Prints `--report json` on stdout or writes `--report html FILE`. */
function writeReport(options: CliOptions, host: CliHost, kernel: Kernel): void {
  if (options.report === "json") {
    writeText(new ByteWriter(host.stdout), JSON.stringify(fullReport(kernel), null, 2) + "\n");
  } else if (options.report === "html" && options.reportPath !== undefined) {
    const file = createOutput(host, options.reportPath);
    try {
      writeText(new ByteWriter(file), renderHtmlReport(collectHtmlReportData(kernel)));
    } finally {
      file.close();
    }
  }
}

/**
 * Where the monitor's input comes from: the script, then stdin with
 * `--console` (or by default when stdin is a terminal). Piped stdin is used
 * only with `--console`, so that piping into a plain boot changes nothing.
 */
function consoleInputs(
  options: CliOptions,
  script: Uint8Array | undefined,
  stdin: CliStdin,
): ConsoleInput[] {
  const inputs: ConsoleInput[] = [];
  if (script !== undefined) inputs.push({ kind: "bytes", bytes: script });
  const isTerminal = stdin.isTerminal();
  // A script alone runs and halts; --console adds stdin after it.
  const useStdin = options.console ?? (script === undefined && isTerminal);
  if (useStdin) {
    inputs.push(
      isTerminal ? { kind: "terminal", terminal: stdin } : { kind: "stream", stream: stdin },
    );
  }
  return inputs;
}

/** `--dump-acpi DIR`: writes each table as SIGNATURE.dat and lists them on stdout. */
function dumpAcpi(host: CliHost, dir: string, acpi: FirmwareAcpiTables | undefined): number {
  if (acpi === undefined) {
    throw new CliFailure("Cannot dump ACPI tables: the memory map has no ACPI region", 1);
  }
  const stdout = new ByteWriter(host.stdout);
  for (const table of acpi.tables) {
    const path = `${dir.replace(/\/+$/, "")}/${table.signature}.dat`;
    const file = createOutput(host, path);
    try {
      for (let offset = 0; offset < table.bytes.length;) {
        offset += file.writeSync(table.bytes.subarray(offset));
      }
    } finally {
      file.close();
    }
    writeText(stdout, `${path}: ${table.bytes.length} bytes at ${hex(table.address)}\n`);
  }
  return 0;
}

function readInput(host: CliHost, path: string): Uint8Array {
  try {
    return host.readFile(path);
  } catch (error) {
    throw new CliFailure(`Cannot read "${path}": ${fileErrorReason(error)}`, 2);
  }
}

function createOutput(host: CliHost, path: string): WritableFile {
  try {
    return host.createFile(path);
  } catch (error) {
    throw new CliFailure(`Cannot write "${path}": ${fileErrorReason(error)}`, 2);
  }
}

/** A file error in a few words: `no such file`, `permission denied` ... */
function fileErrorReason(error: unknown): string {
  return error instanceof Deno.errors.NotFound
    ? "no such file"
    : error instanceof Deno.errors.PermissionDenied
    ? "permission denied"
    : error instanceof Deno.errors.IsADirectory
    ? "is a directory"
    : error instanceof Error
    ? error.message
    : String(error);
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
