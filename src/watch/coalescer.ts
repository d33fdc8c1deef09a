/**
 * @module watch/coalescer
 * Turns one batch of inotify events (already resolved to case-relative paths) into a short,
 * de-duplicated list of hints: which paths the daemon should look at again, and whether each
 * file looks finished. Pure: no I/O, no clock, no timers (the VS Code watcher's
 * `coalesceEvents` plays the same part: microsoft/vscode `src/vs/platform/files/common/watcher.ts`).
 *
 * Watching is a hint (STYLE.md): a hint narrows the daemon's next look, it never replaces it.
 * The caller always reads the path (lstat, hash) before acting, so a hint may be redundant
 * (a `deleted` for a path that never reached the mirror) but must never be missing.
 *
 * How one batch is folded. Each touched path keeps a small state: does something exist there
 * now, where did its content come from (`origin`: the path it had when the batch began, or
 * `undefined` when it was created during the batch), was it written, and is the writer done.
 * Events are applied in kernel order:
 * - IN_CREATE: fresh content, unsettled for files (the writer usually writes next).
 * - IN_MODIFY: written, unsettled (still being written: the caller waits for a close or a
 *   quiet period). IN_CLOSE_WRITE: written and settled. IN_ATTRIB: metadata changed.
 * - IN_DELETE: gone; for a folder every state below it goes too (the folder hint covers them).
 * - IN_MOVED_FROM / IN_MOVED_TO with the same cookie: the content (and for a folder, the
 *   states of everything below it) moves to the new name; arriving by rename settles a file
 *   (write-temp-then-rename editors). An IN_MOVED_FROM without its pair left the tree:
 *   deleted. An IN_MOVED_TO without its pair came from outside: created, and for a folder a
 *   `rescan` of that subtree (its contents were never seen).
 * - IN_Q_OVERFLOW, or the root itself deleted or moved: events were lost or the tree is gone:
 *   the batch becomes one `rescan` of the root.
 * Then each state gives at most one hint (two for a renamed-and-written file): a path created
 * and removed within the batch (vim's `4913` probe, a temp file renamed onto its target) gives
 * none, so an editor's save pattern ends as one `changed` hint for the file it saved.
 */
import {
  IN_ATTRIB,
  IN_CLOSE_WRITE,
  IN_CREATE,
  IN_DELETE,
  IN_DELETE_SELF,
  IN_ISDIR,
  IN_MODIFY,
  IN_MOVE_SELF,
  IN_MOVED_FROM,
  IN_MOVED_TO,
  IN_Q_OVERFLOW,
  IN_UNMOUNT,
} from './inotify-constants.js';

/** One inotify event whose watch descriptor was resolved to a path. */
export interface PathEvent {
  /**
   * Case-relative path of the event's subject, `/`-separated: the child the event names, or
   * for events on a watched folder itself (IN_DELETE_SELF, IN_MOVE_SELF, IN_UNMOUNT) that
   * folder. `''` is the case root; IN_Q_OVERFLOW carries `''` as well.
   */
  readonly path: string;
  /** The kernel's IN_* bits, IN_ISDIR included. */
  readonly mask: number;
  /** Pairs an IN_MOVED_FROM with its IN_MOVED_TO; 0 for other events. */
  readonly cookie: number;
}

/**
 * What a hint says about its path:
 * - `changed`: a file (or a folder's metadata) was created or written; read it again.
 * - `deleted`: nothing is there any more (it may never have reached a mirror: check).
 * - `created-dir`: a new folder; what was found inside it comes as separate hints.
 * - `renamed`: what was at `from` when the batch began is now at `path` (compare the two
 *   together so the rename is kept as a rename); a later `changed` hint for `path` in the
 *   same batch says it was also written.
 * - `rescan`: events were lost or never existed for this subtree (`''` = the whole case):
 *   compare everything below it.
 */
export type HintKind = 'changed' | 'deleted' | 'created-dir' | 'renamed' | 'rescan';

