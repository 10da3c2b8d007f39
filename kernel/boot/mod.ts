/**
 * Boot: the kernel's image, its validating multiboot2 parser, the memory map
 * sanitizer, the kernel image's extent, the boot memory plan (reservations,
 * module status) and the boot log's memory map table.
 *
 * @module
 */

export * from "./image.ts";
export * from "./multiboot2_parser.ts";
export * from "./memory_map_table.ts";
export * from "./memory_map_sanitizer.ts";
export * from "./kernel_image_extent.ts";
export * from "./boot_memory.ts";
export * from "./printable.ts";
export * from "./boot_log.ts";
