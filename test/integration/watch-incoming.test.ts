/**
 * @module test/integration/watch-incoming
 * Incoming changes under the real `satchel watch`: an edit made directly on path mirror `a`
 * (watched) reaches the case and mirror `b`; the case file is replaced by rename (new inode) and
 * carries the source's mtime; while the change is pending the case file is read-only and
 * `status --json` lists it as locked; a user write into the pending window is a conflict and
 * both versions end on the case and every mirror. Desktop notifications go through a fake
 * `notify-send` first on PATH; without any `notify-send` nothing breaks. The event log has
 * `shipped`, `incoming` and `conflict` lines.
 *
 * The pending window is held open deterministically with the test knob
 * `SATCHEL_TEST_HOLD_INCOMING_MS` (src/mirrors/path/path-replica.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { createCase, status, type TestCase } from '../helpers/case.js';
import { makeTempDir } from '../helpers/temp.js';
import { requireRoot, runTool } from '../helpers/process.js';
import { runSatchel } from '../helpers/cli.js';
import { conflictCopies, readTree } from '../helpers/tree.js';
import {
  daemonEnv,
  endWatchSuite,
  readEvents,
  readOnlyFiles,
  readOrUndefined,
  startWatch,
  stopWatch,
  waitForMirrorsEqual,
  waitUntil,
  type WatchProcess,
} from '../helpers/watch.js';

/** How long the daemon keeps an incoming case write pending (staged and locked) in these tests. */
const HOLD_MS = 2500;

/**
 * Puts `content` at `<mirror>/<name>` with mtime `mtime` the way an editor saving on that
 * machine would: written beside it, then renamed into place (one complete event).
 */
function saveOnMirror(root: string, mirror: string, name: string, content: string, mtime: Date): void {
  const staging = join(root, `staging-${name}`);
  writeFileSync(staging, content);
  utimesSync(staging, mtime, mtime);
  renameSync(staging, join(mirror, name));
}

/** Waits until `file` is locked (no write bit) or fails. */
async function waitLocked(file: string): Promise<void> {
  await waitUntil(`${file} to be locked (read-only) while the incoming change is pending`, () => {
    return (statSync(file).mode & 0o222) === 0;
  });
}

