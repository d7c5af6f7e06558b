// The consumer check: a small TypeScript project (test/consumer/) that uses the package the way an app would
// (`npm pack`, then `npm install` of the tarball into a temp folder, next to typescript, @types/node and
// electron for Electron's own type definitions) and type-checks calls, events, the bridge and the preload API
// with `tsc --noEmit` (skipLibCheck off, so the package's own .d.ts files are checked too). Wrong usages are
// marked `@ts-expect-error`: tsc fails if one of them stops being an error.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { METHODS } from '../src/sidecar.js';
import { PACKAGE_DIR } from '../testlib/helpers.js';
import { installPacked, installedVersion } from '../testlib/pack.js';

const run = promisify(execFile);
const { CHANNELS } = createRequire(import.meta.url)('../src/preload.cjs');

test('an app that installs the packed client type-checks its calls, events, bridge and preload (tsc --noEmit)', { timeout: 240_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sidecar-consumer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));

  await cp(join(PACKAGE_DIR, 'test', 'consumer'), dir, { recursive: true });
  // Every wrapper the client has at run time, and every one the preload gives the page, exists in the types
  // (the template literal types of protocol.d.ts against the names generate-types.mjs computed).
  const lines = [
    "import type { SidecarClient } from '@chat-sidecar/client';",
    "import type {} from '@chat-sidecar/client/window';",
    'declare const client: SidecarClient;',
    'export const clientWrappers: Function[] = [',
    ...METHODS.map((m) => `  client.${m.jsName},`),
    '];',
    'export const pageWrappers: Function[] = [',
    ...CHANNELS.map(([, jsName]) => `  window.chatSidecar.${jsName},`),
    '];',
  ];
  await writeFile(join(dir, 'all-methods.ts'), lines.join('\n') + '\n');

  const packed = await installPacked(dir, {
    name: 'consumer-app',
    type: 'module',
    devDependencies: {
      typescript: await installedVersion('typescript'),
      '@types/node': await installedVersion('@types/node'),
      electron: await installedVersion('electron'),
    },
  });
  const files = packed.files.map((f) => f.path).sort();
  assert.ok(files.includes('src/generated/types.d.ts') && files.includes('src/preload.cjs'), files.join(', '));
  assert.deepEqual(files.filter((f) => !/^(src\/|README\.md$|package\.json$)/.test(f)), [], 'only src/, the README and package.json are packed');
  const installed = JSON.parse(await readFile(join(dir, 'node_modules', '@chat-sidecar', 'client', 'package.json'), 'utf8'));
  assert.equal(installed.name, '@chat-sidecar/client');

  const tsc = join(dir, 'node_modules', 'typescript', 'bin', 'tsc');
  const checked = await run(process.execPath, [tsc, '-p', dir], { cwd: dir }).then(
    () => ({ code: 0, out: '' }),
    (err) => ({ code: err.code, out: `${err.stdout}${err.stderr}` }),
  );
  assert.equal(checked.code, 0, checked.out);

  // And the check can fail: a wrong call in the app is a type error.
  await writeFile(join(dir, 'wrong.ts'), "import { SidecarClient } from '@chat-sidecar/client';\ndeclare const c: SidecarClient;\nawait c.messagesList({ conversationId: 42 });\nexport {};\n");
  const wrong = await run(process.execPath, [tsc, '-p', dir], { cwd: dir }).then(
    () => ({ code: 0, out: '' }),
    (err) => ({ code: err.code, out: `${err.stdout}${err.stderr}` }),
  );
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.out, /wrong\.ts\(3,\d+\): error TS2322/);
});
