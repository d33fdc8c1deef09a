/**
 * @module daemon/folders
 * Where folders lie relative to each other, on real paths: shared by `mirror add`'s checks and
 * the config's (a mirror inside the case or around it, a passphrase file inside the case).
 */
import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';

/** Whether `inner` is `outer` or lies below it (both real, absolute paths). */
export function isWithin(inner: string, outer: string): boolean {
  const rel = relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** `path` with its symbolic links resolved, or just made absolute when it does not exist (yet). */
export function realOrAbsolute(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}
