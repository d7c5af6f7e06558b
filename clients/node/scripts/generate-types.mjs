#!/usr/bin/env node
// Generates the client's typed surface from the sidecar's machine-readable contract:
//
//   ../../schema/openrpc.json        -> methods, params, results, row shapes, error codes
//   ../../schema/notifications.json  -> agent:update / all:complete payloads
//
// and writes two committed files:
//
//   src/types.d.ts   an interface (or type alias) per components schema, `<Method>Params` / `<Method>Result`
//                    per method, notification payload types, the `Methods` / `ClientNotifications` /
//                    `Notifications` maps and the `SidecarMethods` interface of typed wrappers
//   src/methods.js   the wrapper methods themselves (a base class SidecarClient extends), the method table
//                    and the error codes, with JSDoc pointing into types.d.ts
//
// Usage:
//   node scripts/generate-types.mjs            write the files
//   node scripts/generate-types.mjs --check    exit 1 (and say which) when a committed file is stale
//   options: --schema-dir DIR (default ../../schema), --out-dir DIR (default ./src), for tests
//
// The schema dialect is the one schema/README.md describes; `x-` keywords the generator understands:
// x-notification (client notifications), x-paramsRules (the "one of a / b, not both" shape becomes a
// union). Constraints TypeScript cannot express (lengths, ranges, patterns) become JSDoc lines.

