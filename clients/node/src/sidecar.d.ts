// Types of src/sidecar.js (hand-written; the protocol types and the wrapper signatures are generated into
// types.d.ts from schema/ by scripts/generate-types.mjs).

import { EventEmitter } from 'node:events';
import type {
  AgentUpdate,
  AllComplete,
  CallOptions,
  ClientNotifications,
  ErrorKind,
  InitializeResult,
  MethodName,
  Methods,
  SidecarMethods,
} from './types.js';

export * from './types.js';

export declare class RpcError extends Error {
  constructor(code: number, message: string, data?: unknown);
  readonly name: 'RpcError';
  /** The JSON-RPC error code (see ERROR_CODES). */
  code: number;
  /** `error.data` as sent: `{kind}` for application errors, `{field, reason}` for -32602, `{ref}` for -32603. */
  data: unknown;
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
export declare const NOTIFICATIONS: ReadonlyArray<'agent:update' | 'all:complete'>;
export declare const ERROR_CODES: Readonly<{
  ParseError: -32700;
  InvalidRequest: -32600;
  MethodNotFound: -32601;
  InvalidParams: -32602;
  NotFound: -32010;
  Conflict: -32011;
  Validation: -32012;
  SecretStorage: -32013;
  Busy: -32014;
  ShuttingDown: -32014;
  RequestCancelled: -32800;
  InternalError: -32603;
}>;

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
export type StderrRecord = { ts?: string; level?: string; logger?: string; msg?: string; extra?: unknown; [key: string]: unknown } | { raw: string };

export type ClientState = 'starting' | 'running' | 'restarting' | 'closing' | 'closed' | 'fatal';

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

  call<M extends MethodName>(method: M, params?: Methods[M]['params'], options?: CallOptions): Promise<Methods[M]['result']>;
  call(method: string, params?: object, options?: CallOptions): Promise<unknown>;
  request<M extends MethodName>(
    method: M,
    params?: Methods[M]['params'],
    options?: CallOptions,
  ): { id: number; result: Promise<Methods[M]['result']> };
  cancelRequest(id: number): void;
  notify<N extends keyof ClientNotifications>(method: N, params?: ClientNotifications[N]): Promise<void>;
  close(options?: { timeoutMs?: number }): Promise<{ code: number | null; signal: NodeJS.Signals | null } | null>;

  on(event: 'agent:update', listener: (update: AgentUpdate) => void): this;
  on(event: 'all:complete', listener: (event: AllComplete) => void): this;
  on(event: 'notification', listener: (method: string, params: unknown) => void): this;
  on(event: 'exit', listener: (event: ExitEvent) => void): this;
  on(event: 'restart', listener: (event: RestartEvent) => void): this;
  on(event: 'fatal', listener: (event: FatalEvent) => void): this;
  on(event: 'stderr', listener: (record: StderrRecord) => void): this;
  on(event: 'protocolError', listener: (event: { line?: string; message?: unknown; error: Error }) => void): this;
  once(event: 'agent:update', listener: (update: AgentUpdate) => void): this;
  once(event: 'all:complete', listener: (event: AllComplete) => void): this;
  once(event: 'exit', listener: (event: ExitEvent) => void): this;
  once(event: 'restart', listener: (event: RestartEvent) => void): this;
  once(event: 'fatal', listener: (event: FatalEvent) => void): this;
  once(event: 'stderr', listener: (record: StderrRecord) => void): this;
  off(event: string, listener: (...args: any[]) => void): this;
}

// The generated wrappers (llmConfigsCreate, messagesList, processUserMessage, chatCancel, ...).
export interface SidecarClient extends SidecarMethods {}

export default SidecarClient;
