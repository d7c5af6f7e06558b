// Types of src/electron.js (hand-written). The parameter types are the parts of Electron's API the bridge uses,
// so Electron's own ipcMain, WebContents and WebFrameMain fit them and this package does not depend on electron.

import type { SidecarClient } from './sidecar.js';
import type { EventName, RendererMethodName } from './protocol.js';

/** The part of Electron's `ipcMain` the bridge uses. */
export interface IpcMainLike {
  handle(channel: string, listener: (event: any, ...args: any[]) => any): void;
  removeHandler(channel: string): void;
}

/** The part of Electron's `WebContents` the bridge uses. */
export interface WebContentsLike {
  send(channel: string, ...args: any[]): void;
  isDestroyed(): boolean;
  once(event: 'destroyed', listener: Function): unknown;
  removeListener(event: 'destroyed', listener: Function): unknown;
}

/** The part of Electron's `WebFrameMain` a trust check may read. */
export interface SenderFrame {
  readonly url: string;
  readonly origin: string;
  readonly parent: unknown;
}

export interface BridgeOptions {
  ipcMain: IpcMainLike;
  client: SidecarClient;
  /** The window's `webContents`: the only sender accepted, and where the events go. */
  webContents: WebContentsLike;
  /** An extra check of the sending (top) frame, e.g. `(frame) => new URL(frame.url).protocol === 'file:'`. */
  isTrustedFrame?: (frame: SenderFrame) => boolean;
}

export interface Bridge {
  /** The IPC channels registered with `ipcMain.handle` (the method names). */
  readonly channels: readonly RendererMethodName[];
  /** The events forwarded with `webContents.send`. */
  readonly events: readonly EventName[];
  /** Remove the handlers and listeners now (done by itself when the webContents is destroyed). */
  dispose(): void;
}

/**
 * One `ipcMain.handle(method)` per method a renderer may call (every request but `initialize` and `shutdown`),
 * answering `{ok: true, result}` or `{ok: false, error}`; calls from any other sender than `webContents`'s top
 * frame are refused. The sidecar's events go to `webContents`. Cleaned up when the webContents is destroyed.
 */
export declare function bridgeToRenderer(options: BridgeOptions): Bridge;
