/**
 * @module daemon/case-lock
 * One Satchel process at a time per case: `<case>/.satchel/lock` holds the PID of the process
 * working on it. A lock left by a process that no longer runs (killed, crashed) is taken over.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SatchelError } from '../core/errors.js';

/** Whether process `pid` runs (a zombie that only waits to be reaped does not count). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/** The live process holding the case lock of `stateDir` and what for (`watching`, `syncing`, …), if any. */
export function lockHolder(stateDir: string): { readonly pid: number; readonly purpose: string } | undefined {
  let text: string;
  try {
    text = readFileSync(join(stateDir, 'lock'), 'utf8');
  } catch {
    return undefined;
  }
  const [pidText, purpose] = text.split('\n');
  const pid = Number(pidText);
  return Number.isInteger(pid) && pid > 0 && processAlive(pid) ? { pid, purpose: purpose ?? '' } : undefined;
}

/** A held case lock. */
export interface CaseLock {
  /** Gives the lock up. */
  release(): void;
}

/**
 * Takes the lock of the case whose state folder is `stateDir`, or throws `case-locked` naming
 * the process that holds it.
 */
export function acquireCaseLock(stateDir: string, purpose: string): CaseLock {
  const file = join(stateDir, 'lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const [pidText, what] = readFileSync(file, 'utf8').split('\n');
      const pid = Number(pidText);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new SatchelError(
          'case-locked',
          `another satchel (pid ${pid}, ${what ?? 'busy'}) is working on this case`,
          {
            hint:
              what === 'watching'
                ? '`satchel watch` holds the case while it runs: stop it (Ctrl-C or SIGTERM), do this, and start it again; `satchel status` shows what it has pending'
                : 'wait for it to finish (a sync or another command), then try again',
            data: { pid },
          },
        );
      }
      try {
        unlinkSync(file);
      } catch {
        /* someone else took it over first: try again */
      }
      continue;
    }
    writeSync(fd, `${process.pid}\n${purpose}\n`);
    closeSync(fd);
    return {
      release() {
        try {
          if (Number(readFileSync(file, 'utf8').split('\n')[0]) === process.pid) unlinkSync(file);
        } catch {
          /* already gone */
        }
      },
    };
  }
  throw new SatchelError('case-locked', `could not take the case lock ${file}`, {
    hint: 'another satchel process keeps taking it; try again',
  });
}
