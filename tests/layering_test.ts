import { assertEquals } from "../testing/mod.ts";
import { importSpecifiers, layeringViolations, readSourceTree } from "./_layering.ts";

const repoRoot = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

Deno.test("The repository keeps its layering: hal, devices, kernel, mod.ts boundaries", async () => {
  assertEquals(layeringViolations(await readSourceTree(repoRoot)), []);
});

Deno.test("importSpecifiers() finds static, re-export, dynamic and Worker URL imports", () => {
  const source = [
    'import { a } from "./a.ts";',
    "import type {\n  B,\n} from '../b/mod.ts';",
    'export * from "./c.ts";',
    'import "./side_effect.ts";',
    'const m = await import("./d.ts");',
    'new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });',
    'import { parseArgs } from "node:util";',
  ].join("\n");
  assertEquals(importSpecifiers(source).sort(), [
    "../b/mod.ts",
    "./a.ts",
    "./c.ts",
    "./d.ts",
    "./side_effect.ts",
    "./worker.ts",
  ]);
});

Deno.test("layeringViolations() catches each rule it exists to enforce", () => {
  const broken = new Map([
    ["hal/mmu.ts", 'import { Kernel } from "../kernel/mod.ts";'],
    ["hal/tlb.ts", 'import { Uart16550 } from "../devices/mod.ts";'],
    ["kernel/kernel.ts", 'import { createPc } from "../devices/mod.ts";'],
    ["kernel/selftest.ts", 'import { Xorshift32 } from "../testing/mod.ts";'],
    ["cli/run.ts", 'import { bootTestKernel } from "../tests/_boot_kernel.ts";'],
    ["cli/options.ts", 'import { hex } from "../hal/address.ts";'],
    ["kernel/monitor/x.ts", 'import { Page } from "../mm/page.ts";'],
    ["hal/cpu_test.ts", 'import { Kernel } from "../kernel/mod.ts";'],
  ]);
  assertEquals(layeringViolations(broken), [
    'hal/mmu.ts imports "../kernel/mod.ts": hal/ may not import kernel/',
    'hal/tlb.ts imports "../devices/mod.ts": hal/ may not import devices/',
    'kernel/kernel.ts imports "../devices/mod.ts": kernel/ may not import devices/',
    'kernel/selftest.ts imports "../testing/mod.ts": kernel/ may not import testing/',
    'cli/run.ts imports "../tests/_boot_kernel.ts": production code may not import tests/',
    'cli/run.ts imports "../tests/_boot_kernel.ts": import tests/mod.ts, not a file inside it',
    'cli/options.ts imports "../hal/address.ts": import hal/mod.ts, not a file inside it',
    'kernel/monitor/x.ts imports "../mm/page.ts": import kernel/mm/mod.ts, not a file inside it',
    'hal/cpu_test.ts imports "../kernel/mod.ts": hal/ may not import kernel/',
  ]);
});

Deno.test("layeringViolations() allows mod.ts imports, a parent folder's files and test helpers", () => {
  const fine = new Map([
    ["kernel/kernel.ts", 'import { hex } from "../hal/mod.ts";\nimport "./boot/mod.ts";'],
    ["kernel/mm/page.ts", 'import { KernelError } from "../errors.ts";'],
    ["cli/run.ts", 'import config from "../deno.json" with { type: "json" };'],
    ["kernel/mm/page_test.ts", 'import { bootTestKernel } from "../../tests/_boot_kernel.ts";'],
    ["tests/x_test.ts", 'import { renderHtmlReport } from "../cli/html_report.ts";'],
  ]);
  assertEquals(layeringViolations(fine), []);
});
