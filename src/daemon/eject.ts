/**
 * @module daemon/eject
 * `satchel eject <mirror>`: finish everything pending for the mirror, flush it to the device,
 * record a clean state, and say it is safe to unplug (optionally unmounting it through udisks).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { SatchelError } from '../core/errors.js';
import type { MirrorReport } from './pair-sync.js';

/** What an eject did. */
export interface EjectReport {
  readonly mirror: string;
  readonly state: 'ejected';
  /** Where the mirror was mounted. */
  readonly root: string;
  /** Changes of the final reconciliation. */
  readonly in: number;
  readonly out: number;
  readonly conflicts: number;
  readonly problems: MirrorReport['problems'];
  /** It had been ejected already (through the running `satchel watch`) and left alone since. */
  readonly already?: true;
  /** With `--unmount`: whether it was unmounted, or why not. */
  readonly unmount?: { readonly done: boolean; readonly message: string };
}

/** Throws unless the final reconciliation left the mirror synced. */
export function requireSynced(report: MirrorReport): void {
  if (report.state === 'synced') return;
  const code =
    report.state === 'absent' ? 'mirror-absent' : report.state === 'halted' ? 'mirror-halted' : 'io';
  throw new SatchelError(code, `${report.mirror} is ${report.state}: ${report.message ?? ''}`.trim(), {
    hint:
      report.hint ??
      (report.state === 'absent'
        ? 'it is not plugged in or not mounted: nothing to eject'
        : 'see `satchel status`'),
  });
}

/** Flushes the file system holding `root` to its device (syncfs), so the stick can be pulled. */
export function flushFileSystem(root: string): void {
  const r = spawnSync('sync', ['-f', root], { stdio: 'ignore' });
  if (r.status !== 0) spawnSync('sync', [], { stdio: 'ignore' });
}

/** The mount point and source device holding `path` (from /proc/self/mountinfo). */
export function mountOf(path: string): { mountPoint: string; source: string; fsType: string } | undefined {
  let best: { mountPoint: string; source: string; fsType: string } | undefined;
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const mountPoint = left.split(' ')[4]?.replace(/\\040/g, ' ');
    const [fsType, source] = right.split(' ');
    if (!mountPoint || !fsType || !source) continue;
    const covers =
      path === mountPoint || path.startsWith(mountPoint.endsWith('/') ? mountPoint : mountPoint + '/');
    if (covers && (!best || mountPoint.length > best.mountPoint.length))
      best = { mountPoint, source, fsType };
  }
  return best;
}

/** Unmounts the stick holding `root` through udisks (`udisksctl`), when available. */
export function unmountThroughUdisks(root: string): { done: boolean; message: string } {
  const mount = mountOf(root);
  if (!mount || mount.mountPoint === '/')
    return { done: false, message: `${root} is not on a separate mount` };
  const hasUdisks = spawnSync('sh', ['-c', 'command -v udisksctl'], { stdio: 'ignore' }).status === 0;
  if (!hasUdisks) {
    return {
      done: false,
      message: `udisksctl is not installed: unmount it with your file manager or \`umount ${mount.mountPoint}\``,
    };
  }
  const r = spawnSync('udisksctl', ['unmount', '-b', mount.source], { encoding: 'utf8' });
  return r.status === 0
    ? { done: true, message: `unmounted ${mount.mountPoint}` }
    : {
        done: false,
        message: `udisksctl could not unmount ${mount.source}: ${(r.stderr || r.stdout).trim()}`,
      };
}

/** The eject report for a final reconciliation that left `report.mirror` synced at `root`. */
export function ejectReport(report: MirrorReport, root: string): EjectReport {
  requireSynced(report);
  flushFileSystem(root);
  return {
    mirror: report.mirror,
    state: 'ejected',
    root,
    in: report.in,
    out: report.out,
    conflicts: report.conflicts.length,
    problems: report.problems,
  };
}
