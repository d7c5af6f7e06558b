// The generated files (src/generated/types.d.ts from json-schema-to-typescript, src/generated/protocol.js, the
// generated block of src/preload.cjs) are in step with schema/: a stale file fails the suite.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PACKAGE_DIR, REPO_DIR } from '../testlib/helpers.js';
import { METHODS, NOTIFICATIONS, ERROR_CODES } from '../src/sidecar.js';

const run = promisify(execFile);
const SCRIPT = join(PACKAGE_DIR, 'scripts', 'generate-types.mjs');
const preload = createRequire(import.meta.url)('../src/preload.cjs');

async function generator(...args) {
  try {
    const { stdout, stderr } = await run(process.execPath, [SCRIPT, ...args], { cwd: PACKAGE_DIR });
    return { code: 0, stdout, stderr };
  } catch (err) {
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** A copy of the generated files (src/generated/, src/preload.cjs) in a temp --out-dir. */
async function copyOfOutputs(t) {
  const dir = await mkdtemp(join(tmpdir(), 'sidecar-types-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await cp(join(PACKAGE_DIR, 'src', 'generated'), join(dir, 'generated'), { recursive: true });
  await cp(join(PACKAGE_DIR, 'src', 'preload.cjs'), join(dir, 'preload.cjs'));
  return dir;
}

test('the generated files are up to date with schema/ (run `npm run generate` if not)', { timeout: 60_000 }, async () => {
  const { code, stderr } = await generator('--check');
  assert.equal(code, 0, stderr);
  const inputs = await generator('--check-inputs');
  assert.equal(inputs.code, 0, inputs.stderr);
});

test('the generated types name each schema once (no `Id1`, `Name2` copies of a referenced type)', async () => {
  const types = await readFile(join(PACKAGE_DIR, 'src', 'generated', 'types.d.ts'), 'utf8');
  const names = new Set([...types.matchAll(/^export (?:type|interface) (\w+)/gm)].map((m) => m[1]));
  const copies = [...names].filter((n) => /\D\d+$/.test(n) && names.has(n.replace(/\d+$/, '')));
  assert.deepEqual(copies, []);
  for (const n of ['Methods', 'Notifications', 'ClientNotifications', 'AgentUpdate', 'AgentUpdateStreaming', 'Message', 'ProcessUserMessageParams', 'ErrorKind']) {
    assert.ok(names.has(n), n);
  }
});

test('--check fails on a stale or missing file, and names it', { timeout: 60_000 }, async (t) => {
  const dir = await copyOfOutputs(t);
  const typesPath = join(dir, 'generated', 'types.d.ts');
  const current = await readFile(typesPath, 'utf8');
  await writeFile(typesPath, current.replace('export interface Methods {', 'export interface Methods {\n  "old:method": { params: {}; result: null };'));
  const stale = await generator('--check', '--out-dir', dir);
  assert.equal(stale.code, 1);
  assert.match(stale.stderr, /types\.d\.ts is stale/);
  assert.doesNotMatch(stale.stderr, /protocol\.js|preload\.cjs/);

  await rm(join(dir, 'generated', 'protocol.js'));
  const missing = await generator('--check', '--out-dir', dir);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /protocol\.js is missing/);
});

test('--check-inputs (no node_modules needed) fails when schema/ changed since the files were generated', { timeout: 60_000 }, async (t) => {
  const dir = await copyOfOutputs(t);
  const schemaDir = join(dir, 'schema');
  await mkdir(schemaDir);
  await cp(join(REPO_DIR, 'schema', 'notifications.json'), join(schemaDir, 'notifications.json'));
  const openrpc = JSON.parse(await readFile(join(REPO_DIR, 'schema', 'openrpc.json'), 'utf8'));
  // The same documents, written differently: still fresh.
  await writeFile(join(schemaDir, 'openrpc.json'), JSON.stringify(openrpc));
  const same = await generator('--check-inputs', '--schema-dir', schemaDir, '--out-dir', dir);
  assert.equal(same.code, 0, same.stderr);
  // A method more: every generated file is stale.
  openrpc.methods.push({ name: 'new:method', params: [], result: { name: 'r', schema: { type: 'null' } } });
  await writeFile(join(schemaDir, 'openrpc.json'), JSON.stringify(openrpc));
  const changed = await generator('--check-inputs', '--schema-dir', schemaDir, '--out-dir', dir);
  assert.equal(changed.code, 1);
  for (const f of ['types.d.ts', 'protocol.js', 'preload.cjs']) assert.match(changed.stderr, new RegExp(`${f.replace('.', '\\.')} was not generated`));
});

test('a method added to schema/ reaches the types, the wrappers and the preload channels', { timeout: 60_000 }, async (t) => {
  const dir = await copyOfOutputs(t);
  const schemaDir = join(dir, 'schema');
  await mkdir(schemaDir);
  const openrpc = JSON.parse(await readFile(join(REPO_DIR, 'schema', 'openrpc.json'), 'utf8'));
  const notifications = JSON.parse(await readFile(join(REPO_DIR, 'schema', 'notifications.json'), 'utf8'));
  openrpc.methods.push({
    name: 'widgets:frobnicate',
    summary: 'A method only this test knows.',
    params: [{ name: 'widgetId', required: true, schema: { $ref: '#/components/schemas/Id' } }],
    result: { name: 'Conversation', schema: { $ref: '#/components/schemas/Conversation' } },
  });
  notifications['x-methods']['widget:spun'] = { type: 'object', additionalProperties: false, required: ['turns'], properties: { turns: { type: 'integer' } } };
  await writeFile(join(schemaDir, 'openrpc.json'), JSON.stringify(openrpc));
  await writeFile(join(schemaDir, 'notifications.json'), JSON.stringify(notifications));
  const { code, stderr } = await generator('--schema-dir', schemaDir, '--out-dir', dir);
  assert.equal(code, 0, stderr);
  const types = await readFile(join(dir, 'generated', 'types.d.ts'), 'utf8');
  assert.match(types, /export interface WidgetsFrobnicateParams \{\n\s+widgetId: Id;\n\}/);
  assert.match(types, /"widgets:frobnicate": \{\n\s+params: WidgetsFrobnicateParams;\n\s+result: Conversation;/);
  assert.match(types, /"widget:spun": \{[^}]*\bturns: number;/);
  const protocol = await readFile(join(dir, 'generated', 'protocol.js'), 'utf8');
  assert.match(protocol, /name: "widgets:frobnicate", jsName: "widgetsFrobnicate", notification: false/);
  assert.match(protocol, /NOTIFICATIONS = Object\.freeze\(\[.*"widget:spun"\]\)/);
  const preloadText = await readFile(join(dir, 'preload.cjs'), 'utf8');
  assert.match(preloadText, /\["widgets:frobnicate", "widgetsFrobnicate"\]/);
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

test('the preload allows exactly the requests but initialize and shutdown, and forwards agent:update, all:complete, auto:state', () => {
  const requests = METHODS.filter((m) => !m.notification && !['initialize', 'shutdown'].includes(m.name));
  assert.deepEqual(
    preload.CHANNELS.map(([name, jsName]) => ({ name, jsName })),
    requests.map(({ name, jsName }) => ({ name, jsName })),
  );
  for (const e of ['agent:update', 'all:complete', 'auto:state', ...NOTIFICATIONS]) assert.ok(preload.EVENTS.includes(e), e);
});
