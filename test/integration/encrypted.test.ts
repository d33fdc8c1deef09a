/**
 * @module test/integration/encrypted
 * Encrypted mirrors end to end, through the real `satchel` binary and the real `rclone` (env-only
 * config, TESTBED.md §7): a tree Satchel syncs to an encrypted mirror is decrypted byte for byte
 * by `rclone copy`/`rclone cat`; a tree `rclone copy` wrote into a crypt remote is synced into a
 * case byte for byte; a wrong or missing passphrase refuses before anything is written; the
 * passphrase never appears in the config or in the output.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { runSatchel, SATCHEL_BIN, satchelJson, satchelOk, type SyncReport } from '../helpers/cli.js';
import { cryptRemote, rclone } from '../helpers/rclone.js';
import { withTempDir } from '../helpers/temp.js';
import { assertTreesEqual, writeTree, type TreeSpec } from '../helpers/tree.js';
import { daemonEnv, readEvents, startWatch, stopWatch, waitUntil } from '../helpers/watch.js';

const PASSPHRASE = 'stick passphrase: 7 words, not a secret in tests';

const TREE: TreeSpec = {
  'hello.txt': 'hello, world\n',
  empty: '',
  'src/main.ts': 'export const x = 1;\n',
  'src/deep/er/data.bin': randomBytes(200_000),
  'ünïcödé 名前/notes with spaces.md': '# notes\n',
};

const env = { SATCHEL_PASSPHRASE: PASSPHRASE };

describe('encrypted mirrors and rclone crypt', () => {
  test('a tree synced by Satchel is decrypted byte for byte by rclone', () =>
    withTempDir('enc-to-rclone', async (dir) => {
      const work = join(dir, 'case');
      const store = join(dir, 'stick');
      mkdirSync(store);
      await satchelOk(['init', work]);
      writeTree(work, TREE);
      const added = await satchelOk(['-C', work, 'mirror', 'add', 'stick', store, '--encrypt'], { env });
      await satchelOk(['-C', work, 'sync', '--json'], { env });
      const config = readFileSync(join(work, '.satchel', 'config.toml'), 'utf8');
      assert.match(config, /encrypt = true/);
      assert.match(config, /passphrase_check = "[0-9a-f]{32}"/);
      assert.ok(!config.includes(PASSPHRASE) && !added.stdout.includes(PASSPHRASE));
      // Nothing readable on the stick but Satchel's marker.
      const raw = readdirSync(store, { recursive: true }) as string[];
      assert.ok(
        raw.every((n) => !/hello|src|main|notes|empty/.test(n)),
        raw.join(', '),
      );

      const remote = cryptRemote(dir, store, PASSPHRASE);
      const out = join(dir, 'out');
      // rclone skips the marker (its name does not decrypt) with a notice, and succeeds.
      rclone(['copy', remote.remote, out], remote.env);
      assertTreesEqual(work, out);
      assert.deepEqual(
        rclone(['cat', `${remote.remote}src/deep/er/data.bin`], remote.env),
        TREE['src/deep/er/data.bin'],
      );
      rclone(['cryptcheck', work, remote.remote, '--exclude', '.satchel/**'], remote.env);

      // A second sync does nothing; an edit goes out re-encrypted, a rename re-encrypts the name.
      writeFileSync(join(work, 'hello.txt'), 'hello again\n');
      await satchelOk(['-C', work, 'sync'], { env });
      assert.equal(rclone(['cat', `${remote.remote}hello.txt`], remote.env).toString(), 'hello again\n');

      // A wrong passphrase: refused at once, nothing written.
      writeFileSync(join(work, 'new.txt'), 'new');
      const wrong = await runSatchel(['-C', work, 'sync'], { env: { SATCHEL_PASSPHRASE: 'wrong' } });
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stdout + wrong.stderr, /wrong passphrase for the encrypted mirror "stick"/);
      assert.ok(!(wrong.stdout + wrong.stderr).includes('wrong"'), 'the passphrase must not be echoed');
      assert.throws(() => rclone(['cat', `${remote.remote}new.txt`], remote.env));
      // No passphrase and no terminal: a clear error.
      const none = await runSatchel(['-C', work, 'sync'], { env: { SATCHEL_PASSPHRASE: '' } });
      assert.notEqual(none.code, 0);
      assert.match(none.stdout + none.stderr, /needs its passphrase/);
      // status says so too, with what to do about it.
      const st = await satchelOk(['-C', work, 'status'], { env: { SATCHEL_PASSPHRASE: '' } });
      assert.match(
        st.stdout,
        /stick: FAILED — the encrypted mirror "stick" needs its passphrase\n {4}hint: set SATCHEL_PASSPHRASE/,
      );
    }));

  test('a tree written by rclone copy is synced into a case byte for byte', () =>
    withTempDir('rclone-to-enc', async (dir) => {
      const src = join(dir, 'src');
      const store = join(dir, 'stick');
      writeTree(src, TREE);
      const remote = cryptRemote(dir, store, PASSPHRASE);
      rclone(['copy', src, remote.remote], remote.env);
      const work = join(dir, 'case');
      await satchelOk(['init', work]);
      const file = join(dir, 'passphrase');
      // A mistyped passphrase: none of rclone's names decrypt with it, so it is refused at once.
      const typo = join(dir, 'typo');
      writeFileSync(typo, `${PASSPHRASE}x\n`, { mode: 0o600 });
      const refused = await runSatchel([
        '-C',
        work,
        'mirror',
        'add',
        'stick',
        store,
        '--encrypt',
        '--passphrase-file',
        typo,
      ]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(
        refused.stderr,
        /wrong passphrase for the encrypted mirror "stick": none of the \d+ names already in .* decrypt with it/,
      );
      assert.equal(existsSync(join(store, '.satchel-mirror')), false, 'a marker was written');
      writeFileSync(file, `${PASSPHRASE}\n`, { mode: 0o600 });
      await satchelOk(['-C', work, 'mirror', 'add', 'stick', store, '--encrypt', '--passphrase-file', file]);
      // mirror list says what the encrypted mirror can store: no links, whatever the folder could.
      const listed = await satchelOk(['-C', work, 'mirror', 'list', '--json']);
      const { mirrors } = JSON.parse(listed.stdout) as { mirrors: { capabilities: { symlinks: boolean } }[] };
      assert.equal(mirrors[0]?.capabilities.symlinks, false, listed.stdout);
      // The passphrase file is remembered (as a path): no environment needed.
      await satchelOk(['-C', work, 'sync', '--json']);
      assertTreesEqual(src, work);
      // rclone still reads the stick with Satchel's marker on it.
      const out = join(dir, 'out');
      rclone(['copy', remote.remote, out], remote.env);
      assertTreesEqual(src, out);
    }));

  test('Ctrl-C at the passphrase prompt (a real terminal, through script) stops at once: exit 130, nothing written', () =>
    withTempDir('enc-prompt', async (dir) => {
      const work = join(dir, 'case');
      const store = join(dir, 'stick');
      mkdirSync(store);
      await satchelOk(['init', work]);
      const command = [
        process.execPath,
        SATCHEL_BIN,
        '-C',
        work,
        'mirror',
        'add',
        'stick',
        store,
        '--encrypt',
      ];
      // `script` gives the command a terminal (its session also goes to the file `typed`); the
      // keys go in through a pipe once the prompt shows there (raw mode, no echo, by then).
      const shell = [
        'mkfifo "$1/keys"',
        '(until grep -q "Passphrase for" "$1/typed" 2>/dev/null; do sleep 0.1; done; printf "half a passphrase\\003") > "$1/keys" &',
        'script -qefc "$0" "$1/typed" < "$1/keys"',
      ].join('\n');
      const r = spawnSync('bash', ['-c', shell, command.join(' '), dir], {
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, SATCHEL_PASSPHRASE: '' },
      });
      assert.equal(r.status, 130, r.stdout + r.stderr);
      assert.match(r.stdout, /Passphrase for the encrypted mirror "stick": /);
      assert.match(r.stdout, /satchel: interrupted; nothing is left half-written/);
      assert.doesNotMatch(r.stdout, /half a passphrase/, 'the passphrase was echoed');
      assert.deepEqual(readdirSync(store), [], 'something was written to the mirror');
      assert.doesNotMatch(readFileSync(join(work, '.satchel', 'config.toml'), 'utf8'), /stick/);
    }));

  test("rclone's second password (password2, its salt): read both ways, refused when missing or wrong", () =>
    withTempDir('rclone-salt', async (dir) => {
      const src = join(dir, 'src');
      const store = join(dir, 'stick');
      writeTree(src, TREE);
      const remote = cryptRemote(dir, store, PASSPHRASE, 'the salt, a second passphrase');
      rclone(['copy', src, remote.remote], remote.env);
      const work = join(dir, 'case');
      await satchelOk(['init', work]);
      // Without the second passphrase the names do not decrypt: refused, nothing written.
      const without = await runSatchel(['-C', work, 'mirror', 'add', 'stick', store, '--encrypt'], { env });
      assert.equal(without.code, 1, without.stderr);
      assert.match(without.stderr, /wrong passphrase/);
      // Both passphrases on the file's two lines: taken, and remembered for every later sync.
      const file = join(dir, 'passphrases');
      writeFileSync(file, `${PASSPHRASE}\nthe salt, a second passphrase\n`, { mode: 0o600 });
      await satchelOk(['-C', work, 'mirror', 'add', 'stick', store, '--encrypt', '--passphrase-file', file]);
      assert.match(readFileSync(join(work, '.satchel', 'config.toml'), 'utf8'), /second_passphrase = true/);
      await satchelOk(['-C', work, 'sync']);
      assertTreesEqual(src, work);
      // What Satchel writes, rclone reads with the same two passwords.
      writeFileSync(join(work, 'from-satchel.txt'), 'written by satchel\n');
      await satchelOk(['-C', work, 'sync']);
      assert.equal(
        rclone(['cat', `${remote.remote}from-satchel.txt`], remote.env).toString(),
        'written by satchel\n',
      );
      // A second computer: the environment gives the second passphrase; a wrong one is refused.
      const home = join(dir, 'home', 'case');
      await satchelOk(['init', home]);
      const wrong = await runSatchel(['-C', home, 'mirror', 'add', 'stick', store, '--encrypt'], {
        env: { ...env, SATCHEL_PASSPHRASE2: 'not the salt' },
      });
      assert.equal(wrong.code, 1, wrong.stderr);
      assert.match(wrong.stderr, /wrong passphrase for the encrypted mirror "stick"/);
      const env2 = { ...env, SATCHEL_PASSPHRASE2: 'the salt, a second passphrase' };
      await satchelOk(['-C', home, 'mirror', 'add', 'stick', store, '--encrypt'], { env: env2 });
      await satchelOk(['-C', home, 'sync'], { env: env2 });
      assert.equal(readFileSync(join(home, 'from-satchel.txt'), 'utf8'), 'written by satchel\n');
      // Later syncs without it say what is missing.
      const missing = await runSatchel(['-C', home, 'sync'], { env });
      assert.equal(missing.code, 1, missing.stdout + missing.stderr);
      assert.match(missing.stdout + missing.stderr, /needs its second passphrase/);
    }));

  test("a mirror's passphrase file wins over SATCHEL_PASSPHRASE: two passphrases sync in one run", () =>
    withTempDir('enc-two', async (dir) => {
      const work = join(dir, 'case');
      writeTree(work, { 'a.txt': 'a\n' });
      await satchelOk(['init', work]);
      const file = join(dir, 'second-passphrase');
      writeFileSync(file, 'another passphrase, from a file\n', { mode: 0o600 });
      for (const m of ['one', 'two']) mkdirSync(join(dir, m));
      // A passphrase file inside the case would be replicated in plain text: refused.
      const inside = join(work, 'passphrase.txt');
      writeFileSync(inside, 'secret\n', { mode: 0o600 });
      const refused = await runSatchel(
        ['-C', work, 'mirror', 'add', 'two', join(dir, 'two'), '--encrypt', '--passphrase-file', inside],
        { env },
      );
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(
        refused.stderr,
        /is inside the case: it would be replicated, in plain text, to every mirror/,
      );
      rmSync(inside);
      await satchelOk(['-C', work, 'mirror', 'add', 'one', join(dir, 'one'), '--encrypt'], { env });
      // The variable is set as well: the file given for this mirror is the one that counts.
      await satchelOk(
        ['-C', work, 'mirror', 'add', 'two', join(dir, 'two'), '--encrypt', '--passphrase-file', file],
        { env },
      );
      const r = await runSatchel(['-C', work, 'sync', '--json'], { env });
      assert.deepEqual(
        r.json<SyncReport>().mirrors.map((m) => [m.mirror, m.state]),
        [
          ['one', 'synced'],
          ['two', 'synced'],
        ],
        r.stdout,
      );
      // Mirror two needs nothing but its file.
      await satchelOk(['-C', work, 'sync', 'two'], { env: { SATCHEL_PASSPHRASE: '' } });
      const two = cryptRemote(dir, join(dir, 'two'), 'another passphrase, from a file');
      assert.equal(rclone(['cat', `${two.remote}a.txt`], two.env).toString(), 'a\n');
    }));

  test('watch: a file rclone writes into the encrypted mirror reaches the case at once', () =>
    withTempDir('enc-watch', async (dir) => {
      const work = join(dir, 'case');
      const store = join(dir, 'stick');
      mkdirSync(store);
      writeTree(work, { 'hello.txt': 'hello\n' });
      await satchelOk(['init', work]);
      await satchelOk(['-C', work, 'mirror', 'add', 'stick', store, '--encrypt'], { env });
      const c = { path: work, mirrors: { stick: store }, runOptions: { env } };
      const w = await startWatch(c, { env: daemonEnv(env) });
      try {
        const remote = cryptRemote(dir, store, PASSPHRASE);
        const src = join(dir, 'from-rclone.txt');
        writeFileSync(src, 'written by rclone\n');
        rclone(['copyto', src, `${remote.remote}docs/from-rclone.txt`], remote.env);
        // Well before the daemon's periodic full reconciliation: the watcher's report, decrypted.
        await waitUntil(
          'docs/from-rclone.txt in the case',
          () => existsSync(join(work, 'docs/from-rclone.txt')),
          {
            timeoutMs: 10_000,
          },
        );
        assert.equal(readFileSync(join(work, 'docs/from-rclone.txt'), 'utf8'), 'written by rclone\n');
        assert.ok(
          readEvents(work).some((e) => e.event === 'incoming' && e.paths?.includes('docs/from-rclone.txt')),
          JSON.stringify(readEvents(work)),
        );
      } finally {
        await stopWatch(w);
      }
    }));

  test('a plain mirror of the case is not taken with --encrypt; an empty one gets the passphrase check', () =>
    withTempDir('enc-plain', async (dir) => {
      const work = join(dir, 'case');
      const plain = join(dir, 'plain');
      const empty = join(dir, 'empty');
      mkdirSync(plain);
      mkdirSync(empty);
      writeTree(work, { 'index.html': '<h1>hi</h1>\n' });
      await satchelOk(['init', work]);
      await satchelOk(['-C', work, 'mirror', 'add', 'pm', plain]);
      await satchelOk(['-C', work, 'mirror', 'add', 'em', empty]);
      await satchelOk(['-C', work, 'sync', 'pm']);
      for (const m of ['pm', 'em']) await satchelOk(['-C', work, 'mirror', 'remove', m]);
      const markerBefore = readFileSync(join(plain, '.satchel-mirror'), 'utf8');
      const refused = await runSatchel(['-C', work, 'mirror', 'add', 'pm', plain, '--encrypt'], { env });
      assert.equal(refused.code, 2, refused.stdout + refused.stderr);
      assert.match(
        refused.stderr,
        /holds a plain \(unencrypted\) mirror of this case \(none of its names decrypt with this passphrase\): --encrypt needs an empty folder/,
      );
      assert.equal(readFileSync(join(plain, '.satchel-mirror'), 'utf8'), markerBefore, 'nothing was written');
      // An empty one (only its marker) is taken, and its marker now checks the passphrase.
      await satchelOk(['-C', work, 'mirror', 'add', 'em', empty, '--encrypt'], { env });
      assert.match(readFileSync(join(empty, '.satchel-mirror'), 'utf8'), /passphraseCheck/);
      const home = join(dir, 'home', 'case');
      await satchelOk(['init', home]);
      const wrong = await runSatchel(['-C', home, 'mirror', 'add', 'em', empty, '--encrypt'], {
        env: { SATCHEL_PASSPHRASE: 'another passphrase' },
      });
      assert.equal(wrong.code, 1, wrong.stdout + wrong.stderr);
      assert.match(wrong.stderr, /wrong passphrase for the encrypted mirror "em"/);
    }));

  test("a damaged file on the stick is replaced with the case's version, never brought into the case", () =>
    withTempDir('enc-cut', async (dir) => {
      const work = join(dir, 'case');
      const store = join(dir, 'stick');
      mkdirSync(store);
      const content = randomBytes(200_000);
      writeTree(work, {
        'cut.bin': content,
        'flipped.bin': 'flipped\n',
        'gone.bin': 'gone\n',
        'edited.bin': 'v1\n',
      });
      await satchelOk(['init', work]);
      await satchelOk(['-C', work, 'mirror', 'add', 'stick', store, '--encrypt'], { env });
      await satchelOk(['-C', work, 'sync'], { env });
      // The stored (encrypted) name of each file, as rclone's crypt remote gives it.
      const remote = cryptRemote(dir, store, PASSPHRASE);
      const storedOf = (name: string): string =>
        join(
          store,
          rclone(['cryptdecode', '--reverse', remote.remote, name], remote.env)
            .toString()
            .split('\t')[1]!
            .trim(),
        );
      const cutFile = storedOf('cut.bin');
      const fullSize = statSync(cutFile).size;
      // Cut after two whole chunks (header 32 + 2 × (64 KiB + 16)), the mtime kept: it still decrypts.
      const ref = join(dir, 'mtime-ref');
      writeFileSync(ref, '');
      execFileSync('touch', ['-r', cutFile, ref]); // nanoseconds, as `touch -r` keeps them
      truncateSync(cutFile, 32 + 2 * (65_536 + 16));
      execFileSync('touch', ['-r', ref, cutFile]);
      // A flipped byte in three more; then the case deletes one and edits another.
      for (const name of ['flipped.bin', 'gone.bin', 'edited.bin']) {
        const f = storedOf(name);
        const b = readFileSync(f);
        b[b.length - 3]! ^= 1;
        writeFileSync(f, b);
      }
      rmSync(join(work, 'gone.bin'));
      writeFileSync(join(work, 'edited.bin'), 'v2, edited in the case\n');

      const r = await runSatchel(['-C', work, 'sync'], { env });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(
        r.stdout,
        /~ cut\.bin: damaged on the mirror \(it cannot be read\); replaced with the case's version/,
      );
      assert.match(r.stdout, /~ flipped\.bin: damaged on the mirror/);
      assert.doesNotMatch(r.stdout, /! /, 'no path left alone');
      // The case is as it was (the deletion and the edit stand), and the stick holds the case's versions.
      assert.deepEqual(readFileSync(join(work, 'cut.bin')), content);
      assert.equal(readFileSync(join(work, 'flipped.bin'), 'utf8'), 'flipped\n');
      assert.equal(existsSync(join(work, 'gone.bin')), false);
      assert.equal(readFileSync(join(work, 'edited.bin'), 'utf8'), 'v2, edited in the case\n');
      assert.equal(statSync(storedOf('cut.bin')).size, fullSize);
      assert.equal(
        readdirSync(store).filter((n) => n !== '.satchel-mirror').length,
        3,
        'the deleted file is gone from the stick',
      );
      // The same case on another computer reads the stick whole: every file decrypts.
      const other = join(dir, 'home', 'case');
      await satchelOk(['init', other]);
      await satchelOk(['-C', other, 'mirror', 'add', 'stick', store, '--encrypt'], { env });
      const again = await satchelJson<SyncReport>(['-C', other, 'sync'], { env });
      assert.deepEqual(again.mirrors[0]!.problems, []);
      assert.deepEqual(readFileSync(join(other, 'cut.bin')), content);
      assert.equal(readFileSync(join(other, 'edited.bin'), 'utf8'), 'v2, edited in the case\n');
      const quiet = await satchelJson<SyncReport>(['-C', work, 'sync'], { env });
      assert.deepEqual([quiet.mirrors[0]!.in, quiet.mirrors[0]!.out, quiet.mirrors[0]!.problems], [0, 0, []]);
    }));
});
