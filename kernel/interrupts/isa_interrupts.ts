/**
 * ISA IRQ routing: where each legacy IRQ the kernel uses arrives and on
 * which vector, through the 8259 pair (legacy mode) or an I/O APIC (APIC
 * mode), and the handler wrapper that sends the end of interrupt.
 *
 * In APIC mode an IRQ takes the GSI, polarity and trigger of its MADT
 * interrupt source override, or, without one, GSI = IRQ, active high,
 * edge (the ISA bus defaults, docs/acpi.md). Its redirection entry sends
 * the vector to the bootstrap processor's APIC in physical mode; the EOI
 * goes to the local APIC (whose EOI message clears a level entry's Remote
 * IRR). In legacy mode the EOI goes to the 8259 (slave then master).
 *
 * @module
 */

import { hex, IRQ_LINE_COUNT } from "../../hal/mod.ts";
import type { MadtOverride } from "../acpi/mod.ts";
import type {
  IoApicDriver,
  IrqHandler,
  IsaIrqAttacher,
  LapicDriver,
  Pic8259Driver,
} from "../drivers/mod.ts";
import { KernelError } from "../errors.ts";
import { type InterruptVectors, ISA_IRQ_VECTOR_BASE } from "./interrupt_vectors.ts";

/** Where one ISA IRQ is routed. */
export interface IsaIrqRoute {
  /** The ISA IRQ. */
  readonly irq: number;
  /** What uses it (`COM1`, `timer`). */
  readonly name: string;
  /** The vector its handler runs on. */
  readonly vector: number;
  /** The controller it goes through. */
  readonly controller: "8259" | "I/O APIC";
  /** The GSI (APIC mode). */
  readonly gsi: number | undefined;
  /** The I/O APIC's ID and pin (APIC mode). */
  readonly ioApicId: number | undefined;
  /** The pin on that I/O APIC. */
  readonly pin: number | undefined;
  /** Edge or level. */
  readonly trigger: "edge" | "level";
  /** Active high or low. */
  readonly polarity: "high" | "low";
  /** Whether a MADT interrupt source override decided it. */
  readonly isOverridden: boolean;
}

/** One line for the boot log and the monitor, e.g. `IRQ 4 (COM1) -> I/O APIC 1 pin 4 (GSI 4) -> vector 0x34, edge, active high`. */
export function describeRoute(route: IsaIrqRoute): string {
  const via = route.controller === "8259"
    ? `8259 ${route.irq < 8 ? "master" : "slave"} IR${route.irq % 8}`
    : `I/O APIC ${route.ioApicId} pin ${route.pin} (GSI ${route.gsi}` +
      (route.isOverridden ? ", ACPI override)" : ")");
  return `IRQ ${route.irq} (${route.name}) -> ${via} -> vector ${hex(route.vector, 2)}, ` +
    `${route.trigger}, active ${route.polarity}`;
}

/** What a controller does for a route. */
interface IrqChip {
  /** Computes the route of `irq` and programs it masked. */
  program(irq: number, name: string): IsaIrqRoute;
  /** Masks or unmasks the route. */
  setMasked(route: IsaIrqRoute, isMasked: boolean): void;
  /** Ends the route's interrupt. */
  eoi(route: IsaIrqRoute): void;
}

/** The I/O APIC a GSI belongs to. */
export interface RoutedIoApic {
  /** Its MADT ID. */
  readonly id: number;
  /** The driver. */
  readonly driver: IoApicDriver;
  /** Its pin count, read from its version register. */
  readonly pinCount: number;
}

/** Routes ISA IRQs to handlers through one controller. */
export class IsaInterrupts implements IsaIrqAttacher {
  /** `legacy` (8259) or `apic` (I/O APIC and local APIC). */
  readonly mode: "legacy" | "apic";
  readonly #chip: IrqChip;
  readonly #vectors: InterruptVectors;
  readonly #routes = new Map<number, IsaIrqRoute>();
  readonly #attached = new Set<number>();

  private constructor(mode: "legacy" | "apic", chip: IrqChip, vectors: InterruptVectors) {
    this.mode = mode;
    this.#chip = chip;
    this.#vectors = vectors;
  }

