/**
 * Command-line options of `main.ts`, parsed by the rules of `node:util`
 * `parseArgs` (cli/_parse_args.ts, which says why not Node's own). Every bad
 * value becomes one {@linkcode UsageError} line naming the option, what was
 * given and what is accepted.
 *
 * @module
 */

import { type ArgToken, parseArgs } from "./_parse_args.ts";
import { CLOCK_KINDS, type ClockKind, parseTraceCategories, parseUnsigned } from "../hal/mod.ts";

/** A bad command line: printed as one line, exit status 2. */
export class UsageError extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "UsageError";
}

/** A module to load: a host file and the string the boot loader passes with it. */
export interface ModuleOption {
  /** Host path of the file to load. */
  readonly path: string;
  /** The module's command-line string (defaults to the file name). */
  readonly string: string;
}

/** Report formats `--report` accepts. */
export type ReportFormat = "none" | "json" | "html";

/** Everything the CLI can be asked to do. */
export interface CliOptions {
  /** RAM size in bytes. */
  readonly memoryBytes: number;
  /** Kernel command line passed in the MBI. */
  readonly cmdline: string;
  /** Modules, in load order. */
  readonly modules: readonly ModuleOption[];
  /** Host path of a raw boot information structure, if booting with one. */
  readonly mbiPath?: string;
  /** Physical address to place the raw MBI at. */
  readonly mbiAddress?: number;
  /** The report to produce after boot. */
  readonly report: ReportFormat;
  /** Output file for `--report html FILE`. */
  readonly reportPath?: string;
  /** Trace categories as a `TRACE_*` bit mask (0: tracing off). */
  readonly traceMask: number;
  /** File for trace lines (default: stderr). */
  readonly traceFilePath?: string;
  /** The clock driving the machine: the host's, or a deterministic virtual one. */
  readonly clock: ClockKind;
  /** Run the kernel self-tests at boot. */
  readonly selftest: boolean;
  /** Print nothing of the boot log (the report, errors and the monitor's console still print). */
  readonly quiet: boolean;
  /** Debug checks: poison freed frames, record allocation sites. */
  readonly debug: boolean;
  /**
   * Run the kernel monitor on the serial console after boot: true
   * (`--console`), false (`--no-console`), or undefined to decide from stdin
   * (a terminal: yes; a pipe, a file or nothing: no).
   */
  readonly console?: boolean;
  /** A file of monitor commands to run after boot (`--script FILE`). */
  readonly scriptPath?: string;
  /** Exit 0 even when a monitor command or `expect` failed (`--keep-going`). */
  readonly keepGoing: boolean;
  /** A host file to write all of physical memory to at exit (`--dump-ram FILE`). */
  readonly dumpRamPath?: string;
  /** Boot the legacy way, 8259 and PIT, even when ACPI describes APICs (`--no-apic`). */
  readonly noApic: boolean;
  /** Write the firmware's ACPI tables to this directory and exit (`--dump-acpi DIR`). */
  readonly dumpAcpiDir?: string;
  /** Print the help text and exit. */
  readonly help: boolean;
  /** Print the version and exit. */
  readonly version: boolean;
  /** Modules replacing stock parts of the kernel (`--frames FILE` ...), by part. */
  readonly parts: UserPartPaths;
  /** A module whose default export is a whole kernel's entry point (`--kernel FILE`). */
  readonly kernelPath?: string;
  /** Modules of extra devices (`--device FILE`, repeatable), in order. */
  readonly devicePaths: readonly string[];
  /** How long one call into a user module may run before it is stopped (`--user-timeout`). */
  readonly userTimeoutMs: number;
  /** How many CPUs the machine has (`--smp`, 1 to 16; default 1). */
  readonly cpuCount: number;
}

