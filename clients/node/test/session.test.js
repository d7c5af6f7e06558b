// A whole session through SidecarClient against tests/fake_provider.py: initialize, set-up, a streamed turn with
// two agents (one cancelled mid-stream), the saved rows, error mapping, cancellation (a vscode-jsonrpc token, an
// AbortSignal), and a clean close.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import { SidecarClient, RpcError, ERROR_CODES, METHODS } from '../src/sidecar.js';
import {
  alive,
  protocolVersion,
  setUpConversation,
  startFakeProvider,
  startOptions,
  tempDataDir,
  waitFor,
} from '../testlib/helpers.js';

test('a turn streams through the emitter, one agent is cancelled, rows are saved, close exits 0', { timeout: 60_000 }, async (t) => {
  const fake = await startFakeProvider(t);
  const dataDir = await tempDataDir(t);
  const stderr = [];
  const client = await SidecarClient.start(startOptions(dataDir, { initialize: { clientInfo: { name: 'node-test', version: '1' } } }));
  t.after(() => client.close());
  client.on('stderr', (r) => stderr.push(r));

  // initialize ran on start (with our pid); calling it again answers the same.
  assert.equal(client.initializeResult.protocolVersion, protocolVersion());
  assert.equal(client.initializeResult.dataDir, dataDir);
  assert.equal(client.initializeResult.secretStorage, 'memory');
  const again = await client.initialize({ clientInfo: { name: 'node-test' } });
  assert.deepEqual(again.serverInfo, client.initializeResult.serverInfo);
  assert.deepEqual(await client.ping(), {});

  const call = (m, p) => client.call(m, p);
  const { conversation, agents, llmConfig } = await setUpConversation(call, {
    baseUrl: fake.baseUrl,
    agents: [
      { name: 'Quick', model: 'gpt-4o-words-12-pace-10' },
      { name: 'Slow', model: 'gpt-4o-words-200-pace-30' },
    ],
  });
  assert.equal(llmConfig.hasApiKey, true);
  assert.equal('apiKey' in llmConfig, false);
  const [quick, slow] = agents;

  const updates = [];
  const order = [];
  client.on('agent:update', (u) => {
    updates.push(u);
    order.push(`update:${u.status}`);
  });
  const allComplete = waitFor(client, 'all:complete', (e) => e.conversationId === conversation.id).then((e) => {
    order.push('all:complete');
    return e;
  });
  const slowStreaming = waitFor(client, 'agent:update', (u) => u.conversationAgentId === slow.member.id && u.status === 'streaming');

  const turn = client.processUserMessage({ conversationId: conversation.id, content: 'Hello agents, who goes first?' }).then((r) => {
    order.push('response');
    return r;
  });

  await slowStreaming;
  assert.deepEqual(await client.chatCancel({ conversationId: conversation.id, conversationAgentId: slow.member.id }), { cancelled: 1 });

  const result = await turn;
  const done = await allComplete;
  assert.equal(done.userMessageId, result.userMessageId);
  assert.equal(order.at(-1), 'response', 'the response comes after all:complete');
  assert.equal(order.at(-2), 'all:complete');

  assert.equal(result.totalAgents, 2);
  assert.equal(result.successfulAgents, 1);
  assert.equal(result.cancelledAgents, 1);
  assert.equal(result.failedAgents, 0);
  const byMember = Object.fromEntries(result.agentResults.map((r) => [r.conversationAgentId, r]));
  assert.equal(byMember[quick.member.id].status, 'complete');
  assert.equal(byMember[slow.member.id].status, 'cancelled');

  // The saved rows: the user message, the quick reply (complete), the slow partial reply (cancelled).
  const rows = await client.messagesList({ conversationId: conversation.id });
  const user = rows.find((r) => r.id === result.userMessageId);
  assert.equal(user.role, 'user');
  assert.equal(user.content, 'Hello agents, who goes first?');

  for (const [member, status] of [
    [quick.member, 'complete'],
    [slow.member, 'cancelled'],
  ]) {
    const mine = updates.filter((u) => u.conversationAgentId === member.id);
    assert.equal(mine[0].status, 'thinking');
    assert.deepEqual(
      mine.map((u) => u.seq),
      mine.map((_, i) => i + 1),
      'seq counts from 1 by one',
    );
    const terminal = mine.filter((u) => ['complete', 'error', 'cancelled'].includes(u.status));
    assert.equal(terminal.length, 1);
    assert.equal(terminal[0], mine.at(-1), 'nothing after the terminal update');
    assert.equal(terminal[0].status, status);

    const row = rows.find((r) => r.id === terminal[0].messageId);
    assert.ok(row, `${status} reply saved`);
    assert.equal(row.role, 'agent');
    assert.equal(row.conversationAgentId, member.id);
    assert.equal(row.replyToId, result.userMessageId);
    assert.equal(row.status, status);
    const text = mine
      .filter((u) => u.status === 'streaming')
      .map((u) => u.delta)
      .join('');
    assert.equal(text, row.content, 'the deltas concatenate to the saved content');
    assert.ok(text.length > 0);
  }
  const quickRow = rows.find((r) => r.conversationAgentId === quick.member.id);
  assert.equal(quickRow.content.split(/\s+/).filter(Boolean).length, 12);
  const slowRow = rows.find((r) => r.conversationAgentId === slow.member.id);
  assert.ok(slowRow.content.split(/\s+/).length < 200, 'the slow reply was cut short');

  // Keys never reach a log line.
  assert.ok(!JSON.stringify(stderr).includes('sk-test-node-client-0000'));

  // close(): shutdown, exit, stdin closed; the process is gone with code 0.
  const pid = client.pid;
  const exitEvent = waitFor(client, 'exit');
  const exit = await client.close();
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.equal((await exitEvent).expected, true);
  assert.equal(alive(pid), false);
  assert.equal(client.state, 'closed');
  await assert.rejects(client.ping(), { name: 'SidecarConnectionError', code: 'ERR_SIDECAR_CLOSED' });
});