describe('satchel watch: incoming changes from a mirror, locking and conflicts', () => {
  let root: string;
  let c: TestCase;
  let daemon: WatchProcess;
  let notifyLog: string;

  before(async () => {
    root = makeTempDir('watch-incoming');
    c = await createCase(root, { a: undefined, b: undefined });
    const bin = join(root, 'bin');
    mkdirSync(bin);
    notifyLog = join(root, 'notify.log');
    writeFileSync(join(bin, 'notify-send'), '#!/bin/sh\nprintf "%s\\n" "$*" >> "$FAKE_NOTIFY_LOG"\n');
    chmodSync(join(bin, 'notify-send'), 0o755);
    daemon = await startWatch(c, {
      env: daemonEnv({
        PATH: `${bin}:${process.env.PATH ?? ''}`,
        FAKE_NOTIFY_LOG: notifyLog,
        SATCHEL_TEST_HOLD_INCOMING_MS: String(HOLD_MS),
      }),
    });
  });

  after(() => endWatchSuite(daemon, root));

  test('an edit on mirror a reaches the case (new inode, source mtime, locked while pending) and mirror b', async () => {
    const caseFile = join(c.path, 'notes.md');
    writeFileSync(caseFile, '# notes\nfirst version\n');
    await waitForMirrorsEqual(c);
    const inoBefore = statSync(caseFile).ino;
    const modeBefore = statSync(caseFile).mode & 0o7777;

    const sourceMtime = new Date(Math.floor(Date.now() / 1000) * 1000 - 90_000 + 123);
    saveOnMirror(root, c.mirrors.a!, 'notes.md', '# notes\nedited on mirror a\n', sourceMtime);
    await waitLocked(caseFile);
    const during = await status(c);
    assert.ok(
      during.locked.some((l) => (l as { path: string }).path === 'notes.md'),
      `status --json does not list notes.md as locked: ${JSON.stringify(during.locked)}`,
    );

    await waitUntil(
      'the edit to reach the case',
      () => readOrUndefined(caseFile)?.includes('edited on mirror a') === true,
    );
    await waitForMirrorsEqual(c);
    const after = statSync(caseFile);
    assert.notEqual(after.ino, inoBefore, 'the case file was not replaced by rename (same inode)');
    assert.ok(
      Math.abs(after.mtimeMs - sourceMtime.getTime()) < 1,
      `the case file does not carry the source mtime: ${after.mtime.toISOString()} vs ${sourceMtime.toISOString()}`,
    );
    assert.equal(after.mode & 0o7777, modeBefore, 'the mode was not restored after the update');
    assert.equal(readFileSync(join(c.mirrors.b!, 'notes.md'), 'utf8'), '# notes\nedited on mirror a\n');
    assert.deepEqual((await status(c)).locked, [], 'a lock is still listed after the update');
    assert.deepEqual(readOnlyFiles(c.path), []);
  });

  test('a user save during the pending window is a conflict: both versions on the case and every mirror', async () => {
    const caseFile = join(c.path, 'plan.txt');
    writeFileSync(caseFile, 'plan v1\n');
    await waitForMirrorsEqual(c);
    saveOnMirror(root, c.mirrors.a!, 'plan.txt', 'plan from mirror a\n', new Date(Date.now() - 5_000));
    await waitLocked(caseFile);
    // Root ignores the read-only mode: the write lands in the pending window.
    writeFileSync(caseFile, 'plan saved by the user meanwhile\n');

    const versions = (dir: string): string[] => {
      const t = readTree(dir);
      return [...t]
        .filter(([p]) => p === 'plan.txt' || (p.startsWith('plan.') && conflictCopies(t).includes(p)))
        .map(([, n]) => n.content!)
        .sort();
    };
    const wanted = ['plan from mirror a\n', 'plan saved by the user meanwhile\n'];
    for (const dir of [c.path, ...Object.values(c.mirrors)])
      await waitUntil(
        `both versions of plan.txt on ${dir}`,
        () => {
          return JSON.stringify(versions(dir)) === JSON.stringify(wanted);
        },
        { timeoutMs: 30_000, detail: () => JSON.stringify(versions(dir)) },
      );
    await waitForMirrorsEqual(c, { timeoutMs: 30_000 });
    assert.equal(conflictCopies(readTree(c.path)).length, 1);
    assert.deepEqual(readOnlyFiles(c.path), [], 'a case file was left read-only');
  });

  test('incoming changes and conflicts were notified; the event log has shipped, incoming and conflict', async () => {
    await waitUntil(
      'notifications',
      () => {
        const log = readOrUndefined(notifyLog) ?? '';
        return /conflict/i.test(log) && /change\(s\) in|in, /.test(log);
      },
      { detail: () => readOrUndefined(notifyLog) ?? '(no notify-send call)' },
    );
    const kinds = new Set(readEvents(c.path).map((e) => e.event));
    for (const k of ['shipped', 'incoming', 'conflict'])
      assert.ok(kinds.has(k), `events.log has no '${k}' line: ${[...kinds].join(', ')}`);
    const conflict = readEvents(c.path).find((e) => e.event === 'conflict');
    assert.ok(conflict?.paths?.includes('plan.txt'), JSON.stringify(conflict));
  });

  test('rm -r of a folder renamed earlier, with a file moved into it: removed everywhere, no false problem', async () => {
    mkdirSync(join(c.path, 'dir'));
    writeFileSync(join(c.path, 'dir', 'in.txt'), 'x');
    writeFileSync(join(c.path, 'loose.bin'), 'y');
    await waitForMirrorsEqual(c);
    renameSync(join(c.path, 'dir'), join(c.path, 'dir2'));
    await waitForMirrorsEqual(c);
    renameSync(join(c.path, 'loose.bin'), join(c.path, 'dir2', 'moved.bin'));
    await waitForMirrorsEqual(c);
    const before = readEvents(c.path).length;
    runTool('rm', ['-r', join(c.path, 'dir2')]);
    await waitForMirrorsEqual(c);
    for (const m of Object.values(c.mirrors))
      assert.equal(readOrUndefined(join(m, 'dir2', 'in.txt')), undefined);
    // The folder's removal waits for its content's: never 'cannot remove dir2: the folder is not empty'.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const problems = readEvents(c.path)
      .slice(before)
      .filter((e) => e.event === 'problem');
    assert.deepEqual(problems, []);
  });

  test('a deletion and a rename in the case are logged as such, not as shipped content', async () => {
    writeFileSync(join(c.path, 'gone.txt'), 'bye');
    writeFileSync(join(c.path, 'before.txt'), 'the same content under a new name');
    await waitForMirrorsEqual(c);
    rmSync(join(c.path, 'gone.txt'));
    renameSync(join(c.path, 'before.txt'), join(c.path, 'after.txt'));
    await waitForMirrorsEqual(c);
    const shipped = (): ReturnType<typeof readEvents> =>
      readEvents(c.path).filter((e) => e.event === 'shipped' && e.mirror === 'a');
    await waitUntil(
      'shipped events that name the deletion and the rename',
      () =>
        shipped().some((e) => (e.deleted as string[] | undefined)?.includes('gone.txt') === true) &&
        shipped().some((e) => JSON.stringify(e.renamed ?? []).includes('["before.txt","after.txt"]')),
      { detail: () => JSON.stringify(shipped().slice(-4)) },
    );
  });
});

