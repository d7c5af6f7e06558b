// The Electron bridge (src/electron.js, main process) and the preload (src/preload.cjs, renderer) against the real
// sidecar. Electron itself cannot be installed on these machines (its binary is downloaded from outside the
// package registries), so ipcMain, webContents, ipcRenderer and contextBridge are small stand-ins written to
// Electron's documented API (testlib/electron/standin.js says what they do); the preload is loaded the way a
// sandboxed renderer loads it (a require that knows only 'electron' and a few core modules).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Window } from 'happy-dom';
import { SidecarClient, bridgeToRenderer, ERROR_CODES } from '../src/sidecar.js';
import { IpcMain, WebContents, runPreload } from '../testlib/electron/standin.js';
import { setUpConversation, startOptions, tempDataDir, waitFor } from '../testlib/helpers.js';

const PRELOAD = fileURLToPath(new URL('../src/preload.cjs', import.meta.url));
const { CHANNELS, EVENTS } = createRequire(import.meta.url)('../src/preload.cjs');

/** A window: its webContents (main side) and a page (happy-dom) whose preload exposed window.chatSidecar. */
async function openWindow(t, ipcMain, url = 'file:///app/index.html') {
  const webContents = new WebContents(ipcMain);
  webContents.mainFrame.url = url;
  const page = new Window({ url });
  t.after(() => page.happyDOM.close());
  await runPreload(PRELOAD, { window: page, ipcRenderer: webContents.ipcRenderer });
  return { webContents, page, api: page.chatSidecar };
}

async function startClient(t) {
  const client = await SidecarClient.start(startOptions(await tempDataDir(t)));
  t.after(() => client.close());
  return client;
}

/** Resolves with the first payload of `event` the page's listener gets (through window.chatSidecar.on). */
function nextEvent(api, event, predicate = () => true) {
  return new Promise((resolve) => {
    const stop = api.on(event, (payload) => {
      if (predicate(payload)) {
        stop();
        resolve(payload);
      }
    });
  });
}

test('window.chatSidecar calls the real sidecar through one ipcMain handler per method', { timeout: 60_000 }, async (t) => {
  const client = await startClient(t);
  const ipcMain = new IpcMain();
  const { webContents, api } = await openWindow(t, ipcMain);
  const bridge = bridgeToRenderer({ ipcMain, client, webContents });

  // The channels are the method names: every request but the lifecycle ones, which stay in the main process.
  assert.deepEqual(ipcMain.handledChannels(), CHANNELS.map(([method]) => method));
  assert.deepEqual(bridge.channels, ipcMain.handledChannels());
  for (const m of ['initialize', 'shutdown', 'exit', '$/cancelRequest']) assert.ok(!ipcMain.handledChannels().includes(m), m);
  assert.deepEqual([...api.channels], bridge.channels);
  for (const [, jsName] of CHANNELS) assert.equal(typeof api[jsName], 'function', jsName);
  assert.equal('ipcRenderer' in api, false);

  const conversation = await api.conversationsCreate({ title: 'From the page' });
  assert.equal(conversation.title, 'From the page');
  assert.deepEqual(await api.invoke('conversations:get', { id: conversation.id }), conversation);
  assert.deepEqual(await api.ping(), {});

  // Errors arrive as plain objects with the code and kind (an Error would keep only its message on the way).
  const missing = await api.conversationsGet({ id: 'missing' }).catch((e) => e);
  assert.equal(missing.name, 'RpcError');
  assert.equal(missing.code, ERROR_CODES.NotFound);
  assert.equal(missing.kind, 'not_found');
  assert.equal(missing.data.kind, 'not_found');
  const invalid = await api.rolesCreate({ name: 'x', systemPrompt: 'y', bogus: 1 }).catch((e) => e);
  assert.equal(invalid.code, ERROR_CODES.InvalidParams);
  assert.equal(invalid.data.field, 'bogus');
  const wrongType = await api.invoke('ping', 'text').catch((e) => e);
  assert.equal(wrongType.name, 'TypeError');

  // Methods the page may not call never reach ipcMain.
  const lifecycle = await api.invoke('shutdown').catch((e) => e);
  assert.equal(lifecycle.code, 'ERR_UNKNOWN_METHOD');
  const raw = await webContents.ipcRenderer.invoke('shutdown').catch((e) => e);
  assert.match(raw.message, /No handler registered for 'shutdown'/);
  assert.deepEqual(await client.ping(), {}, 'the sidecar is still up');

  // A process-level error crosses too.
  await client.close();
  const closed = await api.ping().catch((e) => e);
  assert.equal(closed.name, 'SidecarConnectionError');
  assert.equal(closed.code, 'ERR_SIDECAR_CLOSED');
});