test('error responses reject with RpcError {code, message, data}', { timeout: 30_000 }, async (t) => {
  const dataDir = await tempDataDir(t);
  const client = await SidecarClient.start(startOptions(dataDir));
  t.after(() => client.close());

  const missing = await client.conversationsGet({ id: 'no-such-id' }).catch((e) => e);
  assert.ok(missing instanceof RpcError);
  assert.ok(missing instanceof ResponseError, "an RpcError is vscode-jsonrpc's ResponseError too");
  assert.equal(missing.name, 'RpcError');
  assert.equal(missing.code, ERROR_CODES.NotFound);
  assert.equal(missing.kind, 'not_found');

  const invalid = await client.rolesCreate({ name: 'x', systemPrompt: 'y', bogus: 1 }).catch((e) => e);
  assert.equal(invalid.code, ERROR_CODES.InvalidParams);
  assert.equal(invalid.data.field, 'bogus');

  const unknown = await client.call('nope:nothing').catch((e) => e);
  assert.equal(unknown.code, ERROR_CODES.MethodNotFound);

  const blank = await client.conversationsCreate({}).then((c) => client.messagesCreate({ conversationId: c.id, role: 'user', content: '   ' })).catch((e) => e);
  assert.equal(blank.code, ERROR_CODES.Validation);
  assert.equal(blank.kind, 'validation');

  // params: null is sent as absent (the sidecar would answer it with id null); a non-object is refused here,
  // and so are params that are not JSON (nothing is written: the call fails, the connection goes on).
  assert.deepEqual(await client.call('ping', null), {});
  await assert.rejects(client.call('ping', 'text'), TypeError);
  await assert.rejects(client.call('ping', [1]), TypeError);
  await assert.rejects(client.call('ping', { n: 1n }), TypeError);

  // The process survived all of them.
  assert.deepEqual(await client.ping(), {});
});

