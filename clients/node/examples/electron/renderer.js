// The page (no Node, no ipcRenderer): window.chatSidecar from the preload. Two demo agents answer each message;
// their replies stream into the page as agent:update events arrive.
const chat = window.chatSidecar;
const messages = document.getElementById('messages');
const form = document.getElementById('composer');
const status = document.getElementById('status');
const replies = new Map(); // one element per agent per turn

function replyElement(update) {
  const key = `${update.userMessageId}/${update.conversationAgentId}`;
  let el = replies.get(key);
  if (!el) {
    el = document.createElement('article');
    el.className = 'reply';
    el.dataset.agent = update.conversationAgentId;
    const name = document.createElement('h3');
    name.textContent = update.agentName;
    el.append(name, document.createElement('p'));
    messages.append(el);
    replies.set(key, el);
  }
  return el;
}

chat.on('agent:update', (update) => {
  const el = replyElement(update);
  el.dataset.status = update.status;
  if (update.messageId) el.dataset.message = update.messageId;
  if (update.status === 'streaming') el.querySelector('p').textContent += update.delta;
  if (update.status === 'error') el.querySelector('p').textContent = update.error;
});

// First start: a conversation with two agents on the built-in offline "demo" provider.
async function openConversation() {
  const [existing] = await chat.conversationsList();
  if (existing) return existing;
  const demo = (await chat.llmConfigsList()).find((config) => config.provider === 'demo');
  const [roles, personalities] = await Promise.all([chat.rolesList(), chat.personalitiesList()]);
  const conversation = await chat.conversationsCreate({ title: 'Demo' });
  for (const [i, name] of ['Ada', 'Grace'].entries()) {
    const agent = await chat.agentsCreate({
      name,
      llmConfigId: demo.id,
      model: 'demo',
      roleId: roles[i % roles.length].id,
      personalityId: personalities[i % personalities.length].id,
    });
    await chat.conversationAgentsAdd({ conversationId: conversation.id, agentId: agent.id });
  }
  return conversation;
}

openConversation().then(
  (conversation) => {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const content = form.elements.text.value.trim();
      if (!content) return;
      form.elements.text.value = '';
      form.elements.send.disabled = true;
      const mine = document.createElement('article');
      mine.className = 'user';
      mine.textContent = content;
      messages.append(mine);
      try {
        await chat.processUserMessage({ conversationId: conversation.id, content }); // answers after all:complete
        status.textContent = 'Ready';
      } catch (err) {
        status.textContent = `${err.message} (${err.kind ?? err.code})`; // a plain {name, message, code, kind?}
      } finally {
        form.elements.send.disabled = false;
      }
    });
    form.elements.send.disabled = false;
    status.textContent = 'Ready';
  },
  (err) => {
    status.textContent = `Could not open the conversation: ${err.message}`;
  },
);
