/**
 * What `main.ts` does, as a function of its arguments and host streams so
 * tests can run it in-process: parse options, build the PC, load the kernel
 * with the multiboot2 boot loader, boot it, run the kernel monitor on the
 * serial console if asked (`--console`, `--script`, or stdin is a terminal),
 * and print the report.
 *
 * Exit statuses: see {@linkcode ExitStatus}.
 *
 * @module
 */

import denoConfig from "../deno.json" with { type: "json" };
import {
  createPc,
  installAcpiTables,
  type SmpBoard,
  WORKER_EXIT_TIMEOUT_MS,
} from "../devices/mod.ts";
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
import {
  buildKernelImage,
  formatBytes,
  Kernel,
  KernelPanic,
  plural,
  UserCodeError,
} from "../kernel/mod.ts";
import { type MonitorHost, ramDumpChunks, startMonitor } from "../kernel/monitor/mod.ts";
import { type ModuleImporter, UserCallStatus, UserModuleError } from "../sdk/mod.ts";
import { loadUserModules, type UserModules } from "./user_modules.ts";
import { collectHtmlReportData } from "./html_report_data.ts";
import { renderHtmlReport } from "./html_report.ts";
import { extendedReportSections } from "./report_sections.ts";
import { attachMachineTracer, createTraceOutput } from "./tracing.ts";
import { ByteWriter, type SyncWriter } from "./byte_writer.ts";
import { CheckedWriter, OutputWriteError } from "./checked_writer.ts";
import { ConsoleOutput } from "./console_output.ts";
import {
  type ConsoleInput,
  ConsoleInputError,
  type ConsoleSessionEnd,
  type ConsoleSessionOptions,
  ConsoleStalled,
  type ConsoleTerminal,
  runConsoleSession,
} from "./console_session.ts";
import { ExitStatus, signalExitStatus, type TerminationSignal } from "./exit_status.ts";
import { InputFileError, type InputFileLimit } from "./input_file.ts";
import { OutputFileError, type TruncateWhen, type WritableFile } from "./output_file.ts";
import { describeOsError } from "./_os_error.ts";
import {
  type CliOptions,
  HELP_TEXT,
  MAX_MBI_BYTES,
  MAX_SCRIPT_BYTES,
  parseCliOptions,
  UsageError,
} from "./options.ts";

/**
 * The Worker every application processor runs (`--smp`); `deno compile`
 * includes it (scripts/compile.ts).
 */
const CPU_WORKER_URL = new URL("./cpu_worker.ts", import.meta.url);

/** The project version, from deno.json. */
export const VERSION: string = denoConfig.version;
/** Exit status when a monitor command or `expect` failed in a script or piped input. */
export const MONITOR_FAILURE_STATUS: number = ExitStatus.monitorFailure;

