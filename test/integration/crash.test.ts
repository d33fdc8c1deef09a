/**
 * @module test/integration/crash
 * The SIGKILL test: `satchel sync` is killed at many points of real runs (a first copy of
 * 2,000 files, then syncs carrying edits, deletes and renames made on both sides), each kill
 * followed by another sync that is sometimes killed too, and by more edits in the case. After every round a clean sync must
 * leave the case and the mirror identical, with every file the model expects, no temporary
 * file anywhere, no conflict copy (nothing conflicted, so none may appear) and no case file
 * left read-only by an interrupted incoming change.
 *
 * Kill delays are random between a few ms and the measured length of a full sync (calibrated
 * first on a throw-away mirror). The seed is printed; set SATCHEL_CRASH_SEED to replay it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, renameSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { satchelOk, spawnSatchel } from '../helpers/cli.js';
import { assertQuietSync, createCase, mirrorList, sync, type TestCase } from '../helpers/case.js';
import { StateStore } from '../../src/state/state-store.js';
import { sleep } from '../helpers/process.js';
import { withTempDir } from '../helpers/temp.js';
import {
  assertTreesEqual,
  conflictCopies,
  readTree,
  satchelTempFiles,
  sha256,
  writeTree,
} from '../helpers/tree.js';

const FILE_COUNT = 2000;
const FOLDERS = 40;
/** Folders the case's mutations use; the rest are the mirror's, so no change ever conflicts. */
const CASE_FOLDERS = 30;
const MIN_KILLS = 20;
/** Kills aimed for when time allows, for a margin over MIN_KILLS. */
const TARGET_KILLS = 40;
/** Stop adding rounds after this long (the kill count is asserted either way). */
const BUDGET_MS = 150_000;

/** mulberry32: a small seeded PRNG, so a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Content of a file: varied sizes, mostly small, a few of 100 KB–1 MB; unique per `tag`. */
function makeContent(rand: () => number, tag: string): string {
  const r = rand();
  const size =
    r < 0.05 ? 0 : r < 0.85 ? Math.floor(rand() * 2_000) : r < 0.98 ? 10_000 + rand() * 90_000 : 1_000_000;
  const head = `${tag}\n`;
  return head + 'x'.repeat(Math.max(0, Math.floor(size) - head.length));
}

/** Folder `i`: some flat, some nested two deep. */
function folder(i: number): string {
  return i % 4 === 3 ? `d${i}/sub${i % 3}/deeper` : `d${i}`;
}

interface World {
  readonly c: TestCase;
  readonly mirror: string;
  /** Path → content every replica must hold after a clean sync. */
  readonly model: Map<string, string>;
  readonly rand: () => number;
  kills: number;
  round: number;
}

/** Runs `sync m` and SIGKILLs it after `delayMs`; returns whether it was still running. */
async function killedSync(w: World, delayMs: number): Promise<boolean> {
  const run = spawnSatchel(['-C', w.c.path, 'sync', 'm']);
  await sleep(delayMs);
  const hit = !run.hasExited();
  run.kill('SIGKILL');
  const r = await run.done;
  if (hit) w.kills++;
  else assert.equal(r.code, 0, `a sync that was not killed failed:\n${r.stderr}`);
  return hit;
}

/**
 * One round: kill, sometimes kill the next sync too, then a clean sync and every check.
 * `syncMs` is how long an uninterrupted sync of this round's work is expected to take; kills
 * land at random points up to it. Returns how long the clean sync took.
 */
async function killRound(w: World, syncMs: number, kills: number): Promise<number> {
  for (let i = 0; i < kills; i++) {
    await killedSync(w, 3 + w.rand() * syncMs);
    if (w.rand() < 0.4) await killedSync(w, 3 + w.rand() * syncMs * 0.5);
  }
  // The user goes on editing after the kills, also files the killed sync may have written onto
  // the mirror without recording them (no conflict may come of that).
  for (const p of pick(w, 15, (i) => i < CASE_FOLDERS)) {
    const content = makeContent(w.rand, `r${w.round} after the kills ${p}`);
    writeTree(w.c.path, { [p]: content });
    w.model.set(p, content);
  }
  const started = Date.now();
  const report = await sync(w.c, ['m']);
  const took = Date.now() - started;
  assert.equal(report.mirrors[0]?.state, 'synced', JSON.stringify(report));
  assert.deepEqual(report.mirrors[0]?.problems, [], 'a clean sync after kills reported problems');
  checkWorld(w);
  return took;
}

