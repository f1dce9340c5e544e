/**
 * Validation against the published JSON Schema (`schema/berth.schema.json`, the same file editors
 * use through yaml-language-server), with ajv's findings turned into plain-words messages located
 * at a path in the document: an unknown field at its key, a bad value at the value, a missing field
 * at the map that lacks it. The validator is Ajv's code generated at build time
 * (`manifest-validator.generated.ts`, see src/schema-validator.ts): Ajv itself is not loaded.
 */
import { readFile } from 'node:fs/promises';
import type { ErrorObject } from 'ajv';
import { chooseValidator, type SchemaValidate, type ValidatorSpec } from '../schema-validator.ts';
import type { DocPath } from './source.ts';

/** Where the published schema lives, relative to this file (the repository's `schema/`). */
export const SCHEMA_URL = new URL('../../schema/berth.schema.json', import.meta.url);

/** A schema finding: what is wrong, and where in the document (`key`: point at the key, not the value). */
export interface SchemaFinding {
  path: DocPath;
  key: boolean;
  message: string;
}

export type DocumentValidator = (value: unknown) => SchemaFinding[];

/** How Ajv compiles the schema (every error, with the schema beside it for the messages). */
export const MANIFEST_VALIDATOR: ValidatorSpec = { draft: '07', options: { allErrors: true, verbose: true, strict: false } };

/** Reads the schema and loads its validator. Load once and pass the validator around (it is pure). */
export async function createDocumentValidator(signal?: AbortSignal): Promise<DocumentValidator> {
  const schema = JSON.parse(await readFile(SCHEMA_URL, { encoding: 'utf8', signal }));
  const validate = chooseValidator(schema, MANIFEST_VALIDATOR, await import('./manifest-validator.generated.ts'));
  return (value) => findings(validate, value);
}

function findings(validate: SchemaValidate, value: unknown): SchemaFinding[] {
  if (validate(value)) return [];
  const errors = (validate.errors ?? []).filter((e) => e.keyword !== 'if');
  // An `anyOf` (a size: integer or "64Mi") reports each branch's failure too: keep only its summary.
  const anyOfAt = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  const out: SchemaFinding[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== 'anyOf' && anyOfAt.has(e.instancePath)) continue;
    const f = describe(e);
    const id = `${f.path.join('/')}|${f.key}|${f.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(f);
  }
  return out;
}

export function parsePointer(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** `spec.mounts[0].name`, for messages. */
export function formatDocPath(path: DocPath): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${p}` : p;
  return s;
}

export function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a map' : String(v);
}

function describe(e: ErrorObject): SchemaFinding {
  const path = parsePointer(e.instancePath);
  const where = formatDocPath(path) || 'document';
  const parent = (e.parentSchema ?? {}) as Record<string, any>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const field = String(e.params.additionalProperty);
      const allowed = Object.keys(parent.properties ?? {});
      const hint = closest(field, allowed);
      const tail = hint ? `; did you mean "${hint}"?` : allowed.length ? ` (allowed: ${allowed.join(', ')})` : '';
      return { path: [...path, field], key: true, message: `${where}: unknown field "${field}"${tail}` };
    }
    case 'required': {
      const field = String(e.params.missingProperty);
      return { path, key: false, message: `${where}: missing required field "${field}"` };
    }
    case 'enum': {
      const allowed = (e.params.allowedValues as unknown[]).map(String);
      const hint = closest(String(e.data), allowed);
      return {
        path,
        key: false,
        message: `${where}: ${show(e.data)} is not one of ${allowed.join(', ')}${hint ? `; did you mean "${hint}"?` : ''}`,
      };
    }
    case 'const':
      return { path, key: false, message: `${where}: must be ${show(e.params.allowedValue)} (got ${show(e.data)})` };
    case 'type': {
      const types = ([] as string[]).concat(e.params.type).map((t) => (t === 'object' ? 'a map' : t === 'array' ? 'a list' : `a ${t}`));
      return { path, key: false, message: `${where}: must be ${types.join(' or ')} (got ${show(e.data)})` };
    }
    case 'anyOf':
      return { path, key: false, message: `${where}: ${show(e.data)} is not ${parent.description ? lowerFirst(parent.description) : 'valid'}` };
    case 'pattern':
      return {
        path,
        key: false,
        message: `${where}: ${show(e.data)} is not valid${parent.description ? ` (${lowerFirst(parent.description)})` : ` (must match ${e.params.pattern})`}`,
      };
    case 'propertyNames':
      return { path: [...path, String(e.params.propertyName)], key: true, message: `${where}: "${e.params.propertyName}" is not a valid key here` };
    default:
      return { path, key: false, message: `${where}: ${e.message ?? 'is not valid'}` };
  }
}

function lowerFirst(s: string): string {
  return (s.charAt(0).toLowerCase() + s.slice(1)).replace(/\.$/, '');
}

/** The allowed word the user most likely meant (case slip or a typo of up to 2 edits). */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const c of candidates) {
    const d = c.toLowerCase() === word.toLowerCase() ? 0 : editDistance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}
