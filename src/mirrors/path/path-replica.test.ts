import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { execFileSync } from 'node:child_process';
import { POSIX_CAPABILITIES, type Capabilities } from '../../core/capabilities.js';
import { comparePaths, type Entry, type FileEntry } from '../../core/entry.js';
import { SatchelError } from '../../core/errors.js';
import { encodePath } from '../../core/name-encoding.js';
import type { Operation, WriteOperation } from '../../core/plan.js';
import { TEMP_PREFIX } from '../../core/reserved.js';
import { runReplicaContract, type ContractPoke, type ContractStorage } from '../../replica/contract.js';
import { MemoryReplica } from '../../replica/memory.js';
import type { ContentSource } from '../../replica/replica.js';
import { createExfatImage, mountExfat, type ExfatMount } from '../../../test/helpers/exfat.js';
import { makeTempDir, removeTempDir } from '../../../test/helpers/temp.js';
import { fastFs } from './fastfs-binding.js';
import { PathReplica, type LockJournal } from './path-replica.js';
import { FAT32_MAX_FILE_SIZE, granularityFrom, probeCapabilities } from './probe.js';
import { readMarker, writeMarker } from './marker.js';

const NOBODY = 65534;
const scanOptions = { cache: { get: () => undefined }, ignore: () => false };

/** Every path below `root`, relative, as stored. */
async function rawNames(root: string): Promise<string[]> {
  const entries = await fsp.readdir(root, { recursive: true });
  return entries.sort();
}

/** Contract storage: a fresh folder below `base` holding a mirror with capabilities `caps`. */
async function pathStorage(
  base: string,
  caps: Capabilities,
  extra: Partial<ContractPoke> = {},
  nativeCalls = true,
): Promise<ContractStorage> {
  const root = await fsp.mkdtemp(join(base, 'mirror-'));
  // World-readable, so a scan as an unprivileged user can enter it.
  await fsp.chmod(root, 0o755);
  const abs = (path: string): string => join(root, encodePath(path, caps));
  const poke: ContractPoke = {
    write: async (path, content, mtimeMs) => {
      await fsp.mkdir(join(abs(path), '..'), { recursive: true });
      await fsp.writeFile(abs(path), content);
      if (mtimeMs !== undefined) await fsp.utimes(abs(path), mtimeMs / 1000, mtimeMs / 1000);
    },
    rawNames: () => rawNames(root),
    ...extra,
  };
  return {
    replica: new PathReplica({ root, label: 'mirror', capabilities: caps, role: 'mirror', nativeCalls }),
    cleanup: () => fsp.rm(root, { recursive: true, force: true }),
    poke,
  };
}

/** Root reads everything: unreadable files are made so by scanning as `nobody` meanwhile. */
function unreadableHooks(rootOf: () => string): Pick<ContractPoke, 'makeUnreadable' | 'restricted'> {
  return {
    makeUnreadable: async (path) => fsp.chmod(join(rootOf(), path), 0o000),
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
}

/** Like {@link pathStorage} with the unreadable hooks bound to the new root. */
async function posixStorage(
  base: string,
  extra: Partial<ContractPoke> = {},
  nativeCalls = true,
): Promise<ContractStorage> {
  let root = '';
  const storage = await pathStorage(
    base,
    POSIX_CAPABILITIES,
    { ...unreadableHooks(() => root), ...extra },
    nativeCalls,
  );
  root = (storage.replica as PathReplica).content.localFile('')!;
  return storage;
}

/** Adds a `fill` hook (a filler file in `dir`, outside the mirror root) and removes the filler on cleanup. */
async function withFiller(dir: string, storage: Promise<ContractStorage>): Promise<ContractStorage> {
  const s = await storage;
  const filler = join(dir, 'filler');
  const fill = async (): Promise<void> => {
    const st = await fsp.statfs(dir);
    await fsp.writeFile(filler, Buffer.alloc(Math.max(0, Number(st.bavail) * Number(st.bsize) - 256 * 1024)));
  };
  return {
    ...s,
    poke: { ...s.poke!, fill },
    cleanup: async () => {
      await s.cleanup();
      await fsp.rm(filler, { force: true });
    },
  };
}

describe('path replica on the local disk', () => {
  let base = '';
  before(() => {
    base = makeTempDir('path-replica');
    // Traversable by `nobody`, for the unreadable-file case.
    chmodSync(base, 0o755);
  });
  after(() => removeTempDir(base));
  runReplicaContract({
    name: 'path (local disk)',
    create: () => posixStorage(base),
    skip: {
      'a full disk is a no-space problem naming the file':
        'the local disk is not filled; the tmpfs run covers it',
    },
  });
  // The same contract without the native addon: what a machine that could not build it runs.
  runReplicaContract({
    name: 'path (local disk, Node fs calls only)',
    create: () => posixStorage(base, {}, false),
    skip: {
      'a full disk is a no-space problem naming the file':
        'the local disk is not filled; the tmpfs run covers it',
    },
  });
});

describe('path replica on a 4 MiB tmpfs', () => {
  let mnt = '';
  before(() => {
    mnt = makeTempDir('path-tmpfs');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'satchel-test', mnt]);
  });
  after(() => {
    execFileSync('umount', [mnt]);
    removeTempDir(mnt);
  });
  runReplicaContract({
    name: 'path (tmpfs)',
    create: () => withFiller(mnt, posixStorage(mnt)),
  });
});

