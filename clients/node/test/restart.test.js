// The restart policy, EPIPE handling and the no-orphan guarantees.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SidecarClient, SidecarConnectionError } from '../src/sidecar.js';
import { alive, protocolVersion, setUpConversation, startOptions, tempDataDir, waitFor } from '../testlib/helpers.js';

const noBackoff = { backoffMs: () => 0 };

test('SIGKILL: pending calls are rejected, the client restarts the sidecar, the next ping works', { timeout: 30_000 }, async (t) => {
  const dataDir = await tempDataDir(t);
  const client = await SidecarClient.start(startOptions(dataDir, { restart: noBackoff }));
  t.after(() => client.close());

  // A turn in flight at crash time, with text already streaming.
  const { conversation } = await setUpConversation((m, p) => client.call(m, p), {
    agents: [{ name: 'Sleepy', model: 'demo-slow', demo: true }],
  });
  const streaming = waitFor(client, 'agent:update', (u) => u.status === 'streaming');
  const turn = client.processUserMessage({ conversationId: conversation.id, content: 'Tell me a long story.' });
  const { messageId } = await streaming;

  const firstPid = client.pid;
  const exit = waitFor(client, 'exit');
  const restarted = waitFor(client, 'restart');
  process.kill(firstPid, 'SIGKILL');

  await assert.rejects(turn, (e) => e instanceof SidecarConnectionError && e.code === 'ERR_SIDECAR_EXITED');
  const exitEvent = await exit;
  assert.equal(exitEvent.signal, 'SIGKILL');
  assert.equal(exitEvent.expected, false);
  const restart = await restarted;
  assert.equal(restart.attempt, 1);
  assert.equal(restart.signal, 'SIGKILL');
  assert.notEqual(client.pid, firstPid);
  assert.equal(client.state, 'running');
  assert.equal(client.initializeResult.protocolVersion, protocolVersion());

  assert.deepEqual(await client.ping(), {});
  // Same data dir: the reply that was streaming when the process died is now `interrupted`.
  const rows = await client.messagesList({ conversationId: conversation.id });
  assert.equal(rows.find((r) => r.id === messageId).status, 'interrupted');
});

test('calls made while the sidecar restarts wait for the new process', { timeout: 30_000 }, async (t) => {
  const dataDir = await tempDataDir(t);
  const client = await SidecarClient.start(startOptions(dataDir, { restart: { backoffMs: () => 50 } }));
  t.after(() => client.close());
  const exit = waitFor(client, 'exit');
  process.kill(client.pid, 'SIGKILL');
  await exit;
  assert.equal(client.state, 'restarting');
  const [pong, restart] = await Promise.all([client.ping(), waitFor(client, 'restart')]);
  assert.deepEqual(pong, {});
  assert.equal(restart.attempt, 1);
});

test('the cap: 6 kills in a row -> fatal after the 5th restart; calls then reject', { timeout: 60_000 }, async (t) => {
  const dataDir = await tempDataDir(t);
  const client = await SidecarClient.start(startOptions(dataDir, { restart: noBackoff }));
  t.after(() => client.close());
  const restarts = [];
  client.on('restart', (e) => restarts.push(e.attempt));
  let fatalSeen = null;
  client.on('fatal', (e) => {
    fatalSeen = e;
  });

  for (let kill = 1; kill <= 5; kill++) {
    const restarted = waitFor(client, 'restart');
    process.kill(client.pid, 'SIGKILL');
    assert.equal((await restarted).attempt, kill);
    assert.deepEqual(await client.ping(), {});
  }
  assert.equal(fatalSeen, null);
  assert.equal(client.restartCount, 5);

  const fatal = waitFor(client, 'fatal');
  const lastPid = client.pid;
  process.kill(lastPid, 'SIGKILL');
  const event = await fatal;
  assert.equal(event.restarts, 5);
  assert.equal(event.signal, 'SIGKILL');
  assert.match(event.reason, /6 times within 180 s/);
  assert.deepEqual(restarts, [1, 2, 3, 4, 5]);
  assert.equal(client.state, 'fatal');
  assert.equal(client.pid, undefined);
  assert.equal(alive(lastPid), false);
  await assert.rejects(client.ping(), { code: 'ERR_SIDECAR_FATAL' });
  await client.close(); // nothing left to stop
  assert.equal(client.state, 'closed');
});

