// A client for the chat-sidecar, written the way Electron's main process uses it: spawn the sidecar as a child
// process, talk JSON-RPC 2.0 to it through vscode-jsonrpc (a MessageConnection over the child's stdio, LSP
// framing, which the sidecar detects), turn its notifications into events, and restart it (with a cap) when it
// dies unexpectedly.
//
//   import { SidecarClient } from '@chat-sidecar/client';
//   const sidecar = await SidecarClient.start({ command, args, dataDir: app.getPath('userData') });
//   sidecar.on('agent:update', (u) => win.webContents.send('agent:update', u));   // or bridgeToRenderer()
//   const rows = await sidecar.messagesList({ conversationId });
//   await sidecar.close();
//
// Request ids, pending calls, framing and `$/cancelRequest` are vscode-jsonrpc's. What is ours: the process (spawn,
// restart policy, close, no orphans), the typed wrappers (one per method of generated/protocol.js) and the error
// types.

import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import {
  CancellationTokenSource,
  ConnectionError,
  ErrorCodes,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  createMessageConnection,
} from 'vscode-jsonrpc/node';
import { ERROR_CODES, METHODS, NOTIFICATIONS } from './generated/protocol.js';

export { ERROR_CODES, METHODS, NOTIFICATIONS };
/** vscode-jsonrpc's token source, for `{token}` (re-exported so an app needs no import of the library). */
export { CancellationTokenSource };
export { bridgeToRenderer } from './electron.js';

/**
 * An error response from the sidecar: `{code, message, data}` as sent, and `.kind` (`data.kind`) for application
 * errors. A vscode-jsonrpc ResponseError, so code written against that library's errors works unchanged.
 */
export class RpcError extends ResponseError {
  /** @param {number} code @param {string} message @param {unknown} [data] */
  constructor(code, message, data) {
    super(code, message, data);
    Object.setPrototypeOf(this, new.target.prototype); // ResponseError pins its own prototype
    this.name = 'RpcError';
  }

  /** `data.kind` (`not_found`, `conflict`, `validation`, `secret_storage`, `busy`, `shutting_down`), if any. */
  get kind() {
    const d = /** @type {any} */ (this.data);
    return d && typeof d === 'object' && typeof d.kind === 'string' ? d.kind : undefined;
  }
}

/**
 * The call never reached an answer because of the process, not the protocol. `code` is one of
 * `ERR_SIDECAR_EXITED` (the process died with the call pending), `ERR_SIDECAR_EPIPE` (its stdin is gone),
 * `ERR_SIDECAR_CLOSED` (close() was called), `ERR_SIDECAR_FATAL` (the restart cap was hit),
 * `ERR_SIDECAR_SPAWN` (the command could not be started).
 */
export class SidecarConnectionError extends Error {
  /** @param {string} code @param {string} message @param {object} [details] */
  constructor(code, message, details = {}) {
    super(message);
    this.name = 'SidecarConnectionError';
    this.code = code;
    Object.assign(this, details);
  }
}

export const DEFAULT_RESTART = Object.freeze({
  /** At most this many restarts ... */
  maxRestarts: 5,
  /** ... in any window of this length; one more crash and the client gives up ('fatal'). */
  windowMs: 3 * 60 * 1000,
  /** Wait before the n-th restart of the window (n from 1): immediate, then 0.5 s, 1 s, 2 s, 4 s. */
  backoffMs: (/** @type {number} */ n) => (n <= 1 ? 0 : Math.min(500 * 2 ** (n - 2), 10_000)),
});

/** The client's own events: a notification of the same name is only emitted as 'notification'. */
const OWN_EVENTS = new Set(['notification', 'stderr', 'exit', 'restart', 'fatal', 'protocolError', 'error', 'newListener', 'removeListener']);

// Children alive in this Node process, killed when Node exits so no sidecar is left orphaned.
const LIVE = new Set();
let exitHookInstalled = false;
function trackChild(child) {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of LIVE) {
        try {
          c.kill(); // SIGTERM: the sidecar cancels in-flight work and exits within 2 s, data kept
        } catch {
          /* already gone */
        }
      }
    });
  }
  LIVE.add(child);
}

function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // nobody may be waiting; never an unhandled rejection
  return { promise, resolve, reject };
}

