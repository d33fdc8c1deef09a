/**
 * @module test/integration/briefcase
 * The briefcase, end to end (issue 4): the whole week played on one machine with two case
 * folders, `office/work` and `home/work` (each its own case; the same case name, so the home
 * case adopts the stick), a share (a plain local folder, the office's second mirror) and a real
 * stick image mounted at a different path on each "computer":
 *
 * - Monday, office: a case with files, a nested tree, an empty folder, a name FAT cannot hold
 *   and a real git repository; `mirror add stick … --search <media folder>`; sync; eject; unmount.
 * - Monday evening, home (another time zone): the home case adds the same stick (adopts the
 *   marker) and gets everything; edits, renames a folder, deletes files, commits to git; syncs;
 *   ejects; unmount. Meanwhile the office edits other files, one file home also edited
 *   (conflict), a file home deleted (the edit survives), and makes the same edit as home to one
 *   file (no conflict); a file home deleted and the office left alone is deleted everywhere.
 * - Tuesday, office: `satchel watch` runs; the stick is mounted at yet another path below the
 *   search folder; the daemon finds it by its marker, reconciles at once and logs
 *   `stick: N in, M out, K conflicts`; the office case, the share and the stick end up equal
 *   byte for byte; both git repositories are intact and agree; a second sync does nothing.
 * - Way 2: a computer without Satchel edits files directly on the stick; back at the office
 *   they arrive in the case and on the share.
 * - exFAT only: the stick yanked (FUSE driver SIGKILLed) while the daemon copies a large file,
 *   and a 16 MiB stick too small for a file (`no-space`), resumed once space is freed.
 *
 * exFAT goes through exfat-fuse on a loop device; FAT32 through the real kernel vfat driver
 * (guestmount; three mounts in all, ~15 s each). exfat-fuse 1.3 stores each entry's UTC offset,
 * so exFAT times read back the same in any zone; FAT stores zone-less local time, so the FAT32
 * run mounts with the vfat `time_offset` of each computer (New York in winter on Monday, New
 * York in summer on Tuesday — a daylight-saving change overnight — and Tokyo at home): every
 * file on the stick then shows a shifted mtime, and Satchel must neither re-copy nor conflict.
 */
import { after, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  mirrorReport,
  runSatchel,
  satchelJson,
  satchelOk,
  type MirrorInfo,
  type RunOptions,
} from '../helpers/cli.js';
import { assertQuietSync, status, sync, type TestCase } from '../helpers/case.js';
import { createExfatImage, mountExfat } from '../helpers/exfat.js';
import { createFat32Image, mountFat32 } from '../helpers/fat32.js';
import type { MountedImage } from '../helpers/image.js';
import { runTool } from '../helpers/process.js';
import { makeTempDir, removeTempDir } from '../helpers/temp.js';
import {
  assertTreesEqual,
  conflictCopies,
  contents,
  diffTrees,
  readTree,
  satchelTempFiles,
  sha256,
  writeTree,
  type Tree,
} from '../helpers/tree.js';
import { daemonEnv, readEvents, startWatch, stopAllWatches, stopWatch, waitUntil } from '../helpers/watch.js';
import {
  HOME,
  OFFICE_MONDAY,
  OFFICE_TUESDAY,
  assertGitFsck,
  assertSameReplica,
  isGitObject,
  expectedContents,
  git,
  gitLog,
  mirrorEvents,
  patternBytes,
  readStickTree,
  replicaDiff,
  sizeOf,
  tempFilesIn,
  waitForEvent,
  waitForNoDiffs,
  without,
  type ReplicaCompareOptions,
  type Zone,
} from '../helpers/briefcase.js';

// ---- the stick kinds ------------------------------------------------------------------------

/** How to make, mount and check one kind of stick, as a computer in `zone` mounts it. */
interface StickDriver {
  readonly label: string;
  /** The mtime granularity of the stick as Satchel sees it (ms). */
  readonly granularityMs: number;
  /** Whether mtimes read back the same on a computer in another zone (exFAT: yes; FAT: no). */
  readonly timesSurviveZones: boolean;
  create(image: string): void;
  mount(image: string, mnt: string, zone: Zone, workDir: string): Promise<MountedImage>;
  /** Checks the unmounted image without changing it. */
  readonly fsck: readonly [string, ...string[]];
}

const EXFAT_STICK: StickDriver = {
  label: 'exfat',
  granularityMs: 1000,
  timesSurviveZones: true,
  create: (image) => createExfatImage(image, 256),
  // exfat-fuse converts times with the driver's own zone: the computer's TZ.
  mount: (image, mnt, zone) => mountExfat(image, mnt, { env: { TZ: zone.tz } }),
  fsck: ['fsck.exfat', '-n'],
};

const FAT32_STICK: StickDriver = {
  label: 'fat32',
  granularityMs: 2000,
  timesSurviveZones: false,
  create: (image) => createFat32Image(image, 128),
  mount: (image, mnt, zone, workDir) =>
    mountFat32(image, mnt, workDir, { mountOptions: `time_offset=${zone.fatOffsetMinutes}` }),
  fsck: ['fsck.vfat', '-n'],
};

/** Runs the driver's fsck on the unmounted image. */
function fsck(driver: StickDriver, image: string): { clean: boolean; output: string } {
  const [command, ...args] = driver.fsck;
  const r = runTool(command, [...args, image], { check: false });
  return { clean: r.status === 0, output: `${r.stdout}${r.stderr}`.trim() };
}

