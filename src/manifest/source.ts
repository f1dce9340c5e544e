/**
 * Positions in the user's YAML: turns a path into a document (`['spec', 'mounts', 0, 'name']`)
 * into `file:line:col`, so every problem, whether found by the YAML parser, the JSON Schema or a
 * cross-document check, points at the offending key or value.
 */
import { isMap, isNode, isScalar, type Document, type LineCounter, type Node } from 'yaml';
import type { Place } from '../errors.ts';

export type DocPath = ReadonlyArray<string | number>;

/** One parsed YAML document and what is needed to say where things are in it. */
export interface SourceDoc {
  file: string;
  doc: Document.Parsed;
  lines: LineCounter;
}

/** The place of a byte offset in a file (1-based line and column). */
export function placeOfOffset(file: string, lines: LineCounter, offset: number): Place {
  const { line, col } = lines.linePos(offset);
  return { file, line: Math.max(line, 1), col: Math.max(col, 1) };
}

/**
 * The place of the value at `path`, or of its key when `key` is set (an unknown field is reported
 * at its key; a wrong value at the value). Walks up to the nearest existing ancestor when the path
 * does not exist (a missing required field is reported at the map that lacks it).
 */
export function placeAt(src: SourceDoc, path: DocPath, opts: { key?: boolean } = {}): Place {
  for (let n = path.length; n >= 0; n--) {
    const sub = path.slice(0, n);
    const node = opts.key && n === path.length ? keyNodeAt(src.doc, sub) : nodeAt(src.doc, sub);
    if (node?.range) return placeOfOffset(src.file, src.lines, node.range[0]);
  }
  return placeOfOffset(src.file, src.lines, src.doc.range[0]);
}

function nodeAt(doc: Document.Parsed, path: DocPath): Node | undefined {
  if (path.length === 0) return isNode(doc.contents) ? doc.contents : undefined;
  const v = doc.getIn(path as unknown[], true);
  return isNode(v) ? v : undefined;
}

function keyNodeAt(doc: Document.Parsed, path: DocPath): Node | undefined {
  if (path.length === 0) return undefined;
  const parent = nodeAt(doc, path.slice(0, -1));
  if (!isMap(parent)) return undefined;
  const last = String(path[path.length - 1]);
  for (const pair of parent.items) {
    const k = pair.key;
    if (isScalar(k) && String(k.value) === last) return k;
  }
  return undefined;
}
