/**
 * Interpolation of a whole Compose file, on its YAML nodes so every value keeps its place: every
 * string value (never a key, as in Compose) is interpolated in place, then the strings at the paths
 * where Compose wants a number or a boolean are cast (compose-go's `interpolateTypeCastMapping`),
 * so `privileged: ${PRIV:-false}` is a boolean when the schema checks it, as in Compose.
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type Node, type Scalar } from 'yaml';
import { BerthError } from '../errors.ts';
import { interpolate, type Lookup } from './interpolate.ts';

export type ComposePath = ReadonlyArray<string | number>;

export interface TreeFindings {
  /** A malformed `${…}` or a missing required variable, at the value that has it. */
  errors: Array<{ path: ComposePath; node: Node; message: string }>;
  /** Variables read but not set and without a default, each once, where it is first read. */
  unset: Array<{ path: ComposePath; node: Node; name: string }>;
}

type Cast = 'int' | 'float' | 'bool';

/** `*` any map key, `[]` any list index. */
const SERVICE_CASTS: Array<[string[], Cast]> = [
  [['cpus'], 'float'],
  [['init'], 'bool'],
  [['privileged'], 'bool'],
  [['read_only'], 'bool'],
  [['tty'], 'bool'],
  [['stdin_open'], 'bool'],
  [['oom_kill_disable'], 'bool'],
  [['pids_limit'], 'int'],
  [['scale'], 'int'],
  [['depends_on', '*', 'required'], 'bool'],
  [['depends_on', '*', 'restart'], 'bool'],
  [['deploy', 'replicas'], 'int'],
  [['deploy', 'restart_policy', 'max_attempts'], 'int'],
  [['healthcheck', 'retries'], 'int'],
  [['healthcheck', 'disable'], 'bool'],
  [['ulimits', '*'], 'int'],
  [['ulimits', '*', 'soft'], 'int'],
  [['ulimits', '*', 'hard'], 'int'],
  [['volumes', '[]', 'read_only'], 'bool'],
  [['volumes', '[]', 'volume', 'nocopy'], 'bool'],
];
const CASTS: Array<[string[], Cast]> = [
  ...SERVICE_CASTS.map(([p, c]) => [['services', '*', ...p], c] as [string[], Cast]),
  [['volumes', '*', 'external'], 'bool'],
  [['networks', '*', 'external'], 'bool'],
  [['networks', '*', 'internal'], 'bool'],
];

export function interpolateTree(doc: Document.Parsed, lookup: Lookup): TreeFindings {
  const findings: TreeFindings = { errors: [], unset: [] };
  const seenUnset = new Set<string>();
  const walk = (node: unknown, path: (string | number)[]): void => {
    if (isAlias(node)) return; // its anchor is interpolated where it stands
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
        if (key !== undefined) walk(pair.value, [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i]));
    } else if (isScalar(node) && typeof node.value === 'string') {
      try {
        const r = interpolate(node.value, lookup);
        node.value = r.value;
        for (const name of r.unset) {
          if (seenUnset.has(name)) continue;
          seenUnset.add(name);
          findings.unset.push({ path, node, name });
        }
        const cast = castAt(path);
        if (cast) node.value = castValue(r.value, cast);
      } catch (err) {
        if (!(err instanceof BerthError)) throw err;
        findings.errors.push({ path, node, message: err.message });
      }
    }
  };
  walk(doc.contents, []);
  return findings;
}

function castAt(path: ComposePath): Cast | undefined {
  for (const [pattern, cast] of CASTS) {
    if (pattern.length !== path.length) continue;
    if (pattern.every((p, i) => (p === '*' ? typeof path[i] === 'string' : p === '[]' ? typeof path[i] === 'number' : p === path[i]))) return cast;
  }
  return undefined;
}

/** Compose's casts: integers and floats as Go parses them, booleans as YAML 1.1 wrote them. */
function castValue(value: string, cast: Cast): Scalar['value'] {
  if (cast === 'bool') {
    const v = value.toLowerCase();
    if (['true', 'y', 'yes', 'on'].includes(v)) return true;
    if (['false', 'n', 'no', 'off'].includes(v)) return false;
    throw new BerthError('InvalidArgument', `"${value}" is not a boolean (true or false)`);
  }
  const ok = cast === 'int' ? /^[-+]?\d+$/.test(value) : /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(value);
  if (!ok) throw new BerthError('InvalidArgument', `"${value}" is not ${cast === 'int' ? 'an integer' : 'a number'}`);
  return Number(value);
}
