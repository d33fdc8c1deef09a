/**
 * @module cli/cli.test
 * Drives the real binary (`node bin/satchel.js`, loading the compiled CLI) as a child process on
 * temporary folders: commands, `-C`, `--json`, error lines and exit codes of the CLI contract.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StateStore } from '../state/state-store.js';

/** `bin/satchel.js`, three folders above this file's compiled copy in `dist/src/cli`. */
const BIN = fileURLToPath(new URL('../../../bin/satchel.js', import.meta.url));

/** The outcome of one run of the binary. */
interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `satchel args…` in `cwd` to completion. */
function satchel(args: readonly string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Shows a run in assertion messages. */
function show(r: Run): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** Asserts exit `code` and returns the run. */
function expectExit(r: Run, code: number): Run {
  assert.equal(r.code, code, show(r));
  return r;
}

/** Asserts a failure in the contract's form: exit 1, `satchel: <reason>` and `hint: …` on stderr. */
function expectFailure(r: Run, reason: RegExp): Run {
  expectExit(r, 1);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 2, show(r));
  assert.match(lines[0]!, /^satchel: /);
  assert.match(lines[0]!, reason);
  assert.match(lines[1]!, /^hint: ./);
  return r;
}

/** The JSON error object printed on stdout with --json. */
interface JsonError {
  readonly error: { readonly code: string; readonly message: string; readonly hint: string };
}

