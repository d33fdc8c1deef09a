/** @module daemon/case.test Tests of finding, creating and opening cases and of adding and removing mirrors. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SatchelError } from '../core/errors.js';
import { parseMarker, readMarker } from '../mirrors/path/marker.js';
import {
  addMirror,
  findCaseRoot,
  initCase,
  openCase,
  removeMirror,
  sanitizeHostLabel,
  type CaseContext,
} from './case.js';
import { configFile, loadConfig } from './config.js';

/** Asserts that `promise` (or `fn`) fails with a SatchelError of `code` whose message matches. */
async function assertRejects(fn: () => unknown, code: string, message: RegExp): Promise<void> {
  await assert.rejects(
    async () => fn(),
    (error: unknown) => {
      assert.ok(error instanceof SatchelError, `expected a SatchelError, got ${String(error)}`);
      assert.equal(error.code, code, error.message);
      assert.match(error.message, message);
      assert.ok(error.hint, 'has a hint');
      return true;
    },
  );
}

describe('case', () => {
  let top = '';
  const opened: CaseContext[] = [];
  before(() => {
    top = mkdtempSync(join(tmpdir(), 'satchel-case-'));
  });
  after(() => {
    for (const ctx of opened) ctx.close();
    rmSync(top, { recursive: true, force: true });
  });

  /** Makes a fresh case named after `dir` under the temp folder and opens it. */
  function freshCase(dir: string, name?: string): CaseContext {
    initCase(join(top, dir), name);
    const ctx = openCase(join(top, dir));
    opened.push(ctx);
    return ctx;
  }

  /** Makes an empty folder under the temp folder. */
  function folder(dir: string): string {
    const path = join(top, dir);
    mkdirSync(path, { recursive: true });
    return path;
  }

  describe('initCase and findCaseRoot', () => {
    it('creates the folder, the config and the state database', () => {
      const { root, name } = initCase(join(top, 'new/work'));
      assert.equal(root, join(top, 'new/work'));
      assert.equal(name, 'work');
      assert.ok(existsSync(configFile(root)));
      assert.ok(existsSync(join(root, '.satchel/state.db')));
      assert.deepEqual(loadConfig(root), { name: 'work', mirrors: {} });
    });
    it('takes an explicit name', () => {
      const { root } = initCase(join(top, 'named'), 'office');
      assert.equal(loadConfig(root).name, 'office');
    });
    it('refuses a folder that is already a case', async () => {
      await assertRejects(() => initCase(join(top, 'new/work')), 'already-a-case', /is already a case/);
    });
    it('refuses a folder inside a case', async () => {
      await assertRejects(() => initCase(join(top, 'new/work/sub')), 'already-a-case', /is inside the case/);
    });
    it('finds the case from a folder below it', () => {
      mkdirSync(join(top, 'new/work/a/b'), { recursive: true });
      assert.equal(findCaseRoot(join(top, 'new/work/a/b')), join(top, 'new/work'));
      assert.equal(findCaseRoot(join(top, 'new/work')), join(top, 'new/work'));
    });
    it('says when there is no case, hinting at init', async () => {
      await assertRejects(() => findCaseRoot(folder('plain')), 'not-a-case', /is not inside a case/);
    });
    it('opens a case with its config, state and a safe host label', () => {
      const ctx = openCase(join(top, 'new/work/a'));
      opened.push(ctx);
      assert.equal(ctx.root, join(top, 'new/work'));
      assert.equal(ctx.config.name, 'work');
      assert.deepEqual(ctx.state.listConflicts(), []);
      assert.match(ctx.hostLabel, /^[A-Za-z0-9_-]+$/);
    });
  });

  describe('sanitizeHostLabel', () => {
    const table = [
      { host: 'laptop', label: 'laptop' },
      { host: 'box.example.org', label: 'box' },
      { host: 'My Mac (2)', label: 'My-Mac-2' },
      { host: '', label: 'host' },
      { host: '...', label: 'host' },
    ];
    for (const { host, label } of table) {
      it(`turns "${host}" into "${label}"`, () => assert.equal(sanitizeHostLabel(host), label));
    }
  });

  describe('addMirror', () => {
    it('writes a marker, probes capabilities and saves the mirror', async () => {
      const ctx = freshCase('c1');
      const stick = folder('stick1');
      const added = await addMirror(ctx, 'stick', stick, { pollSeconds: 2 });
      assert.equal(added.adopted, false);
      const marker = await readMarker(stick);
      assert.equal(marker?.case, 'c1');
      assert.equal(marker?.id, added.config.id);
      const saved = loadConfig(ctx.root).mirrors['stick'];
      assert.equal(saved?.url, stick);
      assert.equal(saved?.pollSeconds, 2);
      assert.equal(saved?.pushOnly, false);
      assert.equal(saved?.capabilities?.writable, true);
      assert.deepEqual(ctx.config.mirrors['stick'], saved);
    });
    it('accepts a file:// URL and --push-only', async () => {
      const ctx = freshCase('c2');
      const share = folder('share2');
      const added = await addMirror(ctx, 'share', `file://${share}`, { pushOnly: true });
      assert.equal(added.root, share);
      assert.equal(loadConfig(ctx.root).mirrors['share']?.pushOnly, true);
    });
    it("adopts the marker of the same case (a second computer's case adding the same stick)", async () => {
      const office = freshCase('office/work');
      const home = freshCase('home/work');
      const stick = folder('stick3');
      const first = await addMirror(office, 'stick', stick);
      const second = await addMirror(home, 'usb', stick);
      assert.equal(second.adopted, true);
      assert.equal(second.config.id, first.config.id);
    });
    it("refuses another case's mirror, naming both cases", async () => {
      const a = freshCase('a4', 'alpha');
      const b = freshCase('b4', 'beta');
      const stick = folder('stick4');
      await addMirror(a, 'stick', stick);
      await assertRejects(
        () => addMirror(b, 'stick', stick),
        'mirror-exists',
        /case "alpha", not of this case "beta"/,
      );
      assert.equal((await readMarker(stick))?.case, 'alpha', 'the marker is left alone');
    });
    it('refuses a duplicate name and a second name for the same folder', async () => {
      const ctx = freshCase('c5');
      const stick = folder('stick5');
      await addMirror(ctx, 'stick', stick);
      await assertRejects(
        () => addMirror(ctx, 'stick', folder('other5')),
        'mirror-exists',
        /already has a mirror named "stick"/,
      );
      await assertRejects(
        () => addMirror(ctx, 'again', stick),
        'mirror-exists',
        /already the mirror "stick"/,
      );
    });
    it('refuses a missing folder, naming it', async () => {
      const ctx = freshCase('c6');
      await assertRejects(
        () => addMirror(ctx, 'stick', join(top, 'nowhere')),
        'mirror-absent',
        /nowhere does not exist/,
      );
      assert.deepEqual(loadConfig(ctx.root).mirrors, {});
    });
    it('refuses a folder inside the case or containing it', async () => {
      const ctx = freshCase('c7/work');
      await assertRejects(() => addMirror(ctx, 'in', folder('c7/work/sub')), 'usage', /is inside the case/);
      await assertRejects(() => addMirror(ctx, 'self', ctx.root), 'usage', /is inside the case/);
      await assertRejects(() => addMirror(ctx, 'out', join(top, 'c7')), 'usage', /contains the case/);
      assert.equal(existsSync(join(top, 'c7/.satchel-mirror')), false);
    });
    it('refuses a file given as the mirror folder, saying it is a file', async () => {
      const ctx = freshCase('c7c');
      const file = join(folder('m7c'), 'notes.txt');
      writeFileSync(file, 'x');
      await assertRejects(() => addMirror(ctx, 'f', file), 'usage', /is a file, not a folder/);
    });
    it('refuses a folder inside another mirror or containing one (each sync would nest it deeper)', async () => {
      const ctx = freshCase('c7b');
      await addMirror(ctx, 'a', folder('m7b/a'));
      const inner = folder('m7b/a/nested');
      await assertRejects(() => addMirror(ctx, 'nested', inner), 'usage', /inside the folder of mirror a/);
      await assertRejects(
        () => addMirror(ctx, 'outer', join(top, 'm7b')),
        'usage',
        /contains the folder of mirror a/,
      );
      assert.equal(existsSync(join(inner, '.satchel-mirror')), false);
      assert.deepEqual(Object.keys(loadConfig(ctx.root).mirrors), ['a']);
      await addMirror(ctx, 'b', folder('m7b/b'));
    });
    it('refuses --encrypt without a passphrase, bad names, relative paths and unsupported kinds', async () => {
      const ctx = freshCase('c8');
      const stick = folder('stick8');
      await assertRejects(
        () => addMirror(ctx, 'stick', stick, { encrypt: true }),
        'auth-failed',
        /needs its passphrase/,
      );
      await assertRejects(() => addMirror(ctx, 'my stick', stick), 'usage', /invalid mirror name/);
      await assertRejects(() => addMirror(ctx, 'stick', 'stick8'), 'usage', /not an absolute path/);
      await assertRejects(() => addMirror(ctx, 'srv', 'ftp://me@host/x'), 'mirror-unsupported', /FTP/);
      await assertRejects(() => addMirror(ctx, 'stick', stick, { pollSeconds: 0 }), 'usage', /--poll 0/);
      assert.equal(existsSync(join(stick, '.satchel-mirror')), false);
    });
  });

  describe('encrypted markers', () => {
    it('hold the passphrase check; adopting needs --encrypt and the same passphrase, else nothing is written', async () => {
      const saved = process.env.SATCHEL_PASSPHRASE;
      try {
        const office = freshCase('c8e/office/work', 'work');
        const home = freshCase('c8e/home/work', 'work');
        const stick = folder('stick8e');
        process.env.SATCHEL_PASSPHRASE = 'the right one';
        await addMirror(office, 'stick', stick, { encrypt: true });
        const marker = await readMarker(stick);
        assert.match(marker?.passphraseCheck ?? '', /^[0-9a-f]{32}$/);
        assert.equal(office.config.mirrors.stick?.passphraseCheck, marker?.passphraseCheck);
        const markerText = readFileSync(join(stick, '.satchel-mirror'), 'utf8');
        assert.ok(!markerText.includes('the right one'));
        process.env.SATCHEL_PASSPHRASE = 'a wrong one';
        await assertRejects(
          () => addMirror(home, 'stick', stick, { encrypt: true }),
          'auth-failed',
          /wrong passphrase for the encrypted mirror "stick"/,
        );
        await assertRejects(() => addMirror(home, 'stick', stick), 'usage', /add it with --encrypt/);
        assert.deepEqual(home.config.mirrors, {});
        assert.equal(readFileSync(join(stick, '.satchel-mirror'), 'utf8'), markerText);
        process.env.SATCHEL_PASSPHRASE = 'the right one';
        const adopted = await addMirror(home, 'stick', stick, { encrypt: true });
        assert.equal(adopted.adopted, true);
        assert.equal(adopted.config.passphraseCheck, marker?.passphraseCheck);
      } finally {
        if (saved === undefined) delete process.env.SATCHEL_PASSPHRASE;
        else process.env.SATCHEL_PASSPHRASE = saved;
      }
    });
    it('markers written before the passphrase check existed still read', () => {
      const old = parseMarker(
        JSON.stringify({
          version: 1,
          id: '2b7c1f3e-0d4a-4e5b-9c6d-7e8f9a0b1c2d',
          case: 'work',
          createdAt: '2026-01-01T00:00:00.000Z',
        }),
        'm',
      );
      assert.equal(old.passphraseCheck, undefined);
      assert.throws(
        () => parseMarker(JSON.stringify({ ...old, passphraseCheck: 'not hex' }), 'm'),
        /passphraseCheck/,
      );
    });
  });

  describe('removeMirror', () => {
    it('drops the config entry and state, leaving the files and marker alone', async () => {
      const ctx = freshCase('c9');
      const stick = folder('stick9');
      await addMirror(ctx, 'stick', stick);
      const markerBefore = readFileSync(join(stick, '.satchel-mirror'), 'utf8');
      const removed = await removeMirror(ctx, 'stick');
      assert.equal(removed.url, stick);
      assert.deepEqual(loadConfig(ctx.root).mirrors, {});
      assert.deepEqual(ctx.config.mirrors, {});
      assert.equal(readFileSync(join(stick, '.satchel-mirror'), 'utf8'), markerBefore);
      const again = await addMirror(ctx, 'stick', stick);
      assert.equal(again.adopted, true, 'adding it back adopts the marker left behind');
    });
    it('refuses an unknown mirror, listing the configured ones', async () => {
      const ctx = freshCase('c10');
      await addMirror(ctx, 'stick', folder('stick10'));
      await assertRejects(() => removeMirror(ctx, 'nas'), 'mirror-unknown', /no mirror named "nas"/);
    });
  });
});
