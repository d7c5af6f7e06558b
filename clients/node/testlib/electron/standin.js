// Stand-ins for the parts of Electron's API that the bridge, the preload and the example app use, written to
// Electron's documented API (electronjs.org/docs/latest/api/: ipc-main, ipc-renderer, web-contents,
// web-frame-main, context-bridge, browser-window, app, dialog; tutorial/sandbox). Electron itself cannot be
// installed on the machines that run these tests (its binary is a download from outside the package registries),
// so the real bridge, preload and example app run against these, with the real sidecar behind them.
//
// What they do that matters to the code under test:
// - ipcMain.handle(channel, listener): one handler per channel ("Attempted to register a second handler for
//   '<channel>'" otherwise); removeHandler(channel).
// - ipcRenderer.invoke(channel, ...args): arguments are structured-cloned; the handler gets an IpcMainInvokeEvent
//   {sender, senderFrame, processId, frameId}; its result is structured-cloned back. "Errors thrown through
//   handle in the main process are not transparent as they are serialized and only the message property from
//   the original error is provided to the renderer process": the invoke rejects with an Error whose message is
//   "Error invoking remote method '<channel>': <error>". No handler: "No handler registered for '<channel>'".
// - webContents.send(channel, ...args): structured clone, delivered asynchronously and in order to the page's
//   ipcRenderer.on(channel, (event, ...args)) listeners; throws on a destroyed webContents. 'destroyed' is emitted
//   when its window closes.
// - contextBridge.exposeInMainWorld(key, api): only with context isolation; function values are proxied, other
//   values are copied (and the API object frozen); an Error crossing the bridge keeps only its message; promises
//   are proxied; an existing key is not overwritten.
// - A sandboxed preload gets a `require` that knows only 'electron' (its renderer modules), 'events', 'timers'
//   and 'url', and a `process` with `type: 'renderer'`.
// - app: whenReady, isPackaged, getPath, getAppPath, getName, getVersion, quit (before-quit, which can be
//   prevented, then will-quit and quit), 'window-all-closed' when the last window closes, 'browser-window-created'.
//
// The page itself is a happy-dom window: the HTML is parsed, then its <script src> files run in it, after the
// preload, as in a renderer.

import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { Window } from 'happy-dom';

const nodeRequire = createRequire(import.meta.url);
const tick = () => new Promise((res) => setImmediate(res));

// ---------------------------------------------------------------------------------------------------- IPC

export class IpcMain extends EventEmitter {
  #handlers = new Map();

