/**
 * @module test/integration/watch-lifecycle
 * The life of the real `satchel watch` process with two path mirrors: only one daemon per case,
 * an absent mirror (its folder renamed away) does not delay the other and catches up by itself
 * when it is back, 500 changes pending at a SIGKILL all arrive after a restart (no conflict
 * copy, no temporary file, no case file left read-only), and SIGTERM exits 0 promptly, releases
 * the case lock and lets a later `satchel sync` run (and find nothing left to do).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeRun, runSatchel, satchelOk, type SyncReport } from '../helpers/cli.js';
import { assertQuietSync, createCase, status, type TestCase } from '../helpers/case.js';
import { runTool } from '../helpers/process.js';
import { makeTempDir } from '../helpers/temp.js';
import { conflictCopies, readTree, satchelTempFiles, writeTree } from '../helpers/tree.js';
import {
  endWatchSuite,
  readEvents,
  readOnlyFiles,
  readOrUndefined,
  daemonEnv,
  spawnWatch,
  startWatch,
  stopWatch,
  waitForMirrorsEqual,
  waitUntil,
  type WatchProcess,
} from '../helpers/watch.js';

describe('satchel watch: one per case, absent mirrors, SIGKILL and SIGTERM', () => {
  let root: string;
  let c: TestCase;
  let daemon: WatchProcess | undefined;

  before(async () => {
    root = makeTempDir('watch-life');
    c = await createCase(root, { a: undefined, b: undefined });
    writeTree(c.path, { 'readme.txt': 'hello\n' });
    daemon = await startWatch(c);
    await waitForMirrorsEqual(c);
  });

  after(() => endWatchSuite(daemon, root));

  test('a second satchel watch on the same case exits 1 naming the running pid', async () => {
    const second = await runSatchel(['-C', c.path, 'watch'], { timeoutMs: 30_000 });
    assert.equal(second.code, 1, describeRun(second));
    assert.match(second.stderr, new RegExp(`pid ${daemon!.pid}\\b`), describeRun(second));
    assert.equal(daemon!.exited(), undefined, 'the first daemon stopped');
  });

  test('an absent mirror does not delay the other; it catches up by itself when it is back', async () => {
    const b = c.mirrors.b!;
    const away = `${b}-unplugged`;
    renameSync(b, away);
    try {
      writeFileSync(join(c.path, 'while-b-away.txt'), 'saved while b was away\n');
      writeFileSync(join(c.path, 'readme.txt'), 'hello again\n');
      await waitUntil(
        'the saves to reach mirror a',
        () =>
          readOrUndefined(join(c.mirrors.a!, 'while-b-away.txt')) === 'saved while b was away\n' &&
          readOrUndefined(join(c.mirrors.a!, 'readme.txt')) === 'hello again\n',
      );
      await waitForMirrorsEqual(c, { mirrors: ['a'] });
      assert.equal(existsSync(join(away, 'while-b-away.txt')), false);
    } finally {
      renameSync(away, b);
    }
    await waitForMirrorsEqual(c, { timeoutMs: 20_000 });
  });

  test('500 changes pending at a SIGKILL all arrive after a restart', async (t) => {
    const spec: Record<string, string> = {};
    for (let i = 0; i < 100; i++) spec[`kill/existing${i}.txt`] = `existing ${i}\n`;
    writeTree(c.path, spec);
    await waitForMirrorsEqual(c);

    // 100 edits and 400 new files, then SIGKILL at once: most are still queued or in flight.
    for (let i = 0; i < 100; i++) writeFileSync(join(c.path, `kill/existing${i}.txt`), `edited ${i}\n`);
    for (let i = 0; i < 400; i++) writeFileSync(join(c.path, `kill/n${i}.txt`), `new ${i}\n`);
    const killed = await stopWatch(daemon!, 'SIGKILL');
    assert.equal(killed.result.signal, 'SIGKILL');
    daemon = undefined;
    const reached = Object.values(c.mirrors).map(
      (m) =>
        [...readTree(m)].filter(
          ([p, node]) => p.startsWith('kill/') && /^(edited|new) /.test(node.content ?? ''),
        ).length,
    );
    t.diagnostic(`changes on the mirrors when the daemon was killed: ${reached.join(' and ')} of 500`);

    daemon = await startWatch(c);
    await waitForMirrorsEqual(c, { timeoutMs: 60_000, intervalMs: 100 });
    for (const m of Object.values(c.mirrors)) {
      const t = readTree(m);
      assert.equal([...t.keys()].filter((p) => p.startsWith('kill/') && p.endsWith('.txt')).length, 500);
      assert.equal(t.get('kill/existing42.txt')?.content, 'edited 42\n');
      assert.deepEqual(conflictCopies(t), [], `conflict copies on ${m}`);
      assert.deepEqual(satchelTempFiles(m), [], `temporary files on ${m}`);
    }
    assert.deepEqual(conflictCopies(readTree(c.path)), []);
    assert.deepEqual(satchelTempFiles(c.path), []);
    assert.deepEqual(readOnlyFiles(c.path), [], 'case files left read-only');
  });

  test('SIGTERM: exit 0 promptly, the case lock released, and a later satchel sync works', async () => {
    writeFileSync(join(c.path, 'last.txt'), 'last save before the stop\n');
    const { result, inTime } = await stopWatch(daemon!, 'SIGTERM', 10_000);
    daemon = undefined;
    assert.ok(inTime, `satchel watch did not exit within 10 s of SIGTERM: ${describeRun(result)}`);
    assert.equal(result.code, 0, describeRun(result));
    assert.equal(existsSync(join(c.path, '.satchel', 'lock')), false, '.satchel/lock is still there');
    // Whatever the stop left, a one-shot sync finishes; then nothing is left to do.
    const r = await runSatchel(['-C', c.path, 'sync', '--json']);
    assert.equal(r.code, 0, describeRun(r));
    await assertQuietSync(c);
    for (const m of Object.values(c.mirrors))
      assert.equal(readFileSync(join(m, 'last.txt'), 'utf8'), 'last save before the stop\n');
  });

  test('sync while watch still runs its first reconciliation waits for it, then goes through it; status says it is starting', async () => {
    const other = await createCase(join(root, 'starting'), { m: undefined });
    writeTree(other.path, { 'a.txt': 'a1\n', 'b.txt': 'b1\n' });
    await satchelOk(['-C', other.path, 'sync']);
    // Edits on the mirror: the first reconciliation brings them in, each held 5 s while locked.
    writeTree(other.mirrors.m!, { 'a.txt': 'a2 from the mirror\n', 'b.txt': 'b2 from the mirror\n' });
    const w = spawnWatch(other, { env: daemonEnv({ SATCHEL_TEST_HOLD_INCOMING_MS: '5000' }) });
    try {
      await waitUntil('the daemon holding the case', () =>
        (readOrUndefined(join(other.path, '.satchel', 'lock')) ?? '').includes('watching'),
      );
      const st = await runSatchel(['-C', other.path, 'status']);
      assert.match(st.stdout, /pending unknown: satchel watch \(pid \d+\) is starting/, describeRun(st));
      const r = await runSatchel(['-C', other.path, 'sync', '--json']);
      assert.equal(r.code, 0, describeRun(r));
      assert.match(r.stderr, /waiting for satchel watch \(pid \d+\) to finish starting/);
      assert.equal(r.json<SyncReport>().mirrors[0]?.state, 'synced');
      assert.equal(readFileSync(join(other.path, 'a.txt'), 'utf8'), 'a2 from the mirror\n');
    } finally {
      await stopWatch(w);
    }
  });

  test('a named pipe or a name that is not UTF-8 saved under watch is a problem, logged and in status', async () => {
    const other = await createCase(join(root, 'special'), { m: undefined });
    writeTree(other.path, { 'plain.txt': 'plain\n' });
    const w = await startWatch(other);
    try {
      await waitForMirrorsEqual(other);
      runTool('mkfifo', [join(other.path, 'pipe1')]);
      writeFileSync(Buffer.from(`${other.path}/bad\u00ffname.txt`, 'latin1'), 'latin-1 name\n');
      await waitUntil('both logged as problems', () => {
        const paths = readEvents(other.path)
          .filter((e) => e.event === 'problem')
          .flatMap((e) => e.paths ?? []);
        return paths.includes('pipe1') && paths.includes('bad\ufffdname.txt');
      });
      await waitUntil('both in daemon.json', () => {
        const text = readOrUndefined(join(other.path, '.satchel', 'daemon.json')) ?? '';
        return text.includes('special-file') && text.includes('not valid UTF-8');
      });
      const st = await runSatchel(['-C', other.path, 'status', '--json']);
      const m = st.json<{ mirrors: { problems: { path: string; code: string }[] }[] }>().mirrors[0]!;
      assert.deepEqual(
        m.problems.map((p) => [p.path, p.code]).sort(),
        [
          ['bad\ufffdname.txt', 'unreadable'],
          ['pipe1', 'special-file'],
        ],
        describeRun(st),
      );
      const human = await runSatchel(['-C', other.path, 'status']);
      assert.match(human.stdout, /\(2 paths with a problem\)/);
      assert.match(human.stdout, /! pipe1: pipe1 is a named pipe/);
    } finally {
      await stopWatch(w);
    }
  });

  test("another case's stick put where the mirror was: watch says whose marker it finds, and leaves it alone", async () => {
    const mine = await createCase(join(root, 'swap'), { m: undefined });
    const theirs = await createCase(join(root, 'swap-other'), { m: undefined });
    writeTree(mine.path, { 'mine.txt': 'mine\n' });
    const w = await startWatch(mine);
    try {
      await waitForMirrorsEqual(mine);
      renameSync(mine.mirrors.m!, `${mine.mirrors.m!}-away`);
      await waitUntil('the stick seen gone', () =>
        readEvents(mine.path).some((e) => e.event === 'absent' && /not found/.test(String(e.message))),
      );
      renameSync(theirs.mirrors.m!, mine.mirrors.m!);
      await waitUntil('the absent line naming the other marker', () =>
        readEvents(mine.path).some(
          (e) => e.event === 'absent' && /belongs to another mirror/.test(String(e.message)),
        ),
      );
      writeFileSync(join(mine.path, 'later.txt'), 'later\n');
      await waitUntil('the daemon publishes the new reason', () =>
        (readOrUndefined(join(mine.path, '.satchel', 'daemon.json')) ?? '').includes(
          'belongs to another mirror',
        ),
      );
      const st = await runSatchel(['-C', mine.path, 'status']);
      assert.match(st.stdout, /m: absent — the marker at .* belongs to another mirror/, describeRun(st));
      assert.equal(
        existsSync(join(mine.mirrors.m!, 'mine.txt')),
        false,
        "the other case's stick was written to",
      );
    } finally {
      await stopWatch(w);
    }
  });

  test('a file a .satchelignore rule left out goes out as soon as the rule is taken away', async () => {
    const other = await createCase(join(root, 'unignore'), { m: undefined });
    writeTree(other.path, { '.satchelignore': '*.tmpx\n', 'plain.txt': 'plain\n' });
    const w = await startWatch(other);
    try {
      await waitForMirrorsEqual(other);
      const savedAt = Date.now();
      writeFileSync(join(other.path, 'keep.tmpx'), 'saved while ignored\n');
      writeFileSync(join(other.path, 'marker.txt'), 'shipped after the ignored save\n');
      await waitUntil('marker.txt on the mirror', () => existsSync(join(other.mirrors.m!, 'marker.txt')));
      // status's last sync counts the daemon's shipped saves, not only its full reconciliations.
      await waitUntil('status: last synced after the save', () => {
        const text = readOrUndefined(join(other.path, '.satchel', 'daemon.json')) ?? '';
        return (
          /"lastSyncAt":\s*(\d+)/.test(text) && Number(/"lastSyncAt":\s*(\d+)/.exec(text)![1]) >= savedAt
        );
      });
      const st = (await runSatchel(['-C', other.path, 'status', '--json'])).json<{
        mirrors: { lastSynced: string | null }[];
      }>();
      assert.ok(Date.parse(st.mirrors[0]!.lastSynced ?? '') >= savedAt, JSON.stringify(st.mirrors[0]));
      assert.equal(existsSync(join(other.mirrors.m!, 'keep.tmpx')), false, 'an ignored file was shipped');
      rmSync(join(other.path, '.satchelignore'));
      await waitUntil('keep.tmpx on the mirror once the rule is gone', () =>
        existsSync(join(other.mirrors.m!, 'keep.tmpx')),
      );
      assert.equal(readFileSync(join(other.mirrors.m!, 'keep.tmpx'), 'utf8'), 'saved while ignored\n');
    } finally {
      await stopWatch(w);
    }
  });

  test('rm -r of most of the case halts the mirror instead of emptying it; sync --allow-mass-delete goes through the daemon', async () => {
    const other = await createCase(join(root, 'mass'), { m: undefined });
    const spec: Record<string, string> = { 'keep.txt': 'keep\n' };
    for (let i = 0; i < 30; i++) spec[`data/f${i}.txt`] = `file ${i}\n`;
    writeTree(other.path, spec);
    const w = await startWatch(other);
    try {
      await waitForMirrorsEqual(other);
      rmSync(join(other.path, 'data'), { recursive: true });
      await waitUntil('the mirror halted by the mass-delete check', () =>
        readEvents(other.path).some((e) => e.event === 'halted' && e.mirror === 'm'),
      );
      // The first deletion the watcher reports may go out alone; the bulk must not.
      const left = [...readTree(other.mirrors.m!).keys()].filter((p) => /^data\/f\d+\.txt$/.test(p));
      assert.ok(left.length >= 25, `the mirror lost ${30 - left.length} of 30 files before the halt`);
      // status, answered from the daemon, says why and what to do.
      await waitUntil('the daemon publishes the halt', () =>
        readFileSync(join(other.path, '.satchel', 'daemon.json'), 'utf8').includes('"halted"'),
      );
      const st = await runSatchel(['-C', other.path, 'status']);
      assert.match(st.stdout, /m: HALTED — would delete \d+ of \d+ files on m\n/);
      assert.match(
        st.stdout,
        /hint: the files are gone from the case: if that was meant, run `satchel sync m --allow-mass-delete`/,
      );
      // The hint's command works while watch runs: it asks the daemon, which lifts the halt.
      const again = await runSatchel(['-C', other.path, 'sync', 'm', '--allow-mass-delete', '--json']);
      assert.equal(again.code, 0, describeRun(again));
      assert.equal(again.json<SyncReport>().mirrors[0]?.state, 'synced');
      assert.equal(readTree(other.mirrors.m!).has('data/f0.txt'), false);
      // And the daemon goes on shipping saves.
      writeFileSync(join(other.path, 'after.txt'), 'after\n');
      await waitUntil('after.txt on the mirror', () => existsSync(join(other.mirrors.m!, 'after.txt')));
    } finally {
      await stopWatch(w);
    }
  });

  test('rm -rf of a big folder on a mirror (many watcher batches) is halted whole: the case and the other mirror keep it', async () => {
    const other = await createCase(join(root, 'mass-mirror'), { a: undefined, b: undefined });
    const spec: Record<string, string> = { 'top.txt': 'top\n' };
    for (let i = 0; i < 3000; i++) spec[`docs/d${i % 10}/f${i}.txt`] = `work ${i}\n`;
    writeTree(other.path, spec);
    await runSatchel(['-C', other.path, 'sync']);
    const w = await startWatch(other);
    try {
      runTool('rm', ['-rf', join(other.mirrors.a!, 'docs')]);
      await waitUntil('mirror a halted by the mass-delete check', () =>
        readEvents(other.path).some((e) => e.event === 'halted' && e.mirror === 'a'),
      );
      // Judged whole once the deleting was over: at most the first batch went alone.
      const count = (dir: string): number =>
        [...readTree(dir).keys()].filter((p) => p.endsWith('.txt')).length;
      assert.ok(count(other.path) >= 2990, `the case lost ${3001 - count(other.path)} files before the halt`);
      assert.ok(count(other.mirrors.b!) >= 2990, `mirror b lost ${3001 - count(other.mirrors.b!)} files`);
    } finally {
      await stopWatch(w);
    }
  });

  test('a halt ends by itself when the files come back; later saves ship again', async () => {
    const other = await createCase(join(root, 'halt-back'), { m: undefined });
    const spec: Record<string, string> = { 'notes.txt': 'n\n' };
    for (let i = 0; i < 20; i++) spec[`photos/p${i}.jpg`] = `photo ${i}\n`;
    writeTree(other.path, spec);
    await runSatchel(['-C', other.path, 'sync']);
    const w = await startWatch(other);
    try {
      renameSync(join(other.path, 'photos'), join(root, 'halt-back', 'photos-away'));
      await waitUntil('the mirror halted', () =>
        readEvents(other.path).some((e) => e.event === 'halted' && e.mirror === 'm'),
      );
      renameSync(join(root, 'halt-back', 'photos-away'), join(other.path, 'photos'));
      writeFileSync(join(other.path, 'notes.txt'), 'important edit\n');
      await waitUntil(
        'the edit on the mirror',
        () => readFileSync(join(other.mirrors.m!, 'notes.txt'), 'utf8') === 'important edit\n',
      );
      assert.equal(readTree(other.mirrors.m!).has('photos/p7.jpg'), true);
      // status hears it from the daemon (its status file is rewritten within moments).
      let st = (await status(other)).mirrors[0]!;
      for (let i = 0; i < 20 && st.state !== 'ok'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        st = (await status(other)).mirrors[0]!;
      }
      assert.equal(st.state, 'ok', JSON.stringify(st));
    } finally {
      await stopWatch(w);
    }
  });

  test('resolve while watch runs: the daemon settles the conflict and ships the result', async () => {
    const other = await createCase(join(root, 'resolving'), { m: undefined });
    writeTree(other.path, { 'notes.txt': 'v1\n' });
    await runSatchel(['-C', other.path, 'sync']);
    const t = Date.now();
    writeTree(other.mirrors.m!, { 'notes.txt': { content: 'mirror edit\n', mtime: t - 20_000 } });
    writeTree(other.path, { 'notes.txt': { content: 'case edit\n', mtime: t - 10_000 } });
    await runSatchel(['-C', other.path, 'sync']);
    const copies = conflictCopies(readTree(other.path));
    assert.equal(copies.length, 1, JSON.stringify(copies));
    const w = await startWatch(other);
    try {
      const r = await runSatchel(['-C', other.path, 'resolve', 'notes.txt', '--keep', 'mirror']);
      assert.equal(r.code, 0, describeRun(r));
      assert.match(r.stdout, /running satchel watch spreads this/);
      await waitUntil('the mirror version everywhere, the copy gone', () =>
        [other.path, other.mirrors.m!].every(
          (dir) =>
            readFileSync(join(dir, 'notes.txt'), 'utf8') === 'mirror edit\n' &&
            conflictCopies(readTree(dir)).length === 0,
        ),
      );
    } finally {
      await stopWatch(w);
    }
  });

  test('the case folder moved away: exit 1 with a plain message, the mirrors left as they were', async () => {
    const other = await createCase(join(root, 'moving'), { m: undefined });
    writeTree(other.path, { 'kept.txt': 'kept\n' });
    const w = await startWatch(other, { args: ['--json'] });
    await waitForMirrorsEqual(other);
    const moved = `${other.path}-moved`;
    renameSync(other.path, moved);
    writeFileSync(join(moved, 'after.txt'), 'written after the move\n');
    try {
      await waitUntil('satchel watch to stop by itself', () => w.exited() !== undefined, {
        timeoutMs: 20_000,
      });
    } finally {
      if (w.exited() === undefined) await stopWatch(w, 'SIGKILL');
    }
    const result = w.exited()!;
    assert.equal(result.code, 1, describeRun(result));
    assert.match(result.stderr, /^satchel: the case folder .* is gone \(moved or deleted\); watch stops$/m);
    assert.doesNotMatch(result.stderr, /at async|SatchelError/, 'no stack trace');
    // With --json, stdout is JSON lines: the start, then the error on a line of its own.
    const lines = result.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2, result.stdout);
    assert.ok('watching' in (JSON.parse(lines[0]!) as object));
    assert.equal((JSON.parse(lines[1]!) as { error: { code: string } }).error.code, 'not-a-case');
    assert.equal(readFileSync(join(other.mirrors.m!, 'kept.txt'), 'utf8'), 'kept\n');
    assert.equal(existsSync(join(other.mirrors.m!, 'after.txt')), false);
  });
});
