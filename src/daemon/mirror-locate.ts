/**
 * @module daemon/mirror-locate
 * Finds where a mirror is mounted now: at its configured path, or — for a stick that the system
 * mounted somewhere else — below one of its `search` folders, recognised by the marker holding
 * the mirror's id (never by its path).
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { SatchelError } from '../core/errors.js';
import { type Marker, readMarker } from '../mirrors/path/marker.js';
import type { MirrorConfig } from './config.js';
import { ftpKind, sftpKind } from './mirror-kinds.js';
import { describeMirrorUrl, parseMirrorUrl, type FtpMirrorUrl, type SftpMirrorUrl } from './mirror-url.js';

/** How deep below a search folder a mirror root may sit (`/media/me` → `STICK/work` is 2). */
export const SEARCH_DEPTH = 3;
/** At most this many folders are listed per search folder (a bound on a huge tree). */
const SEARCH_BUDGET = 2000;

/** Where a mirror was found. */
export interface LocatedMirror {
  readonly root: string;
  readonly marker: Marker;
  /** True when found below a search folder rather than at the configured path. */
  readonly moved: boolean;
}

async function markerAt(root: string): Promise<Marker | undefined> {
  try {
    return await readMarker(root);
  } catch (e) {
    // Unreachable or malformed here: not this mirror (the configured path reports its own error).
    if (e instanceof SatchelError) return undefined;
    throw e;
  }
}

/** Breadth-first search for the marker with id `id` below `dir`. */
async function searchBelow(dir: string, id: string): Promise<LocatedMirror | undefined> {
  let level = [dir];
  let budget = SEARCH_BUDGET;
  for (let depth = 0; depth <= SEARCH_DEPTH && level.length > 0; depth++) {
    const next: string[] = [];
    for (const d of level) {
      if (depth > 0) {
        const marker = await markerAt(d);
        if (marker?.id === id) return { root: d, marker, moved: true };
      }
      if (depth === SEARCH_DEPTH || budget <= 0) continue;
      let children;
      try {
        children = await fsp.readdir(d, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const c of children) {
        if (c.isDirectory() && budget-- > 0) next.push(join(d, c.name));
      }
    }
    level = next;
  }
  return undefined;
}

/**
 * Where the mirror is now, or undefined when it is absent (nothing with its marker at the
 * configured path nor below a search folder). Throws only for a URL of another kind.
 */
export async function locateMirror(config: MirrorConfig): Promise<LocatedMirror | undefined> {
  const url = parseMirrorUrl(config.url);
  if (url.kind === 'sftp') return locateSftpMirror(url, config.id);
  if (url.kind === 'ftp') return locateFtpMirror(url, config);
  const root = url.root;
  const marker = await markerAt(root);
  if (marker?.id === config.id) return { root, marker, moved: false };
  for (const dir of config.search ?? []) {
    const found = await searchBelow(dir, config.id);
    if (found) return found;
  }
  return undefined;
}

/** An SFTP mirror is where its URL says, when the server answers and holds the marker. */
async function locateSftpMirror(url: SftpMirrorUrl, id: string): Promise<LocatedMirror | undefined> {
  let session;
  const { acquireSession, readSftpMarker } = await sftpKind();
  try {
    session = await acquireSession(url);
  } catch (e) {
    if (e instanceof SatchelError) return undefined;
    throw e;
  }
  try {
    const marker = await readSftpMarker(session, url.path);
    return marker?.id === id ? { root: describeMirrorUrl(url), marker, moved: false } : undefined;
  } catch (e) {
    if (e instanceof SatchelError) return undefined;
    throw e;
  } finally {
    session.release();
  }
}

/** An FTP mirror is where its URL says, when the server answers and holds the marker. */
async function locateFtpMirror(url: FtpMirrorUrl, config: MirrorConfig): Promise<LocatedMirror | undefined> {
  let session;
  const { ftpTarget, openFtpSession, readFtpMarker } = await ftpKind();
  try {
    session = await openFtpSession(ftpTarget(url, config));
  } catch (e) {
    if (e instanceof SatchelError) return undefined;
    throw e;
  }
  try {
    const marker = await readFtpMarker(session);
    return marker?.id === config.id ? { root: describeMirrorUrl(url), marker, moved: false } : undefined;
  } catch (e) {
    if (e instanceof SatchelError) return undefined;
    throw e;
  } finally {
    session.close();
  }
}