/** The `--frames`, `--pagetable`, `--heap` and `--faults` modules given. */
export interface UserPartPaths {
  /** `--frames FILE`: the physical frame allocator. */
  readonly frames?: string;
  /** `--pagetable FILE`: the page-table mapper. */
  readonly pagetable?: string;
  /** `--heap FILE`: the kmem heap. */
  readonly heap?: string;
  /** `--faults FILE`: the page-fault policy. */
  readonly faults?: string;
}

/** Default `--user-timeout`: 10 s. */
export const DEFAULT_USER_TIMEOUT_MS = 10_000;
/** Largest `--user-timeout`: one hour. */
const MAX_USER_TIMEOUT_MS = 3_600_000;
/** The options that load a user's module, as `--help` names them. */
const USER_MODULE_OPTIONS = ["frames", "pagetable", "heap", "faults", "kernel", "device"] as const;
/** Options of the stock kernel that a `--kernel` of one's own cannot use. */
const STOCK_KERNEL_OPTIONS = [
  "frames",
  "pagetable",
  "heap",
  "faults",
  "selftest",
  "report",
  "console",
  "script",
  "debug",
  "keep-going",
] as const;

/** Whether the options load any user module (then the CLI runs the machine under a watchdog). */
export function hasUserModules(options: CliOptions): boolean {
  return Object.values(options.parts).some((path) => path !== undefined) ||
    options.kernelPath !== undefined || options.devicePaths.length > 0;
}

/** Smallest accepted `--memory`: 16 MiB. */
export const MIN_MEMORY_BYTES = 16 * 2 ** 20;
/** Largest accepted `--memory`: 64 GiB. */
export const MAX_MEMORY_BYTES = 64 * 2 ** 30;
/** Default RAM size: 128 MiB, as QEMU's default. */
export const DEFAULT_MEMORY_BYTES = 128 * 2 ** 20;
/** Largest `--mbi` file: 4 GiB, all EBX (32 bits) can address. */
export const MAX_MBI_BYTES = 2 ** 32;
/** Largest `--smp`: the CPUs the board has room for. */
export const MAX_SMP_CPUS = 16;
/** Largest `--script` file: 1 MiB of monitor commands (a file or a named pipe). */
export const MAX_SCRIPT_BYTES = 2 ** 20;

const UNIT_BYTES: Record<string, number> = { "": 2 ** 20, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 };

/**
 * Parses a memory size such as `512M`, `1G`, `65536K` or `256` (MiB, as
 * QEMU's `-m`). Throws UsageError unless it is a whole number of 4 KiB frames
 * from 16 MiB to 64 GiB.
 */
export function parseMemorySize(text: string): number {
  const match = /^([0-9]+)\s*([kmg]?)(i?b)?$/i.exec(text.trim());
  if (!match) {
    throw new UsageError(
      `Invalid --memory "${text}": expected a size from 16M to 64G with a K, M or G suffix`,
    );
  }
  const bytes = Number(match[1]) * UNIT_BYTES[match[2].toLowerCase()];
  if (bytes < MIN_MEMORY_BYTES || bytes > MAX_MEMORY_BYTES) {
    throw new UsageError(`Invalid --memory "${text}": must be from 16M to 64G`);
  }
  if (bytes % 4096 !== 0) {
    throw new UsageError(`Invalid --memory "${text}": must be a whole number of 4 KiB frames`);
  }
  return bytes;
}

/** Parses `FILE[=string]` for `--module`. */
export function parseModuleOption(text: string): ModuleOption {
  const equals = text.indexOf("=");
  const path = equals < 0 ? text : text.slice(0, equals);
  if (path === "") throw new UsageError(`Invalid --module "${text}": expected FILE[=string]`);
  const string = equals < 0 ? path.split(/[\\/]/).pop() ?? path : text.slice(equals + 1);
  return { path, string };
}

