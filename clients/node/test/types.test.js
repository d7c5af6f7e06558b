// The generated files (src/types.d.ts, src/methods.js) are in step with schema/: a stale file fails the suite.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PACKAGE_DIR, REPO_DIR } from '../testlib/helpers.js';
import { METHODS, NOTIFICATIONS, ERROR_CODES } from '../src/sidecar.js';

const run = promisify(execFile);
const SCRIPT = join(PACKAGE_DIR, 'scripts', 'generate-types.mjs');

async function check(...args) {
  try {
    const { stdout, stderr } = await run(process.execPath, [SCRIPT, '--check', ...args], { cwd: PACKAGE_DIR });
    return { code: 0, stdout, stderr };
  } catch (err) {
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

test('src/types.d.ts and src/methods.js are up to date with schema/ (run `npm run generate` if not)', { timeout: 30_000 }, async () => {
  const { code, stderr } = await check();
  assert.equal(code, 0, stderr);
});

test('the check fails on a stale or missing file', { timeout: 30_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sidecar-types-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await copyFile(join(PACKAGE_DIR, 'src', 'methods.js'), join(dir, 'methods.js'));
  const current = await readFile(join(PACKAGE_DIR, 'src', 'types.d.ts'), 'utf8');
  await writeFile(join(dir, 'types.d.ts'), current.replace('export interface Methods {', 'export interface Methods {\n  "old:method": { params: {}; result: null };'));
  const stale = await check('--out-dir', dir);
  assert.equal(stale.code, 1);
  assert.match(stale.stderr, /types\.d\.ts is stale/);
  assert.doesNotMatch(stale.stderr, /methods\.js/);

  await rm(join(dir, 'methods.js'));
  const missing = await check('--out-dir', dir);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /methods\.js is missing/);
});

test('the method table matches openrpc.json; notifications match notifications.json', async () => {
  const openrpc = JSON.parse(await readFile(join(REPO_DIR, 'schema', 'openrpc.json'), 'utf8'));
  const notifications = JSON.parse(await readFile(join(REPO_DIR, 'schema', 'notifications.json'), 'utf8'));
  assert.deepEqual(
    METHODS.map((m) => m.name),
    openrpc.methods.map((m) => m.name),
  );
  const jsNames = METHODS.map((m) => m.jsName);
  assert.equal(new Set(jsNames).size, jsNames.length, 'wrapper names are unique');
  for (const name of jsNames) assert.match(name, /^[a-z][A-Za-z0-9]*$/);
  assert.equal(METHODS.find((m) => m.name === 'llmConfigs:create').jsName, 'llmConfigsCreate');
  assert.equal(METHODS.find((m) => m.name === '$/cancelRequest').jsName, 'sendCancelRequest');
  assert.deepEqual([...NOTIFICATIONS], Object.keys(notifications['x-methods']));
  for (const [name, e] of Object.entries(openrpc.components.errors)) assert.equal(ERROR_CODES[name], e.code);
});
