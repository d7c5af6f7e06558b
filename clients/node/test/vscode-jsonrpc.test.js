// A stock JSON-RPC client works unchanged: vscode-jsonrpc's StreamMessageReader/Writer speak LSP Content-Length
// framing over the child's stdio, and the sidecar detects it from the first bytes and answers in it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  CancellationTokenSource,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  createMessageConnection,
} from 'vscode-jsonrpc/node';
import { REPO_DIR, alive, protocolVersion, setUpConversation, sidecarCommand, startFakeProvider, tempDataDir, waitFor } from '../testlib/helpers.js';
import { EventEmitter } from 'node:events';

function startRaw(dataDir) {
  const [command, ...args] = sidecarCommand();
  const child = spawn(command, [...args, '--data-dir', dataDir, '--secret-store', 'memory', '--log-level', 'warning'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    cwd: REPO_DIR,
  });
  const closed = once(child, 'close');
  const connection = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
  // Route notifications into an emitter so the test can await them.
  const events = new EventEmitter();
  connection.onNotification('agent:update', (p) => events.emit('agent:update', p));
  connection.onNotification('all:complete', (p) => events.emit('all:complete', p));
  connection.listen();
  return { child, closed, connection, events };
}

test('vscode-jsonrpc (LSP framing): a streamed turn, cancellation, shutdown/exit, code 0', { timeout: 60_000 }, async (t) => {
  const fake = await startFakeProvider(t);
  const dataDir = await tempDataDir(t);
  const { child, closed, connection, events } = startRaw(dataDir);
  t.after(() => {
    connection.dispose();
    if (alive(child.pid)) child.kill('SIGKILL');
  });

  const init = await connection.sendRequest('initialize', { processId: process.pid, clientInfo: { name: 'vscode-jsonrpc-test' } });
  assert.equal(init.protocolVersion, protocolVersion());
  assert.ok(init.capabilities.framing.includes('lsp'));
  assert.deepEqual(await connection.sendRequest('ping'), {});

  const call = (m, p) => (p === undefined ? connection.sendRequest(m) : connection.sendRequest(m, p));
  const { conversation, agents } = await setUpConversation(call, {
    baseUrl: fake.baseUrl,
    agents: [
      { name: 'Alpha', model: 'gpt-4o-words-8-pace-5' },
      { name: 'Beta', model: 'gpt-4o-ok' },
    ],
  });

  // A turn: both agents answer; the deltas rebuild the saved text.
  const updates = [];
  const onUpdate = (u) => updates.push(u);
  events.on('agent:update', onUpdate);
  const allComplete = waitFor(events, 'all:complete');
  const result = await connection.sendRequest('processUserMessage', { conversationId: conversation.id, content: 'Ünïcödé check: 你好 ✓' });
  await allComplete;
  events.off('agent:update', onUpdate);
  assert.equal(result.successfulAgents, 2);
  const rows = await connection.sendRequest('messages:list', { conversationId: conversation.id });
  assert.equal(rows.find((r) => r.id === result.userMessageId).content, 'Ünïcödé check: 你好 ✓');
  for (const { member } of agents) {
    const text = updates
      .filter((u) => u.conversationAgentId === member.id && u.status === 'streaming')
      .map((u) => u.delta)
      .join('');
    const row = rows.find((r) => r.conversationAgentId === member.id);
    assert.equal(row.status, 'complete');
    assert.equal(text, row.content);
  }
  // The fake echoes the first 40 characters of the prompt: non-ASCII survived both framings.
  assert.match(rows.find((r) => r.conversationAgentId === agents[1].member.id).content, /你好/);

  // An error response arrives as a ResponseError with the contract's code and data.
  const notFound = await connection.sendRequest('agents:get', { id: 'missing' }).catch((e) => e);
  assert.ok(notFound instanceof ResponseError);
  assert.equal(notFound.code, -32010);
  assert.equal(notFound.data.kind, 'not_found');

  // vscode-jsonrpc's own cancellation sends $/cancelRequest; the sidecar answers -32800.
  const slowAgent = await connection.sendRequest('agents:create', {
    name: 'Gamma',
    llmConfigId: agents[0].agent.llmConfigId,
    model: 'gpt-4o-words-200-pace-30',
    roleId: agents[0].agent.roleId,
    personalityId: agents[0].agent.personalityId,
  });
  const conv2 = await connection.sendRequest('conversations:create', { title: 'cancel me' });
  await connection.sendRequest('conversationAgents:add', { conversationId: conv2.id, agentId: slowAgent.id });
  const streaming = waitFor(events, 'agent:update', (u) => u.conversationId === conv2.id && u.status === 'streaming');
  const cancelled = waitFor(events, 'agent:update', (u) => u.conversationId === conv2.id && u.status === 'cancelled');
  const source = new CancellationTokenSource();
  const turn = connection.sendRequest('processUserMessage', { conversationId: conv2.id, content: 'Long one please' }, source.token);
  await streaming;
  source.cancel();
  const err = await turn.catch((e) => e);
  assert.ok(err instanceof ResponseError, String(err));
  assert.equal(err.code, -32800);
  const update = await cancelled;
  const partial = (await connection.sendRequest('messages:list', { conversationId: conv2.id })).find((r) => r.id === update.messageId);
  assert.equal(partial.status, 'cancelled');

  // shutdown, then the exit notification; the process ends with code 0.
  assert.equal(await connection.sendRequest('shutdown'), null);
  const late = await connection.sendRequest('ping').catch((e) => e);
  assert.equal(late.code, -32014);
  assert.equal(late.data.kind, 'shutting_down');
  await connection.sendNotification('exit');
  const [code, signal] = await closed;
  assert.equal(code, 0);
  assert.equal(signal, null);
  assert.equal(alive(child.pid), false);
});

test('vscode-jsonrpc: closing stdin alone ends the process with code 0', { timeout: 30_000 }, async (t) => {
  const dataDir = await tempDataDir(t);
  const { child, closed, connection } = startRaw(dataDir);
  t.after(() => connection.dispose());
  const conv = await connection.sendRequest('conversations:create', { title: 'EOF' });
  assert.equal(conv.title, 'EOF');
  child.stdin.end();
  const [code] = await closed;
  assert.equal(code, 0);
});
