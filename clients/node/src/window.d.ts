// `window.chatSidecar`, as the preload (@chat-sidecar/client/preload) exposes it. In the renderer's TypeScript:
//
//   import type {} from '@chat-sidecar/client/window';
//   const conversation = await window.chatSidecar.conversationsCreate({ title: 'Hello' });

import type { ChatSidecarApi } from './preload.cjs';

export type { ChatSidecarApi, ChatSidecarError } from './preload.cjs';

declare global {
  interface Window {
    readonly chatSidecar: ChatSidecarApi;
  }
}
