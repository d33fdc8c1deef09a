/**
 * @module core/scope
 * Scoped synchronization: the daemon reconciles only the paths a watcher reported, each with
 * everything below it, plus the folders above them (so parents can be created or checked).
 * These helpers decide what a scope covers; they are pure.
 */
import { ancestorsOf, isSameOrBelow, type Snapshot, type Entry } from './entry.js';

/**
 * The scope reduced to its outermost paths, sorted: a path below another scope path adds
 * nothing (the outer one covers it); `''` (the root) covers everything.
 */
export function normalizeScope(scope: Iterable<string>): string[] {
  const sorted = [...new Set(scope)].sort();
  if (sorted.includes('')) return [''];
  const out: string[] = [];
  for (const p of sorted) {
    if (!out.some((o) => isSameOrBelow(p, o))) out.push(p);
  }
  return out;
}

/** Whether `path` is covered by `scope`: at or below a scope path, or a folder above one. */
export function inScope(path: string, scope: readonly string[]): boolean {
  return scope.some((s) => s === '' || isSameOrBelow(path, s) || s.startsWith(path + '/'));
}

/** The folders above the scope paths (where they exist they are part of the scoped snapshot). */
export function scopeAncestors(scope: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const s of scope) for (const a of ancestorsOf(s)) out.add(a);
  return out;
}

/** The entries of `snapshot` covered by `scope`. */
export function restrictSnapshot(snapshot: Snapshot, scope: readonly string[]): Map<string, Entry> {
  const out = new Map<string, Entry>();
  for (const [path, entry] of snapshot) if (inScope(path, scope)) out.set(path, entry);
  return out;
}