/** Resolves true when `promise` settles within `ms`, false otherwise (a hang guard, not synchronisation). */
function within(promise, ms) {
  let timer;
  return Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    new Promise((res) => {
      timer = setTimeout(() => res(false), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * @typedef {object} RestartOptions
 * @property {number} [maxRestarts]
 * @property {number} [windowMs]
 * @property {(n: number) => number} [backoffMs]
 */

/**
 * @typedef {object} StartOptions
 * @property {string} command  the sidecar executable (the frozen binary, or a Python interpreter)
 * @property {string[]} [args]  arguments before `--data-dir` (e.g. `['-m', 'sidecar', '--log-level', 'debug']`)
 * @property {string} [dataDir]  passed as `--data-dir`; Electron: `app.getPath('userData')`
 * @property {Record<string, string|undefined>} [env]  merged over `process.env`
 * @property {string} [cwd]
 * @property {boolean | RestartOptions} [restart]  default true (DEFAULT_RESTART); false: never restart
 * @property {boolean | {clientInfo?: {name: string, version?: string}}} [initialize]  default true: send
 *   `initialize {clientInfo, processId: process.pid}` after every (re)start, so the sidecar also exits when this
 *   process dies without running its exit handlers (SIGKILL, a crash)
 * @property {number} [closeTimeoutMs]  how long close() waits for a clean exit before killing (default 5000)
 */

export class SidecarClient extends EventEmitter {
  /**
   * Spawn the sidecar and (by default) initialize it. Rejects if the command cannot be started or dies
   * before answering `initialize`; the restart policy only applies once this has resolved.
   * @param {StartOptions} options
   * @returns {Promise<SidecarClient>}
   */
  static async start(options) {
    const client = new SidecarClient(options);
    await client.start();
    return client;
  }

  /**
   * Start a client made with `new SidecarClient(options)`: lets listeners (e.g. 'stderr') be attached before the
   * process runs. Same contract as the static start(); calling it twice returns the same promise.
   * @returns {Promise<this>}
   */
  start() {
    if (!this._startPromise) this._startPromise = this._startFirst().then(() => this);
    return this._startPromise;
  }

  /** @param {StartOptions} options  (use SidecarClient.start) */
  constructor(options) {
    super();
    if (!options || typeof options.command !== 'string' || !options.command) {
      throw new TypeError('SidecarClient: options.command (the sidecar executable) is required');
    }
    this._command = options.command;
    this._args = [...(options.args || [])];
    if (options.dataDir) this._args.push('--data-dir', options.dataDir);
    this._env = options.env ? { ...process.env, ...options.env } : process.env;
    this._cwd = options.cwd;
    this._restart =
      options.restart === false ? null : { ...DEFAULT_RESTART, ...(typeof options.restart === 'object' ? options.restart : {}) };
    this._initialize =
      options.initialize === false
        ? null
        : { clientInfo: { name: 'chat-sidecar-node-client' }, ...(typeof options.initialize === 'object' ? options.initialize : {}) };
    this._closeTimeoutMs = options.closeTimeoutMs ?? 5000;

    /** @type {'starting'|'running'|'restarting'|'closing'|'closed'|'fatal'} */
    this._state = 'starting';
    this._session = null;
    this._ready = deferred();
    this._restartTimes = [];
    this._restartTimer = null;
    this._closePromise = null;
    this._startPromise = null;
    this._fatalError = null;
    /** The last `initialize` result (refreshed after every restart). */
    this.initializeResult = null;
  }

  /** `starting`, `running`, `restarting`, `closing`, `closed` or `fatal`. */
  get state() {
    return this._state;
  }

  /** The pid of the current sidecar process (undefined while none runs). */
  get pid() {
    return this._session && !this._session.done ? this._session.child.pid : undefined;
  }

  /** Restarts inside the current window (what the cap counts). */
  get restartCount() {
    const now = Date.now();
    return this._restart ? this._restartTimes.filter((t) => now - t < this._restart.windowMs).length : 0;
  }

  // ------------------------------------------------------------------------------------------- calls

  /**
   * Call a method by its wire name. Resolves with `result`; rejects with an RpcError (an error response) or a
   * SidecarConnectionError (the process died, its stdin broke, the client closed or gave up). While the sidecar
   * is being restarted, the call waits for the new process.
   * @param {string} method
   * @param {object} [params]
   * @param {{token?: import('vscode-jsonrpc').CancellationToken, signal?: AbortSignal}} [options]
   * @returns {Promise<any>}
   */
  call(method, params, options = {}) {
    const { signal, token } = options;
    if (signal && signal.aborted) return Promise.reject(signal.reason);
    // JSON-RPC params are an object or absent. null is sent as absent: the sidecar answers a `params: null`
    // request with an error whose id is null, which no client could match to its call.
    if (params === null) params = undefined;
    if (params !== undefined && (typeof params !== 'object' || Array.isArray(params))) {
      return Promise.reject(new TypeError(`params of ${method} must be an object, got ${Array.isArray(params) ? 'an array' : typeof params}`));
    }
    if (!signal) return this._whenReady().then((session) => this._requestOn(session, method, params, token));

    // An AbortSignal drives a token of its own (joined with the caller's), and rejects at once.
    const source = new CancellationTokenSource();
    const joined = token ? token.onCancellationRequested(() => source.cancel()) : null;
    const sent = this._whenReady().then((session) => {
      if (signal.aborted) throw signal.reason; // aborted while waiting for a restart: never sent
      return this._requestOn(session, method, params, source.token);
    });
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        source.cancel();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      sent.then(resolve, reject).finally(() => {
        signal.removeEventListener('abort', onAbort);
        if (joined) joined.dispose();
        source.dispose();
      });
    });
  }

  /**
   * Send a notification by its wire name (`exit`, `$/cancelRequest`). Resolves once written.
   * @param {string} method
   * @param {object} [params]
   * @returns {Promise<void>}
   */
  async notify(method, params) {
    return this._notifyOn(await this._whenReady(), method, params);
  }

  // ------------------------------------------------------------------------------------------- close

  /**
   * Shut the sidecar down cleanly: `shutdown` (in-flight turns still answer), the `exit` notification, stdin
   * closed, then wait for the process to end; SIGTERM after `timeoutMs`, SIGKILL 2 s later. No restart follows.
   * Calls made afterwards reject with ERR_SIDECAR_CLOSED. Resolves with the exit `{code, signal}` (null when no
   * process was running).
   * @param {{timeoutMs?: number}} [options]
   * @returns {Promise<{code: number|null, signal: string|null} | null>}
   */
  close(options = {}) {
    if (!this._closePromise) this._closePromise = this._doClose(options.timeoutMs ?? this._closeTimeoutMs);
    return this._closePromise;
  }

  async _doClose(timeoutMs) {
    const wasFatal = this._state === 'fatal';
    this._state = 'closing';
    if (this._restartTimer) clearTimeout(this._restartTimer);
    this._restartTimer = null;
    // Calls waiting for a process will never get one; those already sent get their answers (shutdown lets a
    // processUserMessage in flight finish with its result).
    this._ready.reject(wasFatal ? this._fatalError : new SidecarConnectionError('ERR_SIDECAR_CLOSED', 'the sidecar client was closed'));
    const session = this._session;
    if (!session || session.done) {
      this._state = 'closed';
      return session ? session.exit : null;
    }
    const started = Date.now();
    const left = () => Math.max(0, timeoutMs - (Date.now() - started));
    if (!session.stdinBroken) {
      await within(this._requestOn(session, 'shutdown'), left());
      await this._notifyOn(session, 'exit').catch(() => {});
    }
    try {
      session.child.stdin.end();
    } catch {
      /* already closed */
    }
    if (!(await within(session.closed, left()))) {
      session.child.kill('SIGTERM');
      if (!(await within(session.closed, 2000))) session.child.kill('SIGKILL');
      await session.closed;
    }
    this._state = 'closed';
    return session.exit;
  }

  // --------------------------------------------------------------------------------------- internals

  _whenReady() {
    if (this._state === 'running' && this._session && !this._session.done) return Promise.resolve(this._session);
    if (this._state === 'closing' || this._state === 'closed') {
      return Promise.reject(new SidecarConnectionError('ERR_SIDECAR_CLOSED', 'the sidecar client was closed'));
    }
    if (this._state === 'fatal') return Promise.reject(this._fatalError);
    return this._ready.promise;
  }

  /** A request on one process (the ready gate is the caller's business). */
  async _requestOn(session, method, params, token) {
    if (session.done || this._stdinGone(session)) throw this._goneError(session);
    const args = params === undefined ? [] : [params];
    if (token) args.push(token);
    try {
      return await session.connection.sendRequest(method, ...args);
    } catch (err) {
      throw this._mapError(err, session, method);
    }
  }

  async _notifyOn(session, method, params) {
    if (session.done || this._stdinGone(session)) throw this._goneError(session);
    try {
      await (params === undefined || params === null
        ? session.connection.sendNotification(method)
        : session.connection.sendNotification(method, params));
    } catch (err) {
      throw this._mapError(err, session, method);
    }
  }

  _stdinGone(session) {
    const stdin = session.child.stdin;
    if (!session.stdinBroken && stdin && (stdin.destroyed || stdin.writableEnded)) session.stdinBroken = true;
    return session.stdinBroken;
  }

  /** vscode-jsonrpc's errors, in this client's terms. */
  _mapError(err, session, method) {
    if (err instanceof ResponseError) {
      switch (err.code) {
        case ErrorCodes.PendingResponseRejected: // the connection was disposed: the process is gone
          return this._goneError(session);
        case ErrorCodes.MessageWriteError: // a broken pipe, or params that are not JSON (a BigInt, a cycle)
          return session.stdinBroken || session.done
            ? this._goneError(session)
            : new TypeError(`could not send ${method}: ${err.message}`);
        default:
          return new RpcError(err.code, err.message, err.data);
      }
    }
    if (err instanceof ConnectionError) return this._goneError(session);
    return err;
  }

  _goneError(session) {
    if (session.done) {
      const e = session.exit || {};
      return new SidecarConnectionError('ERR_SIDECAR_EXITED', `the sidecar exited (code ${e.code}, signal ${e.signal})`, {
        exitCode: e.code,
        signal: e.signal,
      });
    }
    if (session.stdinBroken) {
      const cause = session.stdinError;
      return new SidecarConnectionError(
        'ERR_SIDECAR_EPIPE',
        `writing to the sidecar failed: ${cause ? cause.code || cause.message : 'its stdin is closed'}`,
        cause ? { cause } : {},
      );
    }
    // The connection closed (stdout ended) before the exit was seen: the process is on its way out.
    return new SidecarConnectionError('ERR_SIDECAR_EXITED', 'the sidecar closed its output');
  }

  _spawn() {
    const child = spawn(this._command, this._args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: this._env,
      cwd: this._cwd,
      windowsHide: true,
    });
    const reader = new StreamMessageReader(child.stdout);
    // No "partial message" timer: this client does not use it, and the library re-arms it every 10 s for as long
    // as a frame stays incomplete, even after the process is gone (a sidecar that died mid-frame would keep this
    // process alive).
    reader.partialMessageTimeout = 0;
    const writer = new StreamMessageWriter(child.stdin);
    const connection = createMessageConnection(reader, writer);
    const session = {
      child,
      connection,
      stdinBroken: false,
      stdinError: null,
      done: false,
      exit: null,
      closedSignal: deferred(),
      spawned: deferred(),
    };
    session.closed = session.closedSignal.promise;
    if (child.pid !== undefined) trackChild(child);

    connection.onNotification((method, params) => this._onNotification(method, params));
    reader.onError((error) => this.emit('protocolError', { error }));
    // A write that failed on the pipe (the library also reports params it could not encode: those have no code).
    writer.onError(([error]) => {
      if (error && /** @type {any} */ (error).code) this._onStdinError(session, error);
    });
    connection.listen();

    child.on('spawn', () => session.spawned.resolve());
    child.on('error', (/** @type {NodeJS.ErrnoException} */ err) => {
      // Spawn failure (ENOENT, EACCES): 'close' follows. A failed kill() also lands here: ignore it.
      if (child.pid === undefined) {
        session.spawned.reject(
          new SidecarConnectionError('ERR_SIDECAR_SPAWN', `could not start ${this._command}: ${err.code || err.message}`, {
            cause: err,
          }),
        );
      }
    });
    child.stdin.on('error', (err) => this._onStdinError(session, err));
    createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) => this._onStderr(line));

    let fallback = null;
    child.on('exit', (code, signal) => {
      session.exit = { code, signal };
      // 'close' normally follows at once (after stdout is drained); if a grandchild holds the pipes open, do
      // not wait for it forever.
      fallback = setTimeout(() => this._finalize(session), 2000);
      fallback.unref();
    });
    child.on('close', (code, signal) => {
      if (fallback) clearTimeout(fallback);
      if (!session.exit) session.exit = { code, signal };
      this._finalize(session);
    });
    return session;
  }

  async _startFirst() {
    const session = this._spawn();
    this._session = session;
    try {
      await session.spawned.promise;
      if (this._initialize) this.initializeResult = await this._requestOn(session, 'initialize', this._initParams());
    } catch (err) {
      this._state = 'closed';
      this._ready.reject(err);
      if (!session.done) {
        session.child.kill('SIGKILL');
        await session.closed;
      }
      throw err;
    }
    if (this._state !== 'starting') return; // close() was called meanwhile
    this._state = 'running';
    this._ready.resolve(session);
  }

  _initParams() {
    return { ...this._initialize, processId: process.pid };
  }

  _onStdinError(session, err) {
    if (session.stdinBroken && session.stdinError) return;
    session.stdinBroken = true;
    session.stdinError = err;
    // Nothing more can be sent to this process; calls already sent may still be answered (the sidecar finishes
    // what it has read), but a process whose stdin is gone is on its way out: make sure it goes (the exit then
    // drives the restart policy).
    const t = setTimeout(() => {
      if (!session.done) session.child.kill('SIGTERM');
    }, 2000);
    t.unref();
  }

  _onNotification(method, params) {
    if (!OWN_EVENTS.has(method)) this.emit(method, params);
    this.emit('notification', method, params);
  }

  _onStderr(line) {
    if (!line.trim()) return;
    let record;
    try {
      record = JSON.parse(line);
      if (!record || typeof record !== 'object') record = { raw: line };
    } catch {
      record = { raw: line };
    }
    this.emit('stderr', record);
  }

  _finalize(session) {
    if (session.done) return;
    session.done = true;
    LIVE.delete(session.child);
    const exit = session.exit || { code: null, signal: null };
    session.connection.dispose(); // rejects the calls still pending on this process (-> ERR_SIDECAR_EXITED)
    session.closedSignal.resolve(exit);
    if (session !== this._session) return;
    const expected = this._state === 'closing' || this._state === 'closed' || this._state === 'starting';
    this.emit('exit', { code: exit.code, signal: exit.signal, expected, pid: session.child.pid });
    if (!expected) this._onCrash(exit);
  }

  _onCrash(exit) {
    const fatal = (reason) => {
      this._state = 'fatal';
      this._fatalError = new SidecarConnectionError('ERR_SIDECAR_FATAL', `the sidecar is down: ${reason}`, {
        exitCode: exit.code,
        signal: exit.signal,
      });
      this._ready.reject(this._fatalError);
      this.emit('fatal', { reason, code: exit.code, signal: exit.signal, restarts: this.restartCount, error: this._fatalError });
    };
    if (!this._restart) {
      fatal('it exited and restarting is disabled');
      return;
    }
    const now = Date.now();
    const { maxRestarts, windowMs, backoffMs } = this._restart;
    this._restartTimes = this._restartTimes.filter((t) => now - t < windowMs);
    if (this._restartTimes.length >= maxRestarts) {
      fatal(`it exited ${maxRestarts + 1} times within ${Math.round(windowMs / 1000)} s`);
      return;
    }
    this._restartTimes.push(now);
    const attempt = this._restartTimes.length;
    if (this._state === 'running') this._ready = deferred();
    this._state = 'restarting';
    this._restartTimer = setTimeout(() => {
      this._restartTimer = null;
      this._doRestart(attempt, exit);
    }, Math.max(0, backoffMs(attempt)));
  }

  async _doRestart(attempt, previousExit) {
    if (this._state !== 'restarting') return;
    const session = this._spawn();
    this._session = session;
    try {
      await session.spawned.promise;
      if (this._initialize) this.initializeResult = await this._requestOn(session, 'initialize', this._initParams());
    } catch (err) {
      if (err instanceof RpcError) {
        // It runs but refused initialize: still usable; say so through the log event.
        this.emit('stderr', { level: 'warning', msg: 'initialize failed after restart', error: err.message });
      } else {
        return; // it died again: _finalize has already run the restart policy
      }
    }
    if (this._state !== 'restarting' || session.done) return; // closed meanwhile, or died right away
    this._state = 'running';
    this._ready.resolve(session);
    this.emit('restart', {
      attempt,
      restarts: this.restartCount,
      pid: session.child.pid,
      code: previousExit.code,
      signal: previousExit.signal,
    });
  }
}

// One typed wrapper per method of the contract (generated/protocol.js, from schema/openrpc.json): `call` for a
// request, `notify` for a client notification.
for (const { name, jsName, notification } of METHODS) {
  const wrapper = notification
    ? { [jsName](params) { return this.notify(name, params); } }[jsName]
    : { [jsName](params, options) { return this.call(name, params, options); } }[jsName];
  Object.defineProperty(SidecarClient.prototype, jsName, { value: wrapper, writable: true, configurable: true });
}

export default SidecarClient;