describe('path replica on exFAT (exfat-fuse on a loop device)', () => {
  let dir = '';
  let mount: ExfatMount | undefined;
  let caps: Capabilities = POSIX_CAPABILITIES;
  before(async () => {
    dir = makeTempDir('path-exfat');
    createExfatImage(join(dir, 'stick.img'), 16);
    mount = await mountExfat(join(dir, 'stick.img'), join(dir, 'mnt'));
    caps = await probeCapabilities(mount.mnt);
  });
  after(async () => {
    await mount?.stop();
    removeTempDir(dir);
  });

  it('probes exFAT semantics', async () => {
    assert.deepEqual(caps, {
      readable: true,
      writable: true,
      symlinks: false,
      executableBit: false,
      caseSensitive: false,
      mtimeGranularityMs: 1000,
      forbiddenChars: ':?*<>|"\\',
      forbidsTrailingDotOrSpace: true, // exfat-fuse keeps them, but Windows would strip them
      maxFileSize: Number.MAX_SAFE_INTEGER,
      maxNameLength: 255,
    });
    assert.deepEqual(await rawNames(mount!.mnt), [], 'the probe left its scratch folder');
  });

  runReplicaContract({
    name: 'path (exFAT)',
    create: () => withFiller(mount!.mnt, pathStorage(mount!.mnt, caps)),
    skip: {
      'an unreadable file is a problem and the rest is scanned':
        'exFAT stores no permissions (chmod is ignored): nothing is unreadable to root there',
    },
  });

  it('a yanked stick makes scan and commit throw mirror-absent', async () => {
    const yankDir = makeTempDir('path-yank');
    const y = await mountExfat(
      (createExfatImage(join(yankDir, 'y.img'), 8), join(yankDir, 'y.img')),
      join(yankDir, 'mnt'),
    );
    try {
      const source = new MemoryReplica();
      const replica = new PathReplica({ root: y.mnt, label: 'stick', capabilities: caps, role: 'mirror' });
      const prepared = await replica.prepare([writeOf(source, 'f.txt', 'x')], source.content);
      await y.yank();
      await assert.rejects(
        prepared.commit(),
        (e: unknown) => e instanceof SatchelError && e.code === 'mirror-absent',
      );
      await assert.rejects(
        replica.scan(scanOptions),
        (e: unknown) => e instanceof SatchelError && e.code === 'mirror-absent',
      );
    } finally {
      await y.stop();
      removeTempDir(yankDir);
    }
  });
});

function writeOf(source: MemoryReplica, path: string, content: string, expected?: Entry): WriteOperation {
  const mtimeMs = Date.UTC(2024, 5, 1, 12, 0, 0);
  source.put(path, content, { mtimeMs });
  return { ...localWrite(path, content, mtimeMs), expected };
}

