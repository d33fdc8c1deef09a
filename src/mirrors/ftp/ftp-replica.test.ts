import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, existsSync, promises as fsp, readdirSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { runReplicaContract, type ContractPoke, type ContractStorage } from '../../replica/contract.js';
import { makeTempDir, removeTempDir } from '../../../test/helpers/temp.js';
import { startPureFtpd, startVsftpd, type Ftpd } from '../../../test/helpers/ftpd.js';
import { guardDataConnections, openFtpSession, normalizeFingerprint } from './connection.js';
import type { CachedHash } from '../../replica/replica.js';
import { SatchelError } from '../../core/errors.js';
import { FtpReplica, parseListTime } from './ftp-replica.js';
import { netrcPassword } from './password.js';

const PASSWORD_ENV = 'SATCHEL_TEST_FTP_PASSWORD';

/** What push-only FTP cannot do, with the reason. */
const SKIP: Record<string, string> = {
  'refuses a write when the target changed since the scan':
    'push-only: the case always wins; a change on the server is drift and is overwritten',
  'refuses to create a file that appeared since the scan':
    'push-only: the case always wins; a file that appeared on the server is overwritten',
  'refuses to rename onto an existing path': 'push-only: RNFR/RNTO replaces, and the case always wins',
  'leaves no temporary files after commit or abort':
    'its last step needs an expected-state refusal, which push-only FTP does not make (temporary files are checked in the FTP tests)',
  'symbolic links': 'FTP has no symbolic links',
  'executable bit': 'FTP mirrors do not keep the executable bit',
  'a second scan with the hash cache does not re-hash':
    'FTP cannot hash remote files: the recorded hash is the only one (cache use is checked in the FTP tests)',
  'an unreadable file is a problem and the rest is scanned': 'FTP scans never read file contents',
  'a full disk is a no-space problem naming the file':
    'needs a small file system under the server (not set up here)',
  'names with spaces, unicode and forbidden characters round-trip':
    'FTP commands end at the line: a trailing space does not survive every server (names with spaces, unicode and leading dashes are checked in the FTP tests)',
};

function contract(kind: 'pure-ftpd' | 'vsftpd'): void {
  let base = '';
  let server: Ftpd | undefined;
  let n = 0;
  const owner = { uid: 0, gid: 0 };
  before(async () => {
    base = makeTempDir(`ftp-replica-${kind}`);
    server = kind === 'pure-ftpd' ? await startPureFtpd(base) : await startVsftpd(base);
    process.env[PASSWORD_ENV] = server.password;
    const st = statSync(join(server.root, server.folder));
    owner.uid = st.uid;
    owner.gid = st.gid;
  });
  after(async () => {
    await server?.stop();
    removeTempDir(base);
  });

  async function storage(): Promise<ContractStorage> {
    const s = server!;
    const folder = `${s.folder}/t${++n}`;
    const local = join(s.root, folder);
    await fsp.mkdir(local);
    chownSync(local, owner.uid, owner.gid);
    const session = await openFtpSession({
      host: s.host,
      port: s.port,
      user: s.user,
      path: folder,
      secure: false,
      passwordEnv: PASSWORD_ENV,
    });
    const replica = new FtpReplica({ session, label: 'ftp' });
    const poke: ContractPoke = {
      async write(path, content, mtimeMs) {
        const file = join(local, path);
        const parts = path.split('/');
        for (let i = 1; i < parts.length; i++) {
          const d = join(local, ...parts.slice(0, i));
          await fsp.mkdir(d, { recursive: true });
          chownSync(d, owner.uid, owner.gid);
        }
        await fsp.writeFile(file, content);
        chownSync(file, owner.uid, owner.gid);
        if (mtimeMs !== undefined) await fsp.utimes(file, mtimeMs / 1000, mtimeMs / 1000);
      },
      async rawNames() {
        const out: string[] = [];
        const walk = (dir: string, rel: string): void => {
          for (const e of readdirSync(dir, { withFileTypes: true })) {
            const p = rel === '' ? e.name : `${rel}/${e.name}`;
            out.push(p);
            if (e.isDirectory()) walk(join(dir, e.name), p);
          }
        };
        walk(local, '');
        return out;
      },
    };
    return {
      replica,
      poke,
      cleanup: async () => {
        await replica.close();
      },
    };
  }

  runReplicaContract({ name: `ftp (${kind})`, create: storage, skip: SKIP });

  it(`ftp (${kind}): a file changed on the server by someone else is a drift notice, not a problem`, async () => {
    const { replica, poke: maybePoke, cleanup } = await storage();
    const poke = maybePoke!;
    try {
      const scan = (cache: ReadonlyMap<string, CachedHash>) =>
        replica.scan({ cache: { get: (p) => cache.get(p) }, ignore: () => false });
      await poke.write('docs/page.html', 'as published\n', Date.UTC(2024, 0, 2, 3, 4, 5));
      await poke.write('same.txt', 'untouched\n', Date.UTC(2024, 0, 2, 3, 4, 5));
      const first = await scan(new Map());
      assert.deepEqual([first.problems, first.notices], [[], undefined], 'unknown files are not drift');
      await poke.write('docs/page.html', 'changed by hand on the server\n', Date.UTC(2024, 5, 6, 7, 8, 9));
      const second = await scan(first.hashes);
      assert.deepEqual(second.problems, []);
      assert.deepEqual(
        second.notices?.map((n) => [n.path, n.code]),
        [['docs/page.html', 'drift']],
      );
      assert.match(second.notices![0]!.message, /changed on ftp by someone else/);
      const third = await scan(second.hashes);
      assert.equal(third.notices, undefined, 'drift is reported once, against what was recorded');
    } finally {
      await cleanup();
    }
  });
}