import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv) {
  const opts = {
    check: false,
    schemaDir: resolve(PACKAGE_DIR, '..', '..', 'schema'),
    outDir: resolve(PACKAGE_DIR, 'src'),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--check') opts.check = true;
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
  s
    .replace(/^\$\//, '')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');

/** `llmConfigs:create` -> `llmConfigsCreate`; `$/cancelRequest` -> `sendCancelRequest` (client notification). */
export function jsNameOf(method) {
  const p = pascal(method.name);
  if (method['x-notification']) return `send${p}`;
  return p[0].toLowerCase() + p.slice(1);
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const key = (k) => (IDENT.test(k) ? k : JSON.stringify(k));
const lit = (v) => JSON.stringify(v);

// ------------------------------------------------------------------------------------ schema -> TS text

class Emitter {
  /** @param {(ref: string) => string} refName */
  constructor(refName) {
    this.refName = refName;
  }

  /** The TS type of a schema, as an expression; `indent` is the current indentation. */
  type(schema, indent = '') {
    if (schema === true || schema === undefined) return 'unknown';
    if (schema === false) return 'never';
    if (schema.$ref) return this.refName(schema.$ref);
    if ('const' in schema) return lit(schema.const);
    if (schema.enum) return schema.enum.map(lit).join(' | ');
    if (schema.anyOf || schema.oneOf) {
      const parts = (schema.anyOf || schema.oneOf).map((s) => this.type(s, indent));
      return unionOf(parts);
    }
    const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
    if (types.length === 0) {
      if (schema.properties || schema.additionalProperties !== undefined) return this.object(schema, indent);
      return 'unknown';
    }
    return unionOf(types.map((t) => this.single(t, schema, indent)));
  }

  single(t, schema, indent) {
    switch (t) {
      case 'null':
        return 'null';
      case 'string':
        return 'string';
      case 'integer':
      case 'number':
        return 'number';
      case 'boolean':
        return 'boolean';
      case 'array': {
        const item = this.type(schema.items, indent);
        return /^[A-Za-z0-9_]+$/.test(item) ? `${item}[]` : `Array<${item}>`;
      }
      case 'object':
        return this.object(schema, indent);
      default:
        return 'unknown';
    }
  }

  object(schema, indent, overrides = {}) {
    const props = { ...(schema.properties || {}), ...(overrides.properties || {}) };
    const required = new Set([...(schema.required || []), ...(overrides.required || [])]);
    const never = new Set(overrides.never || []);
    const names = Object.keys(props).filter((n) => !never.has(n));
    const ap = schema.additionalProperties;
    if (names.length === 0 && never.size === 0) {
      if (ap === false) return schema.maxProperties === 0 ? 'Record<string, never>' : '{}';
      const value = ap === undefined || ap === true ? 'unknown' : this.type(ap, indent);
      return `{ [key: string]: ${value} }`;
    }
    const inner = indent + '  ';
    const lines = ['{'];
    for (const name of names) {
      const doc = docLines(props[name], inner);
      if (doc) lines.push(doc);
      const opt = required.has(name) ? '' : '?';
      lines.push(`${inner}${key(name)}${opt}: ${this.type(props[name], inner)};`);
    }
    for (const name of never) lines.push(`${inner}${key(name)}?: never;`);
    if (ap !== undefined && ap !== false && ap !== true) {
      lines.push(`${inner}[key: string]: ${this.type(ap, inner)};`);
    }
    lines.push(`${indent}}`);
    return lines.join('\n');
  }
}

function unionOf(parts) {
  const seen = [];
  for (const p of parts) if (!seen.includes(p)) seen.push(p);
  return seen.length ? seen.join(' | ') : 'never';
}

/** JSDoc for a schema: its description plus the constraints TS cannot express. */
function docLines(schema, indent, extra = []) {
  if (!schema || typeof schema !== 'object') return '';
  const text = [];
  if (schema.description) text.push(...schema.description.split('\n'));
  const c = [];
  if (schema.minLength !== undefined) c.push(`minLength ${schema.minLength}`);
  if (schema.maxLength !== undefined) c.push(`maxLength ${schema.maxLength}`);
  if (schema.minimum !== undefined) c.push(`minimum ${schema.minimum}`);
  if (schema.maximum !== undefined) c.push(`maximum ${schema.maximum}`);
  if (schema.maxProperties !== undefined && schema.maxProperties > 0) c.push(`maxProperties ${schema.maxProperties}`);
  if (schema['x-maxUtf8Bytes'] !== undefined) c.push(`maxUtf8Bytes ${schema['x-maxUtf8Bytes']}`);
  if (schema.pattern) c.push(`pattern ${schema.pattern.replace(/\*\//g, '*\\/')}`);
  if (schema.type === 'integer' || (Array.isArray(schema.type) && schema.type.includes('integer'))) c.push('integer');
  if (schema.writeOnly) c.push('write-only');
  if (c.length) text.push(`Constraints: ${c.join(', ')}.`);
  text.push(...extra);
  if (!text.length) return '';
  const safe = text.map((l) => l.replace(/\*\//g, '*\\/'));
  if (safe.length === 1) return `${indent}/** ${safe[0]} */`;
  return [`${indent}/**`, ...safe.map((l) => `${indent} * ${l}`.trimEnd()), `${indent} */`].join('\n');
}

/**
 * A schema whose `allOf` is a list of `if {properties: {K: {const: v}}} then … [else …]` branches on one
 * property K with an enum: the variants, one per enum value, each with the branch constraints merged in.
 * Returns null when the schema is not of that shape.
 */
function discriminatedVariants(schema) {
  if (!Array.isArray(schema.allOf) || !schema.properties) return null;
  let disc = null;
  for (const branch of schema.allOf) {
    const ifProps = branch.if && branch.if.properties;
    if (!ifProps) return null;
    const keys = Object.keys(ifProps);
    if (keys.length !== 1 || !('const' in ifProps[keys[0]])) return null;
    if (disc && disc !== keys[0]) return null;
    disc = keys[0];
  }
  const discSchema = schema.properties[disc];
  if (!discSchema || !Array.isArray(discSchema.enum)) return null;
  return {
    disc,
    variants: discSchema.enum.map((value) => {
      const properties = {};
      const required = [];
      for (const branch of schema.allOf) {
        const applies = branch.if.properties[disc].const === value;
        const part = applies ? branch.then : branch.else;
        if (!part) continue;
        for (const [k, s] of Object.entries(part.properties || {})) {
          // A branch narrows the base property: keep the base's documentation, take the branch's type.
          const base = schema.properties[k] || {};
          properties[k] = { ...base, ...s, description: s.description || base.description };
          if (s.type !== undefined && !s.$ref) delete properties[k].$ref;
          if (s.$ref) {
            delete properties[k].type;
            delete properties[k].anyOf;
          }
          if (s.type !== undefined && properties[k].anyOf) delete properties[k].anyOf;
        }
        required.push(...(part.required || []));
      }
      properties[disc] = { const: value };
      return { value, properties, required };
    }),
  };
}

/** `processUserMessage`'s rules: "anyOf required [a] / required [b]" plus "not required [a, b]" -> variants. */
function paramsRuleVariants(rules) {
  if (!Array.isArray(rules)) return null;
  let alternatives = null;
  let exclusive = null;
  for (const r of rules) {
    if (Array.isArray(r.anyOf) && r.anyOf.every((s) => Array.isArray(s.required) && Object.keys(s).length === 1)) {
      alternatives = r.anyOf.map((s) => s.required);
    } else if (r.not && Array.isArray(r.not.required) && Object.keys(r.not).length === 1) {
      exclusive = r.not.required;
    } else {
      return null; // a rule shape this generator does not know: fall back to the plain params object
    }
  }
  if (!alternatives) return null;
  return alternatives.map((req) => ({
    required: req,
    never: exclusive ? exclusive.filter((k) => !req.includes(k)) : [],
  }));
}

// ---------------------------------------------------------------------------------------------- build

function generate(openrpc, notifications, sources) {
  const schemas = openrpc.components.schemas;
  const componentName = (ref) => {
    const m = /^#\/components\/schemas\/(.+)$/.exec(ref);
    if (!m || !schemas[m[1]]) throw new Error(`unresolvable $ref ${ref}`);
    return m[1];
  };
  const rpc = new Emitter(componentName);

  // Notification $defs: reuse a component of the same name when it is the same schema, else prefix "Event".
  const defs = notifications.$defs || {};
  const strip = (s) => JSON.stringify(s, (k, v) => (k === 'description' ? undefined : v));
  const defName = {};
  for (const [name, s] of Object.entries(defs)) {
    defName[name] = schemas[name] === undefined ? name : strip(schemas[name]) === strip(s) ? name : `Event${name}`;
  }
  const events = new Emitter((ref) => {
    const m = /^#\/\$defs\/(.+)$/.exec(ref);
    if (!m || !defs[m[1]]) throw new Error(`unresolvable $ref ${ref} in notifications.json`);
    return defName[m[1]];
  });

  const out = [];
  const w = (s = '') => out.push(s);
  w('// GENERATED by scripts/generate-types.mjs from');
  for (const s of sources) w(`//   ${s}`);
  w('// Do not edit: change the schema and run `npm run generate` (the tests fail while this file is stale).');
  w(`// Contract: ${openrpc.info.title} protocol version ${openrpc.info.version}.`);
  w();
  w('/* eslint-disable */');
  w();

  // Declarations for schemas (components or notification defs).
  const declare = (name, schema, emitter) => {
    const variants = discriminatedVariants(schema);
    if (variants) {
      const names = [];
      for (const v of variants.variants) {
        const vname = `${name}${pascal(String(v.value))}`;
        names.push(vname);
        w(docLines({ description: `${name} with ${variants.disc} "${v.value}".` }, ''));
        w(`export interface ${vname} ${emitter.object(schema, '', v)}`);
        w();
      }
      const d = docLines(schema, '', [`Discriminated by \`${variants.disc}\`.`]);
      if (d) w(d);
      w(`export type ${name} = ${names.join(' | ')};`);
      w();
      return;
    }
    const d = docLines(schema, '');
    if (d) w(d);
    const isObject = schema.type === 'object' && (schema.properties || schema.additionalProperties === false);
    if (isObject && !(schema.maxProperties === 0)) w(`export interface ${name} ${emitter.object(schema, '')}`);
    else w(`export type ${name} = ${emitter.type(schema, '')};`);
    w();
  };

  w('// ------------------------------------------------------------------ components.schemas (openrpc.json)');
  w();
  for (const [name, schema] of Object.entries(schemas)) declare(name, schema, rpc);

  w('// ------------------------------------------------------------------ notification payloads (notifications.json)');
  w();
  for (const [name, schema] of Object.entries(defs)) {
    if (defName[name] === name && schemas[name] !== undefined) continue; // same as the component
    declare(defName[name], schema, events);
  }

  // Errors.
  const errors = openrpc.components.errors || {};
  w('// ------------------------------------------------------------------ errors (components.errors)');
  w();
  w('/** `error.data.kind` of the application errors; clients switch on it. */');
  const kinds = [...new Set(Object.values(errors).map((e) => e.data && e.data.kind).filter(Boolean))];
  w(`export type ErrorKind = ${kinds.map(lit).join(' | ')};`);
  w();
  w('/** Every error code the contract names, plus the JSON-RPC standard ones. */');
  const codes = [...new Set([-32700, -32600, -32601, -32602, -32603, ...Object.values(errors).map((e) => e.code)])];
  w(`export type ErrorCode = ${codes.join(' | ')};`);
  w();
  w('/** `error.data` of a -32602 response: the wire name of the field and a readable reason. */');
  w('export interface InvalidParamsData {\n  field: string;\n  reason: string;\n}');
  w();

  // Methods.
  w('// ------------------------------------------------------------------ methods (openrpc.json methods)');
  w();
  const requests = [];
  const clientNotifications = [];
  for (const m of openrpc.methods) {
    const base = pascal(m.name);
    const paramsName = schemas[`${base}Params`] === undefined ? `${base}Params` : `${base}MethodParams`;
    const resultName = `${base}Result`;
    const params = m.params || [];
    const props = {};
    const required = [];
    for (const p of params) {
      props[p.name] = p.description ? { ...p.schema, description: p.description } : p.schema;
      if (p.required) required.push(p.name);
    }
    const paramsSchema = { type: 'object', additionalProperties: false, properties: props, required };
    const head = [`Params of \`${m.name}\`${m.summary ? `: ${m.summary}` : ''}`];
    w(docLines({ description: head.join('') }, ''));
    const ruleVariants = paramsRuleVariants(m['x-paramsRules']);
    if (params.length === 0) {
      w(`export type ${paramsName} = Record<string, never>;`);
    } else if (ruleVariants) {
      w(`export type ${paramsName} =`);
      ruleVariants.forEach((v, i) => {
        const body = rpc.object(paramsSchema, '  ', v);
        w(`  | ${body}${i === ruleVariants.length - 1 ? ';' : ''}`);
      });
    } else {
      w(`export interface ${paramsName} ${rpc.object(paramsSchema, '')}`);
    }
    w();
    const entry = { m, paramsName, resultName, optional: required.length === 0 };
    if (m['x-notification']) {
      clientNotifications.push(entry);
      continue;
    }
    const resultType = rpc.type(m.result.schema, '');
    if (schemas[resultName] !== undefined) {
      // `initialize` -> InitializeResult is already the component: use it as is, or pick another name.
      if (resultType !== resultName) entry.resultName = `${base}MethodResult`;
    }
    if (entry.resultName !== resultType) {
      w(docLines({ description: `Result of \`${m.name}\`.` }, ''));
      w(`export type ${entry.resultName} = ${resultType};`);
      w();
    }
    requests.push(entry);
  }

  w('/** Every request method: wire name -> params and result. */');
  w('export interface Methods {');
  for (const e of requests) w(`  ${lit(e.m.name)}: { params: ${e.paramsName}; result: ${e.resultName} };`);
  w('}');
  w();
  w('export type MethodName = keyof Methods;');
  w();
  w('/** Notifications the client sends (they never get a response). */');
  w('export interface ClientNotifications {');
  for (const e of clientNotifications) w(`  ${lit(e.m.name)}: ${e.paramsName};`);
  w('}');
  w();
  w('/** Notifications the sidecar sends: method -> params. */');
  w('export interface Notifications {');
  for (const [method, s] of Object.entries(notifications['x-methods'] || {})) {
    w(`  ${lit(method)}: ${events.type(s, '  ')};`);
  }
  w('}');
  w();
  w('/** Per-call options of every wrapper. */');
  w('export interface CallOptions {');
  w('  /** Aborting sends `$/cancelRequest` for the call and rejects it with the signal\'s reason. */');
  w('  signal?: AbortSignal;');
  w('}');
  w();
  w('/** The typed wrappers: one method per RPC method (camelCase of the wire name). */');
  w('export interface SidecarMethods {');
  const methodDoc = (e, extra) => {
    const lines = [];
    if (e.m.summary) lines.push(e.m.summary);
    if (e.m.description) lines.push(...e.m.description.split('\n'));
    lines.push(`Wire method \`${e.m.name}\`.`);
    const errs = (e.m.errors || [])
      .map((r) => /#\/components\/errors\/(.+)$/.exec(r.$ref || ''))
      .filter(Boolean)
      .map((x) => errors[x[1]])
      .filter(Boolean)
      .map((er) => `${er.code}${er.data && er.data.kind ? ` ${er.data.kind}` : ''}`);
    if (errs.length) lines.push(`Errors: ${errs.join(', ')}.`);
    lines.push(...extra);
    return lines;
  };
  for (const e of requests) {
    w(docLines({ description: methodDoc(e, []).join('\n') }, '  '));
    const q = e.optional ? '?' : '';
    w(`  ${jsNameOf(e.m)}(params${q}: ${e.paramsName}, options?: CallOptions): Promise<${e.resultName}>;`);
  }
  for (const e of clientNotifications) {
    w(docLines({ description: methodDoc(e, ['A notification: resolves once written, never gets a response.']).join('\n') }, '  '));
    const q = e.optional ? '?' : '';
    w(`  ${jsNameOf(e.m)}(params${q}: ${e.paramsName}): Promise<void>;`);
  }
  w('}');
  const typesDts = out.join('\n') + '\n';

  // methods.js
  const js = [];
  const j = (s = '') => js.push(s);
  j('// GENERATED by scripts/generate-types.mjs from');
  for (const s of sources) j(`//   ${s}`);
  j('// Do not edit: change the schema and run `npm run generate` (the tests fail while this file is stale).');
  j();
  j("import { EventEmitter } from 'node:events';");
  j();
  j('/** Every method of the contract: wire name, wrapper name, and whether the client sends it as a notification. */');
  j('export const METHODS = Object.freeze([');
  for (const m of openrpc.methods) {
    j(`  Object.freeze({ name: ${lit(m.name)}, jsName: ${lit(jsNameOf(m))}, notification: ${!!m['x-notification']} }),`);
  }
  j(']);');
  j();
  j('/** The notifications the sidecar sends (notifications.json x-methods); the client emits each as an event. */');
  j(`export const NOTIFICATIONS = Object.freeze([${Object.keys(notifications['x-methods'] || {}).map(lit).join(', ')}]);`);
  j();
  j('/** The error codes of the contract (components.errors), by name. */');
  j('export const ERROR_CODES = Object.freeze({');
  j('  ParseError: -32700,');
  j('  InvalidRequest: -32600,');
  j('  MethodNotFound: -32601,');
  for (const [name, e] of Object.entries(errors)) j(`  ${key(name)}: ${e.code},`);
  j('  InternalError: -32603,');
  j('});');
  j();
  j('/**');
  j(' * The typed wrappers. Subclasses provide `call(method, params, options)` and `notify(method, params)`.');
  j(' * @abstract');
  j(' */');
  j('export class SidecarMethods extends EventEmitter {');
  j('  /* c8 ignore start */');
  j('  /**');
  j('   * @param {string} _method @param {object} [_params] @param {import(\'./types.js\').CallOptions} [_options]');
  j('   * @returns {Promise<any>}');
  j('   */');
  j('  call(_method, _params, _options) {');
  j("    return Promise.reject(new Error('SidecarMethods.call is abstract'));");
  j('  }');
  j();
  j('  /** @param {string} _method @param {object} [_params] @returns {Promise<void>} */');
  j('  notify(_method, _params) {');
  j("    return Promise.reject(new Error('SidecarMethods.notify is abstract'));");
  j('  }');
  j('  /* c8 ignore stop */');
  for (const e of requests) {
    j();
    const lines = methodDoc(e, []);
    j('  /**');
    for (const l of lines) j(`   * ${l.replace(/\*\//g, '*\\/')}`.trimEnd());
    j(`   * @param {import('./types.js').${e.paramsName}} ${e.optional ? '[params]' : 'params'}`);
    j("   * @param {import('./types.js').CallOptions} [options]");
    j(`   * @returns {Promise<import('./types.js').${e.resultName}>}`);
    j('   */');
    j(`  ${jsNameOf(e.m)}(params, options) {`);
    j(`    return this.call(${lit(e.m.name)}, params, options);`);
    j('  }');
  }
  for (const e of clientNotifications) {
    j();
    const lines = methodDoc(e, ['A notification: resolves once written, never gets a response.']);
    j('  /**');
    for (const l of lines) j(`   * ${l.replace(/\*\//g, '*\\/')}`.trimEnd());
    j(`   * @param {import('./types.js').${e.paramsName}} ${e.optional ? '[params]' : 'params'}`);
    j('   * @returns {Promise<void>}');
    j('   */');
    j(`  ${jsNameOf(e.m)}(params) {`);
    j(`    return this.notify(${lit(e.m.name)}, params);`);
    j('  }');
  }
  j('}');
  const methodsJs = js.join('\n') + '\n';

  return { 'types.d.ts': typesDts, 'methods.js': methodsJs };
}

// ----------------------------------------------------------------------------------------------- main

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const rpcPath = join(opts.schemaDir, 'openrpc.json');
  const notPath = join(opts.schemaDir, 'notifications.json');
  const openrpc = JSON.parse(readFileSync(rpcPath, 'utf8'));
  const notifications = JSON.parse(readFileSync(notPath, 'utf8'));
  // Sources are named relative to the package so the output does not depend on the checkout path.
  const rel = (p) => relative(PACKAGE_DIR, p).split('\\').join('/');
  const files = generate(openrpc, notifications, [rel(rpcPath), rel(notPath)]);

  let stale = 0;
  for (const [name, text] of Object.entries(files)) {
    const target = join(opts.outDir, name);
    if (opts.check) {
      const current = existsSync(target) ? readFileSync(target, 'utf8') : null;
      if (current !== text) {
        stale++;
        process.stderr.write(
          `generate-types: ${rel(target)} is ${current === null ? 'missing' : 'stale'}; run \`npm run generate\` in clients/node\n`,
        );
      }
    } else {
      writeFileSync(target, text);
      process.stdout.write(`wrote ${rel(target)}\n`);
    }
  }
  if (opts.check) {
    if (stale) process.exit(1);
    process.stdout.write('generate-types: up to date\n');
  }
}

main();