/** A content source whose files are the local files below `dir`, as a path replica's are. */
function localSource(dir: string): ContentSource {
  return {
    open: () => Promise.reject(new Error('not used: the sources are local files')),
    localFile: (path) => join(dir, path),
    unchanged: async () => true,
  };
}

/** A write to `path` of `content` as a file with `mtimeMs`, from the same path of the other side. */
function localWrite(path: string, content: Buffer | string, mtimeMs: number): WriteOperation {
  const entry: FileEntry = {
    kind: 'file',
    size: Buffer.byteLength(content),
    mtimeMs,
    executable: false,
    hash: createHash('sha256').update(content).digest('hex'),
  };
  return { type: 'write', path, entry, from: { side: 'case', path, entry }, expected: undefined };
}

/** A mirror replica over `root` with POSIX capabilities. */
function plainMirror(root: string, nativeCalls: boolean): PathReplica {
  return new PathReplica({
    root,
    label: 'mirror',
    capabilities: POSIX_CAPABILITIES,
    role: 'mirror',
    nativeCalls,
  });
}

describe('path replica specifics', () => {
  let base = '';
  before(() => {
    base = makeTempDir('path-specific');
  });
  after(() => removeTempDir(base));

  /** A case replica over a fresh folder with `f.txt` (mode 0644), and its lock journal. */
  async function caseWithFile(): Promise<{
    root: string;
    replica: PathReplica;
    journal: string[];
    before: FileEntry;
  }> {
    const root = await fsp.mkdtemp(join(base, 'case-'));
    await fsp.writeFile(join(root, 'f.txt'), 'mine');
    await fsp.chmod(join(root, 'f.txt'), 0o644);
    const journal: string[] = [];
    const locks: LockJournal = {
      locked: (path, mode) => journal.push(`locked ${path} ${mode.toString(8)}`),
      unlocked: (path) => journal.push(`unlocked ${path}`),
    };
    const replica = new PathReplica({
      root,
      label: 'case',
      capabilities: POSIX_CAPABILITIES,
      role: 'case',
      locks,
    });
    const before = (await replica.scan(scanOptions)).snapshot.get('f.txt') as FileEntry;
    return { root, replica, journal, before };
  }

  const modeOf = async (file: string): Promise<number> => (await fsp.lstat(file)).mode & 0o777;

  /** A mirror replica over a fresh folder, with the fastfs addon's calls or Node's only. */
  async function freshMirror(
    prefix: string,
    nativeCalls: boolean,
  ): Promise<{ root: string; replica: PathReplica }> {
    const root = await fsp.mkdtemp(join(base, prefix));
    const replica = new PathReplica({
      root,
      label: 'mirror',
      role: 'mirror',
      capabilities: POSIX_CAPABILITIES,
      nativeCalls,
    });
    return { root, replica };
  }

  it('case role: locks the file read-only between prepare and commit, then replaces it', async () => {
    const { root, replica, journal, before } = await caseWithFile();
    const source = new MemoryReplica();
    const prepared = await replica.prepare([writeOf(source, 'f.txt', 'incoming', before)], source.content);
    assert.equal(await modeOf(join(root, 'f.txt')), 0o444);
    assert.deepEqual(journal, ['locked f.txt 644']);
    const [result] = await prepared.commit();
    assert.equal(result?.ok, true);
    assert.equal(await fsp.readFile(join(root, 'f.txt'), 'utf8'), 'incoming');
    assert.equal(await modeOf(join(root, 'f.txt')), 0o644);
    assert.deepEqual(journal, ['locked f.txt 644', 'unlocked f.txt']);
    assert.deepEqual(await rawNames(root), ['f.txt']);
  });

  it('case role: a save during the lock window wins; the mode is restored', async () => {
    const { root, replica, journal, before } = await caseWithFile();
    const source = new MemoryReplica();
    const prepared = await replica.prepare([writeOf(source, 'f.txt', 'incoming', before)], source.content);
    // The user saves anyway (root, or an editor that forces the write).
    await fsp.writeFile(join(root, 'f.txt'), 'saved by the user meanwhile');
    const [result] = await prepared.commit();
    assert.equal(result?.ok === false ? result.problem.code : 'ok', 'changed-during-sync');
    assert.equal(await fsp.readFile(join(root, 'f.txt'), 'utf8'), 'saved by the user meanwhile');
    assert.equal(await modeOf(join(root, 'f.txt')), 0o644);
    assert.deepEqual(journal, ['locked f.txt 644', 'unlocked f.txt']);
    assert.deepEqual(await rawNames(root), ['f.txt']);
  });

  it('a file or folder created at the target between staging and commit is kept', async () => {
    for (const nativeCalls of [true, false]) {
      const { root, replica } = await freshMirror('race-', nativeCalls);
      const source = new MemoryReplica();
      const prepared = await replica.prepare(
        [writeOf(source, 'new.txt', 'incoming', undefined), writeOf(source, 'dir', 'incoming', undefined)],
        source.content,
      );
      await fsp.writeFile(join(root, 'new.txt'), 'saved by the user meanwhile');
      await fsp.mkdir(join(root, 'dir'));
      const results = await prepared.commit();
      assert.deepEqual(
        results.map((r) => (r.ok ? 'ok' : r.problem.code)),
        ['changed-during-sync', 'changed-during-sync'],
        `nativeCalls ${nativeCalls}`,
      );
      assert.equal(await fsp.readFile(join(root, 'new.txt'), 'utf8'), 'saved by the user meanwhile');
      assert.ok((await fsp.lstat(join(root, 'dir'))).isDirectory());
      assert.deepEqual(await rawNames(root), ['dir', 'new.txt']);
    }
  });

  it('streamed content: one piece or many, hashed and checked against the plan', async () => {
    for (const nativeCalls of [true, false]) {
      const { root, replica } = await freshMirror('stream-', nativeCalls);
      const big = Buffer.from(Array.from({ length: 3 * 65536 + 7 }, (_, i) => (i * 7) & 255));
      const entryOf = (data: Buffer, hash = createHash('sha256').update(data).digest('hex')): FileEntry => ({
        kind: 'file',
        size: data.length,
        mtimeMs: Date.UTC(2024, 5, 1),
        executable: false,
        hash,
      });
      // A source without local files that hands out content in 64 KiB pieces.
      const pieces = new Map<string, Buffer>([
        ['one.bin', Buffer.from('one piece')],
        ['many.bin', big],
        ['lying.bin', big],
      ]);
      const source: ContentSource = {
        open: async (path) =>
          Readable.from(
            (function* () {
              const data = pieces.get(path)!;
              for (let at = 0; at < data.length; at += 65536) yield data.subarray(at, at + 65536);
            })(),
          ),
        localFile: () => undefined,
        unchanged: async () => true,
      };
      const write = (path: string, entry: FileEntry): WriteOperation => ({
        type: 'write',
        path,
        entry,
        from: { side: 'case', path, entry },
        expected: undefined,
      });
      const results = await (
        await replica.prepare(
          [
            write('one.bin', entryOf(pieces.get('one.bin')!)),
            write('many.bin', entryOf(big)),
            // The plan expected other content: nothing is stored.
            write('lying.bin', entryOf(big, 'f'.repeat(64))),
          ],
          source,
        )
      ).commit();
      assert.deepEqual(
        results.map((r) => (r.ok ? 'ok' : r.problem.code)),
        ['ok', 'ok', 'changed-during-sync'],
        `nativeCalls ${nativeCalls}`,
      );
      assert.deepEqual(await fsp.readFile(join(root, 'one.bin')), pieces.get('one.bin'));
      assert.deepEqual(await fsp.readFile(join(root, 'many.bin')), big);
      assert.deepEqual(await rawNames(root), ['many.bin', 'one.bin']);
      const st = await fsp.lstat(join(root, 'many.bin'));
      assert.equal(st.mtimeMs, Date.UTC(2024, 5, 1));
    }
  });

  it('a local source deleted since the scan is changed-during-sync, not an I/O error of the target', async () => {
    for (const nativeCalls of [true, false]) {
      const root = await fsp.mkdtemp(join(base, 'gone-'));
      const replica = plainMirror(root, nativeCalls);
      const source = localSource(join(base, 'nowhere'));
      const write = localWrite('.b.tmp', 'saved by an editor, then renamed away\n', Date.UTC(2024, 5, 1));
      const results = await (await replica.prepare([write], source)).commit();
      assert.equal(results[0]?.ok, false);
      const problem = results[0]?.ok === false ? results[0].problem : undefined;
      assert.equal(
        problem?.code,
        'changed-during-sync',
        `nativeCalls ${nativeCalls}: ${JSON.stringify(problem)}`,
      );
      assert.match(problem?.message ?? '', /\.b\.tmp changed or went away while it was copied to mirror/);
      assert.deepEqual(await rawNames(root), [], 'no temporary file stays');
    }
  });

  it('a named pipe put where the source file was is a per-path problem at once, never waited on', async () => {
    for (const nativeCalls of [true, false]) {
      const root = await fsp.mkdtemp(join(base, 'fifo-'));
      const replica = plainMirror(root, nativeCalls);
      const sourceDir = await fsp.mkdtemp(join(base, 'fifo-source-'));
      execFileSync('mkfifo', [join(sourceDir, 'f.txt')]);
      const write = localWrite('f.txt', 'was a file when scanned\n', Date.UTC(2024, 5, 1));
      const results = await (await replica.prepare([write], localSource(sourceDir))).commit();
      const problem = results[0]?.ok === false ? results[0].problem : undefined;
      assert.ok(problem !== undefined, `nativeCalls ${nativeCalls}: ${JSON.stringify(results[0])}`);
      assert.match(
        problem.message,
        /^cannot read f\.txt/,
        `nativeCalls ${nativeCalls}: the file read, not the mirror`,
      );
      assert.deepEqual(await rawNames(root), [], 'no temporary file stays');
    }
  });

  it('a new copy is no more open than its local source; a sparse source keeps its holes', async () => {
    for (const nativeCalls of [true, false]) {
      const root = await fsp.mkdtemp(join(base, 'modes-'));
      const from = await fsp.mkdtemp(join(base, 'modes-src-'));
      const replica = plainMirror(root, nativeCalls);
      const files: [string, number, Buffer][] = [
        ['key.pem', 0o600, Buffer.from('secret\n')],
        ['shared.txt', 0o640, Buffer.from('group may read\n')],
        ['open.txt', 0o666, Buffer.from('umask decides\n')],
      ];
      const ops: WriteOperation[] = [];
      for (const [name, mode, content] of files) {
        await fsp.writeFile(join(from, name), content);
        await fsp.chmod(join(from, name), mode);
        ops.push(localWrite(name, content, (await fsp.lstat(join(from, name))).mtimeMs));
      }
      // 8 MiB with 4 KiB of data in the middle.
      const image = join(from, 'disk.img');
      const handle = await fsp.open(image, 'w');
      await handle.write(Buffer.alloc(4096, 7), 0, 4096, 4 * 1024 * 1024);
      await handle.truncate(8 * 1024 * 1024);
      await handle.close();
      const imageBytes = await fsp.readFile(image);
      ops.push(localWrite('disk.img', imageBytes, (await fsp.lstat(image)).mtimeMs));
      const source = localSource(from);
      const results = await (await replica.prepare(ops, source)).commit();
      assert.deepEqual(
        results.map((r) => r.ok),
        [true, true, true, true],
        `nativeCalls ${nativeCalls}`,
      );
      const modeOf = async (name: string): Promise<number> =>
        (await fsp.lstat(join(root, name))).mode & 0o777;
      assert.equal(await modeOf('key.pem'), 0o600, `nativeCalls ${nativeCalls}`);
      assert.equal(await modeOf('shared.txt'), 0o640, `nativeCalls ${nativeCalls}`);
      assert.equal(await modeOf('open.txt'), 0o666 & ~process.umask(), `nativeCalls ${nativeCalls}`);
      assert.deepEqual(await fsp.readFile(join(root, 'disk.img')), imageBytes);
      if (nativeCalls && fastFs(true) !== undefined) {
        const st = await fsp.lstat(join(root, 'disk.img'));
        assert.ok(st.blocks * 512 < 1024 * 1024, `the holes were filled: ${st.blocks * 512} bytes allocated`);
      }
    }
  });

  it('a local copy carries the source modification time to the nanosecond (native copies)', async () => {
    if (fastFs(true) === undefined) return;
    const root = await fsp.mkdtemp(join(base, 'ns-'));
    const from = await fsp.mkdtemp(join(base, 'ns-src-'));
    await fsp.writeFile(join(from, 'f.txt'), 'x\n');
    execFileSync('touch', ['-d', '2025-01-02T03:04:05.123456789Z', join(from, 'f.txt')]);
    const st = await fsp.lstat(join(from, 'f.txt'), { bigint: true });
    const write = localWrite('f.txt', 'x\n', (await fsp.lstat(join(from, 'f.txt'))).mtimeMs);
    const source = localSource(from);
    const [result] = await (await plainMirror(root, true).prepare([write], source)).commit();
    assert.equal(result?.ok, true);
    assert.equal((await fsp.lstat(join(root, 'f.txt'), { bigint: true })).mtimeNs, st.mtimeNs);
  });

  it('case role: abort unlocks and deletes the staged file', async () => {
    const { root, replica, journal, before } = await caseWithFile();
    const source = new MemoryReplica();
    const prepared = await replica.prepare([writeOf(source, 'f.txt', 'incoming', before)], source.content);
    await prepared.abort();
    assert.equal(await modeOf(join(root, 'f.txt')), 0o644);
    assert.equal(await fsp.readFile(join(root, 'f.txt'), 'utf8'), 'mine');
    assert.deepEqual(journal, ['locked f.txt 644', 'unlocked f.txt']);
    assert.deepEqual(await rawNames(root), ['f.txt']);
  });

  it('keeps permission bits of the replaced file and sets exec bits where readable', async () => {
    const root = await fsp.mkdtemp(join(base, 'mode-'));
    await fsp.writeFile(join(root, 'g.txt'), 'old');
    await fsp.chmod(join(root, 'g.txt'), 0o640);
    const replica = new PathReplica({ root, label: 'm', capabilities: POSIX_CAPABILITIES, role: 'mirror' });
    const before = (await replica.scan(scanOptions)).snapshot.get('g.txt');
    const source = new MemoryReplica();
    const op = writeOf(source, 'g.txt', 'new', before);
    const exec: WriteOperation = { ...op, entry: { ...op.entry, executable: true } };
    await (await replica.prepare([exec], source.content)).commit();
    assert.equal(await modeOf(join(root, 'g.txt')), 0o750);
  });

  it('crash debris is deleted by a scan, staged files in use are not', async () => {
    const root = await fsp.mkdtemp(join(base, 'debris-'));
    await fsp.mkdir(join(root, 'd', `${TEMP_PREFIX}probe-0123456789ab`), { recursive: true });
    await fsp.writeFile(join(root, `${TEMP_PREFIX}0123456789abcdef`), 'half a file');
    const replica = new PathReplica({ root, label: 'm', capabilities: POSIX_CAPABILITIES, role: 'mirror' });
    const source = new MemoryReplica();
    const prepared = await replica.prepare([writeOf(source, 'new.txt', 'staged')], source.content);
    const result = await replica.scan(scanOptions);
    assert.deepEqual([...result.snapshot.keys()], ['d']);
    const staged = (await rawNames(root)).filter((n) => n.includes(TEMP_PREFIX));
    assert.equal(staged.length, 1, 'only the live staged file remains');
    const [r] = await prepared.commit();
    assert.equal(r?.ok, true);
    assert.deepEqual(await rawNames(root), ['d', 'new.txt']);
  });

  it('a name that is not valid UTF-8 is an unreadable problem, not silently skipped', async () => {
    const root = await fsp.mkdtemp(join(base, 'latin1-'));
    // `café.txt` and `Fotos-été/` written in Latin-1: bytes that are not UTF-8.
    const raw = (s: string): Buffer => Buffer.concat([Buffer.from(`${root}/`), Buffer.from(s, 'latin1')]);
    await fsp.writeFile(raw('café.txt'), 'coffee');
    await fsp.mkdir(raw('Fotos-été'));
    await fsp.writeFile(Buffer.concat([raw('Fotos-été'), Buffer.from('/p1.jpg')]), 'photo');
    await fsp.writeFile(join(root, 'ok.txt'), 'fine');
    for (const nativeCalls of [true, false]) {
      const replica = new PathReplica({
        root,
        label: 'm',
        capabilities: POSIX_CAPABILITIES,
        role: 'mirror',
        nativeCalls,
      });
      const result = await replica.scan(scanOptions);
      assert.deepEqual([...result.snapshot.keys()], ['ok.txt'], `nativeCalls ${nativeCalls}`);
      assert.deepEqual(
        result.problems.map((p) => [p.path, p.code]).sort(),
        [
          ['Fotos-\ufffdt\ufffd', 'unreadable'],
          ['caf\ufffd.txt', 'unreadable'],
        ],
        `nativeCalls ${nativeCalls}`,
      );
      for (const p of result.problems) assert.match(p.message, /not valid UTF-8/);
    }
  });

  it("a user's file or folder that only starts like a temporary name is an ordinary entry, never deleted", async () => {
    const root = await fsp.mkdtemp(join(base, 'lookalike-'));
    await fsp.mkdir(join(root, `${TEMP_PREFIX}project`));
    await fsp.writeFile(join(root, `${TEMP_PREFIX}project`, 'thesis.txt'), 'important');
    await fsp.writeFile(join(root, `${TEMP_PREFIX}0123`), 'short hex');
    await fsp.writeFile(join(root, `${TEMP_PREFIX}0123456789ABCDEF`), 'upper-case hex');
    const replica = new PathReplica({ root, label: 'm', capabilities: POSIX_CAPABILITIES, role: 'mirror' });
    const result = await replica.scan(scanOptions);
    assert.deepEqual(
      [...result.snapshot.keys()],
      [
        `${TEMP_PREFIX}0123`,
        `${TEMP_PREFIX}0123456789ABCDEF`,
        `${TEMP_PREFIX}project`,
        `${TEMP_PREFIX}project/thesis.txt`,
      ],
    );
    assert.equal(await fsp.readFile(join(root, `${TEMP_PREFIX}project`, 'thesis.txt'), 'utf8'), 'important');
  });

  it('a root that does not exist or is a file is absent', async () => {
    const missing = new PathReplica({
      root: join(base, 'nope'),
      label: 'm',
      capabilities: POSIX_CAPABILITIES,
      role: 'mirror',
    });
    await assert.rejects(
      missing.scan(scanOptions),
      (e: unknown) => e instanceof SatchelError && e.code === 'mirror-absent',
    );
    await fsp.writeFile(join(base, 'file'), '');
    const file = new PathReplica({
      root: join(base, 'file'),
      label: 'm',
      capabilities: POSIX_CAPABILITIES,
      role: 'mirror',
    });
    await assert.rejects(
      file.scan(scanOptions),
      (e: unknown) => e instanceof SatchelError && e.code === 'mirror-absent',
    );
  });

  it('skips fifos and reports links as links', async () => {
    const root = await fsp.mkdtemp(join(base, 'kinds-'));
    execFileSync('mkfifo', [join(root, 'pipe')]);
    await fsp.symlink('/etc/passwd', join(root, 'link'));
    const replica = new PathReplica({ root, label: 'm', capabilities: POSIX_CAPABILITIES, role: 'mirror' });
    const result = await replica.scan(scanOptions);
    assert.deepEqual([...result.snapshot], [['link', { kind: 'symlink', target: '/etc/passwd' }]]);
  });

  it('applies mkdir, write, rename and remove in one plan', async () => {
    const root = await fsp.mkdtemp(join(base, 'plan-'));
    const replica = new PathReplica({ root, label: 'm', capabilities: POSIX_CAPABILITIES, role: 'mirror' });
    const source = new MemoryReplica();
    const ops: Operation[] = [
      { type: 'mkdir', path: 'a', expected: undefined },
      writeOf(source, 'a/1.txt', 'one'),
      writeOf(source, 'a/2.txt', 'two'),
      { type: 'rename', from: 'a', to: 'b', expected: { kind: 'directory' } },
    ];
    const results = await (await replica.prepare(ops, source.content)).commit();
    assert.deepEqual(
      results.map((r) => r.ok),
      [true, true, true, true],
    );
    assert.deepEqual(await rawNames(root), ['b', 'b/1.txt', 'b/2.txt']);
  });
});

