/**
 * Boot: the kernel's image, its validating multiboot2 parser, and the boot
 * log's memory map table.
 *
 * @module
 */

export * from "./image.ts";
export * from "./multiboot2_parser.ts";
export * from "./memory_map_table.ts";
