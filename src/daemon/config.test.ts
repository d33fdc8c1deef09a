/** @module daemon/config.test Tests of reading, validating and writing the case config. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { POSIX_CAPABILITIES } from '../core/capabilities.js';
import { SatchelError } from '../core/errors.js';
import { configFile, loadConfig, saveConfig, type CaseConfig } from './config.js';

const ID = '2b7c1f3e-9a4d-4c1b-8e2f-0123456789ab';

describe('config', () => {
  let root = '';
  before(() => {
    root = join(mkdtempSync(join(tmpdir(), 'satchel-config-')), 'work');
    mkdirSync(join(root, '.satchel'), { recursive: true });
  });
  after(() => rmSync(join(root, '..'), { recursive: true, force: true }));

  /** Writes `text` as the config and loads it. */
  function load(text: string): CaseConfig {
    writeFileSync(configFile(root), text);
    return loadConfig(root);
  }

  /** Asserts that loading `text` fails with config-invalid naming the file and matching `message`. */
  function assertInvalid(text: string, message: RegExp): SatchelError {
    let caught: unknown;
    try {
      load(text);
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof SatchelError, `expected a SatchelError, got ${String(caught)}`);
    assert.equal(caught.code, 'config-invalid');
    assert.ok(caught.message.startsWith(configFile(root)), `names the file: ${caught.message}`);
    assert.match(caught.message, message);
    assert.ok(caught.hint !== undefined && caught.hint.length > 0, 'has a hint');
    return caught;
  }

  const MIRROR = `[mirrors.stick]\nurl = "/media/u/STICK/work"\nid = "${ID}"\n`;

  it('reads a full config', () => {
    const config = load(
      `[case]\nname = "office"\n${MIRROR}push_only = true\npoll = 2\nencrypt = false\n` +
        `[mirrors.share]\nurl = "file:///mnt/share/work"\nid = "${ID.replace('2b', '3c')}"\n`,
    );
    assert.deepEqual(config, {
      name: 'office',
      mirrors: {
        stick: { url: '/media/u/STICK/work', id: ID, pushOnly: true, pollSeconds: 2, encrypt: false },
        share: { url: 'file:///mnt/share/work', id: ID.replace('2b', '3c'), pushOnly: false, encrypt: false },
      },
    });
  });
  it('defaults the case name to the folder name and mirrors to none', () => {
    assert.deepEqual(load('[case]\n'), { name: 'work', mirrors: {} });
  });
  it('refuses an empty file (emptied by hand or a full disk), never reading it as no mirrors', () => {
    assertInvalid('', /the file is empty/);
    assertInvalid('\n  # only a comment\n', /the file is empty/);
  });
  it('refuses a path mirror inside the case or around it (each sync would copy the case into itself)', () => {
    const inside = assertInvalid(
      `[mirrors.m1]\nurl = "${join(root, 'sub')}"\nid = "${ID}"\n`,
      /mirrors\.m1\.url: the folder .*\/work\/sub is inside the case .*\/work$/,
    );
    assert.match(inside.hint ?? '', /satchel mirror remove m1/);
    assertInvalid(`[mirrors.m1]\nurl = "${join(root, '..')}"\nid = "${ID}"\n`, /contains the case/);
  });
  it('accepts URLs of kinds not available yet (sync reports them)', () => {
    const config = load(`[mirrors.server]\nurl = "sftp://me@host/work"\nid = "${ID}"\n`);
    assert.equal(config.mirrors['server']?.url, 'sftp://me@host/work');
  });
  it('round-trips through saveConfig, capabilities included', () => {
    const config: CaseConfig = {
      name: 'work "quoted"',
      mirrors: {
        stick: {
          url: '/media/u/STICK/work',
          id: ID,
          pushOnly: false,
          encrypt: false,
          pollSeconds: 1.5,
          capabilities: { ...POSIX_CAPABILITIES, mtimeGranularityMs: 2000, forbiddenChars: ':?*<>|"\\' },
        },
        '9': { url: '/mnt/nine', id: ID.replace('2b', '4d'), pushOnly: true, encrypt: false },
      },
    };
    saveConfig(root, config);
    assert.deepEqual(loadConfig(root), config);
    assert.deepEqual(readdirSync(join(root, '.satchel')), ['config.toml'], 'no temporary file left');
  });

  it('reports a missing file', () => {
    rmSync(configFile(root), { force: true });
    assert.throws(
      () => loadConfig(root),
      (e: unknown) =>
        e instanceof SatchelError && e.code === 'config-invalid' && /file not found/.test(e.message),
    );
  });
  it('reports a TOML syntax error with line and column', () => {
    const error = assertInvalid('[case]\nname = "work"\nname = \n', /config\.toml:3:\d+: TOML syntax error/);
    assert.equal(error.data?.['line'], 3);
  });
  it('reports an unknown top-level key, listing the allowed ones', () => {
    assertInvalid('colour = "blue"\n', /: colour: unknown key \(allowed here: case, mirrors\)/);
  });
  it('reports an unknown mirror key with its full path', () => {
    assertInvalid(
      `${MIRROR}pol = 2\n`,
      /: mirrors\.stick\.pol: unknown key \(allowed here: url, id, push_only, poll/,
    );
  });
  it('reports an unknown capability key', () => {
    assertInvalid(
      `${MIRROR}[mirrors.stick.capabilities]\nfast = true\n`,
      /mirrors\.stick\.capabilities\.fast: unknown key/,
    );
  });
  it('reports a wrong type, naming what is allowed', () => {
    assertInvalid(`${MIRROR}poll = "often"\n`, /: mirrors\.stick\.poll: expected a number of seconds ≥ 1$/);
    assertInvalid(`${MIRROR}push_only = "yes"\n`, /: mirrors\.stick\.push_only: expected true or false$/);
    assertInvalid('[case]\nname = 3\n', /: case\.name: expected a string$/);
  });
  it('reports a bad value, naming what is allowed', () => {
    assertInvalid(`${MIRROR}poll = 0\n`, /: mirrors\.stick\.poll: expected a number of seconds ≥ 1$/);
    assertInvalid(
      `[mirrors.stick]\nurl = "relative/dir"\nid = "${ID}"\n`,
      /mirrors\.stick\.url: expected an absolute path/,
    );
    assertInvalid(`[mirrors.stick]\nurl = "/x"\nid = "nope"\n`, /mirrors\.stick\.id: expected the UUID/);
    assertInvalid('[case]\nname = ""\n', /case\.name: expected a non-empty name/);
  });
  it('reports a missing required key', () => {
    assertInvalid(`[mirrors.stick]\nid = "${ID}"\n`, /: mirrors\.stick\.url: missing; expected a string/);
  });
  it('reports a bad mirror name', () => {
    assertInvalid(
      `[mirrors."my stick"]\nurl = "/x"\nid = "${ID}"\n`,
      /: mirrors\.my stick: expected a mirror name of 1 to 64/,
    );
  });
  it('reports a bad capability value', () => {
    const caps = Object.entries({ ...POSIX_CAPABILITIES, mtimeGranularityMs: 0.5 })
      .map(([k, v]) => `${k} = ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`)
      .join('\n');
    assertInvalid(
      `${MIRROR}[mirrors.stick.capabilities]\n${caps}\n`,
      /mirrors\.stick\.capabilities\.mtimeGranularityMs: expected a number of milliseconds, a whole number ≥ 1/,
    );
  });
});
