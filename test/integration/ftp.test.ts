/**
 * FTP publish mirrors through the real binary against real servers on 127.0.0.1 (TESTBED §2):
 * pure-ftpd (MLSD, MFMT) and vsftpd (LIST and `MDTM <time> <file>` only). A tree is published,
 * edited, renamed and deleted; a file changed on the server by someone else (drift) is reported
 * by name in `sync` and `status` and overwritten; a restarted server is reconnected; FTPS with a self-signed certificate is
 * refused, then accepted when pinned. What the server holds is checked with independent
 * clients (lftp and curl), never through Satchel.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { daemonEnv, readEvents, startWatch, stopWatch } from '../helpers/watch.js';
import {
  assertExit,
  runSatchel,
  satchelJson,
  satchelOk,
  type StatusReport,
  type SyncReport,
} from '../helpers/cli.js';
import { curl, ftpUrl, lftpTree, startPureFtpd, startVsftpd, type Ftpd } from '../helpers/ftpd.js';
import { makeTempDir, removeTempDir } from '../helpers/temp.js';

const PW_ENV = 'SATCHEL_TEST_FTP_PW';

/** The tree first published: names with spaces, unicode, leading dashes, an empty folder. */
const TREE: Record<string, string> = {
  'index.html': '<h1>hello</h1>\n',
  'with space.txt': 'spaced\n',
  'ünïcödé 名前.txt': 'unicode\n',
  '-leading-dash.txt': 'dash\n',
  'docs/guide.md': '# guide\n',
  'docs/deep/er/note.txt': 'deep\n',
};

function writeCaseTree(work: string, tree: Record<string, string>): void {
  for (const [p, content] of Object.entries(tree)) {
    mkdirSync(join(work, p, '..'), { recursive: true });
    writeFileSync(join(work, p), content);
  }
}

/** What the server holds below the mirror folder, through lftp, without Satchel's marker. */
function served(ftpd: Ftpd, folder: string): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const [p, c] of lftpTree(ftpd, folder)) if (p !== '.satchel-mirror') out[p] = c;
  return out;
}

function expected(
  tree: Record<string, string>,
  emptyDirs: readonly string[] = [],
): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const [p, c] of Object.entries(tree)) {
    out[p] = c;
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) out[parts.slice(0, i).join('/')] = null;
  }
  for (const d of emptyDirs) out[d] = null;
  return out;
}

function noTemps(tree: Record<string, string | null>): void {
  const temps = Object.keys(tree).filter((p) => p.split('/').some((s) => s.startsWith('.satchel-tmp-')));
  assert.deepEqual(temps, [], 'temporary files left on the server');
}

