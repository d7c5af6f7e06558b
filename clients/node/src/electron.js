// The main-process side of the Electron bridge: one `ipcMain.handle(channel)` per sidecar method (the channel is
// the method name, as the contract intends), the sidecar's events forwarded to one window, everything removed when
// that window goes. The renderer side is ./preload.cjs (`window.chatSidecar`).
//
//   const bridge = bridgeToRenderer({ ipcMain, client: sidecar, webContents: win.webContents });
//
// Electron is not imported here: the caller passes its ipcMain and webContents, so this module loads anywhere.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
/** The preload's lists, so that the two sides agree on the channels and events by construction. */
const { CHANNELS, EVENTS } = require('./preload.cjs');

/** A rejected call as the renderer receives it (structured-clonable, unlike an Error's own properties). */
function errorReply(err) {
  const e = err && typeof err === 'object' ? err : { message: String(err) };
  const error = { name: e.name || 'Error', message: String(e.message ?? err) };
  if (e.code !== undefined) error.code = e.code;
  if (typeof e.kind === 'string') error.kind = e.kind;
  if (e.data !== undefined) {
    try {
      error.data = structuredClone(e.data);
    } catch {
      /* not clonable: leave it out */
    }
  }
  return { ok: false, error };
}

/**
 * Bridge a SidecarClient to one window.
 *
 * - `ipcMain.handle(method, …)` for every method a renderer may call (all requests but `initialize` and
 *   `shutdown`): the handler calls the sidecar and answers `{ok: true, result}` or `{ok: false, error: {name,
 *   message, code, kind?, data?}}` (Electron passes only the message of a thrown error, so errors travel as
 *   values; the preload turns them back into rejections).
 * - The sender is checked on every call: it must be this window's webContents, from its top frame (and pass
 *   `isTrustedFrame(frame)` when given, e.g. a check of `frame.url`); anything else is refused (the invoke
 *   rejects, nothing reaches the sidecar).
 * - `agent:update`, `all:complete`, `auto:state` (and any other notification schema/ lists) are sent to the window
 *   with `webContents.send(event, payload)`.
 * - When the window's webContents is destroyed (the window closed), the handlers and listeners are removed, so
 *   a new window can be bridged (macOS re-opening a window, say). `dispose()` does the same earlier.
 *
 * @param {object} options
 * @param {{handle(channel: string, listener: (event: any, ...args: any[]) => any): void, removeHandler(channel: string): void}} options.ipcMain
 * @param {import('./sidecar.js').SidecarClient} options.client
 * @param {any} options.webContents  the window's `webContents`
 * @param {(frame: any) => boolean} [options.isTrustedFrame]
 * @returns {{channels: string[], events: string[], dispose: () => void}}
 */
export function bridgeToRenderer({ ipcMain, client, webContents, isTrustedFrame }) {
  if (!ipcMain || typeof ipcMain.handle !== 'function') throw new TypeError('bridgeToRenderer: ipcMain is required');
  if (!client || typeof client.call !== 'function') throw new TypeError('bridgeToRenderer: client (a SidecarClient) is required');
  if (!webContents || typeof webContents.send !== 'function') throw new TypeError('bridgeToRenderer: webContents is required');

  const allowed = (event) => {
    if (!event || event.sender !== webContents) return false;
    const frame = event.senderFrame;
    if (!frame || frame.parent) return false; // navigated away or destroyed (null), or an iframe
    return isTrustedFrame ? isTrustedFrame(frame) === true : true;
  };

  const channels = [];
  const listeners = [];
  let disposed = false;
  const dispose = () => {
    if (disposed) return;
    disposed = true;
    for (const channel of channels) ipcMain.removeHandler(channel);
    for (const [event, listener] of listeners) client.off(event, listener);
    if (typeof webContents.removeListener === 'function') webContents.removeListener('destroyed', dispose);
  };

  try {
    for (const [method] of CHANNELS) {
      ipcMain.handle(method, async (event, params) => {
        if (!allowed(event)) throw new Error(`chat-sidecar: ${method} refused: not sent by the bridged window's top frame`);
        try {
          return { ok: true, result: await client.call(method, params) };
        } catch (err) {
          return errorReply(err);
        }
      });
      channels.push(method);
    }
  } catch (err) {
    dispose(); // e.g. a second bridge while the first is alive: ipcMain refuses a second handler per channel
    throw err;
  }

  for (const event of EVENTS) {
    const listener = (payload) => {
      if (!webContents.isDestroyed()) webContents.send(event, payload);
    };
    client.on(event, listener);
    listeners.push([event, listener]);
  }
  webContents.once('destroyed', dispose);

  return { channels: [...channels], events: [...EVENTS], dispose };
}