// ---- the data of the week -------------------------------------------------------------------

const REPORT_V1 = 'Quarterly report\nfigures: 1, 2, 3\n';
const REPORT_HOME = 'Quarterly report\nfigures: 1, 2, 3, 4 (checked at home in the evening)\n';
const REPORT_OFFICE = 'Quarterly report\nfigures: 1, 2, 3 (office review)\n';
const SAME_V2 = 'edited identically on both computers, version two, a little longer\n';
const PLAN_OFFICE = 'Plan\n- Monday: start\n- Tuesday: continue (decided at the office)\n';
const HELLO_V1 = '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n';
const HELLO_V2 = '#include <stdio.h>\nint main(void) { puts("hello, world"); return 0; }\n';
const HELLO_HOME = '#include <stdio.h>\nint main(void) { puts("konnichiwa, world"); return 0; }\n';

/** The office case on Monday morning (besides `project/`, the git repository, and `inbox/`). */
function mondayFiles(): Record<string, string | Buffer> {
  return {
    'report.txt': REPORT_V1,
    'plan.txt': 'Plan\n- Monday: start\n',
    'old.txt': 'obsolete notes, nobody needs these any more\n',
    'office-only.txt': 'edited only at the office, v1\n',
    'same.txt': 'edited identically on both computers, v1\n',
    'notes/todo.md': '- buy milk\n',
    'notes/meeting.md': '# Meeting\n',
    'notes/q: what?.txt': 'a name FAT cannot hold as it is\n',
    'src/main.ts': "import { one } from './lib/util.js';\n",
    'src/lib/util.ts': 'export const one = 1;\n',
    'src/lib/deep/more/helper.ts': 'export const help = true;\n',
    'photos/2024/jan/a.bin': patternBytes('photo a', 200_000),
    'photos/2024/feb/b.bin': patternBytes('photo b', 150_000),
  };
}

/** Home's edits on Monday evening (besides renaming `src/lib`, deleting two files, git). */
const HOME_EDITS: Readonly<Record<string, string>> = {
  'report.txt': REPORT_HOME,
  'notes/todo.md': '- buy milk\n- call the plumber (written at home)\n',
  'same.txt': SAME_V2,
  'home-ideas.md': '# Ideas from home\n- take the stick everywhere\n',
};

/** The office's edits while the stick is at home. */
const OFFICE_EDITS: Readonly<Record<string, string>> = {
  'report.txt': REPORT_OFFICE,
  'plan.txt': PLAN_OFFICE,
  'office-only.txt': 'edited only at the office, v2 (Monday evening)\n',
  'same.txt': SAME_V2,
  'office-new.txt': 'written at the office on Monday evening\n',
};

/** Edits made directly on the stick by a computer without Satchel (way 2). */
const STICK_EDITS: Readonly<Record<string, string>> = {
  'notes/meeting.md': '# Meeting\nedited on the stick, on a computer without Satchel\n',
  'from-stick/idea.txt': 'a new file, written straight onto the stick\n',
};
/** Deleted directly on the stick (way 2). */
const STICK_DELETED = 'photos/2024/feb/b.bin';

/** Files neither computer touches all week (besides way 2): never rewritten anywhere. */
const UNTOUCHED = ['photos/2024/jan/a.bin', 'src/main.ts', 'notes/q: what?.txt', 'project/README.md'];

/** What the office case holds (outside `.git`, `report.txt` and its conflict copy) on Tuesday. */
function expectedTuesday(withStickEdits: boolean): Record<string, string> {
  const files: Record<string, string | Buffer> = { ...mondayFiles() };
  delete files['report.txt'];
  delete files['old.txt'];
  for (const p of Object.keys(files)) {
    if (p.startsWith('src/lib/')) {
      files[p.replace('src/lib/', 'src/library/')] = files[p]!;
      delete files[p];
    }
  }
  Object.assign(files, HOME_EDITS, OFFICE_EDITS);
  delete files['report.txt'];
  files['project/README.md'] = '# Project\n';
  files['project/hello.c'] = HELLO_HOME;
  if (!withStickEdits) return expectedContents(files, ['inbox']);
  Object.assign(files, STICK_EDITS);
  delete files[STICK_DELETED];
  // Only the file was deleted on the stick: its folder stays, empty.
  return expectedContents(files, ['inbox', 'photos/2024/feb']);
}

const isGitInternal = (p: string): boolean => p === 'project/.git' || p.startsWith('project/.git/');
const CONFLICT_COPY_OF_REPORT = /^report\.conflict-\d{8}-\d{6}-[^/]+\.txt$/;

// ---- the two computers ----------------------------------------------------------------------

/** How satchel runs on a computer in `zone`. */
function runOn(zone: Zone): RunOptions {
  return { env: { TZ: zone.tz } };
}

/** `satchel init <dir>` on a computer; the case is named after the folder (`work`). */
async function initCase(dir: string, zone: Zone): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await satchelOk(['init', dir], runOn(zone));
}

/** `satchel -C <case> mirror add <name> <url> [args…] --json`: the mirror's entry. */
function addMirror(
  casePath: string,
  zone: Zone,
  name: string,
  url: string,
  args: readonly string[] = [],
): Promise<MirrorInfo> {
  return satchelJson<MirrorInfo>(['-C', casePath, 'mirror', 'add', name, url, ...args], runOn(zone));
}

