/**
 * @module bench/tree
 * Deterministic benchmark trees: a given number of files of varied sizes spread over folders,
 * filled with incompressible bytes from AES-CTR keyed by a seed (fast and repeatable).
 */
import { createCipheriv, createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Shape of a generated tree. */
export interface TreeSpec {
  readonly files: number;
  readonly folders: number;
  readonly totalBytes: number;
  readonly seed: string;
}

/** A deterministic pseudo-random stream of numbers in [0, 1). */
function prng(seed: string): () => number {
  let s = createHash('sha256').update(seed).digest().readUInt32LE(0) || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

/** File sizes: mostly small source-like files, a few large ones, adding up to about `totalBytes`. */
function sizes(spec: TreeSpec, rand: () => number): number[] {
  const raw = Array.from({ length: spec.files }, () =>
    rand() < 0.02 ? 40 + rand() * 200 : 0.2 + rand() * 2,
  );
  const sum = raw.reduce((a, b) => a + b, 0);
  return raw.map((r) => Math.max(1, Math.round((r / sum) * spec.totalBytes)));
}

/** Writes the tree under `root` (which must be empty or absent); returns the relative file paths. */
export async function generateTree(root: string, spec: TreeSpec): Promise<string[]> {
  const rand = prng(spec.seed);
  const folders = Array.from({ length: spec.folders }, (_, i) =>
    i < 20 ? `d${i}` : `d${Math.floor(rand() * 20)}/s${i}`,
  );
  await mkdir(root, { recursive: true });
  for (const f of folders) await mkdir(join(root, f), { recursive: true });
  const key = createHash('sha256').update(spec.seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const paths: string[] = [];
  const all = sizes(spec, rand);
  const pending: Promise<void>[] = [];
  for (let i = 0; i < all.length; i++) {
    const path = `${folders[i % folders.length]}/f${i}.dat`;
    paths.push(path);
    pending.push(writeFile(join(root, path), cipher.update(Buffer.alloc(all[i]!))));
    if (pending.length >= 64) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  return paths;
}

/** Deterministic pseudo-random numbers for benchmark edits. */
export { prng };

/** Generates the benchmark tree at `src` (announcing it) and flushes it to disk. */
export async function benchTree(src: string, spec: Omit<TreeSpec, 'seed'>): Promise<void> {
  console.log(
    `generating ${spec.files} files, ${(spec.totalBytes / 1e6).toFixed(0)} MB in ${spec.folders} folders…`,
  );
  await generateTree(src, { ...spec, seed: 'satchel-bench' });
  spawnSync('sync');
}

/**
 * A new empty folder under `work` whose name starts with `name`. Nothing is deleted while a bench
 * measures: on an ext4 without a journal (this VM's disk) the inode allocator skips inodes freed
 * in the last minute one by one, so a tool run right after 10,000 deletions pays seconds of
 * kernel time that belong to the deletion. Scratch folders are removed when the bench ends.
 */
export function freshDir(work: string, name: string): string {
  const d = mkdtempSync(join(work, `${name}-`));
  chmodSync(d, 0o755); // as mkdir makes it (mkdtemp's 0700 reads as a change of the root to unison)
  return d;
}
