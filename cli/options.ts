/**
 * Command-line options of `main.ts`, parsed with `node:util` `parseArgs`
 * (bundled with Deno; `@std/cli` would be a one-file change here). Every bad
 * value becomes one {@linkcode UsageError} line naming the option, what was
 * given and what is accepted.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { CLOCK_KINDS, type ClockKind, parseTraceCategories, parseUnsigned } from "../hal/mod.ts";

/** A bad command line: printed as one line, exit status 2. */
export class UsageError extends Error {
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
  /** Boot the legacy way, 8259 and PIT, even when ACPI describes APICs (`--no-apic`). */
  readonly noApic: boolean;
  /** Write the firmware's ACPI tables to this directory and exit (`--dump-acpi DIR`). */
  readonly dumpAcpiDir?: string;
  /** Print the help text and exit. */
  readonly help: boolean;
  /** Print the version and exit. */
  readonly version: boolean;
}

/** Smallest accepted `--memory`: 16 MiB. */
export const MIN_MEMORY_BYTES = 16 * 2 ** 20;
/** Largest accepted `--memory`: 64 GiB. */
export const MAX_MEMORY_BYTES = 64 * 2 ** 30;
/** Default RAM size: 128 MiB, as QEMU's default. */
export const DEFAULT_MEMORY_BYTES = 128 * 2 ** 20;

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
      options: {
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
        "no-apic": { type: "boolean" },
        "dump-acpi": { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
      },
    });
  } catch (error) {
    throw new UsageError(describeParseError(error));
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
  if (values["dump-acpi"] === "") throw new UsageError("Option --dump-acpi needs a directory");
  if (values.mbi !== undefined && (values.module?.length ?? 0) > 0) {
    throw new UsageError("Options --mbi and --module cannot be combined: the MBI lists modules");
  }
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
    noApic: values["no-apic"] ?? false,
    dumpAcpiDir: values["dump-acpi"],
    help: values.help ?? false,
    version: values.version ?? false,
  };
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

/** A parseArgs token, as far as this module looks at one. */
type ArgToken =
  | { kind: "option"; name: string; value?: string; index: number }
  | { kind: "positional"; value: string; index: number }
  | { kind: "option-terminator"; index: number };

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

function describeParseError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const unknown = /Unknown option '([^']+)'/.exec(message);
  if (unknown) return `Unknown option ${unknown[1]}: see --help`;
  const missing = /Option '(?:-\w, )?(--[\w-]+) <value>' argument missing/.exec(message);
  if (missing) return `Option ${missing[1]} needs a value: see --help`;
  const bool = /Option '(?:-\w, )?(--[\w-]+)' does not take an argument/.exec(message);
  if (bool) return `Option ${bool[1]} takes no value`;
  return message.split("\n")[0];
}

/** The `--help` text: every option, one line each. */
export const HELP_TEXT = `kernelsim: boot a simulated x86-64 PC and its kernel

Usage: deno task boot [options]

Options:
  -m, --memory SIZE       RAM size, 16M..64G with K, M or G suffix (default 128M;
                          a bare number is MiB, as QEMU's -m)
      --cmdline TEXT      kernel command line passed in the multiboot2 info
      --module FILE[=STR] load FILE as a multiboot2 module with string STR
                          (repeatable; STR defaults to the file name)
      --mbi FILE          boot with a raw multiboot2 boot information structure
                          from FILE (e.g. captured from GRUB); RAM follows its map
      --mbi-addr ADDR     physical address for --mbi (8-byte aligned, default 0x10000)
      --report html FILE  write a self-contained page picturing physical memory
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
                          (with --console, go on with stdin afterwards)
      --no-apic           boot the legacy way: 8259 PIC and 8254 PIT, no I/O APIC
                          or local APIC timer (as Linux's noapic)
      --dump-acpi DIR     write each ACPI table the firmware built to DIR as
                          SIGNATURE.dat (raw bytes, as acpidump -b: RSDP, XSDT,
                          RSDT, FACP, DSDT, APIC, HPET) and exit
  -q, --quiet             do not print the serial log (the monitor still shows)
  -h, --help              print this help
  -V, --version           print the version
`;
