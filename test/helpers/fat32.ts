/**
 * @module test/helpers/fat32
 * A real FAT32 file system for tests, served by the Linux kernel's own `vfat` driver: this
 * machine has no vfat module, so the image is mounted through libguestfs (`guestmount`), which
 * boots a small appliance VM with that driver and exposes the file system over FUSE.
 *
 * - KVM does not work here (nested virtualisation), so the appliance runs under TCG
 *   (`LIBGUESTFS_BACKEND_SETTINGS=force_tcg`); it is ready in about 15 s, so a test file should
 *   mount once and run its scenarios in sequence.
 * - The appliance cache (`LIBGUESTFS_CACHEDIR`) lives in the test's temporary folder, or in
 *   `$SATCHEL_GUESTFS_CACHE` when set, to reuse one built appliance across a run.
 * - The image is consistent only after the guestmount process has exited: {@link Fat32Mount.stop}
 *   runs `guestunmount` and then waits for that PID before fsck looks at the image.
 *
 * Needs root, `/dev/fuse` and the Debian packages `guestmount`, `linux-image-amd64` and
 * `dosfstools`; when any is missing the test fails with what to install.
 */
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  isMountAlive,
  isMountPoint,
  onAbruptExit,
  requireFuse,
  requireRoot,
  requireTools,
  runTool,
  startDaemon,
  stopDaemon,
  waitExit,
  waitFor,
} from './process.js';
import type { ImageKind, MountedImage } from './image.js';

const FAT32_TOOLS = [
  { command: 'guestmount', debianPackage: 'guestmount' },
  { command: 'guestunmount', debianPackage: 'guestmount' },
  { command: 'mkfs.vfat', debianPackage: 'dosfstools' },
  { command: 'fsck.vfat', debianPackage: 'dosfstools' },
  { command: 'mountpoint', debianPackage: 'util-linux' },
];

/** A mounted FAT32 image; `pid` is guestmount's. */
export type Fat32Mount = MountedImage;

/** Creates a fresh FAT32 image of `sizeMb` MiB (64–256 is plenty) at `image`. */
export function createFat32Image(image: string, sizeMb = 128): void {
  requireTools(FAT32_TOOLS);
  runTool('truncate', ['-s', `${sizeMb}M`, image]);
  runTool('mkfs.vfat', ['-F', '32', image]);
}

/** Options of {@link mountFat32}. */
export interface Fat32MountOptions {
  /**
   * Mount options of the kernel vfat driver inside the appliance (guestmount's
   * `-m /dev/sda:/:<options>`), e.g. `time_offset=-300`: FAT stores local time without a zone,
   * and this is the offset the driver converts with (a computer in another time zone, or after
   * a daylight-saving change, sees every time shifted).
   */
  readonly mountOptions?: string;
}

/** Mounts `image` at `mnt` through guestmount; `workDir` holds its log and appliance cache. */
export async function mountFat32(
  image: string,
  mnt: string,
  workDir: string,
  options: Fat32MountOptions = {},
): Promise<Fat32Mount> {
  requireRoot('mounting a FAT32 image through guestmount');
  requireTools(FAT32_TOOLS);
  requireFuse();
  mkdirSync(mnt, { recursive: true });
  if (isMountPoint(mnt)) throw new Error(`${mnt} is already a mount point`);
  const cacheDir = process.env.SATCHEL_GUESTFS_CACHE ?? join(workDir, 'guestfs-cache');
  mkdirSync(cacheDir, { recursive: true });
  const log = join(workDir, 'guestmount.log');
  const logFd = openSync(log, 'w');
  const device = options.mountOptions === undefined ? '/dev/sda' : `/dev/sda:/:${options.mountOptions}`;
  const daemon = startDaemon('guestmount', ['-a', image, '-m', device, '--no-fork', mnt], {
    stdio: ['ignore', logFd, logFd],
    env: { LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg', LIBGUESTFS_CACHEDIR: cacheDir },
  });
  closeSync(logFd);
  const unregister = onAbruptExit(() => {
    runTool('guestunmount', [mnt], { check: false, timeoutMs: 10_000 });
  });
  try {
    await waitFor(`guestmount of ${image} at ${mnt}`, () => isMountAlive(mnt), {
      timeoutMs: 120_000,
      intervalMs: 100,
      abortIf: () =>
        daemon.hasExited() ? `guestmount exited early; its log:\n${readFileSync(log, 'utf8')}` : undefined,
    });
  } catch (err) {
    await stopDaemon(daemon, 'SIGKILL', 5_000);
    unregister();
    throw err;
  }
  let stopped = false;
  return {
    image,
    mnt,
    pid: daemon.pid,
    async stop() {
      if (stopped) return;
      stopped = true;
      // guestunmount returns at once; guestmount then syncs the appliance and exits, and only
      // then is the image consistent. Signalling it earlier leaves the FAT dirty.
      if (isMountPoint(mnt)) runTool('guestunmount', [mnt], { check: false, timeoutMs: 30_000 });
      if (!(await waitExit(daemon, 60_000))) {
        await stopDaemon(daemon, 'SIGKILL', 5_000);
        if (isMountPoint(mnt)) runTool('umount', ['-l', mnt], { check: false });
        throw new Error(`guestmount (PID ${daemon.pid}) did not exit within 60 s of guestunmount; killed`);
      }
      unregister();
    },
  };
}

/** How to make, mount and fsck-check a FAT32 image of the default size, for `withImage` and `fsckImage`. */
export const FAT32: ImageKind<Fat32Mount> = {
  label: 'fat32',
  create: (image) => createFat32Image(image),
  mount: mountFat32,
  fsck: ['fsck.vfat', '-n'],
};
