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
export { KernelError, type KernelErrorCode } from "../kernel/errors.ts";
export { KernelPanic } from "../kernel/panic.ts";
export type {
  DriverContext,
  KernelDriver,
  KernelPart,
  KernelParts,
} from "../kernel/kernel_parts.ts";
export {
  type Command,
  type CommandArgs,
  type CommandContext,
  CommandError,
} from "../kernel/monitor/command.ts";
export type { DeviceBoard, DevicePlugin } from "../devices/device_plugin.ts";
export * from "./device_module.ts";
export * from "./user_module.ts";
export * from "./user_code_guard.ts";
export * from "./user_call_status.ts";
export { describeThrown, UserCodeError } from "../kernel/user_code_error.ts";