/** What `satchel eject --json` prints (CLI contract). */
interface EjectJson {
  readonly mirror: string;
  readonly state: string;
  readonly in: number;
  readonly out: number;
  readonly conflicts: number;
}

/** `satchel eject <mirror> --json`, asserting exit 0 and the `ejected` state. */
async function eject(c: TestCase, mirror: string): Promise<EjectJson> {
  const r = await satchelJson<EjectJson>(['-C', c.path, 'eject', mirror], c.runOptions);
  assert.equal(r.mirror, mirror, JSON.stringify(r));
  assert.equal(r.state, 'ejected', JSON.stringify(r));
  for (const k of ['in', 'out', 'conflicts'] as const)
    assert.equal(typeof r[k], 'number', `eject --json has no number '${k}': ${JSON.stringify(r)}`);
  return r;
}

/** `satchel eject <mirror>` in words: exit 0 and "<mirror>: safe to unplug". */
async function ejectInWords(c: TestCase, mirror: string): Promise<void> {
  const r = await satchelOk(['-C', c.path, 'eject', mirror], c.runOptions);
  assert.match(r.stdout, new RegExp(`^${mirror}: safe to unplug$`, 'm'), r.stdout);
}

/**
 * Where replicas may hold different mtimes for the same bytes: git's objects (git re-stamps an
 * object it would write again) and `same.txt`, which both computers changed identically (no
 * conflict; each side keeps its own time).
 */
const timesMayDiffer = (p: string): boolean => isGitObject(p) || p === 'same.txt';

/** How a stick tree is compared with a case tree on the computer that wrote it. */
function stickCompare(driver: StickDriver, timesComparable: boolean): ReplicaCompareOptions {
  return {
    mtimeToleranceMs: timesComparable ? driver.granularityMs + 1 : false,
    execBit: false,
    timesMayDiffer,
  };
}

/** Fails with the differences unless the stick (names decoded) holds `casePath`'s tree. */
function assertStickHolds(stickDir: string, casePath: string, options: ReplicaCompareOptions): void {
  assertSameReplica(readTree(casePath), readStickTree(stickDir), options);
  assert.deepEqual(satchelTempFiles(stickDir), [], `temporary files left on the stick ${stickDir}`);
}

/** Differences of case vs share vs stick (decoded), and temporary files; [] when converged. */
function replicaDiffs(office: TestCase, stickDir: string, stickOptions: ReplicaCompareOptions): string[] {
  const caseTree = readTree(office.path);
  return [
    ...replicaDiff(caseTree, readTree(office.mirrors.share!), { timesMayDiffer }).map((d) => `share: ${d}`),
    ...replicaDiff(caseTree, readStickTree(stickDir), stickOptions).map((d) => `stick: ${d}`),
    ...satchelTempFiles(office.path).map((p) => `case: temporary file ${p}`),
    ...satchelTempFiles(office.mirrors.share!).map((p) => `share: temporary file ${p}`),
    ...satchelTempFiles(stickDir).map((p) => `stick: temporary file ${p}`),
  ];
}

/** The `(ino, mtime)` of `paths` in `tree`, to prove a file was not rewritten. */
function identities(tree: Tree, paths: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    paths.map((p) => [p, tree.has(p) ? `${tree.get(p)!.ino}@${tree.get(p)!.mtimeMs}` : 'missing']),
  );
}

// ---- the week -------------------------------------------------------------------------------

/** Everything one run of the week shares between its steps. */
class Week {
  readonly root: string;
  readonly image: string;
  /** Mounts still up: stopped (by their PIDs) in `cleanup` whatever happens. */
  readonly #mounts = new Set<MountedImage>();
  office!: TestCase;
  home!: TestCase;
  stickId = '';
  /** The mounted stick now (undefined while it is "in a pocket"). */
  stick: MountedImage | undefined;
  /** Steps that completed, so a later step can say what it is missing. */
  readonly done = new Set<string>();

  constructor(
    readonly driver: StickDriver,
    label: string,
  ) {
    this.root = makeTempDir(label);
    this.image = join(this.root, 'stick.img');
  }

  /** Office paths. */
  get officeCase(): string {
    return join(this.root, 'office', 'work');
  }
  get share(): string {
    return join(this.root, 'office', 'share');
  }
  /** The folder the office's stick mirror searches (the parent of its mount points). */
  get media(): string {
    return join(this.root, 'office', 'media', 'me');
  }

  async mount(mnt: string, zone: Zone): Promise<MountedImage> {
    assert.equal(this.stick, undefined, 'the stick is already mounted');
    const m = await this.driver.mount(this.image, mnt, zone, this.root);
    this.#mounts.add(m);
    this.stick = m;
    return m;
  }

  async unmount(): Promise<void> {
    const m = this.stick;
    if (!m) return;
    this.stick = undefined;
    await m.stop();
    this.#mounts.delete(m);
  }

  /** The stick's copy of the case, where it is mounted now. */
  get stickDir(): string {
    assert.ok(this.stick, 'the stick is not mounted');
    return join(this.stick.mnt, 'work');
  }

  require(...steps: string[]): void {
    for (const s of steps) assert.ok(this.done.has(s), `an earlier step failed: "${s}" did not complete`);
  }

