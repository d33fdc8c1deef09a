// Builds Satchel's native addons (every native/<name>/binding.gyp -> native/<name>/build/Release/<name>.node)
// with the node-gyp that ships inside npm, so no extra dependency is needed. Each addon has a
// pure-JavaScript fallback in src/, so an addon is a speed-up, never a requirement at run time.
// Usage: node scripts/build-native.mjs            (rebuild)
//        SATCHEL_NODE_GYP=/path/to/node-gyp.js node scripts/build-native.mjs
// On systems other than Linux there is no inotify: it says so and exits 0 (the watcher then uses
// @parcel/watcher). A failed build exits 1 with node-gyp's output above the reason.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const addonDirs = readdirSync(nativeDir, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(nativeDir, d.name, 'binding.gyp')))
  .map((d) => join(nativeDir, d.name))
  .sort();

if (process.platform !== 'linux') {
  console.log(`build-native: the addons are built for Linux only; skipping on ${process.platform}`);
  process.exit(0);
}

/** Where npm's own node-gyp may live, most specific first. */
function nodeGypCandidates() {
  const out = [];
  if (process.env.SATCHEL_NODE_GYP) out.push(process.env.SATCHEL_NODE_GYP);
  // Under `npm run`, npm tells us where its CLI script is: <npm>/bin/npm-cli.js.
  if (process.env.npm_execpath) {
    out.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  // The `npm` executable on PATH is usually a link to <npm>/bin/npm-cli.js.
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const npm = join(dir, 'npm');
    if (!existsSync(npm)) continue;
    try {
      const real = realpathSync(npm);
      out.push(join(dirname(real), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
    } catch {
      // A dangling link: try the next PATH entry.
    }
  }
  // Last resort: ask npm where its global prefix is.
  const prefix = spawnSync('npm', ['prefix', '-g'], { encoding: 'utf8' });
  if (prefix.status === 0 && prefix.stdout.trim()) {
    const p = prefix.stdout.trim();
    out.push(join(p, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
    out.push(join(p, 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  // A node-gyp installed in the project itself.
  out.push(join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return out;
}

const nodeGyp = nodeGypCandidates().find((p) => existsSync(p));
if (!nodeGyp) {
  console.error(
    'build-native: cannot find node-gyp (looked inside npm next to the `npm` on PATH and under `npm prefix -g`); ' +
      'set SATCHEL_NODE_GYP=/path/to/node-gyp/bin/node-gyp.js',
  );
  process.exit(1);
}

// node-gyp run directly (not by npm) does not read npm's config, so pass the headers of this
// Node ourselves when they are installed beside it (distribution packages: /usr/include/node);
// otherwise node-gyp falls back to its own header cache or download.
const nodedir = process.env.npm_config_nodedir ?? dirname(dirname(process.execPath));
const withHeaders = existsSync(join(nodedir, 'include', 'node', 'node_api.h'));
for (const addonDir of addonDirs) {
  const args = [nodeGyp, 'rebuild', '--directory', addonDir];
  if (withHeaders) args.push(`--nodedir=${nodedir}`);
  const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
  if (r.status !== 0) {
    console.error(`build-native: node-gyp failed (exit ${r.status ?? r.signal}) building ${addonDir}`);
    process.exit(1);
  }
  const name = addonDir.slice(nativeDir.length + 1);
  console.log(`build-native: built ${join(addonDir, 'build', 'Release', `${name}.node`)}`);
}
