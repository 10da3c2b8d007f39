/**
 * The boot log's account of the boot information: the MBI, the loader and
 * command line (escaped, see `printable.ts`), the firmware memory map and any
 * correction made to it, the modules and whether they were loaded, and every
 * reserved range with where the kernel learnt it.
 *
 * @module
 */

import { hex } from "../../hal/mod.ts";
import type { KernelLog } from "../log.ts";
import { plural } from "../plural.ts";
import type { BootMemory } from "./boot_memory.ts";
import { usableBytes } from "./memory_map_sanitizer.ts";
import { formatBytes, formatMemoryMap } from "./memory_map_table.ts";
import type { BootInfo } from "./multiboot2_parser.ts";
import { printable } from "./printable.ts";

/**
 * Logs the boot information and the boot memory plan.
 *
 * @param log The kernel log.
 * @param bootInfo The parsed boot information.
 * @param bootMemory What the kernel made of it.
 */
export function logBootInfo(log: KernelLog, bootInfo: BootInfo, bootMemory: BootMemory): void {
  const { mbi } = bootInfo;
  log.info(
    "boot",
    `multiboot2 info at ${hex(mbi.address)}, ${mbi.totalSize} bytes, tags ${
      mbi.tagTypes.join(",")
    }`,
  );
  for (const warning of bootInfo.warnings) log.warn("boot", warning);
  const loader = bootInfo.bootloaderName;
  log.info("boot", `boot loader: ${loader === undefined ? "(not given)" : printable(loader)}`);
  log.info("boot", `cmdline: ${bootInfo.cmdline ? printable(bootInfo.cmdline) : "(empty)"}`);
  log.info("mem", `memory map (${plural(bootInfo.memoryMap.length, "region")}):`);
  for (const line of formatMemoryMap(bootInfo.memoryMap)) log.info("mem", `  ${line}`);
  for (const warning of bootMemory.memoryMapWarnings) log.warn("mem", warning);
  if (bootMemory.memoryMapWarnings.length > 0) {
    log.info(
      "mem",
      `sanitized memory map (${plural(bootMemory.memoryMap.length, "region")}, from the ` +
        `${bootMemory.memoryMapSource}):`,
    );
    for (const line of formatMemoryMap(bootMemory.memoryMap)) log.info("mem", `  ${line}`);
  }
  for (const warning of bootMemory.kernelImage.warnings) log.warn("boot", warning);
  bootMemory.modules.forEach((module, index) => {
    const line = `module ${index}: ${hex(module.start)}..${hex(module.end)} ` +
      `(${formatBytes(module.end - module.start)}) "${printable(module.string)}"`;
    if (module.isLoaded) log.info("boot", line);
    else log.warn("boot", `${line}: not loaded: ${module.notLoadedReason}`);
  });
  for (const reservation of bootMemory.reservations) {
    log.info(
      "boot",
      `reserved ${hex(reservation.base)}..${hex(reservation.base + reservation.length)} ` +
        `${reservation.what}: ${reservation.source}`,
    );
  }
  const usable = usableBytes(bootMemory.memoryMap);
  log.info("mem", `usable memory: ${formatBytes(usable)} (${usable} bytes)`);
}
