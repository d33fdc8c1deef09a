import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { FileEntry } from '../../core/entry.js';
import { SatchelError } from '../../core/errors.js';
import type { WriteOperation } from '../../core/plan.js';
import { TEMP_PREFIX } from '../../core/reserved.js';
import { runReplicaContract, type ContractPoke, type ContractStorage } from '../../replica/contract.js';
import { MemoryReplica } from '../../replica/memory.js';
import { makeTempDir, removeTempDir } from '../../../test/helpers/temp.js';
import { startSshd, type Sshd } from '../../../test/helpers/sshd.js';
import { acquireSession, closeAllSessions } from './connection.js';
import { SftpReplica } from './sftp-replica.js';
import { readSftpMarker, writeSftpMarker } from './sftp-marker.js';

/** The SFTP server runs as `nobody`, so that permissions mean something although we log in as root. */
const NOBODY = 65534;
const scanOptions = { cache: { get: () => undefined }, ignore: () => false };

/** Gives `path` and the folders up to `root` to nobody (what the server side may change). */
function giveToNobody(root: string, path: string): void {
  let p = path;
  while (p.startsWith(root)) {
    chownSync(p, NOBODY, NOBODY);
    if (p === root) break;
    p = join(p, '..');
  }
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function writeOf(source: MemoryReplica, path: string, content: string): WriteOperation {
  const mtimeMs = Date.UTC(2024, 5, 1, 12, 0, 0);
  source.put(path, content, { mtimeMs });
  const entry: FileEntry = {
    kind: 'file',
    size: Buffer.byteLength(content),
    mtimeMs,
    executable: false,
    hash: sha256(content),
  };
  return { type: 'write', path, entry, from: { side: 'case', path, entry }, expected: undefined };
}

describe('SFTP replica against a real sshd', () => {
  let base = '';
  let mnt = '';
  let sshd: Sshd | undefined;
  before(async () => {
    base = makeTempDir('sftp-replica');
    chmodSync(base, 0o755);
    mnt = join(base, 'tmpfs');
    await fsp.mkdir(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'satchel-sftp-test', mnt]);
    chmodSync(mnt, 0o755);
    const serverDir = join(base, 'server');
    await fsp.mkdir(serverDir);
    sshd = await startSshd(serverDir, { sftpAs: { uid: NOBODY, gid: NOBODY } });
  });
  after(async () => {
    closeAllSessions();
    await sshd?.stop();
    try {
      execFileSync('umount', [mnt]);
    } catch {
      // Not mounted (setup failed early).
    }
    removeTempDir(base);
  });

  const connect = () =>
    acquireSession({ host: '127.0.0.1', port: sshd!.port, user: 'root' }, { sshDir: sshd!.sshDir });

  /** Contract storage: a fresh folder on the tmpfs, owned by nobody, served over SFTP. */
  async function storage(
    options: { noPosixRename?: boolean; bulkSyncWrites?: number } = {},
  ): Promise<ContractStorage & { root: string }> {
    const root = await fsp.mkdtemp(join(mnt, 'mirror-'));
    chownSync(root, NOBODY, NOBODY);
    const session = await connect();
    const replica = new SftpReplica({ session, root, label: 'server', ...options });
    const filler = join(mnt, `filler-${root.slice(-6)}`);
    const poke: ContractPoke = {
      write: async (path, content, mtimeMs) => {
        const file = join(root, path);
        await fsp.mkdir(join(file, '..'), { recursive: true });
        await fsp.writeFile(file, content);
        if (mtimeMs !== undefined) await fsp.utimes(file, mtimeMs / 1000, mtimeMs / 1000);
        giveToNobody(root, file);
      },
      rawNames: async () => (await fsp.readdir(root, { recursive: true })).sort(),
      makeUnreadable: async (path) => fsp.chmod(join(root, path), 0o000),
      fill: async () => {
        const st = await fsp.statfs(mnt);
        await fsp.writeFile(
          filler,
          Buffer.alloc(Math.max(0, Number(st.bavail) * Number(st.bsize) - 256 * 1024)),
        );
      },
    };
    return {
      root,
      replica,
      poke,
      cleanup: async () => {
        await replica.close();
        await fsp.rm(root, { recursive: true, force: true });
        await fsp.rm(filler, { force: true });
      },
    };
  }

  runReplicaContract({ name: 'sftp (OpenSSH, posix-rename)', create: () => storage() });
  runReplicaContract({ name: 'sftp (without posix-rename)', create: () => storage({ noPosixRename: true }) });
  // Every prepare durable through one `sync -f` instead of an fsync per file.
  runReplicaContract({
    name: 'sftp (bulk writes, one sync -f)',
    create: () => storage({ bulkSyncWrites: 1 }),
  });

  /** How many commands (not SFTP sessions) the server has run so far. */
  const commands = (): number => (sshd!.log().match(/Starting session: command/g) ?? []).length;

  it('makes a bulk upload durable with one sync -f, or with an fsync per file where that cannot run', async () => {
    const { replica, cleanup, root } = await storage({ bulkSyncWrites: 4 });
    try {
      // Staged in a folder whose name is not plain enough to quote for any shell: fsynced one by one.
      await fsp.mkdir(join(root, 'plain'));
      await fsp.mkdir(join(root, "it's ä"));
      giveToNobody(root, join(root, 'plain'));
      giveToNobody(root, join(root, "it's ä"));
      // The first bulk prepare asks whether `sync -f` runs here (once per connection); then
      // the plain folder's files are flushed by one `sync -f`, the other folder's one by one.
      for (const [round, dir, expected] of [
        [0, 'plain', undefined],
        [1, 'plain', 1],
        [2, "it's ä", 0],
      ] as const) {
        const source = new MemoryReplica();
        const ops = Array.from({ length: 6 }, (_, i) =>
          writeOf(source, `${dir}/r${round}-${i}.txt`, `${dir} ${i}`),
        );
        const before = commands();
        const results = await (await replica.prepare(ops, source.content)).commit();
        assert.ok(
          results.every((r) => r.ok),
          JSON.stringify(results),
        );
        if (expected !== undefined) assert.equal(commands() - before, expected, `commands run for ${dir}`);
        else assert.ok(commands() > before, 'the first bulk prepare asks');
        for (let i = 0; i < 6; i++)
          assert.equal(await fsp.readFile(join(root, dir, `r${round}-${i}.txt`), 'utf8'), `${dir} ${i}`);
        assert.deepEqual(
          (await fsp.readdir(join(root, dir))).filter((x) => x.startsWith(TEMP_PREFIX)),
          [],
        );
      }
    } finally {
      await cleanup();
    }
  });

  it('offers posix-rename, fsync and statvfs', async () => {
    const s = await connect();
    try {
      assert.equal(s.posixRename, true);
      assert.equal(s.fsync, true);
      assert.equal(s.statvfs, true);
    } finally {
      s.release();
    }
  });

  it('permission denied on one folder is a problem for that path only', async () => {
    const { replica, poke, cleanup, root } = await storage();
    try {
      await poke!.write('open/a.txt', 'a');
      await poke!.write('locked/b.txt', 'b');
      const source = new MemoryReplica();
      const ops = [writeOf(source, 'open/new.txt', 'fine'), writeOf(source, 'locked/new.txt', 'refused')];
      // Read-only for the server's user (nobody), as on a server where one folder belongs to someone else.
      const lockedDir = join(root, 'locked');
      await fsp.chown(lockedDir, 0, 0);
      const results = await (await replica.prepare(ops, source.content)).commit();
      assert.equal(results[0]!.ok, true);
      assert.equal(results[1]!.ok, false);
      assert.equal(results[1]!.ok ? '' : results[1]!.problem.code, 'permission-denied');
      assert.match(results[1]!.ok ? '' : results[1]!.problem.message, /locked\/new\.txt.*permission denied/);
      await fsp.chmod(lockedDir, 0o700);
      const scan = await replica.scan(scanOptions);
      assert.deepEqual(
        scan.problems.map((p) => [p.path, p.code]),
        [['locked', 'unreadable']],
      );
      assert.ok(scan.snapshot.has('open/new.txt'));
      assert.ok(!scan.snapshot.has('locked'), 'an unreadable folder is not reported as an (empty) folder');
    } finally {
      await cleanup();
    }
  });

  it('a connection lost mid-commit throws mirror-absent and leaves no partial file under a final name', async () => {
    const root = await fsp.mkdtemp(join(mnt, 'mirror-'));
    chownSync(root, NOBODY, NOBODY);
    // A connection of its own (not the pooled one), so destroying it does not disturb other tests.
    closeAllSessions();
    const session = await connect();
    const replica = new SftpReplica({ session, root, label: 'server' });
    try {
      const source = new MemoryReplica();
      const ops = Array.from({ length: 40 }, (_, i) =>
        writeOf(source, `f${i}.txt`, `content ${i} `.repeat(1000)),
      );
      const prepared = await replica.prepare(ops, source.content);
      // Cut the connection as the commit starts (the server sees the client vanish).
      setImmediate(() => (session as unknown as { close(): void }).close());
      await assert.rejects(
        prepared.commit(),
        (e: unknown) => e instanceof SatchelError && e.code === 'mirror-absent',
      );
      const names = await fsp.readdir(root);
      for (const n of names.filter((x) => !x.startsWith(TEMP_PREFIX))) {
        const i = Number(/^f(\d+)\.txt$/.exec(n)![1]);
        assert.equal(
          await fsp.readFile(join(root, n), 'utf8'),
          `content ${i} `.repeat(1000),
          `${n} is complete`,
        );
      }
      // A new connection's scan deletes the debris.
      const again = new SftpReplica({ session: await connect(), root, label: 'server' });
      await again.scan(scanOptions);
      await again.close();
      assert.deepEqual(
        (await fsp.readdir(root)).filter((x) => x.startsWith(TEMP_PREFIX)),
        [],
      );
    } finally {
      await replica.close();
      await fsp.rm(root, { recursive: true, force: true });
    }
  });

  it('writes and reads the marker', async () => {
    const root = await fsp.mkdtemp(join(mnt, 'mirror-'));
    chownSync(root, NOBODY, NOBODY);
    const s = await connect();
    try {
      assert.equal(await readSftpMarker(s, root), undefined);
      const marker = {
        version: 1 as const,
        id: '2b7c1f3e-1111-4222-8333-944455556666',
        case: 'work',
        createdAt: new Date().toISOString(),
      };
      await writeSftpMarker(s, root, marker);
      assert.deepEqual(await readSftpMarker(s, root), marker);
      assert.deepEqual(await fsp.readdir(root), ['.satchel-mirror']);
    } finally {
      s.release();
      await fsp.rm(root, { recursive: true, force: true });
    }
  });
});
