/** @module daemon/mirror-url.test Tests of mirror URL and name parsing. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SatchelError } from '../core/errors.js';
import { describeMirrorUrl, parseMirrorUrl, validateMirrorName } from './mirror-url.js';

/** Asserts that `fn` throws a SatchelError with `code` whose message matches `message`. */
function assertSatchelError(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof SatchelError, `expected a SatchelError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, message);
    assert.ok(error.hint !== undefined && error.hint.length > 0, 'has a hint');
    return true;
  });
}

describe('parseMirrorUrl', () => {
  const paths: readonly { url: string; root: string; description: string }[] = [
    { url: '/media/u/STICK/work', root: '/media/u/STICK/work', description: 'absolute path' },
    { url: '/media/u/STICK/work/', root: '/media/u/STICK/work', description: 'trailing slash' },
    { url: '/media//u/./STICK/../STICK/work', root: '/media/u/STICK/work', description: 'unnormalised' },
    { url: 'file:///mnt/share/work', root: '/mnt/share/work', description: 'file URL' },
    { url: 'FILE:///mnt/share/work', root: '/mnt/share/work', description: 'upper-case scheme' },
    { url: 'file:///mnt/my%20share', root: '/mnt/my share', description: 'percent-encoded file URL' },
    { url: 'file://localhost/mnt/x', root: '/mnt/x', description: 'file URL naming localhost' },
    { url: '/', root: '/', description: 'root folder' },
  ];
  for (const { url, root, description } of paths) {
    it(`parses ${url} as a path mirror (${description})`, () => {
      assert.deepEqual(parseMirrorUrl(url), { kind: 'path', root });
    });
  }
  const sftp: readonly { url: string; parsed: unknown }[] = [
    { url: 'sftp://me@host/work', parsed: { kind: 'sftp', host: 'host', user: 'me', path: '/work' } },
    {
      url: 'sftp://me@host:2222/srv/w/',
      parsed: { kind: 'sftp', host: 'host', port: 2222, user: 'me', path: '/srv/w' },
    },
    { url: 'sftp://alias/~/work', parsed: { kind: 'sftp', host: 'alias', path: 'work' } },
    { url: 'sftp://[::1]:22/x%20y', parsed: { kind: 'sftp', host: '::1', port: 22, path: '/x y' } },
  ];
  for (const { url, parsed } of sftp) {
    it(`parses ${url} as an SFTP mirror`, () => {
      assert.deepEqual(parseMirrorUrl(url), parsed);
    });
  }
  for (const url of ['sftp://host', 'sftp://host/', 'sftp://me:secret@host/x']) {
    it(`refuses the SFTP URL ${url}`, () => {
      assertSatchelError(() => parseMirrorUrl(url), 'usage', /not a usable SFTP URL/);
    });
  }
  const ftp: readonly { url: string; parsed: unknown }[] = [
    {
      url: 'ftp://me@host:2121/pub',
      parsed: { kind: 'ftp', host: 'host', port: 2121, user: 'me', path: 'pub', secure: false },
    },
    { url: 'ftps://host/pub/site/', parsed: { kind: 'ftp', host: 'host', path: 'pub/site', secure: true } },
    { url: 'ftp://host//srv/x%20y', parsed: { kind: 'ftp', host: 'host', path: '//srv/x y', secure: false } },
  ];
  for (const { url, parsed } of ftp) {
    it(`parses the FTP URL ${url}`, () => {
      assert.deepEqual(parseMirrorUrl(url), parsed);
    });
  }
  for (const url of ['ftp://host', 'ftp://host/', 'ftp://me:secret@host/x']) {
    it(`refuses the FTP URL ${url}`, () => {
      assertSatchelError(() => parseMirrorUrl(url), 'usage', /not a usable FTP URL/);
    });
  }
  for (const url of ['ssh://me@host/work']) {
    it(`recognises ${url} as not available yet`, () => {
      assertSatchelError(() => parseMirrorUrl(url), 'mirror-unsupported', /not available in this version/);
    });
  }
  for (const url of ['work', './work', '../stick', '~/stick', '']) {
    it(`refuses the relative path "${url}", naming what is allowed`, () => {
      assertSatchelError(() => parseMirrorUrl(url), 'usage', /not an absolute path/);
    });
  }
  it('refuses unknown schemes', () => {
    assertSatchelError(() => parseMirrorUrl('http://host/x'), 'usage', /unknown scheme http:/);
  });
  it('names a bad port, in SFTP and FTP URLs', () => {
    assertSatchelError(
      () => parseMirrorUrl('sftp://lab:99999/x'),
      'usage',
      /the port "99999" is not a number from 1 to 65535/,
    );
    assertSatchelError(
      () => parseMirrorUrl('ftp://me@host:abc/x'),
      'usage',
      /the port "abc" is not a number/,
    );
  });
  it("an FTP URL naming no folder says how to name the login folder's or an absolute one", () => {
    assertSatchelError(
      () => parseMirrorUrl('ftp://host/'),
      'usage',
      /ftp:\/\/host\/\/abs\/path for an absolute one/,
    );
  });
  it('refuses file URLs with a remote host', () => {
    assertSatchelError(() => parseMirrorUrl('file://server/share'), 'usage', /not a local file URL/);
  });
});

describe('validateMirrorName', () => {
  for (const name of ['stick', 'Stick2', 'home.nas', 'a', 'usb_key-1', '9', 'x'.repeat(64)]) {
    it(`accepts "${name.length > 20 ? `${name.length} chars` : name}"`, () => {
      validateMirrorName(name);
    });
  }
  for (const name of ['', '-stick', '.hidden', '_x', 'my stick', 'a/b', 'x'.repeat(65), 'stíck', 'a:b']) {
    it(`refuses "${name.length > 20 ? `${name.length} chars` : name}", naming the rule`, () => {
      assertSatchelError(() => validateMirrorName(name), 'usage', /invalid mirror name/);
    });
  }
});

describe('describeMirrorUrl', () => {
  it('writes a server mirror as people read it: IPv6 in brackets, ~ for the login folder', () => {
    assert.equal(
      describeMirrorUrl(parseMirrorUrl('sftp://me@[::1]:2222/srv/work')),
      'me@[::1]:2222:/srv/work',
    );
    assert.equal(describeMirrorUrl(parseMirrorUrl('sftp://me@host/~/work')), 'me@host:~/work');
    assert.equal(describeMirrorUrl(parseMirrorUrl('sftp://host/~/')), 'host:~');
    assert.equal(describeMirrorUrl(parseMirrorUrl('ftp://me@[::1]:2121/www')), 'ftp://me@[::1]:2121/www');
    assert.equal(describeMirrorUrl(parseMirrorUrl('ftp://me@host//srv/www')), 'ftp://me@host//srv/www');
    assert.equal(describeMirrorUrl(parseMirrorUrl('/media/me/STICK/work')), '/media/me/STICK/work');
  });
});