describe('satchel CLI', () => {
  let top = '';
  before(() => {
    top = mkdtempSync(join(tmpdir(), 'satchel-cli-'));
  });
  after(() => rmSync(top, { recursive: true, force: true }));

  /** Makes an empty folder below the temp folder. */
  function folder(name: string): string {
    const path = join(top, name);
    mkdirSync(path, { recursive: true });
    return path;
  }

  /** Makes a case at `name` (with `satchel init`) and returns its path. */
  async function newCase(name: string): Promise<string> {
    expectExit(await satchel(['init', name], top), 0);
    return join(top, name);
  }

  describe('usage', () => {
    it("help <command> shows that command's help (exit 0); help of no such command says so (exit 2)", async () => {
      const ok = expectExit(await satchel(['help', 'sync'], top), 0);
      assert.match(ok.stdout, /^Usage: satchel sync/m);
      const unknown = expectExit(await satchel(['help', 'nope'], top), 2);
      assert.match(unknown.stderr, /^error: unknown command 'nope'$/m);
    });
    it('lists every command of the contract in --help', async () => {
      const r = expectExit(await satchel(['--help'], top), 0);
      for (const command of [
        'init',
        'mirror',
        'sync',
        'watch',
        'status',
        'conflicts',
        'resolve',
        'eject',
        'ui',
        'agent',
      ]) {
        assert.match(r.stdout, new RegExp(`^  ${command}\\b`, 'm'), `--help lists ${command}`);
      }
      assert.match(r.stdout, /-C <dir>/);
    });
    it('prints the version', async () => {
      const r = expectExit(await satchel(['--version'], top), 0);
      assert.match(r.stdout, /^\d+\.\d+\.\d+/);
    });
    const usage: readonly { args: string[]; stderr: RegExp; description: string }[] = [
      { args: [], stderr: /Usage: satchel/, description: 'no command' },
      { args: ['frobnicate'], stderr: /unknown command 'frobnicate'/, description: 'unknown command' },
      { args: ['status', '--verbose'], stderr: /unknown option '--verbose'/, description: 'unknown option' },
      {
        args: ['mirror', 'add', 'stick'],
        stderr: /missing required argument 'url'\nhint: usage: satchel mirror add \[options\] <name> <url>/,
        description: 'missing argument (the hint gives the whole usage line)',
      },
      { args: ['status', 'extra'], stderr: /too many arguments/, description: 'extra argument' },
      { args: ['status', '-C', '.'], stderr: /unknown option '-C'/, description: '-C after the command' },
      {
        args: ['resolve', 'a.txt'],
        stderr:
          /--keep <version>' not specified\nhint: usage: satchel resolve <path> --keep case\|mirror\|both/,
        description: 'resolve without --keep',
      },
      {
        args: ['resolve'],
        stderr: /hint: usage: satchel resolve <path> --keep case\|mirror\|both/,
        description: 'resolve without anything: the usage line names both',
      },
      {
        args: ['resolve', 'a.txt', '--keep', 'mine'],
        stderr: /Allowed choices are case, mirror, both/,
        description: 'bad --keep',
      },
      {
        args: ['mirror', 'add', 's', '/x', '--poll', 'often'],
        stderr: /seconds from 1 to 86400/,
        description: 'bad --poll',
      },
      {
        args: ['mirror', 'add', 's', '/x', '--poll', '0'],
        stderr: /seconds from 1 to 86400/,
        description: '--poll 0',
      },
      {
        args: ['watch', '--settle', 'abc'],
        stderr: /milliseconds from 0 to 60000/,
        description: 'bad --settle',
      },
      {
        args: ['init', ''],
        stderr: /the folder argument is empty/,
        description: 'init with an empty folder argument',
      },
      {
        args: ['watch', '--settle', '-5'],
        stderr: /milliseconds from 0 to 60000/,
        description: '--settle -5',
      },
      {
        args: ['watch', '--settle', '1.5'],
        stderr: /milliseconds from 0 to 60000/,
        description: '--settle 1.5',
      },
    ];
    for (const { args, stderr, description } of usage) {
      it(`exits 2 on bad usage: ${description}`, async () => {
        const r = expectExit(await satchel(args, top), 2);
        assert.match(r.stderr, stderr);
        assert.equal(r.stdout, '');
      });
    }
    it('a reader that closes early ends the output quietly, not with an EPIPE crash', async () => {
      // `true` exits without reading: every write of satchel's meets a closed pipe.
      for (const args of [['--help'], ['init', 'piped-case']]) {
        const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const child = spawn(
            'bash',
            ['-c', `set -o pipefail; "$0" "$@" | true`, process.execPath, BIN, ...args],
            {
              cwd: top,
            },
          );
          let stderr = '';
          child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          child.on('close', (code) => resolve({ code, stderr }));
        });
        assert.doesNotMatch(r.stderr, /EPIPE|Unhandled|internal error/, `${args.join(' ')}: ${r.stderr}`);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      }
    });
    it('prints usage errors as JSON on stdout with --json', async () => {
      const r = expectExit(await satchel(['status', '--json', '--verbose'], top), 2);
      const json = JSON.parse(r.stdout) as JsonError;
      assert.equal(json.error.code, 'usage');
      assert.match(json.error.message, /unknown option '--verbose'/);
    });
    for (const args of [
      ['ui', '--port', '8080'],
      ['agent', '--stdio'],
    ]) {
      it(`answers \`${args.join(' ')}\` with exit 1: not available in this version`, async () => {
        expectFailure(await satchel(args, top), new RegExp(`${args[0]} is not available in this version`));
      });
    }
    it('says not-available as JSON too', async () => {
      const r = expectExit(await satchel(['ui', '--json'], top), 1);
      assert.equal((JSON.parse(r.stdout) as JsonError).error.code, 'not-available');
    });
    it('refuses watch and eject outside a case', async () => {
      expectFailure(await satchel(['watch'], top), /is not inside a case/);
      expectFailure(await satchel(['eject', 'stick'], top), /is not inside a case/);
    });
  });

  describe('init and -C', () => {
    it('makes a folder a case, creating it', async () => {
      const r = expectExit(await satchel(['init', 'a/work'], top), 0);
      assert.match(r.stdout, /Initialized case "work" in /);
      assert.ok(existsSync(join(top, 'a/work/.satchel/config.toml')));
      assert.ok(existsSync(join(top, 'a/work/.satchel/state.db')));
      // The state is this computer's own: a git work tree in the case never commits it.
      assert.match(readFileSync(join(top, 'a/work/.satchel/.gitignore'), 'utf8'), /^\*$/m);
    });
    it('prints {case, name} with --json', async () => {
      const r = expectExit(await satchel(['init', 'b', '--json'], top), 0);
      assert.deepEqual(JSON.parse(r.stdout), { case: join(top, 'b'), name: 'b' });
    });
    it('makes the -C folder a case', async () => {
      expectExit(await satchel(['-C', join(top, 'c'), 'init'], top), 0);
      assert.ok(existsSync(join(top, 'c/.satchel/config.toml')));
    });
    it('resolves the init folder against -C', async () => {
      expectExit(await satchel(['-C', folder('d'), 'init', 'inner'], top), 0);
      assert.ok(existsSync(join(top, 'd/inner/.satchel/config.toml')));
    });
    it('a folder that cannot be created fails at once, naming it (also below /proc)', async () => {
      // Node's recursive mkdir loops forever there; the satchel helper's timeout would end it.
      expectFailure(await satchel(['init', `/proc/satchel-test-${process.pid}/work`], top), /cannot create/);
    });
    it('options of another kind of mirror are refused, not stored unused', async () => {
      const work = await newCase('kinds/work');
      const dir = folder('kinds/m');
      for (const [option, extra] of [
        ['--accept-new-host-key', []],
        ['--password-env', ['FTP_PASSWORD']],
      ] as const) {
        const r = expectExit(await satchel(['mirror', 'add', 'm', dir, option, ...extra], work), 2);
        assert.match(r.stderr, new RegExp(`^satchel: ${option} only goes with an s?ftp`, 'm'));
      }
      const search = expectExit(
        await satchel(['mirror', 'add', 'm', 'sftp://host/x', '--search', dir], work),
        2,
      );
      assert.match(search.stderr, /--search only goes with a path/);
    });
    it("another case's folder is refused as a mirror (the two cases would be merged)", async () => {
      const mine = await newCase('two-cases/mine');
      const other = await newCase('two-cases/other');
      const r = expectExit(await satchel(['mirror', 'add', 'm', other], mine), 2);
      assert.match(r.stderr, /is the folder of another case \(it holds \.satchel\/config\.toml\)/);
    });
    it("a case made inside another case's mirror folder: init says so", async () => {
      const mirror = folder('mirror-of-other');
      writeFileSync(join(mirror, '.satchel-mirror'), '{}');
      const r = expectExit(await satchel(['init', join(mirror, 'inner')], top), 0);
      assert.match(r.stdout, /^note: it lies inside .*mirror-of-other, the mirror folder of another case/m);
    });
    it('refuses a case inside an encrypted mirror: it would lie in plain text among encrypted files', async () => {
      const mirror = folder('an-encrypted-mirror');
      writeFileSync(
        join(mirror, '.satchel-mirror'),
        JSON.stringify({ id: 'x', case: 'work', passphraseCheck: '0123456789abcdef0123456789abcdef' }),
      );
      const r = expectFailure(
        await satchel(['init', join(mirror, 'deep')], top),
        /deep lies inside the encrypted mirror .*an-encrypted-mirror of the case "work"/,
      );
      assert.match(r.stderr, /hint: make the case in a folder outside the mirror/);
      assert.equal(existsSync(join(mirror, 'deep')), false, 'nothing was made');
    });
    it('refuses to make a case of a mirror folder itself, naming the case it belongs to', async () => {
      const mirror = folder('a-mirror');
      writeFileSync(join(mirror, '.satchel-mirror'), JSON.stringify({ id: 'x', case: 'work' }));
      const r = expectFailure(
        await satchel(['init', mirror], top),
        /a-mirror is a mirror of the case "work" \(it holds \.satchel-mirror\)/,
      );
      assert.match(r.stderr, /hint: make the case in another folder/);
      assert.equal(existsSync(join(mirror, '.satchel')), false, 'nothing was made');
    });
    it('refuses a case twice: exit 1, one reason line and a hint', async () => {
      expectFailure(await satchel(['init', 'b'], top), /is already a case/);
    });
    it('prints the failure as JSON on stdout with --json', async () => {
      const r = expectExit(await satchel(['init', 'b', '--json'], top), 1);
      const json = JSON.parse(r.stdout) as JsonError;
      assert.equal(json.error.code, 'already-a-case');
      assert.match(json.error.message, /is already a case/);
      assert.ok(json.error.hint.length > 0);
      assert.match(r.stderr, /^satchel: /);
    });
    it('finds the case from a folder inside it, and via -C', async () => {
      mkdirSync(join(top, 'b/deep/er'), { recursive: true });
      const inside = expectExit(await satchel(['status', '--json'], join(top, 'b/deep/er')), 0);
      assert.equal((JSON.parse(inside.stdout) as { case: string }).case, join(top, 'b'));
      const viaC = expectExit(await satchel(['-C', join(top, 'b/deep'), 'status', '--json'], top), 0);
      assert.equal((JSON.parse(viaC.stdout) as { case: string }).case, join(top, 'b'));
    });
    it('says when the folder is not a case, hinting at init', async () => {
      const r = expectFailure(await satchel(['status'], folder('plain')), /is not inside a case/);
      assert.match(r.stderr, /hint: .*satchel init/);
      // A -C folder that does not exist says that, not "not inside a case".
      expectFailure(
        await satchel(['-C', join(top, 'missing'), 'mirror', 'list'], top),
        /missing does not exist/,
      );
    });
    it('reports a broken config naming the file and the key', async () => {
      const work = await newCase('broken');
      writeFileSync(join(work, '.satchel/config.toml'), '[case]\nname = "broken"\ncolour = "red"\n');
      expectFailure(
        await satchel(['status'], work),
        /\.satchel\/config\.toml: case\.colour: unknown key \(allowed here: name\)/,
      );
    });
  });

  describe('mirrors', () => {
    let work = '';
    let stick = '';
    before(async () => {
      work = await newCase('m/work');
      stick = folder('m/stick');
    });

    interface MirrorInfo {
      name: string;
      url: string;
      id: string;
      pushOnly: boolean;
      encrypt: boolean;
      poll: number | null;
      present: boolean;
      capabilities: { mtimeGranularityMs: number } | null;
    }

    it('adds a mirror and prints its list entry with --json', async () => {
      const r = expectExit(
        await satchel(['mirror', 'add', 'stick', stick, '--poll', '2', '--json'], work),
        0,
      );
      const info = JSON.parse(r.stdout) as MirrorInfo;
      assert.equal(info.name, 'stick');
      assert.equal(info.url, stick);
      assert.equal(info.poll, 2);
      assert.equal(info.pushOnly, false);
      assert.equal(info.present, true);
      assert.equal(info.capabilities?.mtimeGranularityMs, 1);
      const marker = JSON.parse(readFileSync(join(stick, '.satchel-mirror'), 'utf8')) as {
        id: string;
        case: string;
      };
      assert.deepEqual([marker.id, marker.case], [info.id, 'work']);
    });
    it('adds a push-only mirror by file:// URL, in human words', async () => {
      const share = folder('m/share');
      const r = expectExit(
        await satchel(['mirror', 'add', 'share', `file://${share}`, '--push-only'], work),
        0,
      );
      assert.match(r.stdout, /Added mirror "share" at /);
    });
    it('lists the mirrors, present and absent', async () => {
      renameSync(join(top, 'm/share'), join(top, 'm/share-unmounted'));
      const r = expectExit(await satchel(['mirror', 'list', '--json'], work), 0);
      const list = (JSON.parse(r.stdout) as { mirrors: MirrorInfo[] }).mirrors;
      assert.deepEqual(
        list.map((m) => [m.name, m.present, m.pushOnly]),
        [
          ['stick', true, false],
          ['share', false, true],
        ],
      );
      const text = expectExit(await satchel(['mirror', 'list'], work), 0).stdout;
      assert.match(text, /^stick +present +\//m);
      assert.match(text, /^share +absent +file:\/\/.*push-only/m);
    });
    it('shows absent mirrors in status without planning them', async () => {
      const r = expectExit(await satchel(['status', '--json'], work), 0);
      const status = JSON.parse(r.stdout) as {
        name: string;
        mirrors: {
          name: string;
          present: boolean;
          state: string;
          pending: number | null;
          message?: string;
        }[];
        locked: unknown[];
        conflicts: number;
      };
      assert.equal(status.name, 'work');
      const share = status.mirrors.find((m) => m.name === 'share');
      assert.deepEqual([share?.present, share?.state, share?.pending], [false, 'absent', null]);
      assert.match(share?.message ?? '', /marker \.satchel-mirror not found/);
      assert.deepEqual(status.locked, []);
      assert.equal(status.conflicts, 0);
    });
    it('refuses a duplicate name, a missing folder, --encrypt and kinds not available yet', async () => {
      expectFailure(
        await satchel(['mirror', 'add', 'stick', folder('m/other')], work),
        /already has a mirror named "stick"/,
      );
      expectFailure(
        await satchel(['mirror', 'add', 'usb', join(top, 'm/nowhere')], work),
        /m\/nowhere does not exist/,
      );
      expectFailure(
        await satchel(['mirror', 'add', 'enc', folder('m/enc'), '--encrypt'], work),
        /needs its passphrase/,
      );
      expectFailure(
        await satchel(['mirror', 'add', 'srv', 'ssh://me@host/work'], work),
        /Peer \(ssh:\/\/\) mirrors are not available/,
      );
      expectFailure(
        await satchel(['mirror', 'add', 'srv', 'ftp://me@host/work'], work),
        /FTP mirrors are push-only/,
      );
    });
    it('exits 2 for a relative path or a bad name, naming what is allowed', async () => {
      const relative = expectExit(await satchel(['mirror', 'add', 'usb', 'm/stick'], work), 2);
      assert.match(
        relative.stderr,
        /^satchel: mirror URL "m\/stick" is not an absolute path\nhint: use an absolute path/,
      );
      const badName = expectExit(await satchel(['mirror', 'add', '-x', stick], work), 2);
      assert.match(badName.stderr, /unknown option '-x'/);
      const spaced = expectExit(await satchel(['mirror', 'add', 'my stick', stick], work), 2);
      assert.match(spaced.stderr, /invalid mirror name "my stick"\nhint: a mirror name has 1 to 64/);
    });
    it('removes a mirror, leaving its files and marker', async () => {
      writeFileSync(join(stick, 'kept.txt'), 'x');
      const r = expectExit(await satchel(['mirror', 'remove', 'stick', '--json'], work), 0);
      assert.equal((JSON.parse(r.stdout) as { removed: { name: string } }).removed.name, 'stick');
      assert.ok(existsSync(join(stick, '.satchel-mirror')));
      assert.ok(existsSync(join(stick, 'kept.txt')));
      const list = JSON.parse(expectExit(await satchel(['mirror', 'list', '--json'], work), 0).stdout) as {
        mirrors: MirrorInfo[];
      };
      assert.deepEqual(
        list.mirrors.map((m) => m.name),
        ['share'],
      );
      expectFailure(await satchel(['mirror', 'remove', 'stick'], work), /no mirror named "stick"/);
    });
    it('removes a mirror whose hand-edited entry breaks the config, as the error hint says', async () => {
      const config = join(work, '.satchel/config.toml');
      const before = readFileSync(config, 'utf8');
      const other = join(work, '..', 'other-stick');
      mkdirSync(other, { recursive: true });
      expectExit(await satchel(['mirror', 'add', 'typo', other], work), 0);
      writeFileSync(
        config,
        readFileSync(config, 'utf8').replace(
          /(\[mirrors\.typo\][^[]*?)push_only = false/,
          '$1push_only = "no"',
        ),
      );
      const broken = expectFailure(
        await satchel(['status'], work),
        /mirrors\.typo\.push_only: expected true or false/,
      );
      assert.match(
        broken.stderr,
        /hint: fix .*config\.toml by hand, or remove the mirror with `satchel mirror remove typo`/,
      );
      const r = expectExit(await satchel(['mirror', 'remove', 'typo'], work), 0);
      assert.match(r.stdout, /Removed mirror "typo"/);
      assert.equal(readFileSync(config, 'utf8'), before, 'the rest of the config is as it was');
      expectExit(await satchel(['status'], work), 0);
      assert.ok(existsSync(join(other, '.satchel-mirror')), 'the marker stays');
    });
  });

  describe('conflicts and resolve', () => {
    let work = '';
    before(async () => {
      work = await newCase('r/work');
      writeFileSync(join(work, 'notes.txt'), 'case version\n');
      writeFileSync(join(work, 'notes.conflict-20260101-120000-stick.txt'), 'stick version\n');
      // A conflict as a sync records it: the case's version won, the stick's is the copy.
      const state = StateStore.open(join(work, '.satchel/state.db'));
      state.recordConflicts(
        'stick',
        [
          {
            path: 'notes.txt',
            copyPath: 'notes.conflict-20260101-120000-stick.txt',
            winner: 'case',
            reason: 'edited on both the case and stick',
          },
        ],
        Date.UTC(2026, 0, 1, 12),
      );
      state.close();
    });

    it('lists conflicts as JSON with ISO times', async () => {
      const r = expectExit(await satchel(['conflicts', '--json'], work), 0);
      assert.deepEqual(JSON.parse(r.stdout), {
        conflicts: [
          {
            path: 'notes.txt',
            copyPath: 'notes.conflict-20260101-120000-stick.txt',
            mirror: 'stick',
            winner: 'case',
            reason: 'edited on both the case and stick',
            detectedAt: '2026-01-01T12:00:00.000Z',
          },
        ],
      });
    });
    it('lists conflicts for people, saying where each version is', async () => {
      const r = expectExit(await satchel(['conflicts'], work), 0);
      assert.match(
        r.stdout,
        /case version at notes\.txt; stick version at notes\.conflict-20260101-120000-stick\.txt/,
      );
      assert.match(r.stdout, /satchel resolve <path> --keep case\|mirror\|both/);
    });
    it('counts conflicts in status', async () => {
      const r = expectExit(await satchel(['status', '--json'], work), 0);
      assert.equal((JSON.parse(r.stdout) as { conflicts: number }).conflicts, 1);
    });
    it('refuses to resolve an unknown path, hinting at `satchel conflicts`', async () => {
      const r = expectFailure(
        await satchel(['resolve', 'other.txt', '--keep', 'case'], work),
        /no conflict recorded/,
      );
      assert.match(r.stderr, /satchel conflicts/);
    });
    it('keeps the mirror version given the copy path relative to the current folder', async () => {
      const r = expectExit(
        await satchel(
          ['-C', work, 'resolve', 'notes.conflict-20260101-120000-stick.txt', '--keep', 'mirror', '--json'],
          top,
        ),
        0,
      );
      const resolved = (JSON.parse(r.stdout) as { resolved: { keep: string; movedFrom: string } }).resolved;
      assert.deepEqual(
        [resolved.keep, resolved.movedFrom],
        ['mirror', 'notes.conflict-20260101-120000-stick.txt'],
      );
      assert.equal(readFileSync(join(work, 'notes.txt'), 'utf8'), 'stick version\n');
      assert.equal(existsSync(join(work, 'notes.conflict-20260101-120000-stick.txt')), false);
      const after = expectExit(await satchel(['conflicts'], work), 0);
      assert.equal(after.stdout, 'No conflicts.\n');
    });
  });

  describe('sync', () => {
    it('copies the case to a mirror and reports it, then has nothing left to do', async () => {
      const work = await newCase('s/work');
      const stick = folder('s/stick');
      mkdirSync(join(work, 'docs'));
      writeFileSync(join(work, 'docs/a.txt'), 'hello\n');
      writeFileSync(join(work, '.a.txt.swp'), 'vim swap');
      expectExit(await satchel(['mirror', 'add', 'stick', stick], work), 0);

      const first = expectExit(await satchel(['sync'], work), 0);
      assert.match(first.stdout, /^stick: synced — 0 in, \d+ out, 0 conflicts$/m);
      assert.equal(readFileSync(join(stick, 'docs/a.txt'), 'utf8'), 'hello\n');
      assert.equal(existsSync(join(stick, '.a.txt.swp')), false, 'editor swap files are not replicated');

      const status = JSON.parse(expectExit(await satchel(['status', '--json'], work), 0).stdout) as {
        mirrors: {
          name: string;
          state: string;
          pending: number;
          lastSync: string | null;
          lastResult: string;
          lastSynced: string | null;
        }[];
      };
      assert.deepEqual(
        status.mirrors.map((m) => [m.name, m.state, m.pending, m.lastResult]),
        [['stick', 'ok', 0, 'synced']],
      );
      assert.ok(status.mirrors[0]?.lastSync !== null);
      assert.equal(status.mirrors[0]?.lastSynced, status.mirrors[0]?.lastSync);

      const second = JSON.parse(expectExit(await satchel(['sync', 'stick', '--json'], work), 0).stdout) as {
        mirrors: { mirror: string; state: string; in: number; out: number }[];
      };
      assert.deepEqual(second.mirrors, [
        { mirror: 'stick', state: 'synced', in: 0, out: 0, conflicts: [], problems: [] },
      ]);
    });
    it('fails when a mirror named on the command line is absent or unknown', async () => {
      const work = await newCase('s2/work');
      const stick = folder('s2/stick');
      expectExit(await satchel(['mirror', 'add', 'stick', stick], work), 0);
      rmSync(join(stick, '.satchel-mirror'));
      const absent = expectExit(await satchel(['sync', 'stick'], work), 1);
      assert.match(absent.stdout, /^stick: absent — marker \.satchel-mirror not found at /m);
      assert.match(absent.stderr, /^satchel: sync incomplete: stick absent\nhint: /);
      const unnamed = expectExit(await satchel(['sync'], work), 0);
      assert.match(unnamed.stdout, /^stick: absent/m);
      // An absent run is no sync: status says when it was tried, and that it never synced.
      const text = expectExit(await satchel(['status'], work), 0).stdout;
      assert.match(
        text,
        /^ {2}stick: absent — .*; never synced, last tried \d{4}-\d\d-\d\d [\d:]+ \(absent\)$/m,
      );
      const json = JSON.parse(expectExit(await satchel(['status', '--json'], work), 0).stdout) as {
        mirrors: { lastSync: string | null; lastResult: string; lastSynced: string | null }[];
      };
      assert.deepEqual(
        json.mirrors.map((m) => [m.lastResult, m.lastSynced, typeof m.lastSync]),
        [['absent', null, 'string']],
      );
      expectFailure(await satchel(['sync', 'nas'], work), /no mirror named/);
    });
  });
});
