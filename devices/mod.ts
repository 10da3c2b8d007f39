/**
 * Device models that plug into the machine's bus: the 16550A UART, the 8254
 * timer, the debug console, and the PC board that wires them up.
 *
 * @module
 */

export * from "./uart16550.ts";
export * from "./pit8254.ts";
export * from "./debug_console.ts";
export * from "./pc.ts";
export * from "./device_plugin.ts";
