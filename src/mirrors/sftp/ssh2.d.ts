/**
 * Type declarations for the parts of the `ssh2` package (1.17, CommonJS, no bundled types) that
 * the SFTP mirror uses. Only what Satchel calls is declared; see the package's README for the rest.
 */
declare module 'ssh2' {
  import type { EventEmitter } from 'node:events';
  import type { Duplex } from 'node:stream';

  /** File attributes as an SFTP server reports them (SFTP v3: whole-second times). */
  export interface Attributes {
    mode: number;
    uid: number;
    gid: number;
    size: number;
    atime: number;
    mtime: number;
  }

  /** {@link Attributes} with the file-type tests of `fs.Stats`. */
  export interface Stats extends Attributes {
    isDirectory(): boolean;
    isFile(): boolean;
    isSymbolicLink(): boolean;
    isFIFO(): boolean;
    isSocket(): boolean;
  }

  /** One entry of a directory listing. */
  export interface FileEntry {
    filename: string;
    longname: string;
    attrs: Stats;
  }

  /** What `setstat`/`fsetstat`/`open` accept. */
  export interface InputAttributes {
    mode?: number;
    size?: number;
    atime?: number | Date;
    mtime?: number | Date;
    uid?: number;
    gid?: number;
  }

  /** An SFTP status error: `code` is the SFTP status number (2 no such file, 3 permission denied, 4 failure…). */
  export interface SftpError extends Error {
    code?: number | string;
    lang?: string;
  }

  type Cb = (err: SftpError | undefined) => void;

  /** The result of `statvfs@openssh.com`. */
  export interface StatVfs {
    f_bsize: number | bigint;
    f_frsize: number | bigint;
    f_blocks: number | bigint;
    f_bfree: number | bigint;
    f_bavail: number | bigint;
  }

  /** The client side of an SFTP session (requests are pipelined: many may be outstanding). */
  export interface SFTPWrapper extends EventEmitter {
    readonly _extensions: Record<string, string>;
    readonly _maxReadLen: number;
    readonly _maxWriteLen: number;
    open(
      path: string,
      flags: string | number,
      attrs: InputAttributes,
      cb: (err: SftpError | undefined, handle: Buffer) => void,
    ): void;
    close(handle: Buffer, cb: Cb): void;
    read(
      handle: Buffer,
      buf: Buffer,
      off: number,
      len: number,
      position: number,
      cb: (err: SftpError | undefined, bytesRead: number, buf: Buffer, position: number) => void,
    ): void;
    write(handle: Buffer, buf: Buffer, off: number, len: number, position: number, cb: Cb): void;
    fstat(handle: Buffer, cb: (err: SftpError | undefined, stats: Stats) => void): void;
    fsetstat(handle: Buffer, attrs: InputAttributes, cb: Cb): void;
    setstat(path: string, attrs: InputAttributes, cb: Cb): void;
    lstat(path: string, cb: (err: SftpError | undefined, stats: Stats) => void): void;
    readdir(path: string, cb: (err: SftpError | undefined, list: FileEntry[]) => void): void;
    readlink(path: string, cb: (err: SftpError | undefined, target: string) => void): void;
    symlink(targetPath: string, linkPath: string, cb: Cb): void;
    mkdir(path: string, attrs: InputAttributes, cb: Cb): void;
    rmdir(path: string, cb: Cb): void;
    unlink(path: string, cb: Cb): void;
    rename(from: string, to: string, cb: Cb): void;
    realpath(path: string, cb: (err: SftpError | undefined, abs: string) => void): void;
    ext_openssh_rename(from: string, to: string, cb: Cb): void;
    ext_openssh_fsync(handle: Buffer, cb: Cb): void;
    ext_openssh_statvfs(path: string, cb: (err: SftpError | undefined, info: StatVfs) => void): void;
    end(): void;
  }

  /** An authentication attempt returned by an `authHandler`. */
  export type AuthAttempt =
    | { type: 'publickey'; username: string; key: Buffer | string; passphrase?: string }
    | { type: 'agent'; username: string; agent: string }
    | { type: 'none'; username: string };

  /** Options of {@link Client.connect} (the subset Satchel uses). */
  export interface ConnectConfig {
    sock?: Duplex;
    host?: string;
    port?: number;
    username?: string;
    readyTimeout?: number;
    keepaliveInterval?: number;
    keepaliveCountMax?: number;
    hostVerifier?: (key: Buffer, verify: (ok: boolean) => void) => void;
    authHandler?: (
      methodsLeft: string[] | null,
      partialSuccess: boolean | null,
      next: (attempt: AuthAttempt | false) => void,
    ) => AuthAttempt | false | undefined;
    algorithms?: { serverHostKey?: string[] };
  }

  /** The channel of a command run with {@link Client.exec}: stdin/stdout, and `stderr`. */
  export interface ClientChannel extends Duplex {
    readonly stderr: NodeJS.ReadableStream;
    close(): void;
  }

  /** An SSH client connection. */
  export class Client extends EventEmitter {
    connect(config: ConnectConfig): this;
    sftp(cb: (err: Error | undefined, sftp: SFTPWrapper) => void): void;
    exec(command: string, cb: (err: Error | undefined, channel: ClientChannel) => void): boolean;
    end(): this;
    destroy(): this;
  }

  /** A parsed key (`utils.parseKey`). */
  export interface ParsedKey {
    type: string;
    comment: string;
    getPublicSSH(): Buffer;
    isPrivateKey(): boolean;
  }

  export const utils: {
    parseKey(data: Buffer | string, passphrase?: string): ParsedKey | ParsedKey[] | Error;
    sftp: { STATUS_CODE: Record<string, number> };
  };

  /** The CommonJS module object (ESM sees the package through its default export). */
  const ssh2: { Client: typeof Client; utils: typeof utils };
  export default ssh2;
}
