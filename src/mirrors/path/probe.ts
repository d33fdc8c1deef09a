/**
 * @module mirrors/path/probe
 * Finds out what a local folder's file system can store by trying it, in a scratch folder
 * `<root>/.satchel-tmp-probe-<random>` that is always removed afterwards: modification-time
 * granularity, case sensitivity, symbolic links, the executable bit, forbidden name characters,
 * trailing dots and spaces, and the largest file size. Works the same on ext4/tmpfs, exFAT
 * through exfat-fuse and FAT32 through the kernel's vfat driver (TESTBED.md §3 lists their answers:
 * exfat-fuse says ENOENT for `:`, vfat EINVAL; chmod succeeds there but changes nothing).
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Capabilities } from '../../core/capabilities.js';
import { SatchelError } from '../../core/errors.js';
import { TEMP_PREFIX } from '../../core/reserved.js';
import { errnoOf } from './fs-errors.js';

/** The characters tried as part of a name (those Windows and FAT refuse). */
export const PROBED_CHARACTERS = ':?*<>|"\\';

/** FAT32's largest file: 4 GiB - 1 bytes. */
export const FAT32_MAX_FILE_SIZE = 4 * 1024 ** 3 - 1;

/** An instant with an odd second and a millisecond fraction: 2021-05-06T07:08:05.123Z. */
const PROBE_MTIME_MS = Date.UTC(2021, 4, 6, 7, 8, 5, 123);

/** Granularities a file system may have, finest first. */
const GRANULARITIES_MS = [1, 10, 100, 1000, 2000];

/**
 * The modification-time granularity implied by storing `wanted` and reading back `stored`:
 * the finest granularity for which `stored` is `wanted` rounded down, to nearest, or up.
 */
export function granularityFrom(wanted: number, stored: number): number {
  for (const g of GRANULARITIES_MS) {
    const down = Math.floor(wanted / g) * g;
    if (stored === down || stored === Math.round(wanted / g) * g || stored === down + g) return g;
  }
  return 2000;
}

/** File systems whose changes made elsewhere give no inotify events here, and whose calls may hang. */
const NETWORK_FS =
  /^(nfs4?|cifs|smb3?|smbfs|9p|afs|ceph|glusterfs|davfs|fuse\.(sshfs|smbnetfs|rclone|gvfsd-fuse|s3fs))$/;

/** Whether a mount type (as /proc/self/mountinfo names it) is a network file system. */
export function isNetworkFileSystem(fsType: string | undefined): boolean {
  return fsType !== undefined && NETWORK_FS.test(fsType);
}

/** The file-system type of the mount holding `dir`, from `/proc/self/mountinfo` (Linux). */
export async function mountFsType(dir: string): Promise<string | undefined> {
  let info: string;
  let real: string;
  try {
    info = await fsp.readFile('/proc/self/mountinfo', 'utf8');
    real = await fsp.realpath(dir);
  } catch {
    return undefined;
  }
  let best: { point: string; type: string } | undefined;
  for (const line of info.split('\n')) {
    // Fields: id parent major:minor root mountpoint options [optional…] - fstype source superoptions
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (fields.length < 5 || sep < 0) continue;
    const point = unescapeMountPath(fields[4]!);
    const type = fields[sep + 1] ?? '';
    const covers = real === point || point === '/' || real.startsWith(point + '/');
    if (covers && (best === undefined || point.length >= best.point.length)) best = { point, type };
  }
  return best?.type;
}

/** Mount points in mountinfo escape space, tab, newline and backslash as octal `\040` etc. */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Creates an empty file, reporting whether it worked. */
async function tryCreate(file: string): Promise<boolean> {
  try {
    await (await fsp.open(file, 'wx')).close();
    return true;
  } catch {
    return false;
  }
}

async function probeMtimeGranularity(scratch: string): Promise<number> {
  const file = join(scratch, 'mtime');
  await (await fsp.open(file, 'wx')).close();
  await fsp.utimes(file, PROBE_MTIME_MS / 1000, PROBE_MTIME_MS / 1000);
  const st = await fsp.lstat(file);
  return granularityFrom(PROBE_MTIME_MS, Math.round(st.mtimeMs));
}