  async cleanup(): Promise<void> {
    await stopAllWatches();
    for (const m of this.#mounts) {
      try {
        await m.stop();
      } catch {
        // Reported by the step that failed; keep releasing the rest.
      }
    }
    this.#mounts.clear();
    removeTempDir(this.root);
  }
}

/** Monday at the office: the case, its git repository, the share and the stick; sync; eject. */
async function mondayOffice(w: Week): Promise<void> {
  const zone = OFFICE_MONDAY;
  w.driver.create(w.image);
  const m = await w.mount(join(w.root, 'office', 'mnt-monday'), zone);
  mkdirSync(join(m.mnt, 'work'));
  mkdirSync(w.media, { recursive: true });
  mkdirSync(w.share, { recursive: true });

  await initCase(w.officeCase, zone);
  writeTree(w.officeCase, { ...mondayFiles(), inbox: { dir: true } });
  const project = join(w.officeCase, 'project');
  mkdirSync(project);
  git(project, ['init', '--template=', '-q']);
  writeTree(project, { 'README.md': '# Project\n', 'hello.c': HELLO_V1 });
  git(project, ['add', '-A']);
  git(project, ['commit', '-q', '-m', 'first commit']);
  writeTree(project, { 'hello.c': HELLO_V2 });
  git(project, ['commit', '-q', '-a', '-m', 'second commit: greet the world']);

  await addMirror(w.officeCase, zone, 'share', w.share);
  const stick = await addMirror(w.officeCase, zone, 'stick', w.stickDir, ['--search', w.media]);
  w.stickId = stick.id;
  w.office = {
    path: w.officeCase,
    mirrors: { share: w.share, stick: w.stickDir },
    runOptions: runOn(zone),
  };

  const first = await sync(w.office);
  for (const name of ['share', 'stick']) {
    const r = mirrorReport(first, name);
    assert.equal(r.state, 'synced', JSON.stringify(r));
    assert.ok(r.out > 0, `nothing went out to ${name}: ${JSON.stringify(r)}`);
    assert.deepEqual(r.problems, [], `problems on ${name}: ${JSON.stringify(r.problems)}`);
  }
  await eject(w.office, 'stick');
  assertSameReplica(w.officeCase, w.share);
  assertStickHolds(w.stickDir, w.officeCase, stickCompare(w.driver, true));
  await w.unmount();

  // Unplugged: eject has nothing to eject; a sync leaves the stick alone.
  const r = await runSatchel(['-C', w.officeCase, 'eject', 'stick'], w.office.runOptions);
  assert.equal(r.code, 1, `eject of an absent stick must fail: ${r.stdout}${r.stderr}`);
  assert.equal(mirrorReport(await sync(w.office), 'stick').state, 'absent');
  w.done.add('monday');
}

/**
 * Monday evening at home (way 1): a case of the same name adopts the stick, gets everything,
 * and is worked on. `stickEditsAfter` then edits the stick directly (way 2) before unmounting.
 */
async function mondayHome(w: Week, stickEditsAfter: boolean): Promise<void> {
  w.require('monday');
  const zone = HOME;
  const homeCase = join(w.root, 'home', 'work');
  await w.mount(join(w.root, 'home', 'mnt', 'stick'), zone);
  await initCase(homeCase, zone);
  const adopted = await addMirror(homeCase, zone, 'stick', w.stickDir);
  assert.equal(adopted.id, w.stickId, 'the home case did not adopt the office stick marker');
  w.home = { path: homeCase, mirrors: { stick: w.stickDir }, runOptions: runOn(zone) };

  const first = mirrorReport(await sync(w.home), 'stick');
  assert.equal(first.state, 'synced', JSON.stringify(first));
  assert.ok(first.in > 0, JSON.stringify(first));
  assert.deepEqual(first.conflicts, []);
  assert.deepEqual(first.problems, []);
  // Home has everything the office had (FAT shows other times here: another zone).
  const sameTimes = w.driver.timesSurviveZones;
  assertSameReplica(w.officeCase, homeCase, {
    mtimeToleranceMs: sameTimes ? w.driver.granularityMs + 1 : false,
    execBit: false,
  });
  const project = join(homeCase, 'project');
  assert.deepEqual(gitLog(project), gitLog(join(w.officeCase, 'project')));
  assertGitFsck(project);

  // Evening work.
  writeTree(homeCase, HOME_EDITS);
  renameSync(join(homeCase, 'src', 'lib'), join(homeCase, 'src', 'library'));
  rmSync(join(homeCase, 'plan.txt'));
  rmSync(join(homeCase, 'old.txt'));
  writeFileSync(join(project, 'hello.c'), HELLO_HOME);
  git(project, ['commit', '-q', '-a', '-m', 'home: greet in Japanese']);
  const second = mirrorReport(await sync(w.home), 'stick');
  assert.equal(second.state, 'synced', JSON.stringify(second));
  assert.ok(second.out > 0, JSON.stringify(second));
  assert.deepEqual(second.conflicts, []);
  assertStickHolds(w.stickDir, homeCase, stickCompare(w.driver, true));
  await ejectInWords(w.home, 'stick');

  if (stickEditsAfter) editStickDirectly(w.stickDir);
  await w.unmount();
  w.done.add('home');
}