/** Every option `main.ts` accepts, as `parseArgs` takes them; README and `--help` list each. */
export const CLI_OPTION_SPECS = {
  memory: { type: "string", short: "m" },
  cmdline: { type: "string" },
  module: { type: "string", multiple: true },
  mbi: { type: "string" },
  "mbi-addr": { type: "string" },
  report: { type: "string", multiple: true },
  clock: { type: "string" },
  trace: { type: "string" },
  "trace-file": { type: "string" },
  selftest: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  debug: { type: "boolean" },
  console: { type: "boolean" },
  "no-console": { type: "boolean" },
  script: { type: "string" },
  "keep-going": { type: "boolean" },
  "dump-ram": { type: "string" },
  frames: { type: "string" },
  pagetable: { type: "string" },
  heap: { type: "string" },
  faults: { type: "string" },
  kernel: { type: "string" },
  device: { type: "string", multiple: true },
  "user-timeout": { type: "string" },
  "no-apic": { type: "boolean" },
  "dump-acpi": { type: "string" },
  smp: { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

/**
 * Parses the command line; throws UsageError on any bad option or value. A
 * leading `--` is skipped: `deno task boot -- --memory 4G` passes it on.
 */
export function parseCliOptions(args: readonly string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: args[0] === "--" ? args.slice(1) : [...args],
      strict: true,
      allowPositionals: true,
      tokens: true,
      options: CLI_OPTION_SPECS,
    });
  } catch (error) {
    throw new UsageError(describeParseError(error, args));
  }
  const values = parsed.values;
  const [report, reportPath] = parseReport(values.report ?? [], reportFileArgument(parsed.tokens));
  if (values["trace-file"] !== undefined && values.trace === undefined) {
    throw new UsageError("Option --trace-file needs --trace CATEGORIES");
  }
  const mbiAddress = values["mbi-addr"] === undefined
    ? undefined
    : parseMbiAddress(values["mbi-addr"]);
  if (mbiAddress !== undefined && values.mbi === undefined) {
    throw new UsageError("Option --mbi-addr needs --mbi FILE");
  }
  if (values.console && values["no-console"]) {
    throw new UsageError("Options --console and --no-console cannot be combined");
  }
  if (values.script !== undefined && values["no-console"]) {
    throw new UsageError("Options --script and --no-console cannot be combined");
  }
  if (values.script === "") throw new UsageError("Option --script needs a file name");
  if (values["dump-ram"] === "") throw new UsageError("Option --dump-ram needs a file name");
  if (values["dump-acpi"] === "") throw new UsageError("Option --dump-acpi needs a directory");
  if (values.mbi !== undefined && (values.module?.length ?? 0) > 0) {
    throw new UsageError("Options --mbi and --module cannot be combined: the MBI lists modules");
  }
  if (values.mbi !== undefined && values.cmdline !== undefined) {
    throw new UsageError("Options --mbi and --cmdline cannot be combined: the MBI has the cmdline");
  }
  if (values.mbi !== undefined && values.memory !== undefined) {
    throw new UsageError(
      "Options --mbi and --memory cannot be combined: RAM follows the MBI's map",
    );
  }
  checkUserModuleOptions(values);
  const cpuCount = values.smp === undefined ? 1 : parseSmp(values.smp);
  if (cpuCount > 1) checkSmpOptions(values, cpuCount);
  return {
    memoryBytes: values.memory === undefined
      ? DEFAULT_MEMORY_BYTES
      : parseMemorySize(values.memory),
    cmdline: values.cmdline ?? "",
    modules: (values.module ?? []).map(parseModuleOption),
    mbiPath: values.mbi,
    mbiAddress,
    report,
    reportPath,
    clock: parseClock(values.clock ?? "host"),
    traceMask: values.trace === undefined ? 0 : parseTrace(values.trace),
    traceFilePath: values["trace-file"],
    selftest: values.selftest ?? false,
    quiet: values.quiet ?? false,
    debug: values.debug ?? false,
    console: values.console ? true : values["no-console"] ? false : undefined,
    scriptPath: values.script,
    keepGoing: values["keep-going"] ?? false,
    dumpRamPath: values["dump-ram"],
    noApic: values["no-apic"] ?? false,
    dumpAcpiDir: values["dump-acpi"],
    help: values.help ?? false,
    version: values.version ?? false,
    parts: {
      frames: values.frames,
      pagetable: values.pagetable,
      heap: values.heap,
      faults: values.faults,
    },
    kernelPath: values.kernel,
    devicePaths: values.device ?? [],
    userTimeoutMs: values["user-timeout"] === undefined
      ? DEFAULT_USER_TIMEOUT_MS
      : parseUserTimeout(values["user-timeout"]),
    cpuCount,
  };
}

