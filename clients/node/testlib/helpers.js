// Shared by the tests in test/ (kept outside test/ so `node --test test/` does not run it as a test file).
//
// Environment:
//   SIDECAR_PYTHON   the Python that runs tests/fake_provider.py (and the sidecar, by default);
//                    default ../../.venv/bin/python (Scripts\python.exe on Windows) from the package dir
//   SIDECAR_COMMAND  a JSON array: the sidecar command, e.g. '["/path/dist/chat-sidecar/chat-sidecar"]';
//                    default [<python>, "-m", "sidecar"]
// Every sidecar gets `--data-dir <fresh tmp dir> --secret-store memory`.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, isAbsolute } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = resolve(PACKAGE_DIR, '..', '..');

export function pythonPath() {
  const fromEnv = process.env.SIDECAR_PYTHON;
  if (fromEnv) return isAbsolute(fromEnv) || !fromEnv.includes('/') ? fromEnv : resolve(PACKAGE_DIR, fromEnv);
  return process.platform === 'win32'
    ? resolve(PACKAGE_DIR, '..', '..', '.venv', 'Scripts', 'python.exe')
    : resolve(PACKAGE_DIR, '..', '..', '.venv', 'bin', 'python');
}

/** [command, ...args] that start a sidecar (without --data-dir / --secret-store). */
export function sidecarCommand() {
  const raw = process.env.SIDECAR_COMMAND;
  if (raw) {
    let parsed;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new Error(`SIDECAR_COMMAND must be a JSON array of strings, got ${raw}`);
    }
    if (!Array.isArray(parsed) || !parsed.length || !parsed.every((s) => typeof s === 'string')) {
      throw new Error(`SIDECAR_COMMAND must be a non-empty JSON array of strings, got ${raw}`);
    }
    return parsed;
  }
  return [pythonPath(), '-m', 'sidecar'];
}

/** The `protocolVersion` the sidecar's `initialize` answers, as schema/openrpc.json states it. */
export function protocolVersion() {
  const openrpc = JSON.parse(readFileSync(join(REPO_DIR, 'schema', 'openrpc.json'), 'utf8'));
  return openrpc.components.schemas.InitializeResult.properties.protocolVersion.const;
}

/** A fresh data dir; removed by the returned cleanup. */
export async function tempDataDir(t) {
  const dir = await mkdtemp(join(tmpdir(), 'sidecar-node-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The SidecarClient.start options for a test sidecar in `dataDir`. */
export function startOptions(dataDir, extra = {}) {
  const [command, ...args] = sidecarCommand();
  return {
    command,
    args: [...args, '--secret-store', 'memory', '--log-level', 'warning'],
    dataDir,
    cwd: REPO_DIR,
    ...extra,
  };
}

/**
 * Start tests/fake_provider.py on a free port; stopped (stdin closed) after the test.
 * @returns {Promise<{port: number, baseUrl: string}>}
 */
export async function startFakeProvider(t) {
  const child = spawn(pythonPath(), [join(REPO_DIR, 'tests', 'fake_provider.py'), '--port', '0'], {
    stdio: ['pipe', 'pipe', 'inherit'],
    cwd: REPO_DIR,
  });
  const exited = new Promise((res) => child.on('close', res));
  t.after(async () => {
    child.stdin.end();
    await exited;
  });
  const first = await new Promise((res, rej) => {
    const rl = createInterface({ input: child.stdout });
    rl.once('line', (line) => {
      rl.close();
      res(line);
    });
    child.once('error', rej);
    child.once('close', (code) => rej(new Error(`fake provider exited (${code}) before printing its port`)));
  });
  const { port } = JSON.parse(first);
  return { port, baseUrl: `http://127.0.0.1:${port}/v1` };
}

/**
 * Resolve with the first `event` (from `emitter`) whose args satisfy `predicate`. No timer: the test's own timeout
 * is the hang guard.
 */
export function waitFor(emitter, event, predicate = () => true) {
  return new Promise((res) => {
    const listener = (...args) => {
      if (predicate(...args)) {
        emitter.off(event, listener);
        res(args[0]);
      }
    };
    emitter.on(event, listener);
  });
}

/** True while a process with this pid runs (a zombie waiting to be reaped by init counts as gone). */
export function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return err.code === 'EPERM';
  }
  if (process.platform === 'linux') {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * The seeded pieces plus a conversation with the given agents, through a `call(method, params)` function (works
 * for SidecarClient.call and for vscode-jsonrpc's sendRequest).
 * @param {(method: string, params?: object) => Promise<any>} call
 * @param {{baseUrl?: string, agents: Array<{name: string, model: string, demo?: boolean}>}} spec
 */
export async function setUpConversation(call, spec) {
  let llmConfig = null;
  if (spec.agents.some((a) => !a.demo)) {
    llmConfig = await call('llmConfigs:create', {
      customName: `Fake OpenAI ${Math.random().toString(36).slice(2, 8)}`,
      provider: 'openai',
      baseUrl: spec.baseUrl,
      apiKey: 'sk-test-node-client-0000',
      persist: false,
    });
  }
  const configs = await call('llmConfigs:list');
  const demo = configs.find((c) => c.provider === 'demo');
  const roles = await call('roles:list');
  const personalities = await call('personalities:list');
  const conversation = await call('conversations:create', { title: 'Node client test' });
  const agents = [];
  for (const [i, a] of spec.agents.entries()) {
    const agent = await call('agents:create', {
      name: a.name,
      llmConfigId: a.demo ? demo.id : llmConfig.id,
      model: a.model,
      roleId: roles[i % roles.length].id,
      personalityId: personalities[i % personalities.length].id,
      timeoutMs: 20000,
    });
    const member = await call('conversationAgents:add', { conversationId: conversation.id, agentId: agent.id });
    agents.push({ agent, member });
  }
  return { llmConfig, conversation, agents, roles, personalities };
}
