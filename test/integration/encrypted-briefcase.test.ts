/**
 * @module test/integration/encrypted-briefcase
 * The briefcase round trip on an encrypted stick (issue 7): two case folders, `office/work` and
 * `home/work` (the same case name), and a real stick image mounted at a different path on each
 * "computer": exFAT through exfat-fuse on a loop device (~6 s), and FAT32 through the kernel vfat
 * driver under guestmount (~45 s: four appliance boots):
 *
 * - office: `mirror add stick … --encrypt` (passphrase from `SATCHEL_PASSPHRASE`); the marker
 *   holds the passphrase check (never the passphrase); sync; nothing readable on the stick.
 * - home: adding the stick with a wrong passphrase, or without `--encrypt`, is refused at once
 *   and writes nothing (the stick is byte for byte the same, the home config has no mirror);
 *   with the right one the marker is adopted and everything arrives; edits, a folder rename, a
 *   delete, a new file; sync; a later sync with a wrong passphrase is refused and writes nothing.
 * - office again (mounted at another path, found by its marker below `--search`): report.txt
 *   was edited on both sides: one conflict, both versions kept; the home edits arrive; a second
 *   sync converges; the real `rclone` (env-only config, TESTBED.md §7) decrypts the stick to a
 *   tree equal to the office case; home syncs once more and ends equal to the office.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSatchel, type SyncReport, satchelOk } from '../helpers/cli.js';
import { createExfatImage, mountExfat } from '../helpers/exfat.js';
import { createFat32Image, mountFat32 } from '../helpers/fat32.js';
import type { MountedImage } from '../helpers/image.js';
import { runTool } from '../helpers/process.js';
import { cryptRemote, rclone } from '../helpers/rclone.js';
import { makeTempDir, removeTempDir } from '../helpers/temp.js';
import {
  assertTreesEqual,
  conflictCopies,
  diffTrees,
  readTree,
  writeTree,
  type TreeSpec,
} from '../helpers/tree.js';

const PASSPHRASE = 'correct horse battery staple, office stick';
const RIGHT = { SATCHEL_PASSPHRASE: PASSPHRASE };
const WRONG = { SATCHEL_PASSPHRASE: 'incorrect donkey' };
const MARKER = '.satchel-mirror';

const REPORT_V1 = 'Quarterly report\nfigures: 1, 2, 3\n';
const REPORT_HOME = 'Quarterly report\nfigures: 1, 2, 3, 4 (home)\n';
const REPORT_OFFICE = 'Quarterly report\nfigures: 1, 2, 3 (office review)\n';

const MONDAY: TreeSpec = {
  'report.txt': REPORT_V1,
  'notes/todo.md': '- call back\n',
  'notes/ideas.md': '- encrypt the stick\n',
  'photos/2026/beach.jpg': randomBytes(300_000),
  'old/obsolete.txt': 'to be deleted at home\n',
  'ünïcödé 名前/long name with spaces and more words in it.txt': 'unicode\n',
  empty: '',
};

/** One kind of stick: how to make, mount and fsck it, and its mtime granularity. */
interface Stick {
  readonly label: string;
  readonly granularityMs: number;
  create(image: string): void;
  mount(image: string, mnt: string, workDir: string): Promise<MountedImage>;
  readonly fsck: readonly [string, ...string[]];
}

const STICKS: readonly Stick[] = [
  {
    label: 'exFAT (exfat-fuse)',
    granularityMs: 1000,
    create: (image) => createExfatImage(image, 128),
    mount: (image, mnt) => mountExfat(image, mnt),
    fsck: ['fsck.exfat', '-n'],
  },
  {
    label: 'FAT32 (kernel vfat through guestmount)',
    granularityMs: 2000,
    create: (image) => createFat32Image(image, 128),
    mount: (image, mnt, workDir) => mountFat32(image, mnt, workDir),
    fsck: ['fsck.vfat', '-n'],
  },
];

/** Everything on the raw stick, the marker included: to prove a refusal wrote nothing. */
function rawStick(mnt: string): ReturnType<typeof readTree> {
  return readTree(mnt, { ignore: () => false });
}

describe('the briefcase round trip on an encrypted stick', () => {
  for (const kind of STICKS) {
    test(`${kind.label}: office → home → office with --encrypt, wrong passphrases refused, rclone agrees`, () =>
      roundTrip(kind));
  }
});

