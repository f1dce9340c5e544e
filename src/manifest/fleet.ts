/**
 * A fleet from one repository: which documents a device runs, when the config has a `[device]`
 * section (or `berth validate --device-labels`).
 *
 * - Layout and order. Files under `base/` (and any other file or directory that is not `groups/`
 *   or `devices/`) come first, then `groups/`, then `devices/<this device's name>/`; files under
 *   another device's directory are not read. Within a layer, files in byte order of their path and
 *   documents in file order. Order is decided by the layer, never by directory names sorting
 *   (`devices` sorts before `groups`, yet patches it).
 * - `selector` (Kubernetes label-selector syntax: `matchLabels`, `matchExpressions` with `In`,
 *   `NotIn`, `Exists`, `DoesNotExist`) on any document: it applies only if the device's labels
 *   match. The key is removed before the document is checked.
 * - Overlays: a later document with the same kind and name patches the earlier one as a JSON merge
 *   patch (RFC 7386, what `kubectl patch --type merge` does): maps merge key by key, `null`
 *   removes a key, anything else (lists included) replaces.
 * - `${device.name}` and `${device.labels.<key>}` in string values are substituted (`$${…}` is a
 *   literal `${…}`); an undefined variable is a problem at its place, never an empty string.
 *
 * A document that is neither patched nor patches keeps its own file, line and column in every
 * problem; a merged document is checked as written out after merging, under a name that lists its
 * files.
 */
import { relative, sep } from 'node:path';
import { isMap, isPair, isScalar, LineCounter, parseAllDocuments, stringify, visit } from 'yaml';
import type { ManifestSource } from './load.ts';
import type { ManifestProblem } from './problems.ts';
import { placeAt, placeOfOffset, type SourceDoc } from './source.ts';

export interface DeviceIdentity {
  name: string;
  labels: Record<string, string>;
}

export interface FleetResult {
  sources: ManifestSource[];
  problems: ManifestProblem[];
  /** `Kind/name` → the files that made it, in the order they were applied. */
  origins: Map<string, string[]>;
}

interface Piece {
  file: string;
  text: string;
  key?: string;
  value?: Record<string, unknown>;
}

/** The layer of a file (0 base, 1 groups, 2 this device), or undefined for another device's file. */
export function layerOf(relPath: string, deviceName: string): number | undefined {
  const parts = relPath.split(sep);
  if (parts[0] === 'groups' && parts.length > 1) return 1;
  if (parts[0] === 'devices' && parts.length > 1) return parts.length > 2 && parts[1] === deviceName ? 2 : undefined;
  return 0;
}

export function resolveFleet(root: string, sources: ManifestSource[], device: DeviceIdentity): FleetResult {
  const problems: ManifestProblem[] = [];
  const layered = sources
    .map((s, i) => ({ s, i, layer: layerOf(relative(root, s.file), device.name) }))
    .filter((x): x is { s: ManifestSource; i: number; layer: number } => x.layer !== undefined)
    .sort((a, b) => a.layer - b.layer || a.i - b.i);
  const pieces: Piece[] = [];
  for (const { s } of layered) {
    if (s.compose) {
      pieces.push(s); // a Compose file's documents are made by src/compose, not written by hand
      continue;
    }
    const lines = new LineCounter();
    const docs = parseAllDocuments(s.text, { lineCounter: lines, merge: true, prettyErrors: false, uniqueKeys: false });
    if (!Array.isArray(docs) || docs.some((d) => d.errors.length > 0)) {
      pieces.push(s); // the loader reports what is wrong with it
      continue;
    }
    for (const doc of docs) {
      const piece = selectDocument({ file: s.file, doc, lines }, s.text, device, problems);
      if (piece) pieces.push(piece);
    }
  }
  return { ...overlay(pieces), problems };
}

