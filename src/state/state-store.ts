/**
 * @module state/state-store
 * This machine's durable knowledge about a case, in `<case>/.satchel/state.db` (SQLite, WAL):
 * the ancestor of every (case, mirror) pair, the hash caches that spare re-reading unchanged
 * files, the conflicts found, per-mirror status, and the case files currently locked by an
 * incoming change (so a crash never leaves them read-only).
 *
 * Crash safety: every update is one transaction. The sync engine records an ancestor entry only
 * after the operation it describes is durable on both sides, so a kill at any point leaves the
 * previous, still true, agreement; the next sync then sees both sides equal and converges. The
 * writes and renames a sync is about to commit are recorded first as intents, so that the next
 * sync can tell which of them happened even when the user edited the files since.
 */
import Database from 'better-sqlite3';
import type { Entry, FileEntry } from '../core/entry.js';
import { normalizeScope, scopeAncestors } from '../core/scope.js';
import type { Conflict } from '../core/plan.js';
import type { CachedHash, HashCache } from '../replica/replica.js';

/** A conflict found by a sync and not yet resolved by the user. */
export interface ConflictRecord {
  /** The contested path (holds the winning version). */
  readonly path: string;
  /** Where the losing version was kept. */
  readonly copyPath: string;
  /** The mirror of the pair in which it was found. */
  readonly mirror: string;
  /** Which side's version stayed at `path`. */
  readonly winner: 'case' | 'mirror';
  readonly reason: string;
  /** Milliseconds since the epoch. */
  readonly detectedAt: number;
}

/** What the last sync of a mirror did. */
export interface MirrorStatusRecord {
  /** When the last run with this mirror ended, whatever its result. */
  readonly lastSyncAt?: number;
  /** When the last run that synced ended (kept through absent, halted and failed runs). */
  readonly lastSyncedAt?: number;
  readonly lastResult?: 'synced' | 'absent' | 'halted' | 'failed';
  readonly message?: string;
  readonly in?: number;
  readonly out?: number;
  readonly problems?: number;
  /** Paths found changed on a push-only mirror by someone else (drift), replaced by that sync. */
  readonly drift?: readonly string[];
  /** Set while the mirror is halted by a safety check, with the reason. */
  readonly halted?: string;
}

/**
 * A file write or a rename about to be committed on one side of a pair, recorded before the
 * commit and forgotten once the ancestor says what the commit did (see `daemon/pair-sync.ts`).
 */
export type Intent =
  | {
      /** Where the file is written. */
      readonly side: 'case' | 'mirror';
      readonly path: string;
      /** The entry it is written as (the other side's version). */
      readonly entry: FileEntry;
    }
  | {
      /** Where `from` is renamed to `path`. */
      readonly side: 'case' | 'mirror';
      readonly path: string;
      readonly from: string;
    };

/** A case file made read-only while an incoming change for it is pending. */
export interface LockRecord {
  readonly path: string;
  /** The file's permission bits before it was locked. */
  readonly mode: number;
  readonly since: number;
}

/** A hash_cache row as an array: path, size, mtime_ms, ino, hash. */
type RawHashRow = [string, number, number, number | null, string];

/** An ancestor row as an array (no object per row): path, kind, size, mtime_ms, executable, hash, target. */
type RawAncestorRow = [
  path: string,
  kind: string,
  size: number | null,
  mtimeMs: number | null,
  executable: number | null,
  hash: string | null,
  target: string | null,
];