/** One coalesced hint. */
export interface WatchHint {
  /** What happened; see {@link HintKind}. */
  readonly kind: HintKind;
  /** Case-relative path (`''` only for a rescan of the whole case). */
  readonly path: string;
  /** For `renamed`: the path the content had when the batch began. Absent otherwise. */
  readonly from?: string;
  /** Whether the subject is a folder (for `deleted`: was a folder). */
  readonly isDir: boolean;
  /**
   * Whether the writer is done: a close-after-write was seen, or the file arrived by rename,
   * or only metadata changed. `false` means the file is still being written (IN_MODIFY or
   * IN_CREATE without a close yet): wait for a later settled hint or a quiet period, then check
   * that size and mtime hold still. Always `true` for every kind but `changed`.
   */
  readonly settled: boolean;
}

/** Options for {@link coalesceEvents}. */
export interface CoalesceOptions {
  /**
   * Says whether a path is left out of replication (`.satchelignore`). Ignored paths give no
   * hint; a rename from a replicated name onto an ignored one (vim's `x~` backup) becomes a
   * `deleted`, and the reverse a fresh `changed` (or `rescan` for a folder).
   */
  readonly ignore?: (path: string, isDir: boolean) => boolean;
}

/** The hint that replaces a whole batch when events were lost or the root is gone. */
export const RESCAN_ROOT: WatchHint = Object.freeze({ kind: 'rescan', path: '', isDir: true, settled: true });

/** The writing events in the order they apply within one mask, and what each says of the writer. */
const WRITES: readonly (readonly [number, boolean | undefined])[] = [
  [IN_MODIFY, false],
  [IN_ATTRIB, undefined],
  [IN_CLOSE_WRITE, true],
];

/** What the batch knows about one path. */
interface PathState {
  /** Whether something exists at the path now (after the events seen so far). */
  exists: boolean;
  /** Whether that something is (or, when gone, was) a folder. */
  isDir: boolean;
  /** The path this name had when the batch began (undefined: below a folder created in it). */
  readonly home: string | undefined;
  /** Nothing existed here when the batch began (first event was a creation, or below a new folder). */
  bornInBatch: boolean;
  /**
   * Where the current content was when the batch began; `undefined` when it was created
   * during the batch. Equal to the path for content that never moved.
   */
  origin: string | undefined;
  /** Content or metadata was written during the batch. */
  modified: boolean;
  /** No IN_MODIFY or IN_CREATE since the last close-after-write or arrival by rename. */
  settled: boolean;
  /** A folder that existed when the batch began was deleted or moved away from this path. */
  lostFolder: boolean;
  /** The subtree must be compared in full (moved in from outside, or a mount came or went). */
  rescan: boolean;
  /** Order of the rename that brought the content here, to list renames as they happened. */
  renameSeq: number;
}

/** An IN_MOVED_FROM waiting for its IN_MOVED_TO. */
interface PendingMove {
  readonly path: string;
  readonly isDir: boolean;
  readonly origin: string | undefined;
  readonly modified: boolean;
  readonly rescan: boolean;
  /** States of everything below a moved folder, keyed by their path below it (`x`, `y/z`). */
  readonly below: Map<string, PathState>;
}

const isUnder = (path: string, dir: string): boolean =>
  dir === '' ? path !== '' : path.length > dir.length && path.startsWith(dir) && path[dir.length] === '/';

const parentOf = (path: string): string => {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
};

/**
 * Folds a batch of path events (in kernel order) into hints. Renames come first, in the order
 * they happened; then every other hint sorted by path, so a folder comes before what is in it.
 * On IN_Q_OVERFLOW, or when the root itself was deleted, moved or unmounted, the result is
 * exactly `[RESCAN_ROOT]`.
 */
