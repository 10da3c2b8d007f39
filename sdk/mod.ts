/**
 * The kernelsim SDK: everything a module you write for kernelsim imports.
 *
 * - `--frames FILE`: default export a {@linkcode FrameProviderFactory}.
 * - `--pagetable FILE`: default export a {@linkcode PageMapperFactory}.
 * - `--heap FILE`: default export a {@linkcode KernelHeapFactory}.
 * - `--faults FILE`: default export a {@linkcode PageFaultPolicyFactory}.
 * - `--kernel FILE`: default export a {@linkcode KernelEntry}.
 * - `--device FILE`: default export a {@linkcode DeviceModule}.
 *
 * The contract of each is in `docs/sdk.md`; `docs/tutorial.md` walks
 * through writing a kernel and a frame allocator; `examples/` has one of
 * each. Import this file by its path from your module, e.g.
 * `import { type KernelEntry } from "../sdk/mod.ts";`.
 *
 * @module
 */

export * from "../hal/mod.ts";
export * from "../kernel/mm/mod.ts";
export {
  type DriverContext,
  type KernelDriver,
  KernelError,
  type KernelErrorCode,
  KernelPanic,
  type KernelPart,
  type KernelParts,
  UserCodeError,
} from "../kernel/mod.ts";
export {
  type Command,
  type CommandArgs,
  type CommandContext,
  CommandError,
} from "../kernel/monitor/mod.ts";
export type { DeviceBoard, DevicePlugin } from "../devices/mod.ts";
export * from "./device_module.ts";
export * from "./user_module.ts";
export * from "./user_code_guard.ts";
export * from "./user_call_status.ts";
export * from "./user_call_watchdog.ts";