/** Way 2: plain file-system writes on the mounted stick, as a computer without Satchel makes them. */
function editStickDirectly(stickDir: string): void {
  for (const [p, content] of Object.entries(STICK_EDITS)) {
    mkdirSync(join(stickDir, p, '..'), { recursive: true });
    writeFileSync(join(stickDir, p), content);
  }
  rmSync(join(stickDir, STICK_DELETED));
}

/** Monday evening at the office, the stick away: edits reach the share only. */
async function mondayEveningOffice(w: Week): Promise<void> {
  w.require('monday');
  writeTree(w.officeCase, OFFICE_EDITS);
  const r = await sync(w.office);
  assert.equal(mirrorReport(r, 'stick').state, 'absent', JSON.stringify(r));
  assert.equal(mirrorReport(r, 'share').state, 'synced', JSON.stringify(r));
  assertSameReplica(w.officeCase, w.share);
  w.done.add('office-evening');
}

/**
 * Tuesday at the office: `satchel watch` runs; the stick is mounted at another path below the
 * search folder; the daemon finds it, reconciles, and everything converges.
 */
async function tuesdayOffice(t: TestContext, w: Week, withStickEdits: boolean): Promise<void> {
  w.require('monday', 'home', 'office-evening');
  const zone = OFFICE_TUESDAY;
  w.office = { ...w.office, runOptions: runOn(zone) };
  const caseBefore = readTree(w.officeCase);
  const shareBefore = readTree(w.share);

  const daemon = await startWatch(w.office, { env: daemonEnv({ TZ: zone.tz }), startTimeoutMs: 120_000 });
  const since = readEvents(w.officeCase).length;
  await w.mount(join(w.media, 'STICK'), zone);
  const mountedAt = Date.now();
  const present = await waitForEvent(
    w.officeCase,
    'the daemon to find the stick (a `present` event)',
    (e) => e.mirror === 'stick' && e.event === 'present',
    { since, timeoutMs: 120_000, abortIf: () => (daemon.exited() ? 'the daemon exited' : undefined) },
  );
  t.diagnostic(`stick noticed and reconciled ${Date.parse(present.time) - mountedAt} ms after the mount`);
  for (const k of ['in', 'out', 'conflicts'] as const)
    assert.equal(
      typeof present[k],
      'number',
      `the present event has no number '${k}': ${JSON.stringify(present)}`,
    );
  assert.ok((present.in as number) > 0, `nothing came in: ${JSON.stringify(present)}`);
  assert.ok((present.out as number) > 0, `nothing went out: ${JSON.stringify(present)}`);
  assert.equal(present.conflicts, 1, `one conflict (report.txt) expected: ${JSON.stringify(present)}`);

  // The home edits reach the case, the share and the stick; the office edits the stick.
  const stickOptions = stickCompare(w.driver, w.driver.timesSurviveZones);
  await waitForNoDiffs('the case, the share and the stick to converge', () =>
    replicaDiffs(w.office, w.stickDir, stickOptions),
  );
  const officeTree = readTree(w.officeCase);
  const copies = conflictCopies(officeTree);
  assert.equal(copies.length, 1, `exactly one conflict copy expected: ${copies.join(', ')}`);
  const copy = copies[0]!;
  assert.match(copy, CONFLICT_COPY_OF_REPORT);
  assert.deepEqual(
    [officeTree.get('report.txt')?.content, officeTree.get(copy)?.content].sort(),
    [REPORT_HOME, REPORT_OFFICE].sort(),
    'both versions of report.txt are kept',
  );
  assert.deepEqual(
    contents(without(officeTree, (p) => isGitInternal(p) || p === 'report.txt' || p === copy)),
    expectedTuesday(withStickEdits),
  );
  assertSameReplica(w.officeCase, w.share, { timesMayDiffer });
  assertStickHolds(w.stickDir, w.officeCase, stickOptions);

  if (!w.driver.timesSurviveZones) {
    // The premise of the FAT run: after the change of offset every time on the stick reads an
    // hour off; a file nobody touched still does (Satchel neither re-copied nor re-stamped it).
    const shiftMs = (OFFICE_MONDAY.fatOffsetMinutes - OFFICE_TUESDAY.fatOffsetMinutes) * 60_000;
    const stickTree = readStickTree(w.stickDir);
    for (const p of UNTOUCHED) {
      const off = stickTree.get(p)!.mtimeMs - officeTree.get(p)!.mtimeMs;
      assert.ok(
        Math.abs(off - shiftMs) <= w.driver.granularityMs + 1,
        `${p} on the stick is ${off} ms off the case, not the ${shiftMs} ms of the offset change`,
      );
    }
  }

  // Files nobody touched were not rewritten in the case or on the share (no re-copy from the
  // stick's shifted times).
  assert.deepEqual(
    identities(officeTree, UNTOUCHED),
    identities(caseBefore, UNTOUCHED),
    'rewritten in the case',
  );
  assert.deepEqual(
    identities(readTree(w.share), UNTOUCHED),
    identities(shareBefore, UNTOUCHED),
    'rewritten on the share',
  );

  // The repository came back intact and agrees with home's.
  const project = join(w.officeCase, 'project');
  assert.deepEqual(gitLog(project), gitLog(join(w.home.path, 'project')));
  assert.equal(gitLog(project).length, 3);
  assertGitFsck(project);

  // Eject through the running daemon: from then on the daemon leaves the stick alone (a save
  // right after must not be half-written when it is pulled); then stop it.
  await eject(w.office, 'stick');
  writeFileSync(join(w.officeCase, 'after-eject.txt'), 'saved after eject\n');
  await waitUntil('after-eject.txt on the share', () => existsSync(join(w.share, 'after-eject.txt')));
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.equal(existsSync(join(w.stickDir, 'after-eject.txt')), false, 'written to an ejected stick');
  const ejectedStatus = (await status(w.office)).mirrors.find((m) => m.name === 'stick')!;
  assert.equal(ejectedStatus.state, 'absent', JSON.stringify(ejectedStatus));
  assert.match(ejectedStatus.message ?? '', /ejected: safe to unplug/);
  // Ejecting again (to be sure) says so, and succeeds.
  const again = await satchelOk(['-C', w.officeCase, 'eject', 'stick'], w.office.runOptions);
  assert.match(again.stdout, /^stick: ejected already, nothing changed since\nstick: safe to unplug$/m);
  assert.equal((await eject(w.office, 'stick')).in, 0);
  const { result, inTime } = await stopWatch(daemon, 'SIGTERM', 60_000);
  assert.ok(inTime && result.code === 0, `the daemon did not stop cleanly: ${result.code} ${result.stderr}`);
  assert.match(result.stderr, /^stick: .*\b\d+ in, \d+ out, 1 conflicts?\b/m, result.stderr);

  // The next sync takes the save there; a second one does nothing (no re-copy from time zones
  // or daylight saving).
  assert.equal(mirrorReport(await sync(w.office), 'stick').out, 1);
  // (Gone again, so that the rest of the week sees the trees it expects.)
  rmSync(join(w.officeCase, 'after-eject.txt'));
  assert.equal(mirrorReport(await sync(w.office), 'stick').out, 1);
  await assertQuietSync(w.office);
  assertGitFsck(project);
  w.done.add('tuesday');
}

