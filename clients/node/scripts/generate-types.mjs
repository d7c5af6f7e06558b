#!/usr/bin/env node
// Generates the client's protocol surface from the sidecar's machine-readable contract (../../schema/):
//
//   src/generated/types.d.ts   every type, written by json-schema-to-typescript: the row shapes
//                              (components.schemas), the notification payloads, `<Method>Params` per method,
//                              and the maps `Methods` (wire name -> {params, result}), `ClientNotifications`
//                              and `Notifications` (method -> params) that src/protocol.d.ts builds on
//   src/generated/protocol.js  the runtime tables: METHODS, NOTIFICATIONS, ERROR_CODES
//   src/preload.cjs            the block between its GENERATED markers: the channels a renderer may invoke
//                              (a sandboxed preload can require nothing but 'electron', so the list lives
//                              inside the file)
//
// This script only reshapes the two documents into one JSON Schema for the library. The one thing the library
// cannot read is a union spelled as `allOf: [{if: {properties: {K: {const: v}}}, then: …, else: …}]` (how
// Message, AgentResult and AgentUpdate say "these fields go with that status"), and `x-paramsRules`
// (processUserMessage's "userMessageId or content, not both"): both become `oneOf`s here, which it reads.
//
// Usage:
//   node scripts/generate-types.mjs                  write the files
//   node scripts/generate-types.mjs --check          exit 1 (and say which) when a file differs from what the
//                                                    generator writes now (needs `npm ci`)
//   node scripts/generate-types.mjs --check-inputs   exit 1 when a file was generated from another version of
//                                                    schema/ (compares the digest in its header; needs no
//                                                    node_modules, so the Python suite can run it before `npm ci`)
//   options: --schema-dir DIR (default ../../schema), --out-dir DIR (default ./src), for tests

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Request methods the renderer may not call: the main process owns the sidecar's lifecycle. */
export const MAIN_PROCESS_ONLY = ['initialize', 'shutdown'];

