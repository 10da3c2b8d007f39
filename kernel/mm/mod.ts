/**
 * Memory management: the early and physical frame allocators, per-frame
 * metadata with refcounted `Page` handles, the kmem heap, and paging.
 *
 * @module
 */

export * from "./frame_source.ts";
export * from "./frame_provider.ts";
export * from "./early_allocator.ts";
export * from "./frame_allocator.ts";
export * from "./frame_metadata.ts";
export * from "./page.ts";
export * from "./kmem_heap.ts";
export * from "./kernel_heap.ts";
export * from "./boot_frames.ts";
export * from "./address_space.ts";
export * from "./page_mapper.ts";
export * from "./kernel_address_space.ts";
export * from "./page_fault_handler.ts";
export * from "./page_fault_policy.ts";
export * from "./mapper_address_space.ts";