/** Every invariant of a finished sync, against the model. */
function checkWorld(w: World): void {
  const where = `round ${w.round}, after ${w.kills} kills`;
  assertTreesEqual(w.c.path, w.mirror);
  const tree = readTree(w.c.path);
  assert.deepEqual(conflictCopies(tree), [], `spurious conflict copies (${where})`);
  assert.deepEqual(satchelTempFiles(w.c.path), [], `temporary files in the case (${where})`);
  assert.deepEqual(satchelTempFiles(w.mirror), [], `temporary files on the mirror (${where})`);
  const files = new Map([...tree].filter(([, n]) => n.kind === 'file').map(([p, n]) => [p, n.content!]));
  const lost = [...w.model.keys()].filter((p) => !files.has(p)).slice(0, 10);
  const extra = [...files.keys()].filter((p) => !w.model.has(p)).slice(0, 10);
  assert.deepEqual({ lost, extra }, { lost: [], extra: [] }, `case differs from the model (${where})`);
  const wrong = [...w.model].filter(([p, content]) => !sameContent(files.get(p)!, content)).map(([p]) => p);
  assert.deepEqual(wrong.slice(0, 10), [], `files with the wrong content (${where})`);
  const readOnly = [...tree].filter(([, n]) => n.kind === 'file' && (n.mode & 0o200) === 0).map(([p]) => p);
  assert.deepEqual(readOnly.slice(0, 10), [], `case files left read-only (${where})`);
}

/** Whether `read` (from readTree: text under 4 KiB, else `sha256:<hex>`) is `expected` (ASCII). */
function sameContent(read: string, expected: string): boolean {
  return read === (expected.length < 4096 ? expected : `sha256:${sha256(expected)}`);
}

/** Picks `n` distinct model paths in the given folders. */
function pick(w: World, n: number, folders: (i: number) => boolean): string[] {
  const candidates = [...w.model.keys()].filter((p) => folders(Number(/^d(\d+)/.exec(p)![1])));
  const out = new Set<string>();
  while (out.size < Math.min(n, candidates.length))
    out.add(candidates[Math.floor(w.rand() * candidates.length)]!);
  return [...out];
}

/**
 * Edits, deletes, renames and creations: in the case (folders below CASE_FOLDERS, including one
 * whole-folder rename) and on the mirror (the other folders), recorded in the model.
 */
function mutate(w: World): void {
  const inCase = (i: number): boolean => i < CASE_FOLDERS;
  const onMirror = (i: number): boolean => i >= CASE_FOLDERS;
  const tag = `r${w.round}`;
  for (const [root, mine] of [
    [w.c.path, inCase],
    [w.mirror, onMirror],
  ] as const) {
    const scale = root === w.c.path ? 1 : 0.4;
    const [edits, deletes, renames] = [pick(w, 60 * scale, mine), [] as string[], [] as string[]];
    for (const p of edits) {
      const content = makeContent(w.rand, `${tag} edit ${p}`);
      writeTree(root, { [p]: content });
      w.model.set(p, content);
    }
    for (const p of pick(w, 40 * scale, mine).filter((x) => !edits.includes(x))) {
      rmSync(join(root, p));
      w.model.delete(p);
      deletes.push(p);
    }
    for (const p of pick(w, 30 * scale, mine).filter((x) => !edits.includes(x) && !deletes.includes(x))) {
      const to = p.replace(/([^/]+)$/, `${tag}-renamed-$1`);
      renameSync(join(root, p), join(root, to));
      w.model.set(to, w.model.get(p)!);
      w.model.delete(p);
      renames.push(p);
    }
    for (let i = 0; i < 40 * scale; i++) {
      const f = folder(Math.floor(w.rand() * FOLDERS));
      if (!mine(Number(/^d(\d+)/.exec(f)![1]))) continue;
      const p = `${f}/${tag}-new-${i}.txt`;
      const content = makeContent(w.rand, `${tag} new ${p}`);
      writeTree(root, { [p]: content });
      w.model.set(p, content);
    }
  }
  // A whole folder renamed in the case.
  const from = `d${w.round % CASE_FOLDERS}`;
  const to = `d${w.round % CASE_FOLDERS}x${w.round}`;
  renameSync(join(w.c.path, from), join(w.c.path, to));
  for (const [p, content] of [...w.model]) {
    if (p.startsWith(`${from}/`)) {
      w.model.delete(p);
      w.model.set(`${to}${p.slice(from.length)}`, content);
    }
  }
}