describe('probe', () => {
  it('finds POSIX semantics on the local disk', async () => {
    const dir = makeTempDir('probe');
    try {
      const caps = await probeCapabilities(dir);
      assert.deepEqual(caps, POSIX_CAPABILITIES);
      assert.deepEqual(await fsp.readdir(dir), []);
    } finally {
      removeTempDir(dir);
    }
  });

  it('finds POSIX semantics on tmpfs', async () => {
    const dir = makeTempDir('probe-tmpfs');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'satchel-probe', dir]);
    try {
      assert.deepEqual(await probeCapabilities(dir), POSIX_CAPABILITIES);
    } finally {
      execFileSync('umount', [dir]);
      removeTempDir(dir);
    }
  });

  it('derives the granularity from what was stored', () => {
    const t = Date.UTC(2021, 4, 6, 7, 8, 5, 123);
    assert.equal(granularityFrom(t, t), 1);
    assert.equal(granularityFrom(t, t - 123), 1000);
    assert.equal(granularityFrom(t, t - 1123), 2000);
    assert.equal(FAT32_MAX_FILE_SIZE, 4294967295);
  });

  it('refuses a missing root', async () => {
    await assert.rejects(
      probeCapabilities('/nonexistent-satchel-root'),
      (e: unknown) => e instanceof SatchelError && e.code === 'mirror-absent',
    );
  });
});

