import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { POSIX_CAPABILITIES } from '../../core/capabilities.js';
import type { FileEntry } from '../../core/entry.js';
import type { WriteOperation } from '../../core/plan.js';
import { isTempName, MARKER_NAME, STATE_DIR_NAME } from '../../core/reserved.js';
import { runReplicaContract, type ContractPoke, type ContractStorage } from '../../replica/contract.js';
import type { OperationResult, Replica, ScanResult } from '../../replica/replica.js';
import { makeTempDir, removeTempDir } from '../../../test/helpers/temp.js';
import { PathReplica } from '../path/path-replica.js';
import { CHUNK_BYTES, deriveKeys, encryptStream, NameCipher, type CryptKeys } from './crypt.js';
import { EncryptedReplica } from './encrypted-replica.js';

const NOBODY = 65534;
const NO_CACHE = { get: () => undefined };
const scanAll = (r: Replica): Promise<ScanResult> => r.scan({ cache: NO_CACHE, ignore: () => false });
const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

async function encrypted(content: Buffer, keys: CryptKeys): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of encryptStream([content], keys)) out.push(c);
  return Buffer.concat(out);
}

/** The stored name of a path: Satchel's own names stay in clear, as the replica keeps them. */
function storedPath(names: NameCipher, path: string): string {
  return path
    .split('/')
    .map((s, i) =>
      isTempName(s) || (i === 0 && (s === MARKER_NAME || s === STATE_DIR_NAME)) ? s : names.encryptSegment(s),
    )
    .join('/');
}

/** Contract storage: an encrypted replica over a path replica in a fresh folder below `base`. */
async function encryptedStorage(base: string, keys: CryptKeys): Promise<ContractStorage & { root: string }> {
  const root = await fsp.mkdtemp(join(base, 'mirror-'));
  await fsp.chmod(root, 0o755);
  const names = new NameCipher(keys);
  const abs = (path: string): string => join(root, storedPath(names, path));
  const poke: ContractPoke = {
    write: async (path, content, mtimeMs) => {
      await fsp.mkdir(join(abs(path), '..'), { recursive: true });
      await fsp.writeFile(abs(path), await encrypted(Buffer.from(content), keys));
      if (mtimeMs !== undefined) await fsp.utimes(abs(path), mtimeMs / 1000, mtimeMs / 1000);
    },
    rawNames: async () => (await fsp.readdir(root, { recursive: true })).sort(),
    makeUnreadable: async (path) => fsp.chmod(abs(path), 0o000),
    restricted: async <T>(fn: () => Promise<T>): Promise<T> => {
      if (process.getuid?.() !== 0) return fn();
      process.seteuid!(NOBODY);
      try {
        return await fn();
      } finally {
        process.seteuid!(0);
      }
    },
  };
  const inner = new PathReplica({ root, label: 'stick', capabilities: POSIX_CAPABILITIES, role: 'mirror' });
  return {
    root,
    replica: new EncryptedReplica({ inner, keys }),
    cleanup: () => fsp.rm(root, { recursive: true, force: true }),
    poke,
  };
}

/** A write of `content` to `path` read from a source replica. */
function writeOp(path: string, content: Buffer, mtimeMs = Date.UTC(2024, 0, 2)): WriteOperation {
  const entry: FileEntry = {
    kind: 'file',
    size: content.length,
    mtimeMs,
    executable: false,
    hash: sha256(content),
  };
  return { type: 'write', path, entry, from: { side: 'case', path, entry }, expected: undefined };
}

