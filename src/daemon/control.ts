/**
 * @module daemon/control
 * A running `satchel watch` answers requests from other `satchel` commands (`eject`, and `sync`
 * and `resolve`, which the daemon's hold on the case would refuse otherwise) over a Unix socket:
 * `<case>/.satchel/daemon.sock`, or a socket under the temp folder when that path would be too
 * long for a socket name. One JSON request per connection, one JSON answer.
 * The socket is created with mode 0600: only the case's owner can talk to the daemon.
 */
import { createHash } from 'node:crypto';
import { chmodSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SatchelError } from '../core/errors.js';
import { lockHolder } from './case-lock.js';

/** Longest socket path Linux accepts (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;

/** A request to the daemon. */
export interface ControlRequest {
  /** `satchel eject <mirror>`: finish the mirror and report it safe to unplug. */
  readonly eject?: string;
  /** `satchel sync [mirror...] [--allow-mass-delete]` while the daemon holds the case. */
  readonly sync?: { readonly mirrors: readonly string[]; readonly allowMassDelete: boolean };
  /** `satchel resolve <path> --keep …` while the daemon holds the case (`cwd`: the command's folder). */
  readonly resolve?: {
    readonly path: string;
    readonly keep: 'case' | 'mirror' | 'both';
    readonly cwd: string;
  };
}

/** The socket of the daemon of the case whose state folder is `stateDir`. */
export function controlSocketPath(stateDir: string): string {
  const inCase = join(stateDir, 'daemon.sock');
  if (Buffer.byteLength(inCase) <= MAX_SOCKET_PATH) return inCase;
  const hash = createHash('sha256').update(stateDir).digest('hex').slice(0, 16);
  return join(tmpdir(), `satchel-${process.getuid?.() ?? 0}-${hash}.sock`);
}

/** Serves requests on `path` until the server is closed. */
export async function serveControl(
  path: string,
  handle: (request: ControlRequest) => Promise<unknown>,
): Promise<Server> {
  try {
    unlinkSync(path); // left by a daemon that was killed
  } catch {
    /* none */
  }
  const server = createServer((socket) => {
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      data += chunk;
      if (!data.includes('\n')) return;
      let request: ControlRequest;
      try {
        request = JSON.parse(data.slice(0, data.indexOf('\n'))) as ControlRequest;
      } catch {
        socket.end(JSON.stringify({ error: { code: 'usage', message: 'malformed request' } }) + '\n');
        return;
      }
      handle(request).then(
        (answer) => socket.end(JSON.stringify(answer) + '\n'),
        (e: unknown) => {
          const err = e as { code?: string; message?: string; hint?: string };
          socket.end(
            JSON.stringify({ error: { code: err.code ?? 'io', message: err.message, hint: err.hint } }) +
              '\n',
          );
        },
      );
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return server;
}

/** Sends one request to the daemon listening on `path`; rejects when none answers. */
export function callDaemon(path: string, request: ControlRequest, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the daemon did not answer within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(JSON.stringify(request) + '\n'));
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(data));
      } catch {
        reject(new Error('the daemon sent a malformed answer'));
      }
    });
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** The whole wait for a daemon's answer (a first copy of a big case to a stick can take long). */
const DAEMON_TIMEOUT_MS = 6 * 60 * 60 * 1000;

/** How long a command waits for a `satchel watch` that is still starting (its first reconciliation). */
const DAEMON_START_WAIT_MS = 10 * 60_000;

/**
 * Sends `request` to the `satchel watch` running on the case whose state folder is `stateDir`
 * and returns its answer; undefined when none runs. A daemon still starting (it holds the case
 * while its first reconciliation runs, and answers only once it has started) is waited for, with
 * a line on stderr saying so. An error answer is thrown as the SatchelError it describes.
 */
export async function askRunningDaemon(stateDir: string, request: ControlRequest): Promise<unknown> {
  let answer: { error?: { code: string; message: string; hint?: string } };
  const since = Date.now();
  let told = false;
  for (;;) {
    try {
      answer = (await callDaemon(controlSocketPath(stateDir), request, DAEMON_TIMEOUT_MS)) as typeof answer;
      break;
    } catch (e) {
      // No socket, or one a killed daemon left: nobody is listening (yet).
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw e;
      const holder = lockHolder(stateDir);
      if (holder?.purpose !== 'watching') return undefined;
      if (Date.now() - since > DAEMON_START_WAIT_MS) {
        throw new SatchelError(
          'case-locked',
          `satchel watch (pid ${holder.pid}) is still starting: its first reconciliation has run for ${Math.round((Date.now() - since) / 60_000)} min`,
          {
            hint: 'try again once it has started (`satchel status` shows it watching), or stop it',
            data: { pid: holder.pid },
          },
        );
      }
      if (!told) {
        process.stderr.write(
          `waiting for satchel watch (pid ${holder.pid}) to finish starting (its first reconciliation)…\n`,
        );
        told = true;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  if (answer.error) {
    throw new SatchelError(answer.error.code as never, answer.error.message, {
      hint: answer.error.hint ?? 'see `satchel status`',
    });
  }
  return answer;
}
