/**
 * @module core/capabilities
 * What a replica's storage can hold, probed once when a mirror is added (path mirrors) or
 * known from the protocol (SFTP, FTP). The planner uses it to decide what needs encoding,
 * what is a problem and how precisely modification times can be compared.
 */

/** What a replica can store and how. */
export interface Capabilities {
  /** Satchel may read changes back from it (false for push-only mirrors). */
  readonly readable: boolean;
  /** Satchel may write to it. */
  readonly writable: boolean;
  /** Symbolic links can be stored as links. */
  readonly symlinks: boolean;
  /** The owner-executable bit is stored and reported. */
  readonly executableBit: boolean;
  /** `A.txt` and `a.txt` are two different files. */
  readonly caseSensitive: boolean;
  /** Smallest difference of stored modification times, in ms (1 for ext4, 1000 for exFAT, 2000 for FAT). */
  readonly mtimeGranularityMs: number;
  /** Characters a name cannot hold (`:?*<>|"\` on FAT and exFAT), stored encoded instead. */
  readonly forbiddenChars: string;
  /** Names cannot end in a dot or a space (FAT, exFAT, SMB); such names are stored encoded. */
  readonly forbidsTrailingDotOrSpace: boolean;
  /** Largest file size in bytes (FAT32: 4 GiB - 1); `Number.MAX_SAFE_INTEGER` when unlimited. */
  readonly maxFileSize: number;
  /** Longest name segment, in UTF-16 code units after encoding (255 on FAT/exFAT/ext4). */
  readonly maxNameLength: number;
}

/** Capabilities of an ordinary POSIX file system such as ext4 (the case itself). */
export const POSIX_CAPABILITIES: Capabilities = Object.freeze({
  readable: true,
  writable: true,
  symlinks: true,
  executableBit: true,
  caseSensitive: true,
  mtimeGranularityMs: 1,
  forbiddenChars: '',
  forbidsTrailingDotOrSpace: false,
  maxFileSize: Number.MAX_SAFE_INTEGER,
  maxNameLength: 255,
});

/** Whether `caps` allows changes to flow back from the replica into the case. */
export function isTwoWay(caps: Capabilities): boolean {
  return caps.readable && caps.writable;
}
