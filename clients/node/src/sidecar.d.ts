// Types of src/sidecar.js (hand-written). The protocol types are generated from schema/ into
// generated/types.d.ts; protocol.d.ts maps method names onto them.

import { EventEmitter } from 'node:events';
import { ResponseError } from 'vscode-jsonrpc';
import type {
  CallOptions,
  ClientNotifications,
  ErrorKind,
  EventName,
  EventPayload,
  InitializeResult,
  MethodName,
  ParamsArgs,
  ParamsOf,
  ResultOf,
  SidecarMethods,
} from './protocol.js';

export * from './protocol.js';
export { CancellationTokenSource } from 'vscode-jsonrpc';
export type { CancellationToken } from 'vscode-jsonrpc';
export { bridgeToRenderer } from './electron.js';
export type { BridgeOptions, Bridge, IpcMainLike, WebContentsLike } from './electron.js';

/** An error response from the sidecar; a vscode-jsonrpc ResponseError with `.kind`. */
export declare class RpcError extends ResponseError<unknown> {
  constructor(code: number, message: string, data?: unknown);
  readonly name: 'RpcError';
  /** `error.data` as sent: `{kind}` for application errors, `{field, reason}` for -32602, `{ref}` for -32603. */
  readonly data: unknown;
  /** `data.kind`, when the error has one. */
  readonly kind: ErrorKind | undefined;
}

export type SidecarConnectionErrorCode =
  | 'ERR_SIDECAR_EXITED'
  | 'ERR_SIDECAR_EPIPE'
  | 'ERR_SIDECAR_CLOSED'
  | 'ERR_SIDECAR_FATAL'
  | 'ERR_SIDECAR_SPAWN';

export declare class SidecarConnectionError extends Error {
  constructor(code: SidecarConnectionErrorCode, message: string, details?: object);
  readonly name: 'SidecarConnectionError';
  code: SidecarConnectionErrorCode;
  exitCode?: number | null;
  signal?: NodeJS.Signals | null;
}

export interface RestartOptions {
  /** Default 5. */
  maxRestarts?: number;
  /** Default 180000 (3 minutes). */
  windowMs?: number;
  /** Wait before the n-th restart in the window (n from 1). Default: 0, 500, 1000, 2000, 4000 ms. */
  backoffMs?: (n: number) => number;
}

export interface StartOptions {
  /** The sidecar executable: the frozen binary, or a Python interpreter (then args starts with `-m sidecar`). */
  command: string;
  /** Arguments before `--data-dir`, e.g. `['--log-level', 'debug', '--secret-store', 'memory']`. */
  args?: string[];
  /** Passed as `--data-dir`. Electron: `app.getPath('userData')`. */
  dataDir?: string;
  /** Merged over process.env. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Default true (the defaults of RestartOptions). false: never restart; an unexpected exit emits 'fatal'. */
  restart?: boolean | RestartOptions;
  /**
   * Default true: `initialize {clientInfo, processId: process.pid}` after every (re)start, so the sidecar exits
   * by itself if this process dies without running exit handlers. false: send nothing.
   */
  initialize?: boolean | { clientInfo?: { name: string; version?: string } };
  /** How long close() waits for a clean exit before SIGTERM (then SIGKILL 2 s later). Default 5000. */
  closeTimeoutMs?: number;
}

export declare const DEFAULT_RESTART: Readonly<Required<RestartOptions>>;

export declare const METHODS: ReadonlyArray<{ readonly name: string; readonly jsName: string; readonly notification: boolean }>;
/** The notifications schema/notifications.json lists. */
export declare const NOTIFICATIONS: ReadonlyArray<string>;
export declare const ERROR_CODES: Readonly<Record<string, number>> & {
  readonly InvalidParams: -32602;
  readonly NotFound: -32010;
  readonly Conflict: -32011;
  readonly Validation: -32012;
  readonly SecretStorage: -32013;
  readonly Busy: -32014;
  readonly ShuttingDown: -32014;
  readonly RequestCancelled: -32800;
  readonly InternalError: -32603;
};

export interface ExitEvent {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** true when close() (or a failed start) ended it; false for a crash, which the restart policy handles. */
  expected: boolean;
  pid: number | undefined;
}

export interface RestartEvent {
  /** The number of this restart within the window (1..maxRestarts). */
  attempt: number;
  restarts: number;
  pid: number | undefined;
  /** How the previous process ended. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface FatalEvent {
  reason: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  restarts: number;
  error: SidecarConnectionError;
}

/** A stderr line: the sidecar's JSON log record `{ts, level, logger, msg, extra?}`, or `{raw}` if not JSON. */
export type StderrRecord =
  | { ts?: string; level?: string; logger?: string; msg?: string; extra?: unknown; [key: string]: unknown }
  | { raw: string };

export type ClientState = 'starting' | 'running' | 'restarting' | 'closing' | 'closed' | 'fatal';

/** The client's own events, besides the sidecar's notifications (EventName). */
export interface ClientEvents {
  notification: [method: string, params: unknown];
  exit: [event: ExitEvent];
  restart: [event: RestartEvent];
  fatal: [event: FatalEvent];
  stderr: [record: StderrRecord];
  /** The reader could not parse what the sidecar wrote. */
  protocolError: [event: { error: Error }];
}

type Listener<E extends string> = E extends keyof ClientEvents
  ? (...args: ClientEvents[E]) => void
  : (payload: EventPayload<E>) => void;

export declare class SidecarClient extends EventEmitter {
  static start(options: StartOptions): Promise<SidecarClient>;
  /** Use the static start(), or `new` + listeners + start() to catch events from the very first moment. */
  constructor(options: StartOptions);
  /** Spawn and initialize a client made with `new`; resolves with the client. Idempotent. */
  start(): Promise<this>;

  readonly state: ClientState;
  readonly pid: number | undefined;
  readonly restartCount: number;
  initializeResult: InitializeResult | null;

  /** Any request by wire name; the typed wrappers (`conversationsCreate`, …) call this. */
  call<M extends MethodName>(method: M, ...args: [...ParamsArgs<ParamsOf<M>>, options?: CallOptions]): Promise<ResultOf<M>>;
  notify<N extends keyof ClientNotifications & string>(method: N, params?: ClientNotifications[N]): Promise<void>;
  close(options?: { timeoutMs?: number }): Promise<{ code: number | null; signal: NodeJS.Signals | null } | null>;

  on<E extends EventName | keyof ClientEvents>(event: E, listener: Listener<E>): this;
  once<E extends EventName | keyof ClientEvents>(event: E, listener: Listener<E>): this;
  off<E extends EventName | keyof ClientEvents>(event: E, listener: Listener<E>): this;
  addListener<E extends EventName | keyof ClientEvents>(event: E, listener: Listener<E>): this;
  removeListener<E extends EventName | keyof ClientEvents>(event: E, listener: Listener<E>): this;
}

// The typed wrappers (llmConfigsCreate, messagesList, processUserMessage, chatCancel, sendExit, …).
export interface SidecarClient extends SidecarMethods {}

export default SidecarClient;
