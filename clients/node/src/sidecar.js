// A client for the chat-sidecar, written the way Electron's main process uses it: spawn the sidecar as a child
// process with piped stdio, speak JSON-RPC 2.0 over NDJSON, correlate responses by id, turn the sidecar's
// notifications into events, and restart it (with a cap) when it dies unexpectedly.
//
//   import { SidecarClient } from '@chat-sidecar/client';
//   const sidecar = await SidecarClient.start({ command, args, dataDir: app.getPath('userData') });
//   sidecar.on('agent:update', (u) => win.webContents.send('agent:update', u));
//   const rows = await sidecar.messagesList({ conversationId });
//   await sidecar.close();
//
// Every RPC method has a typed wrapper (camelCase of the wire name; see methods.js, generated from
// schema/openrpc.json, and types.d.ts). `call(method, params)` is the untyped way in.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { SidecarMethods, METHODS, NOTIFICATIONS, ERROR_CODES } from './methods.js';

export { METHODS, NOTIFICATIONS, ERROR_CODES };

/** An error response from the sidecar: `{code, message, data}` as sent (`data.kind` for application errors). */
export class RpcError extends Error {
  /** @param {number} code @param {string} message @param {unknown} [data] */
  constructor(code, message, data) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
    this.data = data;
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

export class SidecarClient extends SidecarMethods {
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
    this._nextId = 1;
    /** @type {Map<number, any>} */
    this._pending = new Map();
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
   * Call a method by its wire name. Resolves with `result`, rejects with an RpcError (an error response) or a
   * SidecarConnectionError (the process died, its stdin broke, the client closed or gave up). While the sidecar
   * is being restarted, the call waits for the new process.
   * @param {string} method
   * @param {object} [params]
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<any>}
   */
  call(method, params, options) {
    return this.request(method, params, options).result;
  }