/** The whole round trip on one kind of stick. */
async function roundTrip(kind: Stick): Promise<void> {
  const STICK_CMP = { execBit: false, mtimeToleranceMs: kind.granularityMs } as const;
  const dir = makeTempDir('enc-briefcase');
  let mount: MountedImage | undefined;
  const plug = async (where: string): Promise<string> => {
    const mnt = join(dir, where);
    mount = await kind.mount(join(dir, 'stick.img'), mnt, dir);
    return mnt;
  };
  const unplug = async (): Promise<void> => {
    const m = mount;
    mount = undefined;
    await m?.stop();
  };
  try {
    kind.create(join(dir, 'stick.img'));
    const office = join(dir, 'office', 'work');
    const home = join(dir, 'home', 'work');
    mkdirSync(office, { recursive: true });
    mkdirSync(home, { recursive: true });
    await satchelOk(['init', office]);
    await satchelOk(['init', home]);
    writeTree(office, MONDAY);

    // ---- office, Monday: add encrypted, sync.
    let stick = await plug('media-office/STICK');
    const media = join(dir, 'media-office');
    const added = await satchelOk(
      ['-C', office, 'mirror', 'add', 'stick', stick, '--encrypt', '--search', media],
      { env: RIGHT },
    );
    assert.ok(!added.stdout.includes(PASSPHRASE) && !added.stderr.includes(PASSPHRASE));
    const marker = JSON.parse(readFileSync(join(stick, MARKER), 'utf8')) as Record<string, unknown>;
    assert.match(String(marker.passphraseCheck), /^[0-9a-f]{32}$/, JSON.stringify(marker));
    assert.ok(!JSON.stringify(marker).includes(PASSPHRASE));
    const officeConfig = readFileSync(join(office, '.satchel', 'config.toml'), 'utf8');
    assert.ok(officeConfig.includes(`passphrase_check = "${String(marker.passphraseCheck)}"`));
    assert.ok(!officeConfig.includes(PASSPHRASE));
    await satchelOk(['-C', office, 'sync'], { env: RIGHT });
    const names = Object.keys(Object.fromEntries(rawStick(stick)));
    assert.ok(
      names.every((n) => n === MARKER || !/report|notes|photos|old|empty|名前|\.txt|\.md/.test(n)),
      `plaintext names on the stick: ${names.join(', ')}`,
    );
    await unplug();

    // ---- home, Monday evening: wrong passphrase and no --encrypt are refused, nothing written.
    stick = await plug('media-home/USB DISK');
    const before = rawStick(stick);
    const wrong = await runSatchel(['-C', home, 'mirror', 'add', 'stick', stick, '--encrypt'], {
      env: WRONG,
    });
    assert.notEqual(wrong.code, 0, wrong.stdout + wrong.stderr);
    assert.match(wrong.stderr, /wrong passphrase for the encrypted mirror "stick"/);
    assert.ok(!(wrong.stdout + wrong.stderr).includes('incorrect donkey'));
    const plain = await runSatchel(['-C', home, 'mirror', 'add', 'stick', stick], { env: RIGHT });
    assert.notEqual(plain.code, 0, plain.stdout + plain.stderr);
    assert.match(plain.stderr, /is an encrypted mirror of this case: add it with --encrypt/);
    assert.deepEqual(diffTrees(before, rawStick(stick)), [], 'a refused add wrote to the stick');
    assert.doesNotMatch(readFileSync(join(home, '.satchel', 'config.toml'), 'utf8'), /\[mirrors\./);
    assert.deepEqual(Object.keys(Object.fromEntries(readTree(home))), [], 'the home case got files');

    // The right passphrase: adopted, everything arrives.
    const adopted = await satchelOk(['-C', home, 'mirror', 'add', 'stick', stick, '--encrypt'], {
      env: RIGHT,
    });
    assert.match(adopted.stdout + adopted.stderr, /already held this case's marker/);
    // Matched by name only: the user hears that the first sync merges, and how to look first.
    assert.match(adopted.stdout, /the first sync merges what it holds with this case/);
    assert.match(adopted.stdout, /satchel sync --dry-run/);
    await satchelOk(['-C', home, 'sync'], { env: RIGHT });
    assertTreesEqual(office, home, STICK_CMP);

    // Home edits, renames a folder, deletes a file, adds one.
    writeFileSync(join(home, 'report.txt'), REPORT_HOME);
    writeFileSync(join(home, 'notes', 'todo.md'), '- call back\n- done at home\n');
    renameSync(join(home, 'photos'), join(home, 'pictures'));
    rmSync(join(home, 'old'), { recursive: true });
    writeFileSync(join(home, 'from-home.txt'), 'written at home\n');
    await satchelOk(['-C', home, 'sync'], { env: RIGHT });
    // A later sync with a wrong passphrase: refused, nothing written.
    writeFileSync(join(home, 'late.txt'), 'not to travel with a wrong passphrase\n');
    const snap = rawStick(stick);
    const refused = await runSatchel(['-C', home, 'sync'], { env: WRONG });
    assert.notEqual(refused.code, 0, refused.stdout + refused.stderr);
    assert.match(refused.stdout + refused.stderr, /wrong passphrase for the encrypted mirror "stick"/);
    // Scripts tell why: the run's error code and the mirror's own say auth-failed.
    const json = await runSatchel(['-C', home, 'sync', '--json'], { env: WRONG });
    const report = json.json<SyncReport & { error: { code: string } }>();
    assert.deepEqual(
      [report.error.code, report.mirrors[0]?.code],
      ['auth-failed', 'auth-failed'],
      json.stdout,
    );
    assert.deepEqual(diffTrees(snap, rawStick(stick)), [], 'a refused sync wrote to the stick');
    rmSync(join(home, 'late.txt'));
    await unplug();

    // ---- office, Tuesday: its own edit of report.txt (a conflict), the stick elsewhere.
    writeFileSync(join(office, 'report.txt'), REPORT_OFFICE);
    stick = await plug('media-office/STICK1');
    // The config names media-office/STICK: the stick is found by its marker below media-office.
    const r = await runSatchel(['-C', office, 'sync', '--json'], { env: RIGHT });
    assert.ok(r.code === 0 || r.code === 1, r.stdout + r.stderr);
    const tree = readTree(office);
    const copies = conflictCopies(tree);
    assert.equal(copies.length, 1, `one conflict copy expected: ${copies.join(', ')}`);
    const versions = [
      readFileSync(join(office, 'report.txt'), 'utf8'),
      readFileSync(join(office, copies[0]!), 'utf8'),
    ].sort();
    assert.deepEqual(versions, [REPORT_HOME, REPORT_OFFICE].sort(), 'both versions kept');
    assert.equal(readFileSync(join(office, 'notes', 'todo.md'), 'utf8'), '- call back\n- done at home\n');
    assert.equal(readFileSync(join(office, 'from-home.txt'), 'utf8'), 'written at home\n');
    assert.ok(tree.has('pictures/2026/beach.jpg') && !tree.has('photos/2026/beach.jpg'));
    assert.ok(!tree.has('old/obsolete.txt') && !tree.has('late.txt'));
    await satchelOk(['-C', office, 'sync'], { env: RIGHT });

    // rclone (env-only config) decrypts the stick to exactly the office case.
    const remote = cryptRemote(dir, stick, PASSPHRASE);
    const out = join(dir, 'rclone-out');
    rclone(['copy', remote.remote, out], remote.env);
    assertTreesEqual(office, out, { ...STICK_CMP, mtimeToleranceMs: false });
    const listed = rclone(['lsf', '-R', '--files-only', remote.remote], remote.env)
      .toString()
      .trim()
      .split('\n')
      .sort();
    const caseFiles = [...readTree(office)].filter(([, n]) => n.kind === 'file').map(([p]) => p);
    assert.deepEqual(listed, caseFiles.sort());
    await unplug();

    // ---- home again: converges with the office.
    stick = await plug('media-home/USB DISK');
    await satchelOk(['-C', home, 'sync'], { env: RIGHT });
    assertTreesEqual(office, home, STICK_CMP);
    await unplug();
    const [command, ...args] = kind.fsck;
    const fsck = runTool(command, [...args, join(dir, 'stick.img')], { check: false });
    assert.equal(fsck.status, 0, `${fsck.stdout}${fsck.stderr}`);
  } finally {
    await unplug();
    removeTempDir(dir);
  }
}
