/**
 * @module daemon/case-siblings
 * A scoped sync (the daemon's per-save path) towards a case-insensitive mirror must see every
 * case name that such a mirror would hold as the same file: saving `Readme.md` beside an
 * existing `README.md` is a clash, and the clash rule (core/case-folding.ts) can only find it
 * when both names are in the scope. This widens a scope by those siblings, at each level.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { foldKey } from '../core/case-folding.js';
import { ancestorsOf, baseName, parentPath } from '../core/entry.js';
import { normalizeScope } from '../core/scope.js';

/**
 * `scope` (case paths) plus every case path that differs from a scope path, or from a folder
 * above one, only in letter case (or Unicode normalization); normalized (see core/scope.ts).
 * Folders that cannot be listed add nothing: the scan reports them.
 */
export async function withFoldedSiblings(root: string, scope: readonly string[]): Promise<string[]> {
  const out = new Set(scope);
  const listings = new Map<string, Promise<string[]>>();
  const list = (dir: string): Promise<string[]> => {
    let names = listings.get(dir);
    if (names === undefined) {
      names = fsp.readdir(join(root, dir)).catch(() => []);
      listings.set(dir, names);
    }
    return names;
  };
  for (const target of normalizeScope(scope)) {
    if (target === '') return [''];
    for (const path of [...ancestorsOf(target), target]) {
      const parent = parentPath(path);
      const name = baseName(path);
      const key = foldKey(name);
      for (const sibling of await list(parent)) {
        if (sibling !== name && foldKey(sibling) === key)
          out.add(parent === '' ? sibling : `${parent}/${sibling}`);
      }
    }
  }
  return normalizeScope(out);
}
