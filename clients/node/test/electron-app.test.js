// The README's embedding recipe, run: the app goes from a start to a page showing two streamed agent replies,
// then quits cleanly. Twice: examples/electron/ laid out as in development (the app folder holds
// resources/chat-sidecar/, the package is linked in), and an app made only of the README's snippets, with the `npm pack` output of this
// package installed by npm, laid out as electron-builder packages it (resources/chat-sidecar/ next to the app).
//
// Electron itself cannot be installed on these machines (its binary is downloaded from outside the package
// registries), so `import ... from 'electron'` resolves to stand-ins written to Electron's documented API
// (testlib/electron/standin.js); everything else is real: the bridge, the preload (loaded as a sandboxed
// renderer loads it), the page's script in a DOM (happy-dom), and the sidecar (`python -m sidecar`, or the frozen
// binary with SIDECAR_COMMAND) found where main.mjs looks for it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { chmod, cp, mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { register } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { alive, PACKAGE_DIR, REPO_DIR, sidecarCommand, tempDataDir } from '../testlib/helpers.js';
import { installPacked } from '../testlib/pack.js';

register('../testlib/electron/hooks.js', import.meta.url);

const EXAMPLE = join(PACKAGE_DIR, 'examples', 'electron');
const STANDIN = new URL('../testlib/electron/standin.js', import.meta.url).href;

/**
 * Put the sidecar where the app expects it: the frozen folder as electron-builder's extraResources copies it
 * (a link to dist/chat-sidecar/), or, for `python -m sidecar`, a launcher named like the executable.
 */
async function installSidecar(folder) {
  const [command, ...args] = sidecarCommand();
  await mkdir(dirname(folder), { recursive: true });
  if (args.length === 0 && basename(command).replace(/\.exe$/, '') === 'chat-sidecar') {
    await symlink(dirname(command), folder, 'dir');
    return;
  }
  await mkdir(folder);
  const quote = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
  const launcher = join(folder, 'chat-sidecar');
  await writeFile(launcher, `#!/bin/sh\ncd ${quote(REPO_DIR)} && exec ${[command, ...args].map(quote).join(' ')} "$@"\n`);
  await chmod(launcher, 0o755);
}

