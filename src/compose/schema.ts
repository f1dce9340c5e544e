/**
 * Validation against the Compose specification's own JSON Schema (vendored unchanged in
 * `schema/compose-spec/`, with its licence and version), as compose-go validates: after
 * interpolation, before anything is mapped. Ajv's findings are cut down to the most specific one
 * per place (the schema is full of `oneOf` alternatives, each of which fails in its own way) and
 * said in plain words: an unknown key at the key, with the key it most likely meant.
 */
import { readFile } from 'node:fs/promises';
import type { ErrorObject } from 'ajv';
import { chooseValidator, type ValidatorSpec } from '../schema-validator.ts';
import { closest, formatDocPath, parsePointer, show } from '../manifest/schema.ts';
import type { ComposePath } from './interpolate-tree.ts';

export const COMPOSE_SCHEMA_URL = new URL('../../schema/compose-spec/compose-spec.json', import.meta.url);

export interface ComposeSchemaFinding {
  path: ComposePath;
  /** Point at the key (an unknown key), not the value. */
  key: boolean;
  message: string;
}

export type ComposeValidator = (value: unknown) => ComposeSchemaFinding[];

/** A Go duration (`1m30s`, `500ms`, `1.5h`), the schema's `duration` format, as compose-go checks it. */
const GO_DURATION = /^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$|^0$/;

/** How Ajv compiles the schema, at build time (src/schema-validator.ts). */
export const COMPOSE_VALIDATOR: ValidatorSpec = {
  draft: '2020-12',
  options: { allErrors: true, verbose: true, strict: false },
  formats: { duration: GO_DURATION },
};

let compiled: Promise<ComposeValidator> | undefined;

/**
 * The compiled validator. Compiling takes about half a second and the result is a pure function of
 * a file that never changes while berth runs, so it is made once, on first use: a daemon that
 * reloads its manifests every few seconds, and one that has no Compose file at all, pay nothing more.
 */
export function composeValidator(signal?: AbortSignal): Promise<ComposeValidator> {
  compiled ??= compile(signal).catch((err) => {
    compiled = undefined;
    throw err;
  });
  return compiled;
}

async function compile(signal?: AbortSignal): Promise<ComposeValidator> {
  const schema = JSON.parse(await readFile(COMPOSE_SCHEMA_URL, { encoding: 'utf8', signal }));
  const validate = chooseValidator(schema, COMPOSE_VALIDATOR, await import('./compose-validator.generated.ts'));
  return (value) => (validate(value) ? [] : findings(validate.errors ?? []));
}

/** `services.web.depends_on[0]`, for messages. */
export function formatComposePath(path: ComposePath): string {
  return formatDocPath(path) || 'the file';
}

function findings(errors: ErrorObject[]): ComposeSchemaFinding[] {
  const out: ComposeSchemaFinding[] = [];
  const relevant = errors.filter((e) => !['if', 'oneOf', 'anyOf', 'allOf', 'not'].includes(e.keyword));
  // Unknown keys first: a typo is the likeliest mistake, and each is reported at its key.
  for (const e of relevant.filter((e) => e.keyword === 'additionalProperties')) {
    const path = parsePointer(e.instancePath);
    const key = String(e.params.additionalProperty);
    const allowed = Object.keys(((e.parentSchema ?? {}) as { properties?: object }).properties ?? {});
    const hint = closest(key, allowed);
    out.push({ path: [...path, key], key: true, message: `${formatComposePath(path)}: unknown key "${key}"${hint ? `; did you mean "${hint}"?` : ''}` });
  }
  // Then, per place, the findings of the most specific places only: a failure deeper down explains
  // the `oneOf` alternatives that failed above it.
  const rest = relevant.filter((e) => e.keyword !== 'additionalProperties');
  const places = new Set(rest.map((e) => e.instancePath));
  const explained = new Set(relevant.filter((e) => e.keyword === 'additionalProperties').map((e) => e.instancePath));
  const deepest = [...places].filter((p) => ![...places, ...explained].some((q) => q !== p && q.startsWith(`${p}/`)) && !explained.has(p));
  for (const pointer of deepest) {
    const here = rest.filter((e) => e.instancePath === pointer);
    const path = parsePointer(pointer);
    const where = formatComposePath(path);
    const types = [...new Set(here.filter((e) => e.keyword === 'type').flatMap((e) => ([] as string[]).concat(e.params.type)))];
    const other = here.find((e) => e.keyword !== 'type');
    if (other && (types.length === 0 || other.keyword === 'required')) out.push({ path, key: false, message: `${where}: ${describe(other)}` });
    else out.push({ path, key: false, message: `${where}: must be ${types.map(article).join(' or ')} (got ${show(here[0]!.data)})` });
  }
  return out;
}

function describe(e: ErrorObject): string {
  switch (e.keyword) {
    case 'required':
      return `missing required key "${e.params.missingProperty}"`;
    case 'enum':
      return `${show(e.data)} is not one of ${(e.params.allowedValues as unknown[]).map(String).join(', ')}`;
    case 'pattern':
      return `${show(e.data)} does not match ${e.params.pattern}`;
    case 'format':
      return `${show(e.data)} is not a ${e.params.format}${e.params.format === 'duration' ? ' (e.g. 10s, 1m30s, 500ms)' : ''}`;
    default:
      return `${e.message ?? 'is not valid'}${e.data !== undefined && typeof e.data !== 'object' ? ` (got ${show(e.data)})` : ''}`;
  }
}

function article(t: string): string {
  return t === 'object' ? 'a map' : t === 'array' ? 'a list' : t === 'null' ? 'empty' : t === 'integer' ? 'an integer' : `a ${t}`;
}