test('the window: restarts older than windowMs do not count', { timeout: 30_000 }, async (t) => {
  const dataDir = await tempDataDir(t);
  // A 1-restart cap over a tiny window: two crashes far enough apart both restart.
  const client = await SidecarClient.start(startOptions(dataDir, { restart: { maxRestarts: 1, windowMs: 1, backoffMs: () => 0 } }));
  t.after(() => client.close());
  for (let i = 0; i < 2; i++) {
    const restarted = waitFor(client, 'restart');
    process.kill(client.pid, 'SIGKILL');
    await restarted;
  }
  assert.deepEqual(await client.ping(), {});
});

test('restart: false -> an unexpected exit is fatal at once', { timeout: 30_000 }, async (t) => {
  const dataDir = await tempDataDir(t);
  const client = await SidecarClient.start(startOptions(dataDir, { restart: false }));
  t.after(() => client.close());
  const fatal = waitFor(client, 'fatal');
  process.kill(client.pid, 'SIGKILL');
  assert.match((await fatal).reason, /restarting is disabled/);
  await assert.rejects(client.ping(), { code: 'ERR_SIDECAR_FATAL' });
});

/** An LSP frame (what vscode-jsonrpc writes and reads), for the stand-in processes below. */
const frame = (msg) => {
  const body = Buffer.from(JSON.stringify(msg), 'utf8');
  return `Content-Length: ${body.length}\r\n\r\n${body.toString('utf8')}`;
};

test('EPIPE on stdin: no crash, the pending call is rejected', { timeout: 30_000 }, async (t) => {
  // Not a sidecar: a process that closes its stdin at once, says so with a notification and lingers, so every
  // write hits a broken pipe.
  const script = `require('fs').closeSync(0); process.stdout.write(${JSON.stringify(frame({ jsonrpc: '2.0', method: 'ready' }))}); setTimeout(() => {}, 20000);`;
  const client = new SidecarClient({ command: process.execPath, args: ['-e', script], initialize: false, restart: false, closeTimeoutMs: 200 });
  const ready = waitFor(client, 'notification', (method) => method === 'ready');
  await client.start();
  t.after(() => client.close());
  await ready; // stdin is closed by now
  const err = await client.ping().catch((e) => e);
  assert.ok(err instanceof SidecarConnectionError, String(err));
  assert.equal(err.code, 'ERR_SIDECAR_EPIPE');
  // A second call fails the same way, known broken before anything is written.
  await assert.rejects(client.ping(), { code: 'ERR_SIDECAR_EPIPE' });
  const exit = await client.close();
  assert.ok(exit.signal === 'SIGTERM' || exit.code !== null);
});

test('a sidecar that dies mid-frame: the pending call rejects, the half frame is dropped, the restart answers', { timeout: 30_000 }, async (t) => {
  // The first process is a stand-in: it answers `initialize`, then, on the next request, writes the header and
  // half the body of a notification frame and exits 3. Every later start runs the real sidecar.
  const dataDir = await tempDataDir(t);
  const real = startOptions(dataDir);
  const marker = join(dataDir, 'stand-in-ran');
  const standIn = `
    const fs = require('fs');
    if (fs.existsSync(${JSON.stringify(marker)})) {
      const real = require('child_process').spawn(${JSON.stringify(real.command)}, ${JSON.stringify([...real.args, '--data-dir', dataDir])}, { stdio: 'inherit', cwd: ${JSON.stringify(real.cwd)} });
      real.on('exit', (code) => process.exit(code ?? 1));
      process.on('SIGTERM', () => real.kill('SIGTERM'));
    } else {
      fs.writeFileSync(${JSON.stringify(marker)}, '');
      let buf = '';
      process.stdin.on('data', (d) => {
        buf += d;
        const m = /\\r\\n\\r\\n(\\{.*\\})$/s.exec(buf);
        if (!m) return;
        const req = JSON.parse(m[1]);
        buf = '';
        if (req.method === 'initialize') {
          const body = JSON.stringify({ jsonrpc: '2.0', id: req.id, result: { protocolVersion: 'stand-in' } });
          process.stdout.write('Content-Length: ' + Buffer.byteLength(body) + '\\r\\n\\r\\n' + body);
          return;
        }
        const body = JSON.stringify({ jsonrpc: '2.0', method: 'agent:update', params: { delta: 'x'.repeat(4000) } });
        process.stdout.write('Content-Length: ' + body.length + '\\r\\n\\r\\n' + body.slice(0, 2000), () => process.exit(3));
      });
    }
  `;
  const client = await SidecarClient.start({ command: process.execPath, args: ['-e', standIn], restart: { backoffMs: () => 0 } });
  t.after(() => client.close());
  assert.equal(client.initializeResult.protocolVersion, 'stand-in');
  const notifications = [];
  client.on('notification', (method) => notifications.push(method));

  const exit = waitFor(client, 'exit');
  const restarted = waitFor(client, 'restart');
  const err = await client.conversationsList().catch((e) => e);
  assert.ok(err instanceof SidecarConnectionError, String(err));
  assert.equal(err.code, 'ERR_SIDECAR_EXITED');
  assert.equal(err.exitCode, 3);
  assert.equal((await exit).code, 3);
  assert.deepEqual(notifications, [], 'the half frame never became a notification');
  await restarted;
  assert.equal(client.initializeResult.protocolVersion, protocolVersion());
  assert.deepEqual(await client.conversationsList(), []);
  assert.deepEqual(await client.close(), { code: 0, signal: null });
});

