// The hand-written glue over the generated types (./generated/types.d.ts, written by json-schema-to-typescript
// from schema/): method name -> params/result, wrapper names, event payloads. Nothing here names a method: a
// method or notification added to schema/ appears everywhere after `npm run generate`.

import type { CancellationToken } from 'vscode-jsonrpc';
import type { ClientNotifications, Methods, Notifications } from './generated/types.js';

export type * from './generated/types.js';

/** The wire name of every request method. */
export type MethodName = keyof Methods & string;
export type ParamsOf<M extends MethodName> = Methods[M]['params'];
export type ResultOf<M extends MethodName> = Methods[M]['result'];

/** Requests the main process keeps to itself: the bridge does not expose them to a renderer. */
export type MainProcessOnlyMethod = 'initialize' | 'shutdown';
/** The methods a renderer may invoke through the Electron bridge (IPC channel = method name). */
export type RendererMethodName = Exclude<MethodName, MainProcessOnlyMethod>;

/** `llmConfigs:create` -> `llmConfigsCreate` (the rule scripts/generate-types.mjs applies at run time). */
export type WrapperName<M extends string> = M extends `${infer NS}:${infer Action}` ? `${NS}${Capitalize<Action>}` : M;
/** Client notifications: `exit` -> `sendExit`, `$/cancelRequest` -> `sendCancelRequest`. */
export type NotificationWrapperName<N extends string> = N extends `$/${infer Rest}`
  ? `send${Capitalize<Rest>}`
  : `send${Capitalize<N>}`;

/** Params are optional when the method has no required field. */
export type ParamsArgs<P> = {} extends P ? [params?: P] : [params: P];

/** Per-call options of every request. */
export interface CallOptions {
  /**
   * vscode-jsonrpc's cancellation: cancelling sends `$/cancelRequest`; the call then rejects with the sidecar's
   * answer, an RpcError with code -32800 (a `processUserMessage` still settles its agents first, as `cancelled`).
   */
  token?: CancellationToken;
  /**
   * Aborting sends `$/cancelRequest` the same way (through a token) and rejects the call at once with
   * `signal.reason` (an `AbortError` DOMException unless you gave a reason), as `fetch` does.
   */
  signal?: AbortSignal;
}

/** The typed wrappers of the Node client: one per request method, one per client notification. */
export type SidecarMethods = {
  [M in MethodName as WrapperName<M>]: (...args: [...ParamsArgs<ParamsOf<M>>, options?: CallOptions]) => Promise<ResultOf<M>>;
} & {
  [N in keyof ClientNotifications & string as NotificationWrapperName<N>]: (
    ...args: ParamsArgs<ClientNotifications[N]>
  ) => Promise<void>;
};

/**
 * The sidecar's notifications the client emits as events and the bridge forwards to a renderer: those of
 * notifications.json, plus `auto:state` (contract v2), typed once notifications.json has it.
 */
export type EventName = (keyof Notifications & string) | 'agent:update' | 'all:complete' | 'auto:state';
export type EventPayload<E extends string> = E extends keyof Notifications ? Notifications[E] : unknown;
