// Types of src/preload.cjs (hand-written): `window.chatSidecar`. For the global, add
// `import type {} from '@chat-sidecar/client/window';` to one file of the renderer's TypeScript.

import type {
  EventName,
  EventPayload,
  ErrorKind,
  ParamsArgs,
  ParamsOf,
  RendererMethodName,
  ResultOf,
  WrapperName,
} from './protocol.js';

/**
 * How a call rejects in the renderer: a plain object (contextBridge keeps only the message of an Error).
 * `code` is the JSON-RPC code (`-32010`…, see the contract) or a client code such as `ERR_SIDECAR_EXITED`;
 * `kind` is `error.data.kind` of an application error.
 */
export interface ChatSidecarError {
  name: string;
  message: string;
  code?: number | string;
  kind?: ErrorKind;
  data?: unknown;
}

/** One wrapper per method a renderer may call: `conversationsCreate(params)`, `processUserMessage(params)`, … */
export type ChatSidecarMethods = {
  [M in RendererMethodName as WrapperName<M>]: (...args: ParamsArgs<ParamsOf<M>>) => Promise<ResultOf<M>>;
};

export type ChatSidecarApi = ChatSidecarMethods & {
  /** Any method a renderer may call, by wire name (= IPC channel). */
  invoke<M extends RendererMethodName>(method: M, ...args: ParamsArgs<ParamsOf<M>>): Promise<ResultOf<M>>;
  /** Listen to a sidecar event; returns the function that stops listening. */
  on<E extends EventName>(event: E, listener: (payload: EventPayload<E>) => void): () => void;
  readonly channels: readonly RendererMethodName[];
  readonly events: readonly EventName[];
};

export declare const API_KEY: 'chatSidecar';
export declare const CHANNELS: ReadonlyArray<readonly [RendererMethodName, string]>;
export declare const EVENTS: readonly EventName[];

/** The part of Electron's `ipcRenderer` the API uses. */
export interface IpcRendererLike {
  invoke(channel: string, ...args: any[]): Promise<any>;
  on(channel: string, listener: (event: any, ...args: any[]) => void): unknown;
  removeListener(channel: string, listener: (...args: any[]) => void): unknown;
}

export declare function createChatSidecarApi(ipcRenderer: IpcRendererLike): ChatSidecarApi;
export declare function exposeChatSidecar(
  electron: { contextBridge: { exposeInMainWorld(apiKey: string, api: any): void }; ipcRenderer: IpcRendererLike },
  key?: string,
): void;