test('after a sidecar died mid-frame and the client closed, nothing keeps the Node process alive', { timeout: 30_000 }, async (t) => {
  // vscode-jsonrpc re-arms a "partial message" timer every 10 s while a frame is incomplete, even after the
  // stream ended; the client turns it off. A Node program with such a client must end by itself.
  const clientUrl = new URL('../src/sidecar.js', import.meta.url).href;
  const halfFrame = "process.stdin.once('data', () => process.stdout.write('Content-Length: 100\\r\\n\\r\\n{\"jsonrpc\":', () => process.exit(3)));";
  const program = `
    const { SidecarClient } = await import(${JSON.stringify(clientUrl)});
    const c = new SidecarClient({ command: process.execPath, args: ['-e', ${JSON.stringify(halfFrame)}], restart: false });
    await c.start().catch((e) => console.log(e.code));
    await c.close();
    console.log('closed');
  `;
  const node = spawn(process.execPath, ['--input-type=module', '-e', program], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => node.kill('SIGKILL')); // if it hangs, the timeout fails the test, not the whole suite
  let out = '';
  node.stdout.on('data', (d) => (out += d));
  const [code] = await once(node, 'close');
  assert.equal(code, 0);
  assert.deepEqual(out.trim().split('\n'), ['ERR_SIDECAR_EXITED', 'closed']);
});

test('a command that cannot be started rejects start()', { timeout: 10_000 }, async () => {
  await assert.rejects(SidecarClient.start({ command: '/nonexistent/chat-sidecar' }), { code: 'ERR_SIDECAR_SPAWN' });
});

test('no orphan: when the Node process exits, its sidecar goes too', { timeout: 30_000 }, async (t) => {
  const dataDir = await tempDataDir(t);
  // A Node program that starts a sidecar, prints its pid and exits without closing the client.
  const clientUrl = new URL('../src/sidecar.js', import.meta.url).href;
  const opts = startOptions(dataDir);
  const program = `
    const { SidecarClient } = await import(${JSON.stringify(clientUrl)});
    const c = await SidecarClient.start(${JSON.stringify(opts)});
    await c.ping();
    console.log(JSON.stringify({ pid: c.pid }));
    process.exit(0);
  `;
  const node = spawn(process.execPath, ['--input-type=module', '-e', program], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(createInterface({ input: node.stdout }), 'line');
  const { pid } = JSON.parse(line);
  const [code] = await once(node, 'close');
  assert.equal(code, 0);
  // The exit hook sent SIGTERM; the sidecar exits within 2 s. It is not our child, so there is no event to
  // await: poll its pid (bounded by the test timeout).
  while (alive(pid)) await new Promise((r) => setTimeout(r, 50));
  assert.equal(alive(pid), false);
});

test('no orphan: when the Node process is SIGKILLed (no exit handlers), its sidecar goes too', { timeout: 30_000 }, async (t) => {
  const dataDir = await tempDataDir(t);
  const clientUrl = new URL('../src/sidecar.js', import.meta.url).href;
  const program = `
    const { SidecarClient } = await import(${JSON.stringify(clientUrl)});
    const c = await SidecarClient.start(${JSON.stringify(startOptions(dataDir))});
    await c.ping();
    console.log(JSON.stringify({ pid: c.pid }));
    setInterval(() => {}, 1000);
  `;
  const node = spawn(process.execPath, ['--input-type=module', '-e', program], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(createInterface({ input: node.stdout }), 'line');
  const { pid } = JSON.parse(line);
  node.kill('SIGKILL');
  await once(node, 'close');
  // stdin EOF (the pipe's writer died) and the processId watch from initialize both end it (the contract says
  // within 2 s; the Python suite times that). It is not our child: poll its pid, bounded by the test timeout.
  while (alive(pid)) await new Promise((r) => setTimeout(r, 50));
  assert.equal(alive(pid), false);
});