export function coalesceEvents(events: readonly PathEvent[], options: CoalesceOptions = {}): WatchHint[] {
  const states = new Map<string, PathState>();
  const pending = new Map<number, PendingMove>();
  let renameSeq = 0;

  /**
   * Where the content at `path` came from if nothing happened to `path` itself: its own path,
   * translated through the nearest ancestor folder this batch touched (renamed: the ancestor's
   * origin; created in the batch: `undefined`).
   */
  const inheritedOrigin = (path: string): string | undefined => {
    for (let dir = parentOf(path); dir !== ''; dir = parentOf(dir)) {
      const above = states.get(dir);
      if (above === undefined) continue;
      // At this point, `dir` is the nearest ancestor this batch touched: if it is a folder,
      // everything below it came along with its content.
      if (above.exists && above.isDir)
        return above.origin === undefined ? undefined : above.origin + path.slice(dir.length);
      break;
    }
    return path;
  };

  /** The state of `path`, created on first touch as "untouched since the batch began". */
  const stateOf = (path: string, isDir: boolean): [PathState, boolean] => {
    const known = states.get(path);
    if (known !== undefined) return [known, false];
    const home = inheritedOrigin(path);
    const state: PathState = {
      exists: true,
      isDir,
      home,
      bornInBatch: home === undefined,
      origin: home,
      modified: false,
      settled: true,
      lostFolder: false,
      rescan: false,
      renameSeq: -1,
    };
    states.set(path, state);
    return [state, true];
  };

  /** Removes (and returns, keyed by their path below `dir`) the states below folder `dir`. */
  const takeBelow = (dir: string): Map<string, PathState> => {
    const below = new Map<string, PathState>();
    for (const [path, state] of states) {
      if (isUnder(path, dir)) {
        below.set(path.slice(dir.length + 1), state);
        states.delete(path);
      }
    }
    return below;
  };

  const markGone = (state: PathState, isDir: boolean): void => {
    if (isDir && !state.bornInBatch) state.lostFolder = true;
    state.exists = false;
    state.isDir = isDir;
    state.origin = undefined;
    state.modified = false;
    state.settled = true;
    state.rescan = false;
  };

  let rescanRoot = false;
  for (const ev of events) {
    const { path, mask } = ev;
    const isDir = (mask & IN_ISDIR) !== 0;
    if ((mask & IN_Q_OVERFLOW) !== 0) {
      rescanRoot = true;
      continue;
    }
    if ((mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) !== 0) {
      if (path === '') {
        rescanRoot = true;
      } else if ((mask & IN_UNMOUNT) !== 0) {
        // A file system mounted inside the case went away: what shows now is the folder below it.
        const [state] = stateOf(path, true);
        state.exists = true;
        state.isDir = true;
        state.rescan = true;
      }
      // A sub-folder deleted or moved is reported by its parent's IN_DELETE / IN_MOVED_*.
      continue;
    }
    if (path === '') continue; // events on the root folder itself (its own metadata): not an entry

    if ((mask & IN_CREATE) !== 0) {
      const [state, isNew] = stateOf(path, isDir);
      if (isNew) state.bornInBatch = true;
      state.exists = true;
      state.isDir = isDir;
      state.origin = undefined;
      state.modified = true;
      state.settled = isDir; // a new folder is complete; a new file is usually written next
      state.rescan = false;
    }
    // Written: still being written after IN_MODIFY, done after IN_CLOSE_WRITE; metadata
    // (IN_ATTRIB) leaves the writer's progress as it was.
    for (const [bit, settled] of WRITES) {
      if ((mask & bit) === 0) continue;
      const [state] = stateOf(path, isDir);
      state.exists = true;
      state.isDir = isDir;
      state.modified = true;
      if (settled !== undefined) state.settled = settled;
    }
    if ((mask & IN_DELETE) !== 0) {
      const [state] = stateOf(path, isDir);
      // Everything below a deleted folder is gone with it; the folder's hint covers them.
      if (isDir) takeBelow(path);
      markGone(state, isDir);
    }
    if ((mask & IN_MOVED_FROM) !== 0) {
      const [state] = stateOf(path, isDir);
      pending.set(ev.cookie, {
        path,
        isDir,
        origin: state.exists ? state.origin : undefined,
        modified: state.modified,
        rescan: state.rescan,
        below: isDir ? takeBelow(path) : new Map(),
      });
      markGone(state, isDir);
    }
    if ((mask & IN_MOVED_TO) !== 0) {
      const move = pending.get(ev.cookie);
      pending.delete(ev.cookie);
      const [state] = stateOf(path, isDir);
      // A folder renamed over this name replaced an (empty) folder: nothing below survives.
      if (isDir) takeBelow(path);
      state.exists = true;
      state.isDir = isDir;
      state.settled = true; // arrived complete, by rename
      if (move !== undefined) {
        state.origin = move.origin;
        state.modified = move.modified;
        state.rescan = move.rescan;
        state.renameSeq = renameSeq++;
        // Events that came between the pair were resolved under the old name: they move too.
        const below = new Map([...move.below, ...(move.isDir ? takeBelow(move.path) : [])]);
        for (const [rest, moved] of below) states.set(`${path}/${rest}`, moved);
      } else {
        // Came from outside the watched tree: new to us, and a folder's content is unknown.
        state.origin = undefined;
        state.modified = true;
        state.rescan = isDir;
      }
    }
  }

  if (rescanRoot) return [RESCAN_ROOT];
  // At this point, every IN_MOVED_FROM still pending left the tree: its state is already
  // "gone" and gives a `deleted` hint; what was below a folder is covered by that hint.
  return toHints(states, inheritedOrigin, options.ignore);
}