// ---- exFAT: the whole week, way 2, a yank, a full stick -------------------------------------

describe('briefcase on an exFAT stick (exfat-fuse)', { timeout: 600_000 }, () => {
  const w = new Week(EXFAT_STICK, 'briefcase-exfat');
  after(() => w.cleanup());

  test('Monday office → Monday evening home (own case) → Tuesday office with watch', async (t) => {
    await mondayOffice(w);
    await mondayHome(w, false);
    await mondayEveningOffice(w);
    await tuesdayOffice(t, w, false);
  });

  test('way 2: edits made on the stick by a computer without Satchel arrive at the office', async () => {
    w.require('tuesday');
    await w.unmount();
    // The other computer: no Satchel, its own mount point and zone.
    await w.mount(join(w.root, 'friend', 'usb'), HOME);
    editStickDirectly(w.stickDir);
    await w.unmount();

    await w.mount(join(w.media, 'USB DISK'), OFFICE_TUESDAY);
    const r = mirrorReport(await sync(w.office), 'stick');
    assert.equal(r.state, 'synced', JSON.stringify(r));
    assert.ok(r.in >= 3, `the three stick edits came in: ${JSON.stringify(r)}`);
    assert.deepEqual(r.conflicts, []);
    for (const [p, content] of Object.entries(STICK_EDITS)) {
      assert.equal(readFileSync(join(w.officeCase, p), 'utf8'), content, p);
      assert.equal(readFileSync(join(w.share, p), 'utf8'), content, `share: ${p}`);
    }
    assert.equal(
      sizeOf(join(w.officeCase, STICK_DELETED)),
      undefined,
      'deleted on the stick, kept in the case',
    );
    assert.equal(sizeOf(join(w.share, STICK_DELETED)), undefined, 'deleted on the stick, kept on the share');
    const view = readTree(w.officeCase);
    const copy = conflictCopies(view)[0] ?? '';
    assert.deepEqual(
      contents(without(view, (p) => isGitInternal(p) || p === 'report.txt' || p === copy)),
      expectedTuesday(true),
    );
    assertSameReplica(w.officeCase, w.share, { timesMayDiffer });
    assertStickHolds(w.stickDir, w.officeCase, stickCompare(w.driver, true));
    await assertQuietSync(w.office);
    w.done.add('way2');
  });

  test('yank: the stick pulled while the daemon copies a large file; replugged, it converges', async (t) => {
    w.require('way2');
    const stickMnt = w.stick!.mnt;
    const bigRel = 'big/video.bin';
    const big = patternBytes('a large video', 96 * 1024 * 1024);
    const bigHash = sha256(big);
    const daemon = await startWatch(w.office, { env: daemonEnv({ TZ: OFFICE_TUESDAY.tz }) });
    const since = readEvents(w.officeCase).length;

    // The case as it was, read before the large file arrives: hashing 96 MiB takes longer than
    // the daemon needs to start the copy.
    const caseBefore = readTree(w.officeCase);
    writeTree(w.officeCase, { [bigRel]: big });
    const bigWritten = statSync(join(w.officeCase, bigRel));
    const stickBig = join(w.stickDir, bigRel);
    // Pull it once the copy is under way: a temporary file on the stick has some of the data. It
    // is staged in the target's folder, or in the nearest one that exists (the root) when that
    // folder is created in the same batch.
    const stagingFolders = [join(w.stickDir, 'big'), w.stickDir];
    const staged = (): { name: string; size: number }[] => stagingFolders.flatMap((d) => tempFilesIn(d));
    await waitUntil(
      'the daemon to start copying the large file to the stick',
      () => staged().some((f) => f.size >= 4 * 1024 * 1024),
      {
        timeoutMs: 120_000,
        intervalMs: 5,
        abortIf: () =>
          sizeOf(stickBig) === big.length
            ? 'the copy finished before the stick could be pulled'
            : daemon.exited()
              ? 'the daemon exited'
              : undefined,
      },
    );
    const stick = w.stick as MountedImage & { yank(): Promise<void> };
    await stick.yank();

    await waitForEvent(
      w.officeCase,
      'the daemon to mark the pulled stick absent',
      (e) => e.mirror === 'stick' && e.event === 'absent',
      {
        since,
        timeoutMs: 60_000,
      },
    );
    // Give an error storm the chance to happen, then count.
    await new Promise((r) => setTimeout(r, 5_000));
    const afterYank = mirrorEvents(w.officeCase, 'stick', since);
    t.diagnostic(
      `stick events since the large file was written: ${afterYank.map((e) => e.event).join(', ')}`,
    );
    assert.equal(afterYank.filter((e) => e.event === 'absent').length, 1, 'absent is logged once');
    assert.ok(afterYank.length <= 6, `an error storm: ${JSON.stringify(afterYank)}`);

    // The case is untouched; the share (another mirror) still gets the file.
    const caseNow = readTree(w.officeCase);
    const isBig = (p: string): boolean => p === 'big' || p.startsWith('big/');
    assert.deepEqual(diffTrees(caseBefore, without(caseNow, isBig)), [], 'the yank changed the case');
    const bigNow = caseNow.get(bigRel);
    assert.deepEqual(
      [bigNow?.hash, bigNow?.ino, bigNow?.mtimeMs],
      [bigHash, bigWritten.ino, bigWritten.mtimeMs],
      'the yank changed the large file in the case',
    );
    await waitUntil('the share to get the large file', () => sizeOf(join(w.share, bigRel)) === big.length, {
      timeoutMs: 120_000,
      intervalMs: 200,
    });
    assert.equal(sha256(readFileSync(join(w.share, bigRel))), bigHash);

    // Unplugged for real; fsck (repair if the yank left it dirty); look at what the stick holds.
    await w.unmount();
    const check = fsck(w.driver, w.image);
    if (!check.clean) {
      t.diagnostic(`fsck after the yank (repairing):\n${check.output}`);
      runTool('fsck.exfat', ['-y', w.image], { check: false });
    }
    await w.mount(join(w.root, 'inspect'), OFFICE_TUESDAY);
    const onStick = sizeOf(stickBig);
    assert.ok(
      onStick === undefined || (onStick === big.length && sha256(readFileSync(stickBig)) === bigHash),
      `a partial file under its final name on the stick: ${onStick} of ${big.length} bytes`,
    );
    t.diagnostic(
      `left on the stick by the yank: ${
        staged()
          .map((f) => `${f.name} (${f.size})`)
          .join(', ') || 'nothing'
      }`,
    );
    await w.unmount();

    // Plugged in again below the search folder: the daemon finds it and finishes the copy.
    const replug = readEvents(w.officeCase).length;
    await w.mount(stickMnt, OFFICE_TUESDAY);
    await waitForEvent(
      w.officeCase,
      'the daemon to find the stick again',
      (e) => e.mirror === 'stick' && e.event === 'present',
      {
        since: replug,
        timeoutMs: 120_000,
      },
    );
    const stickOptions = stickCompare(w.driver, true);
    await waitForNoDiffs(
      'the stick to converge after the yank',
      () => replicaDiffs(w.office, w.stickDir, stickOptions),
      180_000,
    );
    assert.equal(sha256(readFileSync(stickBig)), bigHash);
    await eject(w.office, 'stick');
    const { result } = await stopWatch(daemon, 'SIGTERM', 60_000);
    assert.equal(result.code, 0, result.stderr);
    await assertQuietSync(w.office);
    w.done.add('yank');
  });

  test('the stick is fsck-clean after the week', async () => {
    w.require('yank');
    await w.unmount();
    const check = fsck(w.driver, w.image);
    assert.ok(check.clean, check.output);
  });
});

