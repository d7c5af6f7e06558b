// `npm pack` this package and install the tarball into a temp project, the way an app would.

import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PACKAGE_DIR } from './helpers.js';

const run = promisify(execFile);
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** npm's environment for a project of its own (not the one `npm test` runs in). */
function npmEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_(package_|lifecycle_|config_(local_prefix|prefix|global_prefix)$)/i.test(k)) continue;
    env[k] = v;
  }
  return env;
}

/** The version of a dev dependency as installed here (so a temp project gets the same, from npm's cache). */
export async function installedVersion(name) {
  return JSON.parse(await readFile(join(PACKAGE_DIR, 'node_modules', name, 'package.json'), 'utf8')).version;
}

/**
 * `npm pack` into `dir`, write `dir/package.json` (`manifest` plus the tarball as a dependency) and
 * `npm install` there: from npm's cache (`npm ci` filled it with these very versions), the registry only for what
 * is missing. Returns `npm pack`'s report of the tarball ({filename, files, ...}).
 */
export async function installPacked(dir, manifest = {}) {
  const { stdout } = await run(NPM, ['pack', '--json', '--pack-destination', dir], { cwd: PACKAGE_DIR, env: npmEnv() });
  const [packed] = JSON.parse(stdout);
  const pkg = {
    name: 'chat-app',
    version: '1.0.0',
    private: true,
    ...manifest,
    dependencies: { '@chat-sidecar/client': `file:./${packed.filename}`, ...(manifest.dependencies || {}) },
  };
  await writeFile(join(dir, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
  await run(NPM, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, env: npmEnv() });
  return packed;
}
