/**
 * Loads a user's module as the CLI and the grader do: imports it, checks its
 * default export, and returns it guarded (every call into it recorded for
 * the watchdog and its exceptions attributed, see `user_code_guard.ts`).
 *
 * A part's factory is also called once on a small scratch machine at load
 * time, so that a module whose factory returns the wrong shape is refused
 * with one line before anything boots. Every load failure is a
 * {@linkcode UserModuleError}; the CLI prints its message and exits 2.
 *
 * @module
 */

import type { DeviceBoard, DevicePlugin } from "../devices/mod.ts";
import type { KernelEntry } from "../hal/mod.ts";
import type { KernelDriver, KernelPart } from "../kernel/mod.ts";
import {
  FrameMetadata,
  type FrameProviderFactory,
  type KernelHeapFactory,
  type PageFaultPolicyFactory,
  type PageMapperFactory,
} from "../kernel/mm/mod.ts";
import { type Command, CommandError } from "../kernel/monitor/mod.ts";
import { KernelError } from "../kernel/mod.ts";
import { describeThrown, UserCodeError } from "../kernel/mod.ts";
import type { DeviceModule } from "./device_module.ts";
import { tryOnScratchMachine } from "./_scratch_machine.ts";
import { UserCallStatus } from "./user_call_status.ts";
import { UserCodeGuard } from "./user_code_guard.ts";

/** The replaceable parts, by the name of their CLI option. */
export type PartKind = "frames" | "pagetable" | "heap" | "faults";

/** Every part kind, in the order the CLI lists them. */
export const PART_KINDS: readonly PartKind[] = ["frames", "pagetable", "heap", "faults"];

/** The factory type of each part kind. */
export interface PartFactories {
  /** `--frames`. */
  readonly frames: FrameProviderFactory;
  /** `--pagetable`. */
  readonly pagetable: PageMapperFactory;
  /** `--heap`. */
  readonly heap: KernelHeapFactory;
  /** `--faults`. */
  readonly faults: PageFaultPolicyFactory;
}

/** A module that cannot be used: missing, not a module, or of the wrong shape. */
export class UserModuleError extends Error {
  /** Always `UserModuleError`. */
  override readonly name = "UserModuleError";
  /** The module's path as given. */
  readonly path: string;

  /**
   * Creates the error.
   *
   * @param path The module's path as given.
   * @param message One line, starting with the path.
   */
  constructor(path: string, message: string) {
    super(message);
    this.path = path;
  }
}

/**
 * Imports a module by its URL: `(url) => import(url)` in the program's entry
 * point. The loaders take it from their caller, so that the one dynamic
 * `import()` of user code sits where the host decides (the CLI's worker),
 * outside the published package.
 */
export type ModuleImporter = (url: string) => Promise<Record<string, unknown>>;

/** Options of the loaders. */
export interface LoadOptions {
  /** How to import the module (the caller's `import()`). */
  readonly importModule: ModuleImporter;
  /** Where calls into the module are recorded (default: a new status of its own). */
  readonly status?: UserCallStatus;
  /** The directory relative paths start from (default: the working directory). */
  readonly baseDir?: string;
}

/** A `--device` module, loaded and guarded. */
export interface LoadedDevice {
  /** The module's path as given. */
  readonly name: string;
  /** The device model, to pass to `createPc`. */
  readonly device: DevicePlugin;
  /** Its kernel driver, to pass to `Kernel.boot`, if it has one. */
  readonly driver?: KernelDriver;
}

/** What each part's default export is called in messages. */
const FACTORY_NAMES: Readonly<Record<PartKind, string>> = {
  frames: "FrameProviderFactory",
  pagetable: "PageMapperFactory",
  heap: "KernelHeapFactory",
  faults: "PageFaultPolicyFactory",
};