describe('briefcase: a full stick', { timeout: 300_000 }, () => {
  /** A case with a share and a 16 MiB exFAT stick holding a 9 MiB filler; `fn` does the rest. */
  async function withFullStick(
    label: string,
    fn: (c: TestCase, stickDir: string) => Promise<void>,
  ): Promise<void> {
    const root = makeTempDir(label);
    const image = join(root, 'small.img');
    let m: MountedImage | undefined;
    try {
      createExfatImage(image, 16);
      m = await mountExfat(image, join(root, 'mnt'), { env: { TZ: OFFICE_MONDAY.tz } });
      const stickDir = join(m.mnt, 'work');
      mkdirSync(stickDir);
      const casePath = join(root, 'office', 'work');
      const share = join(root, 'office', 'share');
      mkdirSync(share, { recursive: true });
      await initCase(casePath, OFFICE_MONDAY);
      await addMirror(casePath, OFFICE_MONDAY, 'share', share);
      await addMirror(casePath, OFFICE_MONDAY, 'stick', stickDir);
      const c: TestCase = {
        path: casePath,
        mirrors: { share, stick: stickDir },
        runOptions: runOn(OFFICE_MONDAY),
      };
      writeTree(casePath, {
        'notes.txt': 'small notes\n',
        'deep/er/file.txt': 'small too\n',
        'filler.bin': patternBytes('filler', 9 * 1024 * 1024),
      });
      const first = await sync(c);
      assert.deepEqual(first.mirrors.map((r) => [r.mirror, r.state, r.problems.length]).sort(), [
        ['share', 'synced', 0],
        ['stick', 'synced', 0],
      ]);
      await fn(c, stickDir);
      await m.stop();
      const check = fsck(EXFAT_STICK, image);
      assert.ok(check.clean, check.output);
    } finally {
      await stopAllWatches();
      await m?.stop();
      removeTempDir(root);
    }
  }

  const BIG = patternBytes('too big for the stick', 9 * 1024 * 1024);

  test('no-space names the file; the share gets everything; freed space, the next sync converges', async (t) => {
    await withFullStick('briefcase-full', async (c, stickDir) => {
      writeTree(c.path, { 'big.bin': BIG, 'after-big.txt': 'a small file beside the big one\n' });
      const r = await sync(c);
      const stick = mirrorReport(r, 'stick');
      const noSpace = stick.problems.filter((p) => p.code === 'no-space');
      assert.deepEqual(
        noSpace.map((p) => p.path),
        ['big.bin'],
        JSON.stringify(stick),
      );
      assert.match(noSpace[0]!.message, /big\.bin/);
      t.diagnostic(`no-space message: ${noSpace[0]!.message}`);
      assert.equal(mirrorReport(r, 'share').state, 'synced');
      assertTreesEqual(c.path, c.mirrors.share!);
      assert.equal(sizeOf(join(stickDir, 'big.bin')), undefined, 'a partial big.bin under its final name');
      assert.equal(
        readFileSync(join(stickDir, 'after-big.txt'), 'utf8'),
        'a small file beside the big one\n',
      );
      assert.deepEqual(satchelTempFiles(stickDir), [], 'temporary files left on the full stick');

      // Space freed on the stick itself (the user deletes the filler there).
      rmSync(join(stickDir, 'filler.bin'));
      const again = await sync(c);
      const s2 = mirrorReport(again, 'stick');
      assert.deepEqual(s2.problems, [], JSON.stringify(s2));
      assert.equal(
        sizeOf(join(c.path, 'filler.bin')),
        undefined,
        'deleted on the stick, so deleted in the case',
      );
      assertTreesEqual(c.path, c.mirrors.share!);
      assertStickHolds(stickDir, c.path, stickCompare(EXFAT_STICK, true));
      await assertQuietSync(c);
    });
  });

  test('the running daemon resumes by itself once space is freed on the stick', async (t) => {
    await withFullStick('briefcase-full-watch', async (c, stickDir) => {
      const daemon = await startWatch(c, { env: daemonEnv({ TZ: OFFICE_MONDAY.tz }) });
      const since = readEvents(c.path).length;
      writeTree(c.path, { 'big.bin': BIG });
      const problem = await waitForEvent(
        c.path,
        'a no-space problem for big.bin on the stick',
        (e) =>
          e.mirror === 'stick' &&
          /big\.bin/.test(JSON.stringify(e)) &&
          /no-space|space/.test(JSON.stringify(e)),
        { since, timeoutMs: 120_000 },
      );
      t.diagnostic(`daemon: ${JSON.stringify(problem)}`);
      await waitUntil(
        'the share to get big.bin',
        () => sizeOf(join(c.mirrors.share!, 'big.bin')) === BIG.length,
        {
          timeoutMs: 60_000,
        },
      );
      assert.equal(sizeOf(join(stickDir, 'big.bin')), undefined, 'a partial big.bin under its final name');

      rmSync(join(stickDir, 'filler.bin'));
      const stickOptions = stickCompare(EXFAT_STICK, true);
      await waitForNoDiffs(
        'the daemon to bring the stick up to date by itself',
        () => [
          ...diffTrees(readTree(c.path), readTree(stickDir), stickOptions),
          ...satchelTempFiles(stickDir).map((p) => `temporary file ${p}`),
        ],
        180_000,
      );
      assert.equal(
        sizeOf(join(c.path, 'filler.bin')),
        undefined,
        'deleted on the stick, so deleted in the case',
      );
      assert.equal(sha256(readFileSync(join(stickDir, 'big.bin'))), sha256(BIG));
      const { result } = await stopWatch(daemon, 'SIGTERM', 60_000);
      assert.equal(result.code, 0, result.stderr);
      assertTreesEqual(c.path, c.mirrors.share!);
      assertStickHolds(stickDir, c.path, stickOptions);
      await assertQuietSync(c);
    });
  });
});

// ---- FAT32: the week with a daylight-saving change, in three mounts --------------------------

describe('briefcase on a FAT32 stick (kernel vfat through guestmount)', { timeout: 900_000 }, () => {
  const w = new Week(FAT32_STICK, 'briefcase-fat32');
  after(() => w.cleanup());

  test('Monday office → home (own case, then edits straight on the stick) → Tuesday office after a DST change', async (t) => {
    await mondayOffice(w);
    await mondayHome(w, true);
    await mondayEveningOffice(w);
    await tuesdayOffice(t, w, true);
    await ejectInWords(w.office, 'stick');
    await w.unmount();
    const check = fsck(w.driver, w.image);
    assert.ok(check.clean, check.output);
  });
});
