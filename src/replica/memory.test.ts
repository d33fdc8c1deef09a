import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { runReplicaContract, type ContractPoke } from './contract.js';
import { MemoryReplica, type MemoryReplicaOptions } from './memory.js';
import type { FileEntry } from '../core/entry.js';
import type { WriteOperation } from '../core/plan.js';

function pokeFor(replica: MemoryReplica): ContractPoke {
  return {
    write: async (path, content, mtimeMs) => replica.put(path, content, { mtimeMs }),
    rawNames: async () => replica.rawNames(),
    makeUnreadable: async (path) => replica.failOn(path, 'unreadable'),
  };
}

function contract(name: string, options: MemoryReplicaOptions & { fillable?: boolean }): void {
  runReplicaContract({
    name,
    create: async () => {
      const replica = new MemoryReplica({
        ...options,
        capacityBytes: options.fillable === true ? 512 * 1024 : undefined,
      });
      const poke = pokeFor(replica);
      return {
        replica,
        cleanup: async () => {},
        poke:
          options.fillable === true
            ? { ...poke, fill: async () => replica.put('filler', 'x'.repeat(256 * 1024)) }
            : poke,
      };
    },
  });
}

contract('memory', { fillable: true });
contract('memory (FAT-like knobs)', {
  fillable: true,
  capabilities: {
    caseSensitive: false,
    mtimeGranularityMs: 2000,
    executableBit: false,
    symlinks: false,
    forbiddenChars: ':?*<>|"\\',
    forbidsTrailingDotOrSpace: true,
  },
});

function writeOf(source: MemoryReplica, path: string, content: string): WriteOperation {
  source.put(path, content, { mtimeMs: 1_000_000 });
  const entry: FileEntry = {
    kind: 'file',
    size: content.length,
    mtimeMs: 1_000_000,
    executable: false,
    hash: createHash('sha256').update(content).digest('hex'),
  };
  return { type: 'write', path, entry, from: { side: 'case', path, entry }, expected: undefined };
}

const scanOptions = { cache: { get: () => undefined }, ignore: () => false };

describe('MemoryReplica knobs', () => {
  it('case-insensitive storage keeps the first spelling', async () => {
    const r = new MemoryReplica({ capabilities: { caseSensitive: false } });
    r.put('Dir/A.txt', 'one');
    r.put('dir/a.txt', 'two');
    assert.deepEqual([...r.tree().keys()], ['Dir', 'Dir/A.txt']);
    assert.equal(r.read('DIR/a.TXT'), 'two');
  });

  it('rounds modification times down to the granularity', () => {
    const r = new MemoryReplica({ capabilities: { mtimeGranularityMs: 2000 } });
    r.put('f', 'x', { mtimeMs: 5123 });
    const node = r.tree().get('f');
    assert.equal(node?.kind === 'file' ? node.mtimeMs : -1, 4000);
  });

  it('failOn makes a path unreadable and its operations fail with the code', async () => {
    const source = new MemoryReplica();
    const r = new MemoryReplica();
    r.put('bad.txt', 'x');
    r.failOn('bad.txt', 'permission-denied');
    const scan = await r.scan(scanOptions);
    assert.deepEqual(
      scan.problems.map((p) => p.code),
      ['unreadable'],
    );
    await assert.rejects(
      r.content.open('bad.txt', { kind: 'file', size: 1, mtimeMs: 0, executable: false, hash: '' }),
    );
    r.remove('bad.txt');
    const results = await (await r.prepare([writeOf(source, 'bad.txt', 'y')], source.content)).commit();
    assert.equal(results[0]?.ok === false ? results[0].problem.code : 'ok', 'permission-denied');
    r.clearFailures();
    assert.equal(
      (await (await r.prepare([writeOf(source, 'bad.txt', 'y')], source.content)).commit())[0]?.ok,
      true,
    );
  });

  it('counts calls and waits latencyMs', async () => {
    const r = new MemoryReplica({ latencyMs: 20 });
    r.put('a', 'a');
    const started = Date.now();
    const first = await r.scan(scanOptions);
    assert.ok(Date.now() - started >= 15);
    await r.scan({ ...scanOptions, cache: { get: (p) => first.hashes.get(p) } });
    assert.deepEqual(r.calls, { scan: 2, hash: 1, open: 0, prepare: 0, commit: 0 });
  });

  it('prepare stages visible temporary files that commit renames over', async () => {
    const source = new MemoryReplica();
    const r = new MemoryReplica();
    const prepared = await r.prepare([writeOf(source, 'f.txt', 'content')], source.content);
    assert.match(r.rawNames().join(), /\.satchel-tmp-/);
    // A scan meanwhile neither reports nor deletes the staged file.
    assert.equal((await r.scan(scanOptions)).snapshot.size, 0);
    await prepared.commit();
    assert.deepEqual(r.rawNames(), ['f.txt']);
    assert.equal(r.read('f.txt'), 'content');
  });
});