test('agent:update and all:complete reach the page while a turn streams; the listener gets only the payload', { timeout: 60_000 }, async (t) => {
  const client = await startClient(t);
  const ipcMain = new IpcMain();
  const { webContents, api } = await openWindow(t, ipcMain);
  bridgeToRenderer({ ipcMain, client, webContents });
  const { conversation, agents } = await setUpConversation((m, p) => api.invoke(m, p), {
    agents: [
      { name: 'Ada', model: 'demo', demo: true },
      { name: 'Grace', model: 'demo', demo: true },
    ],
  });

  const updates = [];
  const argCounts = new Set();
  const stop = api.on('agent:update', (...args) => {
    argCounts.add(args.length);
    updates.push(args[0]);
  });
  const done = nextEvent(api, 'all:complete', (e) => e.conversationId === conversation.id);
  const result = await api.processUserMessage({ conversationId: conversation.id, content: 'Hello from the renderer' });
  const allComplete = await done;
  stop();
  assert.equal(allComplete.userMessageId, result.userMessageId);
  assert.deepEqual([...argCounts], [1]);
  assert.equal(result.successfulAgents, 2);

  const rows = await api.messagesList({ conversationId: conversation.id });
  for (const { member } of agents) {
    const mine = updates.filter((u) => u.conversationAgentId === member.id);
    assert.equal(mine[0].status, 'thinking');
    assert.equal(mine.at(-1).status, 'complete');
    const text = mine.filter((u) => u.status === 'streaming').map((u) => u.delta).join('');
    assert.equal(text, rows.find((r) => r.id === mine.at(-1).messageId).content);
  }

  // Unknown events are refused in the preload; a removed listener hears nothing more.
  assert.throws(() => api.on('window:close', () => {}), /unknown event/);
  assert.equal(webContents.ipcRenderer.listenerCount('agent:update'), 0);
});

test('auto:state is forwarded by name, listed in notifications.json or not', { timeout: 30_000 }, async (t) => {
  // A stand-in sidecar that answers initialize, then sends auto:state when pinged.
  const frame = (msg) => {
    const body = JSON.stringify(msg);
    return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  };
  const script = `
    let buf = '';
    process.stdin.on('data', (d) => {
      buf += d;
      const m = /\\r\\n\\r\\n(\\{.*\\})$/s.exec(buf);
      if (!m) return;
      buf = '';
      const req = JSON.parse(m[1]);
      const out = [];
      if (req.method === 'ping') out.push(${JSON.stringify(frame({ jsonrpc: '2.0', method: 'auto:state', params: { conversationId: 'c1', runId: 'r1', state: 'running', replies: 0 } }))});
      if (req.id !== undefined) {
        const body = JSON.stringify({ jsonrpc: '2.0', id: req.id, result: req.method === 'ping' ? {} : null });
        out.push('Content-Length: ' + Buffer.byteLength(body) + '\\r\\n\\r\\n' + body);
      }
      process.stdout.write(out.join(''));
    });
  `;
  const client = await SidecarClient.start({ command: process.execPath, args: ['-e', script], restart: false, closeTimeoutMs: 1000 });
  t.after(() => client.close());
  const ipcMain = new IpcMain();
  const { webContents, api } = await openWindow(t, ipcMain);
  bridgeToRenderer({ ipcMain, client, webContents });
  assert.ok(EVENTS.includes('auto:state'));

  const onClient = waitFor(client, 'auto:state');
  const onPage = nextEvent(api, 'auto:state');
  assert.deepEqual(await api.ping(), {});
  assert.deepEqual(await onClient, { conversationId: 'c1', runId: 'r1', state: 'running', replies: 0 });
  assert.deepEqual(await onPage, { conversationId: 'c1', runId: 'r1', state: 'running', replies: 0 });
});

