// A preload of the app's own that adds window.chatSidecar (with Electron's own contextBridge and ipcRenderer).
import { contextBridge, ipcRenderer } from 'electron';
import { createChatSidecarApi, exposeChatSidecar, type ChatSidecarApi } from '@chat-sidecar/client/preload';

const api: ChatSidecarApi = createChatSidecarApi(ipcRenderer);
void api;
exposeChatSidecar({ contextBridge, ipcRenderer }, 'chatSidecarCopy');
