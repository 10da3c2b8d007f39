/**
 * Several CPUs (docs/smp.md): the SMP area in RAM, spinlocks, the frame
 * allocator's per-CPU caches, the locked heap and address spaces, TLB
 * shootdown, cross-CPU calls, the trampoline and the application
 * processors' entry, the boot CPU's bring-up, and the stress.
 *
 * @module
 */

export * from "./smp_area.ts";
export * from "./spinlock.ts";
export * from "./smp_cpu.ts";
export * from "./smp_frames.ts";
export * from "./smp_heap.ts";
export * from "./tlb_shootdown.ts";
export * from "./smp_address_space.ts";
export * from "./smp_call.ts";
export * from "./cpu_services.ts";
export * from "./trampoline.ts";
export * from "./ap_entry.ts";
export * from "./smp_stress.ts";
export * from "./frame_churn.ts";
export * from "./device_round_trip.ts";
export * from "./smp_kernel.ts";
