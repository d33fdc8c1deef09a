import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from '../../../test/helpers/temp.js';
import { fastFs, LISTING_FIELDS, ListedKind, POOL_COPY_FROM_BYTES } from './fastfs-binding.js';

// The addon is built by `npm run build`; the suite fails loudly when it is missing.
describe('fastfs addon', () => {
  let dir = '';
  before(() => {
    dir = makeTempDir('fastfs');
    mkdirSync(join(dir, 'tree/sub'), { recursive: true });
    writeFileSync(join(dir, 'tree/a.txt'), 'alpha');
    writeFileSync(join(dir, 'tree/é ü.bin'), Buffer.alloc(70_000, 7));
    writeFileSync(join(dir, 'tree/empty'), '');
    symlinkSync('../elsewhere', join(dir, 'tree/link'));
    utimesSync(join(dir, 'tree/a.txt'), 1_700_000_000.123456, 1_700_000_000.123456);
  });
  after(() => removeTempDir(dir));

  for (const blocking of [true, false]) {
    const flavour = blocking ? 'blocking' : 'thread pool';
    const fs = (): NonNullable<ReturnType<typeof fastFs>> => {
      const f = fastFs(blocking);
      assert.ok(f, 'the fastfs addon is built (npm run build)');
      return f;
    };

    it(`${flavour}: a listing matches readdir and lstat exactly`, async () => {
      const listing = await fs().list(join(dir, 'tree'));
      assert.deepEqual([...listing.names].sort(), readdirSync(join(dir, 'tree')).sort());
      let link = 0;
      listing.names.forEach((name, i) => {
        const at = i * LISTING_FIELDS;
        const st = lstatSync(join(dir, 'tree', name));
        const kind = listing.info[at];
        if (st.isDirectory()) assert.equal(kind, ListedKind.Directory, name);
        else if (st.isSymbolicLink()) {
          assert.equal(kind, ListedKind.Symlink, name);
          assert.equal(listing.targets[link++], '../elsewhere');
        } else {
          assert.equal(kind, ListedKind.File, name);
          assert.equal(listing.info[at + 1], st.mode, `${name} mode`);
          assert.equal(listing.info[at + 2], st.size, `${name} size`);
          assert.equal(listing.info[at + 3], st.mtimeMs, `${name} mtimeMs, to the last bit`);
          assert.equal(listing.info[at + 4], st.ino, `${name} ino`);
        }
      });
    });

    it(`${flavour}: a missing folder is a Node-style ENOENT naming it`, async () => {
      await assert.rejects(fs().list(join(dir, 'nope')), (e: NodeJS.ErrnoException) => {
        assert.equal(e.code, 'ENOENT');
        assert.equal(e.path, join(dir, 'nope'));
        return true;
      });
      // A NUL inside a path would make C read a shorter path: refused, as Node's fs refuses it.
      await assert.rejects(async () => fs().list(`${dir}\0/nope`), /must not contain a NUL byte/);
    });

    it(`${flavour}: a staged copy has the content, mode and mtime asked for`, async () => {
      // 'é ü.bin' is over POOL_COPY_FROM_BYTES: copied on the thread pool in both flavours.
      for (const name of ['a.txt', 'é ü.bin', 'empty']) {
        const temp = join(dir, `copy-${flavour}-${name}`);
        const src = join(dir, 'tree', name);
        const r = await fs().copy(src, temp, 0o751, 1_600_000_000_500.25, true, lstatSync(src).size);
        assert.deepEqual(readFileSync(temp), readFileSync(src), name);
        const st = lstatSync(temp);
        assert.equal(st.mode & 0o7777, 0o751);
        assert.equal(r.mode, st.mode);
        assert.equal(r.size, st.size);
        assert.equal(r.mtimeMs, st.mtimeMs);
        assert.ok(Math.abs(st.mtimeMs - 1_600_000_000_500.25) < 0.001, `mtime ${st.mtimeMs}`);
        assert.equal(r.ino, st.ino);
        const source = lstatSync(src);
        assert.equal(r.sourceSize, source.size);
        assert.equal(r.sourceMtimeMs, source.mtimeMs);
        assert.equal(r.sourceMoved, false);
      }
    });

    it(`${flavour}: hashes files as Node's crypto does, and names what it could not hash`, async () => {
      const files = ['a.txt', 'é ü.bin', 'empty'].map((n) => join(dir, 'tree', n));
      const big = join(dir, `big-${flavour}`);
      // Over one read of the addon's 1 MiB buffer, and not a multiple of 64 bytes.
      writeFileSync(big, Buffer.from(Array.from({ length: 3 * 1024 * 1024 + 17 }, (_, i) => (i * 31) & 255)));
      const paths = [...files, big, join(dir, 'tree/missing'), join(dir, 'tree/sub'), join(dir, 'tree/link')];
      const results = await fs().hash(paths);
      assert.equal(results.length, paths.length);
      for (const [i, file] of [...files, big].entries()) {
        const r = results[i]!;
        assert.ok(typeof r !== 'number', `${file}: errno ${String(r)}`);
        const st = lstatSync(file);
        assert.equal(r.hash, createHash('sha256').update(readFileSync(file)).digest('hex'), file);
        assert.equal(r.size, st.size);
        assert.equal(r.mtimeMs, st.mtimeMs);
        assert.equal(r.ino, st.ino);
        assert.equal(r.moved, false);
      }
      assert.deepEqual(results.slice(-3), [
        osConstants.errno.ENOENT,
        osConstants.errno.EINVAL, // a folder is not a regular file
        osConstants.errno.ELOOP, // links are never followed
      ]);
      assert.deepEqual(await fs().hash([]), []);
    });

    it(`${flavour}: writes a new file from memory with mode, mtime and hash, never replacing one`, async () => {
      for (const [name, data] of [
        ['small', Buffer.from('hello')],
        ['empty', Buffer.alloc(0)],
        ['large', Buffer.alloc(2 * 1024 * 1024 + 5, 9)],
      ] as const) {
        const temp = join(dir, `written-${flavour}-${name}`);
        const r = await fs().writeNew(temp, data, 0o640, 1_600_000_000_250.5, true, true);
        assert.deepEqual(readFileSync(temp), data, name);
        assert.equal(r.hash, createHash('sha256').update(data).digest('hex'));
        // Without the hash: the same file, no digest.
        const unhashed = await fs().writeNew(`${temp}-unhashed`, data, 0o640, 0, false, false);
        assert.equal(unhashed.hash, undefined);
        assert.deepEqual(readFileSync(`${temp}-unhashed`), data);
        const st = lstatSync(temp);
        assert.equal(st.mode & 0o7777, 0o640);
        assert.equal(r.stat.mode, st.mode);
        assert.equal(r.stat.size, data.length);
        assert.equal(r.stat.mtimeMs, st.mtimeMs);
        assert.ok(Math.abs(st.mtimeMs - 1_600_000_000_250.5) < 0.001);
        assert.equal(r.stat.ino, st.ino);
      }
      const taken = join(dir, `written-taken-${flavour}`);
      writeFileSync(taken, 'keep me');
      await assert.rejects(fs().writeNew(taken, Buffer.from('x'), 0o644, 0, false, true), {
        code: 'EEXIST',
        path: taken,
      });
      assert.equal(readFileSync(taken, 'utf8'), 'keep me');
      await assert.rejects(
        fs().writeNew(join(dir, 'no-such-folder/f'), Buffer.from('x'), 0o644, 0, false, true),
        {
          code: 'ENOENT',
        },
      );
    });

    it(`${flavour}: a rename that never replaces`, async () => {
      const from = join(dir, `from-${flavour}`);
      const taken = join(dir, `taken-rename-${flavour}`);
      writeFileSync(from, 'new');
      writeFileSync(taken, 'keep me');
      await assert.rejects(fs().renameNoReplace(from, taken), { code: 'EEXIST' });
      assert.equal(readFileSync(taken, 'utf8'), 'keep me');
      assert.equal(readFileSync(from, 'utf8'), 'new');
      const free = join(dir, `free-${flavour}`);
      await fs().renameNoReplace(from, free);
      assert.equal(readFileSync(free, 'utf8'), 'new');
      assert.throws(() => lstatSync(from), { code: 'ENOENT' });
    });

    it(`${flavour}: a copy never replaces an existing file, and a failed one leaves nothing`, async () => {
      for (const size of [1, POOL_COPY_FROM_BYTES]) {
        const temp = join(dir, `taken-${flavour}-${size}`);
        writeFileSync(temp, 'keep me');
        await assert.rejects(fs().copy(join(dir, 'tree/a.txt'), temp, 0o644, 0, false, size), {
          code: 'EEXIST',
        });
        assert.equal(readFileSync(temp, 'utf8'), 'keep me');
        const gone = join(dir, `never-${flavour}-${size}`);
        await assert.rejects(fs().copy(join(dir, 'tree/missing'), gone, 0o644, 0, false, size), {
          code: 'ENOENT',
          path: join(dir, 'tree/missing'),
        });
        assert.throws(() => lstatSync(gone), { code: 'ENOENT' });
      }
    });

    it(`${flavour}: a named pipe put where a file was listed is refused at once, never waited on`, async () => {
      // Opening a FIFO for reading waits for a writer: forever, on the main thread or a pool thread.
      const fifo = join(dir, `fifo-${flavour}`);
      execFileSync('mkfifo', [fifo]);
      for (const size of [1, POOL_COPY_FROM_BYTES]) {
        const temp = join(dir, `from-fifo-${flavour}-${size}`);
        await assert.rejects(fs().copy(fifo, temp, 0o644, 0, false, size), (e: NodeJS.ErrnoException) => {
          assert.equal(e.code, 'EINVAL');
          assert.equal(e.path, fifo);
          assert.equal((e as { source?: boolean }).source, true, 'the error is about the file read');
          return true;
        });
        assert.throws(() => lstatSync(temp), { code: 'ENOENT' });
      }
      assert.deepEqual(await fs().hash([fifo]), [osConstants.errno.EINVAL]);
    });
  }
});
