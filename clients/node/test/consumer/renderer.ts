// The page: window.chatSidecar, typed.
import type {} from '@chat-sidecar/client/window';
import type { ChatSidecarError } from '@chat-sidecar/client/window';

export async function page(): Promise<void> {
  const api = window.chatSidecar;
  const conversation = await api.conversationsCreate({ title: 'From the page' });
  const same = await api.invoke('conversations:get', { id: conversation.id });
  const title: string = same.title;
  void title;
  await api.ping();
  const result = await api.processUserMessage({ conversationId: conversation.id, content: 'Hi' });
  void result.userMessageId;

  const stop = api.on('agent:update', (update) => {
    if (update.status === 'streaming') {
      const delta: string = update.delta;
      void delta;
    }
  });
  stop();
  api.on('all:complete', (event) => void event.conversationId);
  api.on('auto:state', (state) => void state);

  try {
    await api.conversationsGet({ id: 'missing' });
  } catch (e) {
    const err = e as ChatSidecarError;
    if (err.kind === 'not_found') void err.code;
  }

  // @ts-expect-error the lifecycle stays in the main process
  await api.initialize({});
  // @ts-expect-error the lifecycle stays in the main process
  await api.invoke('shutdown');
  // @ts-expect-error not an event of the sidecar
  api.on('window:close', () => {});
  // @ts-expect-error conversationId is required
  await api.messagesList({});
}
