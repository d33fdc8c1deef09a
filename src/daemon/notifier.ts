/**
 * @module daemon/notifier
 * Desktop notifications through `notify-send` where it exists (silently nothing where it does
 * not, e.g. on a server); the event log has everything anyway.
 */
import { spawn, spawnSync } from 'node:child_process';

/** Sends short desktop notifications. */
export interface Notifier {
  notify(title: string, body: string): void;
}

/** A notifier that uses `notify-send` when it is on the PATH and a display session exists. */
export function desktopNotifier(): Notifier {
  const available =
    process.env.SATCHEL_NO_NOTIFY === undefined &&
    spawnSync('sh', ['-c', 'command -v notify-send'], { stdio: 'ignore' }).status === 0;
  return {
    notify(title: string, body: string): void {
      if (!available) return;
      try {
        const child = spawn('notify-send', ['--app-name=Satchel', title, body], {
          stdio: 'ignore',
          detached: true,
        });
        child.on('error', () => {});
        child.unref();
      } catch {
        // No notification is better than a stopped daemon.
      }
    },
  };
}