describe('FTP replica against a real pure-ftpd (MLSD, MFMT)', () => contract('pure-ftpd'));
describe('FTP replica against a real vsftpd (LIST, MDTM)', () => contract('vsftpd'));

describe('FTPS data connections against a real pure-ftpd with a self-signed certificate', () => {
  let base = '';
  let server: Ftpd | undefined;
  before(async () => {
    base = makeTempDir('ftps-data');
    server = await startPureFtpd(base, { tls: true });
    process.env[PASSWORD_ENV] = server.password;
  });
  after(async () => {
    await server?.stop();
    removeTempDir(base);
  });
  const open = () =>
    openFtpSession({
      host: server!.host,
      port: server!.port,
      user: server!.user,
      path: server!.folder,
      secure: true,
      fingerprint: server!.fingerprint!,
      passwordEnv: PASSWORD_ENV,
    });

  it('checks every data connection against the pin: the real certificate passes, any other fails the transfer', async () => {
    const session = await open();
    try {
      const seen: (string | undefined)[] = [];
      await session.use(async (c) => {
        guardDataConnections(c.ftp, (fp) => {
          seen.push(fp);
          return undefined;
        });
        await c.uploadFrom(Readable.from([Buffer.from('over TLS\n')]), `${session.root}/a.txt`);
        await c.list(session.root);
      });
      assert.deepEqual(seen, [server!.fingerprint, server!.fingerprint], 'one check per data connection');
      await assert.rejects(
        session.use(async (c) => {
          guardDataConnections(c.ftp, () => new SatchelError('host-key-changed', 'refused by the test'));
          await c.uploadFrom(Readable.from([Buffer.from('must not arrive\n')]), `${session.root}/b.txt`);
        }),
        /refused by the test/,
      );
      const b = join(server!.root, server!.folder, 'b.txt');
      // The server may create the file on STOR; nothing is sent over the refused connection.
      assert.equal(existsSync(b) ? statSync(b).size : 0, 0, 'no byte went over the refused data connection');
    } finally {
      session.close();
    }
  });

  it('a session pinned to the real certificate lists and uploads through its guarded data connections', async () => {
    const session = await open();
    const replica = new FtpReplica({ session, label: 'ftps' });
    try {
      const scan = await replica.scan({ cache: { get: () => undefined }, ignore: () => false });
      assert.deepEqual(scan.problems, []);
      assert.ok(scan.snapshot.has('a.txt'), 'the file uploaded over TLS is listed and hashed');
    } finally {
      await replica.close();
    }
  });
});

describe('FTP helpers', () => {
  it('parses LIST times of recent and old files', () => {
    const now = Date.UTC(2026, 10, 25, 12, 0, 0);
    assert.deepEqual(parseListTime('Nov 23 20:49', now), {
      ms: Date.UTC(2026, 10, 23, 20, 49),
      unitMs: 60_000,
    });
    assert.deepEqual(parseListTime('Dec 30 10:00', now), {
      ms: Date.UTC(2025, 11, 30, 10, 0),
      unitMs: 60_000,
    });
    assert.deepEqual(parseListTime('Jan  2  2019', now), { ms: Date.UTC(2019, 0, 2), unitMs: 86_400_000 });
    assert.equal(parseListTime('2019-01-02', now), undefined);
  });

  it('normalizes fingerprints and refuses what is not one', () => {
    const hex = 'ab'.repeat(32);
    assert.equal(normalizeFingerprint(hex), 'AB:'.repeat(31) + 'AB');
    assert.equal(normalizeFingerprint(`sha256:${'AB:'.repeat(31)}AB`), 'AB:'.repeat(31) + 'AB');
    assert.throws(() => normalizeFingerprint('abc'), /not a SHA-256 fingerprint/);
  });

  it('reads passwords from a netrc file', async () => {
    const dir = makeTempDir('netrc');
    try {
      const file = join(dir, 'netrc');
      await fsp.writeFile(
        file,
        '# comment\nmachine a.example login u password pa\nmachine b.example\n  login v\n  password pb\ndefault login w password pd\n',
        { mode: 0o600 },
      );
      assert.equal(netrcPassword('a.example', 'u', file), 'pa');
      assert.equal(netrcPassword('b.example', 'v', file), 'pb');
      assert.equal(netrcPassword('a.example', 'x', file), undefined);
      assert.equal(netrcPassword('c.example', 'w', file), 'pd');
      // Readable by others: refused, saying how to fix it (as ftp and Python's netrc do).
      await fsp.chmod(file, 0o644);
      assert.throws(
        () => netrcPassword('a.example', 'u', file),
        (e: Error) =>
          /others may read it \(mode 0644\)/.test(e.message) &&
          /chmod 600/.test((e as { hint?: string }).hint ?? ''),
      );
      assert.equal(
        netrcPassword('a.example', 'x', file),
        undefined,
        'no password for that login: nothing to refuse',
      );
    } finally {
      removeTempDir(dir);
    }
  });
});