/** Host streams and file access the CLI uses. */
export interface CliHost {
  /** Standard output. */
  readonly stdout: SyncWriter;
  /** Standard error. */
  readonly stderr: SyncWriter;
  /** Standard input, for the console. */
  readonly stdin: CliStdin;
  /**
   * Reads a whole input file within `limit` (`readInputFile` does); throws
   * InputFileError, or a Deno error, if it cannot.
   */
  readFile(path: string, limit: InputFileLimit): Uint8Array;
  /**
   * Opens a file for writing, creating it (`OutputFile.open` does); throws
   * OutputFileError, or a Deno error, if it cannot.
   */
  createFile(path: string, truncate: TruncateWhen): WritableFile;
  /**
   * Calls `handler` when the process gets SIGINT, SIGTERM or SIGHUP, instead
   * of dying with the terminal in raw mode, until the returned function is
   * called. Without it, signals keep their default action.
   */
  onTerminationSignal?(handler: (signal: TerminationSignal) => void): () => void;
  /** Where calls into user modules are recorded, for a watchdog on another thread. */
  readonly userCalls?: UserCallStatus;
  /**
   * Imports a user's module (`--frames` ...): the entry point's `import()`.
   * Without it, options that load modules are refused.
   */
  readonly importModule?: ModuleImporter;
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
export async function runCli(args: readonly string[], rawHost: CliHost): Promise<number> {
  const host: CliHost = {
    ...rawHost,
    stdout: new CheckedWriter(rawHost.stdout, "standard output"),
    stderr: new CheckedWriter(rawHost.stderr, "standard error"),
  };
  try {
    return await boot(parseCliOptions(args), host);
  } catch (error) {
    // Output piped into a program that stopped reading (`| head`): end quietly.
    if (error instanceof OutputWriteError && error.cause instanceof Deno.errors.BrokenPipe) {
      return ExitStatus.ok;
    }
    const [message, status] = describeFailure(error);
    try {
      writeText(new ByteWriter(host.stderr), `kernelsim: ${message}\n`);
    } catch {
      // Standard error cannot be written either: the status is all that is left.
    }
    return status;
  }
}

/** A failure as its one line and exit status. */
function describeFailure(error: unknown): [string, number] {
  if (error instanceof UsageError) return [error.message, ExitStatus.badInput];
  if (error instanceof UserModuleError) return [error.message, ExitStatus.badInput];
  if (error instanceof CliFailure) return [error.message, error.status];
  if (error instanceof InputFileError) return [error.message, ExitStatus.badInput];
  if (error instanceof OutputFileError) return [error.message, ExitStatus.badInput];
  if (error instanceof OutputWriteError) return [error.message, ExitStatus.outputError];
  if (error instanceof ConsoleInputError) {
    return [`Cannot read standard input: ${error.message}`, ExitStatus.badInput];
  }
  const message = error instanceof Error ? error.message : String(error);
  return [`Internal error: ${message}`, ExitStatus.internalError];
}

async function boot(options: CliOptions, host: CliHost): Promise<number> {
  if (options.help) {
    writeText(new ByteWriter(host.stdout), HELP_TEXT);
    return ExitStatus.ok;
  }
  if (options.version) {
    writeText(new ByteWriter(host.stdout), `kernelsim ${VERSION}\n`);
    return ExitStatus.ok;
  }
  const kernelImage = buildKernelImage();
  const script = options.scriptPath === undefined
    ? undefined
    : readInput(host, options.scriptPath, {
      option: "--script",
      maxBytes: MAX_SCRIPT_BYTES,
      limitText: `${formatBytes(MAX_SCRIPT_BYTES)}, the limit for a script`,
      allowsPipe: true,
    });
  const mbiBytes = options.mbiPath === undefined ? undefined : readInput(host, options.mbiPath, {
    option: "--mbi",
    maxBytes: MAX_MBI_BYTES,
    limitText: `${formatBytes(MAX_MBI_BYTES)}, all that a 32-bit MBI address reaches`,
    allowsPipe: false,
  });
  const moduleLimit: InputFileLimit = {
    option: "--module",
    maxBytes: options.memoryBytes,
    limitText: `the machine's ${formatBytes(options.memoryBytes)} of RAM`,
    allowsPipe: false,
  };
  const modules = options.modules.map((module) => ({
    name: module.path,
    bytes: readInput(host, module.path, moduleLimit),
    string: module.string,
  }));
  // User modules load (and their factories are tried once) before any output exists.
  const userModules = await loadUserModules(
    options,
    host.userCalls ?? new UserCallStatus(),
    host.importModule ?? refuseModules,
  );
  // Outputs are opened before the boot: a path that cannot be written fails
  // now, not after it. The report first: opening it changes nothing yet.
  const reportFile = options.reportPath === undefined
    ? undefined
    : createOutput(host, options.reportPath, "at-first-write");
  let ramDumpFile: WritableFile | undefined;
  let traceFile: WritableFile | undefined;
  try {
    ramDumpFile = options.dumpRamPath === undefined
      ? undefined
      : createOutput(host, options.dumpRamPath, "at-first-write");
    traceFile = options.traceFilePath === undefined
      ? undefined
      : createOutput(host, options.traceFilePath, "at-open");
    return await bootMachine(options, host, {
      kernelImage,
      script,
      mbiBytes,
      modules,
      traceFile,
      reportFile,
      ramDumpFile,
      userModules,
    });
  } finally {
    traceFile?.close();
    ramDumpFile?.close();
    reportFile?.close();
  }
}

/** What {@linkcode bootMachine} works with: the inputs read and the outputs opened. */
interface BootFiles {
  readonly kernelImage: Uint8Array;
  readonly script: Uint8Array | undefined;
  readonly mbiBytes: Uint8Array | undefined;
  readonly modules: { name: string; bytes: Uint8Array; string: string }[];
  readonly traceFile: WritableFile | undefined;
  readonly reportFile: WritableFile | undefined;
  readonly ramDumpFile: WritableFile | undefined;
  readonly userModules: UserModules;
}

/**
 * Boots the machine and runs it; with several CPUs, stops every CPU and
 * ends their Workers before returning, whatever happened.
 */
async function bootMachine(options: CliOptions, host: CliHost, files: BootFiles): Promise<number> {
  const boards: SmpBoard[] = [];
  try {
    return await runMachine(options, host, files, (board) => boards.push(board));
  } finally {
    for (const board of boards) {
      for (let cpu = 1; cpu < board.cpuCount; cpu++) {
        const error = board.workerError(cpu);
        if (error !== undefined) {
          writeText(
            new ByteWriter(host.stderr),
            `kernelsim: CPU ${cpu}'s Worker failed: ${error}\n`,
          );
        }
      }
      const stuck = await board.shutdown();
      if (stuck.length > 0) {
        writeText(
          new ByteWriter(host.stderr),
          `kernelsim: CPUs ${stuck.join(", ")} did not stop within ` +
            `${WORKER_EXIT_TIMEOUT_MS / 1000} s and were terminated\n`,
        );
      }
    }
  }
}

async function runMachine(
  options: CliOptions,
  host: CliHost,
  files: BootFiles,
  powerOn: (board: SmpBoard) => void,
): Promise<number> {
  const { kernelImage, script, mbiBytes, modules, traceFile, userModules } = files;
  const memoryMap = pcMemoryMap(options.memoryBytes);
  const memory = hostGuard(() =>
    new PhysicalMemory(
      mbiBytes === undefined
        ? ramRangesFor(memoryMap)
        : ramRangesForRawMbi(mbiBytes, { mbiAddress: options.mbiAddress }),
    )
  );
  // With a JSON report on stdout, the serial console goes to stderr.
  const consoleStream = options.report === "json" ? host.stderr : host.stdout;
  // Trace lines on stderr (or --trace-file /dev/stdout) share the user's
  // terminal with the console: they go through ConsoleOutput, in event order.
  const traceStream = traceFile === undefined
    ? host.stderr
    : new CheckedWriter(traceFile, `"${options.traceFilePath}"`);
  const isTraceOnTerminal = options.traceMask !== 0 &&
    (traceFile === undefined || traceFile.isStandardStream === true);
  // --quiet drops the boot log; the monitor's console is shown even then.
  const console = new ConsoleOutput(
    options.quiet ? undefined : consoleStream,
    isTraceOnTerminal ? traceStream : undefined,
  );
  const clock = createClock(options.clock);
  const pc = userGuard(() =>
    createPc(memory, clock, {
      serialSink: (byte) => console.writeSerialByte(byte),
      devices: userModules.devices,
      smp: options.cpuCount > 1
        ? { cpuCount: options.cpuCount, cpuWorkerUrl: CPU_WORKER_URL }
        : undefined,
    })
  );
  if (pc.smp !== undefined) powerOn(pc.smp);
  // The firmware's ACPI tables, in the ACPI area (a raw MBI brings its own RAM layout: none).
  const acpi = mbiBytes === undefined ? installAcpiTables(pc, memory, memoryMap) : undefined;
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
      : loadRawMbi(memory, mbiBytes, { mbiAddress: options.mbiAddress })
  );
  const trace = options.traceMask === 0 ? undefined : createTraceOutput(
    options.traceMask,
    isTraceOnTerminal ? { kind: "console", console } : { kind: "file", stream: traceStream },
    () => clock.nowNs(),
  );
  attachMachineTracer(pc, trace?.tracer);
  // Writes out what is collected: the console (with the trace lines on its terminal) and a trace file.
  const flushOutput = () => {
    console.flush();
    trace?.flush();
  };
  const finishOutput = () => {
    console.finish();
    trace?.flush();
  };
  if (userModules.kernel !== undefined) {
    // The user's kernel runs until its entry point returns; the machine then stops.
    try {
      userModules.kernel.create(loaded.magic, loaded.mbiAddress, pc.machine);
    } catch (error) {
      if (error instanceof UserCodeError) {
        throw new CliFailure(error.message, ExitStatus.kernelFailure);
      }
      throw error;
    } finally {
      finishOutput();
      writeRamDump(options, files.ramDumpFile, memory);
    }
    return ExitStatus.ok;
  }
  try {
    const kernel = Kernel.boot(pc.machine, loaded.magic, loaded.mbiAddress, {
      version: VERSION,
      selftest: options.selftest,
      debug: options.debug,
      tracer: trace?.tracer,
      apic: !options.noApic,
    }, userModules.parts);
    flushOutput();
    const inputs = consoleInputs(options, script, host.stdin);
    if (inputs.length > 0) {
      // The kernel's main loop from here on: the monitor, fed by the console session.
      console.setSerialStream(consoleStream);
      const monitor = startMonitor(kernel, { host: monitorHost(host) });
      // While the console waits, the board still serves the other CPUs' devices.
      void pc.smp?.serveWhileIdle();
      const end = await runSession(host, inputs, {
        pc,
        monitor,
        flushOutput,
        notice: (text) => writeText(new ByteWriter(host.stderr), `${text}\n`),
      });
      if (typeof end === "number") {
        finishOutput();
        return end;
      }
      // The last prompt is still open: end its line before the shell's prompt.
      if (end === "end-of-input") console.writeSerialByte(0x0a);
      const failure = monitor.firstFailure;
      const isInteractive = inputs.some((input) => input.kind === "terminal");
      if (failure !== undefined && !options.keepGoing && !isInteractive) {
        finishOutput();
        writeReport(options, host, kernel, files.reportFile);
        writeText(
          new ByteWriter(host.stderr),
          `kernelsim: ${plural(monitor.failedCommands, "monitor command")} failed, ` +
            `the first on line ${failure.lineNumber}: ${failure.line} ` +
            `(exit status ${ExitStatus.monitorFailure}; --keep-going exits 0)\n`,
        );
        return ExitStatus.monitorFailure;
      }
    }
    finishOutput();
    writeReport(options, host, kernel, files.reportFile);
    // A failed self-test is a failed run even though the kernel is up.
    return kernel.selftestResults?.some((result) => !result.passed)
      ? ExitStatus.selftestFailure
      : ExitStatus.ok;
  } catch (error) {
    if (error instanceof KernelPanic) {
      finishOutput();
      // The panic line is on the serial console; where that is not shown
      // (--quiet before the monitor), it goes to stderr, once.
      if (!console.isShown) writeText(new ByteWriter(host.stderr), `${error.message}\n`);
      return ExitStatus.kernelFailure;
    }
    try {
      finishOutput();
    } catch {
      // The output fails too: the error at hand says more.
    }
    if (error instanceof ConsoleStalled) {
      throw new CliFailure(error.message, ExitStatus.kernelFailure);
    }
    throw error;
  } finally {
    writeRamDump(options, files.ramDumpFile, memory);
  }
}

