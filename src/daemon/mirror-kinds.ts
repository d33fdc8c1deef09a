/**
 * @module daemon/mirror-kinds
 * Loads the code of the SFTP, FTP and encrypted mirror kinds on first use. Their libraries are
 * heavy to load (ssh2 alone costs ~140 ms of start-up, basic-ftp ~20 ms, measured), and a case
 * with only path mirrors never needs them: `satchel sync` starts as fast as the kinds it syncs.
 */

/** The SFTP kind: connection pool, marker access and the replica. */
export async function sftpKind() {
  const [connection, marker, replica] = await Promise.all([
    import('../mirrors/sftp/connection.js'),
    import('../mirrors/sftp/sftp-marker.js'),
    import('../mirrors/sftp/sftp-replica.js'),
  ]);
  return { ...connection, ...marker, ...replica };
}

/** The FTP kind: sessions, marker access and the push-only replica. */
export async function ftpKind() {
  const [connection, marker, replica] = await Promise.all([
    import('../mirrors/ftp/connection.js'),
    import('../mirrors/ftp/ftp-marker.js'),
    import('../mirrors/ftp/ftp-replica.js'),
  ]);
  return { ...connection, ...marker, ...replica };
}

/** The encryption layer: passphrase handling and the encrypting replica. */
export async function encryptedKind() {
  const [passphrase, replica] = await Promise.all([
    import('../mirrors/encrypted/passphrase.js'),
    import('../mirrors/encrypted/encrypted-replica.js'),
  ]);
  return { ...passphrase, ...replica };
}
