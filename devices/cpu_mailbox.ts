/**
 * Device requests from CPUs on Workers to the board: port I/O, MMIO to the
 * shared devices (I/O APIC, HPET, extra devices) and EOI messages for the
 * I/O APICs. The devices live on the board's thread and nowhere else, and the
 * board serves one request at a time, so an access is never torn and never
 * lost, however many CPUs make one at once (docs/smp.md, "Device requests").
 *
 * One mailbox per CPU in a SharedArrayBuffer, 16 words each:
 *
 * ```
 * [0] state: 0 idle, 1 posted, 2 answered
 * [1] kind: 0 port in, 1 port out, 2 MMIO read, 3 MMIO write, 4 EOI
 * [2] address, low 32 bits (port, physical address, or the EOI's vector)
 * [3] address, high 32 bits
 * [4] width in bytes (1, 2 or 4)
 * [5] value written
 * [6] value read
 * [7] status: 0 done, 1 the device failed (its message in the text area)
 * [8] text length in bytes
 * text area: 256 bytes per CPU after the words of every mailbox
 * ```
 *
 * The CPU writes the request, sets the state to posted, rings the board's
 * doorbell and sleeps on the state word (`Atomics.wait`, bounded slices: it
 * stops at once when the machine halts every CPU); the board serves every
 * posted mailbox in CPU order, stores the answer and notifies.
 *
 * @module
 */

import type { AccessWidth } from "../hal/mod.ts";
import type { SmpControl } from "./smp_control.ts";
import { MAX_CPUS } from "./smp_control.ts";

/** What a device request asks for. */
export type MailboxRequestKind = "port-in" | "port-out" | "mmio-read" | "mmio-write" | "eoi";

/** Serves one device request on the board; throws if the device fails. */
export interface MailboxHandler {
  /** IN of `width` bytes from `port`. */
  portIn(port: number, width: AccessWidth): number;
  /** OUT of `value` to `port`. */
  portOut(port: number, value: number, width: AccessWidth): void;
  /** A read of the shared device at physical address `pa`. */
  mmioRead(pa: number, width: AccessWidth): number;
  /** A write to the shared device at physical address `pa`. */
  mmioWrite(pa: number, value: number, width: AccessWidth): void;
  /** An EOI message for level-triggered `vector`, for every I/O APIC. */
  endOfInterrupt(vector: number): void;
}

/** The CPU stopped because the machine halted every CPU (shutdown or a panic elsewhere). */
export class CpuHalted extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "CpuHalted";
}

/** A device request failed on the board, or the board never answered it. */
export class DeviceRequestError extends Error {
  /** The error class name, shown in messages. */
  override readonly name = "DeviceRequestError";
}

const MAILBOX_WORDS = 16;
const TEXT_BYTES = 256;
const M_STATE = 0;
const M_KIND = 1;
const M_ADDRESS_LO = 2;
const M_ADDRESS_HI = 3;
const M_WIDTH = 4;
const M_VALUE = 5;
const M_RESULT = 6;
const M_STATUS = 7;
const M_TEXT_LENGTH = 8;
const STATE_IDLE = 0;
const STATE_POSTED = 1;
const STATE_ANSWERED = 2;
const STATUS_FAILED = 1;
const KINDS: readonly MailboxRequestKind[] = [
  "port-in",
  "port-out",
  "mmio-read",
  "mmio-write",
  "eoi",
];
const TWO_POW_32 = 2 ** 32;
/** How long a CPU sleeps at a time while it waits for an answer, in ms. */
const ANSWER_SLICE_MS = 50;
/** How long a CPU waits for the board before it gives up, in ms. */
export const DEVICE_REQUEST_TIMEOUT_MS = 30_000;

/** The mailboxes of every CPU; see the module documentation. */
export class CpuMailboxes {
  /** The shared buffer: post it to every CPU Worker. */
  readonly buffer: SharedArrayBuffer;
  readonly #words: Int32Array;
  readonly #text: Uint8Array;
  readonly #control: SmpControl;
  readonly #encoder = new TextEncoder();
  readonly #decoder = new TextDecoder();
  /** Requests served, per CPU (on the board). */
  readonly served: Float64Array = new Float64Array(MAX_CPUS);

  /**
   * Creates the mailboxes of the machine `control` describes, or maps the
   * existing ones in `buffer` (a CPU Worker's view).
   */
  constructor(control: SmpControl, buffer?: SharedArrayBuffer) {
    const wordBytes = MAILBOX_WORDS * 4 * MAX_CPUS;
    this.buffer = buffer ?? new SharedArrayBuffer(wordBytes + TEXT_BYTES * MAX_CPUS);
    this.#words = new Int32Array(this.buffer, 0, MAILBOX_WORDS * MAX_CPUS);
    this.#text = new Uint8Array(this.buffer, wordBytes, TEXT_BYTES * MAX_CPUS);
    this.#control = control;
  }

