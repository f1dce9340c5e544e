/**
 * Reading a Compose file as berth documents, in Compose's order: YAML, interpolation (from the
 * environment, then `.env` beside the file), the Compose specification's schema, then the mapping
 * (src/compose/convert.ts). Every problem is at its file:line:col; a file with any problem yields
 * no documents, so the set it belongs to is refused whole, like any other.
 *
 * The documents are YAML documents whose nodes carry the Compose file's ranges: the loader runs
 * its usual checks on them and reports at the Compose file's lines.
 */
import { open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { isMap, isScalar, LineCounter, parseAllDocuments, visit, type Document } from 'yaml';
import type { ManifestProblem } from '../manifest/problems.ts';
import { placeAt, placeOfOffset, type SourceDoc } from '../manifest/source.ts';
import { convertCompose, type ComposeFinding, type Draft } from './convert.ts';
import { interpolateTree } from './interpolate-tree.ts';
import { documentWithOrigins, NodeFinder } from './origins.ts';
import { composeValidator } from './schema.ts';

/** The file names Compose itself looks for; berth reads these as Compose files. */
export const COMPOSE_FILE_NAMES = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'];

/** What Compose merges over them (`docker-compose.override.yml`): berth does not merge, and says so. */
const OVERRIDE_FILE = /^(docker-)?compose\.override\.ya?ml$/;

export function isComposeFile(path: string): boolean {
  const name = path.slice(path.lastIndexOf('/') + 1);
  return COMPOSE_FILE_NAMES.includes(name) || OVERRIDE_FILE.test(name);
}

export interface ComposeDocuments {
  /** Lines of the Compose file (the documents' ranges are offsets in it). */
  lines: LineCounter;
  /** The berth documents; empty when there is any problem. */
  documents: Document.Parsed[];
  /** The same documents as plain values, with what `berth convert` says above each. */
  drafts: Draft[];
  problems: ManifestProblem[];
  /** What works differently in berth, or was left out: said by `berth convert`, never a failure. */
  notes: ManifestProblem[];
}

export interface ReadComposeOptions {
  /** The variables interpolation reads before `.env` (default: berth's own environment). */
  env?: Record<string, string | undefined>;
  signal?: AbortSignal;
}

/** `.env` and `env_file`s are small; a bigger one is a mistake, not configuration. */
const MAX_ENV_FILE_BYTES = 1024 * 1024;

export async function readCompose(file: string, text: string, opts: ReadComposeOptions = {}): Promise<ComposeDocuments> {
  const lines = new LineCounter();
  const out: ComposeDocuments = { lines, documents: [], drafts: [], problems: [], notes: [] };
  const problem = (place: ManifestProblem['place'], message: string) => out.problems.push({ place, message });
  if (OVERRIDE_FILE.test(file.slice(file.lastIndexOf('/') + 1))) {
    problem({ file }, 'a Compose override file: berth reads one Compose file per directory and does not merge overrides yet; merge it into the Compose file');
    return out;
  }
  const docs = parseAllDocuments(text, { lineCounter: lines, merge: true, prettyErrors: false, uniqueKeys: false });
  const all = Array.isArray(docs) ? docs : [];
  if (all.length !== 1) {
    problem(placeOfOffset(file, lines, all[1]?.range[0] ?? 0), `a Compose file is one YAML document (found ${all.length})`);
    return out;
  }
  const doc = all[0]!;
  const src: SourceDoc = { file, doc, lines };
  for (const e of [...doc.errors, ...doc.warnings]) problem(placeOfOffset(file, lines, e.pos[0]), `YAML: ${e.message.split('\n')[0]}`);
  for (const d of repeatedKeys(doc))
    problem(placeOfOffset(file, lines, d.offset), `YAML: the key ${d.key} is repeated (first at line ${lines.linePos(d.first).line})`);
  if (out.problems.length > 0) return out;

  const dir = dirname(resolve(file));
  const dotenv = await readSmall(resolve(dir, '.env'), opts.signal);
  if (dotenv instanceof Error && (dotenv as NodeJS.ErrnoException).code !== 'ENOENT') problem({ file: resolve(dir, '.env') }, `cannot read: ${dotenv.message}`);
  const fromFile = typeof dotenv === 'string' ? parseDotenv(dotenv) : {};
  const env = opts.env ?? process.env;
  // The environment wins over .env, as in Compose.
  const lookup = (name: string) => env[name] ?? fromFile[name];

  const interpolated = interpolateTree(doc, lookup);
  for (const e of interpolated.errors) problem(placeAt(src, e.path), e.message);
  for (const u of interpolated.unset) out.notes.push({ place: placeAt(src, u.path), message: `variable ${u.name} is not set: an empty string is used` });
  if (out.problems.length > 0) return out;

  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    problem(placeAt(src, []), `YAML: ${(err as Error).message.split('\n')[0]}`);
    return out;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    problem(placeAt(src, []), 'a Compose file is a map with services:');
    return out;
  }
  const validate = await composeValidator(opts.signal);
  for (const f of validate(value)) problem(placeAt(src, f.path, { key: f.key }), f.message);
  if (out.problems.length > 0) return out;

  const compose = value as Record<string, any>;
  const envFiles = new Map<string, string | Error>();
  for (const svc of Object.values((compose.services ?? {}) as Record<string, any>)) {
    for (const f of [].concat(svc.env_file ?? []) as Array<string | { path: string }>) {
      const path = resolve(dir, typeof f === 'string' ? f : f.path);
      if (!envFiles.has(path)) envFiles.set(path, await readSmall(path, opts.signal));
    }
  }

  const converted = convertCompose({ dir, compose, env: lookup, envFiles });
  const at = (f: ComposeFinding) => placeAt(src, f.at, { key: f.key });
  out.notes.push(...converted.notes.map((n) => ({ place: at(n), message: n.message })));
  out.problems.push(...converted.problems.map((p) => ({ place: at(p), message: p.message })));
  if (out.problems.length > 0) return out;
  const finder = new NodeFinder(doc.contents);
  out.drafts = converted.drafts;
  out.documents = converted.drafts.map((d) => documentWithOrigins(d.value, d.origins, finder, d.at));
  return out;
}

/** A small file's text, or the error that kept it from being read. */
async function readSmall(path: string, signal?: AbortSignal): Promise<string | Error> {
  signal?.throwIfAborted();
  try {
    const fh = await open(path, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile()) return new Error('not a regular file');
      if (st.size > MAX_ENV_FILE_BYTES) return new Error(`bigger than ${MAX_ENV_FILE_BYTES} bytes`);
      return await fh.readFile({ encoding: 'utf8', signal });
    } finally {
      await fh.close();
    }
  } catch (err) {
    signal?.throwIfAborted();
    return err as Error;
  }
}

/** Keys repeated in one map, in one pass (yaml's own check compares every pair). */
function repeatedKeys(doc: Document.Parsed): Array<{ key: string; offset: number; first: number }> {
  const found: Array<{ key: string; offset: number; first: number }> = [];
  visit(doc, {
    Map(_, map) {
      if (!isMap(map)) return;
      const firstAt = new Map<unknown, number>();
      for (const pair of map.items) {
        if (!isScalar(pair.key) || !pair.key.range) continue;
        const first = firstAt.get(pair.key.value);
        if (first === undefined) firstAt.set(pair.key.value, pair.key.range[0]);
        else found.push({ key: JSON.stringify(String(pair.key.value)), offset: pair.key.range[0], first });
      }
    },
  });
  return found;
}
