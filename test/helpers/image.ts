/**
 * @module test/helpers/image
 * The lifecycle shared by the file-system image helpers (exFAT, FAT32): make an image in a
 * temporary folder, mount it, run the test, unmount, check the image with fsck and remove
 * everything, also when the test fails.
 */
import { join } from 'node:path';
import { runTool } from './process.js';
import { makeTempDir, removeTempDir } from './temp.js';

/** A mounted image, served by a process the test owns. */
export interface MountedImage {
  /** The image file. */
  readonly image: string;
  /** The mount point. */
  readonly mnt: string;
  /** The PID of the process serving the mount (FUSE driver or guestmount). */
  readonly pid: number;
  /** Unmounts, waits for the serving process and releases what the mount used. Idempotent. */
  stop(): Promise<void>;
}

/** How to make, mount and check one kind of image. */
export interface ImageKind<M extends MountedImage> {
  /** Short name, used for the temporary folder and messages (`exfat`, `fat32`). */
  readonly label: string;
  create(image: string): void;
  mount(image: string, mnt: string, workDir: string): Promise<M>;
  /** The fsck command that checks an unmounted image without changing it. */
  readonly fsck: readonly [string, ...string[]];
}

/** Runs the kind's fsck on an unmounted image: whether it is clean, with fsck's output. */
export function fsckImage(kind: ImageKind<MountedImage>, image: string): { clean: boolean; output: string } {
  const [command, ...args] = kind.fsck;
  const r = runTool(command, [...args, image], { check: false });
  return { clean: r.status === 0, output: `${r.stdout}${r.stderr}`.trim() };
}

/**
 * Runs `fn` with a fresh image of `kind` mounted in a temporary folder, then unmounts it,
 * checks it with fsck (throwing when it is not clean) and removes everything.
 */
export async function withImage<M extends MountedImage, T>(
  kind: ImageKind<M>,
  fn: (mount: M) => Promise<T>,
): Promise<T> {
  const dir = makeTempDir(kind.label);
  const image = join(dir, 'stick.img');
  let mount: M | undefined;
  try {
    kind.create(image);
    mount = await kind.mount(image, join(dir, 'mnt'), dir);
    const result = await fn(mount);
    await mount.stop();
    const fsck = fsckImage(kind, image);
    if (!fsck.clean) throw new Error(`${kind.label} image not clean after the test:\n${fsck.output}`);
    return result;
  } finally {
    await mount?.stop();
    removeTempDir(dir);
  }
}
