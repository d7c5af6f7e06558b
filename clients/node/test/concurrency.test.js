// Many calls in flight on one connection: vscode-jsonrpc correlates every response with its call, while a turn's
// notifications interleave with them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CODES, RpcError, SidecarClient } from '../src/sidecar.js';
import { setUpConversation, startOptions, tempDataDir, waitFor } from '../testlib/helpers.js';

const N = 1000;

test('1,000 concurrent calls each get their own answer, with a turn streaming meanwhile', { timeout: 120_000 }, async (t) => {
  const dataDir = await tempDataDir(t);
  const client = await SidecarClient.start(startOptions(dataDir));
  t.after(() => client.close());

  // 1,000 writes at once: every result is the row of its own call.
  const titles = Array.from({ length: N }, (_, i) => `Conversation ${i}${'·'.repeat(i % 7)}`);
  const created = await Promise.all(titles.map((title) => client.conversationsCreate({ title })));
  assert.deepEqual(
    created.map((c) => c.title),
    titles,
  );
  assert.equal(new Set(created.map((c) => c.id)).size, N);

  // A demo turn streams while 1,000 mixed calls are in flight: reads, errors and pings, all answered, in any order.
  const { conversation, agents } = await setUpConversation((m, p) => client.call(m, p), {
    agents: [{ name: 'Chatty', model: 'demo', demo: true }],
  });
  const deltas = [];
  const onUpdate = (u) => {
    if (u.conversationId === conversation.id && u.status === 'streaming') deltas.push(u.delta);
  };
  client.on('agent:update', onUpdate);
  const streaming = waitFor(client, 'agent:update', (u) => u.conversationId === conversation.id && u.status === 'streaming');
  const allComplete = waitFor(client, 'all:complete', (e) => e.conversationId === conversation.id);
  const turn = client.processUserMessage({ conversationId: conversation.id, content: 'Say something while we are busy.' });
  await streaming;

  const calls = Array.from({ length: N }, (_, i) => {
    switch (i % 3) {
      case 0:
        return client.conversationsGet({ id: created[i].id });
      case 1:
        return client.conversationsGet({ id: `missing-${i}` });
      default:
        return client.ping();
    }
  });
  const settled = await Promise.allSettled(calls);
  settled.forEach((s, i) => {
    if (i % 3 === 0) {
      assert.equal(s.status, 'fulfilled');
      assert.equal(s.value.id, created[i].id);
      assert.equal(s.value.title, titles[i]);
    } else if (i % 3 === 1) {
      assert.equal(s.status, 'rejected');
      assert.ok(s.reason instanceof RpcError);
      assert.equal(s.reason.code, ERROR_CODES.NotFound);
    } else {
      assert.equal(s.status, 'fulfilled');
      assert.deepEqual(s.value, {});
    }
  });

  const result = await turn;
  await allComplete;
  client.off('agent:update', onUpdate);
  assert.equal(result.successfulAgents, 1);
  const rows = await client.messagesList({ conversationId: conversation.id });
  const reply = rows.find((r) => r.conversationAgentId === agents[0].member.id);
  assert.equal(deltas.join(''), reply.content, 'no notification was lost or torn among the responses');
});
