/**
 * @module test/helpers/temp
 * Temporary folders for integration tests: each test makes its own under the system temp
 * folder and removes it afterwards, so nothing machine-specific is ever written into the repo.
 */
import { chmodSync, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Makes a fresh, empty temporary folder whose name starts with `satchel-<label>-`. */
export function makeTempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `satchel-${label}-`));
}

/**
 * Removes `dir` and everything in it, first giving back write permission to folders a test (or
 * an interrupted sync) may have left read-only.
 */
export function removeTempDir(dir: string): void {
  const restore = (p: string): void => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    if (!st.isDirectory()) return;
    try {
      chmodSync(p, 0o755);
    } catch {
      // Not ours to change (a mount point); rm reports what matters.
    }
    for (const name of readdirSync(p)) restore(join(p, name));
  };
  restore(dir);
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * Runs `fn` with a fresh temporary folder and removes the folder afterwards, whether `fn`
 * succeeded or not.
 */
export async function withTempDir<T>(label: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = makeTempDir(label);
  try {
    return await fn(dir);
  } finally {
    removeTempDir(dir);
  }
}