  handle(channel, listener) {
    if (this.#handlers.has(channel)) throw new Error(`Attempted to register a second handler for '${channel}'`);
    this.#handlers.set(channel, listener);
  }

  handleOnce(channel, listener) {
    this.handle(channel, (...args) => {
      this.removeHandler(channel);
      return listener(...args);
    });
  }

  removeHandler(channel) {
    this.#handlers.delete(channel);
  }

  /** Test helper: the channels with a handler. */
  handledChannels() {
    return [...this.#handlers.keys()];
  }

  /** What an ipcRenderer.invoke does in the main process. */
  async _invoke(event, channel, args) {
    const cloned = structuredClone(args);
    await tick();
    const handler = this.#handlers.get(channel);
    if (!handler) throw new Error(`Error invoking remote method '${channel}': Error: No handler registered for '${channel}'`);
    let result;
    try {
      result = await handler(event, ...cloned);
    } catch (err) {
      throw new Error(`Error invoking remote method '${channel}': ${err}`);
    }
    const reply = structuredClone(result);
    await tick();
    return reply;
  }
}

/** A page's ipcRenderer: invoke() goes to ipcMain with this frame as the sender; send() from main arrives here. */
export class IpcRenderer extends EventEmitter {
  #ipcMain;
  #event;

  constructor(ipcMain, webContents, frame) {
    super();
    this.#ipcMain = ipcMain;
    this.#event = { sender: webContents, senderFrame: frame, processId: 4242, frameId: frame.routingId };
  }

  invoke(channel, ...args) {
    return this.#ipcMain._invoke({ ...this.#event }, channel, args);
  }

  /** webContents.send(channel, ...args) lands here. */
  _deliver(channel, args) {
    this.emit(channel, { sender: this, senderId: 0 }, ...args);
  }
}

// ------------------------------------------------------------------------------------- frames and contents

let nextId = 1;

export class WebFrameMain {
  constructor(url, parent = null) {
    this.url = url;
    this.parent = parent;
    this.routingId = nextId++;
  }

  get origin() {
    try {
      return new URL(this.url).origin;
    } catch {
      return 'null';
    }
  }
}

export class WebContents extends EventEmitter {
  #destroyed = false;

  constructor(ipcMain) {
    super();
    this.id = nextId++;
    this.ipcMain = ipcMain;
    this.mainFrame = new WebFrameMain('about:blank');
    /** The page's ipcRenderer (its main frame). */
    this.ipcRenderer = new IpcRenderer(ipcMain, this, this.mainFrame);
    /** The happy-dom window of the loaded page. */
    this.page = null;
  }

  send(channel, ...args) {
    if (this.#destroyed) throw new TypeError('Object has been destroyed');
    const cloned = structuredClone(args);
    setImmediate(() => {
      if (!this.#destroyed) this.ipcRenderer._deliver(channel, cloned);
    });
  }

  isDestroyed() {
    return this.#destroyed;
  }

  getURL() {
    return this.mainFrame.url;
  }

  /** Test helper: an iframe of this page, with an ipcRenderer of its own. */
  subframe(url) {
    const frame = new WebFrameMain(url, this.mainFrame);
    return { frame, ipcRenderer: new IpcRenderer(this.ipcMain, this, frame) };
  }

  /** What closing the window does to its webContents. */
  destroy() {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.emit('destroyed');
    if (this.page) this.page.happyDOM.close();
  }

  /** Load a page: the preload first, then the HTML and its scripts (see BrowserWindow.loadFile). */
  async _load(file, webPreferences) {
    const url = pathToFileURL(file).href;
    this.mainFrame.url = url;
    const page = new Window({
      url,
      settings: {
        enableJavaScriptEvaluation: true,
        disableJavaScriptFileLoading: true,
        suppressInsecureJavaScriptEnvironmentWarning: true,
      },
    });
    this.page = page;
    if (webPreferences.preload) {
      await runPreload(webPreferences.preload, {
        window: page,
        contextIsolation: webPreferences.contextIsolation !== false,
        sandbox: webPreferences.sandbox !== false,
        ipcRenderer: this.ipcRenderer,
      });
    }
    const html = await readFile(file, 'utf8');
    page.document.write(html);
    for (const script of [...page.document.querySelectorAll('script[src]')]) {
      page.eval(await readFile(resolve(dirname(file), script.getAttribute('src')), 'utf8'));
    }
    this.emit('did-finish-load');
  }
}

// ----------------------------------------------------------------------------------------- contextBridge

function copyError(err) {
  return err instanceof Error ? new Error(err.message) : copyAcross(err);
}

/** A value crossing between the isolated world and the page. */
export function copyAcross(value) {
  if (typeof value === 'function') {
    return function bridged(...args) {
      let result;
      try {
        result = value(...args.map(copyAcross));
      } catch (err) {
        throw copyError(err);
      }
      return copyAcross(result);
    };
  }
  if (value instanceof Promise) return new Promise((res, rej) => value.then((v) => res(copyAcross(v)), (e) => rej(copyError(e))));
  if (value instanceof Error) return copyError(value);
  if (Array.isArray(value)) return value.map(copyAcross);
  if (value && typeof value === 'object') {
    const copy = {};
    for (const [k, v] of Object.entries(value)) copy[k] = copyAcross(v);
    return copy;
  }
  if (typeof value === 'symbol') return undefined;
  return value;
}

export function contextBridgeFor(window, contextIsolation = true) {
  return {
    exposeInMainWorld(apiKey, api) {
      if (!contextIsolation) throw new Error('contextBridge API can only be used when contextIsolation is enabled');
      if (apiKey in window) throw new Error('Cannot bind an API on top of an existing property on the window object');
      Object.defineProperty(window, apiKey, { value: Object.freeze(copyAcross(api)), enumerable: true });
    },
  };
}

/**
 * Run a preload script the way a renderer does: with context isolation, in a world of its own (here: Node's
 * realm, not the page's); sandboxed, its `require` knows only 'electron', 'events', 'timers' and 'url'.
 */
export async function runPreload(file, { window, contextIsolation = true, sandbox = true, ipcRenderer }) {
  const electron = { contextBridge: contextBridgeFor(window, contextIsolation), ipcRenderer };
  const source = await readFile(file, 'utf8');
  const wrapper = vm.runInThisContext(`(function (exports, require, module, __filename, __dirname, process) {${source}\n})`, { filename: file });
  const allowed = { electron, events: nodeRequire('events'), timers: nodeRequire('timers'), url: nodeRequire('url') };
  const preloadRequire = (id) => {
    const name = String(id).replace(/^node:/, '');
    if (Object.hasOwn(allowed, name)) return allowed[name];
    if (!sandbox) return createRequire(file)(id);
    throw new Error(`module not found: ${id}`);
  };
  const module = { exports: {} };
  const rendererProcess = { type: 'renderer', sandboxed: sandbox, contextIsolated: contextIsolation, platform: process.platform, versions: process.versions, env: {} };
  wrapper(module.exports, preloadRequire, module, file, dirname(file), rendererProcess);
  return module.exports;
}

// ------------------------------------------------------------------------------- main-process modules

export const ipcMain = new IpcMain();

class App extends EventEmitter {
  isPackaged = false;
  #paths = {};
  #appPath = process.cwd();
  #ready = null;

  /** Test helper: set what the real app would know (before the main script runs). */
  configure({ isPackaged = false, appPath, userData, name = 'chat-app', version = '1.0.0' }) {
    this.isPackaged = isPackaged;
    this.#appPath = appPath;
    this.#paths = { userData, appData: dirname(userData) };
    this.name = name;
    this.version = version;
  }

  whenReady() {
    if (!this.#ready) this.#ready = tick().then(() => this.emit('ready'));
    return this.#ready;
  }

  getPath(name) {
    if (!Object.hasOwn(this.#paths, name)) throw new Error(`Failed to get '${name}' path`);
    return this.#paths[name];
  }

  getAppPath() {
    return this.#appPath;
  }

  getName() {
    return this.name;
  }

  getVersion() {
    return this.version;
  }

  quit() {
    const before = preventable();
    this.emit('before-quit', before);
    if (before.defaultPrevented) return;
    for (const win of BrowserWindow.getAllWindows()) win.close();
    const will = preventable();
    this.emit('will-quit', will);
    if (will.defaultPrevented) return;
    this.emit('quit', {}, 0);
  }
}

function preventable() {
  return {
    defaultPrevented: false,
    preventDefault() {
      this.defaultPrevented = true;
    },
  };
}

export const app = new App();

export class BrowserWindow extends EventEmitter {
  static #all = new Set();

  static getAllWindows() {
    return [...BrowserWindow.#all];
  }

  constructor(options = {}) {
    super();
    this.options = options;
    this.webContents = new WebContents(ipcMain);
    BrowserWindow.#all.add(this);
    app.emit('browser-window-created', {}, this);
  }

  loadFile(file) {
    return this.webContents._load(file, this.options.webPreferences || {});
  }

  close() {
    if (!BrowserWindow.#all.has(this)) return;
    BrowserWindow.#all.delete(this);
    this.webContents.destroy();
    this.emit('closed');
    if (BrowserWindow.#all.size === 0) app.emit('window-all-closed');
  }
}

export const dialog = {
  shown: [],
  showErrorBox(title, content) {
    this.shown.push({ title, content });
  },
};

export default { app, BrowserWindow, dialog, ipcMain };