/** The publish/edit/rename/delete/drift/reconnect flow, against one server. */
async function publishFlow(
  top: string,
  start: () => Promise<Ftpd>,
  restart: (old: Ftpd) => Promise<Ftpd>,
  exactTimes: boolean,
): Promise<void> {
  let ftpd = await start();
  try {
    const work = join(top, 'case');
    const env = { [PW_ENV]: ftpd.password };
    const url = `ftp://${ftpd.user}@${ftpd.host}:${ftpd.port}/${ftpd.folder}`;
    await satchelOk(['init', work]);
    writeCaseTree(work, TREE);
    mkdirSync(join(work, 'empty'));
    const old = Date.UTC(2023, 4, 6, 7, 8, 9);
    utimesSync(join(work, 'index.html'), old / 1000, old / 1000);

    // Without --push-only the mirror is refused: Satchel never reads an FTP mirror back.
    const refused = assertExit(await runSatchel(['-C', work, 'mirror', 'add', 'site', url], { env }), 1);
    assert.match(refused.stderr, /push-only/);
    await satchelOk(['-C', work, 'mirror', 'add', 'site', url, '--push-only', '--password-env', PW_ENV], {
      env,
    });
    const config = readFileSync(join(work, '.satchel', 'config.toml'), 'utf8');
    assert.match(config, new RegExp(`password_env = "${PW_ENV}"`));
    assert.ok(
      !config.includes(ftpd.password === '' ? '\0' : ftpd.password),
      'the password is never in the config',
    );

    const sync = (code = 0) => satchelJson<SyncReport>(['-C', work, 'sync'], { env }, code);
    const first = (await sync()).mirrors[0]!;
    assert.equal(first.state, 'synced', JSON.stringify(first));
    let tree = served(ftpd, ftpd.folder);
    assert.deepEqual(tree, expected(TREE, ['empty']));
    // The time is set on the server (MFMT or MDTM): curl reads it back with MDTM.
    const head = curl(ftpd, ['-I', ftpUrl(ftpd, `${ftpd.folder}/index.html`)]);
    assert.match(head, /Last-Modified: Sat, 06 May 2023 07:08:09 GMT/);

    // A second sync knows every file is current: nothing is uploaded again.
    const quiet = (await sync()).mirrors[0]!;
    assert.deepEqual(
      [quiet.state, quiet.out, quiet.problems.length],
      ['synced', 0, 0],
      JSON.stringify(quiet),
    );

    // Edit, rename, delete, and a new folder.
    writeFileSync(join(work, 'docs/guide.md'), '# guide, edited\n');
    renameSync(join(work, 'with space.txt'), join(work, 'renamed with space.txt'));
    rmSync(join(work, '-leading-dash.txt'));
    rmSync(join(work, 'docs/deep'), { recursive: true });
    writeCaseTree(work, { 'new/file.txt': 'new\n' });
    const second = (await sync()).mirrors[0]!;
    assert.equal(second.state, 'synced', JSON.stringify(second));
    const now: Record<string, string> = {
      'index.html': TREE['index.html']!,
      'renamed with space.txt': 'spaced\n',
      'ünïcödé 名前.txt': 'unicode\n',
      'docs/guide.md': '# guide, edited\n',
      'new/file.txt': 'new\n',
    };
    tree = served(ftpd, ftpd.folder);
    noTemps(tree);
    assert.deepEqual(tree, expected(now, ['empty']));

    // Drift: someone changes a file on the server directly (curl upload) → reported, overwritten.
    const drifted = join(top, 'drifted.txt');
    writeFileSync(drifted, 'changed on the server by hand, longer than before\n');
    curl(ftpd, ['-T', drifted, ftpUrl(ftpd, `${ftpd.folder}/ünïcödé 名前.txt`)]);
    const status = await satchelJson<StatusReport>(['-C', work, 'status'], { env });
    const site = status.mirrors[0]!;
    assert.equal(site.pending, 1, 'status shows the drifted file as pending');
    assert.deepEqual([site.drift, site.driftPending], [['ünïcödé 名前.txt'], ['ünïcödé 名前.txt']]);
    const statusText = await satchelOk(['-C', work, 'status'], { env });
    assert.match(
      statusText.stdout,
      /~ ünïcödé 名前\.txt: changed on the mirror \(drift\); the next sync replaces it/,
    );
    const third = (await sync()).mirrors[0]!;
    assert.equal(third.state, 'synced', JSON.stringify(third));
    assert.deepEqual(third.drift, ['ünïcödé 名前.txt'], JSON.stringify(third));
    assert.deepEqual(third.problems, [], 'drift is not a problem');
    assert.equal(third.out, 1);
    assert.deepEqual(served(ftpd, ftpd.folder), expected(now, ['empty']));
    // status remembers what the last sync replaced; nothing is pending any more.
    const replaced = (await satchelJson<StatusReport>(['-C', work, 'status'], { env })).mirrors[0]!;
    assert.deepEqual(
      [replaced.pending, replaced.drift, replaced.driftPending],
      [0, ['ünïcödé 名前.txt'], []],
      JSON.stringify(replaced),
    );
    const after = (await sync()).mirrors[0]!;
    assert.deepEqual([after.out, after.problems.length, after.drift], [0, 0, []], JSON.stringify(after));
    // A later run that finds no drift does not wipe what the last one replaced (under watch the
    // next poll comes seconds later).
    const kept = (await satchelJson<StatusReport>(['-C', work, 'status'], { env })).mirrors[0]!;
    assert.deepEqual(kept.drift, ['ünïcödé 名前.txt']);
    // The human line of a sync that replaces drift.
    curl(ftpd, ['-T', drifted, ftpUrl(ftpd, `${ftpd.folder}/docs/guide.md`)]);
    const humanSync = await satchelOk(['-C', work, 'sync'], { env });
    assert.match(
      humanSync.stdout,
      /~ docs\/guide\.md: changed on the mirror \(drift\); replaced with the case's version/,
    );
    assert.deepEqual(served(ftpd, ftpd.folder), expected(now, ['empty']));
    const quietAgain = (await satchelJson<StatusReport>(['-C', work, 'status'], { env })).mirrors[0]!;
    assert.deepEqual([quietAgain.drift, quietAgain.driftPending], [['docs/guide.md'], []]);

    // The server goes away: absent, nothing changed; it comes back: the next sync converges.
    await ftpd.stop();
    writeFileSync(join(work, 'index.html'), '<h1>while the server was down</h1>\n');
    const down = (await sync()).mirrors[0]!;
    assert.equal(down.state, 'absent', JSON.stringify(down));
    ftpd = await restart(ftpd);
    const back = (await sync()).mirrors[0]!;
    assert.deepEqual([back.state, back.out], ['synced', 1], JSON.stringify(back));
    now['index.html'] = '<h1>while the server was down</h1>\n';
    tree = served(ftpd, ftpd.folder);
    noTemps(tree);
    assert.deepEqual(tree, expected(now, ['empty']));
    if (exactTimes) {
      const t = statSync(join(ftpd.root, ftpd.folder, 'index.html')).mtimeMs;
      assert.equal(t, Math.floor(statSync(join(work, 'index.html')).mtimeMs / 1000) * 1000);
    }
  } finally {
    await ftpd.stop();
  }
}

