/**
 * SFTP mirrors through the real binary against a real OpenSSH sshd on 127.0.0.1 (TESTBED §1):
 * host-key refusal and acceptance, a changed key, hashed known_hosts entries, `~/.ssh/config`
 * aliases, a failed login, and two-way sync with edits, renames and conflicts. The client's SSH
 * folder is a temp folder passed as `SATCHEL_SSH_DIR`: the real `~/.ssh` is never touched.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { assertExit, runSatchel, satchelJson, satchelOk, type SyncReport } from '../helpers/cli.js';
import { runTool } from '../helpers/process.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { makeTempDir, removeTempDir } from '../helpers/temp.js';
import { readTree, writeTree } from '../helpers/tree.js';
import { daemonEnv, readEvents, spawnWatch, startWatch, stopWatch, waitUntil } from '../helpers/watch.js';

/** Everything below `root` except Satchel's own files, as path → content. */
function contents(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [p, n] of readTree(root)) if (n.kind === 'file') out[p] = n.content ?? '';
  return out;
}

function temps(root: string): string[] {
  return (readdirSync(root, { recursive: true }) as string[]).filter((p) =>
    p.split('/').some((s) => s.startsWith('.satchel-tmp-')),
  );
}

describe('SFTP mirrors through the CLI against a real sshd', () => {
  let top = '';
  let sshd: Sshd | undefined;
  let env: NodeJS.ProcessEnv = {};
  before(async () => {
    top = makeTempDir('sftp-cli');
    mkdirSync(join(top, 'server'));
    sshd = await startSshd(join(top, 'server'), { trustHostKey: false });
    env = { SATCHEL_SSH_DIR: sshd.sshDir, SSH_AUTH_SOCK: '' };
  });
  after(async () => {
    await sshd?.stop();
    removeTempDir(top);
  });

  const url = (dir: string): string => `sftp://root@127.0.0.1:${sshd!.port}${dir}`;
  const sync = (work: string, code = 0) => satchelJson<SyncReport>(['-C', work, 'sync'], { env }, code);
  /** A new case `work-<name>` with the empty server folder `remote-<name>` as its mirror `srv`. */
  const newPair = async (name: string): Promise<{ work: string; remote: string }> => {
    const work = join(top, `work-${name}`);
    const remote = join(top, `remote-${name}`);
    mkdirSync(remote);
    await satchelOk(['init', work]);
    await satchelOk(['-C', work, 'mirror', 'add', 'srv', url(remote), '--accept-new-host-key'], { env });
    return { work, remote };
  };

  it('refuses an unknown host key with its fingerprint, then accepts it with --accept-new-host-key', async () => {
    const work = join(top, 'work1');
    const remote = join(top, 'remote1');
    mkdirSync(remote);
    await satchelOk(['init', work]);
    const refused = assertExit(
      await runSatchel(['-C', work, 'mirror', 'add', 'srv', url(remote)], { env }),
      1,
    );
    assert.match(
      refused.stderr,
      new RegExp(
        `host key of \\[127\\.0\\.0\\.1\\]:${sshd!.port} is not known: ssh-ed25519 ${sshd!.fingerprint.replace(/[+/]/g, '\\$&')}`,
      ),
    );
    assert.match(refused.stderr, /--accept-new-host-key/);
    assert.equal(existsSync(join(sshd!.sshDir, 'known_hosts')), false, 'nothing recorded without consent');
    assert.equal(existsSync(join(remote, '.satchel-mirror')), false);

    await satchelOk(['-C', work, 'mirror', 'add', 'srv', url(remote), '--accept-new-host-key'], { env });
    assert.equal(readFileSync(join(sshd!.sshDir, 'known_hosts'), 'utf8').trim(), sshd!.knownHostsLine);
    assert.ok(existsSync(join(remote, '.satchel-mirror')));

    // Hashed entries (ssh-keygen -H) are recognised too.
    runTool('ssh-keygen', ['-H', '-f', join(sshd!.sshDir, 'known_hosts')]);
    assert.match(readFileSync(join(sshd!.sshDir, 'known_hosts'), 'utf8'), /^\|1\|/);
    writeTree(work, { 'hello.txt': 'hello' });
    const r = await sync(work);
    assert.equal(r.mirrors[0]!.state, 'synced', JSON.stringify(r));
    assert.equal(readFileSync(join(remote, 'hello.txt'), 'utf8'), 'hello');
  });

  it('two-way sync: edits both ways, renames as renames, conflicts keep both, mtimes in whole seconds', async () => {
    const { work, remote } = await newPair('two-way');
    writeTree(work, {
      'notes.txt': { content: 'notes v1', mtime: Date.UTC(2024, 0, 2, 3, 4, 5, 678) },
      'src/main.ts': 'main',
      'src/lib/util.ts': 'util',
      'big.bin': Buffer.alloc(3 * 1024 * 1024, 7),
      'run.sh': { content: '#!/bin/sh\n', mode: 0o755 },
      empty: { dir: true },
      link: { symlink: 'notes.txt' },
    });
    let r = await sync(work);
    assert.equal(r.mirrors[0]!.state, 'synced', JSON.stringify(r));
    assert.equal(readTree(remote).get('link')?.target, 'notes.txt');
    assert.equal(readTree(remote).get('empty')?.kind, 'dir');
    assert.deepEqual(contents(remote), contents(work));
    assert.equal(statSync(join(remote, 'notes.txt')).mtimeMs, Date.UTC(2024, 0, 2, 3, 4, 5));
    assert.equal(statSync(join(remote, 'run.sh')).mode & 0o111, 0o111);
    r = await sync(work);
    assert.deepEqual([r.mirrors[0]!.in, r.mirrors[0]!.out], [0, 0], 'a second sync does nothing');

    // An edit on the server comes back; a rename in the case is a rename on the server.
    writeFileSync(join(remote, 'src/main.ts'), 'main edited on the server');
    const inode = statSync(join(remote, 'src/lib/util.ts')).ino;
    renameSync(join(work, 'src/lib'), join(work, 'src/library'));
    r = await sync(work);
    assert.equal(r.mirrors[0]!.state, 'synced', JSON.stringify(r));
    assert.equal(readFileSync(join(work, 'src/main.ts'), 'utf8'), 'main edited on the server');
    assert.equal(statSync(join(remote, 'src/library/util.ts')).ino, inode, 'moved, not copied');
    assert.equal(existsSync(join(remote, 'src/lib')), false);

    // Both sides edit the same file: both versions are kept, on both sides.
    writeTree(work, { 'notes.txt': { content: 'case edit', mtime: Date.UTC(2024, 0, 3) } });
    writeTree(remote, { 'notes.txt': { content: 'server edit, newer', mtime: Date.UTC(2024, 0, 4) } });
    r = await sync(work);
    assert.equal(r.mirrors[0]!.conflicts.length, 1, JSON.stringify(r));
    const copy = r.mirrors[0]!.conflicts[0]!.copyPath;
    assert.equal(readFileSync(join(work, 'notes.txt'), 'utf8'), 'server edit, newer');
    assert.equal(readFileSync(join(work, copy), 'utf8'), 'case edit');
    r = await sync(work);
    assert.equal(r.mirrors[0]!.state, 'synced', JSON.stringify(r));
    assert.deepEqual(contents(remote), contents(work));
    assert.deepEqual(temps(remote), []);
  });

  it('a named pipe or a name that is not UTF-8 on the server is a problem named by the sync; eject of a server says what it did', async () => {
    const { work, remote } = await newPair('special');
    writeTree(remote, { 'fine.txt': 'fine' });
    runTool('mkfifo', [join(remote, 'pipe')]);
    // "café.txt" written in Latin-1: the byte 0xE9 alone is not UTF-8.
    writeFileSync(Buffer.from(`${remote}/caf\u00e9-latin1.txt`, 'latin1'), 'latin-1 name');
    const r = await sync(work);
    const m = r.mirrors[0]!;
    assert.equal(m.state, 'synced', JSON.stringify(r));
    assert.equal(readFileSync(join(work, 'fine.txt'), 'utf8'), 'fine');
    const problems = m.problems.map((p) => [p.path, p.code]).sort();
    assert.deepEqual(problems, [
      ['caf\ufffd-latin1.txt', 'unreadable'],
      ['pipe', 'special-file'],
    ]);
    assert.match(m.problems.find((p) => p.code === 'unreadable')!.message, /not valid UTF-8.*convmv/);
    assert.match(m.problems.find((p) => p.code === 'special-file')!.message, /named pipe \(FIFO\)/);
    // Both stay where they are on the server; nothing came into the case for them.
    assert.ok(statSync(join(remote, 'pipe')).isFIFO());
    assert.deepEqual(readdirSync(work).sort(), ['.satchel', 'fine.txt']);

    // A server is not unplugged: eject finishes what is pending and says so.
    const ejected = await satchelOk(['-C', work, 'eject', 'srv'], { env });
    assert.match(ejected.stdout, /^srv: everything pending is on the server$/m);
    assert.doesNotMatch(ejected.stdout, /unplug/);
    const unmount = assertExit(await runSatchel(['-C', work, 'eject', 'srv', '--unmount'], { env }), 2);
    assert.match(unmount.stderr, /--unmount goes with a stick or share/);
  });

  it('uses ~/.ssh/config aliases and IdentityFile; a refused login and a changed host key fail plainly', async () => {
    const work = join(top, 'work3');
    const remote = join(top, 'remote3');
    mkdirSync(remote);
    await satchelOk(['init', work]);
    const alt = join(top, 'alt-ssh');
    mkdirSync(alt, { mode: 0o700 });
    copyFileSync(join(sshd!.sshDir, 'id_ed25519'), join(alt, 'work_key'));
    writeFileSync(join(alt, 'known_hosts'), sshd!.knownHostsLine + '\n');
    writeFileSync(
      join(alt, 'config'),
      `Host other\n  HostName 192.0.2.1\n\nHost backup\n  HostName 127.0.0.1\n  Port ${sshd!.port}\n  User root\n  IdentityFile ${join(alt, 'work_key')}\n`,
    );
    const altEnv = { SATCHEL_SSH_DIR: alt, SSH_AUTH_SOCK: '' };
    await satchelOk(['-C', work, 'mirror', 'add', 'srv', `sftp://backup${remote}`], { env: altEnv });
    writeTree(work, { 'a.txt': 'a' });
    let r = await satchelJson<SyncReport>(['-C', work, 'sync'], { env: altEnv });
    assert.equal(r.mirrors[0]!.state, 'synced');

    // Without the key: the login is refused, and sync says so.
    renameSync(join(alt, 'work_key'), join(alt, 'gone_key'));
    r = await satchelJson<SyncReport>(['-C', work, 'sync'], { env: altEnv }, 1);
    assert.equal(r.mirrors[0]!.state, 'failed');
    assert.match(r.mirrors[0]!.message ?? '', /refused the login \(no key was available\)/);
    // A key the server does not know: the message names the key file tried.
    runTool('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(alt, 'stranger_key')]);
    copyFileSync(join(alt, 'stranger_key'), join(alt, 'work_key'));
    r = await satchelJson<SyncReport>(['-C', work, 'sync'], { env: altEnv }, 1);
    assert.match(r.mirrors[0]!.message ?? '', /refused the login \(tried the key .*work_key\)/);
    renameSync(join(alt, 'gone_key'), join(alt, 'work_key'));

    // A changed host key is refused, loudly, even with --accept-new-host-key.
    const other = runTool('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(top, 'impostor')]);
    void other;
    const impostor = readFileSync(join(top, 'impostor.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    writeFileSync(join(alt, 'known_hosts'), `[127.0.0.1]:${sshd!.port} ${impostor}\n`);
    r = await satchelJson<SyncReport>(['-C', work, 'sync'], { env: altEnv }, 1);
    assert.equal(r.mirrors[0]!.state, 'failed');
    assert.match(r.mirrors[0]!.message ?? '', /host key of \[127\.0\.0\.1\]:\d+ has CHANGED/);
    const again = assertExit(
      await runSatchel(
        ['-C', work, 'mirror', 'add', 'srv2', `sftp://backup${remote}`, '--accept-new-host-key'],
        { env: altEnv },
      ),
      1,
    );
    assert.match(again.stderr, /has CHANGED/);
    assert.equal(readFileSync(join(alt, 'known_hosts'), 'utf8'), `[127.0.0.1]:${sshd!.port} ${impostor}\n`);

    // The hint's way out for the mirror already added, with no remove and add: drop the old key,
    // log in once with ssh (here answering yes by option), sync again.
    assert.match(r.mirrors[0]!.hint ?? '', /ssh-keygen -f .* -R/);
    assert.match(r.mirrors[0]!.hint ?? '', /log in once with `ssh -p \d+ -o UserKnownHostsFile=/);
    // status says the same: failed, with the code and the hint.
    const st = await satchelJson<{ mirrors: { state: string; code?: string; hint?: string }[] }>(
      ['-C', work, 'status', '--json'],
      { env: altEnv },
    );
    assert.equal(st.mirrors[0]!.state, 'failed', JSON.stringify(st));
    assert.equal(st.mirrors[0]!.code, 'host-key-changed');
    assert.match(st.mirrors[0]!.hint ?? '', /ssh-keygen -f .* -R/);
    const human = await satchelOk(['-C', work, 'status'], { env: altEnv });
    assert.match(human.stdout, /FAILED — .*\n\s+hint: .*ssh-keygen -f/);
    runTool('ssh-keygen', ['-f', join(alt, 'known_hosts'), '-R', `[127.0.0.1]:${sshd!.port}`]);
    runTool('ssh', [
      ...['-p', String(sshd!.port), '-o', `UserKnownHostsFile=${join(alt, 'known_hosts')}`],
      ...['-o', 'StrictHostKeyChecking=accept-new', '-o', 'BatchMode=yes', '-i', join(alt, 'work_key')],
      'root@127.0.0.1',
      'true',
    ]);
    r = await satchelJson<SyncReport>(['-C', work, 'sync'], { env: altEnv });
    assert.equal(r.mirrors[0]!.state, 'synced', JSON.stringify(r));
  });

  it('a nearly full server disk: uploads that fit one at a time get through; the rest is no-space', async () => {
    const work = join(top, 'work-full');
    const remote = join(top, 'remote-full');
    mkdirSync(remote);
    runTool('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'satchel-sftp-full', remote]);
    try {
      await satchelOk(['init', work]);
      await satchelOk(['-C', work, 'mirror', 'add', 'srv', url(remote), '--accept-new-host-key'], { env });
      writeFileSync(join(work, 'b1.bin'), Buffer.alloc(1200 * 1024, 1));
      writeFileSync(join(work, 'b2.bin'), Buffer.alloc(1200 * 1024, 2));
      const r = (await sync(work)).mirrors[0]!;
      assert.equal(r.state, 'synced', JSON.stringify(r));
      // Together they do not fit; one at a time, one does, and the other is a no-space problem.
      const stored = ['b1.bin', 'b2.bin'].filter((n) => existsSync(join(remote, n)));
      assert.equal(stored.length, 1, JSON.stringify(r.problems));
      assert.deepEqual(
        r.problems.map((p) => p.code),
        ['no-space'],
      );
      assert.deepEqual(temps(remote), []);
    } finally {
      runTool('umount', [remote]);
    }
  });

  it('a server that is not there makes the mirror absent, with the reason', async () => {
    const { work } = await newPair('absent');
    // Rewrite the port to one nothing listens on.
    const config = join(work, '.satchel', 'config.toml');
    writeFileSync(config, readFileSync(config, 'utf8').replace(`:${sshd!.port}/`, ':1/'));
    const r = await satchelJson<SyncReport>(['-C', work, 'sync'], { env }, 0);
    assert.equal(r.mirrors[0]!.state, 'absent');
    assert.match(r.mirrors[0]!.message ?? '', /connection refused/);

    // A server path that is missing, or a file: each said as it is.
    const other = join(top, 'work-absent-2');
    await satchelOk(['init', other]);
    const missing = assertExit(
      await runSatchel(['-C', other, 'mirror', 'add', 'x', url(join(top, 'no-such-folder'))], { env }),
      1,
    );
    assert.match(
      missing.stderr,
      /the folder .*no-such-folder does not exist on .*\nhint: create it on the server/,
    );
    writeFileSync(join(top, 'a-file.txt'), 'a file');
    const file = assertExit(
      await runSatchel(['-C', other, 'mirror', 'add', 'x', url(join(top, 'a-file.txt'))], { env }),
      1,
    );
    assert.match(file.stderr, /a-file\.txt on .* is a file, not a folder\nhint: a mirror is a folder/);
  });

  it('watch: a save goes out at once; an edit on the server is found by polling and logged as incoming', async () => {
    const work = join(top, 'work6');
    const remote = join(top, 'remote6');
    mkdirSync(remote);
    await satchelOk(['init', work]);
    writeTree(work, { 'notes.txt': 'v1' });
    await satchelOk(
      ['-C', work, 'mirror', 'add', 'srv', url(remote), '--accept-new-host-key', '--poll', '1'],
      { env },
    );
    const c = { path: work, mirrors: { srv: remote }, runOptions: { env } };
    const w = await startWatch(c, { env: daemonEnv(env) });
    try {
      await waitUntil('notes.txt on the server', () => existsSync(join(remote, 'notes.txt')));
      writeFileSync(join(work, 'saved.txt'), 'saved');
      await waitUntil('saved.txt on the server', () => existsSync(join(remote, 'saved.txt')));
      writeFileSync(join(remote, 'notes.txt'), 'v2, edited on the server');
      await waitUntil(
        'the server edit in the case',
        () => readFileSync(join(work, 'notes.txt'), 'utf8') === 'v2, edited on the server',
      );
      await waitUntil('an incoming event naming notes.txt', () =>
        readEvents(work).some(
          (e) => e.event === 'incoming' && e.mirror === 'srv' && e.paths?.includes('notes.txt'),
        ),
      );
    } finally {
      await stopWatch(w);
    }
  });

  it('status and mirror list ask every server at once: two hung servers cost one wait, not two', async () => {
    // Two servers that accept and never answer; note when each is first asked.
    const sockets = new Set<Socket>();
    const asked: number[] = [];
    const servers = [0, 1].map((i) =>
      createServer((s) => {
        sockets.add(s);
        asked[i] ??= Date.now();
      }),
    );
    for (const srv of servers) await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    try {
      const work = join(top, 'work-hung2');
      await satchelOk(['init', work]);
      for (const name of ['one', 'two']) {
        mkdirSync(join(top, `remote-${name}`));
        await satchelOk(
          ['-C', work, 'mirror', 'add', name, url(join(top, `remote-${name}`)), '--accept-new-host-key'],
          {
            env,
          },
        );
      }
      const config = join(work, '.satchel', 'config.toml');
      let text = readFileSync(config, 'utf8');
      for (const srv of servers)
        text = text.replace(`:${sshd!.port}/`, `:${(srv.address() as AddressInfo).port}/`);
      writeFileSync(config, text);
      // Asked one after the other, the second server would be asked only once the first one's
      // wait of 4 s is over; asked together, both within the same moment.
      const quick = { ...env, SATCHEL_SFTP_TIMEOUT_MS: '4000' };
      for (const args of [
        ['status', '--json'],
        ['mirror', 'list', '--json'],
      ]) {
        asked.length = 0;
        const r = await runSatchel(['-C', work, ...args], { env: quick });
        assert.doesNotMatch(r.stderr, /Unhandled|node:events/, r.stderr);
        assert.equal(asked.length, 2, `${args[0]}: both servers were asked`);
        const gap = Math.abs(asked[1]! - asked[0]!);
        assert.ok(
          gap < 2000,
          `${args[0]}: the second server was asked ${gap} ms after the first, not at once`,
        );
        for (const sock of sockets) sock.destroy();
        sockets.clear();
      }
    } finally {
      for (const s of sockets) s.destroy();
      for (const srv of servers) await new Promise((resolve) => srv.close(resolve));
    }
  });

  it('a server that accepts and never answers: sync says so, watch keeps replicating to the other mirrors', async () => {
    // Accepts every connection and never says a word (a hung sshd, a black-holing firewall).
    const sockets = new Set<Socket>();
    const silent = createServer((s) => void sockets.add(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    try {
      const work = join(top, 'work5');
      const remote = join(top, 'remote5');
      const local = join(top, 'local5');
      mkdirSync(remote);
      mkdirSync(local);
      await satchelOk(['init', work]);
      await satchelOk(['-C', work, 'mirror', 'add', 'srv', url(remote), '--accept-new-host-key'], { env });
      await satchelOk(['-C', work, 'mirror', 'add', 'loc', local]);
      const config = join(work, '.satchel', 'config.toml');
      writeFileSync(config, readFileSync(config, 'utf8').replace(`:${sshd!.port}/`, `:${port}/`));
      const quick = { ...env, SATCHEL_SFTP_TIMEOUT_MS: '1500' };
      const r = await runSatchel(['-C', work, 'sync', '--json'], { env: quick });
      assert.doesNotMatch(r.stderr, /Unhandled|node:events/, r.stderr);
      const srv = r.json<SyncReport>().mirrors.find((m) => m.mirror === 'srv')!;
      assert.notEqual(srv.state, 'synced');
      assert.match(srv.message ?? '', /cannot reach|timed out/i);

      const c = { path: work, mirrors: { loc: local }, runOptions: { env: quick } };
      const w = await startWatch(c, { env: daemonEnv(quick) });
      try {
        writeFileSync(join(work, 'saved.txt'), 'saved while srv hangs');
        await waitUntil('saved.txt on the local mirror', () => existsSync(join(local, 'saved.txt')));
        // Several handshake timeouts later the daemon still runs.
        await new Promise((resolve) => setTimeout(resolve, 4000));
        assert.equal(w.exited(), undefined, `watch exited: ${JSON.stringify(w.exited())}`);
      } finally {
        await stopWatch(w);
      }

      // Stopped while its first cycle waits a minute for the silent server: the first signal
      // waits for the batch in flight and says so; a second one stops at once (exit 0).
      const slow = { ...env, SATCHEL_SFTP_TIMEOUT_MS: '60000' };
      const w2 = spawnWatch({ ...c, runOptions: { env: slow } }, { env: daemonEnv(slow) });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      w2.run.kill('SIGTERM');
      await waitUntil('the stopping line', () => readEvents(work).some((e) => e.event === 'stopping'));
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(w2.exited(), undefined, 'the first signal waits for the batch in flight');
      const { result, inTime } = await stopWatch(w2, 'SIGTERM', 5000);
      assert.ok(inTime, 'a second signal stops at once');
      assert.equal(result.code, 0, result.stderr);
      assert.match(
        result.stderr,
        /stopping — finishing the batch in flight \(signal again to stop at once\)/,
      );
      assert.match(result.stderr, /stopped — at once; the next run finishes the work/);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