async function probeCaseSensitive(scratch: string): Promise<boolean> {
  await (await fsp.open(join(scratch, 'a'), 'wx')).close();
  try {
    await fsp.lstat(join(scratch, 'A'));
    return false;
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return true;
    throw err;
  }
}

async function probeSymlinks(scratch: string): Promise<boolean> {
  const link = join(scratch, 'link');
  try {
    await fsp.symlink('a', link);
    return (await fsp.lstat(link)).isSymbolicLink() && (await fsp.readlink(link)) === 'a';
  } catch {
    return false;
  }
}

async function probeExecutableBit(scratch: string): Promise<boolean> {
  const file = join(scratch, 'exec');
  await (await fsp.open(file, 'wx')).close();
  try {
    await fsp.chmod(file, 0o755);
    const on = (await fsp.lstat(file)).mode & 0o777;
    await fsp.chmod(file, 0o644);
    const off = (await fsp.lstat(file)).mode & 0o777;
    return on === 0o755 && off === 0o644;
  } catch {
    return false;
  }
}

async function probeForbiddenChars(scratch: string): Promise<string> {
  const dir = join(scratch, 'chars');
  await fsp.mkdir(dir);
  let forbidden = '';
  for (const [i, c] of Array.from(PROBED_CHARACTERS).entries()) {
    const name = `c${i}${c}x`;
    const ok = (await tryCreate(join(dir, name))) && (await fsp.readdir(dir)).includes(name);
    if (!ok) forbidden += c;
  }
  return forbidden;
}

async function probeTrailingDotOrSpace(scratch: string): Promise<boolean> {
  const dir = join(scratch, 'trailing');
  await fsp.mkdir(dir);
  const names = ['x.', 'y '];
  for (const name of names) if (!(await tryCreate(join(dir, name)))) return true;
  const listed = (await fsp.readdir(dir)).sort();
  return listed.length !== 2 || listed[0] !== names[0] || listed[1] !== names[1];
}

/**
 * Probes the file system holding `root` (an existing folder) and returns what it can store.
 * Throws `mirror-absent` when `root` is not an existing folder, `io` when probing fails.
 */
export async function probeCapabilities(root: string): Promise<Capabilities> {
  try {
    const st = await fsp.stat(root);
    if (!st.isDirectory()) throw new Error('not a folder');
  } catch (err) {
    throw new SatchelError('mirror-absent', `cannot probe ${root}: it is not an existing folder`, {
      hint: 'mount the drive or create the folder, then try again',
      cause: err,
    });
  }
  const scratch = join(root, `${TEMP_PREFIX}probe-${randomBytes(6).toString('hex')}`);
  try {
    await fsp.mkdir(scratch);
    const mtimeGranularityMs = await probeMtimeGranularity(scratch);
    const caseSensitive = await probeCaseSensitive(scratch);
    const symlinks = await probeSymlinks(scratch);
    const executableBit = await probeExecutableBit(scratch);
    const forbiddenChars = await probeForbiddenChars(scratch);
    // A file system with Windows' forbidden characters (FAT, exFAT, SMB) is read by Windows too,
    // which strips a trailing dot or space even where this driver (exfat-fuse) stores one.
    const forbidsTrailingDotOrSpace =
      forbiddenChars.includes(':') || (await probeTrailingDotOrSpace(scratch));
    const fsType = await mountFsType(root);
    const fat32 =
      fsType === 'vfat' ||
      fsType === 'msdos' ||
      (fsType?.startsWith('fuse') === true && mtimeGranularityMs >= 2000);
    return {
      readable: true,
      writable: true,
      symlinks,
      executableBit,
      caseSensitive,
      mtimeGranularityMs,
      forbiddenChars,
      forbidsTrailingDotOrSpace,
      maxFileSize: fat32 ? FAT32_MAX_FILE_SIZE : Number.MAX_SAFE_INTEGER,
      maxNameLength: 255,
    };
  } catch (err) {
    throw new SatchelError('io', `cannot probe the file system at ${root}: ${(err as Error).message}`, {
      hint: 'check that the folder is writable',
      cause: err,
    });
  } finally {
    await fsp.rm(scratch, { recursive: true, force: true }).catch(() => undefined);
  }
}