describe('FTP mirrors through the CLI against a real pure-ftpd (MLSD, MFMT)', () => {
  let top = '';
  before(() => {
    top = makeTempDir('ftp-pure');
  });
  after(() => removeTempDir(top));

  it('publishes, edits, renames, deletes, overwrites drift and reconnects', async () => {
    const dir = join(top, 'server');
    mkdirSync(dir);
    await publishFlow(
      top,
      () => startPureFtpd(dir),
      (old) => startPureFtpd(dir, { port: old.port, root: old.root }),
      true,
    );
  });

  it('names FTP cannot carry are per-path problems; the rest is published; no temporary file stays', async () => {
    const dir = join(top, 'server-names');
    mkdirSync(dir);
    const ftpd = await startPureFtpd(dir);
    try {
      const work = join(top, 'case-names');
      const env = { [PW_ENV]: ftpd.password };
      await satchelOk(['init', work]);
      writeCaseTree(work, {
        'ok.txt': 'ok\n',
        'new\nline.txt': 'nl\n',
        'trail ': 'space\n',
        'back\\slash.txt': 'bs\n',
      });
      const url = `ftp://${ftpd.user}@${ftpd.host}:${ftpd.port}/${ftpd.folder}`;
      await satchelOk(
        ['-C', work, 'mirror', 'add', 'site', url, '--push-only', '--password-env', PW_ENV, '--poll', '1'],
        {
          env,
        },
      );
      for (const round of [1, 2]) {
        const r = (await satchelJson<SyncReport>(['-C', work, 'sync'], { env })).mirrors[0]!;
        assert.equal(r.state, 'synced', `sync ${round}: ${JSON.stringify(r)}`);
        const codes = Object.fromEntries(r.problems.map((p) => [p.path, p.code]));
        assert.equal(codes['new\nline.txt'], 'name-not-storable', JSON.stringify(r.problems));
        assert.equal(codes['trail '], 'name-not-storable', JSON.stringify(r.problems));
        // Refused by the server itself (553): the staged upload is removed again.
        assert.equal(codes['back\\slash.txt'], 'name-not-storable', JSON.stringify(r.problems));
        const tree = served(ftpd, ftpd.folder);
        assert.equal(tree['ok.txt'], 'ok\n');
        noTemps(tree);
      }
      // Under watch the mirror is polled every second: each problem is logged once, not per poll.
      const c = { path: work, mirrors: {}, runOptions: { env } };
      const w = await startWatch(c, { env: daemonEnv(env) });
      try {
        await new Promise((resolve) => setTimeout(resolve, 4500));
        // status asks the running daemon whether the server is there: no password, no prompt.
        const live = await satchelJson<StatusReport>(['-C', work, 'status'], { env: {} });
        assert.deepEqual(
          live.mirrors.map((m) => [m.name, m.present, m.state]),
          [['site', true, 'ok']],
        );
      } finally {
        await stopWatch(w);
      }
      const logged = readEvents(work).filter((e) => e.event === 'problem' && e.paths?.includes('trail '));
      assert.equal(logged.length, 1, JSON.stringify(logged));
    } finally {
      await ftpd.stop();
    }
  });

  it('refuses a wrong password, reads ~/.netrc', async () => {
    const dir = join(top, 'server2');
    mkdirSync(dir);
    const ftpd = await startPureFtpd(dir);
    try {
      const work = join(top, 'case2');
      const url = `ftp://sync@127.0.0.1:${ftpd.port}/pub`;
      await satchelOk(['init', work]);
      const wrong = assertExit(
        await runSatchel(
          ['-C', work, 'mirror', 'add', 'site', url, '--push-only', '--password-env', PW_ENV],
          {
            env: { [PW_ENV]: 'not-the-password' },
          },
        ),
        1,
      );
      assert.match(wrong.stderr, /refused the login as sync/);
      assert.ok(!wrong.stderr.includes('not-the-password'), 'the password is never printed');
      const netrc = join(top, 'netrc');
      writeFileSync(netrc, `machine 127.0.0.1 login sync password ${ftpd.password}\n`, { mode: 0o600 });
      await satchelOk(['-C', work, 'mirror', 'add', 'site', url, '--push-only'], { env: { NETRC: netrc } });
      writeCaseTree(work, { 'a.txt': 'a\n' });
      const report = await satchelJson<SyncReport>(['-C', work, 'sync'], { env: { NETRC: netrc } });
      assert.equal(report.mirrors[0]!.state, 'synced');
      assert.deepEqual(served(ftpd, 'pub'), { 'a.txt': 'a\n' });

      // A server path that is missing, or a file: each said as it is.
      const other = join(top, 'case2b');
      await satchelOk(['init', other]);
      const add = (path: string) =>
        runSatchel(
          ['-C', other, 'mirror', 'add', 'x', `ftp://sync@127.0.0.1:${ftpd.port}/${path}`, '--push-only'],
          { env: { NETRC: netrc } },
        );
      const missing = assertExit(await add('no-such-folder'), 1);
      assert.match(
        missing.stderr,
        /the folder \/?no-such-folder does not exist on .*\nhint: create it on the server/,
      );
      const file = assertExit(await add('pub/a.txt'), 1);
      assert.match(file.stderr, /pub\/a\.txt on .* is a file, not a folder\nhint: a mirror is a folder/);
    } finally {
      await ftpd.stop();
    }
  });

  it('FTPS: a self-signed certificate is refused, then accepted when pinned', async () => {
    const dir = join(top, 'server3');
    mkdirSync(dir);
    const ftpd = await startPureFtpd(dir, { tls: true });
    try {
      const work = join(top, 'case3');
      const env = { [PW_ENV]: ftpd.password };
      const url = `ftps://sync@127.0.0.1:${ftpd.port}/pub`;
      await satchelOk(['init', work]);
      const add = ['-C', work, 'mirror', 'add', 'site', url, '--push-only', '--password-env', PW_ENV];
      const refused = assertExit(await runSatchel(add, { env }), 1);
      assert.match(refused.stderr, /certificate of sync@127\.0\.0\.1:\d+ is not trusted/);
      assert.ok(refused.stderr.includes(`--ftps-fingerprint ${ftpd.fingerprint!}`), refused.stderr);
      const wrongPin = assertExit(
        await runSatchel([...add, '--ftps-fingerprint', 'AB:'.repeat(31) + 'AB'], { env }),
        1,
      );
      assert.match(wrongPin.stderr, /does not match the pinned fingerprint/);
      await satchelOk([...add, '--ftps-fingerprint', ftpd.fingerprint!], { env });
      writeCaseTree(work, { 'secret.txt': 'over TLS\n' });
      const report = await satchelJson<SyncReport>(['-C', work, 'sync'], { env });
      assert.equal(report.mirrors[0]!.state, 'synced', JSON.stringify(report));
      assert.equal(readFileSync(join(ftpd.root, 'pub', 'secret.txt'), 'utf8'), 'over TLS\n');
    } finally {
      await ftpd.stop();
    }
  });
});

describe('FTP mirrors through the CLI against a real vsftpd (LIST and MDTM only)', () => {
  let top = '';
  before(() => {
    top = makeTempDir('ftp-vsftpd');
  });
  after(() => removeTempDir(top));

  it('publishes, edits, renames, deletes, overwrites drift and reconnects', async () => {
    const dir = join(top, 'server');
    mkdirSync(dir);
    await publishFlow(
      top,
      () => startVsftpd(dir),
      (old) => startVsftpd(dir, { port: old.port }),
      true,
    );
  });
});