  /**
   * Like call(), but also gives the request id, for cancelRequest(id).
   * @param {string} method
   * @param {object} [params]
   * @param {{signal?: AbortSignal}} [options]
   * @returns {{id: number, result: Promise<any>}}
   */
  request(method, params, options = {}) {
    const id = this._nextId++;
    const signal = options.signal;
    const settle = deferred();
    const entry = { id, method, session: null, written: false, settle, cleanup: () => {} };
    if (signal && signal.aborted) {
      settle.reject(signal.reason);
      return { id, result: settle.promise };
    }
    // JSON-RPC params are an object (or array) or absent. null is sent as absent: the sidecar answers a
    // `params: null` request with an error whose id is null, which no client could match to its call.
    if (params === null) params = undefined;
    if (params !== undefined && typeof params !== 'object') {
      settle.reject(new TypeError(`params of ${method} must be an object, got ${typeof params}`));
      return { id, result: settle.promise };
    }
    this._pending.set(id, entry);
    if (signal) {
      const onAbort = () => {
        const e = this._pending.get(id);
        if (!e) return;
        this._forget(e);
        if (e.written && e.session && !e.session.done) this._writeTo(e.session, { jsonrpc: '2.0', method: '$/cancelRequest', params: { id } }, () => {});
        settle.reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      entry.cleanup = () => signal.removeEventListener('abort', onAbort);
    }
    this._whenReady().then(
      (session) => {
        if (!this._pending.has(id)) return; // cancelled while waiting
        this._send(session, entry, params);
      },
      (err) => this._fail(entry, err),
    );
    return { id, result: settle.promise };
  }

  /**
   * Send `$/cancelRequest {id}` for a pending call; that call then rejects with RpcError -32800 when the sidecar
   * answers. A call not yet sent (waiting for a restart) is rejected at once; an unknown id is ignored.
   * @param {number} id
   */
  cancelRequest(id) {
    const entry = this._pending.get(id);
    if (!entry) return;
    if (!entry.written || !entry.session || entry.session.done) {
      this._fail(entry, new RpcError(ERROR_CODES.RequestCancelled, 'Request cancelled'));
      return;
    }
    this._writeTo(entry.session, { jsonrpc: '2.0', method: '$/cancelRequest', params: { id } }, () => {});
  }

  /**
   * Send a notification by its wire name (`exit`, `$/cancelRequest`). Resolves once written.
   * @param {string} method
   * @param {object} [params]
   * @returns {Promise<void>}
   */
  async notify(method, params) {
    const session = await this._whenReady();
    const msg = { jsonrpc: '2.0', method };
    if (params !== undefined && params !== null) msg.params = params;
    await /** @type {Promise<void>} */ (
      new Promise((resolve, reject) => this._writeTo(session, msg, (err) => (err ? reject(err) : resolve())))
    );
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
    const closedErr = new SidecarConnectionError('ERR_SIDECAR_CLOSED', 'the sidecar client was closed');
    this._ready.reject(wasFatal ? this._fatalError : closedErr);
    const session = this._session;
    if (!session || session.done) {
      this._state = 'closed';
      this._rejectUnsent(closedErr);
      return session ? session.exit : null;
    }
    const started = Date.now();
    const left = () => Math.max(0, timeoutMs - (Date.now() - started));
    // Calls still waiting to be written will never be; those already written get their answers (shutdown lets
    // a processUserMessage in flight finish with its result).
    this._rejectUnsent(closedErr);
    if (!session.stdinBroken) {
      const shutdown = this._callOn(session, 'shutdown');
      await within(shutdown, left());
      await /** @type {Promise<void>} */ (
        new Promise((resolve) => this._writeTo(session, { jsonrpc: '2.0', method: 'exit' }, () => resolve()))
      );
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

  /** A call on one specific process, bypassing the ready gate (initialize, shutdown). */
  _callOn(session, method, params) {
    const id = this._nextId++;
    const settle = deferred();
    const entry = { id, method, session: null, written: false, settle, cleanup: () => {} };
    this._pending.set(id, entry);
    this._send(session, entry, params);
    return settle.promise;
  }

  _send(session, entry, params) {
    if (session.done || session.stdinBroken) {
      this._fail(entry, this._goneError(session));
      return;
    }
    entry.session = session;
    entry.written = true;
    session.pending.add(entry.id);
    const msg = { jsonrpc: '2.0', id: entry.id, method: entry.method };
    if (params !== undefined) msg.params = params;
    this._writeTo(session, msg, (err) => {
      if (err) this._fail(entry, err);
    });
  }

  _writeTo(session, msg, cb) {
    const child = session.child;
    if (session.done || session.stdinBroken || !child.stdin || child.stdin.destroyed || child.stdin.writableEnded) {
      cb(this._goneError(session));
      return;
    }
    let line;
    try {
      line = JSON.stringify(msg) + '\n';
    } catch (err) {
      cb(err); // e.g. a BigInt or a cycle in params: that call fails, nothing is written
      return;
    }
    try {
      child.stdin.write(line, (err) => {
        if (err) cb(this._pipeError(err));
        else cb(null);
      });
    } catch (err) {
      cb(this._pipeError(err));
    }
  }

  _goneError(session) {
    if (session.done) {
      const e = session.exit || {};
      return new SidecarConnectionError('ERR_SIDECAR_EXITED', `the sidecar exited (code ${e.code}, signal ${e.signal})`, {
        exitCode: e.code,
        signal: e.signal,
      });
    }
    return new SidecarConnectionError('ERR_SIDECAR_EPIPE', "the sidecar's stdin is closed");
  }

  _pipeError(err) {
    return new SidecarConnectionError('ERR_SIDECAR_EPIPE', `writing to the sidecar failed: ${err.code || err.message}`, {
      cause: err,
    });
  }

  _forget(entry) {
    this._pending.delete(entry.id);
    if (entry.session) entry.session.pending.delete(entry.id);
    entry.cleanup();
  }

  _fail(entry, err) {
    if (!this._pending.has(entry.id)) return;
    this._forget(entry);
    entry.settle.reject(err);
  }

  _rejectUnsent(err) {
    for (const entry of [...this._pending.values()]) if (!entry.written) this._fail(entry, err);
  }

  _rejectSession(session, err) {
    for (const id of [...session.pending]) {
      const entry = this._pending.get(id);
      if (entry) this._fail(entry, err);
    }
  }

  _spawn() {
    const child = spawn(this._command, this._args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: this._env,
      cwd: this._cwd,
      windowsHide: true,
    });
    const session = {
      child,
      pending: new Set(),
      stdinBroken: false,
      done: false,
      exit: null,
      spawnError: null,
      closedSignal: deferred(),
      spawned: deferred(),
    };
    session.closed = session.closedSignal.promise;
    if (child.pid !== undefined) trackChild(child);

    child.on('spawn', () => session.spawned.resolve());
    child.on('error', (/** @type {NodeJS.ErrnoException} */ err) => {
      // Spawn failure (ENOENT, EACCES): 'close' follows. A failed kill() also lands here: ignore it.
      if (child.pid === undefined) {
        session.spawnError = err;
        session.spawned.reject(
          new SidecarConnectionError('ERR_SIDECAR_SPAWN', `could not start ${this._command}: ${err.code || err.message}`, {
            cause: err,
          }),
        );
      }
    });
    child.stdin.on('error', (err) => this._onStdinError(session, err));
    child.stdout.on('error', () => {});
    child.stderr.on('error', () => {});

    createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => this._onLine(session, line));
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
      if (this._initialize) this.initializeResult = await this._callOn(session, 'initialize', this._initParams());
    } catch (err) {
      this._state = 'closed';
      this._ready.reject(err);
      if (!session.done) {
        session.child.kill('SIGKILL');
        await session.closed;
      }
      throw err;
    }
    this._state = 'running';
    this._ready.resolve(session);
  }

