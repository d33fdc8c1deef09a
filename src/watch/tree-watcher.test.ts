/**
 * @module watch/tree-watcher.test
 * The tree watcher on real folders with real programs (sed, sh, vim when installed). Tolerant
 * of timing: every expectation waits (up to a generous timeout) for hints to arrive and never
 * asserts a duration. Events may be split over several batches however the kernel and the
 * loop interleave, so tests check what the caller would conclude from all hints together.
 *
 * The overflow and watch-limit tests lower /proc/sys/fs/inotify/max_queued_events and
 * max_user_watches for a moment (root only) and restore them in `finally`; when those files
 * are not writable the tests fail, they do not skip: these paths must be proven.
 */
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IgnoreRules } from '../core/ignore-rules.js';
import type { WatchHint } from './coalescer.js';
import {
  TreeWatcher,
  watchLimitMessage,
  type TreeWatcherOptions,
  type WatchLimitReport,
} from './tree-watcher.js';

const RULES = IgnoreRules.fromText(undefined);
const ignore = (p: string, d: boolean): boolean => p === '.satchel' || RULES.ignores(p, d);

/** A started watcher on a fresh folder, with every hint it delivered. */
class Rig {
  readonly hints: WatchHint[] = [];
  readonly limits: WatchLimitReport[] = [];
  readonly errors: Error[] = [];
  readonly watcher: TreeWatcher;
  #wake: (() => void) | undefined;

  constructor(
    readonly root: string,
    extra: Partial<TreeWatcherOptions> = {},
  ) {
    this.watcher = new TreeWatcher({
      root,
      ignore,
      onHints: (batch) => {
        assert.ok(batch.length > 0, 'a batch is never empty');
        this.hints.push(...batch);
        this.#wake?.();
      },
      onLimit: (report) => {
        this.limits.push(report);
        this.#wake?.();
      },
      onError: (error) => this.errors.push(error),
      ...extra,
    });
  }

  p(rel: string): string {
    return join(this.root, ...rel.split('/'));
  }