/** The pids of this process's children (Linux: /proc/<pid>/task/<tid>/children). */
function childPids() {
  const tasks = `/proc/${process.pid}/task`;
  if (!existsSync(tasks)) return null;
  return readdirSync(tasks).flatMap((tid) => {
    try {
      return readFileSync(`${tasks}/${tid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
}

/** Resolves once `predicate()` holds in the page, checking now and after every DOM change (no timers). */
function domCondition(page, predicate) {
  return new Promise((resolve) => {
    if (predicate()) return resolve();
    const observer = new page.MutationObserver(() => {
      if (predicate()) {
        observer.disconnect();
        resolve();
      }
    });
    observer.observe(page.document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  });
}

/** The files of examples/electron/ as the README shows them (main.mjs in two snippets). */
async function filesFromReadme() {
  const readme = await readFile(join(REPO_DIR, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Embedding in Electron\n'));
  const files = {};
  for (const [, file, body] of section.matchAll(/<!-- snippet: clients\/node\/examples\/electron\/(\S+) -->\n```\w*\n([\s\S]*?)\n```/g)) {
    files[file] = files[file] ? `${files[file]}\n\n${body}` : body;
  }
  return files;
}

/**
 * Start the app (its main.mjs in `appDir`) with Electron's modules stood in, and drive its page like a user.
 * `packaged`: app.isPackaged and process.resourcesPath as in an installed app; else a development run.
 */
async function runExample(t, { packaged, appDir, root }) {
  const userData = join(root, 'user-data');
  const resourcesPath = join(root, 'Chat', 'resources');
  await mkdir(userData, { recursive: true });
  // electron-builder.json: extraResources copies resources/chat-sidecar of the project to <resources>/chat-sidecar.
  const builder = JSON.parse(await readFile(join(appDir, 'electron-builder.json'), 'utf8'));
  const [{ from, to }] = builder.extraResources;
  await installSidecar(packaged ? join(resourcesPath, to) : join(appDir, from));
  const appPath = appDir;

  const run = `?run=${packaged ? 'packaged' : 'development'}`;
  const electron = await import(STANDIN + run);
  electron.app.configure({ isPackaged: packaged, appPath, userData, name: 'chat-example' });
  process.resourcesPath = packaged ? resourcesPath : undefined;
  const before = new Set(childPids() || []);

  const created = once(electron.app, 'browser-window-created');
  await import(pathToFileURL(join(appDir, 'main.mjs')).href + run); // whenReady -> sidecar.start() -> openWindow()
  const [, win] = await created;
  assert.equal(win.options.webPreferences.contextIsolation, true);
  assert.equal(win.options.webPreferences.sandbox, true);
  // The preload is the installed package's (packaged: from the tarball npm installed; development: the link).
  const preload = win.options.webPreferences.preload;
  assert.ok(preload.startsWith(packaged ? join(appDir, 'node_modules', '@chat-sidecar', 'client') : PACKAGE_DIR), preload);
  await once(win.webContents, 'did-finish-load');
  const page = win.webContents.page;
  const doc = page.document;
  const status = doc.getElementById('status');
  await domCondition(page, () => status.textContent === 'Ready' || status.textContent.startsWith('Could not'));
  assert.equal(status.textContent, 'Ready');
  assert.equal(typeof page.chatSidecar.processUserMessage, 'function');
  assert.equal(page.require, undefined, 'no Node in the page');

  // The sidecar the app started: the new child of this process.
  const children = childPids();
  const sidecarPid = (children || []).find((pid) => !before.has(pid));
  if (children) assert.ok(sidecarPid, 'the app started a sidecar');

  // The user types a message and sends it; both agents' replies stream into the page.
  doc.getElementById('text').value = 'Hello, both of you!';
  doc.getElementById('composer').requestSubmit();
  const send = doc.getElementById('composer').elements.send;
  const replies = () => [...doc.querySelectorAll('article.reply')];
  const grew = [];
  const observer = new page.MutationObserver(() => grew.push(replies().map((el) => el.querySelector('p').textContent.length).join(',')));
  observer.observe(doc.body, { subtree: true, childList: true, characterData: true });
  await domCondition(page, () => replies().length === 2 && replies().every((el) => el.dataset.status === 'complete') && !send.disabled);
  observer.disconnect();
  assert.equal(doc.querySelector('article.user').textContent, 'Hello, both of you!');
  assert.ok(new Set(grew).size > 3, 'the replies grew in steps (streamed), not at once');

  // What the page shows is what the sidecar saved.
  const [conversation] = await page.chatSidecar.conversationsList();
  const rows = await page.chatSidecar.messagesList({ conversationId: conversation.id });
  const saved = rows.filter((r) => r.role === 'agent');
  assert.equal(saved.length, 2);
  for (const el of replies()) {
    const row = saved.find((r) => r.id === el.dataset.message);
    assert.ok(row, 'each reply element names its saved message');
    assert.equal(el.querySelector('p').textContent, row.content);
    assert.equal(el.dataset.agent, row.conversationAgentId);
    assert.ok(row.content.length > 0);
  }
  assert.deepEqual(
    replies().map((el) => el.querySelector('h3').textContent).sort(),
    ['Ada', 'Grace'],
  );

  // Closing the window: the bridge goes with it; the last window closed quits the app, which closes the sidecar.
  const quit = once(electron.app, 'quit');
  win.close();
  assert.deepEqual(electron.ipcMain.handledChannels(), []);
  await quit;
  assert.deepEqual(electron.dialog.shown, []);
  if (children) assert.equal(alive(sidecarPid), false, 'the sidecar exited before the app quit');
  assert.ok((await readdir(userData)).length > 0, 'the data dir is the one app.getPath("userData") names');
}

test('development layout: examples/electron/ with <app>/resources/chat-sidecar, from a start to streamed replies to quit', { timeout: 120_000 }, async (t) => {
  // The example's files in an app folder of their own, the package linked in as `npm link` would.
  const root = await tempDataDir(t);
  const appDir = join(root, 'app');
  await cp(EXAMPLE, appDir, { recursive: true });
  await mkdir(join(appDir, 'node_modules', '@chat-sidecar'), { recursive: true });
  await symlink(PACKAGE_DIR, join(appDir, 'node_modules', '@chat-sidecar', 'client'), 'dir');
  await runExample(t, { packaged: false, appDir, root });
});

test('packaged layout: an app made of the README snippets and the packed client, process.resourcesPath/chat-sidecar', { timeout: 180_000 }, async (t) => {
  const root = await tempDataDir(t);
  const appDir = join(root, 'Chat', 'resources', 'app'); // what app.asar holds
  await mkdir(appDir, { recursive: true });
  const files = await filesFromReadme();
  assert.deepEqual(Object.keys(files).sort(), ['electron-builder.json', 'index.html', 'main.mjs', 'renderer.js']);
  for (const [name, text] of Object.entries(files)) await writeFile(join(appDir, name), `${text}\n`);
  await installPacked(appDir, { main: 'main.mjs' });
  await runExample(t, { packaged: true, appDir, root });
});
