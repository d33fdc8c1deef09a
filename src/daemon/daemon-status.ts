/**
 * @module daemon/daemon-status
 * What a running `satchel watch` tells other commands: `<case>/.satchel/daemon.json`, rewritten
 * (atomically) shortly after every change of state. `satchel status` reads it while the daemon
 * holds the case lock, instead of planning a sync itself.
 */
import type { Problem } from '../core/problem.js';
import { readFileSync } from 'node:fs';
import { writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';

/** One mirror as the daemon sees it. */
export interface DaemonMirrorState {
  /** `watching`/`polling`: present and up to date as far as known; `syncing`: work in flight. */
  readonly state: 'watching' | 'polling' | 'syncing' | 'absent' | 'halted' | 'failed';
  /** Paths waiting to be shipped. */
  readonly pending: number;
  readonly lastSyncAt?: number;
  readonly message?: string;
  /** For a halted or failed mirror: what to do about it, when known. */
  readonly hint?: string;
  /** Paths the daemon cannot replicate to this mirror now (at most 200), as a sync reports them. */
  readonly problems?: readonly Problem[];
}

/** The content of `daemon.json`. */
export interface DaemonStatus {
  readonly pid: number;
  readonly startedAt: number;
  readonly updatedAt: number;
  /** The watcher backend in use (`inotify` or `parcel`). */
  readonly backend: string | undefined;
  readonly mirrors: Readonly<Record<string, DaemonMirrorState>>;
}

/** The file a daemon writes its status to. */
export function daemonStatusFile(stateDir: string): string {
  return join(stateDir, 'daemon.json');
}

/** Writes the status atomically without blocking the event loop. */
export async function writeDaemonStatusAsync(stateDir: string, status: DaemonStatus): Promise<void> {
  const file = daemonStatusFile(stateDir);
  const temp = `${file}.tmp-${process.pid}`;
  await writeFile(temp, JSON.stringify(status, null, 2) + '\n');
  await rename(temp, file);
}

/** Reads the status a daemon wrote, or undefined. */
export function readDaemonStatus(stateDir: string): DaemonStatus | undefined {
  try {
    return JSON.parse(readFileSync(daemonStatusFile(stateDir), 'utf8')) as DaemonStatus;
  } catch {
    return undefined;
  }
}