  /** Waits until `test` holds for the hints so far; fails with them after `ms`. */
  async until(what: string, test: (hints: readonly WatchHint[]) => boolean, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!test(this.hints)) {
      const left = deadline - Date.now();
      if (left <= 0)
        assert.fail(`timed out waiting for ${what}; hints: ${JSON.stringify(this.hints, null, 1)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** Waits for a hint that says `path` holds new, finished content (a settled change or a rename onto it). */
  async untilSettled(path: string, since = 0): Promise<void> {
    await this.until(`a settled hint for ${path}`, (hs) =>
      hs
        .slice(since)
        .some((h) => h.path === path && ((h.kind === 'changed' && h.settled) || h.kind === 'renamed')),
    );
  }

  /** Hinted paths (other than `keep`) that exist now: a caller would find real changes there. */
  strayPaths(keep: readonly string[], since = 0): string[] {
    return this.hints
      .slice(since)
      .filter((h) => !keep.includes(h.path) && h.kind !== 'deleted' && existsSync(this.p(h.path)))
      .map((h) => h.path);
  }
}

const roots: string[] = [];
const watchers: TreeWatcher[] = [];

async function rig(extra: Partial<TreeWatcherOptions> = {}, prepare?: (root: string) => void): Promise<Rig> {
  const root = mkdtempSync(join(tmpdir(), 'satchel-watch-'));
  roots.push(root);
  prepare?.(root);
  const r = new Rig(root, extra);
  watchers.push(r.watcher);
  await r.watcher.start();
  return r;
}

afterEach(async () => {
  for (const w of watchers.splice(0)) await w.stop();
});
after(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

describe('TreeWatcher (inotify addon): files', () => {
  it('uses the addon and watches every folder present at start', async () => {
    const r = await rig({ backend: 'inotify' }, (root) => {
      mkdirSync(join(root, 'a', 'b'), { recursive: true });
      mkdirSync(join(root, '.satchel'));
    });
    const stats = r.watcher.stats();
    assert.equal(stats.backend, 'inotify');
    assert.equal(stats.watchedDirs, 3, 'root, a, a/b (the ignored .satchel is not watched)');
    assert.equal(stats.unwatchedDirs, 0);
  });

  it('create, write, close: one settled change', async () => {
    const r = await rig();
    writeFileSync(r.p('notes.txt'), 'hello\n');
    await r.untilSettled('notes.txt');
  });

  it('a write still open is unsettled, its close settles it', async () => {
    const r = await rig();
    writeFileSync(r.p('big'), 'x');
    await r.untilSettled('big');
    const since = r.hints.length;
    const fd = (await import('node:fs')).openSync(r.p('big'), 'a');
    (await import('node:fs')).writeSync(fd, 'more');
    await r.until('an unsettled change', (hs) =>
      hs.slice(since).some((h) => h.path === 'big' && h.kind === 'changed' && !h.settled),
    );
    (await import('node:fs')).closeSync(fd);
    await r.untilSettled('big', since);
  });

  it('delete and rename of files', async () => {
    const r = await rig({}, (root) => {
      writeFileSync(join(root, 'old'), '1');
      writeFileSync(join(root, 'a'), '2');
    });
    unlinkSync(r.p('old'));
    await r.until('deleted old', (hs) => hs.some((h) => h.kind === 'deleted' && h.path === 'old'));
    renameSync(r.p('a'), r.p('b'));
    await r.until('renamed a -> b', (hs) =>
      hs.some((h) => h.kind === 'renamed' && h.from === 'a' && h.path === 'b'),
    );
  });

  it('ignored paths give no hints', async () => {
    const r = await rig();
    writeFileSync(r.p('.x.swp'), 'swap');
    mkdirSync(r.p('.satchel'));
    writeFileSync(r.p('.satchel/state.db'), 'db');
    writeFileSync(r.p('marker'), 'm');
    await r.untilSettled('marker');
    assert.deepEqual(
      r.hints.map((h) => h.path),
      ['marker'],
    );
    assert.equal(r.watcher.stats().watchedDirs, 1);
  });
});

describe('TreeWatcher (inotify addon): folders', () => {
  it('mkdir -p a/b/c then a file written at once is seen, and later writes by events', async () => {
    const r = await rig();
    mkdirSync(r.p('a/b/c'), { recursive: true });
    writeFileSync(r.p('a/b/c/f'), 'fast');
    await r.until('a/b/c/f', (hs) => hs.some((h) => h.path === 'a/b/c/f' && h.kind === 'changed'));
    for (const d of ['a', 'a/b', 'a/b/c'])
      assert.ok(
        r.hints.some((h) => h.path === d && h.kind === 'created-dir'),
        d,
      );
    assert.equal(r.watcher.stats().watchedDirs, 4);
    const since = r.hints.length;
    writeFileSync(r.p('a/b/c/g'), 'later');
    await r.untilSettled('a/b/c/g', since);
  });

  it('the same race from another process (sh: mkdir -p && echo >)', async () => {
    const r = await rig();
    const sh = spawnSync('sh', ['-c', 'mkdir -p x/y/z && echo hi > x/y/z/f && echo there > x/y/z/g'], {
      cwd: r.root,
    });
    assert.equal(sh.status, 0, sh.stderr.toString());
    await r.until('x/y/z/f and g', (hs) =>
      ['x/y/z/f', 'x/y/z/g'].every((p) => hs.some((h) => h.path === p && h.kind === 'changed')),
    );
  });

  it('a renamed folder keeps its watches: writes inside appear under the new name', async () => {
    const r = await rig({}, (root) => mkdirSync(join(root, 'src', 'deep'), { recursive: true }));
    renameSync(r.p('src'), r.p('lib'));
    await r.until('renamed src -> lib', (hs) => hs.some((h) => h.kind === 'renamed' && h.path === 'lib'));
    const since = r.hints.length;
    writeFileSync(r.p('lib/x.ts'), 'x');
    writeFileSync(r.p('lib/deep/y.ts'), 'y');
    await r.untilSettled('lib/x.ts', since);
    await r.untilSettled('lib/deep/y.ts', since);
    assert.ok(
      r.hints.every((h) => !h.path.startsWith('src/')),
      JSON.stringify(r.hints),
    );
    assert.equal(r.watcher.stats().watchedDirs, 3);
  });

  it('rename then immediate write inside (same batch)', async () => {
    const r = await rig({}, (root) => mkdirSync(join(root, 'd1')));
    renameSync(r.p('d1'), r.p('d2'));
    writeFileSync(r.p('d2/f'), 'now');
    await r.untilSettled('d2/f');
  });

  it('a folder moved out stops being watched; one moved in is listed', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'satchel-outside-'));
    roots.push(outside);
    mkdirSync(join(outside, 'incoming', 'sub'), { recursive: true });
    writeFileSync(join(outside, 'incoming', 'sub', 'f'), 'in');
    const r = await rig({}, (root) => mkdirSync(join(root, 'leaving')));
    renameSync(r.p('leaving'), join(outside, 'left'));
    await r.until('deleted leaving', (hs) => hs.some((h) => h.kind === 'deleted' && h.path === 'leaving'));
    assert.equal(r.watcher.stats().watchedDirs, 1);
    const since = r.hints.length;
    writeFileSync(join(outside, 'left', 'x'), 'not ours');
    renameSync(join(outside, 'incoming'), r.p('incoming'));
    await r.until('rescan incoming', (hs) => hs.some((h) => h.kind === 'rescan' && h.path === 'incoming'));
    await r.until('incoming watched', () => r.watcher.stats().watchedDirs === 3);
    writeFileSync(r.p('incoming/sub/g'), 'g');
    await r.untilSettled('incoming/sub/g', since);
    assert.ok(
      r.hints.every((h) => !h.path.includes('left')),
      JSON.stringify(r.hints),
    );
  });

  it('rm -rf of a folder: deleted, and its watches are gone', async () => {
    const r = await rig({}, (root) => {
      mkdirSync(join(root, 'd', 'e'), { recursive: true });
      for (let i = 0; i < 20; i++) writeFileSync(join(root, 'd', 'e', `f${i}`), `${i}`);
    });
    assert.equal(r.watcher.stats().watchedDirs, 3);
    rmSync(r.p('d'), { recursive: true });
    await r.until('deleted d', (hs) => hs.some((h) => h.kind === 'deleted' && h.path === 'd' && h.isDir));
    await r.until('watches dropped', () => r.watcher.stats().watchedDirs === 1);
  });
});

describe('TreeWatcher (inotify addon): editors and tools', () => {
  it('sed -i (temp file renamed over the original)', async () => {
    const r = await rig({}, (root) => writeFileSync(join(root, 'conf.ini'), 'a=1\n'));
    const sed = spawnSync('sed', ['-i', 's/1/2/', r.p('conf.ini')]);
    assert.equal(sed.status, 0, sed.stderr.toString());
    await r.untilSettled('conf.ini');
    assert.deepEqual(r.strayPaths(['conf.ini']), []);
    assert.equal(readFileSync(r.p('conf.ini'), 'utf8'), 'a=2\n');
  });

  it('echo >> (append in place from a shell)', async () => {
    const r = await rig({}, (root) => writeFileSync(join(root, 'log'), 'one\n'));
    const sh = spawnSync('sh', ['-c', 'echo two >> log'], { cwd: r.root });
    assert.equal(sh.status, 0);
    await r.untilSettled('log');
    assert.deepEqual(r.strayPaths(['log']), []);
  });

  it('vim :wq (real vim when installed, else its syscalls): 4913 probe, backup rename, new file', async () => {
    const r = await rig({}, (root) => writeFileSync(join(root, 'x.c'), 'int x;\n'));
    const vim = spawnSync(
      'vim',
      ['-u', 'NONE', '-i', 'NONE', '-N', '-n', '-es', '-c', 'normal Gointy;', '-c', 'wq', r.p('x.c')],
      {
        cwd: r.root,
        timeout: 20_000,
      },
    );
    if (vim.error !== undefined) {
      // vim is not installed: do what it does (strace of vim 9 `:w` with 'writebackup').
      writeFileSync(r.p('4913'), '');
      unlinkSync(r.p('4913'));
      renameSync(r.p('x.c'), r.p('x.c~'));
      writeFileSync(r.p('x.c'), 'int x;\ninty;\n');
      unlinkSync(r.p('x.c~'));
    } else {
      assert.equal(vim.status, 0, `vim: ${vim.stderr.toString()}`);
    }
    await r.untilSettled('x.c');
    assert.match(readFileSync(r.p('x.c'), 'utf8'), /inty;/);
    assert.deepEqual(r.strayPaths(['x.c']), []);
    assert.deepEqual(readdirSync(r.root), ['x.c']);
  });

  it('JetBrains safe write (temp, old aside, temp onto name, old deleted)', async () => {
    const r = await rig({}, (root) => writeFileSync(join(root, 'A.kt'), 'class A'));
    writeFileSync(r.p('A.kt___jb_tmp___'), 'class A {}');
    renameSync(r.p('A.kt'), r.p('A.kt___jb_old___'));
    renameSync(r.p('A.kt___jb_tmp___'), r.p('A.kt'));
    unlinkSync(r.p('A.kt___jb_old___'));
    await r.untilSettled('A.kt');
    assert.deepEqual(r.strayPaths(['A.kt']), []);
  });

  it('emacs (lock link .#x, backup x~, new x, lock removed)', async () => {
    const r = await rig({}, (root) => writeFileSync(join(root, 'draft.md'), '# one'));
    symlinkSync('user@host.1234:1700000000', r.p('.#draft.md'));
    renameSync(r.p('draft.md'), r.p('draft.md~'));
    writeFileSync(r.p('draft.md'), '# two');
    unlinkSync(r.p('.#draft.md'));
    await r.untilSettled('draft.md');
    assert.deepEqual(r.strayPaths(['draft.md']), []);
    assert.ok(
      r.hints.every((h) => !h.path.startsWith('.#') && !h.path.endsWith('~')),
      JSON.stringify(r.hints),
    );
  });

  it('bulk: 2,000 files written (git checkout-like) are all reported', async () => {
    const r = await rig({}, (root) => mkdirSync(join(root, 'src')));
    const names = Array.from({ length: 2000 }, (_, i) => `src/m${i}.ts`);
    for (const n of names) writeFileSync(r.p(n), n);
    await r.until('all 2,000', (hs) => {
      const seen = new Set(hs.filter((h) => h.kind === 'changed' && h.settled).map((h) => h.path));
      return names.every((n) => seen.has(n)) || hs.some((h) => h.kind === 'rescan' && h.path === '');
    });
  });
});

// ---- kernel limits (root: lower them for a moment, restore in finally) -----------------------

const QUEUE = '/proc/sys/fs/inotify/max_queued_events';
const WATCHES = '/proc/sys/fs/inotify/max_user_watches';

/** Runs `fn` with a kernel inotify setting lowered, restoring it whatever happens. */
async function withSetting<T>(file: string, value: number, fn: () => Promise<T>): Promise<T> {
  const original = readFileSync(file, 'utf8').trim();
  writeFileSync(file, String(value)); // throws EACCES/EROFS when not root: the test fails, as it must
  try {
    return await fn();
  } finally {
    writeFileSync(file, original);
  }
}

/** Inotify watches all processes of this user hold now (from /proc/<pid>/fdinfo). */
function watchesInUse(): number {
  let n = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fdinfo`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        n += readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('inotify wd:')).length;
      } catch {
        // The process or descriptor went away meanwhile.
      }
    }
  }
  return n;
}

