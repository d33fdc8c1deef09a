/** Tests of the SSH config reader: host patterns, first value wins, `Include` with globs. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { expandInclude, hostMatches, resolveHost } from './ssh-config.js';

const dir = mkdtempSync(join(tmpdir(), 'satchel-sshconfig-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it('hostMatches: wildcards, negations, case-insensitive', () => {
  assert.equal(hostMatches('web1.example.org', ['*.example.org']), true);
  assert.equal(hostMatches('WEB1', ['web?']), true);
  assert.equal(hostMatches('web10', ['web?']), false);
  assert.equal(hostMatches('db.example.org', ['*.example.org', '!db.*']), false);
});

it('resolveHost: the first value for a keyword wins; the URL user and port win over the config', () => {
  const ssh = join(dir, 'first');
  mkdirSync(ssh);
  writeFileSync(
    join(ssh, 'config'),
    [
      'Host box',
      '  HostName 127.0.0.1',
      '  Port 2222',
      '  User alice',
      '  IdentityFile ~/.ssh/box_key',
      'Host *',
      '  Port 22',
      '  User nobody',
    ].join('\n'),
  );
  const h = resolveHost('box', {}, ssh);
  assert.equal(h.hostName, '127.0.0.1');
  assert.equal(h.port, 2222);
  assert.equal(h.user, 'alice');
  assert.match(h.identityFiles[0]!, /\.ssh\/box_key$/);
  const fromUrl = resolveHost('box', { user: 'bob', port: 2022 }, ssh);
  assert.deepEqual([fromUrl.user, fromUrl.port], ['bob', 2022]);
});

it('Include: glob patterns relative to the SSH folder, in sorted order, as ssh expands them', () => {
  const ssh = join(dir, 'globs');
  mkdirSync(join(ssh, 'config.d'), { recursive: true });
  writeFileSync(join(ssh, 'config'), 'Include config.d/*.conf\nHost *\n  User fallback\n');
  // Sorted: 10-work.conf comes before 20-late.conf, so its Port wins for work.
  writeFileSync(join(ssh, 'config.d', '20-late.conf'), 'Host work\n  Port 3333\n');
  writeFileSync(join(ssh, 'config.d', '10-work.conf'), 'Host work\n  HostName 127.0.0.2\n  Port 2200\n');
  writeFileSync(join(ssh, 'config.d', 'notes.txt'), 'Host work\n  Port 1\n');
  writeFileSync(join(ssh, 'config.d', '.hidden.conf'), 'Host work\n  Port 2\n');
  const h = resolveHost('work', {}, ssh);
  assert.deepEqual([h.hostName, h.port, h.user], ['127.0.0.2', 2200, 'fallback']);
  assert.deepEqual(
    expandInclude(join(ssh, 'config.d', '[12]0-*.conf')).map((f) => f.slice(ssh.length + 1)),
    ['config.d/10-work.conf', 'config.d/20-late.conf'],
  );
  assert.deepEqual(expandInclude(join(ssh, 'nothing', '*')), []);
});

it('Include inside a Host block applies only to that block, and the block goes on after it', () => {
  const ssh = join(dir, 'scoped');
  mkdirSync(ssh);
  writeFileSync(join(ssh, 'extra'), 'Port 2201\n');
  writeFileSync(
    join(ssh, 'config'),
    'Host special\n  Include extra\n  User carol\nHost *\n  User everyone\n',
  );
  const special = resolveHost('special', {}, ssh);
  assert.deepEqual([special.port, special.user], [2201, 'carol']);
  const other = resolveHost('other', {}, ssh);
  assert.deepEqual([other.port, other.user], [22, 'everyone']);
});

it('ProxyJump or ProxyCommand for the host is refused with what to do, never bypassed', () => {
  const ssh = join(dir, 'proxy');
  mkdirSync(ssh);
  writeFileSync(
    join(ssh, 'config'),
    'Host inside\n  HostName 10.0.0.5\n  ProxyJump gate\nHost direct\n  ProxyCommand none\n',
  );
  assert.throws(
    () => resolveHost('inside', {}, ssh),
    /sets ProxyJump for inside, which Satchel does not follow yet/,
  );
  assert.equal(resolveHost('direct', {}, ssh).hostName, 'direct');
});
