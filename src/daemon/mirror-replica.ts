/**
 * @module daemon/mirror-replica
 * Turns a configured mirror into a live {@link Replica}, after checking that it is present:
 * its root exists and holds the marker with the mirror's id. A mount point without the marker
 * (stick not plugged in, share not mounted) is absent, never "everything deleted".
 */
import { SatchelError } from '../core/errors.js';
import { MARKER_NAME } from '../core/reserved.js';
import { type Marker, readMarker } from '../mirrors/path/marker.js';
import { PathReplica } from '../mirrors/path/path-replica.js';
import { isNetworkFileSystem, mountFsType, probeCapabilities } from '../mirrors/path/probe.js';
import type { Replica } from '../replica/replica.js';
import type { CaseContext } from './case.js';
import type { MirrorConfig } from './config.js';
import { encryptedKind, ftpKind, sftpKind } from './mirror-kinds.js';
import { locateMirror } from './mirror-locate.js';
import { describeMirrorUrl, parseMirrorUrl, type FtpMirrorUrl, type SftpMirrorUrl } from './mirror-url.js';
import type { MirrorReport } from './pair-sync.js';

/** A configured mirror, opened when present. */
export interface OpenedMirror {
  readonly name: string;
  /** The UUID of the mirror's marker (the key of its ancestor). */
  readonly id: string;
  readonly pushOnly: boolean;
  /** Where the mirror was found (when present). */
  readonly root?: string;
  /** The replica, or undefined when the mirror is absent. */
  readonly replica: Replica | undefined;
  /** Why the mirror is absent (when `replica` is undefined). */
  readonly absentReport: MirrorReport;
}

function absent(name: string, message: string, hint: string): MirrorReport {
  return { mirror: name, state: 'absent', in: 0, out: 0, conflicts: [], problems: [], message, hint };
}

/** The report of a mirror that is there but cannot be used, with the error's stable code. */
function failed(name: string, e: SatchelError): MirrorReport {
  return { ...absent(name, e.message, e.hint ?? ''), state: 'failed', code: e.code };
}

/** Checks presence of mirror `name` of the case and opens it. */
export async function openMirror(ctx: CaseContext, name: string): Promise<OpenedMirror> {
  const config = ctx.config.mirrors[name];
  if (config === undefined) throw new Error(`bug: mirror '${name}' is not configured`);
  const base = { name, id: config.id, pushOnly: config.pushOnly };
  let url;
  try {
    url = parseMirrorUrl(config.url);
  } catch (e) {
    if (!(e instanceof SatchelError)) throw e;
    return {
      ...base,
      replica: undefined,
      absentReport: failed(name, e),
    };
  }
  if (url.kind !== 'path' && config.encrypt) {
    // Never send plaintext to a mirror configured as encrypted.
    const why = 'encryption is only available on path mirrors in this version';
    return {
      ...base,
      replica: undefined,
      absentReport: { ...absent(name, why, 'remove the mirror or its encrypt flag'), state: 'failed' },
    };
  }
  if (url.kind === 'sftp') return openSftpMirror(ctx, name, url);
  if (url.kind === 'ftp') return openFtpMirror(ctx, name, url);
  let marker;
  try {
    marker = await readMarker(url.root);
  } catch (e) {
    if (!(e instanceof SatchelError)) throw e;
    // A damaged marker fails this mirror only; the others are synced as usual.
    return {
      ...base,
      replica: undefined,
      absentReport: e.code === 'config-invalid' ? failed(name, e) : absent(name, e.message, e.hint ?? ''),
    };
  }
  let root = url.root;
  if (marker?.id !== config.id && (config.search?.length ?? 0) > 0) {
    // Mounted somewhere else? A stick is recognised by its marker, wherever it is.
    const found = await locateMirror(config);
    if (found) {
      root = found.root;
      marker = found.marker;
    }
  }
  const searched = config.search?.length ? ` (nor below ${config.search.join(', ')})` : '';
  if (marker === undefined) {
    return {
      ...base,
      replica: undefined,
      absentReport: absent(
        name,
        `marker ${MARKER_NAME} not found at ${url.root}${searched}`,
        'plug in or mount the mirror; Satchel leaves a mirror without its marker untouched',
      ),
    };
  }
  if (marker.id !== config.id) {
    return {
      ...base,
      replica: undefined,
      absentReport: absent(
        name,
        `the marker at ${url.root} belongs to another mirror (id ${marker.id}, case '${marker.case}'), not to '${name}' (id ${config.id})`,
        'mount the right folder there, or remove and re-add the mirror',
      ),
    };
  }
  const replica = new PathReplica({
    root,
    label: name,
    // A hand-written config may leave the capabilities out: probe them now.
    capabilities: config.capabilities ?? (await probeCapabilities(root)),
    role: 'mirror',
    // Network mounts keep their calls off the event loop; local disks are faster without.
    blockingIo: !isNetworkFileSystem(await mountFsType(root)),
  });
  if (config.encrypt) return openEncrypted(base, root, replica, config, marker.passphraseCheck);
  if (marker.passphraseCheck !== undefined) {
    // Never send plaintext to a mirror whose marker says it is encrypted.
    await replica.close();
    return {
      ...base,
      replica: undefined,
      absentReport: {
        ...absent(
          name,
          `the marker at ${root} says the mirror is encrypted, but "${name}" is configured without encryption`,
          `remove the mirror and add it again with --encrypt`,
        ),
        state: 'failed',
      },
    };
  }
  return { ...base, root, replica, absentReport: absent(name, '', '') };
}