describe('encrypted replica over a path replica', () => {
  let base = '';
  let keys: CryptKeys;
  before(async () => {
    base = makeTempDir('encrypted-replica');
    chmodSync(base, 0o755);
    keys = await deriveKeys('correct horse battery staple');
  });
  after(() => removeTempDir(base));

  runReplicaContract({
    name: 'encrypted (rclone crypt) over path (local disk)',
    create: () => encryptedStorage(base, keys),
    skip: {
      'a full disk is a no-space problem naming the file':
        'the path replica covers it on tmpfs; nothing encrypted-specific',
    },
  });

  /** Fresh storage with `files` written through the replica from a case folder. */
  async function withFiles(files: Record<string, Buffer>): Promise<{
    storage: ContractStorage & { root: string };
    caseRoot: string;
    caseReplica: PathReplica;
    names: NameCipher;
  }> {
    const storage = await encryptedStorage(base, keys);
    const caseRoot = await fsp.mkdtemp(join(base, 'case-'));
    for (const [p, c] of Object.entries(files)) {
      await fsp.mkdir(join(caseRoot, p, '..'), { recursive: true });
      await fsp.writeFile(join(caseRoot, p), c);
    }
    const caseReplica = new PathReplica({
      root: caseRoot,
      label: 'case',
      capabilities: POSIX_CAPABILITIES,
      role: 'case',
    });
    const caseScan = await scanAll(caseReplica);
    const ops = [...caseScan.snapshot].map(([p, e]) =>
      e.kind === 'directory'
        ? { type: 'mkdir' as const, path: p, expected: undefined }
        : {
            type: 'write' as const,
            path: p,
            entry: e as FileEntry,
            from: { side: 'case' as const, path: p, entry: e as FileEntry },
            expected: undefined,
          },
    );
    const results = await (await storage.replica.prepare(ops, caseReplica.content)).commit();
    for (const r of results) assert.ok(r.ok, JSON.stringify(r));
    return { storage, caseRoot, caseReplica, names: new NameCipher(keys) };
  }

  it('stores names and contents encrypted and reports plaintext sizes and hashes', async () => {
    const big = Buffer.alloc(2 * CHUNK_BYTES + 5, 7);
    const { storage, names } = await withFiles({ 'docs/a.txt': Buffer.from('alpha'), 'big.bin': big });
    const raw = await fsp.readdir(storage.root, { recursive: true });
    assert.ok(!raw.some((n) => n.includes('docs') || n.includes('a.txt') || n.includes('big')), raw.join());
    const stored = await fsp.readFile(join(storage.root, names.encryptPath('docs/a.txt')));
    assert.equal(stored.subarray(0, 8).toString('latin1'), 'RCLONE\0\0');
    const scan = await scanAll(storage.replica);
    assert.deepEqual([...scan.snapshot.keys()], ['big.bin', 'docs', 'docs/a.txt']);
    const a = scan.snapshot.get('docs/a.txt') as FileEntry;
    assert.equal(a.size, 5);
    assert.equal(a.hash, sha256('alpha'));
    assert.equal((scan.snapshot.get('big.bin') as FileEntry).hash, sha256(big));
    assert.deepEqual(scan.problems, []);
  });

  it('a case file that changed after the scan is changed-during-sync and leaves nothing behind', async () => {
    const { storage, caseRoot, caseReplica } = await withFiles({});
    const content = {
      'same-size.txt': 'before',
      'grown.txt': 'short',
      'deleted.txt': 'going',
      'big deleted.bin': 'd'.repeat(100_000),
      'big.bin': 'b'.repeat(100_000),
    };
    for (const [p, c] of Object.entries(content)) await fsp.writeFile(join(caseRoot, p), c);
    const caseScan = await scanAll(caseReplica);
    await fsp.writeFile(join(caseRoot, 'same-size.txt'), 'AFTER!');
    await fsp.utimes(join(caseRoot, 'same-size.txt'), 1_700_000_000, 1_700_000_000);
    await fsp.writeFile(join(caseRoot, 'grown.txt'), 'much longer now');
    await fsp.rm(join(caseRoot, 'deleted.txt'));
    await fsp.rm(join(caseRoot, 'big deleted.bin'));
    const ops = [...caseScan.snapshot].map(([p, e]) => {
      const entry = e as FileEntry;
      return {
        type: 'write' as const,
        path: p,
        entry,
        from: { side: 'case' as const, path: p, entry },
        expected: undefined,
      };
    });
    const results = await (await storage.replica.prepare(ops, caseReplica.content)).commit();
    const codes = Object.fromEntries(
      ops.map((op, i) => [op.path, results[i]!.ok ? 'ok' : results[i]!.problem.code]),
    );
    assert.deepEqual(codes, {
      'big deleted.bin': 'changed-during-sync',
      'big.bin': 'ok',
      'deleted.txt': 'changed-during-sync',
      'grown.txt': 'changed-during-sync',
      'same-size.txt': 'changed-during-sync',
    });
    const after = await scanAll(storage.replica);
    assert.deepEqual([...after.snapshot.keys()], ['big.bin']);
    assert.equal((after.snapshot.get('big.bin') as FileEntry).hash, sha256(content['big.bin']));
    const raw = await fsp.readdir(storage.root);
    assert.deepEqual(
      raw.filter((n) => isTempName(n)),
      [],
      'no temporary file left',
    );
  });

  it('a new copy is no more open than its case file; a file unreadable since the scan is a read problem', async () => {
    const { storage, caseRoot, caseReplica, names } = await withFiles({});
    await fsp.chmod(caseRoot, 0o755);
    await fsp.writeFile(join(caseRoot, 'key'), 'secret');
    await fsp.chmod(join(caseRoot, 'key'), 0o600);
    await fsp.writeFile(join(caseRoot, 'open.txt'), 'o');
    await fsp.chmod(join(caseRoot, 'open.txt'), 0o644);
    const locked = ['locked small.txt', 'locked big.bin'];
    for (const p of locked)
      await fsp.writeFile(join(caseRoot, p), 'x'.repeat(p.includes('big') ? 100_000 : 10));
    const caseScan = await scanAll(caseReplica);
    const writes = (paths: readonly string[]): WriteOperation[] =>
      paths.map((p) => {
        const entry = caseScan.snapshot.get(p) as FileEntry;
        return { type: 'write', path: p, entry, from: { side: 'case', path: p, entry }, expected: undefined };
      });
    const modes = await (
      await storage.replica.prepare(writes(['key', 'open.txt']), caseReplica.content)
    ).commit();
    assert.ok(
      modes.every((r) => r.ok),
      JSON.stringify(modes),
    );
    const mode = async (p: string): Promise<number> =>
      (await fsp.stat(join(storage.root, names.encryptPath(p)))).mode & 0o777;
    assert.equal(await mode('key'), 0o600, 'a 0600 key stays 0600 on the mirror');
    assert.equal(await mode('open.txt'), 0o644 & ~process.umask());

    // Unreadable since the scan, for a user who is not root (root reads anything).
    if (process.getuid?.() === 0) {
      for (const p of locked) await fsp.chmod(join(caseRoot, p), 0o000);
      await fsp.chmod(storage.root, 0o777);
      process.seteuid!(NOBODY);
      let results: readonly OperationResult[];
      try {
        results = await (await storage.replica.prepare(writes(locked), caseReplica.content)).commit();
      } finally {
        process.seteuid!(0);
      }
      locked.forEach((p, i) => {
        const r = results[i]!;
        assert.ok(!r.ok, p);
        assert.equal(r.problem.code, 'permission-denied');
        assert.match(
          r.problem.message,
          new RegExp(`^cannot read ${p}: permission denied`),
          'the file read, not the mirror',
        );
      });
    }
    assert.deepEqual(
      (await fsp.readdir(storage.root)).filter((n) => isTempName(n)),
      [],
      'no temporary file left',
    );
  });

  it('renames re-encrypt the names and keep the content', async () => {
    const { storage, names } = await withFiles({ 'd/old.txt': Buffer.from('x') });
    const before = await scanAll(storage.replica);
    const results = await (
      await storage.replica.prepare(
        [
          {
            type: 'rename',
            from: 'd/old.txt',
            to: 'd/new name.txt',
            expected: before.snapshot.get('d/old.txt')!,
          },
          { type: 'rename', from: 'd', to: 'e', expected: { kind: 'directory' } },
        ],
        {
          open: () => Promise.reject(new Error('unused')),
          localFile: () => undefined,
          unchanged: async () => true,
        },
      )
    ).commit();
    assert.ok(results.every((r) => r.ok));
    await fsp.access(join(storage.root, names.encryptPath('e/new name.txt')));
    const after = await scanAll(storage.replica);
    assert.equal((after.snapshot.get('e/new name.txt') as FileEntry).hash, sha256('x'));
  });

  it('a name whose encrypted form is too long is a name-not-storable problem', async () => {
    const storage = await encryptedStorage(base, keys);
    const ok = 'n'.repeat(143);
    const long = 'n'.repeat(144);
    const source = {
      open: async () => (await import('node:stream')).Readable.from([Buffer.from('x')]),
      localFile: () => undefined,
      unchanged: async () => true,
    };
    const results = await (
      await storage.replica.prepare([writeOp(ok, Buffer.from('x')), writeOp(long, Buffer.from('x'))], source)
    ).commit();
    assert.ok(results[0]!.ok, JSON.stringify(results[0]));
    assert.equal(results[1]!.ok ? undefined : results[1]!.problem.code, 'name-not-storable');
    assert.match(results[1]!.ok ? '' : results[1]!.problem.message, /longer than the 255 characters/);
    assert.equal(storage.replica.capabilities.maxNameLength, 143);
  });

  it('a name that does not decrypt is a per-path problem; its folder is not entered', async () => {
    const { storage } = await withFiles({ 'good.txt': Buffer.from('g') });
    await fsp.writeFile(join(storage.root, 'not-encrypted.txt'), 'plain');
    await fsp.mkdir(join(storage.root, 'plain-folder'));
    await fsp.writeFile(join(storage.root, 'plain-folder', 'x'), 'x');
    const scan = await scanAll(storage.replica);
    assert.deepEqual([...scan.snapshot.keys()], ['good.txt']);
    assert.deepEqual(scan.problems.map((q) => [q.path, q.code]).sort(), [
      ['not-encrypted.txt', 'unreadable'],
      ['plain-folder', 'unreadable'],
    ]);
    assert.match(scan.problems[0]!.message, /does not decrypt/);
  });

  /** Tampering cases: how to damage the stored file, and what the message must say. */
  const damage: [string, (b: Buffer) => Buffer][] = [
    ['a flipped byte', (b) => ((b[32 + 100]! ^= 1), b)],
    ['a flipped byte in the second chunk', (b) => ((b[32 + CHUNK_BYTES + 16 + 3]! ^= 0x40), b)],
    [
      'swapped chunks',
      (b) => {
        const box = CHUNK_BYTES + 16;
        return Buffer.concat([
          b.subarray(0, 32),
          b.subarray(32 + box, 32 + 2 * box),
          b.subarray(32, 32 + box),
          b.subarray(32 + 2 * box),
        ]);
      },
    ],
    ['a truncated file', (b) => b.subarray(0, b.length - 100)],
    ['a file cut at a chunk boundary', (b) => b.subarray(0, 32 + 2 * (CHUNK_BYTES + 16))],
    ['a wrong header', (b) => (b.write('XCLONE', 0, 'latin1'), b)],
  ];
  const original = Buffer.alloc(2 * CHUNK_BYTES + 1000, 'case content ');

  for (const [what, change] of damage) {
    it(`${what}: the scan reports a problem naming the file and the case file is never overwritten`, async () => {
      const { storage, names, caseRoot, caseReplica } = await withFiles({ 'notes/f.bin': original });
      const file = join(storage.root, names.encryptPath('notes/f.bin'));
      // A whole second, so the tamperer can restore it exactly.
      const t = Date.UTC(2024, 5, 1) / 1000;
      await fsp.utimes(file, t, t);
      const good = await scanAll(storage.replica);
      const goodEntry = good.snapshot.get('notes/f.bin') as FileEntry;
      await fsp.writeFile(file, change(await fsp.readFile(file)));
      // Same size and mtime as before when the damage keeps the length: the cache would vouch.
      await fsp.utimes(file, t, t);

      // 1. A scan decrypts every file it has no hash for: the damaged one is a problem. A file cut
      // at a chunk boundary still decrypts (rclone's format does not authenticate the length): it
      // is caught against the hash cache (shorter, same mtime).
      const cache = what.includes('chunk boundary') ? { get: (p: string) => good.hashes.get(p) } : NO_CACHE;
      const scan = await storage.replica.scan({ cache, ignore: () => false });
      assert.equal(scan.snapshot.has('notes/f.bin'), false);
      const problem = scan.problems.find((q) => q.path === 'notes/f.bin');
      assert.ok(problem, `no problem for notes/f.bin: ${JSON.stringify(scan.problems)}`);
      assert.equal(problem.code, 'unreadable');
      assert.match(problem.message, /notes\/f\.bin/);
      // Content that fails authentication (or was cut) is offered for the case's version to
      // replace, under its stored mtime.
      assert.equal(problem.damaged?.mtimeMs, t * 1000, what);
      assert.match(problem.damaged?.hash ?? '', /^damaged:/);

      // 2. Content read for the case (as a sync would, trusting the earlier scan): refused.
      const incoming = {
        ...writeOp('notes/f.bin', Buffer.alloc(0)),
        entry: goodEntry,
        from: { side: 'mirror' as const, path: 'notes/f.bin', entry: goodEntry },
      };
      const caseEntry = (await scanAll(caseReplica)).snapshot.get('notes/f.bin');
      const results = await (
        await caseReplica.prepare([{ ...incoming, expected: caseEntry }], storage.replica.content)
      ).commit();
      assert.equal(results[0]!.ok, false);
      assert.match(results[0]!.ok ? '' : results[0]!.problem.message, /notes\/f\.bin/);
      assert.deepEqual(await fsp.readFile(join(caseRoot, 'notes/f.bin')), original, 'the case file changed');
      const left = await fsp.readdir(join(caseRoot, 'notes'));
      assert.deepEqual(left, ['f.bin'], 'staging debris in the case');
    });
  }

  it('reads with the wrong passphrase fail; names do not decrypt', async () => {
    const { storage } = await withFiles({ 'a.txt': Buffer.from('a') });
    const inner = new PathReplica({
      root: storage.root,
      label: 'stick',
      capabilities: POSIX_CAPABILITIES,
      role: 'mirror',
    });
    const wrong = new EncryptedReplica({ inner, keys: await deriveKeys('wrong') });
    const scan = await scanAll(wrong);
    assert.equal(scan.snapshot.size, 0);
    assert.equal(scan.problems.length, 1);
  });

  it('a second scan with the persisted cache reads no content', async () => {
    const { storage } = await withFiles({ 'a.txt': Buffer.from('a'), 'b.txt': Buffer.from('b') });
    const first = await scanAll(storage.replica);
    let opened = 0;
    const inner = new PathReplica({
      root: storage.root,
      label: 'stick',
      capabilities: POSIX_CAPABILITIES,
      role: 'mirror',
    });
    const open = inner.content.open.bind(inner.content);
    (inner.content as { open: typeof open }).open = (p, e) => (opened++, open(p, e));
    const again = await new EncryptedReplica({ inner, keys }).scan({
      cache: { get: (p) => first.hashes.get(p) },
      ignore: () => false,
    });
    assert.equal(opened, 0);
    assert.deepEqual(again.snapshot, first.snapshot);
  });
});