/** The methods each part's object must have. */
const REQUIRED_METHODS: Readonly<Record<PartKind, readonly (string | symbol)[]>> = {
  frames: [
    "allocate",
    "allocateSpecific",
    "allocateContiguous",
    "free",
    "freeContiguous",
    "stats",
    "stateOf",
    "metadataRanges",
  ],
  pagetable: ["map", "unmap", "protect", "translate", Symbol.dispose],
  heap: ["kmalloc", "kfree", "usableSize", "stats"],
  faults: [
    "handle",
    "attach",
    "detach",
    "declareLazy",
    "shareCopyOnWrite",
    "lazyRegions",
    Symbol.dispose,
  ],
};

/**
 * Loads a part's module (`--frames`, `--pagetable`, `--heap`, `--faults`).
 *
 * @param kind Which part.
 * @param path The module's path (relative to `options.baseDir`) or a `file:` URL.
 * @param options The importer, the shared call status and base directory.
 * @returns The part, named by `path`; its factory returns a guarded object
 *   and throws `KernelError` `InvalidPart` if the object lacks a member.
 * @throws {UserModuleError} If the module cannot be imported, its default
 *   export is not a function, or the factory fails or returns the wrong
 *   shape on a scratch machine.
 */
export async function loadPartModule<K extends PartKind>(
  kind: K,
  path: string,
  options: LoadOptions,
): Promise<KernelPart<PartFactories[K]>> {
  const guard = new UserCodeGuard(path, options.status ?? new UserCallStatus());
  const exports = await importModule(path, guard, options);
  const factory = exports.default;
  if (typeof factory !== "function") {
    throw new UserModuleError(
      path,
      `${path}: the default export must be a ${FACTORY_NAMES[kind]} (a function), ` +
        `found ${describeValue(factory)}`,
    );
  }
  const create = (env: Parameters<PartFactories[K]>[0]) => {
    const made = guard.run("factory", () => (factory as (env: unknown) => unknown)(env));
    return checkShape(kind, path, made, env, guard);
  };
  try {
    tryOnScratchMachine(kind, create as PartFactories[PartKind]);
  } catch (error) {
    throw new UserModuleError(path, `${describeLoadFailure(path, error)} (on a scratch machine)`);
  }
  return { name: path, create: create as unknown as PartFactories[K] };
}

/**
 * Loads a `--kernel` module: its default export is the kernel's entry point.
 *
 * @param path The module's path or a `file:` URL.
 * @param options The importer, the shared call status and base directory.
 * @returns The entry point, guarded: whatever it throws becomes a
 *   `UserCodeError` naming the module and `kernel entry`.
 * @throws {UserModuleError} If the module cannot be imported or its default
 *   export is not a function.
 */
export async function loadKernelModule(
  path: string,
  options: LoadOptions,
): Promise<KernelPart<KernelEntry>> {
  const guard = new UserCodeGuard(path, options.status ?? new UserCallStatus());
  const exports = await importModule(path, guard, options);
  const entry = exports.default;
  if (typeof entry !== "function") {
    throw new UserModuleError(
      path,
      `${path}: the default export must be a KernelEntry (magic, mbiAddress, hw) => void, ` +
        `found ${describeValue(entry)}`,
    );
  }
  const guarded: KernelEntry = (magic, mbiAddress, hw) =>
    guard.run("kernel entry", () => entry(magic, mbiAddress, hw), "attribute-all");
  return { name: path, create: guarded };
}

/**
 * Loads a `--device` module: a device model and optionally its driver.
 *
 * @param path The module's path or a `file:` URL.
 * @param options The importer, the shared call status and base directory.
 * @returns The device plugin and driver, guarded (the device objects it
 *   claims ports for are guarded too).
 * @throws {UserModuleError} If the module cannot be imported or its default
 *   export is not a {@linkcode DeviceModule}.
 */
export async function loadDeviceModule(
  path: string,
  options: LoadOptions,
): Promise<LoadedDevice> {
  const guard = new UserCodeGuard(path, options.status ?? new UserCallStatus());
  const exports = await importModule(path, guard, options);
  const module = checkDeviceModule(path, exports.default);
  const device: DevicePlugin = {
    name: module.device.name,
    attach: (board) =>
      guard.run("device.attach()", () => module.device.attach(guardBoard(board, guard))),
  };
  const driver = module.driver;
  if (driver === undefined) return { name: path, device };
  return {
    name: path,
    device,
    driver: {
      name: driver.name,
      init: driver.init === undefined
        ? undefined
        : (context) => guard.run("driver.init()", () => driver.init?.(context)),
      commands: (driver.commands ?? []).map((command): Command => ({
        ...command,
        run: (args, context) =>
          guard.run(`command ${command.name}`, () => command.run(args, context)),
      })),
    },
  };
}

