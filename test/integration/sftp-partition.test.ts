/**
 * The partition test (TESTBED §6): sshd in its own network namespace (10.77.0.2), `satchel` in
 * another (10.77.0.1), joined by a veth pair. The link is cut during a sync of 1,000 files and
 * restored; the interrupted sync ends with the mirror absent, the next one converges: both trees
 * identical, no temporary file left. Nothing here talks to 10.77.0.x from the root namespace.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SATCHEL_BIN } from '../helpers/cli.js';
import { requireRoot, requireTools, runTool, sleep } from '../helpers/process.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { makeTempDir, removeTempDir } from '../helpers/temp.js';
import { readTree, writeTree, type TreeSpec } from '../helpers/tree.js';

const NS = `sat${process.pid % 100000}`;
const CLIENT = `${NS}-h1`;
const SERVER = `${NS}-h2`;

function ip(...args: string[]): void {
  runTool('ip', args);
}

/** Runs satchel inside the client namespace; resolves with exit code and output. */
function satchelInNs(
  args: string[],
  env: NodeJS.ProcessEnv,
): { done: Promise<{ code: number | null; out: string }> } {
  const child = spawn('ip', ['netns', 'exec', CLIENT, process.execPath, SATCHEL_BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return { done: new Promise((resolve) => child.on('exit', (code) => resolve({ code, out }))) };
}

describe('SFTP mirror across a network partition', () => {
  let top = '';
  let sshd: Sshd | undefined;
  before(async () => {
    requireRoot('the partition test');
    requireTools([{ command: 'ip', debianPackage: 'iproute2' }]);
    top = makeTempDir('sftp-partition');
    ip('netns', 'add', CLIENT);
    ip('netns', 'add', SERVER);
    ip(
      'link',
      'add',
      `${NS}-v1`,
      'netns',
      CLIENT,
      'type',
      'veth',
      'peer',
      'name',
      `${NS}-v2`,
      'netns',
      SERVER,
    );
    ip('-n', CLIENT, 'addr', 'add', '10.77.0.1/24', 'dev', `${NS}-v1`);
    ip('-n', SERVER, 'addr', 'add', '10.77.0.2/24', 'dev', `${NS}-v2`);
    for (const [ns, dev] of [
      [CLIENT, `${NS}-v1`],
      [SERVER, `${NS}-v2`],
    ] as const) {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'link', 'set', dev, 'up');
    }
    mkdirSync(join(top, 'server'));
    sshd = await startSshd(join(top, 'server'), { netns: SERVER, listen: '10.77.0.2', port: 2222 });
  });
  after(async () => {
    await sshd?.stop();
    for (const ns of [CLIENT, SERVER]) runTool('ip', ['netns', 'del', ns], { check: false });
    if (top !== '') removeTempDir(top);
  });

  it('a link cut during a sync of 1,000 files heals: trees identical, no temporary files', async () => {
    const work = join(top, 'work');
    const remote = join(top, 'remote');
    mkdirSync(remote);
    const env = { SATCHEL_SSH_DIR: sshd!.sshDir, SSH_AUTH_SOCK: '', SATCHEL_SFTP_TIMEOUT_MS: '3000' };
    const spec: Record<string, string> = {};
    for (let i = 0; i < 1000; i++) spec[`d${i % 20}/f${i}.txt`] = `file ${i} `.repeat(200 + (i % 50));
    mkdirSync(work);
    writeTree(work, spec as TreeSpec);
    const url = `sftp://root@10.77.0.2:2222${remote}`;
    let r = await satchelInNs(['init', work], env).done;
    assert.equal(r.code, 0, r.out);
    r = await satchelInNs(['-C', work, 'mirror', 'add', 'srv', url], env).done;
    assert.equal(r.code, 0, r.out);

    const interrupted = satchelInNs(['-C', work, 'sync', '--json'], env);
    // Cut once the copy is under way (some files have reached the server).
    const count = (): number => (readdirSync(remote, { recursive: true }) as string[]).length;
    for (let i = 0; i < 600 && count() < 30; i++) await sleep(50);
    ip('-n', CLIENT, 'link', 'set', `${NS}-v1`, 'down');
    r = await interrupted.done;
    ip('-n', CLIENT, 'link', 'set', `${NS}-v1`, 'up');
    const report = JSON.parse(r.out.slice(r.out.indexOf('{'))) as {
      mirrors: { state: string; message?: string }[];
    };
    assert.equal(report.mirrors[0]!.state, 'absent', `the cut sync ends with the mirror absent: ${r.out}`);
    assert.match(report.mirrors[0]!.message ?? '', /connection to .* was lost/);

    r = await satchelInNs(['-C', work, 'sync', '--json'], env).done;
    assert.equal(r.code, 0, r.out);
    const strip = (root: string) =>
      [...readTree(root)].filter(([p]) => !p.startsWith('.satchel')).map(([p, n]) => [p, n.kind, n.hash]);
    assert.deepEqual(strip(remote), strip(work));
    const temps = (readdirSync(remote, { recursive: true }) as string[]).filter((p) =>
      p.includes('.satchel-tmp-'),
    );
    assert.deepEqual(temps, []);
  });
});
