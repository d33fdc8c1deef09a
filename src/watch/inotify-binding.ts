/**
 * @module watch/inotify-binding
 * Loads Satchel's own inotify addon (`native/inotify`, built by `node scripts/build-native.mjs`)
 * and gives it types. The addon is optional: when it is missing (not built, not Linux) the
 * loader says why in one sentence, and the tree watcher falls back to @parcel/watcher.
 */
import { type AddonLoad, addonRelativePath, loadAddonFrom, packageRoot } from '../native/addon.js';
import type { RawInotifyEvent } from './inotify-constants.js';

/** An open inotify descriptor inside the addon. Opaque: only the binding's functions use it. */
export interface InotifyHandle {
  /** Never present at run time; keeps other values from passing as a handle. */
  readonly __inotifyHandle: never;
}

/**
 * Receives every batch the kernel had ready when the descriptor became readable, in kernel
 * order, on the main thread (process.nextTick queues and microtasks run right after it).
 * `error` is non-null only when reading the descriptor failed.
 */
export type InotifyCallback = (error: Error | null, events: RawInotifyEvent[]) => void;

/** The addon's functions (see `native/inotify/inotify.c`). */
export interface InotifyBinding {
  /** Opens an inotify descriptor (non-blocking, close-on-exec) polled on the main event loop. */
  open(callback: InotifyCallback): InotifyHandle;
  /**
   * Watches `path` with `mask` and returns its watch descriptor; watching the same folder
   * again returns the same descriptor. Throws a Node-style system error with `code`
   * (`ENOSPC`: fs.inotify.max_user_watches reached; `ENOENT`, `ENOTDIR`, `EACCES`, ...).
   */
  addWatch(handle: InotifyHandle, path: string, mask: number): number;
  /** Stops watching; the kernel then reports IN_IGNORED for `wd`. Throws `EINVAL` for a dead wd. */
  rmWatch(handle: InotifyHandle, wd: number): void;
  /** Closes the descriptor; no callback comes afterwards. Idempotent. */
  close(handle: InotifyHandle): void;
  /** Whether the open descriptor keeps the process alive (true by default, like a socket). */
  setRef(handle: InotifyHandle, ref: boolean): void;
  /** The IN_* constants as compiled into the addon. */
  readonly constants: Readonly<Record<string, number>>;
}

/** The outcome of loading the addon. */
export type InotifyLoad = AddonLoad<InotifyBinding>;

/** Where the built addon lives, relative to the package root. */
export const ADDON_RELATIVE_PATH = addonRelativePath('inotify');

export { packageRoot };

let cached: InotifyLoad | undefined;

/**
 * Loads the addon once per process. Never throws: a missing or broken addon is reported as
 * `{ ok: false, reason }` with what to do about it.
 */
export function loadInotifyBinding(): InotifyLoad {
  if (cached !== undefined) return cached;
  try {
    cached = loadInotifyBindingFrom(packageRoot());
  } catch (error) {
    cached = { ok: false, reason: (error as Error).message };
  }
  return cached;
}

/** Loads the addon built under the package root `root` (uncached; tests use other roots). */
export function loadInotifyBindingFrom(root: string): InotifyLoad {
  if (process.platform !== 'linux') {
    return { ok: false, reason: `inotify is Linux-only (this is ${process.platform})` };
  }
  return loadAddonFrom<InotifyBinding>(root, 'inotify');
}
