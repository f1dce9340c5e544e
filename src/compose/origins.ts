/**
 * Where each part of a berth document made from a Compose file came from. The documents are built
 * as YAML documents whose nodes carry the ranges of the Compose nodes they were made from, so the
 * loader's own checks (the berth schema, names, references) point at the Compose file's line and
 * column as they do for any manifest.
 */
import { Document, isMap, isScalar, isSeq, type Node, type Pair, type YAMLMap } from 'yaml';
import type { DocPath } from '../manifest/source.ts';
import type { ComposePath } from './interpolate-tree.ts';

/** The berth value at `path` came from the Compose value at `from`; with `key`, the berth key from the Compose key. */
export interface Origin {
  path: DocPath;
  from: ComposePath;
  key?: boolean;
}

/** Finds nodes by path, each map indexed once (a 20,000-entry map is not searched per lookup). */
export class NodeFinder {
  private readonly index = new WeakMap<YAMLMap, Map<string, Pair>>();
  private readonly root: unknown;

  constructor(root: unknown) {
    this.root = root;
  }

  /** The value node at `path`, or its key node with `key`. */
  find(path: ReadonlyArray<string | number>, key = false): Node | undefined {
    let node: unknown = this.root;
    for (let i = 0; i < path.length; i++) {
      const step = path[i]!;
      if (isMap(node)) {
        const pair = this.pair(node, step);
        node = key && i === path.length - 1 ? pair?.key : pair?.value;
      } else if (isSeq(node) && typeof step === 'number') node = node.items[step];
      else return undefined;
    }
    return node as Node | undefined;
  }

  private pair(map: YAMLMap, step: string | number): Pair | undefined {
    let index = this.index.get(map);
    if (!index) {
      index = new Map();
      for (const pair of map.items) if (isScalar(pair.key) && !index.has(String(pair.key.value))) index.set(String(pair.key.value), pair);
      this.index.set(map, index);
    }
    return index.get(String(step));
  }
}

/**
 * A YAML document of `value` whose nodes carry the ranges of the Compose nodes in `origins`; the
 * document itself, and anything without an origin, is placed at `fallback` (the service's key).
 */
export function documentWithOrigins(value: object, origins: readonly Origin[], compose: NodeFinder, fallback: ComposePath): Document.Parsed {
  const doc = new Document(value);
  const made = new NodeFinder(doc.contents);
  const rangeOf = (from: ComposePath, key?: boolean) => compose.find(from, key)?.range ?? compose.find(from)?.range;
  const root = rangeOf(fallback, true) ?? [0, 0, 0];
  doc.range = [root[0], root[1], root[2]];
  if (doc.contents) doc.contents.range = [root[0], root[1], root[2]];
  for (const o of origins) {
    const range = rangeOf(o.from, o.key);
    const node = made.find(o.path, o.key);
    if (range && node) node.range = [range[0], range[1], range[2]];
  }
  return doc as Document.Parsed;
}