/**
 * Opens an SFTP mirror: connects (a pooled connection when one is alive), then checks the marker.
 * An unreachable server is absent; a refused host key or login is failed, with the reason.
 */
async function openSftpMirror(ctx: CaseContext, name: string, url: SftpMirrorUrl): Promise<OpenedMirror> {
  const config = ctx.config.mirrors[name]!;
  const { acquireSession, readSftpMarker, SFTP_CAPABILITIES, SftpReplica } = await sftpKind();
  return openRemoteMirror({ name, id: config.id, pushOnly: config.pushOnly }, describeMirrorUrl(url), {
    connect: () => acquireSession(url),
    readMarker: (session) => readSftpMarker(session, url.path),
    release: (session) => session.release(),
    replica: (session) =>
      new SftpReplica({
        session,
        root: url.path,
        label: name,
        capabilities: config.capabilities ?? SFTP_CAPABILITIES,
      }),
  });
}

/** How to reach a mirror on a server: connect, read its marker, let the session go, make the replica. */
interface RemoteAccess<S> {
  connect(): Promise<S>;
  readMarker(session: S): Promise<Marker | undefined>;
  release(session: S): void;
  replica(session: S): Replica;
}

/**
 * Opens a mirror on a server through `access`: a failure to connect or to read the marker is
 * absent (`mirror-absent`) or failed (anything else), with the reason; a folder without this
 * mirror's marker is absent and left untouched.
 */
async function openRemoteMirror<S>(
  base: { readonly name: string; readonly id: string; readonly pushOnly: boolean },
  where: string,
  access: RemoteAccess<S>,
): Promise<OpenedMirror> {
  const notOpened = (e: SatchelError): OpenedMirror => ({
    ...base,
    replica: undefined,
    absentReport:
      e.code === 'mirror-absent' ? absent(base.name, e.message, e.hint ?? '') : failed(base.name, e),
  });
  let session: S;
  try {
    session = await access.connect();
  } catch (e) {
    if (e instanceof SatchelError) return notOpened(e);
    throw e;
  }
  let marker;
  try {
    marker = await access.readMarker(session);
  } catch (e) {
    access.release(session);
    if (e instanceof SatchelError && e.code !== 'config-invalid') return notOpened(e);
    throw e;
  }
  if (marker?.id !== base.id) {
    access.release(session);
    return notThisMirror(base, where, marker);
  }
  return { ...base, root: where, replica: access.replica(session), absentReport: absent(base.name, '', '') };
}

/** A server folder without this mirror's marker: absent, and left untouched. */
function notThisMirror(
  base: { readonly name: string; readonly id: string; readonly pushOnly: boolean },
  where: string,
  marker: { readonly id: string; readonly case: string } | undefined,
): OpenedMirror {
  return {
    ...base,
    replica: undefined,
    absentReport: absent(
      base.name,
      marker === undefined
        ? `marker ${MARKER_NAME} not found at ${where}`
        : `the marker at ${where} belongs to another mirror (id ${marker.id}, case '${marker.case}'), not to '${base.name}' (id ${base.id})`,
      'check the folder on the server; Satchel leaves a mirror without its marker untouched',
    ),
  };
}

/**
 * Opens an FTP mirror (always push-only): connects, then checks the marker. An unreachable
 * server is absent; a refused login or certificate is failed, with the reason.
 */
async function openFtpMirror(ctx: CaseContext, name: string, url: FtpMirrorUrl): Promise<OpenedMirror> {
  const config = ctx.config.mirrors[name]!;
  const { ftpTarget, openFtpSession, readFtpMarker, FTP_CAPABILITIES, FtpReplica } = await ftpKind();
  // Whatever the config says, an FTP mirror is never a source.
  return openRemoteMirror({ name, id: config.id, pushOnly: true }, describeMirrorUrl(url), {
    connect: () => openFtpSession(ftpTarget(url, config), { interactive: true }),
    readMarker: (session) => readFtpMarker(session),
    release: (session) => session.close(),
    replica: (session) =>
      new FtpReplica({ session, label: name, capabilities: config.capabilities ?? FTP_CAPABILITIES }),
  });
}

/**
 * Wraps an opened mirror in the encryption layer. A missing or wrong passphrase leaves the
 * mirror unopened (`failed`, with the reason), before anything on it is read or written.
 */
async function openEncrypted(
  base: { name: string; id: string; pushOnly: boolean },
  root: string,
  inner: Replica,
  config: MirrorConfig,
  markerCheck: string | undefined,
): Promise<OpenedMirror> {
  // The marker's check is authoritative (it travels with the mirror); the config's copy serves
  // mirrors whose marker predates it.
  const check = markerCheck ?? config.passphraseCheck;
  if (check === undefined) {
    throw new SatchelError(
      'config-invalid',
      `mirror "${base.name}" is encrypted but neither its config nor its marker has a passphrase check`,
      {
        hint: 'remove the mirror and add it again with --encrypt',
      },
    );
  }
  const { mirrorKeys, EncryptedReplica } = await encryptedKind();
  try {
    const keys = await mirrorKeys({
      mirror: base.name,
      check,
      ...(config.passphraseFile === undefined ? {} : { file: config.passphraseFile }),
      ...(config.secondPassphrase === true ? { second: true } : {}),
    });
    return {
      ...base,
      root,
      replica: new EncryptedReplica({ inner, keys }),
      absentReport: absent(base.name, '', ''),
    };
  } catch (e) {
    await inner.close();
    if (!(e instanceof SatchelError)) throw e;
    return {
      ...base,
      replica: undefined,
      absentReport: failed(base.name, e),
    };
  }
}
