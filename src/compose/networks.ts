/**
 * Compose networks as berth networks. A top-level network becomes a `Network` document (bridge
 * only; one IPv4 subnet). A service joins the networks it lists, or the project's `default`
 * network, which is berth's own default network `berth`, as Compose puts every service on one.
 * Its `ports` are published as in Compose. Compose leaves a subnet to the engine; berth needs one
 * in the document, so a network without `ipam.config[0].subnet` gets a /24 in 10.89.0.0/16 chosen
 * from its name, and a note says which.
 */
import { createHash } from 'node:crypto';
import { BerthError } from '../errors.ts';
import { API_VERSION, DEFAULT_NETWORK, DEFAULT_NETWORK_SPEC } from '../manifest/types.ts';
import { parsePort } from '../network/ports.ts';
import { parseSubnet, subnetsOverlap } from '../network/subnet.ts';
import type { ComposePath } from './interpolate-tree.ts';
import { objectMeta } from './meta.ts';
import type { Origin } from './origins.ts';

type Json = Record<string, any>;
type Report = (at: ComposePath, message: string, key?: boolean) => void;

/** A top-level network as berth has it: its berth name, and its document unless it is made elsewhere. */
export interface ComposeNetwork {
  name: string;
  doc?: { value: Json; origins: Origin[]; at: ComposePath };
}

const yes = (v: unknown) => v === true || v === 'true';

/**
 * The top-level `networks` (and the implicit `default`), by Compose key. `claim` gives a berth
 * name for a Compose name (and refuses two that become one).
 */
export function convertNetworks(
  compose: Json,
  claim: (composeName: string, at: ComposePath) => string,
  problem: Report,
  note: Report,
): Map<string, ComposeNetwork> {
  const out = new Map<string, ComposeNetwork>([['default', { name: DEFAULT_NETWORK }]]);
  const declared = Object.entries((compose.networks ?? {}) as Record<string, Json | null>);
  const taken = declared.flatMap(([, n]) => (typeof n?.ipam?.config?.[0]?.subnet === 'string' ? [n.ipam.config[0].subnet as string] : []));
  for (const [key, raw] of declared) {
    const at = ['networks', key];
    const n = raw ?? {};
    let ok = true;
    const refuse = (k: ComposePath, why: string) => {
      ok = false;
      problem([...at, ...k], `networks.${key}${k.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('')}: ${why}`, true);
    };
    for (const k of Object.keys(n)) {
      if (k.startsWith('x-') || ['name', 'driver', 'ipam', 'internal', 'external', 'labels', 'attachable', 'enable_ipv4', 'enable_ipv6'].includes(k)) continue;
      refuse([k], `berth cannot honour "${k}" (its networks are netavark bridges with one IPv4 subnet)`);
    }
    if (n.driver !== undefined && n.driver !== 'bridge') refuse(['driver'], `berth cannot honour the driver "${n.driver}": its networks are bridges`);
    if (yes(n.enable_ipv6)) refuse(['enable_ipv6'], 'berth networks are IPv4 only');
    if (n.enable_ipv4 !== undefined && !yes(n.enable_ipv4)) refuse(['enable_ipv4'], 'berth networks are IPv4 only: they cannot switch it off');
    const ipam = n.ipam ?? {};
    for (const k of Object.keys(ipam)) {
      if (k.startsWith('x-') || k === 'config' || (k === 'driver' && ipam.driver === 'default')) continue;
      refuse(['ipam', k], `berth cannot honour "${k}": berth allocates the addresses itself`);
    }
    (ipam.config ?? []).forEach((c: Json, i: number) => {
      if (i > 0) return refuse(['ipam', 'config', i], 'berth networks have one subnet');
      for (const k of Object.keys(c))
        if (k !== 'subnet' && !k.startsWith('x-'))
          refuse(['ipam', 'config', i, k], `berth cannot honour "${k}": the first address is the gateway, the rest are its containers'`);
    });
    if (n.external !== undefined && n.external !== false) {
      // Declared elsewhere (another manifest), under its own name: the loader checks that it is.
      const name = claim(typeof n.external === 'object' && n.external.name ? n.external.name : (n.name ?? key), at);
      note(at, `networks.${key}: external: the containers join berth's Network ${name}, declared in another manifest`);
      out.set(key, { name });
      continue;
    }
    const name = key === 'default' && n.name === undefined ? DEFAULT_NETWORK : claim(n.name ?? key, at);
    const subnet: string | undefined = ipam.config?.[0]?.subnet;
    if (!ok) continue;
    if (name === DEFAULT_NETWORK && subnet === undefined && !yes(n.internal)) {
      out.set(key, { name });
      continue;
    }
    const spec: Json = { subnet: subnet ?? (name === DEFAULT_NETWORK ? DEFAULT_NETWORK_SPEC.subnet : pickSubnet(name, taken)) };
    if (subnet === undefined && name !== DEFAULT_NETWORK) {
      taken.push(spec.subnet);
      note(at, `networks.${key}: berth gives it the subnet ${spec.subnet} (set ipam.config[0].subnet to choose one)`);
    }
    if (key === 'default' && name === DEFAULT_NETWORK)
      note(at, `networks.default: this is berth's default network ${DEFAULT_NETWORK}, which every Compose project on the device shares`);
    if (yes(n.internal)) spec.internal = true;
    const { metadata, origins } = objectMeta(name, n.labels, at);
    origins.push({ path: ['spec', 'subnet'], from: subnet === undefined ? at : [...at, 'ipam', 'config', 0, 'subnet'], key: subnet === undefined });
    if (spec.internal) origins.push({ path: ['spec', 'internal'], from: [...at, 'internal'] });
    out.set(key, { name, doc: { value: { apiVersion: API_VERSION, kind: 'Network', metadata, spec }, origins, at } });
  }
  return out;
}