function parseArgs(argv) {
  const opts = { mode: 'write', schemaDir: resolve(PACKAGE_DIR, '..', '..', 'schema'), outDir: resolve(PACKAGE_DIR, 'src') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--check') opts.mode = 'check';
    else if (a === '--check-inputs') opts.mode = 'check-inputs';
    else if (a === '--schema-dir') opts.schemaDir = resolve(argv[++i]);
    else if (a === '--out-dir') opts.outDir = resolve(argv[++i]);
    else {
      process.stderr.write(`generate-types: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  return opts;
}

// ---------------------------------------------------------------------------------------------- naming

const pascal = (s) =>
  String(s)
    .replace(/^\$\//, '')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');

/**
 * `llmConfigs:create` -> `llmConfigsCreate`; client notifications get `send`: `$/cancelRequest` ->
 * `sendCancelRequest`. src/protocol.d.ts spells the same rule as a template literal type.
 */
export function jsNameOf(method) {
  const p = pascal(method.name);
  if (method['x-notification']) return `send${p}`;
  return p[0].toLowerCase() + p.slice(1);
}

// ------------------------------------------------------------------------------- schema -> one schema

const clone = (v) => JSON.parse(JSON.stringify(v));

/** A copy of `schema` with every `$ref` passed through `map`. */
function rewriteRefs(schema, map) {
  return JSON.parse(JSON.stringify(schema), (k, v) => (k === '$ref' && typeof v === 'string' ? map(v) : v));
}

/** Adds the constraints TypeScript cannot express (lengths, ranges, patterns) to each description. */
function documentConstraints(node) {
  if (Array.isArray(node)) return node.forEach(documentConstraints);
  if (!node || typeof node !== 'object') return;
  for (const v of Object.values(node)) documentConstraints(v);
  const c = [];
  for (const k of ['minLength', 'maxLength', 'minimum', 'maximum', 'maxProperties', 'x-maxUtf8Bytes']) {
    if (node[k] !== undefined && !(k === 'maxProperties' && node[k] === 0)) c.push(`${k.replace(/^x-/, '')} ${node[k]}`);
  }
  if (typeof node.pattern === 'string') c.push(`pattern \`${node.pattern}\``);
  const types = Array.isArray(node.type) ? node.type : [node.type];
  if (types.includes('integer')) c.push('integer');
  if (node.writeOnly) c.push('write-only');
  if (c.length) node.description = [node.description, `Constraints: ${c.join(', ')}.`].filter(Boolean).join('\n\n');
}

/**
 * `allOf: [{if: {properties: {K: {const: v}}}, then, else}, …]` on one property K whose schema is an enum:
 * one variant per enum value, each with the branch properties merged in. Null when the schema is not of that
 * shape.
 */
function discriminatedVariants(schema) {
  if (!Array.isArray(schema.allOf) || !schema.properties) return null;
  let disc = null;
  for (const branch of schema.allOf) {
    const ifProps = branch.if && branch.if.properties;
    const keys = ifProps ? Object.keys(ifProps) : [];
    if (keys.length !== 1 || !('const' in ifProps[keys[0]]) || (disc && disc !== keys[0])) return null;
    disc = keys[0];
  }
  const discSchema = schema.properties[disc];
  if (!discSchema || !Array.isArray(discSchema.enum)) return null;
  return {
    disc,
    variants: discSchema.enum.map((value) => {
      const properties = clone(schema.properties);
      const required = [...(schema.required || [])];
      for (const branch of schema.allOf) {
        const part = branch.if.properties[disc].const === value ? branch.then : branch.else;
        if (!part) continue;
        for (const [k, s] of Object.entries(part.properties || {})) {
          // A branch narrows the base property: keep the base's documentation and constraints, take its type.
          const base = properties[k] || {};
          const merged = { ...base, ...s, description: s.description || base.description };
          if (s.type !== undefined || s.$ref) delete merged.anyOf;
          if (s.type !== undefined && !s.$ref) delete merged.$ref;
          if (s.$ref) delete merged.type;
          properties[k] = merged;
        }
        required.push(...(part.required || []));
      }
      properties[disc] = { const: value };
      return { value, properties, required: [...new Set(required)] };
    }),
  };
}

/** x-paramsRules "anyOf required [a] / required [b]" (+ "not required [a, b]"): one variant per alternative. */
function paramsRuleVariants(rules) {
  if (!Array.isArray(rules)) return null;
  let alternatives = null;
  let exclusive = [];
  for (const r of rules) {
    if (Array.isArray(r.anyOf) && r.anyOf.every((s) => Array.isArray(s.required) && Object.keys(s).length === 1)) {
      alternatives = r.anyOf.map((s) => s.required);
    } else if (r.not && Array.isArray(r.not.required) && Object.keys(r.not).length === 1) {
      exclusive = r.not.required;
    } else {
      return null; // a rule this script does not know: the params stay one object type
    }
  }
  return alternatives && alternatives.map((req) => ({ required: req, never: exclusive.filter((k) => !req.includes(k)) }));
}

/** One JSON Schema holding every type, with `Methods` at its root; json-schema-to-typescript compiles it. */
export function protocolSchema(openrpc, notifications) {
  const components = openrpc.components.schemas;
  /** Every named type; a name used twice is an error, not a silent overwrite. */
  const defs = new Proxy(
    {},
    {
      set(target, name, value) {
        if (Object.hasOwn(target, name)) throw new Error(`generate-types: two types would be named ${String(name)}`);
        target[name] = value;
        return true;
      },
    },
  );
  const ref = (name) => ({ $ref: `#/definitions/${name}` });

  // Notification $defs share a name with a component when they are the same schema, else get "Event".
  const events = notifications.$defs || {};
  const bare = (s) => JSON.stringify(s, (k, v) => (k === 'description' ? undefined : v));
  const eventName = {};
  for (const [name, s] of Object.entries(events)) {
    eventName[name] = components[name] === undefined || bare(components[name]) === bare(s) ? name : `Event${name}`;
  }
  const fromComponents = (s) => rewriteRefs(s, (r) => r.replace(/^#\/components\/schemas\//, '#/definitions/'));
  const fromEvents = (s) =>
    rewriteRefs(s, (r) => {
      const m = /^#\/\$defs\/(.+)$/.exec(r);
      if (!m || !events[m[1]]) throw new Error(`unresolvable $ref ${r} in notifications.json`);
      return `#/definitions/${eventName[m[1]]}`;
    });

  const declare = (name, schema) => {
    const variants = discriminatedVariants(schema);
    if (!variants) {
      defs[name] = { ...schema, title: name };
      if (schema.type === 'object' && schema.maxProperties === 0) defs[name].tsType = 'Record<string, never>';
      return;
    }
    const closed = schema.additionalProperties === false || schema.unevaluatedProperties === false;
    const names = variants.variants.map((v) => {
      const vname = `${name}${pascal(v.value)}`;
      defs[vname] = {
        title: vname,
        description: `${name} with ${variants.disc} "${v.value}".`,
        type: 'object',
        properties: v.properties,
        required: v.required,
        ...(closed ? { additionalProperties: false } : {}),
      };
      return vname;
    });
    defs[name] = {
      title: name,
      description: [schema.description, `Discriminated by \`${variants.disc}\`.`].filter(Boolean).join('\n\n'),
      oneOf: names.map(ref),
    };
  };
  for (const [name, s] of Object.entries(components)) declare(name, fromComponents(s));
  for (const [name, s] of Object.entries(events)) if (!defs[eventName[name]]) declare(eventName[name], fromEvents(s));

  const errors = openrpc.components.errors || {};
  defs.ErrorKind = {
    title: 'ErrorKind',
    description: '`error.data.kind` of the application errors; clients switch on it.',
    enum: [...new Set(Object.values(errors).map((e) => e.data && e.data.kind).filter(Boolean))],
  };
  defs.ErrorCode = {
    title: 'ErrorCode',
    description: 'Every error code the contract names, plus the JSON-RPC standard ones.',
    enum: [...new Set([-32700, -32600, -32601, -32602, -32603, ...Object.values(errors).map((e) => e.code)])],
  };

  const methods = { title: 'Methods', description: 'Every request method: wire name -> params and result.', type: 'object', additionalProperties: false, properties: {}, required: [] };
  const clientNotifications = { title: 'ClientNotifications', description: 'Notifications the client sends (they never get a response): method -> params.', type: 'object', additionalProperties: false, properties: {}, required: [] };
  for (const m of openrpc.methods) {
    const base = pascal(m.name);
    const paramsName = components[`${base}Params`] === undefined ? `${base}Params` : `${base}MethodParams`;
    const properties = {};
    const required = [];
    for (const p of m.params || []) {
      properties[p.name] = fromComponents(p.description ? { ...p.schema, description: p.description } : p.schema);
      if (p.required) required.push(p.name);
    }
    const description = `Params of \`${m.name}\`${m.summary ? `: ${m.summary}` : ''}`;
    const rules = paramsRuleVariants(m['x-paramsRules']);
    if (!m.params || m.params.length === 0) {
      defs[paramsName] = { title: paramsName, description, type: 'object', additionalProperties: false, tsType: 'Record<string, never>' };
    } else if (rules) {
      defs[paramsName] = {
        title: paramsName,
        description,
        oneOf: rules.map((v) => ({
          type: 'object',
          additionalProperties: false,
          properties: { ...properties, ...Object.fromEntries(v.never.map((k) => [k, false])) },
          required: [...new Set([...required, ...v.required])],
        })),
      };
    } else {
      defs[paramsName] = { title: paramsName, description, type: 'object', additionalProperties: false, properties, required };
    }
    const doc = [m.summary, m.description].filter(Boolean).join('\n\n');
    if (m['x-notification']) {
      clientNotifications.properties[m.name] = { ...ref(paramsName), description: doc || undefined };
      clientNotifications.required.push(m.name);
    } else {
      methods.properties[m.name] = {
        description: doc || undefined,
        type: 'object',
        additionalProperties: false,
        required: ['params', 'result'],
        properties: { params: ref(paramsName), result: fromComponents(m.result.schema) },
      };
      methods.required.push(m.name);
    }
  }
  defs.ClientNotifications = clientNotifications;
  defs.Notifications = {
    title: 'Notifications',
    description: 'Notifications the sidecar sends: method -> params.',
    type: 'object',
    additionalProperties: false,
    properties: Object.fromEntries(Object.entries(notifications['x-methods'] || {}).map(([k, s]) => [k, fromEvents(s)])),
    required: Object.keys(notifications['x-methods'] || {}),
  };
  const root = { ...methods, definitions: { ...defs } };
  documentConstraints(root);
  return namedRefs(root);
}

/**
 * `{$ref, description}` (a ContentDescriptor's own description next to its schema's $ref) would be expanded by
 * the library into a copy of the referenced type named `Name1`, `Id2`…; `tsType` keeps the reference by name.
 */
function namedRefs(node) {
  if (Array.isArray(node)) return node.map(namedRefs);
  if (!node || typeof node !== 'object') return node;
  const out = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, namedRefs(v)]));
  const m = typeof out.$ref === 'string' && /^#\/definitions\/([A-Za-z_$][\w$]*)$/.exec(out.$ref);
  const siblings = Object.keys(out).filter((k) => k !== '$ref');
  if (m && siblings.length && siblings.every((k) => ANNOTATIONS.has(k))) {
    delete out.$ref;
    out.tsType = m[1];
  }
  return out;
}
const ANNOTATIONS = new Set(['description', 'title', 'writeOnly', 'readOnly', 'deprecated', 'default', 'examples']);

// ----------------------------------------------------------------------------------------------- files

/** A digest of the schema documents' content (not their bytes: line endings and key spacing do not count). */
export function schemaDigest(openrpc, notifications) {
  return createHash('sha256').update(JSON.stringify([openrpc, notifications])).digest('hex');
}

const DIGEST_LINE = /schema digest: ([0-9a-f]{64})/;
const lit = (v) => JSON.stringify(v);

function header(sources, digest, comment = '//') {
  return [
    `${comment} GENERATED by scripts/generate-types.mjs from ${sources.join(' and ')}`,
    `${comment} Do not edit: change the schema and run \`npm run generate\` (the tests fail while this is stale).`,
    `${comment} schema digest: ${digest}`,
  ].join('\n');
}

async function typesDts(openrpc, notifications, head) {
  const { compile } = await import('json-schema-to-typescript');
  return compile(protocolSchema(openrpc, notifications), 'Methods', {
    bannerComment: `${head}\n// Contract: ${openrpc.info.title} protocol version ${openrpc.info.version}.\n\n/* eslint-disable */`,
    unreachableDefinitions: true,
    strictIndexSignatures: false,
    format: true,
  });
}

function protocolJs(openrpc, notifications, head) {
  const errors = openrpc.components.errors || {};
  return [
    head,
    '',
    '/** Every method of the contract: wire name, wrapper name, and whether the client sends it as a notification. */',
    'export const METHODS = Object.freeze([',
    ...openrpc.methods.map(
      (m) => `  Object.freeze({ name: ${lit(m.name)}, jsName: ${lit(jsNameOf(m))}, notification: ${!!m['x-notification']} }),`,
    ),
    ']);',
    '',
    '/** The notifications the sidecar sends (notifications.json x-methods); the client emits each as an event. */',
    `export const NOTIFICATIONS = Object.freeze([${Object.keys(notifications['x-methods'] || {}).map(lit).join(', ')}]);`,
    '',
    '/** The error codes of the contract (components.errors), by name, plus the JSON-RPC standard ones. */',
    'export const ERROR_CODES = Object.freeze({',
    '  ParseError: -32700,',
    '  InvalidRequest: -32600,',
    '  MethodNotFound: -32601,',
    ...Object.entries(errors).map(([name, e]) => `  ${/^[A-Za-z_$][\w$]*$/.test(name) ? name : lit(name)}: ${e.code},`),
    '  InternalError: -32603,',
    '});',
    '',
  ].join('\n');
}

const BLOCK_START = '// ---- BEGIN GENERATED';
const BLOCK_END = '// ---- END GENERATED';

function preloadBlock(openrpc, notifications, head) {
  const channels = openrpc.methods.filter((m) => !m['x-notification'] && !MAIN_PROCESS_ONLY.includes(m.name));
  return [
    `${BLOCK_START} (scripts/generate-types.mjs; \`npm run generate\` rewrites it) ----`,
    head,
    '/** The methods a renderer may invoke (IPC channel = method name), with their wrapper names. */',
    'const CHANNELS = [',
    ...channels.map((m) => `  [${lit(m.name)}, ${lit(jsNameOf(m))}],`),
    '];',
    '/** The notifications notifications.json lists. */',
    `const SCHEMA_NOTIFICATIONS = [${Object.keys(notifications['x-methods'] || {}).map(lit).join(', ')}];`,
    BLOCK_END,
  ].join('\n');
}

function spliceBlock(current, block, file) {
  const start = current.indexOf(BLOCK_START);
  const end = current.indexOf(BLOCK_END);
  if (start < 0 || end < start) throw new Error(`${file} has no ${BLOCK_START} ... ${BLOCK_END} block`);
  return current.slice(0, start) + block + current.slice(end + BLOCK_END.length);
}

// ----------------------------------------------------------------------------------------------- main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const rpcPath = join(opts.schemaDir, 'openrpc.json');
  const notPath = join(opts.schemaDir, 'notifications.json');
  const openrpc = JSON.parse(readFileSync(rpcPath, 'utf8'));
  const notifications = JSON.parse(readFileSync(notPath, 'utf8'));
  const digest = schemaDigest(openrpc, notifications);
  // Sources are named relative to the package, so the output does not depend on the checkout path.
  const rel = (p) => relative(PACKAGE_DIR, p).split('\\').join('/');
  const sources = [rel(rpcPath), rel(notPath)];
  const targets = {
    types: join(opts.outDir, 'generated', 'types.d.ts'),
    protocol: join(opts.outDir, 'generated', 'protocol.js'),
    preload: join(opts.outDir, 'preload.cjs'),
  };
  const read = (p) => (existsSync(p) ? readFileSync(p, 'utf8') : null);

  if (opts.mode === 'check-inputs') {
    let stale = 0;
    for (const target of Object.values(targets)) {
      const found = DIGEST_LINE.exec(read(target) || '');
      if (!found || found[1] !== digest) {
        stale++;
        process.stderr.write(`generate-types: ${rel(target)} was not generated from the current schema/; run \`npm run generate\` in clients/node\n`);
      }
    }
    if (stale) process.exit(1);
    process.stdout.write('generate-types: generated from the current schema/\n');
    return;
  }

  const head = header(sources, digest);
  const preloadNow = read(targets.preload);
  if (preloadNow === null) throw new Error(`${rel(targets.preload)} is missing (it is hand-written around a generated block)`);
  const files = {
    [targets.types]: await typesDts(openrpc, notifications, head),
    [targets.protocol]: protocolJs(openrpc, notifications, head),
    [targets.preload]: spliceBlock(preloadNow, preloadBlock(openrpc, notifications, head), rel(targets.preload)),
  };

  let stale = 0;
  for (const [target, text] of Object.entries(files)) {
    if (opts.mode === 'check') {
      const current = read(target);
      if (current !== text) {
        stale++;
        process.stderr.write(`generate-types: ${rel(target)} is ${current === null ? 'missing' : 'stale'}; run \`npm run generate\` in clients/node\n`);
      }
    } else if (read(target) !== text) {
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, text);
      process.stdout.write(`wrote ${rel(target)}\n`);
    }
  }
  if (opts.mode === 'check') {
    if (stale) process.exit(1);
    process.stdout.write('generate-types: up to date\n');
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    process.stderr.write(`generate-types: ${err.stack || err}\n`);
    process.exit(1);
  });
}
