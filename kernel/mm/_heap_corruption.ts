/**
 * The error the kmem heap raises when a structure it keeps in RAM breaks an
 * invariant: a wrong magic number, a free list that points at a live object,
 * counters that do not add up. The kernel turns it into a panic.
 *
 * @module
 */

import { hex } from "../../hal/mod.ts";

/**
 * A broken kmem-heap invariant, found at physical address `address`. The
 * message names the function that found it and the reason, as xv6's
 * `panic("kfree: ...")`.
 */
export class HeapCorruption extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "HeapCorruption";
  /** Physical address of the structure found broken. */
  readonly address: number;

  /**
   * Creates the error.
   *
   * @param where The function that found the corruption, e.g. `kfree`.
   * @param address Physical address of the broken structure.
   * @param reason What is wrong, in sentence case without a full stop.
   */
  constructor(where: string, address: number, reason: string) {
    super(`${where}: ${reason} at physical address ${hex(address)}`);
    this.address = address;
  }
}