function parseSmp(text: string): number {
  const count = Number(text);
  if (!/^[0-9]+$/.test(text.trim()) || count < 1 || count > MAX_SMP_CPUS) {
    throw new UsageError(`Invalid --smp "${text}": expected a CPU count from 1 to ${MAX_SMP_CPUS}`);
  }
  return count;
}

/** The options several CPUs cannot run with, each refused in one line. */
function checkSmpOptions(values: Record<string, unknown>, cpuCount: number): void {
  const smp = `--smp ${cpuCount}`;
  if (values.clock === "virtual") {
    throw new UsageError(
      `Options ${smp} and --clock virtual cannot be combined: CPUs on several threads run ` +
        "at the host's pace, so a virtual clock cannot keep them deterministic",
    );
  }
  const module = USER_MODULE_OPTIONS.find((name) => values[name] !== undefined);
  if (module !== undefined) {
    throw new UsageError(
      `Options ${smp} and --${module} cannot be combined: several CPUs run the stock kernel ` +
        "parts only",
    );
  }
  if (values["no-apic"]) {
    throw new UsageError(
      `Options ${smp} and --no-apic cannot be combined: CPUs are started and interrupted ` +
        "through the local APIC",
    );
  }
  if (values.mbi !== undefined) {
    throw new UsageError(
      `Options ${smp} and --mbi cannot be combined: the CPUs are found in the firmware's ` +
        "ACPI tables, which a raw MBI boots without",
    );
  }
}

/** Checks the options that load user modules: files named, and combinations that make sense. */
function checkUserModuleOptions(values: Record<string, unknown>): void {
  for (const name of USER_MODULE_OPTIONS) {
    const given = values[name];
    const paths = Array.isArray(given) ? given : given === undefined ? [] : [given];
    if (paths.some((path) => path === "")) throw new UsageError(`Option --${name} needs a file`);
  }
  if (values.kernel !== undefined) {
    const clash = STOCK_KERNEL_OPTIONS.find((name) => values[name] !== undefined);
    if (clash !== undefined) {
      throw new UsageError(
        `Options --kernel and --${clash} cannot be combined: --${clash} is for the stock kernel`,
      );
    }
  }
  if (
    values["user-timeout"] !== undefined &&
    USER_MODULE_OPTIONS.every((name) => values[name] === undefined)
  ) {
    throw new UsageError(
      "Option --user-timeout needs a module: --frames, --pagetable, --heap, --faults, " +
        "--kernel or --device",
    );
  }
}

function parseUserTimeout(text: string): number {
  const seconds = Number(text);
  const ms = Math.round(seconds * 1000);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text.trim()) || ms < 1 || ms > MAX_USER_TIMEOUT_MS) {
    throw new UsageError(
      `Invalid --user-timeout "${text}": expected seconds from 0.001 to 3600, e.g. 10 or 0.5`,
    );
  }
  return ms;
}

function parseClock(text: string): ClockKind {
  const kind = CLOCK_KINDS.find((k) => k === text);
  if (kind === undefined) {
    throw new UsageError(`Invalid --clock "${text}": expected ${CLOCK_KINDS.join(" or ")}`);
  }
  return kind;
}