/** `--dump-ram`: all of physical memory at exit, after a panic too. */
function writeRamDump(
  options: CliOptions,
  ramDumpFile: WritableFile | undefined,
  memory: PhysicalMemory,
): void {
  if (ramDumpFile !== undefined) {
    const file = new CheckedWriter(ramDumpFile, `"${options.dumpRamPath}"`);
    writeChunks(file, ramDumpChunks(memory, 0, memory.endBytes));
  }
}

/** The monitor's host services: `dump` writes host files through `host.createFile`. */
function monitorHost(host: CliHost): MonitorHost {
  return {
    writeFile(path, chunks) {
      let file: WritableFile;
      try {
        file = host.createFile(path, "at-open");
      } catch (error) {
        throw new Error(
          error instanceof OutputFileError ? error.reason : describeOsError(error),
        );
      }
      try {
        writeChunks(file, chunks);
      } catch (error) {
        throw new Error(describeOsError(error));
      } finally {
        file.close();
      }
    },
  };
}

/** Writes every chunk to `file`, all of each. */
function writeChunks(file: SyncWriter, chunks: Iterable<Uint8Array>): void {
  for (const chunk of chunks) {
    for (let offset = 0; offset < chunk.length;) offset += file.writeSync(chunk.subarray(offset));
  }
}