  _initParams() {
    return { ...this._initialize, processId: process.pid };
  }

  _onStdinError(session, err) {
    if (session.stdinBroken) return;
    session.stdinBroken = true;
    // Nothing more can be sent to this process: its pending calls cannot complete normally.
    this._rejectSession(session, this._pipeError(err));
    // A process whose stdin is gone is on its way out; make sure it goes (the exit then drives the restart).
    const t = setTimeout(() => {
      if (!session.done) session.child.kill('SIGTERM');
    }, 2000);
    t.unref();
  }

  _onLine(session, line) {
    if (!line.trim()) return;
    let msg;
    try {
      msg = JSON.parse(line);
    } catch (error) {
      this.emit('protocolError', { line, error });
      return;
    }
    if (Array.isArray(msg)) for (const m of msg) this._onMessage(session, m);
    else this._onMessage(session, msg);
  }

  _onMessage(session, msg) {
    if (!msg || typeof msg !== 'object') {
      this.emit('protocolError', { message: msg, error: new Error('not a JSON-RPC message') });
      return;
    }
    if (typeof msg.method === 'string') {
      if ('id' in msg) {
        // The sidecar sends no requests; answer like any JSON-RPC peer would.
        this._writeTo(session, { jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'Method not found' } }, () => {});
        return;
      }
      if (NOTIFICATIONS.includes(msg.method)) this.emit(msg.method, msg.params);
      this.emit('notification', msg.method, msg.params);
      return;
    }
    const entry = this._pending.get(msg.id);
    if (!entry) {
      if (msg.id === null || msg.id === undefined) this.emit('protocolError', { message: msg, error: new Error('response without id') });
      return; // a late answer to a call aborted on this side
    }
    this._forget(entry);
    if (msg.error) {
      const e = msg.error;
      entry.settle.reject(new RpcError(e.code, e.message, e.data));
    } else {
      entry.settle.resolve(msg.result);
    }
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
    this._rejectSession(session, this._goneError(session));
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
      this._rejectUnsent(this._fatalError);
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
      if (this._initialize) this.initializeResult = await this._callOn(session, 'initialize', this._initParams());
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

export default SidecarClient;
