/**
 * The boundary between kernelsim and a user's module: every call into the
 * module's objects goes through a guard that records the call in the
 * {@linkcode UserCallStatus} (for the watchdog) and attributes what the call
 * throws.
 *
 * An error that is part of a contract goes through unchanged: a
 * `KernelError` (`OutOfMemory`, a `MappingError` ...), a monitor
 * `CommandError`, an `UnhandledPageFault` from a fault policy, a
 * `KernelPanic`, and a `UserCodeError` already attributed by an inner
 * guard. Anything else (a `TypeError`, a `RangeError` from a typed array, a
 * hardware fault the module caused) becomes a {@linkcode UserCodeError}
 * naming the module and the call.
 *
 * @module
 */

import { KernelError, KernelPanic, UnhandledPageFault, UserCodeError } from "../kernel/mod.ts";
import { CommandError } from "../kernel/monitor/mod.ts";
import { UserCallStatus } from "./user_call_status.ts";

/** Which errors a guarded call lets through unchanged. */
export type ErrorPolicy = "contract" | "attribute-all";

/** Guards the calls into one user module. */
export class UserCodeGuard {
  /** The module's name as the user gave it (its path). */
  readonly moduleName: string;
  /** Where calls in progress are recorded. */
  readonly status: UserCallStatus;

  /**
   * Creates a guard for one module.
   *
   * @param moduleName The module's path as given.
   * @param status The shared status (one for every module of a run).
   */
  constructor(moduleName: string, status: UserCallStatus) {
    this.moduleName = moduleName;
    this.status = status;
  }

  /**
   * Runs `body`, a call into the module, recorded as `call`.
   *
   * @param call What is called, e.g. `allocate()`.
   * @param body The call.
   * @param policy `contract` (default): contract errors pass; `attribute-all`:
   *   every error is attributed (a kernel entry point has no contract errors).
   * @returns What `body` returns.
   * @throws {UserCodeError} For what `body` throws, unless it passes.
   */
  run<T>(call: string, body: () => T, policy: ErrorPolicy = "contract"): T {
    return this.runIndexed(this.status.intern(`${this.moduleName}: ${call}`), call, body, policy);
  }

  /**
   * As {@linkcode UserCodeGuard.run}, with the call's name already interned
   * (the wrappers intern once, not per call).
   */
  runIndexed<T>(index: number, call: string, body: () => T, policy: ErrorPolicy = "contract"): T {
    const previous = this.status.enter(index);
    try {
      return body();
    } catch (error) {
      throw policy === "contract" && isContractError(error)
        ? error
        : error instanceof UserCodeError
        ? error
        : new UserCodeError(this.moduleName, call, error);
    } finally {
      this.status.leave(previous);
    }
  }

  /**
   * Wraps an object the module made (a provider, a device model) so that
   * every property read and method call on it is guarded. Methods run with
   * `this` set to the object itself, so its private fields work.
   *
   * @param target The module's object.
   * @param prefix Put before each member's name in the call names, e.g. `device.`.
   * @returns A proxy standing for `target`.
   */
  wrap<T extends object>(target: T, prefix = ""): T {
    const members = new Map<PropertyKey, GuardedMember>();
    return new Proxy(target, {
      get: (object, property) => {
        let member = members.get(property);
        if (member === undefined) {
          const name = `${prefix}${memberName(property)}`;
          member = {
            name,
            readIndex: this.status.intern(`${this.moduleName}: ${name}`),
            callIndex: this.status.intern(`${this.moduleName}: ${name}()`),
            original: undefined,
            wrapped: undefined,
          };
          members.set(property, member);
        }
        const { name, callIndex } = member;
        const value = this.runIndexed(
          member.readIndex,
          name,
          () => Reflect.get(object, property, object),
        );
        if (typeof value !== "function") return value;
        if (member.original !== value) {
          const method = value as (...args: unknown[]) => unknown;
          const call = `${name}()`;
          member.original = value;
          member.wrapped = (...args: unknown[]): unknown =>
            this.runIndexed(callIndex, call, () => method.apply(object, args));
        }
        return member.wrapped;
      },
    });
  }
}

/** A member of a wrapped object: its names and its wrapped method, made once. */
interface GuardedMember {
  readonly name: string;
  readonly readIndex: number;
  readonly callIndex: number;
  original: unknown;
  wrapped: unknown;
}

/** The names of the errors a contract allows a part to throw. */
const CONTRACT_ERROR_NAMES = new Set(["KernelError", "CommandError", "UnhandledPageFault"]);

/**
 * Whether an error is one a contract allows a part to throw. By class, or by
 * name for a module that imported its own copy of the SDK (another path to it).
 */
function isContractError(error: unknown): boolean {
  return error instanceof KernelError || error instanceof CommandError ||
    error instanceof UnhandledPageFault || error instanceof KernelPanic ||
    (error instanceof Error && CONTRACT_ERROR_NAMES.has(error.name));
}

/** A property as a member name: `allocate`, `[Symbol.dispose]`. */
function memberName(property: PropertyKey): string {
  if (typeof property !== "symbol") return String(property);
  return `[${property.description ?? "symbol"}]`;
}