  /** Routing through the 8259 pair, initialised with IRQ n on vector 0x30 + n. */
  static legacy(pic: Pic8259Driver, vectors: InterruptVectors): IsaInterrupts {
    pic.initialise(ISA_IRQ_VECTOR_BASE);
    return new IsaInterrupts("legacy", {
      program(irq, name) {
        return {
          irq,
          name,
          vector: pic.vectorBase + irq,
          controller: "8259",
          gsi: undefined,
          ioApicId: undefined,
          pin: undefined,
          trigger: "edge",
          polarity: "high",
          isOverridden: false,
        };
      },
      setMasked: (route, isMasked) => pic.setMasked(route.irq, isMasked),
      eoi: (route) => pic.eoi(route.irq),
    }, vectors);
  }

  /**
   * Routing through I/O APICs to the local APIC with ID `destinationApicId`.
   *
   * @param ioApics The I/O APICs, each with the GSIs it serves.
   * @param overrides The MADT's interrupt source overrides.
   * @param lapic The local APIC, for the EOI.
   */
  static apic(
    ioApics: readonly RoutedIoApic[],
    overrides: readonly MadtOverride[],
    lapic: LapicDriver,
    destinationApicId: number,
    vectors: InterruptVectors,
  ): IsaInterrupts {
    return new IsaInterrupts("apic", {
      program(irq, name) {
        const override = overrides.find((candidate) => candidate.sourceIrq === irq);
        const gsi = override?.gsi ?? irq;
        const ioApic = ioApics.find((candidate) =>
          gsi >= candidate.driver.gsiBase && gsi < candidate.driver.gsiBase + candidate.pinCount
        );
        if (ioApic === undefined) {
          throw new KernelError("DeviceNotFound", `No I/O APIC serves GSI ${gsi} (IRQ ${irq})`);
        }
        const route: IsaIrqRoute = {
          irq,
          name,
          vector: ISA_IRQ_VECTOR_BASE + irq,
          controller: "I/O APIC",
          gsi,
          ioApicId: ioApic.id,
          pin: gsi - ioApic.driver.gsiBase,
          trigger: override?.trigger === "level" ? "level" : "edge",
          polarity: override?.polarity === "low" ? "low" : "high",
          isOverridden: override !== undefined,
        };
        ioApic.driver.route(route.pin!, {
          vector: route.vector,
          trigger: route.trigger,
          polarity: route.polarity,
          destinationApicId,
          isMasked: true,
        });
        return route;
      },
      setMasked(route, isMasked) {
        ioApics.find((candidate) => candidate.id === route.ioApicId)!.driver.setMasked(
          route.pin!,
          isMasked,
        );
      },
      eoi: () => lapic.eoi(),
    }, vectors);
  }

  /** Routes `irq` for `name` and programs it, masked; returns the route. */
  declare(irq: number, name: string): IsaIrqRoute {
    if (!Number.isInteger(irq) || irq < 0 || irq >= IRQ_LINE_COUNT) {
      throw new RangeError(`Invalid ISA IRQ ${irq}: expected 0..15`);
    }
    const existing = this.#routes.get(irq);
    if (existing !== undefined) return existing;
    const route = this.#chip.program(irq, name);
    this.#routes.set(irq, route);
    return route;
  }

  attachIsaIrq(irq: number, name: string, handler: IrqHandler): void {
    const route = this.declare(irq, name);
    const chip = this.#chip;
    this.#vectors.install(route.vector, name, () => {
      handler();
      chip.eoi(route);
    });
    this.#attached.add(irq);
    chip.setMasked(route, false);
  }

  detachIsaIrq(irq: number): void {
    const route = this.#routes.get(irq);
    if (route === undefined) return;
    this.#chip.setMasked(route, true);
    this.#vectors.remove(route.vector);
    this.#attached.delete(irq);
  }

  /** Every declared route, by IRQ. */
  routes(): IsaIrqRoute[] {
    return [...this.#routes.values()].sort((a, b) => a.irq - b.irq);
  }

  /** Whether `irq` has a handler attached now. */
  isAttached(irq: number): boolean {
    return this.#attached.has(irq);
  }
}
