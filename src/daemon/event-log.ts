/**
 * @module daemon/event-log
 * The daemon's structured log: one JSON object per line in `<case>/.satchel/events.log`
 * (rotated to `events.log.1` past 10 MiB), and a short human line on stderr. Passphrases and
 * file contents never go here; paths and counts do.
 */
import { appendFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ChangeNotes } from './pair-sync.js';
import { visible } from '../core/visible.js';

/** What kind of thing happened. */
export type EventKind =
  | 'started'
  | 'stopping'
  | 'stopped'
  | 'shipped'
  | 'incoming'
  | 'conflict'
  | 'problem'
  | 'drift'
  | 'present'
  | 'absent'
  | 'halted'
  | 'failed'
  | 'watch-limit'
  | 'ejected'
  | 'rescan';

/** One event of the log. */
export interface DaemonEvent {
  readonly event: EventKind;
  readonly mirror?: string;
  readonly paths?: readonly string[];
  readonly message?: string;
  readonly [key: string]: unknown;
}

const ROTATE_BYTES = 10 * 1024 * 1024;

/** Appends events to the case's event log. */
export class EventLog {
  readonly file: string;
  #written = 0;

  constructor(
    stateDir: string,
    private readonly echo: (line: string) => void = (line) => process.stderr.write(line + '\n'),
  ) {
    this.file = join(stateDir, 'events.log');
    try {
      this.#written = statSync(this.file).size;
    } catch {
      this.#written = 0;
    }
  }

  /** Records `event` with the current time, and echoes a one-line summary. */
  write(event: DaemonEvent): void {
    const line = JSON.stringify({ time: new Date().toISOString(), ...event });
    try {
      if (this.#written > ROTATE_BYTES) {
        renameSync(this.file, this.file + '.1');
        this.#written = 0;
      }
      appendFileSync(this.file, line + '\n');
      this.#written += line.length + 1;
    } catch {
      // The log is a convenience: a full disk must not stop replication.
    }
    this.echo(summary(event));
  }
}

/**
 * The `deleted` and `renamed` fields of a `shipped` or `incoming` event: which of its paths were
 * deletions and renames ([from, to]); absent when there were none.
 */
export function notesFields(notes: ChangeNotes | undefined): {
  deleted?: readonly string[];
  renamed?: readonly (readonly [string, string])[];
} {
  if (notes === undefined) return {};
  return {
    ...(notes.deleted.length > 0 ? { deleted: notes.deleted } : {}),
    ...(notes.renamed.length > 0 ? { renamed: notes.renamed } : {}),
  };
}

/** The paths of an event as the human line shows them: `gone.txt deleted`, `old.txt → new.txt`. */
function shownPaths(e: DaemonEvent): string[] {
  const deleted = new Set(Array.isArray(e.deleted) ? (e.deleted as string[]) : []);
  const renamed = Array.isArray(e.renamed) ? (e.renamed as [string, string][]) : [];
  const renameOf = new Map(renamed.map(([from, to]) => [to, from]));
  const renamedAway = new Set(renamed.map(([from]) => from));
  const out: string[] = [];
  for (const p of new Set(e.paths ?? [])) {
    if (renamedAway.has(p)) continue;
    const from = renameOf.get(p);
    out.push(from !== undefined ? `${from} → ${p}` : deleted.has(p) ? `${p} deleted` : p);
  }
  return out;
}

/**
 * The human one-liner of an event, e.g. `stick: shipped 3 (a.txt, b.txt, old.txt deleted)`
 * (control characters in names written as escapes: one event, one line).
 */
export function summary(e: DaemonEvent): string {
  return visible(summaryText(e));
}

function summaryText(e: DaemonEvent): string {
  const who = e.mirror ? `${e.mirror}: ` : '';
  // A mirror that (re)appeared: the briefcase line, `stick: 12 in, 3 out, 0 conflicts`.
  if (e.event === 'present' && e.message)
    return `${who}${e.message} (present${e.root ? ` at ${String(e.root)}` : ''})`;
  // A conflict names its path and where the other version went.
  if (e.event === 'conflict' && e.paths?.length === 2)
    return `${who}conflict ${e.paths[0]} (the other version kept as ${e.paths[1]})${e.message ? ` — ${e.message}` : ''}`;
  const unique = shownPaths(e);
  const paths = unique.length
    ? ` ${unique.length} (${unique.slice(0, 3).join(', ')}${unique.length > 3 ? ', …' : ''})`
    : '';
  return `${who}${e.event}${paths}${e.message ? ` — ${e.message}` : ''}`;
}
