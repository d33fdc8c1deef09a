/**
 * @module test/helpers/exfat
 * A real exFAT file system for tests: an image file on a loop device, mounted through the
 * `exfat-fuse` driver running in the foreground as our child (so we own its PID).
 *
 * Lifecycle: {@link createExfatImage} (truncate + mkfs.exfat) → {@link mountExfat} (losetup,
 * `mount.exfat-fuse -d LOOP MNT`, wait for `mountpoint -q`) → {@link ExfatMount.stop} (SIGTERM
 * to the driver's PID, `umount -l` fallback, `losetup -d`) → {@link fsckExfat} (`fsck.exfat -n`).
 * {@link ExfatMount.yank} simulates pulling the stick out: SIGKILL to the driver, after which
 * every access to the mount point fails with ENOTCONN until it is unmounted.
 *
 * Needs root, `/dev/fuse`, a free loop device and the Debian packages `exfat-fuse` and
 * `exfatprogs`; when any is missing the test fails with what to install.
 */
import { mkdirSync } from 'node:fs';
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
  waitFor,
  type Daemon,
} from './process.js';
import type { ImageKind, MountedImage } from './image.js';

/** Tools this helper runs, with the packages that provide them. */
const EXFAT_TOOLS = [
  { command: 'mount.exfat-fuse', debianPackage: 'exfat-fuse' },
  { command: 'mkfs.exfat', debianPackage: 'exfatprogs' },
  { command: 'fsck.exfat', debianPackage: 'exfatprogs' },
  { command: 'losetup', debianPackage: 'mount' },
  { command: 'mountpoint', debianPackage: 'util-linux' },
];

/** A mounted exFAT image. */
export interface ExfatMount extends MountedImage {
  /** The loop device the image is attached to. */
  readonly loop: string;
  /** Kills the driver with SIGKILL, as if the stick were pulled out; the mount point stays, broken. */
  yank(): Promise<void>;
}

/** Creates a fresh exFAT image of `sizeMb` MiB at `image`. */
export function createExfatImage(image: string, sizeMb = 64): void {
  requireTools(EXFAT_TOOLS);
  runTool('truncate', ['-s', `${sizeMb}M`, image]);
  runTool('mkfs.exfat', [image]);
}

/** Options of {@link mountExfat}. */
export interface ExfatMountOptions {
  /**
   * Extra environment of the driver process, e.g. `TZ`: exfat-fuse converts times of entries
   * that carry no UTC offset with the mount process's local time zone (entries it writes itself
   * carry the offset, so their times read back the same under any `TZ`).
   */
  readonly env?: NodeJS.ProcessEnv;
}

/** Attaches `image` to a loop device and mounts it at `mnt` (created if needed) through exfat-fuse. */
export async function mountExfat(
  image: string,
  mnt: string,
  options: ExfatMountOptions = {},
): Promise<ExfatMount> {
  requireRoot('mounting an exFAT image');
  requireFuse();
  requireTools(EXFAT_TOOLS);
  mkdirSync(mnt, { recursive: true });
  if (isMountPoint(mnt)) throw new Error(`${mnt} is already a mount point`);
  const loop = runTool('losetup', ['-f', '--show', image]).stdout.trim();
  let daemon: Daemon;
  try {
    // -d: foreground with debug output, so the driver stays our child and we know its PID.
    daemon = startDaemon('mount.exfat-fuse', ['-d', loop, mnt], { env: options.env });
    await waitFor(`exFAT mount at ${mnt}`, () => isMountAlive(mnt), {
      timeoutMs: 10_000,
      intervalMs: 20,
      abortIf: () => (daemon.hasExited() ? 'mount.exfat-fuse exited' : undefined),
    });
  } catch (err) {
    runTool('losetup', ['-d', loop], { check: false });
    throw err;
  }
  const unregister = onAbruptExit(() => {
    runTool('umount', ['-l', mnt], { check: false });
    runTool('losetup', ['-d', loop], { check: false });
  });
  let stopped = false;
  return {
    image,
    loop,
    mnt,
    pid: daemon.pid,
    async yank() {
      await stopDaemon(daemon, 'SIGKILL', 5_000);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // SIGTERM makes exfat-fuse flush and unmount; a yanked or stuck driver needs umount.
      if (!(await stopDaemon(daemon, 'SIGTERM', 10_000))) await stopDaemon(daemon, 'SIGKILL', 5_000);
      if (isMountPoint(mnt)) {
        if (runTool('umount', [mnt], { check: false }).status !== 0)
          runTool('umount', ['-l', mnt], { check: false });
      }
      runTool('losetup', ['-d', loop], { check: false });
      unregister();
    },
  };
}

/** How to make, mount and fsck-check a exFAT image of the default size, for `withImage` and `fsckImage`. */
export const EXFAT: ImageKind<ExfatMount> = {
  label: 'exfat',
  create: (image) => createExfatImage(image),
  mount: (image, mnt) => mountExfat(image, mnt),
  fsck: ['fsck.exfat', '-n'],
};
