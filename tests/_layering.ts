/**
 * The project's layering rules as a checker over source files: which top-level
 * folder may import which, that production code never imports test helpers,
 * and that one folder reaches into another only through its `mod.ts`.
 *
 * @module
 */

/** The top-level folders production code in each folder may import (besides itself). */
export const PRODUCTION_LAYERS: Readonly<Record<string, readonly string[]>> = {
  lib: [],
  hal: ["lib"],
  devices: ["hal", "lib"],
  kernel: ["hal", "lib"],
  testing: ["hal", "lib"],
};

/** The folders test files in each folder may import; folders not listed may import anything. */
export const TEST_LAYERS: Readonly<Record<string, readonly string[]>> = {
  lib: ["testing"],
  hal: ["lib", "testing"],
};

/** Folders only tests and benchmarks may import. */
const TEST_ONLY_FOLDERS = ["testing", "tests"];
/** Folders whose files are tests or benchmarks, not production code. */
const NON_PRODUCTION_FOLDERS = ["testing", "tests", "bench"];

/** Relative import specifiers in `source`: static, re-exports, dynamic and Worker URLs. */
export function importSpecifiers(source: string): string[] {
  const patterns = [
    /\b(?:import|export)\s[^;]*?\sfrom\s*["'](\.[^"']+)["']/g,
    /\bimport\s*["'](\.[^"']+)["']/g,
    /\bimport\(\s*["'](\.[^"']+)["']/g,
    /\bnew URL\(\s*["'](\.[^"']+)["']\s*,\s*import\.meta\.url/g,
  ];
  return patterns.flatMap((pattern) => [...source.matchAll(pattern)].map((match) => match[1]));
}

/** Joins a relative specifier onto the importing file's folder, as a repo-relative path. */
export function resolveImport(fromPath: string, specifier: string): string {
  const parts = fromPath.split("/").slice(0, -1);
  for (const part of specifier.split("/")) {
    if (part === "..") parts.pop();
    else if (part !== ".") parts.push(part);
  }
  return parts.join("/");
}

function topFolder(path: string): string {
  return path.includes("/") ? path.slice(0, path.indexOf("/")) : ".";
}

function folderOf(path: string): string {
  return path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
}

function isTest(path: string): boolean {
  return path.endsWith("_test.ts") || NON_PRODUCTION_FOLDERS.includes(topFolder(path));
}

/**
 * Every broken rule in `files` (repo-relative path to source text), one line
 * each, naming the importing file and the import.
 */
export function layeringViolations(files: ReadonlyMap<string, string>): string[] {
  const violations: string[] = [];
  for (const [path, source] of files) {
    const from = topFolder(path);
    const isTestFile = isTest(path);
    for (const specifier of importSpecifiers(source)) {
      const target = resolveImport(path, specifier);
      const to = topFolder(target);
      const where = `${path} imports "${specifier}"`;
      if (to !== from && to !== ".") {
        const allowed = isTestFile ? TEST_LAYERS[from] : PRODUCTION_LAYERS[from];
        if (allowed !== undefined && !allowed.includes(to)) {
          violations.push(`${where}: ${from}/ may not import ${to}/`);
        } else if (!isTestFile && TEST_ONLY_FOLDERS.includes(to)) {
          violations.push(`${where}: production code may not import ${to}/`);
        }
      }
      const targetFolder = folderOf(target);
      const isAncestor = folderOf(path) === targetFolder ||
        folderOf(path).startsWith(`${targetFolder}/`) || targetFolder === "";
      if (!isTestFile && !isAncestor && !target.endsWith("/mod.ts")) {
        violations.push(`${where}: import ${targetFolder}/mod.ts, not a file inside it`);
      }
    }
  }
  return violations;
}

/** Reads every `.ts` file under `root` (skipping dot folders), keyed by repo-relative path. */
export async function readSourceTree(root: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (folder: string) => {
    for await (const entry of Deno.readDir(`${root}/${folder}`)) {
      if (entry.name.startsWith(".")) continue;
      const path = folder === "" ? entry.name : `${folder}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.isFile && entry.name.endsWith(".ts")) {
        files.set(path, await Deno.readTextFile(`${root}/${path}`));
      }
    }
  };
  await walk("");
  return files;
}