describe('TreeWatcher (inotify addon): kernel limits', () => {
  it('queue overflow: every folder is listed again, then one rescan of the root', async () => {
    // The queue size is fixed when the inotify instance opens: lower it only around start().
    const r = await withSetting(QUEUE, 16, () => rig({}, (root) => mkdirSync(join(root, 'd'))));
    assert.equal(readFileSync(QUEUE, 'utf8').trim() !== '16', true, 'restored');
    // Far more than 16 events before the loop can read any: the kernel drops the rest.
    for (let i = 0; i < 200; i++) writeFileSync(r.p(`d/f${i}`), `${i}`);
    mkdirSync(r.p('made-during-overflow/inner'), { recursive: true });
    await r.until('rescan of the root', (hs) => hs.some((h) => h.kind === 'rescan' && h.path === ''));
    assert.ok(r.watcher.stats().overflows >= 1);
    // The folders created while events were lost are watched now.
    const since = r.hints.length;
    writeFileSync(r.p('made-during-overflow/inner/after'), 'seen');
    await r.untilSettled('made-during-overflow/inner/after', since);
  });

  it('watch limit: reported once with the sysctl, unwatched folders listed, retried later', async () => {
    const prepare = (root: string): void => {
      for (let i = 0; i < 30; i++)
        mkdirSync(join(root, `d${String(i).padStart(2, '0')}`, 'sub'), { recursive: true });
    };
    let limit = 0;
    const r = await (async () => {
      // Room for a few of our 61 folders, whatever other processes hold.
      limit = watchesInUse() + 8;
      return withSetting(WATCHES, limit, () => rig({}, prepare));
    })();
    assert.equal(r.limits.length, 1, 'reported once');
    const report = r.limits[0]!;
    assert.equal(report.maxUserWatches, limit);
    assert.equal(report.message, watchLimitMessage(limit));
    assert.match(report.message, /sysctl fs\.inotify\.max_user_watches=524288/);
    assert.ok(report.unwatched.length > 0);
    const stats = r.watcher.stats();
    assert.equal(stats.watchedDirs! + stats.unwatchedDirs, 61);
    assert.deepEqual([...r.watcher.unwatchedDirs()].sort(), [...report.unwatched].sort());
    for (const d of report.unwatched) assert.ok(existsSync(r.p(d)), d);

    // Limit restored: the poller retries, the folders get watches and are rescanned once.
    assert.equal(r.watcher.retryUnwatched(), 0);
    for (const d of report.unwatched)
      assert.ok(
        r.hints.some((h) => h.kind === 'rescan' && h.path === d),
        d,
      );
    assert.equal(r.watcher.stats().watchedDirs, 61);
    const target = `${report.unwatched.at(-1)!}/now-watched`;
    const since = r.hints.length;
    writeFileSync(r.p(target), 'x');
    await r.untilSettled(target, since);
    assert.equal(r.limits.length, 1);
  });
});

describe('TreeWatcher (@parcel/watcher fallback)', () => {
  it('same interface: create, change, delete, folders; files are unsettled', async () => {
    const r = await rig({ backend: 'parcel' }, (root) => writeFileSync(join(root, 'keep'), '1'));
    assert.equal(r.watcher.backend, 'parcel');
    writeFileSync(r.p('new.txt'), 'n');
    appendFileSync(r.p('keep'), '2');
    mkdirSync(r.p('dir'));
    await r.until(
      'new.txt, keep, dir',
      (hs) =>
        hs.some((h) => h.path === 'new.txt' && h.kind === 'changed' && !h.settled) &&
        hs.some((h) => h.path === 'keep' && h.kind === 'changed') &&
        hs.some((h) => h.path === 'dir' && h.kind === 'created-dir'),
    );
    unlinkSync(r.p('keep'));
    await r.until('deleted keep', (hs) => hs.some((h) => h.path === 'keep' && h.kind === 'deleted'));
    writeFileSync(r.p('.x.swp'), 'ignored');
    writeFileSync(r.p('last'), 'l');
    await r.until('last', (hs) => hs.some((h) => h.path === 'last'));
    assert.ok(r.hints.every((h) => h.path !== '.x.swp'));
  });
});
