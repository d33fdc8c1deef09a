/**
 * @module watch/tree-watcher
 * Watches a whole folder tree (the case) and reports coalesced hints of what changed, as fast
 * as the kernel tells: events are read, resolved to paths, coalesced and handed to the caller
 * on the same loop iteration, with no timer on that path.
 *
 * Backends, chosen by {@link TreeWatcherOptions.backend}:
 * - `inotify` (Linux, Satchel's addon): one watch per folder, kept in a tree of folder nodes
 *   so a renamed folder moves its whole subtree at once. New folders are watched the moment
 *   their IN_CREATE is read and then listed, since files may be created in them before the
 *   watch lands (`mkdir -p a/b/c && echo x > a/b/c/f`). Deleted and moved-out folders drop
 *   their watches. When the kernel's watch limit is hit (ENOSPC) the rest are listed as
 *   unwatched, a `limit` report says which `sysctl` raises it, and the caller polls them.
 *   When the kernel's queue overflows, every folder is listed again (re-adding a watch is
 *   free) and then one `rescan` of the root is reported.
 * - `parcel` (@parcel/watcher): one recursive subscription; slower (its ~50 ms batching
 *   window) and without close-after-write, so every `changed` hint is unsettled; used when the
 *   addon is unavailable. Same output.
 *
 * Paths in hints are relative to the root, `/`-separated (as in `core/entry`). The caller's
 * `ignore` decides what is never watched or reported; it should cover Satchel's own state
 * folder (`.satchel/`), whose database writes would otherwise come back as hints.
 */
import { lstatSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { SatchelError } from '../core/errors.js';
import { coalesceEvents, RESCAN_ROOT, type PathEvent, type WatchHint } from './coalescer.js';
import {
  FOLDER_WATCH_MASK,
  IN_CREATE,
  IN_DELETE,
  IN_DELETE_SELF,
  IN_IGNORED,
  IN_ISDIR,
  IN_MOVE_SELF,
  IN_MOVED_FROM,
  IN_MOVED_TO,
  IN_Q_OVERFLOW,
  IN_UNMOUNT,
  type RawInotifyEvent,
} from './inotify-constants.js';
import { loadInotifyBinding, type InotifyBinding, type InotifyHandle } from './inotify-binding.js';

/** Which mechanism watches the tree. */
export type WatchBackend = 'inotify' | 'parcel';

/** Said once when the per-user inotify watch limit stops Satchel from watching every folder. */
export interface WatchLimitReport {
  /** The full message for the user, with the `sysctl` that raises the limit. */
  readonly message: string;
  /** The current `fs.inotify.max_user_watches`, when readable. */
  readonly maxUserWatches: number | undefined;
  /** Folders (case-relative) left unwatched when the report was made: poll them. */
  readonly unwatched: readonly string[];
}

/** Options for {@link TreeWatcher}. */
export interface TreeWatcherOptions {
  /** Absolute path of the folder to watch. */
  readonly root: string;
  /** Receives each batch of hints (never empty), as soon as it is known. */
  readonly onHints: (hints: readonly WatchHint[]) => void;
  /** Whether a case-relative path is left out: ignored folders are not watched at all. */
  readonly ignore?: (path: string, isDir: boolean) => boolean;
  /** Told once when the inotify watch limit is hit. See {@link TreeWatcher.unwatchedDirs}. */
  readonly onLimit?: (report: WatchLimitReport) => void;
  /** Told about trouble that does not stop watching (a folder that cannot be read). */
  readonly onError?: (error: Error) => void;
  /** `auto` (default): the inotify addon when it loads, else @parcel/watcher. */
  readonly backend?: WatchBackend | 'auto';
  /** Folder entries listed per loop iteration before yielding (default 4096). */
  readonly scanSliceEntries?: number;
}

/** Counters for `status` and tests. */
export interface TreeWatcherStats {
  /** The backend in use. */
  readonly backend: WatchBackend;
  /** Why the preferred backend was not used, when it was not. */
  readonly fallbackReason: string | undefined;
  /** Folders with an inotify watch (undefined for parcel, which does not say). */
  readonly watchedDirs: number | undefined;
  /** Folders that could not be watched (limit reached): the caller polls them. */
  readonly unwatchedDirs: number;
  /** Folders still waiting to be listed. */
  readonly pendingScans: number;
  /** Times the kernel's event queue overflowed. */
  readonly overflows: number;
}

/** The message for a reached watch limit (also used by tests). */
export function watchLimitMessage(maxUserWatches: number | undefined): string {
  return (
    `inotify watch limit reached (fs.inotify.max_user_watches = ${maxUserWatches ?? 'unknown'}): run ` +
    '`sysctl fs.inotify.max_user_watches=524288` (and persist it in /etc/sysctl.d/) — falling back to ' +
    'periodic scanning for the unwatched folders'
  );
}

function readMaxUserWatches(): number | undefined {
  try {
    const n = Number(readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

const joinPath = (dir: string, name: string): string => (dir === '' ? name : `${dir}/${name}`);

/** Watches a folder tree; see the module header. */
export class TreeWatcher {
  readonly #options: TreeWatcherOptions;
  #impl: InotifyTree | ParcelTree | undefined;
  #fallbackReason: string | undefined;
  #state: 'new' | 'starting' | 'running' | 'stopped' = 'new';

  /** Prepares a watcher; nothing is watched until {@link start}. */
  constructor(options: TreeWatcherOptions) {
    if (!isAbsolute(options.root)) throw new Error(`bug: TreeWatcher root must be absolute: ${options.root}`);
    this.#options = options;
  }

  /**
   * Starts watching. Resolves once every folder present is watched (or listed as unwatched):
   * a change made after that is reported. Rejects when the root cannot be watched.
   */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error('bug: TreeWatcher.start called twice');
    this.#state = 'starting';
    const wanted = this.#options.backend ?? 'auto';
    let impl: InotifyTree | ParcelTree | undefined;
    if (wanted !== 'parcel') {
      const load = loadInotifyBinding();
      if (load.ok) {
        try {
          impl = new InotifyTree(this.#options, load.binding);
        } catch (error) {
          // EMFILE: fs.inotify.max_user_instances reached by other programs.
          if (wanted === 'inotify') throw error;
          this.#fallbackReason = `cannot open an inotify instance: ${(error as Error).message}`;
        }
      } else if (wanted === 'inotify') {
        throw new SatchelError('io', `cannot watch ${this.#options.root}: ${load.reason}`, {
          hint: 'run `node scripts/build-native.mjs`, or watch with the parcel backend',
        });
      } else {
        this.#fallbackReason = load.reason;
      }
    }
    impl ??= new ParcelTree(this.#options);
    this.#impl = impl;
    try {
      await impl.start();
    } catch (error) {
      await impl.stop();
      this.#state = 'stopped';
      throw error;
    }
    // stop() may have been called while starting.
    if (this.#state === 'starting') this.#state = 'running';
  }

  /** Stops watching and releases the descriptor; no hint is delivered afterwards. */
  async stop(): Promise<void> {
    this.#state = 'stopped';
    await this.#impl?.stop();
  }

  /** The backend in use (undefined before {@link start}). */
  get backend(): WatchBackend | undefined {
    return this.#impl?.backend;
  }

  /** Current counters. */
  stats(): TreeWatcherStats {
    const inner = this.#impl?.stats() ?? { watchedDirs: 0, unwatchedDirs: 0, pendingScans: 0, overflows: 0 };
    return { backend: this.#impl?.backend ?? 'inotify', fallbackReason: this.#fallbackReason, ...inner };
  }

  /** Folders (case-relative) that have no watch because the limit was reached: poll these. */
  unwatchedDirs(): string[] {
    return this.#impl instanceof InotifyTree ? this.#impl.unwatchedDirs() : [];
  }

  /**
   * Tries again to watch the folders left unwatched (call it from the polling loop: watches
   * free up as folders are deleted or other programs stop). Each folder that gets a watch is
   * reported as a `rescan` hint. Returns how many remain unwatched.
   */
  retryUnwatched(): number {
    return this.#impl instanceof InotifyTree ? this.#impl.retryUnwatched() : 0;
  }
}

/** The inner shape both backends share. */
interface TreeImpl {
  readonly backend: WatchBackend;
  start(): Promise<void>;
  stop(): Promise<void>;
  stats(): Omit<TreeWatcherStats, 'backend' | 'fallbackReason'>;
}

// ---- inotify backend -------------------------------------------------------------------------

/** One folder of the watched tree. Its path is the names from the root down to it. */
class DirNode {
  /** Watch descriptor, or -1 while the folder has no watch (limit reached, not yet listed). */
  wd = -1;
  /** Generation of the last full listing that saw this folder (overflow recovery). */
  seen = 0;
  /** Sub-folders by name; created on the first one (most folders of a tree are leaves). */
  #children: Map<string, DirNode> | undefined;

  constructor(
    public name: string,
    public parent: DirNode | undefined,
  ) {}

  /** The sub-folder called `name`, if known. */
  child(name: string): DirNode | undefined {
    return this.#children?.get(name);
  }

  /** Records `node` as the sub-folder called `name`. */
  setChild(name: string, node: DirNode): void {
    (this.#children ??= new Map()).set(name, node);
  }

  /** Forgets `node` as the sub-folder called `name` (if it still is). */
  dropChild(name: string, node: DirNode): void {
    if (this.#children?.get(name) === node) this.#children.delete(name);
  }

  /** The known sub-folders. */
  childNodes(): Iterable<DirNode> {
    return this.#children?.values() ?? [];
  }

  /** Whether this node is still its parent's child of its name (not detached). */
  get attached(): boolean {
    return this.parent !== undefined && this.parent.child(this.name) === this;
  }

  /** Takes this node out of its parent. */
  detach(): void {
    this.parent?.dropChild(this.name, this);
  }
}

/** A folder waiting to be listed; `report` says whether what is found is news to the caller. */
interface ScanItem {
  readonly node: DirNode;
  readonly report: boolean;
}

class InotifyTree implements TreeImpl {
  readonly backend = 'inotify' as const;
  readonly #options: TreeWatcherOptions;
  readonly #binding: InotifyBinding;
  readonly #handle: InotifyHandle;
  readonly #root = new DirNode('', undefined);
  readonly #byWd = new Map<number, DirNode>();
  readonly #unwatched = new Set<DirNode>();
  readonly #queue: ScanItem[] = [];
  readonly #sliceEntries: number;
  #queueHead = 0;
  #rootPath: string;
  #scheduled: NodeJS.Immediate | undefined;
  #closed = false;
  #generation = 1;
  /** A full listing after an overflow is in progress: report the rescan when it ends. */
  #relisting = false;
  #overflows = 0;
  #limitReported = false;
  #limitHit = false;
  #idleWaiters: (() => void)[] = [];

  constructor(options: TreeWatcherOptions, binding: InotifyBinding) {
    this.#options = options;
    this.#binding = binding;
    this.#sliceEntries = options.scanSliceEntries ?? 4096;
    this.#rootPath = options.root;
    this.#handle = binding.open((error, events) => this.#onEvents(error, events));
  }

  async start(): Promise<void> {
    const st = statSync(this.#options.root); // throws ENOENT with the path: the caller says it
    if (!st.isDirectory()) throw new SatchelError('io', `cannot watch ${this.#options.root}: not a folder`);
    // Watches never follow links (IN_DONT_FOLLOW): a root given through a link is resolved once.
    this.#rootPath = realpathSync(this.#options.root);
    if (!this.#watch(this.#root, '')) {
      throw new SatchelError('io', `cannot watch ${this.#options.root}: the inotify watch limit is reached`, {
        hint: watchLimitMessage(readMaxUserWatches()),
      });
    }
    this.#root.seen = this.#generation;
    this.#enqueue({ node: this.#root, report: false }, true);
    await this.#idle();
  }

  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#scheduled !== undefined) clearImmediate(this.#scheduled);
    this.#binding.close(this.#handle);
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  stats(): Omit<TreeWatcherStats, 'backend' | 'fallbackReason'> {
    return {
      watchedDirs: this.#byWd.size,
      unwatchedDirs: this.#unwatched.size,
      pendingScans: this.#queue.length - this.#queueHead,
      overflows: this.#overflows,
    };
  }

  unwatchedDirs(): string[] {
    return [...this.#unwatched].map((n) => this.#pathOf(n)).filter((p): p is string => p !== undefined);
  }

  retryUnwatched(): number {
    const hints: WatchHint[] = [];
    for (const node of [...this.#unwatched]) {
      const path = this.#pathOf(node);
      if (path === undefined) {
        this.#unwatched.delete(node);
        continue;
      }
      if (this.#watch(node, path)) {
        hints.push({ kind: 'rescan', path, isDir: true, settled: true });
        this.#enqueue({ node, report: false }, false);
      }
    }
    this.#emit(hints);
    this.#drain();
    return this.#unwatched.size;
  }

  // -- the folder tree --

  /** The case-relative path of `node`, or undefined when it is no longer part of the tree. */
  #pathOf(node: DirNode): string | undefined {
    const names: string[] = [];
    let n: DirNode | undefined = node;
    while (n !== undefined && n !== this.#root) {
      names.push(n.name);
      const parent: DirNode | undefined = n.parent;
      if (parent === undefined || !n.attached) return undefined; // detached
      n = parent;
    }
    return n === this.#root ? names.reverse().join('/') : undefined;
  }

  #abs(path: string): string {
    return path === '' ? this.#rootPath : join(this.#rootPath, ...path.split('/'));
  }

  /** Puts `child` under `parent` as `name`, dropping whatever folder node had that name. */
  #attach(parent: DirNode, name: string, child: DirNode): void {
    const old = parent.child(name);
    if (old !== undefined && old !== child) this.#forget(old, false);
    child.detach();
    child.name = name;
    child.parent = parent;
    parent.setChild(name, child);
  }

  /**
   * Forgets `node` and everything below it; with `unwatch`, also removes their watches (for
   * folders that left the tree but still exist elsewhere). Deleted folders lose their watches
   * by themselves (the kernel reports IN_IGNORED for each).
   */
  #forget(node: DirNode, unwatch: boolean): void {
    node.detach();
    const stack = [node];
    while (stack.length > 0) {
      const n = stack.pop()!;
      stack.push(...n.childNodes());
      this.#unwatched.delete(n);
      if (n.wd >= 0 && this.#byWd.get(n.wd) === n) {
        this.#byWd.delete(n.wd);
        if (unwatch) {
          try {
            this.#binding.rmWatch(this.#handle, n.wd);
          } catch {
            // EINVAL: the kernel already dropped it (folder deleted meanwhile).
          }
        }
      }
      n.wd = -1;
    }
  }

  /**
   * Adds the watch for `node` at `path`. Returns false when the folder cannot be watched
   * (gone, not a folder, no permission, or the limit: then it is listed as unwatched).
   */
  #watch(node: DirNode, path: string): boolean {
    let wd: number;
    try {
      wd = this.#binding.addWatch(this.#handle, this.#abs(path), FOLDER_WATCH_MASK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC') {
        this.#limitHit = true;
        this.#unwatched.add(node);
      } else if (code !== 'ENOENT' && code !== 'ENOTDIR') {
        this.#options.onError?.(error as Error);
      }
      return false;
    }
    // The same folder reached again (after an overflow, its watch survived under a new name):
    // the kernel returns its old wd, and the node it had is replaced by this one.
    const previous = this.#byWd.get(wd);
    if (previous !== undefined && previous !== node) {
      previous.wd = -1;
      previous.detach();
    }
    if (node.wd >= 0 && node.wd !== wd && this.#byWd.get(node.wd) === node) this.#byWd.delete(node.wd);
    node.wd = wd;
    this.#byWd.set(wd, node);
    this.#unwatched.delete(node);
    return true;
  }

  // -- listing folders --

  #enqueue(item: ScanItem, drainNow: boolean): void {
    this.#queue.push(item);
    if (drainNow) this.#drain();
  }

  /**
   * Lists queued folders until the slice budget is spent, then yields to the loop (so a huge
   * new subtree never blocks event delivery) and continues on the next iteration.
   */
  #drain(): void {
    if (this.#closed) return;
    if (this.#scheduled !== undefined) {
      clearImmediate(this.#scheduled);
      this.#scheduled = undefined;
    }
    const hints: WatchHint[] = [];
    let budget = this.#sliceEntries;
    while (this.#queueHead < this.#queue.length && budget > 0) {
      const item = this.#queue[this.#queueHead++]!;
      budget -= this.#list(item, hints) + 1;
    }
    if (this.#queueHead >= this.#queue.length) {
      this.#queue.length = 0;
      this.#queueHead = 0;
    }
    this.#emit(hints);
    if (this.#queueHead < this.#queue.length) {
      this.#scheduled = setImmediate(() => {
        this.#scheduled = undefined;
        this.#drain();
      });
      return;
    }
    this.#onIdle();
  }

  /** Lists one folder: watches its sub-folders and queues them. Returns the entries seen. */
  #list(item: ScanItem, hints: WatchHint[]): number {
    const { node, report } = item;
    const path = this.#pathOf(node);
    if (path === undefined) return 0; // deleted or moved out meanwhile
    node.seen = this.#generation;
    if (node.wd < 0 && !this.#unwatched.has(node) && !this.#watch(node, path) && !this.#unwatched.has(node)) {
      return 0; // gone, or cannot be watched: nothing to list
    }
    let entries;
    try {
      entries = readdirSync(this.#abs(path), { withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') this.#options.onError?.(error as Error);
      return 0;
    }
    const ignore = this.#options.ignore;
    for (const entry of entries) {
      const childPath = joinPath(path, entry.name);
      const isDir = entry.isDirectory();
      if (ignore !== undefined && ignore(childPath, isDir)) continue;
      if (isDir) {
        let child = node.child(entry.name);
        if (child === undefined) {
          child = new DirNode(entry.name, node);
          node.setChild(entry.name, child);
        }
        // Watch before queueing, so events inside it are not lost while it waits its turn.
        if (child.wd < 0) this.#watch(child, childPath);
        this.#queue.push({ node: child, report });
        if (report) hints.push({ kind: 'created-dir', path: childPath, isDir: true, settled: true });
      } else if (report) {
        // Found by listing: it may still be being written, and its close may have come before
        // the watch did: the caller settles it by a quiet period.
        hints.push({ kind: 'changed', path: childPath, isDir: false, settled: false });
      }
    }
    return entries.length;
  }

  #onIdle(): void {
    if (this.#relisting) {
      this.#relisting = false;
      // Folders no full listing reached since the overflow are gone or moved out: drop them.
      for (const node of [...this.#byWd.values()]) {
        if (node.seen < this.#generation) this.#forget(node, true);
      }
      this.#emit([RESCAN_ROOT]);
    }
    this.#reportLimit();
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  #idle(): Promise<void> {
    if (this.#queueHead >= this.#queue.length && this.#scheduled === undefined) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #reportLimit(): void {
    if (!this.#limitHit || this.#limitReported) return;
    this.#limitReported = true;
    const maxUserWatches = readMaxUserWatches();
    this.#options.onLimit?.({
      message: watchLimitMessage(maxUserWatches),
      maxUserWatches,
      unwatched: this.unwatchedDirs(),
    });
  }

  #emit(hints: readonly WatchHint[]): void {
    if (hints.length > 0 && !this.#closed) this.#options.onHints(hints);
  }

  // -- events --

  #onEvents(error: Error | null, raw: readonly RawInotifyEvent[]): void {
    if (this.#closed) return;
    if (error !== null) {
      // Reading the descriptor failed: events may be lost, so treat it as an overflow.
      this.#options.onError?.(error);
      this.#startRelisting();
      return;
    }
    const ignore = this.#options.ignore;
    const events: PathEvent[] = [];
    /** Folders whose IN_MOVED_FROM was read, by cookie, until their IN_MOVED_TO comes. */
    const leaving = new Map<number, DirNode | undefined>();
    /** Folders to watch and list before this turn ends. */
    const fresh: ScanItem[] = [];
    let overflow = false;

    for (const ev of raw) {
      if ((ev.mask & IN_Q_OVERFLOW) !== 0) {
        overflow = true;
        continue;
      }
      const node = this.#byWd.get(ev.wd);
      if (node === undefined) continue; // a watch already forgotten (its folder left the tree)
      if ((ev.mask & IN_IGNORED) !== 0) {
        if (node.wd === ev.wd) this.#forget(node, false);
        continue;
      }
      const dir = this.#pathOf(node);
      if (dir === undefined) continue;
      if (ev.name === '') {
        // Events on the watched folder itself: only the root's disappearance, or a file system
        // unmounted below the case, matter (the parent reports the rest).
        if ((ev.mask & (IN_DELETE_SELF | IN_MOVE_SELF)) !== 0 && node === this.#root) {
          events.push({ path: dir, mask: ev.mask, cookie: 0 });
        } else if ((ev.mask & IN_UNMOUNT) !== 0 && node !== this.#root && node.parent !== undefined) {
          // What shows at the mount point now is the folder below the mount: watch that one
          // (the coalescer asks for a rescan of the path).
          events.push({ path: dir, mask: ev.mask, cookie: 0 });
          const replacement = new DirNode(node.name, node.parent);
          this.#attach(node.parent, node.name, replacement);
          fresh.push({ node: replacement, report: false });
        }
        continue;
      }
      const path = joinPath(dir, ev.name);
      if ((ev.mask & IN_ISDIR) !== 0) {
        const ignored = ignore !== undefined && ignore(path, true);
        if ((ev.mask & IN_CREATE) !== 0 && !ignored) {
          const child = new DirNode(ev.name, node);
          this.#attach(node, ev.name, child);
          fresh.push({ node: child, report: true });
        } else if ((ev.mask & IN_DELETE) !== 0) {
          const child = node.child(ev.name);
          if (child !== undefined) this.#forget(child, false);
        } else if ((ev.mask & IN_MOVED_FROM) !== 0) {
          leaving.set(ev.cookie, node.child(ev.name));
        } else if ((ev.mask & IN_MOVED_TO) !== 0) {
          const moved = leaving.get(ev.cookie);
          leaving.delete(ev.cookie);
          if (ignored) {
            if (moved !== undefined) this.#forget(moved, true);
          } else if (moved !== undefined) {
            // A rename inside the tree: the node (and every path below it) follows.
            this.#attach(node, ev.name, moved);
          } else {
            // From outside the tree, or from an ignored (unwatched) folder: list it all.
            const child = new DirNode(ev.name, node);
            this.#attach(node, ev.name, child);
            fresh.push({ node: child, report: true });
          }
        }
      }
      events.push({ path, mask: ev.mask, cookie: ev.cookie });
    }
    // At this point, every folder still in `leaving` was moved out of the tree: its watches
    // would report changes elsewhere, so they go.
    for (const node of leaving.values()) if (node !== undefined) this.#forget(node, true);

    if (overflow) {
      this.#overflows++;
      this.#startRelisting();
    } else {
      this.#emit(coalesceEvents(events, ignore === undefined ? {} : { ignore }));
    }
    // New folders: watch and list them now, in this same turn, so that files created in them
    // before their watch landed are found at once.
    this.#queue.push(...fresh);
    if (fresh.length > 0) this.#drain();
  }

  /** After lost events: list every folder again, then report one rescan of the root. */
  #startRelisting(): void {
    this.#generation++;
    this.#relisting = true;
    this.#root.seen = this.#generation;
    this.#enqueue({ node: this.#root, report: false }, true);
  }
}

// ---- @parcel/watcher fallback ----------------------------------------------------------------

interface ParcelSubscription {
  unsubscribe(): Promise<void>;
}

class ParcelTree implements TreeImpl {
  readonly backend = 'parcel' as const;
  readonly #options: TreeWatcherOptions;
  #subscription: ParcelSubscription | undefined;
  #stopped = false;
  #overflows = 0;

  constructor(options: TreeWatcherOptions) {
    this.#options = options;
  }

  async start(): Promise<void> {
    const parcel = (await import('@parcel/watcher')).default;
    this.#subscription = await parcel.subscribe(this.#options.root, (error, events) => {
      if (this.#stopped) return;
      if (error !== null) {
        // Parcel reports lost events (overflow) and backend failures this way.
        this.#overflows++;
        this.#options.onError?.(error);
        this.#options.onHints([RESCAN_ROOT]);
        return;
      }
      const hints = this.#toHints(events);
      if (hints.length > 0) this.#options.onHints(hints);
    });
    if (this.#stopped) await this.#subscription.unsubscribe();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#subscription?.unsubscribe();
  }

  stats(): Omit<TreeWatcherStats, 'backend' | 'fallbackReason'> {
    return { watchedDirs: undefined, unwatchedDirs: 0, pendingScans: 0, overflows: this.#overflows };
  }

  /** Parcel says create/update/delete per absolute path, already coalesced per batch. */
  #toHints(events: readonly { path: string; type: 'create' | 'update' | 'delete' }[]): WatchHint[] {
    const ignore = this.#options.ignore;
    const byPath = new Map<string, WatchHint>();
    for (const ev of events) {
      const path = relative(this.#options.root, ev.path).split(sep).join('/');
      if (path === '' || path.startsWith('../')) continue;
      let hint: WatchHint;
      if (ev.type === 'delete') {
        hint = { kind: 'deleted', path, isDir: false, settled: true };
      } else {
        let isDir: boolean;
        try {
          isDir = lstatSync(ev.path).isDirectory();
        } catch {
          // Gone again before we looked: report what is true now.
          byPath.set(path, { kind: 'deleted', path, isDir: false, settled: true });
          continue;
        }
        // No close-after-write from parcel: the caller settles files by a quiet period.
        hint =
          isDir && ev.type === 'create'
            ? { kind: 'created-dir', path, isDir, settled: true }
            : { kind: 'changed', path, isDir, settled: isDir };
      }
      if (ignore !== undefined && ignore(path, hint.isDir)) continue;
      byPath.set(path, hint);
    }
    return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
}