/**
 * Runs the console session; resolves to how it ended, or to the exit status
 * after a termination signal (the terminal restored, a line on stderr).
 */
async function runSession(
  host: CliHost,
  inputs: ConsoleInput[],
  session: Omit<ConsoleSessionOptions, "inputs" | "interrupt">,
): Promise<ConsoleSessionEnd | number> {
  // Only a terminal needs restoring; otherwise signals keep their default action.
  const isTerminal = inputs.some((input) => input.kind === "terminal");
  let signal: TerminationSignal | undefined;
  let interrupt: Promise<void> | undefined;
  let untrap: (() => void) | undefined;
  if (isTerminal && host.onTerminationSignal !== undefined) {
    interrupt = new Promise<void>((resolve) => {
      untrap = host.onTerminationSignal?.((received) => {
        signal ??= received;
        resolve();
      });
    });
  }
  try {
    const end = await runConsoleSession({ ...session, inputs, interrupt });
    if (end !== "interrupted" || signal === undefined) return end;
    try {
      session.notice(`\nkernelsim: terminated by ${signal}`);
    } catch {
      // After a hangup the terminal may be gone: the status says it all.
    }
    return signalExitStatus(signal);
  } finally {
    untrap?.();
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

/** Prints `--report json` on stdout or writes `--report html FILE` (opened before the boot). */
function writeReport(
  options: CliOptions,
  host: CliHost,
  kernel: Kernel,
  reportFile: WritableFile | undefined,
): void {
  if (options.report === "json") {
    writeText(new ByteWriter(host.stdout), JSON.stringify(fullReport(kernel), null, 2) + "\n");
  } else if (reportFile !== undefined) {
    const file = new CheckedWriter(reportFile, `"${options.reportPath}"`);
    writeText(new ByteWriter(file), renderHtmlReport(collectHtmlReportData(kernel)));
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
    throw new CliFailure(
      "Cannot dump ACPI tables: the memory map has no ACPI region",
      ExitStatus.kernelFailure,
    );
  }
  const stdout = new ByteWriter(host.stdout);
  for (const table of acpi.tables) {
    const path = `${dir.replace(/\/+$/, "")}/${table.signature}.dat`;
    const file = createOutput(host, path, "at-open");
    try {
      writeChunks(new CheckedWriter(file, `"${path}"`), [table.bytes]);
    } finally {
      file.close();
    }
    writeText(stdout, `${path}: ${table.bytes.length} bytes at ${hex(table.address)}\n`);
  }
  return ExitStatus.ok;
}

function readInput(host: CliHost, path: string, limit: InputFileLimit): Uint8Array {
  try {
    return host.readFile(path, limit);
  } catch (error) {
    if (error instanceof InputFileError) throw error;
    throw new InputFileError(limit.option, path, describeOsError(error));
  }
}

function createOutput(host: CliHost, path: string, truncate: TruncateWhen): WritableFile {
  try {
    return host.createFile(path, truncate);
  } catch (error) {
    if (error instanceof OutputFileError) throw error;
    throw new OutputFileError(path, describeOsError(error));
  }
}

/** The importer of a host that cannot load user modules. */
function refuseModules(url: string): Promise<never> {
  return Promise.reject(new Error(`this host cannot load modules (${url}); run main.ts`));
}

/** Builds the PC with the user's devices: a device whose `attach` fails is an unusable module. */
function userGuard<T>(setup: () => T): T {
  try {
    return setup();
  } catch (error) {
    if (error instanceof UserCodeError) throw new CliFailure(error.message, ExitStatus.badInput);
    throw error;
  }
}

/** Runs host-side machine setup, turning its typed errors into one-line failures. */
function hostGuard<T>(setup: () => T): T {
  try {
    return setup();
  } catch (error) {
    if (error instanceof BootLoaderError) {
      throw new CliFailure(`Boot loader: ${error.message}`, ExitStatus.kernelFailure);
    }
    if (error instanceof RangeError) {
      throw new CliFailure(`Machine: ${error.message}`, ExitStatus.kernelFailure);
    }
    throw error;
  }
}

function writeText(writer: ByteWriter, text: string): void {
  for (const byte of new TextEncoder().encode(text)) writer.writeByte(byte);
  writer.flush();
}