test('every method of openrpc.json has a wrapper; a cancellation token and an AbortSignal cancel a call', { timeout: 30_000 }, async (t) => {
  const dataDir = await tempDataDir(t);
  const client = await SidecarClient.start(startOptions(dataDir));
  t.after(() => client.close());

  for (const m of METHODS) assert.equal(typeof client[m.jsName], 'function', `${m.name} -> ${m.jsName}`);

  // A slow demo turn to cancel through vscode-jsonrpc's token: the library sends $/cancelRequest, the sidecar
  // answers -32800 once the turn has settled, and the agent ends cancelled.
  const { conversation } = await setUpConversation((m, p) => client.call(m, p), {
    agents: [{ name: 'Sleepy', model: 'demo-slow', demo: true }],
  });
  const source = new CancellationTokenSource();
  const thinking = waitFor(client, 'agent:update', (u) => u.status === 'thinking');
  const cancelled = waitFor(client, 'agent:update', (u) => u.status === 'cancelled');
  const turn = client.processUserMessage({ conversationId: conversation.id, content: 'Take your time.' }, { token: source.token });
  await thinking;
  source.cancel();
  const err = await turn.catch((e) => e);
  assert.ok(err instanceof RpcError, String(err));
  assert.equal(err.code, ERROR_CODES.RequestCancelled);
  const update = await cancelled;
  assert.equal(update.conversationId, conversation.id);

  // A token cancelled before the call: the request and its cancellation go out together.
  const early = new CancellationTokenSource();
  early.cancel();
  const pre = await client.processUserMessage({ conversationId: conversation.id, content: 'Never mind.' }, { token: early.token }).catch((e) => e);
  assert.equal(pre.code, ERROR_CODES.RequestCancelled);

  // AbortSignal: rejects at once with the signal's reason, and the sidecar is told.
  const controller = new AbortController();
  const thinking2 = waitFor(client, 'agent:update', (u) => u.status === 'thinking');
  const cancelled2 = waitFor(client, 'agent:update', (u) => u.status === 'cancelled');
  const turn2 = client.processUserMessage({ conversationId: conversation.id, content: 'Again, slowly.' }, { signal: controller.signal });
  await thinking2;
  controller.abort();
  await assert.rejects(turn2, { name: 'AbortError' });
  await cancelled2; // the sidecar got $/cancelRequest and stopped the agent

  // An already aborted signal: nothing is sent.
  await assert.rejects(client.ping(undefined, { signal: AbortSignal.abort(new Error('not now')) }), { message: 'not now' });
  assert.deepEqual(await client.ping(), {});
});

test("stderr log lines arrive parsed as the 'stderr' event", { timeout: 30_000 }, async (t) => {
  const dataDir = await tempDataDir(t);
  const opts = startOptions(dataDir);
  opts.args = opts.args.filter((a, i, all) => a !== '--log-level' && all[i - 1] !== '--log-level');
  const client = new SidecarClient({ ...opts, args: [...opts.args, '--log-level', 'info'] });
  const ready = waitFor(client, 'stderr', (r) => r.msg === 'ready');
  await client.start(); // listener attached before the process runs
  t.after(() => client.close());
  const record = await ready;
  assert.equal(record.level, 'info');
  assert.equal(record.logger, 'sidecar.app');
  assert.equal(typeof record.ts, 'string');
});

test('close() during a streaming turn: the turn still answers (agents cancelled), then exit code 0', { timeout: 30_000 }, async (t) => {
  const dataDir = await tempDataDir(t);
  const client = await SidecarClient.start(startOptions(dataDir));
  t.after(() => client.close());
  const { conversation } = await setUpConversation((m, p) => client.call(m, p), {
    agents: [
      { name: 'Sleepy', model: 'demo-slow', demo: true },
      { name: 'Dozy', model: 'demo-slow', demo: true },
    ],
  });
  const streaming = waitFor(client, 'agent:update', (u) => u.status === 'streaming');
  const allComplete = waitFor(client, 'all:complete');
  const turn = client.processUserMessage({ conversationId: conversation.id, content: 'A long story, please.' });
  await streaming;
  const closing = client.close();
  const result = await turn;
  assert.equal(result.totalAgents, 2);
  assert.equal(result.cancelledAgents, 2);
  await allComplete;
  assert.deepEqual(await closing, { code: 0, signal: null });
});
