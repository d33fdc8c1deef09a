/**
 * @module mirrors/path/hash-batches
 * Hands the files a scan must hash to the fast addon in batches: each batch is one job on the
 * thread pool, so the scan goes on listing folders while other cores read and hash (a first
 * scan of 10,000 new files spent a third of its time hashing on the main thread). A batch leaves
 * when it holds {@link BATCH_FILES} files or {@link BATCH_BYTES} bytes, or when the scan has
 * nothing else to do (the next turn of the event loop).
 */
import type { FastFs, FileHash } from './fastfs-binding.js';

/** Files per batch: enough to make a job's hop negligible, few enough to spread over threads. */
const BATCH_FILES = 64;
/** Bytes per batch: a few large files make a batch of their own. */
const BATCH_BYTES = 8 * 1024 * 1024;

/** Hashes one file (path, size as listed): its {@link FileHash}, or the errno that stopped it. */
export type HashInBatches = (file: string, size: number) => Promise<FileHash | number>;

interface Batch {
  readonly files: string[];
  readonly waiting: { resolve: (r: FileHash | number) => void; reject: (e: unknown) => void }[];
  bytes: number;
}

/** A {@link HashInBatches} over the addon's `hash`. */
export function hashInBatches(hash: FastFs['hash']): HashInBatches {
  let open: Batch | undefined;
  let flushQueued = false;
  const send = (): void => {
    const batch = open;
    open = undefined;
    if (batch === undefined) return;
    hash(batch.files).then(
      (results) => batch.waiting.forEach((w, i) => w.resolve(results[i]!)),
      (err: unknown) => batch.waiting.forEach((w) => w.reject(err)),
    );
  };
  return (file, size) =>
    new Promise((resolve, reject) => {
      open ??= { files: [], waiting: [], bytes: 0 };
      open.files.push(file);
      open.waiting.push({ resolve, reject });
      open.bytes += size;
      if (open.files.length >= BATCH_FILES || open.bytes >= BATCH_BYTES) send();
      else if (!flushQueued) {
        flushQueued = true;
        setImmediate(() => {
          flushQueued = false;
          send();
        });
      }
    });
}
