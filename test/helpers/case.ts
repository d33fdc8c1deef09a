/**
 * @module test/helpers/case
 * A case with mirrors, set up through the real CLI (`init`, `mirror add`), plus shorthands
 * for the commands the integration tests run most (`sync --json`, `status --json`, …).
 */
import { chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import {
  assertExit,
  describeRun,
  runSatchel,
  satchelJson,
  satchelOk,
  type ConflictsReport,
  type MirrorListReport,
  type RunOptions,
  type StatusReport,
  type SyncReport,
} from './cli.js';

/** A case made by {@link createCase}. */
export interface TestCase {
  /** The case folder. */
  readonly path: string;
  /** Mirror name → mirror folder. */
  readonly mirrors: Readonly<Record<string, string>>;
  /** Options passed to every run (user, environment). */
  readonly runOptions: RunOptions;
}

/**
 * Makes `<root>/case` a case (`satchel init`) and adds each mirror: a name maps to a folder
 * that is used as is, or (when `undefined`) to a fresh `<root>/<name>`.
 */
export async function createCase(
  root: string,
  mirrors: Readonly<Record<string, string | undefined>>,
  runOptions: RunOptions = {},
): Promise<TestCase> {
  const path = join(root, 'case');
  mkdirSync(path, { recursive: true });
  // Folders made here belong to the user satchel runs as, as they would in real use.
  const own = (dir: string): void => {
    if (runOptions.asUser) chownSync(dir, runOptions.asUser.uid, runOptions.asUser.gid);
  };
  own(path);
  await satchelOk(['init', path], runOptions);
  const folders: Record<string, string> = {};
  for (const [name, given] of Object.entries(mirrors)) {
    const folder = given ?? join(root, name);
    mkdirSync(folder, { recursive: true });
    own(folder);
    await satchelOk(['-C', path, 'mirror', 'add', name, folder], runOptions);
    folders[name] = folder;
  }
  return { path, mirrors: folders, runOptions };
}

/** `satchel -C <case> sync [args…] --json`, asserting exit `code` (default 0). */
export async function sync(c: TestCase, args: readonly string[] = [], code = 0): Promise<SyncReport> {
  const r = await runSatchel(['-C', c.path, 'sync', ...args, '--json'], c.runOptions);
  assertExit(r, code);
  const report = r.json<SyncReport>();
  assert.ok(Array.isArray(report.mirrors), `sync --json has no mirrors array: ${describeRun(r)}`);
  return report;
}

/** A sync that must change nothing anywhere: every mirror synced with in=0, out=0, no conflicts. */
export async function assertQuietSync(c: TestCase): Promise<void> {
  const report = await sync(c);
  for (const m of report.mirrors) {
    assert.deepEqual(
      { mirror: m.mirror, state: m.state, in: m.in, out: m.out, conflicts: m.conflicts.length },
      { mirror: m.mirror, state: 'synced', in: 0, out: 0, conflicts: 0 },
      `second sync was not a no-op: ${JSON.stringify(m)}`,
    );
  }
}

/** `satchel -C <case> status --json`. */
export function status(c: TestCase): Promise<StatusReport> {
  return satchelJson<StatusReport>(['-C', c.path, 'status'], c.runOptions);
}

/** `satchel -C <case> conflicts --json`. */
export function conflicts(c: TestCase): Promise<ConflictsReport> {
  return satchelJson<ConflictsReport>(['-C', c.path, 'conflicts'], c.runOptions);
}

/** `satchel -C <case> mirror list --json`. */
export function mirrorList(c: TestCase): Promise<MirrorListReport> {
  return satchelJson<MirrorListReport>(['-C', c.path, 'mirror', 'list'], c.runOptions);
}
