/**
 * Positions in the user's YAML: turns a path into a document (`['spec', 'mounts', 0, 'name']`)
 * into `file:line:col`, so every problem, whether found by the YAML parser, the JSON Schema or a
 * cross-document check, points at the offending key or value.
 */
import { isMap, isNode, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair, type YAMLMap } from 'yaml';
import type { Place } from '../errors.ts';

export type DocPath = ReadonlyArray<string | number>;

/** One parsed YAML document and what is needed to say where things are in it. */
export interface SourceDoc {
  file: string;
  doc: Document.Parsed;
  lines: LineCounter;
  /**
   * Each map's pairs by key, built on first use. yaml's own `getIn` scans a map's items per
   * lookup, so placing one problem per entry of a 20,000-entry `env` took quadratic time.
   */
  keys?: WeakMap<YAMLMap, Map<string, Pair>>;
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
    const node = opts.key && n === path.length ? keyNodeAt(src, sub) : nodeAt(src, sub);
    if (node?.range) return placeOfOffset(src.file, src.lines, node.range[0]);
  }
  return placeOfOffset(src.file, src.lines, src.doc.range[0]);
}

function nodeAt(src: SourceDoc, path: DocPath): Node | undefined {
  let node: unknown = src.doc.contents;
  for (const step of path) {
    if (isMap(node)) node = pairOf(src, node, step)?.value;
    else if (isSeq(node) && typeof step === 'number') node = node.items[step];
    else return undefined;
  }
  return isNode(node) ? node : undefined;
}

function keyNodeAt(src: SourceDoc, path: DocPath): Node | undefined {
  if (path.length === 0) return undefined;
  const parent = nodeAt(src, path.slice(0, -1));
  if (!isMap(parent)) return undefined;
  const key = pairOf(src, parent, path[path.length - 1]!)?.key;
  return isNode(key) ? key : undefined;
}

/** The first pair of `map` whose scalar key reads as `key` (`1` and `"1"` alike, as a JSON path has them). */
function pairOf(src: SourceDoc, map: YAMLMap, key: string | number): Pair | undefined {
  src.keys ??= new WeakMap();
  let index = src.keys.get(map);
  if (!index) {
    index = new Map();
    for (const pair of map.items) {
      if (!isScalar(pair.key)) continue;
      const k = String(pair.key.value);
      if (!index.has(k)) index.set(k, pair);
    }
    src.keys.set(map, index);
  }
  return index.get(String(key));
}