function parseMbiAddress(text: string): number {
  let address: number;
  try {
    address = parseUnsigned(text, "--mbi-addr");
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (address % 8 !== 0) {
    throw new UsageError(`Invalid --mbi-addr "${text}": must be 8-byte aligned`);
  }
  if (address >= 2 ** 32) {
    throw new UsageError(`Invalid --mbi-addr "${text}": must be below 4 GiB (EBX is 32 bits)`);
  }
  return address;
}

function parseTrace(text: string): number {
  try {
    return parseTraceCategories(text);
  } catch (error) {
    throw new UsageError(`Invalid --trace "${text}": ${(error as Error).message}`);
  }
}

/**
 * The FILE of `--report html FILE`: the one positional argument allowed,
 * right after `--report html`. Any other positional is an error.
 */
function reportFileArgument(tokens: readonly ArgToken[]): string | undefined {
  let file: string | undefined;
  tokens.forEach((token, i) => {
    if (token.kind !== "positional") return;
    const previous = tokens[i - 1];
    if (previous?.kind === "option" && previous.name === "report" && previous.value === "html") {
      file = token.value;
      return;
    }
    throw new UsageError(`Unexpected argument "${token.value}": options start with --`);
  });
  return file;
}

function parseReport(
  values: readonly string[],
  htmlFile: string | undefined,
): [ReportFormat, string | undefined] {
  if (values.length === 0) return ["none", undefined];
  if (values.length > 1) throw new UsageError("Option --report may be given once");
  if (values[0] === "json") return ["json", undefined];
  if (values[0] === "html") {
    if (htmlFile === undefined || htmlFile === "") {
      throw new UsageError("Option --report html needs a file: --report html FILE");
    }
    return ["html", htmlFile];
  }
  throw new UsageError(`Invalid --report "${values[0]}": expected json or html FILE`);
}

function describeParseError(error: unknown, args: readonly string[]): string {
  const message = error instanceof Error ? error.message : String(error);
  const ambiguous = /Option '(-\w|--[\w-]+)' argument is ambiguous[^]*'(--[\w-]+)=-XYZ'/.exec(
    message,
  );
  if (ambiguous) return describeDashValue(ambiguous[1], ambiguous[2], args);
  const unknown = /Unknown option '([^']+)'/.exec(message);
  if (unknown) return `Unknown option ${unknown[1]}: see --help`;
  const missing = /Option '(?:-\w, )?(--[\w-]+) <value>' argument missing/.exec(message);
  if (missing) return `Option ${missing[1]} needs a value: see --help`;
  const bool = /Option '(?:-\w, )?(--[\w-]+)' does not take an argument/.exec(message);
  if (bool) return `Option ${bool[1]} takes no value`;
  return message.split("\n")[0];
}

/**
 * The message for an option whose value starts with `-`, which could as well
 * be the next option (`--cmdline -s`): how to pass it as the value.
 *
 * @param option The option as written (`-m` or `--memory`).
 * @param longOption Its long form.
 * @param args The command line, to find the value.
 */
function describeDashValue(option: string, longOption: string, args: readonly string[]): string {
  const at = args.indexOf(option);
  const value = at >= 0 ? args[at + 1] : undefined;
  if (value === undefined) {
    return `Option ${option} needs a value; to pass one that starts with "-", ` +
      `write ${longOption}=-VALUE`;
  }
  const shown = /^[\w@%+=:,./-]+$/.test(value) ? value : JSON.stringify(value);
  return `Option ${option} got "${value}", which starts with "-": ` +
    `write ${longOption}=${shown} to pass it as the value`;
}