/** The ancestor columns, in {@link RawAncestorRow}'s order. */
const ANCESTOR_COLUMNS = 'path, kind, size, mtime_ms, executable, hash, target';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ancestor (
  mirror_id TEXT NOT NULL, path TEXT NOT NULL, kind TEXT NOT NULL,
  size INTEGER, mtime_ms REAL, executable INTEGER, hash TEXT, target TEXT,
  PRIMARY KEY (mirror_id, path)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hash_cache (
  replica TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ms REAL NOT NULL,
  ino INTEGER, hash TEXT NOT NULL,
  PRIMARY KEY (replica, path)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conflict_copy (
  copy_path TEXT PRIMARY KEY, path TEXT NOT NULL, mirror TEXT NOT NULL, winner TEXT NOT NULL,
  reason TEXT NOT NULL, detected_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS mirror_status (name TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lock (path TEXT PRIMARY KEY, mode INTEGER NOT NULL, since INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS intent (
  mirror_id TEXT NOT NULL, seq INTEGER NOT NULL, path TEXT NOT NULL, side TEXT NOT NULL,
  renamed_from TEXT, hash TEXT, size INTEGER, mtime_ms REAL, executable INTEGER,
  PRIMARY KEY (mirror_id, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queue (
  mirror_id TEXT NOT NULL, path TEXT NOT NULL, since INTEGER NOT NULL,
  PRIMARY KEY (mirror_id, path)) WITHOUT ROWID;
`;

function rowToEntry([, kind, size, mtimeMs, executable, hash, target]: RawAncestorRow): Entry {
  switch (kind) {
    case 'file':
      return {
        kind: 'file',
        size: size ?? 0,
        mtimeMs: mtimeMs ?? 0,
        executable: executable === 1,
        hash: hash ?? '',
      };
    case 'symlink':
      return { kind: 'symlink', target: target ?? '' };
    case 'directory':
      return { kind: 'directory' };
    default:
      throw new Error(`bug: unknown entry kind '${kind}' in the ancestor store`);
  }
}

/**
 * Stores of earlier versions kept one conflict per path (table `conflict`), so a path in
 * conflict with two mirrors kept only the last: their records move to `conflict_copy`, one per
 * conflict copy.
 */
function migrateConflicts(db: Database.Database): void {
  const old = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'conflict'").get();
  if (old === undefined) return;
  db.transaction(() => {
    db.exec(
      'INSERT OR IGNORE INTO conflict_copy (copy_path, path, mirror, winner, reason, detected_at) SELECT copy_path, path, mirror, winner, reason, detected_at FROM conflict; DROP TABLE conflict;',
    );
  })();
}

/** An in-memory hash cache loaded from the store. */
class LoadedHashCache implements HashCache {
  constructor(readonly entries: Map<string, CachedHash>) {}
  get(path: string): CachedHash | undefined {
    return this.entries.get(path);
  }
}

/** The paths `replica`'s hash cache knows with inode `ino` (hard links of one file), in no order. */
export function pathsWithInode(cache: HashCache, ino: number): string[] {
  if (!(cache instanceof LoadedHashCache)) return [];
  const out: string[] = [];
  for (const [path, h] of cache.entries) if (h.ino === ino) out.push(path);
  return out;
}

/** The state database of one case. Not safe for use by two processes at once (the case lock prevents that). */
export class StateStore {
  private readonly loadedCaches = new Map<string, LoadedHashCache>();

  private constructor(private readonly db: Database.Database) {}

  /** Opens (creating when missing) the database at `file`. */
  static open(file: string): StateStore {
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    db.exec(SCHEMA);
    migrateConflicts(db);
    return new StateStore(db);
  }

  /** Closes the database. */
  close(): void {
    this.db.close();
  }

  /** The ancestor of the pair (case, mirror `mirrorId`): empty before the first sync. */
  loadAncestor(mirrorId: string): Map<string, Entry> {
    const rows = this.db
      .prepare(`SELECT ${ANCESTOR_COLUMNS} FROM ancestor WHERE mirror_id = ?`)
      .raw()
      .all(mirrorId) as RawAncestorRow[];
    return new Map(rows.map((r) => [r[0], rowToEntry(r)]));
  }

  /**
   * The part of the pair's ancestor a scoped sync looks at: each scope path with everything
   * below it, and the folders above (see core/scope.ts).
   */
  loadAncestorScoped(mirrorId: string, scope: readonly string[]): Map<string, Entry> {
    const normalized = normalizeScope(scope);
    if (normalized[0] === '') return this.loadAncestor(mirrorId);
    const exact = this.db
      .prepare(`SELECT ${ANCESTOR_COLUMNS} FROM ancestor WHERE mirror_id = ? AND path = ?`)
      .raw();
    // Children of P sort between 'P/' and 'P0' ('0' follows '/').
    const below = this.db
      .prepare(
        `SELECT ${ANCESTOR_COLUMNS} FROM ancestor WHERE mirror_id = ? AND path >= ? AND path < ? ORDER BY path`,
      )
      .raw();
    const out = new Map<string, Entry>();
    const put = (row: RawAncestorRow | undefined): void => {
      if (row) out.set(row[0], rowToEntry(row));
    };
    for (const dir of scopeAncestors(normalized)) put(exact.get(mirrorId, dir) as RawAncestorRow | undefined);
    for (const p of normalized) {
      put(exact.get(mirrorId, p) as RawAncestorRow | undefined);
      for (const r of below.all(mirrorId, `${p}/`, `${p}0`) as RawAncestorRow[]) put(r);
    }
    return out;
  }

  /** Applies ancestor changes (entry = set, undefined = forget) in one transaction. */
  updateAncestor(mirrorId: string, updates: ReadonlyMap<string, Entry | undefined>): void {
    if (updates.size === 0) return;
    const put = this.db.prepare(
      'INSERT OR REPLACE INTO ancestor (mirror_id, path, kind, size, mtime_ms, executable, hash, target) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const del = this.db.prepare('DELETE FROM ancestor WHERE mirror_id = ? AND path = ?');
    this.db.transaction(() => {
      for (const [path, e] of updates) {
        if (e === undefined) del.run(mirrorId, path);
        else if (e.kind === 'file')
          put.run(mirrorId, path, 'file', e.size, e.mtimeMs, e.executable ? 1 : 0, e.hash, null);
        else if (e.kind === 'symlink') put.run(mirrorId, path, 'symlink', null, null, null, null, e.target);
        else put.run(mirrorId, path, 'directory', null, null, null, null, null);
      }
    })();
  }

  /** The hash cache of one replica (`case`, or `mirror:<id>`), loaded once per store. */
  hashCache(replica: string): HashCache {
    let cache = this.loadedCaches.get(replica);
    if (cache === undefined) {
      const rows = this.db
        .prepare('SELECT path, size, mtime_ms, ino, hash FROM hash_cache WHERE replica = ?')
        .raw()
        .all(replica) as RawHashRow[];
      const entries = new Map<string, CachedHash>();
      for (const [path, size, mtimeMs, ino, hash] of rows)
        entries.set(path, ino === null ? { size, mtimeMs, hash } : { size, mtimeMs, ino, hash });
      cache = new LoadedHashCache(entries);
      this.loadedCaches.set(replica, cache);
    }
    return cache;
  }

  /** Makes `next` the hash cache of `replica`, writing only what differs from the stored one. */
  storeHashes(replica: string, next: ReadonlyMap<string, CachedHash>): void {
    const current = (this.hashCache(replica) as LoadedHashCache).entries;
    const put = this.db.prepare(
      'INSERT OR REPLACE INTO hash_cache (replica, path, size, mtime_ms, ino, hash) VALUES (?, ?, ?, ?, ?, ?)',
    );
    const del = this.db.prepare('DELETE FROM hash_cache WHERE replica = ? AND path = ?');
    this.db.transaction(() => {
      for (const [path, h] of next) {
        const old = current.get(path);
        if (
          old &&
          old.size === h.size &&
          old.mtimeMs === h.mtimeMs &&
          old.ino === h.ino &&
          old.hash === h.hash
        )
          continue;
        put.run(replica, path, h.size, h.mtimeMs, h.ino ?? null, h.hash);
      }
      for (const path of current.keys()) if (!next.has(path)) del.run(replica, path);
    })();
    this.loadedCaches.set(replica, new LoadedHashCache(new Map(next)));
  }

  /** Changes some entries of `replica`'s hash cache (undefined = forget), leaving the rest. */
  updateHashes(replica: string, updates: ReadonlyMap<string, CachedHash | undefined>): void {
    if (updates.size === 0) return;
    const current = (this.hashCache(replica) as LoadedHashCache).entries;
    const put = this.db.prepare(
      'INSERT OR REPLACE INTO hash_cache (replica, path, size, mtime_ms, ino, hash) VALUES (?, ?, ?, ?, ?, ?)',
    );
    const del = this.db.prepare('DELETE FROM hash_cache WHERE replica = ? AND path = ?');
    this.db.transaction(() => {
      for (const [path, h] of updates) {
        if (h === undefined) {
          del.run(replica, path);
          current.delete(path);
        } else {
          put.run(replica, path, h.size, h.mtimeMs, h.ino ?? null, h.hash);
          current.set(path, h);
        }
      }
    })();
  }

  /** Adds paths to the durable queue of changes waiting to be shipped to mirror `mirrorId`. */
  enqueue(mirrorId: string, paths: Iterable<string>, at: number): void {
    const put = this.db.prepare('INSERT OR IGNORE INTO queue (mirror_id, path, since) VALUES (?, ?, ?)');
    this.db.transaction(() => {
      for (const p of paths) put.run(mirrorId, p, at);
    })();
  }

  /** The queued paths of mirror `mirrorId`, oldest first. */
  queued(mirrorId: string): string[] {
    return (
      this.db.prepare('SELECT path FROM queue WHERE mirror_id = ? ORDER BY since, path').all(mirrorId) as {
        path: string;
      }[]
    ).map((r) => r.path);
  }

  /** How many paths wait for each mirror (by id). */
  queueCounts(): Map<string, number> {
    const rows = this.db.prepare('SELECT mirror_id, COUNT(*) AS n FROM queue GROUP BY mirror_id').all() as {
      mirror_id: string;
      n: number;
    }[];
    return new Map(rows.map((r) => [r.mirror_id, r.n]));
  }

  /** Removes shipped paths from the queue of mirror `mirrorId` (all of them when `paths` is absent). */
  dequeue(mirrorId: string, paths?: Iterable<string>): void {
    if (paths === undefined) {
      this.db.prepare('DELETE FROM queue WHERE mirror_id = ?').run(mirrorId);
      return;
    }
    const del = this.db.prepare('DELETE FROM queue WHERE mirror_id = ? AND path = ?');
    this.db.transaction(() => {
      for (const p of paths) del.run(mirrorId, p);
    })();
  }

  /** Forgets everything about a removed mirror. */
  dropMirror(mirrorId: string, mirrorName: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM ancestor WHERE mirror_id = ?').run(mirrorId);
      this.db.prepare('DELETE FROM hash_cache WHERE replica = ?').run(`mirror:${mirrorId}`);
      this.db.prepare('DELETE FROM mirror_status WHERE name = ?').run(mirrorName);
      this.db.prepare('DELETE FROM conflict_copy WHERE mirror = ?').run(mirrorName);
      this.db.prepare('DELETE FROM queue WHERE mirror_id = ?').run(mirrorId);
      this.db.prepare('DELETE FROM intent WHERE mirror_id = ?').run(mirrorId);
    })();
    this.loadedCaches.delete(`mirror:${mirrorId}`);
  }

  /** Remembers conflicts found while syncing with `mirror`. */
  recordConflicts(mirror: string, conflicts: readonly Conflict[], at: number): void {
    if (conflicts.length === 0) return;
    const put = this.db.prepare(
      'INSERT OR REPLACE INTO conflict_copy (path, copy_path, mirror, winner, reason, detected_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.db.transaction(() => {
      for (const c of conflicts) put.run(c.path, c.copyPath, mirror, c.winner, c.reason, at);
    })();
  }

  /** Unresolved conflicts, oldest first. */
  listConflicts(): ConflictRecord[] {
    const rows = this.db
      .prepare(
        'SELECT path, copy_path, mirror, winner, reason, detected_at FROM conflict_copy ORDER BY detected_at, path, copy_path',
      )
      .all() as {
      path: string;
      copy_path: string;
      mirror: string;
      winner: string;
      reason: string;
      detected_at: number;
    }[];
    return rows.map((r) => ({
      path: r.path,
      copyPath: r.copy_path,
      mirror: r.mirror,
      winner: r.winner === 'mirror' ? 'mirror' : 'case',
      reason: r.reason,
      detectedAt: r.detected_at,
    }));
  }

  /** Records the writes and renames about to be committed on pair `mirrorId`, in plan order. */
  recordIntents(mirrorId: string, intents: readonly Intent[]): void {
    if (intents.length === 0) return;
    const put = this.db.prepare(
      'INSERT OR REPLACE INTO intent (mirror_id, seq, path, side, renamed_from, hash, size, mtime_ms, executable) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.db.transaction(() => {
      const first = (
        this.db
          .prepare('SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM intent WHERE mirror_id = ?')
          .get(mirrorId) as {
          n: number;
        }
      ).n;
      intents.forEach((intent, i) => {
        if ('from' in intent)
          put.run(mirrorId, first + i, intent.path, intent.side, intent.from, null, null, null, null);
        else {
          const e = intent.entry;
          put.run(
            mirrorId,
            first + i,
            intent.path,
            intent.side,
            null,
            e.hash,
            e.size,
            e.mtimeMs,
            e.executable ? 1 : 0,
          );
        }
      });
    })();
  }

  /** The intents recorded for pair `mirrorId` and not forgotten (a sync killed during its commit), in order. */
  loadIntents(mirrorId: string): Intent[] {
    const rows = this.db
      .prepare(
        'SELECT path, side, renamed_from, hash, size, mtime_ms, executable FROM intent WHERE mirror_id = ? ORDER BY seq',
      )
      .raw()
      .all(mirrorId) as [string, string, string | null, string | null, number, number, number][];
    return rows.map(([path, s, from, hash, size, mtimeMs, executable]): Intent => {
      const side = s === 'case' ? 'case' : 'mirror';
      if (from !== null) return { side, path, from };
      return {
        side,
        path,
        entry: { kind: 'file', hash: hash ?? '', size, mtimeMs, executable: executable === 1 },
      };
    });
  }

  /** Forgets the recorded intents on pair `mirrorId` for `paths` (`'all'`: every one). */
  forgetIntents(mirrorId: string, paths: Iterable<string> | 'all'): void {
    if (paths === 'all') {
      this.db.prepare('DELETE FROM intent WHERE mirror_id = ?').run(mirrorId);
      return;
    }
    const del = this.db.prepare('DELETE FROM intent WHERE mirror_id = ? AND path = ?');
    this.db.transaction(() => {
      for (const path of paths) del.run(mirrorId, path);
    })();
  }

  /** Forgets the conflict whose losing version was kept at `copyPath`. */
  removeConflict(copyPath: string): void {
    this.db.prepare('DELETE FROM conflict_copy WHERE copy_path = ?').run(copyPath);
  }

  /**
   * Forgets the conflicts whose copy is no longer in the case (`inCase` says), as after the user
   * deleted it by hand: keeping the version at the path is then what they chose.
   */
  pruneConflicts(inCase: (copyPath: string) => boolean): void {
    for (const c of this.listConflicts()) if (!inCase(c.copyPath)) this.removeConflict(c.copyPath);
  }

  /** The last recorded status of mirror `name`. */
  getMirrorStatus(name: string): MirrorStatusRecord | undefined {
    const row = this.db.prepare('SELECT json FROM mirror_status WHERE name = ?').get(name) as
      { json: string } | undefined;
    return row ? (JSON.parse(row.json) as MirrorStatusRecord) : undefined;
  }

  /** Records the status of mirror `name`. */
  setMirrorStatus(name: string, status: MirrorStatusRecord): void {
    this.db
      .prepare('INSERT OR REPLACE INTO mirror_status (name, json) VALUES (?, ?)')
      .run(name, JSON.stringify(status));
  }

  /** Records that case file `path` was made read-only; `mode` is its mode before. */
  addLock(path: string, mode: number, since: number): void {
    this.db
      .prepare('INSERT OR REPLACE INTO lock (path, mode, since) VALUES (?, ?, ?)')
      .run(path, mode, since);
  }

  /** Forgets the lock of `path`. */
  removeLock(path: string): void {
    this.db.prepare('DELETE FROM lock WHERE path = ?').run(path);
  }

  /** Case files currently locked. */
  listLocks(): LockRecord[] {
    return this.db.prepare('SELECT path, mode, since FROM lock ORDER BY path').all() as LockRecord[];
  }
}
