/**
 * @module replica/contract
 * The one test suite every replica kind must pass (memory, path, and later SFTP, FTP,
 * encrypted, peer), in the manner of hono's `router/common.case.test.ts`: call
 * {@link runReplicaContract} from the kind's own `*.test.ts` with a factory for fresh, empty
 * storage. A case a kind cannot support is listed in `skip` with the reason; a case that needs a
 * hook the factory does not provide fails, saying which hook or skip entry is missing.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Entry, FileEntry } from '../core/entry.js';
import type { Operation, WriteOperation } from '../core/plan.js';
import { isTempName, MARKER_NAME, STATE_DIR_NAME, TEMP_PREFIX, tempSuffix } from '../core/reserved.js';
import { MemoryReplica } from './memory.js';
import type { CachedHash, ContentSource, OperationResult, Replica, ScanResult } from './replica.js';

/** Access to the storage behind a replica, for setting up what the replica must then find. */
export interface ContractPoke {
  /** Writes a file straight into the storage (name in the case's spelling, stored as the replica would). */
  write(path: string, content: string, mtimeMs?: number): Promise<void>;
  /** Every stored path in its stored spelling (encoded names, Satchel's own files included). */
  rawNames(): Promise<string[]>;
  /** Makes `path` unreadable for the replica (needed by the unreadable-file case). */
  makeUnreadable?(path: string): Promise<void>;
  /** Runs `fn` in the conditions where unreadable paths are unreadable (e.g. as an unprivileged user). */
  restricted?<T>(fn: () => Promise<T>): Promise<T>;
  /** Fills the storage so that writing 1 MiB more fails for lack of space (needed by the no-space case). */
  fill?(): Promise<void>;
}

/** Fresh, empty storage with a replica over it. */
export interface ContractStorage {
  readonly replica: Replica;
  /** Removes the storage. */
  cleanup(): Promise<void>;
  /** Writes directly into the storage behind the replica's back. */
  readonly poke?: ContractPoke;
}

/** Options of {@link runReplicaContract}. */
export interface ReplicaContractOptions {
  /** Suite name, e.g. `path (exFAT)`. */
  readonly name: string;
  /** Makes fresh, empty storage; called once per test. */
  readonly create: () => Promise<ContractStorage>;
  /** Test name → why this kind cannot run it. */
  readonly skip?: Readonly<Record<string, string>>;
}

/** An instant on an even second, so every granularity (1 ms, 1 s, 2 s) stores it exactly. */
export const CONTRACT_BASE_MTIME_MS = Date.UTC(2024, 0, 2, 3, 4, 6);

const NO_CACHE = { get: () => undefined };
const NO_IGNORE = (): boolean => false;

function sha256(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

/** A content source holding files, and the write operations that copy them. */
class Source {
  readonly memory = new MemoryReplica({ label: 'source' });
  /** When true, the source claims every file moved after it was read. */
  moving = false;
  readonly content: ContentSource = {
    open: (path, entry) => this.memory.content.open(path, entry),
    localFile: () => undefined,
    unchanged: async (path, entry) => !this.moving && (await this.memory.content.unchanged(path, entry)),
  };

  /** A write of `content` to `path`, expecting `expected` there. */
  write(
    path: string,
    content: string,
    options: { mtimeMs?: number; executable?: boolean; expected?: Entry } = {},
  ): WriteOperation {
    const mtimeMs = options.mtimeMs ?? CONTRACT_BASE_MTIME_MS;
    this.memory.put(path, content, { mtimeMs, executable: options.executable === true });
    const entry: FileEntry = {
      kind: 'file',
      size: Buffer.byteLength(content),
      mtimeMs,
      executable: options.executable === true,
      hash: sha256(content),
    };
    return { type: 'write', path, entry, from: { side: 'case', path, entry }, expected: options.expected };
  }
}

async function scan(
  replica: Replica,
  options: { cache?: Map<string, CachedHash> } = {},
): Promise<ScanResult> {
  const cache = options.cache;
  return replica.scan({
    cache: cache === undefined ? NO_CACHE : { get: (p) => cache.get(p) },
    ignore: NO_IGNORE,
  });
}

async function apply(
  replica: Replica,
  ops: readonly Operation[],
  source: Source,
): Promise<readonly OperationResult[]> {
  const prepared = await replica.prepare(ops, source.content);
  return prepared.commit();
}

function assertAllOk(results: readonly OperationResult[]): void {
  for (const [i, r] of results.entries())
    assert.ok(r.ok, `operation ${i} failed: ${r.ok ? '' : r.problem.message}`);
}

function problemOf(result: OperationResult | undefined): string {
  assert.ok(result !== undefined && !result.ok, 'expected the operation to fail');
  return result.problem.code;
}

async function readAll(replica: Replica, path: string, entry: FileEntry): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await replica.content.open(path, entry))
    chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function fileAt(result: ScanResult, path: string): FileEntry {
  const e = result.snapshot.get(path);
  assert.equal(e?.kind, 'file', `${path} should be a file`);
  return e as FileEntry;
}