/** The `--help` text: every option, one line each. */
export const HELP_TEXT = `kernelsim: boot a simulated x86-64 PC and its kernel

Usage: deno task boot [options]

Options:
  -m, --memory SIZE       RAM size, 16M..64G with K, M or G suffix (default 128M;
                          a bare number is MiB, as QEMU's -m)
      --cmdline TEXT      kernel command line passed in the multiboot2 info
      --module FILE[=STR] load FILE as a multiboot2 module with string STR
                          (repeatable; STR defaults to the file name; a regular
                          file no larger than RAM)
      --mbi FILE          boot with a raw multiboot2 boot information structure
                          from FILE (e.g. captured from GRUB); RAM follows its map
                          (a regular file of at most 4 GiB)
      --mbi-addr ADDR     physical address for --mbi (8-byte aligned, default 0x10000)
      --report html FILE  write a self-contained page picturing physical memory
                          (FILE is opened before the boot; /dev/stdout works)
      --trace CATS        stream events to stderr, one line each: mm, mmu, uart,
                          irq (comma-separated) or all
      --trace-file FILE   write the --trace lines to FILE instead
      --report json       print one JSON object describing the booted kernel on
                          stdout (the serial log then goes to stderr)
      --clock KIND        host (default) or virtual: a deterministic clock that
                          advances only with the machine
      --selftest          run the kernel self-tests at boot and report the result
      --debug             debug checks: poison freed frames, record allocation sites
      --console           after boot, run the kernel monitor on the serial console
                          (default when stdin is a terminal; with a pipe, its
                          lines are the commands and the machine halts at its end)
      --no-console        boot and exit even when stdin is a terminal
      --script FILE       after boot, run the monitor commands in FILE, then halt
                          (with --console, go on with stdin afterwards); FILE is
                          a regular file or a named pipe of at most 1 MiB
      --keep-going        exit 0 even if a monitor command or expect failed
                          (otherwise a script or piped input that had one exits 4)
      --dump-ram FILE     at exit (a panic included), write all of physical memory
                          to FILE: byte N is physical address N, holes as zeros
      --no-apic           boot the legacy way: 8259 PIC and 8254 PIT, no I/O APIC
                          or local APIC timer (as Linux's noapic)
      --dump-acpi DIR     write each ACPI table the firmware built to DIR as
                          SIGNATURE.dat (raw bytes, as acpidump -b: RSDP, XSDT,
                          RSDT, FACP, DSDT, APIC, HPET) and exit
      --smp N             N CPUs, 1..16 (default 1): each CPU after the first runs
                          on a Worker over the same RAM; needs the host clock
                          and the stock kernel parts (see docs/smp.md)
  -q, --quiet             do not print the serial log (the monitor still shows)
  -h, --help              print this help
  -V, --version           print the version

Your own kernel parts (see docs/sdk.md; each FILE is a TypeScript module):
      --frames FILE       use FILE's physical frame allocator (FrameProviderFactory)
      --pagetable FILE    use FILE's page-table mapper (PageMapperFactory)
      --heap FILE         use FILE's kmem heap (KernelHeapFactory)
      --faults FILE       use FILE's page-fault policy (PageFaultPolicyFactory)
      --kernel FILE       boot FILE's kernel (KernelEntry) instead of the stock one
      --device FILE       add FILE's device model, driver and monitor commands
                          (DeviceModule; repeatable)
      --user-timeout SECS stop a call into a module that runs longer (default 10)

A value that starts with "-" is written with "=": --cmdline="-s single".

Exit status:
  0    booted, and the monitor (if any) ended: halt, end of input, Ctrl-A x;
       a --kernel entry returned
  1    the kernel panicked, the boot loader refused the input, the kernel
       stopped reading its console, or a --kernel entry threw
  2    bad command line, or an input file, stdin or module that cannot be
       used; an output file that cannot be opened
  3    the kernel booted but a --selftest self-test failed
  4    a monitor command or expect failed in a script or piped input
  70   internal error (a bug in kernelsim)
  74   an output could not be written (e.g. a full disk)
  124  a call into a --frames/--pagetable/--heap/--faults/--kernel/--device
       module did not return within --user-timeout and was stopped
  129, 130, 143  SIGHUP, SIGINT, SIGTERM during the monitor (terminal restored)
`;
