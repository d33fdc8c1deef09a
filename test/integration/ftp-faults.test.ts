/**
 * FTP mirror faults through the real binary against a real pure-ftpd on 127.0.0.1: a full disk
 * on the server, passive data ports that cannot be opened, and the server killed in the middle
 * of an upload. Each time: a clear report, never a partial file under a final name, and the
 * next sync after the fault heals converges with no temporary files left.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describeRun, satchelJson, satchelOk, spawnSatchel, type SyncReport } from '../helpers/cli.js';
import { startPureFtpd, type Ftpd } from '../helpers/ftpd.js';
import { requireRoot, sleep } from '../helpers/process.js';
import { makeTempDir, removeTempDir } from '../helpers/temp.js';

const PW_ENV = 'SATCHEL_TEST_FTP_PW';
const NOBODY = 65534;

/** Every file below `dir` (on the server's disk) as path → size. */
function files(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of readdirSync(dir, { recursive: true }) as string[]) {
    const st = statSync(join(dir, p));
    if (st.isFile()) out[p] = st.size;
  }
  return out;
}

function temps(dir: string): string[] {
  return Object.keys(files(dir)).filter((p) => p.split('/').some((s) => s.startsWith('.satchel-tmp-')));
}

describe('FTP mirror faults against a real pure-ftpd', () => {
  let top = '';
  const mounts: string[] = [];
  before(() => {
    requireRoot('the FTP fault tests (tmpfs mount, pure-ftpd chroot)');
    top = makeTempDir('ftp-faults');
  });
  after(() => {
    for (const m of mounts) {
      try {
        execFileSync('umount', [m]);
      } catch {
        // Not mounted.
      }
    }
    removeTempDir(top);
  });

  /** A case with the mirror `site` on `ftpd`'s `pub`. */
  async function caseFor(
    name: string,
    ftpd: Ftpd,
  ): Promise<{ work: string; sync: () => Promise<SyncReport> }> {
    const work = join(top, name);
    const env = { [PW_ENV]: ftpd.password };
    await satchelOk(['init', work]);
    await satchelOk(
      [
        '-C',
        work,
        'mirror',
        'add',
        'site',
        `ftp://sync@127.0.0.1:${ftpd.port}/pub`,
        '--push-only',
        '--password-env',
        PW_ENV,
      ],
      { env },
    );
    return { work, sync: () => satchelJson<SyncReport>(['-C', work, 'sync'], { env }) };
  }

  it('a full disk is a no-space problem; the rest is published; it converges once there is room', async () => {
    const dir = join(top, 'full');
    mkdirSync(dir);
    const root = join(dir, 'root');
    mkdirSync(join(root, 'pub'), { recursive: true });
    execFileSync('mount', [
      '-t',
      'tmpfs',
      '-o',
      `size=1m,uid=${NOBODY},gid=${NOBODY}`,
      'satchel-ftp-full',
      join(root, 'pub'),
    ]);
    mounts.push(join(root, 'pub'));
    const ftpd = await startPureFtpd(dir, { root });
    try {
      const { work, sync } = await caseFor('case-full', ftpd);
      writeFileSync(join(work, 'small.txt'), 'small\n');
      writeFileSync(join(work, 'big.bin'), Buffer.alloc(3 * 1024 * 1024, 7));
      const report = (await sync()).mirrors[0]!;
      assert.equal(report.state, 'synced', JSON.stringify(report));
      const problem = report.problems.find((p) => p.path === 'big.bin');
      assert.equal(problem?.code, 'no-space', JSON.stringify(report.problems));
      assert.match(problem.message, /no space left/);
      const held = files(join(root, 'pub'));
      // Uploaded in parallel, the small file may meet the full disk too: then it says so.
      assert.ok(
        held['small.txt'] === 6 ||
          report.problems.some((p) => p.path === 'small.txt' && p.code === 'no-space'),
        JSON.stringify(report.problems),
      );
      assert.equal(held['big.bin'], undefined, 'no partial file under the final name');
      assert.deepEqual(temps(join(root, 'pub')), []);
      // Room again (the file shrinks to fit): the next sync converges.
      writeFileSync(join(work, 'big.bin'), Buffer.alloc(100 * 1024, 7));
      const healed = (await sync()).mirrors[0]!;
      assert.deepEqual([healed.state, healed.problems.length], ['synced', 0], JSON.stringify(healed));
      assert.equal(files(join(root, 'pub'))['big.bin'], 100 * 1024);
      assert.equal(files(join(root, 'pub'))['small.txt'], 6);
      assert.deepEqual(temps(join(root, 'pub')), []);
    } finally {
      await ftpd.stop();
    }
  });

  it('passive ports that cannot be opened: a clear report, then convergence', async () => {
    const dir = join(top, 'pasv');
    mkdirSync(dir);
    const ftpd = await startPureFtpd(dir);
    const blockers: Server[] = [];
    try {
      const { work, sync } = await caseFor('case-pasv', ftpd);
      writeFileSync(join(work, 'a.txt'), 'a\n');
      // Every passive port of the server is taken by someone else.
      for (let p = ftpd.passivePorts[0]; p <= ftpd.passivePorts[1]; p++) {
        const srv = createServer();
        await new Promise<void>((resolve) => {
          srv.once('error', () => resolve());
          srv.listen(p, '127.0.0.1', () => resolve());
        });
        blockers.push(srv);
      }
      const report = (await sync()).mirrors[0]!;
      assert.notEqual(report.state, 'synced', JSON.stringify(report));
      assert.match(report.message ?? '', /FTP server sync@127\.0\.0\.1:\d+/);
      for (const b of blockers) b.close();
      blockers.length = 0;
      const healed = (await sync()).mirrors[0]!;
      assert.deepEqual([healed.state, healed.out], ['synced', 1], JSON.stringify(healed));
      assert.deepEqual(files(join(ftpd.root, 'pub')), {
        '.satchel-mirror': files(join(ftpd.root, 'pub'))['.satchel-mirror']!,
        'a.txt': 2,
      });
    } finally {
      for (const b of blockers) b.close();
      await ftpd.stop();
    }
  });

  /**
   * Starts `sync` of `work`, kills `ftpd` once the first upload is under way and returns the
   * sync's report of the mirror (which must come, and must not say synced).
   */
  async function syncKilledMidUpload(work: string, ftpd: Ftpd): Promise<SyncReport['mirrors'][number]> {
    const run = spawnSatchel(['-C', work, 'sync', '--json'], { env: { [PW_ENV]: ftpd.password } });
    const pub = join(ftpd.root, 'pub');
    const deadline = Date.now() + 20_000;
    while (temps(pub).length === 0 && Date.now() < deadline) await sleep(2);
    await ftpd.stop();
    const result = await run.done;
    assert.ok(result.stdout.trim() !== '', describeRun(result));
    const report = (JSON.parse(result.stdout) as SyncReport).mirrors[0]!;
    assert.notEqual(report.state, 'synced', JSON.stringify(report));
    return report;
  }

  it('the server killed during an upload leaves no partial file; the next sync converges', async () => {
    const dir = join(top, 'kill');
    mkdirSync(dir);
    let ftpd = await startPureFtpd(dir);
    try {
      const { work, sync } = await caseFor('case-kill', ftpd);
      const big = Buffer.alloc(200 * 1024 * 1024, 1);
      writeFileSync(join(work, 'big.bin'), big);
      writeFileSync(join(work, 'other.txt'), 'other\n');
      const pub = join(ftpd.root, 'pub');
      await syncKilledMidUpload(work, ftpd);
      assert.equal(files(pub)['big.bin'], undefined, 'no partial file under the final name');
      ftpd = await startPureFtpd(dir, { port: ftpd.port, root: ftpd.root });
      const healed = (await sync()).mirrors[0]!;
      assert.equal(healed.state, 'synced', JSON.stringify(healed));
      assert.equal(files(pub)['big.bin'], big.length);
      assert.deepEqual(temps(pub), []);
    } finally {
      await ftpd.stop();
      rmSync(join(top, 'case-kill', 'big.bin'), { force: true });
    }
  });

  it('the server killed during many small uploads: the sync ends with a report, and converges later', async () => {
    const dir = join(top, 'kill-many');
    mkdirSync(dir);
    let ftpd = await startPureFtpd(dir);
    try {
      const { work, sync } = await caseFor('case-kill-many', ftpd);
      for (let i = 0; i < 200; i++) writeFileSync(join(work, `f${i}.txt`), Buffer.alloc(10_000, i));
      const pub = join(ftpd.root, 'pub');
      // Every upload waiting for a connection hears of the lost server: no promise is left
      // pending (which ended the process with code 13 and no report).
      const report = await syncKilledMidUpload(work, ftpd);
      assert.match(report.message ?? '', /not reachable/);
      ftpd = await startPureFtpd(dir, { port: ftpd.port, root: ftpd.root });
      const healed = (await sync()).mirrors[0]!;
      assert.equal(healed.state, 'synced', JSON.stringify(healed));
      assert.equal(Object.keys(files(pub)).filter((p) => /^f\d+\.txt$/.test(p)).length, 200);
      assert.deepEqual(temps(pub), []);
    } finally {
      await ftpd.stop();
    }
  });
});