/** The document as a piece of its own (at its own line), or undefined when its selector does not match. */
function selectDocument(src: SourceDoc, text: string, device: DeviceIdentity, problems: ManifestProblem[]): Piece | undefined {
  const { doc, file, lines } = src;
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch {
    value = undefined; // the loader reports it
  }
  const start = text.lastIndexOf('\n', doc.range[0] - 1) + 1;
  const edits: Array<{ from: number; to: number; text: string }> = [];
  if (value && typeof value === 'object' && !Array.isArray(value) && 'selector' in value) {
    const verdict = matchSelector((value as { selector: unknown }).selector, device.labels);
    if (typeof verdict === 'object') {
      problems.push({ place: placeAt(src, ['selector', ...verdict.path]), message: verdict.message });
      return undefined;
    }
    if (!verdict) return undefined;
    const pair = isMap(doc.contents) ? doc.contents.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === 'selector') : undefined;
    const from = (pair?.key as { range?: number[] } | undefined)?.range?.[0];
    const to = (pair?.value as { range?: number[] } | undefined)?.range?.[2];
    if (from === undefined || to === undefined || (isMap(doc.contents) && doc.contents.flow)) {
      problems.push({ place: placeAt(src, ['selector'], { key: true }), message: 'selector: write it as a key of a block mapping (not inside {…})' });
      return undefined;
    }
    edits.push({ from, to, text: text.slice(from, to).replace(/[^\n]/g, ' ') }); // blanked, so every line keeps its number
  }
  visit(doc, {
    Scalar(key, node) {
      if (key === 'key' || typeof node.value !== 'string' || !node.range || !node.value.includes('${')) return;
      const [from, to] = node.range;
      const raw = text.slice(from, to);
      const substituted = raw.replace(/\$(\$?)\{([^}]*)\}/g, (whole, escaped: string, name: string, at: number) => {
        if (escaped) return whole.slice(1);
        const v = variable(name, device);
        if (v === undefined) {
          problems.push({
            place: placeOfOffset(file, lines, from + at),
            message: `\${${name}} is not defined for device ${device.name} (defined: device.name, ${
              Object.keys(device.labels)
                .map((k) => `device.labels.${k}`)
                .join(', ') || 'no labels'
            })`,
          });
          return whole;
        }
        return v;
      });
      if (substituted !== raw) edits.push({ from, to, text: substituted });
    },
  });
  let out = text.slice(start, doc.range[2]);
  for (const e of edits.sort((a, b) => b.from - a.from)) out = out.slice(0, e.from - start) + e.text + out.slice(e.to - start);
  const padded = '\n'.repeat(lines.linePos(start).line - 1) + out;
  const { kind, metadata } = (value ?? {}) as { kind?: unknown; metadata?: { name?: unknown } };
  const key = typeof kind === 'string' && typeof metadata?.name === 'string' ? `${kind}/${metadata.name}` : undefined;
  let final: Record<string, unknown> | undefined;
  if (key) {
    try {
      final = parseAllDocuments(out)[0]?.toJS({ maxAliasCount: 100 }) as Record<string, unknown>;
    } catch {
      final = undefined;
    }
  }
  return { file, text: padded, key: final ? key : undefined, value: final };
}

function variable(name: string, device: DeviceIdentity): string | undefined {
  if (name === 'device.name') return device.name;
  const m = /^device\.labels\.(.+)$/.exec(name);
  return m && Object.hasOwn(device.labels, m[1]!) ? device.labels[m[1]!] : undefined;
}

/** Documents with the same kind and name merged in order; the rest as they were. */
function overlay(pieces: Piece[]): { sources: ManifestSource[]; origins: Map<string, string[]> } {
  const origins = new Map<string, string[]>();
  const groups = new Map<string, Piece[]>();
  for (const p of pieces) {
    if (!p.key) continue;
    groups.set(p.key, [...(groups.get(p.key) ?? []), p]);
    origins.set(p.key, [...(origins.get(p.key) ?? []), p.file]);
  }
  const sources: ManifestSource[] = [];
  for (const p of pieces) {
    const group = p.key ? groups.get(p.key)! : [p];
    if (group.length === 1) sources.push({ file: p.file, text: p.text });
    else if (group[0] === p) {
      const merged = group.slice(1).reduce((acc, q) => mergePatch(acc, q.value) as Record<string, unknown>, group[0]!.value as unknown);
      sources.push({ file: `${p.key} merged from ${group.map((q) => q.file).join(' + ')}`, text: stringify(merged) });
    }
  }
  return { sources, origins };
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

type Verdict = boolean | { path: Array<string | number>; message: string };

/** Kubernetes label-selector semantics; an empty selector matches every device. */
export function matchSelector(selector: unknown, labels: Record<string, string>): Verdict {
  if (!isObject(selector)) return { path: [], message: 'selector must be a map with matchLabels and/or matchExpressions' };
  for (const k of Object.keys(selector)) {
    if (k !== 'matchLabels' && k !== 'matchExpressions') return { path: [k], message: `selector: unknown field ${k} (matchLabels, matchExpressions)` };
  }
  const { matchLabels = {}, matchExpressions = [] } = selector as { matchLabels?: unknown; matchExpressions?: unknown };
  if (!isObject(matchLabels)) return { path: ['matchLabels'], message: 'matchLabels must be a map of label → value' };
  if (!Array.isArray(matchExpressions)) return { path: ['matchExpressions'], message: 'matchExpressions must be a list' };
  let match = true;
  for (const [k, v] of Object.entries(matchLabels)) {
    if (typeof v !== 'string') return { path: ['matchLabels', k], message: `matchLabels.${k} must be a string` };
    if (labels[k] !== v) match = false;
  }
  for (const [i, e] of matchExpressions.entries()) {
    const at = (field?: string) => ['matchExpressions', i, ...(field ? [field] : [])];
    if (!isObject(e) || typeof e.key !== 'string') return { path: at('key'), message: 'a match expression needs a key' };
    const values = e.values ?? [];
    if (!Array.isArray(values) || values.some((v) => typeof v !== 'string')) return { path: at('values'), message: 'values must be a list of strings' };
    const has = Object.hasOwn(labels, e.key);
    switch (e.operator) {
      case 'In':
      case 'NotIn':
        if (values.length === 0) return { path: at('values'), message: `${e.operator} needs at least one value` };
        if ((e.operator === 'In') !== (has && values.includes(labels[e.key]))) match = false;
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (values.length > 0) return { path: at('values'), message: `${e.operator} takes no values` };
        if ((e.operator === 'Exists') !== has) match = false;
        break;
      default:
        return { path: at('operator'), message: `operator must be In, NotIn, Exists or DoesNotExist (got ${JSON.stringify(e.operator)})` };
    }
  }
  return match;
}