test('the sender is checked: another window, an iframe or an untrusted page is refused before the sidecar', { timeout: 30_000 }, async (t) => {
  const client = await startClient(t);
  let calls = 0;
  const realCall = client.call.bind(client);
  client.call = (...args) => {
    calls++;
    return realCall(...args);
  };
  const ipcMain = new IpcMain();
  const { webContents, api } = await openWindow(t, ipcMain);
  bridgeToRenderer({ ipcMain, client, webContents, isTrustedFrame: (frame) => new URL(frame.url).protocol === 'file:' });
  assert.deepEqual(await api.ping(), {});
  assert.equal(calls, 1);

  // Another window (its own webContents) invoking the same channel.
  const other = await openWindow(t, ipcMain);
  const fromOther = await other.api.ping().catch((e) => e);
  assert.match(fromOther.message, /ping refused: not sent by the bridged window's top frame/);
  // An iframe of the bridged window.
  const { ipcRenderer: iframe } = webContents.subframe('file:///app/frame.html');
  await assert.rejects(iframe.invoke('conversations:list'), /refused/);
  // The bridged window after navigating somewhere untrusted.
  webContents.mainFrame.url = 'https://example.invalid/';
  await assert.rejects(api.conversationsList(), /refused/);
  // A frame that is gone: Electron's senderFrame is null then.
  await assert.rejects(ipcMain._invoke({ sender: webContents, senderFrame: null }, 'ping', []), /refused/);
  assert.equal(calls, 1, 'no refused call reached the sidecar');
});

test('closing the window removes the handlers and listeners; a new window can be bridged; a second bridge is refused', { timeout: 30_000 }, async (t) => {
  const client = await startClient(t);
  const ipcMain = new IpcMain();
  const first = await openWindow(t, ipcMain);
  bridgeToRenderer({ ipcMain, client, webContents: first.webContents });
  const listening = () => EVENTS.map((e) => client.listenerCount(e));
  assert.ok(listening().every((n) => n === 1));

  // A second bridge while the first is alive: ipcMain refuses the channel, and the attempt leaves nothing behind.
  const second = await openWindow(t, ipcMain);
  assert.throws(() => bridgeToRenderer({ ipcMain, client, webContents: second.webContents }), /second handler for 'ping'/);
  assert.ok(listening().every((n) => n === 1));

  first.webContents.destroy(); // the window closed
  assert.deepEqual(ipcMain.handledChannels(), []);
  assert.ok(listening().every((n) => n === 0));
  client.emit('agent:update', { status: 'thinking' }); // nothing is sent to the destroyed webContents (it would throw)

  const bridge = bridgeToRenderer({ ipcMain, client, webContents: second.webContents });
  assert.deepEqual(await second.api.ping(), {});
  bridge.dispose();
  bridge.dispose();
  assert.deepEqual(ipcMain.handledChannels(), []);
  assert.ok(listening().every((n) => n === 0));
});

test('the preload refuses to run without context isolation, and needs nothing but electron in a sandbox', async (t) => {
  const page = new Window({ url: 'file:///app/index.html' });
  t.after(() => page.happyDOM.close());
  const webContents = new WebContents(new IpcMain());
  await assert.rejects(
    runPreload(PRELOAD, { window: page, ipcRenderer: webContents.ipcRenderer, contextIsolation: false }),
    /only be used when contextIsolation is enabled/,
  );
  assert.equal(page.chatSidecar, undefined);
  // Loaded in a sandbox (runPreload's default): exposed, frozen.
  await runPreload(PRELOAD, { window: page, ipcRenderer: webContents.ipcRenderer });
  assert.ok(Object.isFrozen(page.chatSidecar));
  // Loaded in Node (not a renderer): exports only, exposes nothing.
  const { stdout } = await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', `const p = require(${JSON.stringify(PRELOAD)}); console.log(Object.keys(p).sort().join(','))`]);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve({ stdout: out }) : reject(new Error(`exit ${code}`))));
  });
  assert.equal(stdout.trim(), 'API_KEY,CHANNELS,EVENTS,createChatSidecarApi,exposeChatSidecar');
});