/** Imports the module, turning every failure into one line. */
async function importModule(
  path: string,
  guard: UserCodeGuard,
  { importModule: importer, baseDir }: LoadOptions,
): Promise<Record<string, unknown>> {
  if (path === "") throw new UserModuleError(path, "A module path is empty");
  let url: URL;
  try {
    url = path.startsWith("file:") ? new URL(path) : new URL(path, baseUrl(baseDir));
  } catch {
    throw new UserModuleError(path, `${path}: not a file path`);
  }
  if (url.protocol !== "file:") {
    throw new UserModuleError(path, `${path}: only local files can be loaded`);
  }
  try {
    const info = Deno.statSync(url);
    if (!info.isFile) throw new UserModuleError(path, `Cannot load ${path}: not a file`);
  } catch (error) {
    if (error instanceof UserModuleError) throw error;
    throw new UserModuleError(
      path,
      `Cannot load ${path}: ${
        error instanceof Deno.errors.NotFound ? "no such file" : describeThrown(error)
      }`,
    );
  }
  try {
    // The module's top level is user code: recorded for the watchdog like a call.
    const previous = guard.status.enter(guard.status.intern(`${path}: top level`));
    try {
      return await importer(url.href);
    } finally {
      guard.status.leave(previous);
    }
  } catch (error) {
    throw new UserModuleError(path, `Cannot load ${path}: ${describeImportError(error)}`);
  }
}

/** The file URL of the directory relative paths start from, ending in `/`. */
function baseUrl(baseDir: string | undefined): URL {
  const dir = baseDir ?? Deno.cwd();
  const withSlash = dir.endsWith("/") ? dir : `${dir}/`;
  return new URL(`file://${withSlash.startsWith("/") ? "" : "/"}${encodeURI(withSlash)}`);
}

/** Checks the object a factory made and wraps it in the guard. */
function checkShape(
  kind: PartKind,
  path: string,
  made: unknown,
  env: unknown,
  guard: UserCodeGuard,
): object {
  const fail = (what: string): never => {
    throw new KernelError("InvalidPart", `${path}: the factory returned ${what}`);
  };
  if (typeof made !== "object" || made === null) return fail(describeValue(made));
  const part = guard.wrap(made as Record<string | symbol, unknown>);
  for (const method of REQUIRED_METHODS[kind]) {
    if (typeof part[method] !== "function") {
      fail(`an object without ${typeof method === "symbol" ? "[Symbol.dispose]" : method}()`);
    }
  }
  const given = env as Record<string, unknown>;
  if (kind === "frames") {
    if (part.memory !== given.memory) fail("an object whose memory is not env.memory");
    if (!isFrameMetadata(part.metadata)) {
      fail("an object whose metadata is not a FrameMetadata (see createFrameMetadata)");
    }
  } else if (kind === "pagetable" && typeof part.pml4Addr !== "number") {
    fail("an object without a numeric pml4Addr");
  } else if (kind === "heap" && part.directMapOffset !== given.directMapOffset) {
    fail("an object whose directMapOffset is not env.directMapOffset");
  } else if (kind === "faults" && (typeof part.counts !== "object" || part.counts === null)) {
    fail("an object without counts");
  }
  return part;
}

/**
 * Whether `value` is a FrameMetadata: by class, or by its members when the
 * module reached the SDK by another path (a symbolic link, a second copy).
 */
function isFrameMetadata(value: unknown): boolean {
  if (value instanceof FrameMetadata) return true;
  const candidate = value as Record<string, unknown> | null;
  return typeof candidate === "object" && candidate !== null &&
    typeof candidate.base === "number" && typeof candidate.frameCount === "number" &&
    ["refcount", "acquireUnused", "retain", "release", "fill", "heldFrames", "recordSite"].every(
      (method) => typeof candidate[method] === "function",
    );
}

