/**
 * Loads the user modules the command line names (`--frames`, `--pagetable`,
 * `--heap`, `--faults`, `--kernel`, `--device`) into what `createPc` and
 * `Kernel.boot` take. Every module is guarded and shares one call status,
 * which the watchdog in `main.ts` reads.
 *
 * @module
 */

import type { DevicePlugin } from "../devices/mod.ts";
import type { KernelEntry } from "../hal/mod.ts";
import type { KernelDriver, KernelPart, KernelParts } from "../kernel/mod.ts";
import {
  loadDeviceModule,
  loadKernelModule,
  loadPartModule,
  type ModuleImporter,
  type UserCallStatus,
} from "../sdk/mod.ts";
import type { CliOptions } from "./options.ts";

/** The loaded modules. */
export interface UserModules {
  /** Replacement parts and drivers, for `Kernel.boot`. */
  readonly parts: KernelParts;
  /** Device models, for `createPc`. */
  readonly devices: readonly DevicePlugin[];
  /** A whole kernel, with `--kernel`. */
  readonly kernel?: KernelPart<KernelEntry>;
}

/**
 * Loads every module the options name, in command-line order of kinds.
 *
 * @param options The parsed command line.
 * @param status Where calls into the modules are recorded.
 * @param importModule How to import a module (the host's `import()`).
 * @returns The loaded modules (empty when none is named).
 * @throws {UserModuleError} For the first module that cannot be used.
 */
export async function loadUserModules(
  options: CliOptions,
  status: UserCallStatus,
  importModule: ModuleImporter,
): Promise<UserModules> {
  const load = { status, importModule };
  const { frames, pagetable, heap, faults } = options.parts;
  const devices: DevicePlugin[] = [];
  const drivers: KernelDriver[] = [];
  for (const path of options.devicePaths) {
    const loaded = await loadDeviceModule(path, load);
    devices.push(loaded.device);
    if (loaded.driver !== undefined) drivers.push(loaded.driver);
  }
  const parts: KernelParts = {
    frames: frames === undefined ? undefined : await loadPartModule("frames", frames, load),
    pageMapper: pagetable === undefined
      ? undefined
      : await loadPartModule("pagetable", pagetable, load),
    heap: heap === undefined ? undefined : await loadPartModule("heap", heap, load),
    pageFaults: faults === undefined ? undefined : await loadPartModule("faults", faults, load),
    drivers,
  };
  const kernel = options.kernelPath === undefined
    ? undefined
    : await loadKernelModule(options.kernelPath, load);
  return { parts, devices, kernel };
}