  /**
   * Posts a request from CPU `cpu` and waits for the board's answer.
   *
   * @returns The value read (0 for a write or an EOI).
   * @throws {CpuHalted} If the machine halts every CPU meanwhile.
   * @throws {DeviceRequestError} If the device failed, or the board gave no
   *   answer within {@linkcode DEVICE_REQUEST_TIMEOUT_MS}.
   */
  request(
    cpu: number,
    kind: MailboxRequestKind,
    address: number,
    width: AccessWidth,
    value = 0,
  ): number {
    const words = this.#words;
    const base = cpu * MAILBOX_WORDS;
    words[base + M_KIND] = KINDS.indexOf(kind);
    words[base + M_ADDRESS_LO] = address % TWO_POW_32;
    words[base + M_ADDRESS_HI] = Math.floor(address / TWO_POW_32);
    words[base + M_WIDTH] = width;
    words[base + M_VALUE] = value;
    // The state store publishes the fields above (Atomics are sequentially consistent).
    Atomics.store(words, base + M_STATE, STATE_POSTED);
    this.#control.ringDoorbell();
    const startMs = performance.now();
    while (Atomics.load(words, base + M_STATE) !== STATE_ANSWERED) {
      if (this.#control.isHaltingAll) {
        Atomics.store(words, base + M_STATE, STATE_IDLE);
        throw new CpuHalted(`CPU ${cpu} stopped: the machine halted every CPU`);
      }
      if (performance.now() - startMs > DEVICE_REQUEST_TIMEOUT_MS) {
        throw new DeviceRequestError(
          `CPU ${cpu}: the board did not answer a ${kind} at 0x${address.toString(16)} ` +
            `within ${DEVICE_REQUEST_TIMEOUT_MS / 1000} s`,
        );
      }
      Atomics.wait(words, base + M_STATE, STATE_POSTED, ANSWER_SLICE_MS);
    }
    const result = words[base + M_RESULT] >>> 0;
    const failed = words[base + M_STATUS] === STATUS_FAILED;
    const message = failed ? this.#readText(cpu, words[base + M_TEXT_LENGTH]) : "";
    Atomics.store(words, base + M_STATE, STATE_IDLE);
    if (failed) throw new DeviceRequestError(message);
    return result;
  }

  /**
   * Serves every posted request, in CPU order (on the board).
   *
   * @returns How many requests were served.
   */
  serve(handler: MailboxHandler): number {
    const words = this.#words;
    let served = 0;
    for (let cpu = 0; cpu < this.#control.cpuCount; cpu++) {
      const base = cpu * MAILBOX_WORDS;
      if (Atomics.load(words, base + M_STATE) !== STATE_POSTED) continue;
      const kind = KINDS[words[base + M_KIND]];
      const address = (words[base + M_ADDRESS_LO] >>> 0) +
        (words[base + M_ADDRESS_HI] >>> 0) * TWO_POW_32;
      const width = words[base + M_WIDTH] as AccessWidth;
      const value = words[base + M_VALUE] >>> 0;
      let result = 0;
      let status = 0;
      try {
        result = serveOne(handler, kind, address, width, value);
      } catch (error) {
        status = STATUS_FAILED;
        const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        words[base + M_TEXT_LENGTH] = this.#writeText(cpu, message.split("\n")[0]);
      }
      words[base + M_RESULT] = result;
      words[base + M_STATUS] = status;
      Atomics.store(words, base + M_STATE, STATE_ANSWERED);
      Atomics.notify(words, base + M_STATE);
      this.served[cpu]++;
      served++;
    }
    return served;
  }

  #writeText(cpu: number, text: string): number {
    const area = this.#text.subarray(cpu * TEXT_BYTES, (cpu + 1) * TEXT_BYTES);
    return this.#encoder.encodeInto(text, area).written;
  }

  #readText(cpu: number, lengthBytes: number): string {
    // decode() refuses views of shared memory: copy the bytes out first.
    return this.#decoder.decode(this.#text.slice(cpu * TEXT_BYTES, cpu * TEXT_BYTES + lengthBytes));
  }
}

function serveOne(
  handler: MailboxHandler,
  kind: MailboxRequestKind,
  address: number,
  width: AccessWidth,
  value: number,
): number {
  switch (kind) {
    case "port-in":
      return handler.portIn(address, width);
    case "port-out":
      handler.portOut(address, value, width);
      return 0;
    case "mmio-read":
      return handler.mmioRead(address, width);
    case "mmio-write":
      handler.mmioWrite(address, value, width);
      return 0;
    case "eoi":
      handler.endOfInterrupt(address);
      return 0;
  }
}