describe('marker', () => {
  it('is undefined for a missing root or file, round-trips, and names a malformed file', async () => {
    const dir = makeTempDir('marker');
    try {
      assert.equal(await readMarker(join(dir, 'missing')), undefined);
      assert.equal(await readMarker(dir), undefined);
      const marker = {
        version: 1,
        id: '0b4b7e4e-8a55-4a51-9b8e-0f1e2d3c4b5a',
        case: 'work',
        createdAt: new Date(0).toISOString(),
      } as const;
      await writeMarker(dir, marker);
      assert.deepEqual(await readMarker(dir), marker);
      assert.deepEqual(await fsp.readdir(dir), ['.satchel-mirror']);
      await fsp.writeFile(join(dir, '.satchel-mirror'), '{"version":1,"id":"nope"}');
      await assert.rejects(readMarker(dir), (e: unknown) => {
        assert.ok(e instanceof SatchelError && e.code === 'config-invalid');
        assert.match(e.message, /\.satchel-mirror.*id/);
        return true;
      });
      await fsp.writeFile(join(dir, '.satchel-mirror'), 'not json');
      await assert.rejects(readMarker(dir), /not valid JSON/);
    } finally {
      removeTempDir(dir);
    }
  });
});

describe('scan order', () => {
  for (const nativeCalls of [true, false]) {
    it(`lists every folder before its children, siblings by name (${nativeCalls ? 'native' : 'Node fs'} calls)`, async () => {
      const dir = makeTempDir('scan-order');
      try {
        const paths = ['a/b/c', 'a-b/x', 'a.b', 'ab/z', 'Z/y', 'é/ü', 'a/b-c', 'a/b/d/e', '0', 'a/ba'];
        for (const p of paths) {
          await fsp.mkdir(join(dir, p, '..'), { recursive: true });
          await fsp.writeFile(join(dir, p), p);
        }
        await fsp.symlink('a', join(dir, 'link'));
        await fsp.mkdir(join(dir, 'empty'));
        const replica = new PathReplica({
          root: dir,
          label: 'm',
          capabilities: POSIX_CAPABILITIES,
          role: 'mirror',
          nativeCalls,
        });
        const { snapshot } = await replica.scan(scanOptions);
        const keys = [...snapshot.keys()];
        assert.deepEqual(keys, [...keys].sort(comparePaths));
        assert.equal(keys.length, 19);
        assert.deepEqual(snapshot.get('link'), { kind: 'symlink', target: 'a' });
        assert.deepEqual(snapshot.get('empty'), { kind: 'directory' });
      } finally {
        removeTempDir(dir);
      }
    });
  }
});