/** Checks a `--device` module's default export. */
function checkDeviceModule(path: string, value: unknown): DeviceModule {
  const fail = (what: string): never => {
    throw new UserModuleError(path, `${path}: the default export ${what}`);
  };
  if (typeof value !== "object" || value === null) {
    return fail(`must be a DeviceModule { device, driver? }, found ${describeValue(value)}`);
  }
  const module = value as Record<string, unknown>;
  const device = module.device as Record<string, unknown> | undefined;
  if (typeof device !== "object" || device === null) fail("has no device");
  if (typeof device?.name !== "string" || device.name === "") fail("has a device without a name");
  if (typeof device?.attach !== "function") fail("has a device without attach(board)");
  const driver = module.driver as Record<string, unknown> | undefined;
  if (driver !== undefined) {
    if (typeof driver !== "object" || driver === null) fail("has a driver that is not an object");
    if (typeof driver.name !== "string" || driver.name === "") fail("has a driver without a name");
    if (driver.init !== undefined && typeof driver.init !== "function") {
      fail("has a driver whose init is not a function");
    }
    const commands = driver.commands;
    if (commands !== undefined && !Array.isArray(commands)) {
      fail("has a driver whose commands are not an array");
    }
    for (const command of (commands ?? []) as Record<string, unknown>[]) {
      checkCommand(command, fail);
    }
  }
  return value as DeviceModule;
}

/** Checks one monitor command of a driver. */
function checkCommand(command: Record<string, unknown>, fail: (what: string) => never): void {
  if (typeof command !== "object" || command === null) fail("has a command that is not an object");
  const name = command.name;
  if (typeof name !== "string" || !/^[a-z][a-z0-9_-]*$/.test(name)) {
    const shown = typeof name === "string" ? JSON.stringify(name) : describeValue(name);
    fail(`has a command named ${shown}: use lower-case letters, digits, - and _`);
  }
  const arity = command.arity;
  if (
    typeof command.usage !== "string" || typeof command.summary !== "string" ||
    typeof command.run !== "function" || !Array.isArray(arity) || arity.length !== 2 ||
    !arity.every((n) => typeof n === "number" && n >= 0)
  ) {
    fail(`has a command "${String(name)}" without usage, summary, arity [min, max] and run`);
  }
}

/** The board a user's device sees: the objects it hands over are guarded. */
function guardBoard(board: DeviceBoard, guard: UserCodeGuard): DeviceBoard {
  return {
    claimPorts: (base, count, device) => board.claimPorts(base, count, guard.wrap(device)),
    claimMmio: (base, sizeBytes, device) => board.claimMmio(base, sizeBytes, guard.wrap(device)),
    addTimedDevice: (device) => board.addTimedDevice(guard.wrap(device)),
    interrupts: board.interrupts,
    clock: board.clock,
    memory: board.memory,
  };
}

/** A value in a few words, for messages. */
function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (typeof value === "function") return "a function";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}

/** An import failure in one line. */
function describeImportError(error: unknown): string {
  if (error instanceof Error) {
    const first = error.message.split("\n")[0];
    if (first.startsWith("SyntaxError: ")) return `syntax error: ${first.slice(13)}`;
    return error instanceof SyntaxError || error.name === "SyntaxError"
      ? `syntax error: ${first}`
      : first.startsWith("Module not found") || error instanceof TypeError
      ? first
      : `its top level threw ${describeThrown(error)}`;
  }
  return `its top level threw ${describeThrown(error)}`;
}

/** A failure of the scratch run in one line. */
function describeLoadFailure(path: string, error: unknown): string {
  if (error instanceof UserCodeError) return error.message;
  if (error instanceof KernelError && error.message.startsWith(`${path}:`)) return error.message;
  if (error instanceof CommandError) return `${path}: ${error.message}`;
  return `${path}: the factory threw ${describeThrown(error)}`;
}
