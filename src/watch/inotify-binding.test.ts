/**
 * @module watch/inotify-binding.test
 * The addon against the real kernel: its constants equal the ones the pure code uses, events
 * arrive with names and cookies, errors carry Node's system-error shape, and a missing addon
 * is reported with the command that builds it. Fails (never skips) when the addon is not
 * built: run `node scripts/build-native.mjs` first.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as C from './inotify-constants.js';
import {
  loadInotifyBinding,
  loadInotifyBindingFrom,
  packageRoot,
  type InotifyBinding,
  type InotifyHandle,
} from './inotify-binding.js';

function binding(): InotifyBinding {
  const load = loadInotifyBinding();
  if (!load.ok) assert.fail(load.reason);
  return load.binding;
}

/** Collects events until `done` holds, failing after a generous timeout. */
function collect(
  b: InotifyBinding,
  act: (handle: InotifyHandle) => void,
  done: (events: C.RawInotifyEvent[]) => boolean,
): Promise<{ handle: InotifyHandle; events: C.RawInotifyEvent[] }> {
  return new Promise((resolve, reject) => {
    const events: C.RawInotifyEvent[] = [];
    const timer = setTimeout(() => {
      b.close(handle);
      reject(new Error(`events never completed: ${JSON.stringify(events)}`));
    }, 10_000);
    const handle = b.open((error, batch) => {
      if (error !== null) return reject(error);
      events.push(...batch);
      if (done(events)) {
        clearTimeout(timer);
        resolve({ handle, events });
      }
    });
    act(handle);
  });
}

describe('inotify addon', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'satchel-inotify-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is found from the package root', () => {
    assert.ok(loadInotifyBinding().ok, JSON.stringify(loadInotifyBinding()));
    assert.match(packageRoot(), /./);
  });

  it('says how to build it when it is missing', () => {
    const load = loadInotifyBindingFrom(dir);
    assert.equal(load.ok, false);
    assert.match(
      !load.ok ? load.reason : '',
      /not built .*inotify\.node is missing.*node scripts\/build-native\.mjs/,
    );
  });

  it('has the same constants as inotify-constants.ts', () => {
    const native = binding().constants;
    const pure = C as unknown as Record<string, unknown>;
    for (const [name, value] of Object.entries(native)) {
      if (name in pure) assert.equal(pure[name], value, name);
    }
    assert.equal(native.IN_CLOSE_WRITE, C.IN_CLOSE_WRITE);
    assert.equal(native.IN_Q_OVERFLOW, C.IN_Q_OVERFLOW);
  });

  it('reports create, write, close and a rename pair with one cookie', async () => {
    const b = binding();
    const sub = join(dir, 'events');
    mkdirSync(sub);
    const { handle, events } = await collect(
      b,
      (h) => {
        b.addWatch(h, sub, C.FOLDER_WATCH_MASK);
        writeFileSync(join(sub, 'a'), 'x');
        renameSync(join(sub, 'a'), join(sub, 'b'));
      },
      (evs) => evs.some((e) => (e.mask & C.IN_MOVED_TO) !== 0),
    );
    b.close(handle);
    const names = events.map((e) => `${C.describeMask(e.mask)} ${e.name}`);
    assert.deepEqual(names.slice(0, 3), ['CREATE a', 'MODIFY a', 'CLOSE_WRITE a']);
    const from = events.find((e) => (e.mask & C.IN_MOVED_FROM) !== 0)!;
    const to = events.find((e) => (e.mask & C.IN_MOVED_TO) !== 0)!;
    assert.equal(from.name, 'a');
    assert.equal(to.name, 'b');
    assert.ok(from.cookie !== 0 && from.cookie === to.cookie);
  });

  it('reports IN_IGNORED after rmWatch, and then EINVAL for the dead wd', async () => {
    const b = binding();
    const sub = join(dir, 'rm');
    mkdirSync(sub);
    let wd = -1;
    const { handle, events } = await collect(
      b,
      (h) => {
        wd = b.addWatch(h, sub, C.FOLDER_WATCH_MASK);
        b.rmWatch(h, wd);
      },
      (evs) => evs.some((e) => (e.mask & C.IN_IGNORED) !== 0),
    );
    assert.equal(events.at(-1)!.wd, wd);
    assert.throws(() => b.rmWatch(handle, wd), { code: 'EINVAL', syscall: 'inotify_rm_watch' });
    b.close(handle);
    b.close(handle); // idempotent
    assert.throws(() => b.addWatch(handle, sub, C.FOLDER_WATCH_MASK), /closed handle/);
  });

  it('throws Node-style errors from addWatch', () => {
    const b = binding();
    const handle = b.open(() => undefined);
    try {
      const missing = join(dir, 'missing');
      assert.throws(() => b.addWatch(handle, missing, C.FOLDER_WATCH_MASK), {
        code: 'ENOENT',
        errno: -2,
        syscall: 'inotify_add_watch',
        path: missing,
      });
      writeFileSync(join(dir, 'file'), '');
      assert.throws(() => b.addWatch(handle, join(dir, 'file'), C.FOLDER_WATCH_MASK), { code: 'ENOTDIR' });
      // Watching a folder twice gives the same descriptor.
      assert.equal(
        b.addWatch(handle, dir, C.FOLDER_WATCH_MASK),
        b.addWatch(handle, dir, C.FOLDER_WATCH_MASK),
      );
      assert.throws(() => b.addWatch({} as InotifyHandle, dir, 1), TypeError);
    } finally {
      b.close(handle);
    }
  });
});
