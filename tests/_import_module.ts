/**
 * The `import()` tests hand to the SDK's loaders (`LoadOptions.importModule`),
 * kept in `tests/`, outside the published package.
 *
 * @module
 */

/** Imports a module by URL. */
export const importModule = (url: string): Promise<Record<string, unknown>> => import(url);