function need<T>(hook: T | undefined, name: string, test: string): T {
  if (hook === undefined) assert.fail(`'${test}' needs poke.${name}; provide it or list the test in skip`);
  return hook;
}

async function noTemps(poke: ContractPoke | undefined, test: string): Promise<void> {
  const raw = await need(poke, 'rawNames', test).rawNames();
  const temps = raw.filter((p) => p.split('/').some((s) => isTempName(s)));
  assert.deepEqual(temps, [], 'temporary files left behind');
}

/** Registers the contract suite with `node:test`. */
export function runReplicaContract(options: ReplicaContractOptions): void {
  describe(`replica contract: ${options.name}`, () => {
    const test = (name: string, body: (s: ContractStorage, source: Source) => Promise<void>): void => {
      const reason = options.skip?.[name];
      if (reason !== undefined) {
        it(name, { skip: reason }, () => {});
        return;
      }
      it(name, async () => {
        const storage = await options.create();
        try {
          await body(storage, new Source());
        } finally {
          await storage.cleanup();
        }
      });
    };

    test('scan of an empty root', async ({ replica }) => {
      const result = await scan(replica);
      assert.deepEqual([...result.snapshot], []);
      assert.deepEqual(result.problems, []);
      assert.equal(result.hashes.size, 0);
    });

    test('writes new files', async ({ replica, poke }, source) => {
      const ops = [source.write('a.txt', 'alpha'), source.write('b.bin', 'b'.repeat(100_000))];
      const results = await apply(replica, ops, source);
      assertAllOk(results);
      const after = await scan(replica);
      for (const [i, op] of ops.entries()) {
        const stored = results[i]!.ok ? results[i]!.stored : undefined;
        assert.deepEqual(after.snapshot.get(op.path), stored, 'stored must be what a scan then reports');
        const file = fileAt(after, op.path);
        assert.equal(file.hash, op.entry.hash);
        assert.equal(file.size, op.entry.size);
        assert.equal(after.hashes.get(op.path)?.hash, op.entry.hash);
      }
      assert.equal(await readAll(replica, 'a.txt', fileAt(after, 'a.txt')), 'alpha');
      assert.equal(await replica.content.unchanged('a.txt', fileAt(after, 'a.txt')), true);
      await noTemps(poke, 'writes new files');
    });

    test('creates nested folders then files in them', async ({ replica }, source) => {
      const ops: Operation[] = [
        { type: 'mkdir', path: 'd', expected: undefined },
        { type: 'mkdir', path: 'd/e', expected: undefined },
        source.write('d/e/f.txt', 'deep'),
      ];
      assertAllOk(await apply(replica, ops, source));
      const after = await scan(replica);
      assert.deepEqual([...after.snapshot.keys()], ['d', 'd/e', 'd/e/f.txt']);
      assert.deepEqual(after.snapshot.get('d'), { kind: 'directory' });
    });

    test('overwrites a file whose expected state matches', async ({ replica }, source) => {
      assertAllOk(await apply(replica, [source.write('f.txt', 'one')], source));
      const before = fileAt(await scan(replica), 'f.txt');
      const op = source.write('f.txt', 'second', {
        expected: before,
        mtimeMs: CONTRACT_BASE_MTIME_MS + 10_000,
      });
      assertAllOk(await apply(replica, [op], source));
      const after = await scan(replica);
      assert.equal(fileAt(after, 'f.txt').hash, sha256('second'));
      assert.equal(await readAll(replica, 'f.txt', fileAt(after, 'f.txt')), 'second');
    });

    test('refuses a write when the target changed since the scan', async ({ replica, poke }, source) => {
      assertAllOk(await apply(replica, [source.write('f.txt', 'one')], source));
      const before = fileAt(await scan(replica), 'f.txt');
      await need(poke, 'write', 'refuses a write…').write(
        'f.txt',
        'user saved this',
        CONTRACT_BASE_MTIME_MS + 4000,
      );
      const op = source.write('f.txt', 'incoming', { expected: before });
      const results = await apply(replica, [op], source);
      assert.equal(problemOf(results[0]), 'changed-during-sync');
      const after = await scan(replica);
      assert.equal(fileAt(after, 'f.txt').hash, sha256('user saved this'));
      await noTemps(poke, 'refuses a write…');
    });

    test('refuses to create a file that appeared since the scan', async ({ replica, poke }, source) => {
      await need(poke, 'write', 'refuses to create…').write('new.txt', 'mine');
      const results = await apply(replica, [source.write('new.txt', 'theirs')], source);
      assert.equal(problemOf(results[0]), 'changed-during-sync');
      assert.equal(fileAt(await scan(replica), 'new.txt').hash, sha256('mine'));
    });

    test('removes files and folders', async ({ replica }, source) => {
      const setup: Operation[] = [
        { type: 'mkdir', path: 'd', expected: undefined },
        source.write('d/f.txt', 'x'),
      ];
      assertAllOk(await apply(replica, setup, source));
      const snap = (await scan(replica)).snapshot;
      const ops: Operation[] = [
        { type: 'remove', path: 'd/f.txt', expected: snap.get('d/f.txt')! },
        { type: 'remove', path: 'd', expected: snap.get('d')! },
      ];
      const results = await apply(replica, ops, source);
      assertAllOk(results);
      assert.equal(results[1]!.ok ? results[1]!.stored : 'x', undefined);
      assert.equal((await scan(replica)).snapshot.size, 0);
    });

    test('refuses to remove a folder that is not empty', async ({ replica }, source) => {
      const setup: Operation[] = [
        { type: 'mkdir', path: 'd', expected: undefined },
        source.write('d/f.txt', 'x'),
      ];
      assertAllOk(await apply(replica, setup, source));
      const results = await apply(
        replica,
        [{ type: 'remove', path: 'd', expected: { kind: 'directory' } }],
        source,
      );
      assert.equal(problemOf(results[0]), 'not-empty');
      assert.equal((await scan(replica)).snapshot.size, 2);
    });

    test('renames a file', async ({ replica }, source) => {
      assertAllOk(await apply(replica, [source.write('old.txt', 'content')], source));
      const before = fileAt(await scan(replica), 'old.txt');
      const results = await apply(
        replica,
        [{ type: 'rename', from: 'old.txt', to: 'new.txt', expected: before }],
        source,
      );
      assertAllOk(results);
      const after = await scan(replica);
      assert.deepEqual([...after.snapshot.keys()], ['new.txt']);
      assert.equal(fileAt(after, 'new.txt').hash, before.hash);
      assert.deepEqual(results[0]!.ok ? results[0]!.stored : undefined, after.snapshot.get('new.txt'));
    });

    test('refuses to rename onto an existing path', async ({ replica }, source) => {
      assertAllOk(await apply(replica, [source.write('a.txt', 'a'), source.write('b.txt', 'b')], source));
      const a = fileAt(await scan(replica), 'a.txt');
      const results = await apply(
        replica,
        [{ type: 'rename', from: 'a.txt', to: 'b.txt', expected: a }],
        source,
      );
      assert.equal(problemOf(results[0]), 'changed-during-sync');
      const after = await scan(replica);
      assert.equal(fileAt(after, 'b.txt').hash, sha256('b'));
      assert.equal(fileAt(after, 'a.txt').hash, sha256('a'));
    });

    test('renames a folder with its children', async ({ replica }, source) => {
      const setup: Operation[] = [
        { type: 'mkdir', path: 'd', expected: undefined },
        { type: 'mkdir', path: 'd/sub', expected: undefined },
        source.write('d/sub/f.txt', 'f'),
        source.write('d/g.txt', 'g'),
      ];
      assertAllOk(await apply(replica, setup, source));
      const ops: Operation[] = [{ type: 'rename', from: 'd', to: 'moved', expected: { kind: 'directory' } }];
      assertAllOk(await apply(replica, ops, source));
      const after = await scan(replica);
      assert.deepEqual([...after.snapshot.keys()], ['moved', 'moved/g.txt', 'moved/sub', 'moved/sub/f.txt']);
      assert.equal(fileAt(after, 'moved/sub/f.txt').hash, sha256('f'));
    });

    test('symbolic links', async ({ replica }, source) => {
      const results = await apply(
        replica,
        [{ type: 'symlink', path: 'l', target: '../x', expected: undefined }],
        source,
      );
      if (!replica.capabilities.symlinks) {
        assert.equal(problemOf(results[0]), 'symlink-unsupported');
        return;
      }
      assertAllOk(results);
      const link = (await scan(replica)).snapshot.get('l');
      assert.deepEqual(link, { kind: 'symlink', target: '../x' });
      const replace: Operation[] = [{ type: 'symlink', path: 'l', target: 'y', expected: link }];
      assertAllOk(await apply(replica, replace, source));
      assert.deepEqual((await scan(replica)).snapshot.get('l'), { kind: 'symlink', target: 'y' });
    });

    test('executable bit', async ({ replica }, source) => {
      assertAllOk(
        await apply(replica, [source.write('run.sh', '#!/bin/sh\n', { executable: true })], source),
      );
      const stored = fileAt(await scan(replica), 'run.sh');
      const supported = replica.capabilities.executableBit;
      assert.equal(stored.executable, supported);
      const results = await apply(
        replica,
        [{ type: 'chmod', path: 'run.sh', executable: false, expected: stored }],
        source,
      );
      assertAllOk(results);
      assert.equal(fileAt(await scan(replica), 'run.sh').executable, false);
      if (supported) {
        const off = fileAt(await scan(replica), 'run.sh');
        assertAllOk(
          await apply(replica, [{ type: 'chmod', path: 'run.sh', executable: true, expected: off }], source),
        );
        assert.equal(fileAt(await scan(replica), 'run.sh').executable, true);
      }
    });

    test('keeps modification times to the storage granularity', async ({ replica }, source) => {
      const g = replica.capabilities.mtimeGranularityMs;
      const wanted = CONTRACT_BASE_MTIME_MS + 3123;
      assertAllOk(await apply(replica, [source.write('t.txt', 't', { mtimeMs: wanted })], source));
      const stored = fileAt(await scan(replica), 't.txt').mtimeMs;
      assert.ok(Math.abs(stored - wanted) < g, `stored mtime ${stored} is more than ${g} ms off ${wanted}`);
    });

    test('names with spaces, unicode and forbidden characters round-trip', async ({
      replica,
      poke,
    }, source) => {
      const names = [
        'with space.txt',
        'ünïcödé 名前.txt',
        'a:b?c*d<e>f|g"h\\i.txt',
        'trailing dot.',
        'trailing space ',
        'fullwidth：colon.txt',
      ];
      assertAllOk(
        await apply(
          replica,
          names.map((n) => source.write(n, n)),
          source,
        ),
      );
      const after = await scan(replica);
      assert.deepEqual([...after.snapshot.keys()].sort(), [...names].sort());
      for (const n of names) assert.equal(await readAll(replica, n, fileAt(after, n)), n);
      const raw = await need(poke, 'rawNames', 'names…').rawNames();
      const caps = replica.capabilities;
      for (const r of raw) {
        for (const c of caps.forbiddenChars) assert.ok(!r.includes(c), `stored name ${r} holds ${c}`);
        if (caps.forbidsTrailingDotOrSpace)
          assert.ok(!/[. ]$/.test(r), `stored name ${r} ends in dot or space`);
      }
    });

    test('leaves no temporary files after commit or abort', async ({ replica, poke }, source) => {
      const ops: Operation[] = [
        { type: 'mkdir', path: 'new', expected: undefined },
        source.write('new/f.txt', 'f'),
        source.write('g.txt', 'g'),
      ];
      const prepared = await replica.prepare(ops, source.content);
      await prepared.abort();
      await noTemps(poke, 'leaves no temporary files…');
      assert.equal((await scan(replica)).snapshot.size, 0, 'abort must change nothing');
      assertAllOk(await apply(replica, ops, source));
      await noTemps(poke, 'leaves no temporary files…');
      // A write that fails its expected check must not leave its staged content behind either.
      const stale = source.write('g.txt', 'h', { expected: undefined });
      assert.equal(problemOf((await apply(replica, [stale], source))[0]), 'changed-during-sync');
      await noTemps(poke, 'leaves no temporary files…');
    });

    test('a source that moves while it is copied fails with changed-during-sync', async ({
      replica,
      poke,
    }, source) => {
      const op = source.write('f.txt', 'f');
      source.moving = true;
      const results = await apply(replica, [op], source);
      assert.equal(problemOf(results[0]), 'changed-during-sync');
      assert.equal((await scan(replica)).snapshot.size, 0);
      await noTemps(poke, 'a source that moves…');
    });

    test('never scans internal files and deletes leftover temporary files', async ({ replica, poke }) => {
      const p = need(poke, 'write', 'never scans internal files…');
      await p.write(MARKER_NAME, '{}');
      await p.write(`${STATE_DIR_NAME}/state.db`, 'state');
      await p.write(`${TEMP_PREFIX}${tempSuffix(0xc4a5)}`, 'debris');
      await p.write(`d/${TEMP_PREFIX}${tempSuffix(0xc4a6)}`, 'debris');
      await p.write('d/real.txt', 'real');
      // A user's file that only starts like a temporary name is ordinary (and kept).
      await p.write(`d/${TEMP_PREFIX}notes.txt`, 'mine');
      // Another case's state and another mirror's marker kept inside: never replicated.
      await p.write(`d/inner/${STATE_DIR_NAME}/state.db`, 'nested state');
      await p.write(`d/inner/${MARKER_NAME}`, '{}');
      const result = await scan(replica);
      assert.deepEqual(
        [...result.snapshot.keys()],
        ['d', `d/${TEMP_PREFIX}notes.txt`, 'd/inner', 'd/real.txt'],
      );
      await noTemps(poke, 'never scans internal files…');
    });

    test('a second scan with the hash cache does not re-hash', async ({ replica }, source) => {
      assertAllOk(await apply(replica, [source.write('a.txt', 'a'), source.write('b.txt', 'b')], source));
      const first = await scan(replica);
      const fake = 'f'.repeat(64);
      const asked: string[] = [];
      const cache = new Map([...first.hashes].map(([p, h]) => [p, { ...h, hash: fake }]));
      const second = await replica.scan({
        cache: { get: (p) => (asked.push(p), cache.get(p)) },
        ignore: NO_IGNORE,
      });
      assert.deepEqual(asked.sort(), ['a.txt', 'b.txt']);
      // The fake hash can only come from the cache: the content was not read again.
      assert.equal(fileAt(second, 'a.txt').hash, fake);
      assert.equal(fileAt(second, 'b.txt').hash, fake);
      const recent = await replica.scan({
        cache: { get: (p) => cache.get(p) },
        ignore: NO_IGNORE,
        recentAfterMs: 0,
      });
      assert.equal(fileAt(recent, 'a.txt').hash, sha256('a'), 'recent mtimes must not trust the cache');
    });

    test('ignored folders are not descended into', async ({ replica, poke }) => {
      const p = need(poke, 'write', 'ignored folders…');
      await p.write('keep/a.txt', 'a');
      await p.write('skip/b.txt', 'b');
      const seen: string[] = [];
      const result = await replica.scan({
        cache: NO_CACHE,
        ignore: (path) => (seen.push(path), path === 'skip'),
      });
      assert.deepEqual([...result.snapshot.keys()], ['keep', 'keep/a.txt']);
      assert.ok(!seen.includes('skip/b.txt'), 'the ignored folder was descended into');
    });

    test('an unreadable file is a problem and the rest is scanned', async ({ replica, poke }) => {
      const p = need(poke, 'write', 'an unreadable file…');
      await p.write('a.txt', 'a');
      await p.write('secret.txt', 'secret');
      await p.write('d/b.txt', 'b');
      await need(p.makeUnreadable, 'makeUnreadable', 'an unreadable file…').call(p, 'secret.txt');
      const run = p.restricted?.bind(p) ?? (<T>(fn: () => Promise<T>) => fn());
      const result = await run(() => scan(replica));
      assert.deepEqual([...result.snapshot.keys()], ['a.txt', 'd', 'd/b.txt']);
      assert.deepEqual(
        result.problems.map((q) => [q.path, q.code]),
        [['secret.txt', 'unreadable']],
      );
    });

    test('a full disk is a no-space problem naming the file', async ({ replica, poke }, source) => {
      await need(poke?.fill, 'fill', 'a full disk…').call(poke);
      const results = await apply(replica, [source.write('big.bin', 'x'.repeat(1024 * 1024))], source);
      assert.equal(problemOf(results[0]), 'no-space');
      assert.match((results[0] as { problem: { message: string } }).problem.message, /big\.bin/);
      assert.equal((await scan(replica)).snapshot.has('big.bin'), false);
      await noTemps(poke, 'a full disk…');
    });
  });
}