/** Turns the final states into ordered, filtered hints. */
function toHints(
  states: ReadonlyMap<string, PathState>,
  inheritedOrigin: (path: string) => string | undefined,
  ignore: ((path: string, isDir: boolean) => boolean) | undefined,
): WatchHint[] {
  const renames: { seq: number; hint: WatchHint }[] = [];
  const others: WatchHint[] = [];
  const ignored = (path: string, isDir: boolean): boolean => ignore !== undefined && ignore(path, isDir);
  const fresh = (path: string, isDir: boolean, settled: boolean): WatchHint =>
    isDir ? { kind: 'created-dir', path, isDir, settled: true } : { kind: 'changed', path, isDir, settled };

  for (const [path, s] of states) {
    if (!s.exists) {
      if (!s.bornInBatch) others.push({ kind: 'deleted', path, isDir: s.isDir, settled: true });
      continue;
    }
    if (s.rescan || s.lostFolder) {
      // A folder that was here was replaced (or never seen): compare the whole subtree.
      others.push({ kind: 'rescan', path, isDir: s.isDir, settled: true });
      continue;
    }
    if (s.origin === undefined) {
      others.push(fresh(path, s.isDir, s.settled));
      continue;
    }
    // A rename is news only when it is not implied by a folder renamed above it.
    if (s.origin !== path && s.origin !== inheritedOrigin(path)) {
      renames.push({
        seq: s.renameSeq,
        hint: { kind: 'renamed', path, from: s.origin, isDir: s.isDir, settled: true },
      });
    }
    if (s.modified) others.push({ kind: 'changed', path, isDir: s.isDir, settled: s.isDir || s.settled });
  }

  // Filter renames through the ignore rules: leaving the replicated set is a deletion of the
  // original name (unless something new already stands there), entering it is new content.
  const kept: WatchHint[] = [];
  renames.sort((a, b) => a.seq - b.seq);
  for (const { hint } of renames) {
    const from = hint.from!;
    const fromIgnored = ignored(from, hint.isDir);
    const toIgnored = ignored(hint.path, hint.isDir);
    if (!fromIgnored && !toIgnored) {
      kept.push(hint);
    } else if (!fromIgnored) {
      if (states.get(from)?.exists !== true)
        others.push({ kind: 'deleted', path: from, isDir: hint.isDir, settled: true });
    } else if (!toIgnored) {
      others.push(
        hint.isDir
          ? { kind: 'rescan', path: hint.path, isDir: true, settled: true }
          : { kind: 'changed', path: hint.path, isDir: false, settled: true },
      );
    }
  }

  // A `deleted` for a name whose content a kept rename moved elsewhere is said by the rename.
  const movedFrom = new Set(kept.map((h) => h.from!));
  const seen = new Set<string>();
  const rest = others.filter((h) => {
    if (h.path !== '' && ignored(h.path, h.isDir)) return false;
    if (h.kind === 'deleted') {
      const home = states.get(h.path)?.home;
      if (home !== undefined && movedFrom.has(home)) return false;
    }
    const key = `${h.kind}\0${h.path}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  rest.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  // Anything below a subtree that is rescanned anyway is redundant.
  const rescans = rest.filter((h) => h.kind === 'rescan').map((h) => h.path);
  const result = rest.filter((h) => !rescans.some((dir) => isUnder(h.path, dir)));
  return [...kept, ...result];
}