test('killed after a file was renamed onto the mirror but before it was recorded: a later edit is no conflict', async () => {
  await withTempDir('crash-intent', async (root) => {
    const c = await createCase(root, { m: undefined });
    writeTree(c.path, { 'notes.txt': 'v1\n' });
    await sync(c, ['m']);
    const id = (await mirrorList(c)).mirrors.find((m) => m.name === 'm')!.id;
    // What a sync killed in that moment leaves: the case's v2 renamed onto the mirror, the write's
    // intent recorded, the ancestor still at v1.
    writeTree(c.path, { 'notes.txt': 'v2\n' });
    const st = statSync(join(c.path, 'notes.txt'));
    copyFileSync(join(c.path, 'notes.txt'), join(c.mirrors.m!, 'notes.txt'));
    utimesSync(join(c.mirrors.m!, 'notes.txt'), st.atime, st.mtime);
    const state = StateStore.open(join(c.path, '.satchel', 'state.db'));
    state.recordIntents(id, [
      {
        side: 'mirror',
        path: 'notes.txt',
        entry: { kind: 'file', hash: sha256('v2\n'), size: 3, mtimeMs: st.mtimeMs, executable: false },
      },
    ]);
    state.close();
    // The user edits on; the next sync finds v2 on the mirror: that write happened.
    writeTree(c.path, { 'notes.txt': 'v3, edited after the kill\n' });
    const report = await sync(c, ['m']);
    assert.deepEqual(report.mirrors[0]?.conflicts, [], JSON.stringify(report));
    assert.equal(readFileSync(join(c.mirrors.m!, 'notes.txt'), 'utf8'), 'v3, edited after the kill\n');
    assert.deepEqual(conflictCopies(readTree(c.path)), []);
    await assertQuietSync(c);
  });
});

test('SIGKILL at any point of a sync loses nothing and leaves no debris', { timeout: 300_000 }, async () => {
  const seed = Number(process.env.SATCHEL_CRASH_SEED ?? Date.now() % 1_000_000);
  console.log(`crash test seed: ${seed} (SATCHEL_CRASH_SEED=${seed} replays it)`);
  const started = Date.now();
  await withTempDir('crash', async (root) => {
    const c = await createCase(root, { m: undefined, calibrate: undefined });
    const rand = prng(seed);
    const w: World = { c, mirror: c.mirrors.m!, model: new Map(), rand, kills: 0, round: 0 };
    const spec: Record<string, string> = {};
    for (let i = 0; i < FILE_COUNT; i++) {
      const p = `${folder(i % FOLDERS)}/f${i}.${['txt', 'md', 'bin', 'json'][i % 4]}`;
      spec[p] = makeContent(rand, `file ${i}`);
      w.model.set(p, spec[p]);
    }
    writeTree(c.path, spec);

    // Calibrate on a throw-away mirror: how long a full first copy takes here.
    const t0 = Date.now();
    await sync(c, ['calibrate']);
    const fullSyncMs = Date.now() - t0;
    await satchelOk(['-C', c.path, 'mirror', 'remove', 'calibrate']);
    console.log(`full sync of ${FILE_COUNT} files: ${fullSyncMs} ms`);

    // Round 0: the first copy, killed again and again.
    await killRound(w, fullSyncMs, 8);
    // Then rounds of changes on both sides. A change sync is shorter than the first copy: aim
    // the kills at the length of the previous round's clean sync (a fair estimate, with margin).
    let changeSyncMs = fullSyncMs;
    while (Date.now() - started < BUDGET_MS && (w.kills < TARGET_KILLS || w.round < 3)) {
      w.round++;
      mutate(w);
      const took = await killRound(w, changeSyncMs, 4);
      changeSyncMs = Math.min(fullSyncMs, Math.max(300, took * 1.5));
    }
    console.log(
      `${w.kills} kills hit a running sync; ${w.round} rounds of changes; ${Date.now() - started} ms`,
    );
    assert.ok(w.kills >= MIN_KILLS, `only ${w.kills} kills hit a running sync within the time budget`);
    await assertQuietSync(c);
  });
});
