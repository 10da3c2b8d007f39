/**
 * The kernel monitor: an interactive command line on the serial console,
 * read through the UART's receive interrupt, with kernel-side echo and line
 * editing, and commands that inspect and exercise memory management.
 *
 * @module
 */

export * from "./monitor.ts";
export * from "./command.ts";
export * from "./commands.ts";
export * from "./byte_ring.ts";
export * from "./line_editor.ts";
export * from "./line_history.ts";
export * from "./address_space_table.ts";
export * from "./integrity_check.ts";
export * from "./ram_dump.ts";