describe('satchel watch without notify-send on PATH', () => {
  let root: string;
  let c: TestCase;
  let daemon: WatchProcess;

  before(async () => {
    root = makeTempDir('watch-nonotify');
    c = await createCase(root, { a: undefined, b: undefined });
    const bin = join(root, 'bin');
    mkdirSync(bin);
    // Only a shell: the daemon's look-up of notify-send runs and finds nothing.
    symlinkSync(runTool('sh', ['-c', 'command -v sh']).stdout.trim(), join(bin, 'sh'));
    daemon = await startWatch(c, { env: daemonEnv({ PATH: bin }) });
  });

  after(() => endWatchSuite(daemon, root));

  test('incoming changes still arrive and the daemon keeps running', async () => {
    writeFileSync(join(c.mirrors.a!, 'from-a.txt'), 'made on a\n');
    await waitUntil(
      'the file from a to reach the case',
      () => readOrUndefined(join(c.path, 'from-a.txt')) === 'made on a\n',
    );
    await waitForMirrorsEqual(c);
    writeFileSync(join(c.path, 'from-case.txt'), 'made in the case\n');
    await waitForMirrorsEqual(c);
    assert.equal(daemon.exited(), undefined, 'the daemon exited');
    assert.ok(readEvents(c.path).some((e) => e.event === 'incoming'));
  });
});

describe('satchel watch: an incoming change that does not fit on the case disk', () => {
  test('one no-space problem, no retry storm, the case file intact; it arrives once it fits', async () => {
    requireRoot('mounting a small tmpfs for the case');
    const root = makeTempDir('incoming-full');
    const disk = join(root, 'disk');
    mkdirSync(disk);
    runTool('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'satchel-case-full', disk]);
    let w: WatchProcess | undefined;
    try {
      const c = await createCase(disk, { m: join(root, 'mirror') });
      writeFileSync(join(c.path, 'doc.bin'), Buffer.alloc(500 * 1024, 1));
      await runSatchel(['-C', c.path, 'sync']);
      w = await startWatch(c);
      saveOnMirror(root, c.mirrors.m!, 'doc.bin', 'x'.repeat(3 * 1024 * 1024), new Date());
      await waitUntil('the no-space problem', () =>
        readEvents(c.path).some((e) => e.event === 'problem' && /no-space/.test(e.message ?? '')),
      );
      // Our own lock and unlock of the file after the refused write must not start another try
      // at once, again and again (a tight loop that filled the disk with the state's journal).
      await new Promise((resolve) => setTimeout(resolve, 5000));
      const logged = readEvents(c.path).filter((e) => e.event === 'problem' || e.event === 'failed');
      assert.ok(logged.length <= 2, `logged ${logged.length} times: ${JSON.stringify(logged.slice(0, 3))}`);
      assert.equal(readFileSync(join(c.path, 'doc.bin')).length, 500 * 1024, 'the case file changed');
      assert.notEqual(statSync(join(c.path, 'doc.bin')).mode & 0o200, 0, 'the case file was left locked');
      // A version that fits arrives with the next retry.
      saveOnMirror(root, c.mirrors.m!, 'doc.bin', 'fits\n', new Date());
      await waitUntil(
        'the fitting version in the case',
        () => readOrUndefined(join(c.path, 'doc.bin')) === 'fits\n',
        {
          timeoutMs: 30_000,
        },
      );
    } finally {
      if (w !== undefined) await stopWatch(w);
      runTool('umount', [disk]);
    }
  });
});

describe('satchel watch: an editor on a mirror saving through a temporary file', () => {
  test('the case and the other mirror get the saved file, never the temporary one', async () => {
    const root = makeTempDir('incoming-tmp');
    const c = await createCase(root, { a: undefined, b: undefined });
    writeFileSync(join(c.path, 'doc.txt'), 'v0\n');
    await runSatchel(['-C', c.path, 'sync']);
    const w = await startWatch(c);
    try {
      for (let i = 1; i <= 5; i++) {
        // What many editors do: write beside the file, then rename over it.
        writeFileSync(join(c.mirrors.a!, '.doc.tmp'), `v${i}\n`);
        await new Promise((resolve) => setTimeout(resolve, 40));
        renameSync(join(c.mirrors.a!, '.doc.tmp'), join(c.mirrors.a!, 'doc.txt'));
        await new Promise((resolve) => setTimeout(resolve, 60));
      }
      await waitUntil('the last save in the case and on b', () =>
        [c.path, c.mirrors.b!].every((d) => readOrUndefined(join(d, 'doc.txt')) === 'v5\n'),
      );
      const mentions = readEvents(c.path).filter((e) => e.paths?.some((p) => p.includes('.doc.tmp')));
      assert.deepEqual(mentions, [], 'the temporary file was brought in or shipped');
    } finally {
      await stopWatch(w);
    }
  });
});