/** A /24 in 10.89.1.0–10.89.255.0 from the network's name, the next free one if the file uses it. */
function pickSubnet(name: string, taken: string[]): string {
  const start = createHash('sha256').update(name).digest().readUInt16BE(0) % 255;
  for (let i = 0; i < 255; i++) {
    const cidr = `10.89.${1 + ((start + i) % 255)}.0/24`;
    const clashes = taken.some((t) => {
      try {
        return subnetsOverlap(parseSubnet(t), parseSubnet(cidr));
      } catch {
        return false; // not a subnet: the loader says so at its place
      }
    });
    if (!clashes) return cidr;
  }
  return `10.89.${1 + start}.0/24`;
}

/** What a service's network keys become in its Container spec, with where each part came from. */
export interface ServiceNetworking {
  network?: 'host' | 'none';
  networks?: Array<string | { name: string; aliases: string[] }>;
  ports?: string[];
  origins: Origin[];
}

/**
 * A service's `network_mode`, `networks` and `ports`. `networkName` is the berth name of a Compose
 * network (undefined: not declared); `alias` is the service's own name when its container is named
 * otherwise (Compose resolves both).
 */
export function serviceNetworking(
  svc: Json,
  networkName: (composeNetwork: string) => string | undefined,
  alias: string | undefined,
  problem: Report,
  where: (key: ComposePath) => string,
): ServiceNetworking {
  const out: ServiceNetworking = { origins: [] };
  const from = (path: (string | number)[], key: ComposePath) => out.origins.push({ path: ['spec', ...path], from: key });
  const mode = svc.network_mode;
  if (mode !== undefined) {
    if (mode === 'host' || mode === 'none') {
      out.network = mode;
      from(['network'], ['network_mode']);
      for (const k of ['networks', 'ports'] as const) {
        if (svc[k] !== undefined)
          problem(
            [k],
            `${where([k])}: network_mode: ${mode} gives the service no namespace of its own to join networks or publish ports: remove one of them`,
            true,
          );
      }
    } else if (/^(service|container):/.test(mode)) {
      problem(
        ['network_mode'],
        `${where(['network_mode'])}: berth cannot honour "${mode}": a container cannot join another's network namespace; put both on one network (networks:)`,
      );
    } else
      problem(
        ['network_mode'],
        `${where(['network_mode'])}: "${mode}": berth knows host and none; for a private network leave network_mode out and list networks:`,
      );
    return out;
  }

  const entries: Array<[string, Json, ComposePath]> =
    svc.networks === undefined
      ? [['default', {}, []]]
      : Array.isArray(svc.networks)
        ? svc.networks.map((n: string, i: number) => [n, {}, ['networks', i]])
        : Object.entries(svc.networks).map(([n, v]) => [n, (v ?? {}) as Json, ['networks', n]]);
  out.networks = [];
  for (const [net, opts, key] of entries) {
    const name = networkName(net);
    if (name === undefined) {
      problem(key, `${where(key)}: network "${net}" is not declared under the top-level networks: key`, !Array.isArray(svc.networks));
      continue;
    }
    for (const k of Object.keys(opts)) {
      if (k === 'aliases' || k.startsWith('x-')) continue;
      problem([...key, k], `${where([...key, k])}: berth cannot honour "${k}" (berth allocates the addresses and names the interfaces itself)`, true);
    }
    const aliases = [...(opts.aliases ?? []).map(String), ...(alias !== undefined ? [alias] : [])];
    out.networks.push(aliases.length > 0 ? { name, aliases } : name);
    from(['networks', out.networks.length - 1], key);
  }

  if (svc.ports !== undefined) {
    out.ports = [];
    svc.ports.forEach((p: unknown, i: number) => {
      const key = ['ports', i];
      try {
        const text = shortPort(p, where(key));
        parsePort(text, where(key));
        from(['ports', out.ports!.length], key);
        out.ports!.push(text);
      } catch (err) {
        if (!(err instanceof BerthError)) throw err;
        problem(key, err.message);
      }
    });
  }
  return out;
}

/** A Compose port (a number, the short syntax, or the long one) in the short syntax. */
function shortPort(p: unknown, where: string): string {
  const refuse = (why: string) => new BerthError('InvalidArgument', `${where}: ${why}`);
  if (typeof p !== 'object' || p === null) {
    const text = String(p);
    if (/^\d+(-\d+)?(\/\w+)?$/.test(text)) {
      throw refuse(
        `"${text}" publishes on a random host port, which a device's users could not find: write hostPort:containerPort, e.g. ${text.split(/[-/]/)[0]}:${text}`,
      );
    }
    return text;
  }
  const long = p as Json;
  const extra = Object.keys(long).filter(
    (k) => !['target', 'published', 'host_ip', 'protocol', 'mode', 'name', 'app_protocol'].includes(k) && !k.startsWith('x-'),
  );
  if (extra.length > 0) throw refuse(`berth cannot honour ${extra.join(', ')}`);
  if (long.mode !== undefined && long.mode !== 'host' && long.mode !== 'ingress') throw refuse(`mode "${long.mode}" is not host or ingress`);
  if (long.published === undefined) throw refuse(`no published port: berth publishes on a host port you name (published: ${long.target})`);
  const ip = long.host_ip === undefined ? '' : String(long.host_ip).includes(':') ? `[${long.host_ip}]:` : `${long.host_ip}:`;
  return `${ip}${long.published}:${long.target}${long.protocol ? `/${long.protocol}` : ''}`;
}
