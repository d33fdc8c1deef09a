/**
 * @module mirrors/secret-prompt
 * Asking for a secret (a passphrase, a password) on the terminal without echoing it, shared by
 * every mirror kind that needs one. Callers check that stdin is a terminal first.
 */
import { SatchelError } from '../core/errors.js';

/** The question being asked, if any: the next one waits for its answer. */
let asking: Promise<unknown> = Promise.resolve();

/**
 * Asks `question` on stderr and reads a line from the terminal without echo. Questions asked at
 * the same time (mirrors probed together) are asked one after another, never interleaved.
 */
export function promptHidden(question: string): Promise<string> {
  const answer = asking.then(
    () => askNow(question),
    () => askNow(question),
  );
  asking = answer.catch(() => undefined);
  return answer;
}

/**
 * Asks at once. Reads with `data` events rather than `for await`: leaving an async iterator early
 * destroys stdin, and the next question (a passphrase asked twice) would then fail.
 */
function askNow(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  return new Promise<string>((resolve, reject) => {
    let out = '';
    const release = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    const done = (error: Error | undefined): void => {
      release();
      if (error) reject(error);
      else resolve(out);
    };
    const onData = (data: Buffer): void => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(undefined);
        if (ch === '\u0003') {
          // Ctrl-C in raw mode is a character: the terminal is given back, then it is the signal
          // it would have been (exit 130, as for Ctrl-C anywhere else; nothing was written yet).
          release();
          if (process.listenerCount('SIGINT') > 0) process.emit('SIGINT', 'SIGINT');
          else reject(new SatchelError('usage', 'cancelled', { hint: 'nothing was changed' }));
          return;
        }
        if (ch === '\u007f' || ch === '\b') out = out.slice(0, -1);
        else out += ch;
      }
    };
    stdin.on('data', onData);
    stdin.resume();
  });
}
