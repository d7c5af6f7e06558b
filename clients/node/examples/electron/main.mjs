// The Electron main process of a chat app that embeds the sidecar: the README's "Embedding in Electron" recipe,
// run by test/electron-app.test.js (against stand-ins for Electron's modules and the real sidecar).
import { app, BrowserWindow, dialog, ipcMain } from 'electron';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SidecarClient, bridgeToRenderer } from '@chat-sidecar/client';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

// The frozen sidecar folder (dist/chat-sidecar/ of `python build/build.py`) lives in resources/chat-sidecar/ of
// the project; electron-builder copies it next to app.asar (extraResources), where it can be executed.
function sidecarExecutable() {
  const exe = process.platform === 'win32' ? 'chat-sidecar.exe' : 'chat-sidecar';
  const resources = app.isPackaged ? process.resourcesPath : path.join(app.getAppPath(), 'resources');
  return path.join(resources, 'chat-sidecar', exe);
}

const sidecar = new SidecarClient({
  command: sidecarExecutable(),
  dataDir: app.getPath('userData'), // the SQLite file lives next to Electron's own data
  initialize: { clientInfo: { name: app.getName(), version: app.getVersion() } },
});
sidecar.on('fatal', (event) => dialog.showErrorBox('The chat backend stopped', event.reason));

async function openWindow() {
  const win = new BrowserWindow({
    width: 960,
    height: 720,
    webPreferences: {
      preload: require.resolve('@chat-sidecar/client/preload'), // exposes window.chatSidecar
      contextIsolation: true,
      sandbox: true,
    },
  });
  // One ipcMain.handle per method, events to this window, all removed when it closes.
  bridgeToRenderer({
    ipcMain,
    client: sidecar,
    webContents: win.webContents,
    isTrustedFrame: (frame) => new URL(frame.url).protocol === 'file:',
  });
  await win.loadFile(path.join(here, 'index.html'));
}

app.whenReady().then(async () => {
  await sidecar.start(); // spawns it, then initialize {processId}: it exits by itself if this process dies
  await openWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) openWindow();
  });
});

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});

let quitting = false;
app.on('before-quit', (event) => {
  if (quitting) return;
  quitting = true;
  event.preventDefault();
  sidecar.close().finally(() => app.quit()); // shutdown, exit, wait for code 0
});
