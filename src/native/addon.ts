/**
 * @module native/addon
 * Finds and loads Satchel's own Node-API addons (`native/<name>`, built by
 * `node scripts/build-native.mjs` into `native/<name>/build/Release/<name>.node`). Every addon
 * is optional: a missing or broken one is reported as a reason in one sentence, and its caller
 * falls back to plain Node.js code.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The outcome of loading an addon. */
export type AddonLoad<T> =
  | { readonly ok: true; readonly binding: T; readonly path: string }
  | { readonly ok: false; readonly reason: string };

/** Where addon `name` is built, relative to the package root. */
export function addonRelativePath(name: string): string {
  return `native/${name}/build/Release/${name}.node`;
}

/**
 * The folder holding Satchel's package.json, found by walking up from this module (which runs
 * from `src/native/` under a TypeScript runner, or from `dist/src/native/` once built).
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'satchel') return dir;
      } catch {
        // Not a readable manifest: keep walking up.
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`bug: no satchel package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** Loads addon `name` built under the package root `root` (uncached; tests use other roots). */
export function loadAddonFrom<T>(root: string, name: string): AddonLoad<T> {
  const path = join(root, addonRelativePath(name));
  if (!existsSync(path)) {
    return {
      ok: false,
      reason: `the ${name} addon is not built (${path} is missing): run \`node scripts/build-native.mjs\``,
    };
  }
  try {
    const binding = createRequire(join(root, 'package.json'))(path) as T;
    return { ok: true, binding, path };
  } catch (error) {
    return {
      ok: false,
      reason: `the ${name} addon at ${path} does not load (${(error as Error).message}): rebuild it with \`node scripts/build-native.mjs\``,
    };
  }
}

const loaded = new Map<string, AddonLoad<unknown>>();

/** Loads addon `name` once per process; never throws (see {@link AddonLoad}). */
export function loadAddon<T>(name: string): AddonLoad<T> {
  let load = loaded.get(name);
  if (load === undefined) {
    try {
      load = loadAddonFrom<T>(packageRoot(), name);
    } catch (error) {
      load = { ok: false, reason: (error as Error).message };
    }
    loaded.set(name, load);
  }
  return load as AddonLoad<T>;
}
