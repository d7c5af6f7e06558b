// The main process of an app that installed the packed client (test/consumer.test.js type-checks this with tsc).
import { app, BrowserWindow, ipcMain } from 'electron';
import {
  bridgeToRenderer,
  CancellationTokenSource,
  ERROR_CODES,
  RpcError,
  SidecarClient,
  SidecarConnectionError,
  type AgentUpdate,
  type Conversation,
  type EventPayload,
  type Message,
  type ProcessingResult,
  type ResultOf,
} from '@chat-sidecar/client';

export async function main(): Promise<void> {
  const sidecar = await SidecarClient.start({
    command: '/opt/app/resources/chat-sidecar/chat-sidecar',
    dataDir: app.getPath('userData'),
    initialize: { clientInfo: { name: 'consumer', version: app.getVersion() } },
    restart: { maxRestarts: 5, windowMs: 180_000 },
  });

  // Calls: params and results typed from schema/.
  const conversation: Conversation = await sidecar.conversationsCreate({ title: 'Hello' });
  const rows: Message[] = await sidecar.messagesList({ conversationId: conversation.id });
  for (const row of rows) {
    if (row.role === 'agent') {
      const agentId: string = row.conversationAgentId; // narrowed by the role
      void agentId;
    }
  }
  const turn: ProcessingResult = await sidecar.processUserMessage({ conversationId: conversation.id, content: 'Hi' });
  void turn.agentResults;
  await sidecar.ping();
  await sidecar.conversationsList();
  const same: ResultOf<'conversations:get'> = await sidecar.call('conversations:get', { id: conversation.id });
  void same.title;
  // @ts-expect-error processUserMessage takes userMessageId or content, not both
  await sidecar.processUserMessage({ conversationId: 'c', userMessageId: 'm', content: 'x' });
  // @ts-expect-error conversationId is required
  await sidecar.messagesList({});
  // @ts-expect-error no such field
  await sidecar.conversationsCreate({ title: 'x', colour: 'red' });
  // @ts-expect-error not a method of the contract
  await sidecar.call('conversations:frobnicate', {});

  // Cancellation: a vscode-jsonrpc token, or an AbortSignal.
  const source = new CancellationTokenSource();
  const cancellable = sidecar.processUserMessage({ conversationId: conversation.id, content: 'Long' }, { token: source.token });
  source.cancel();
  await cancellable.catch((err: unknown) => {
    if (err instanceof RpcError && err.code === ERROR_CODES.RequestCancelled) return;
    if (err instanceof RpcError && err.kind === 'busy') return;
    if (err instanceof SidecarConnectionError && err.code === 'ERR_SIDECAR_EXITED') return;
    throw err;
  });
  await sidecar.ping(undefined, { signal: AbortSignal.timeout(1000) });

  // Events: the sidecar's notifications, typed; auto:state once the schema has it; the client's own events.
  sidecar.on('agent:update', (update: AgentUpdate) => {
    if (update.status === 'streaming') {
      const delta: string = update.delta;
      void delta;
    }
    if (update.status === 'error') {
      const retryable: boolean = update.retryable;
      void retryable;
    }
  });
  sidecar.on('all:complete', (event) => void event.userMessageId);
  sidecar.on('auto:state', (state: EventPayload<'auto:state'>) => void state);
  type IsUnknown<T> = unknown extends T ? true : false;
  const autoStateTyped: IsUnknown<EventPayload<'auto:state'>> = false; // notifications.json lists it now
  void autoStateTyped;
  sidecar.on('restart', (event) => void event.attempt);
  sidecar.on('fatal', (event) => void event.reason);
  sidecar.on('stderr', (record) => void record);
  sidecar.on('exit', (event) => void event.expected);

  // The bridge, with Electron's own ipcMain and webContents.
  const win = new BrowserWindow({ webPreferences: { contextIsolation: true, sandbox: true } });
  const bridge = bridgeToRenderer({
    ipcMain,
    client: sidecar,
    webContents: win.webContents,
    isTrustedFrame: (frame) => new URL(frame.url).protocol === 'file:',
  });
  const channels: readonly string[] = bridge.channels;
  void channels;
  bridge.dispose();

  const exit = await sidecar.close();
  void exit?.code;
}
